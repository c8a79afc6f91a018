//! MongoDB's SDAM spec tests (single, rs, sharded, load-balanced, errors, monitoring), run
//! against the sans-IO [`Topology`] state machine: each phase feeds `hello` replies and
//! application errors, then the resulting topology — and, for monitoring, the SDAM events it
//! produced — is compared with the expected outcome.
//!
//! Reads `$MAY_MONGO_SPECS/server-discovery-and-monitoring` (default `../shared/specs`); any
//! directory of files in the same format works.

mod common;

use bson::{Bson, Document, oid::ObjectId};
use common::spec;
use may_mongo::topology::{ApplicationError, SdamEvent, ServerState, Topology, TopologyType};
use may_mongo::uri::{ConnectionString, HostSpec, OptionValue};
use may_mongo::{ServerAddress, ServerType};
use serde_json::Value;

/// Extended JSON (the subset the spec files use) to BSON.
fn to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Bson::Int32(i as i32),
            Some(i) => Bson::Int64(i),
            None => Bson::Double(n.as_f64().unwrap()),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(to_bson).collect()),
        Value::Object(o) => {
            if let Some(Value::String(oid)) = o.get("$oid") {
                return Bson::ObjectId(ObjectId::parse_str(oid).unwrap());
            }
            if let Some(Value::String(n)) = o.get("$numberLong") {
                return Bson::Int64(n.parse().unwrap());
            }
            Bson::Document(o.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect())
        }
    }
}

fn doc(v: &Value) -> Document {
    match to_bson(v) {
        Bson::Document(d) => d,
        other => panic!("not a document: {other}"),
    }
}

fn topology_name(t: TopologyType) -> &'static str {
    match t {
        TopologyType::Single => "Single",
        TopologyType::ReplicaSetWithPrimary => "ReplicaSetWithPrimary",
        TopologyType::ReplicaSetNoPrimary => "ReplicaSetNoPrimary",
        TopologyType::Sharded => "Sharded",
        TopologyType::LoadBalanced => "LoadBalanced",
        TopologyType::Unknown => "Unknown",
    }
}

