//! MongoDB's connection-string, uri-options and auth (connection-string.json) spec tests.
//!
//! Each suite is a directory of JSON files; `run_suite` accepts any directory in the same
//! format. The data is read from `$MAY_MONGO_SPECS` (default `../shared/specs`); missing data
//! fails loudly. A test that cannot pass must be listed in `tests/uri_exceptions.txt` as
//! `file.json: description: reason`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use may_mongo::uri::{ConnectionString, HostKind, HostSpec, OptionValue};
use serde_json::{Value, json};

fn specs_root() -> PathBuf {
    let root = std::env::var_os("MAY_MONGO_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"));
    if !root.is_dir() {
        panic!(
            "\n\n*** MongoDB spec test data not found at {} ***\n\
             Put it beside the repository (../shared/specs) or set MAY_MONGO_SPECS.\n",
            root.display()
        );
    }
    root
}

fn exceptions() -> HashMap<(String, String), String> {
    include_str!("uri_exceptions.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.splitn(3, ": ");
            Some((
                (parts.next()?.to_string(), parts.next()?.to_string()),
                parts.next()?.to_string(),
            ))
        })
        .collect()
}

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

/// Runs every test of every JSON file in `dir` (or just `file`), printing the summary line.
fn run_suite(suite: &str, dir: &Path, only: Option<&str>) -> (usize, usize, usize) {
    let exceptions = exceptions();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| only.is_none_or(|o| p.file_name().is_some_and(|f| f == o)))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no spec files in {}", dir.display());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let data: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for test in data["tests"].as_array().unwrap() {
            let description = test["description"].as_str().unwrap_or("").to_string();
            let excused = exceptions.get(&(file.clone(), description.clone()));
            match (check(test), excused) {
                (Ok(()), None) => passed += 1,
                (Ok(()), Some(_)) => {
                    passed += 1;
                    failures.push(format!(
                        "{file}: {description}: passes but is listed as an exception"
                    ));
                }
                (Err(_), Some(_)) => skipped += 1,
                (Err(e), None) => {
                    failed += 1;
                    failures.push(format!("{file}: {description} ({}): {e}", test["uri"]));
                }
            }
        }
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{suite}: {passed} passed, {failed} failed, {skipped} skipped"
    );
    assert!(failures.is_empty(), "{suite}: {failures:#?}");
    (passed, failed, skipped)
}

#[test]
fn connection_string_spec() {
    run_suite(
        "connection-string",
        &specs_root().join("connection-string"),
        None,
    );
}

#[test]
fn uri_options_spec() {
    run_suite("uri-options", &specs_root().join("uri-options"), None);
}

#[test]
fn auth_connection_string_spec() {
    run_suite(
        "auth",
        &specs_root().join("auth"),
        Some("connection-string.json"),
    );
}
