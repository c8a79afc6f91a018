//! MongoDB's read-write-concern spec tests: concerns parsed from connection strings, and
//! concerns turned into the documents sent to the server.
//!
//! Reads `$MAY_MONGO_SPECS/read-write-concern/{connection-string,document}` (default
//! `../shared/specs`), or any directory of files in the same format; missing data fails loudly.

mod common;

use std::time::Duration;

use common::spec;

use may_mongo::{ClientOptions, ReadConcern, WriteConcern};
use serde_json::{Value, json};

/// A document of ours as the spec writes it (w/wtimeout/j/level).
fn doc_json(d: &bson::Document) -> Value {
    Value::Object(
        d.iter()
            .map(|(k, v)| {
                let v = match v {
                    bson::Bson::Int32(n) => json!(n),
                    bson::Bson::Int64(n) => json!(n),
                    bson::Bson::String(s) => json!(s),
                    bson::Bson::Boolean(b) => json!(b),
                    other => json!(other.to_string()),
                };
                (k.clone(), v)
            })
            .collect(),
    )
}

/// The spec's input form of a write concern (w, wtimeoutMS, journal) into ours.
fn write_concern(v: &Value) -> Result<WriteConcern, String> {
    let mut wc = WriteConcern::default();
    if let Some(w) = v.get("w") {
        let w = match w {
            Value::Number(n) => bson::Bson::Int64(n.as_i64().ok_or("w is not whole")?),
            Value::String(s) => bson::Bson::String(s.clone()),
            other => return Err(format!("w {other}")),
        };
        wc.w = Some(WriteConcern::parse_w(&w).map_err(|e| e.to_string())?);
    }
    if let Some(t) = v.get("wtimeoutMS") {
        let t = t.as_i64().ok_or("wtimeoutMS is not whole")?;
        if t < 0 {
            return Err("negative wtimeoutMS".into());
        }
        wc.w_timeout = Some(Duration::from_millis(t as u64));
    }
    if let Some(j) = v.get("journal") {
        wc.journal = Some(j.as_bool().ok_or("journal is not a bool")?);
    }
    wc.validate().map_err(|e| e.to_string())?;
    Ok(wc)
}

/// The connection-string form: `writeConcern` / `readConcern` as the options would give them.
fn check_uri(test: &Value) -> Result<(), String> {
    let parsed = ClientOptions::parse(test["uri"].as_str().unwrap()).run();
    let opts = match (test["valid"].as_bool().unwrap(), parsed) {
        (false, Ok(_)) => return Err("accepted an invalid URI".into()),
        (false, Err(_)) => return Ok(()),
        (true, Err(e)) => return Err(format!("rejected: {e}")),
        (true, Ok(o)) => o,
    };
    if let Some(expected) = test.get("writeConcern") {
        let ours = opts.write_concern.unwrap_or_default();
        let mut got = json!({});
        if let Some(w) = &ours.w {
            got["w"] = doc_json(
                &WriteConcern {
                    w: Some(w.clone()),
                    ..Default::default()
                }
                .to_document(),
            )["w"]
                .clone();
        }
        if let Some(t) = ours.w_timeout {
            got["wtimeoutMS"] = json!(t.as_millis() as u64);
        }
        if let Some(j) = ours.journal {
            got["journal"] = json!(j);
        }
        if expected != &got {
            return Err(format!("writeConcern: expected {expected}, got {got}"));
        }
    }
    if let Some(expected) = test.get("readConcern") {
        let got = doc_json(
            &opts
                .read_concern
                .map(|rc| rc.to_document())
                .unwrap_or_default(),
        );
        if expected != &got {
            return Err(format!("readConcern: expected {expected}, got {got}"));
        }
    }
    Ok(())
}

/// The document form: a concern in, the command document and flags out.
fn check_document(test: &Value) -> Result<(), String> {
    let valid = test["valid"].as_bool().unwrap();
    if let Some(input) = test.get("writeConcern") {
        let wc = match (valid, write_concern(input)) {
            (false, Ok(wc)) => return Err(format!("accepted {wc:?}")),
            (false, Err(_)) => return Ok(()),
            (true, Err(e)) => return Err(format!("rejected: {e}")),
            (true, Ok(wc)) => wc,
        };
        let got = doc_json(&wc.to_document());
        if test["writeConcernDocument"] != got {
            return Err(format!(
                "document: expected {}, got {got}",
                test["writeConcernDocument"]
            ));
        }
        if test["isServerDefault"] != json!(wc.is_server_default()) {
            return Err(format!("isServerDefault: got {}", wc.is_server_default()));
        }
        if test["isAcknowledged"] != json!(wc.is_acknowledged()) {
            return Err(format!("isAcknowledged: got {}", wc.is_acknowledged()));
        }
    }
    if let Some(input) = test.get("readConcern") {
        // No level is no read concern: the server's default, and nothing sent.
        let rc = input
            .get("level")
            .and_then(Value::as_str)
            .map(ReadConcern::custom);
        let got = doc_json(
            &rc.as_ref()
                .map(ReadConcern::to_document)
                .unwrap_or_default(),
        );
        if test["readConcernDocument"] != got {
            return Err(format!(
                "document: expected {}, got {got}",
                test["readConcernDocument"]
            ));
        }
        if test["isServerDefault"] != json!(rc.is_none()) {
            return Err(format!("isServerDefault: got {}", rc.is_none()));
        }
    }
    Ok(())
}

#[test]
fn read_write_concern_connection_string_spec() {
    let dir = spec::root().join("read-write-concern/connection-string");
    spec::run_suite(
        "read-write-concern/connection-string",
        &dir,
        None,
        check_uri,
    );
}

#[test]
fn read_write_concern_document_spec() {
    let dir = spec::root().join("read-write-concern/document");
    spec::run_suite("read-write-concern/document", &dir, None, check_document);
}
