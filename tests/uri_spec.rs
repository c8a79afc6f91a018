//! MongoDB's connection-string, uri-options and auth (connection-string.json) spec tests.
//!
//! Each suite is a directory of JSON files; `run_suite` accepts any directory in the same
//! format. The data is read from `$MAY_MONGO_SPECS` (default `../shared/specs`); missing data
//! fails loudly. A test that cannot pass must be listed in `tests/spec_exceptions.txt`.

mod common;

use common::spec;
use may_mongo::uri::{ConnectionString, HostKind, HostSpec, OptionValue};
use serde_json::{Value, json};

/// The few BSON types option values hold, as JSON.
fn bson_json(v: &bson::Bson) -> Value {
    match v {
        bson::Bson::String(s) => json!(s),
        bson::Bson::Boolean(b) => json!(b),
        bson::Bson::Int32(n) => json!(n),
        bson::Bson::Int64(n) => json!(n),
        bson::Bson::Document(d) => {
            Value::Object(d.iter().map(|(k, v)| (k.clone(), bson_json(v))).collect())
        }
        other => json!(other.to_string()),
    }
}

fn option_json(v: &OptionValue) -> Value {
    match v {
        OptionValue::Bool(b) => json!(b),
        OptionValue::Int(n) => json!(n),
        OptionValue::Str(s) => json!(s),
        OptionValue::List(l) => json!(l),
        OptionValue::Doc(d) => bson_json(&bson::Bson::Document(d.clone())),
        OptionValue::Docs(ds) => Value::Array(
            ds.iter()
                .map(|d| bson_json(&bson::Bson::Document(d.clone())))
                .collect(),
        ),
    }
}

fn host_json(h: &HostSpec) -> Value {
    match h {
        HostSpec::Tcp { host, port, kind } => json!({
            "type": match kind {
                HostKind::Ipv4 => "ipv4",
                HostKind::IpLiteral => "ip_literal",
                HostKind::Hostname => "hostname",
            },
            "host": host,
            "port": port,
        }),
        HostSpec::Unix { path } => json!({ "type": "unix", "host": path, "port": null }),
    }
}

/// Checks one test; Err says what differed.
fn check(test: &Value) -> Result<(), String> {
    let uri = test["uri"].as_str().unwrap();
    let parsed = ConnectionString::parse(uri);
    let cs = match (test["valid"].as_bool().unwrap(), parsed) {
        (false, Ok(cs)) => return Err(format!("accepted an invalid URI: {cs:?}")),
        (false, Err(_)) => return Ok(()),
        (true, Err(e)) => return Err(format!("rejected a valid URI: {e}")),
        (true, Ok(cs)) => cs,
    };
    if let Some(warn) = test.get("warning").and_then(Value::as_bool)
        && warn == cs.warnings.is_empty()
    {
        return Err(format!(
            "warning expected {warn}, warnings: {:?}",
            cs.warnings
        ));
    }
    if let Some(hosts) = test.get("hosts").filter(|h| !h.is_null()) {
        let ours: Vec<Value> = cs.hosts.iter().map(host_json).collect();
        if hosts.as_array().unwrap() != &ours {
            return Err(format!("hosts: expected {hosts}, got {ours:?}"));
        }
    }
    if let Some(auth) = test.get("auth").filter(|a| !a.is_null()) {
        let c = cs.credential.as_ref();
        let ours = json!({
            "username": c.and_then(|c| c.username.clone()),
            "password": c.and_then(|c| c.password.clone()),
            "db": cs.database,
        });
        if auth != &ours {
            return Err(format!("auth: expected {auth}, got {ours}"));
        }
    }
    if let Some(options) = test.get("options").filter(|o| !o.is_null()) {
        for (k, expected) in options.as_object().unwrap() {
            let ours = cs
                .options
                .get(&k.to_ascii_lowercase())
                .map(option_json)
                .unwrap_or(Value::Null);
            if &ours != expected {
                return Err(format!("option {k}: expected {expected}, got {ours}"));
            }
        }
    }
    if let Some(expected) = test.get("credential") {
        let ours = cs.credential.as_ref().map(|c| {
            json!({
                "username": c.username,
                "password": c.password,
                "source": c.source,
                "mechanism": c.mechanism,
                "mechanism_properties": c.mechanism_properties.as_ref()
                    .map(|p| bson_json(&bson::Bson::Document(p.clone()))),
            })
        });
        let ours = ours.unwrap_or(Value::Null);
        if expected != &ours {
            return Err(format!("credential: expected {expected}, got {ours}"));
        }
    }
    Ok(())
}

#[test]
fn connection_string_spec() {
    let dir = spec::root().join("connection-string");
    spec::run_suite("connection-string", &dir, None, check);
}

#[test]
fn uri_options_spec() {
    spec::run_suite(
        "uri-options",
        &spec::root().join("uri-options"),
        None,
        check,
    );
}

#[test]
fn auth_connection_string_spec() {
    let dir = spec::root().join("auth");
    spec::run_suite("auth", &dir, Some("connection-string.json"), check);
}