fn initial(uri: &str) -> Result<Topology, String> {
    let cs = ConnectionString::parse(uri).map_err(|e| e.to_string())?;
    let seeds: Vec<ServerAddress> = cs
        .hosts
        .iter()
        .map(|h| match h {
            HostSpec::Tcp { host, port, .. } => ServerAddress {
                host: host.clone(),
                port: port.unwrap_or(27017),
            },
            HostSpec::Unix { path } => panic!("unix host {path}"),
        })
        .collect();
    let flag = |k: &str| matches!(cs.options.get(k), Some(OptionValue::Bool(true)));
    let replica_set = match cs.options.get("replicaset") {
        Some(OptionValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(Topology::new(
        &seeds,
        flag("directconnection"),
        flag("loadbalanced"),
        replica_set,
    ))
}

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap().lowercase()
}

fn apply_error(t: &mut Topology, e: &Value) -> Result<Vec<SdamEvent>, String> {
    let address = addr(e["address"].as_str().ok_or("address")?);
    let generation = match e.get("generation").and_then(Value::as_u64) {
        Some(g) => g,
        None => t.servers.get(&address).map_or(0, |s| s.pool_generation),
    };
    // `when` (before or after the handshake) no longer changes any rule: timeouts are
    // ignored in both, network errors count in both.
    let error = match e["type"].as_str() {
        Some("network") => ApplicationError::Network,
        Some("timeout") => ApplicationError::Timeout,
        Some("command") => ApplicationError::Command(doc(&e["response"])),
        other => return Err(format!("unknown error type {other:?}")),
    };
    let max_wire = e["maxWireVersion"].as_i64().unwrap_or(21) as i32;
    Ok(
        t.on_application_error(&address, generation, max_wire, &error)
            .events,
    )
}

fn check_outcome(t: &Topology, o: &Value) -> Result<(), String> {
    let eq = |what: &str, want: &Value, got: Value| {
        if want != &got {
            Err(format!("{what}: expected {want}, got {got}"))
        } else {
            Ok(())
        }
    };
    if let Some(want) = o.get("topologyType") {
        eq(
            "topologyType",
            want,
            Value::from(topology_name(t.topology_type)),
        )?;
    }
    if let Some(want) = o.get("setName") {
        eq("setName", want, t.set_name.clone().into())?;
    }
    if let Some(want) = o.get("logicalSessionTimeoutMinutes") {
        eq(
            "logicalSessionTimeoutMinutes",
            want,
            t.logical_session_timeout_minutes.into(),
        )?;
    }
    if let Some(want) = o.get("maxSetVersion") {
        eq("maxSetVersion", want, t.max_set_version.into())?;
    }
    if let Some(want) = o.get("maxElectionId") {
        let got = t
            .max_election_id
            .map(|id| serde_json::json!({ "$oid": id.to_hex() }));
        eq("maxElectionId", want, got.into())?;
    }
    if let Some(want) = o.get("compatible") {
        eq("compatible", want, t.compatibility_error.is_none().into())?;
    }
    if let Some(servers) = o.get("servers").and_then(Value::as_object) {
        let want_keys: Vec<ServerAddress> = servers.keys().map(|k| addr(k)).collect();
        let got_keys: Vec<ServerAddress> = t.servers.keys().cloned().collect();
        let mut sorted = want_keys.clone();
        sorted.sort();
        if sorted != got_keys {
            return Err(format!("servers: expected {sorted:?}, got {got_keys:?}"));
        }
        for (k, want) in servers {
            let s = &t.servers[&addr(k)];
            let field = |name: &str, got: Value| -> Result<(), String> {
                match want.get(name) {
                    Some(w) => eq(&format!("{k}.{name}"), w, got),
                    None => Ok(()),
                }
            };
            field("type", Value::from(s.server_type.spec_name()))?;
            field("setName", s.set_name.clone().into())?;
            field("setVersion", s.set_version.into())?;
            field(
                "electionId",
                s.election_id
                    .map(|id| serde_json::json!({ "$oid": id.to_hex() }))
                    .into(),
            )?;
            field(
                "topologyVersion",
                s.topology_version
                    .map(|tv| {
                        serde_json::json!({
                            "processId": { "$oid": tv.process_id.to_hex() },
                            "counter": { "$numberLong": tv.counter.to_string() },
                        })
                    })
                    .into(),
            )?;
            field(
                "logicalSessionTimeoutMinutes",
                s.logical_session_timeout_minutes.into(),
            )?;
            // A load balancer is never checked, so its wire versions are unknown: the files
            // write null, the model keeps its "not heard from" zeros.
            let wire = |v: i32| match s.server_type {
                ServerType::LoadBalancer => Value::Null,
                _ => v.into(),
            };
            field("minWireVersion", wire(s.min_wire_version))?;
            field("maxWireVersion", wire(s.max_wire_version))?;
            if let Some(g) = want.get("pool").and_then(|p| p.get("generation")) {
                eq(&format!("{k}.pool.generation"), g, s.pool_generation.into())?;
            }
        }
    }
    Ok(())
}

/// A server description as the monitoring files write it.
fn server_json(address: &ServerAddress, s: &ServerState) -> Value {
    let list =
        |v: &[ServerAddress]| Value::from(v.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let mut o = serde_json::json!({
        "address": address.to_string(),
        "arbiters": list(&s.arbiters),
        "hosts": list(&s.hosts),
        "passives": list(&s.passives),
        "type": s.server_type.spec_name(),
    });
    if let Some(p) = &s.primary {
        o["primary"] = p.to_string().into();
    }
    if let Some(n) = &s.set_name {
        o["setName"] = n.clone().into();
    }
    o
}

fn topology_json(t: &Topology) -> Value {
    let mut o = serde_json::json!({
        "topologyType": topology_name(t.topology_type),
        "servers": t.servers.iter().map(|(a, s)| server_json(a, s)).collect::<Vec<_>>(),
    });
    if let Some(n) = &t.set_name {
        o["setName"] = n.clone().into();
    }
    o
}

fn event_json(e: &SdamEvent) -> Value {
    use serde_json::json;
    match e {
        SdamEvent::TopologyOpening(_) => json!({ "topology_opening_event": {} }),
        SdamEvent::TopologyDescriptionChanged(c) => json!({
            "topology_description_changed_event": {
                "previousDescription": topology_json(&c.previous_description),
                "newDescription": topology_json(&c.new_description),
            }
        }),
        SdamEvent::ServerOpening(e) => {
            json!({ "server_opening_event": { "address": e.address.to_string() } })
        }
        SdamEvent::ServerClosed(e) => {
            json!({ "server_closed_event": { "address": e.address.to_string() } })
        }
        SdamEvent::ServerDescriptionChanged(c) => json!({
            "server_description_changed_event": {
                "address": c.address.to_string(),
                "previousDescription": server_json(&c.address, &c.previous_description),
                "newDescription": server_json(&c.address, &c.new_description),
            }
        }),
        other => json!({ "unexpected": format!("{other:?}") }),
    }
}

/// Every field the file names must match (`topologyId` is the runner's own; arrays match
/// element by element and must have the same length).
fn matches(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .filter(|(k, _)| k.as_str() != "topologyId")
            .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv))),
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => want == got,
    }
}

fn check_events(want: &Value, got: &[SdamEvent]) -> Result<(), String> {
    let want = want.as_array().ok_or("events")?;
    let got: Vec<Value> = got.iter().map(event_json).collect();
    if want.len() != got.len() || !want.iter().zip(&got).all(|(w, g)| matches(w, g)) {
        return Err(format!(
            "events: expected {}, got {}",
            Value::from(want.clone()),
            Value::from(got)
        ));
    }
    Ok(())
}

fn check(test: &Value) -> Result<(), String> {
    let mut t = initial(test["uri"].as_str().ok_or("uri")?)?;
    // Events since the last checked outcome; the first phase's include the opening ones.
    let mut events = t.opening_events();
    let phases = test["phases"].as_array().ok_or("phases")?;
    for (i, phase) in phases.iter().enumerate() {
        let list = |k: &str| phase.get(k).and_then(Value::as_array).into_iter().flatten();
        for r in list("responses") {
            let address = addr(r[0].as_str().ok_or("response address")?);
            let reply = doc(&r[1]);
            events.extend(t.on_hello(&address, Ok(&reply)));
        }
        for e in list("applicationErrors") {
            events.extend(apply_error(&mut t, e)?);
        }
        if let Some(o) = phase.get("outcome") {
            check_outcome(&t, o).map_err(|e| format!("phase {i}: {e}"))?;
            if let Some(want) = o.get("events") {
                check_events(want, &events).map_err(|e| format!("phase {i}: {e}"))?;
            }
        }
        events.clear();
    }
    Ok(())
}

#[test]
fn sdam_spec() {
    let root = spec::root().join("server-discovery-and-monitoring");
    for suite in [
        "single",
        "rs",
        "sharded",
        "load-balanced",
        "errors",
        "monitoring",
    ] {
        spec::run_files(
            &format!("server-discovery-and-monitoring/{suite}"),
            &root.join(suite),
            &[],
            check,
        );
    }
}
