//! MongoDB's server-selection (server_selection, rtt, in_window) and max-staleness spec tests,
//! run against the sans-IO selection logic in `may_mongo::topology`.
//!
//! Reads `$MAY_MONGO_SPECS` (default `../shared/specs`); any directory of files in the same
//! format works. `server-selection/logging` is unified-format and needs a server: not run here.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::spec;
use may_mongo::ServerAddress;
use may_mongo::ServerType;
use may_mongo::topology::{
    Operation, ReadMode, ReadPreference, RoundTripTime, ServerDescription, TopologyDescription,
    TopologyType, choose_by_operation_count, in_latency_window, suitable_servers,
};
use serde_json::Value;

fn server(v: &Value) -> Result<ServerDescription, String> {
    let address =
        ServerAddress::parse(v["address"].as_str().ok_or("address")?).map_err(|e| e.to_string())?;
    let server_type = ServerType::from_spec_name(v["type"].as_str().ok_or("type")?)
        .ok_or_else(|| format!("unknown server type {}", v["type"]))?;
    let tags = v
        .get("tags")
        .and_then(Value::as_object)
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let last_write = v
        .get("lastWrite")
        .and_then(|w| w.get("lastWriteDate"))
        .map(|d| {
            d.get("$numberLong")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .or_else(|| d.as_i64())
                .unwrap_or(0)
        });
    Ok(ServerDescription {
        address,
        server_type,
        avg_rtt: v
            .get("avg_rtt_ms")
            .and_then(Value::as_f64)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        tags,
        last_update_time_ms: v.get("lastUpdateTime").and_then(Value::as_i64).unwrap_or(0),
        last_write_date_ms: last_write,
        max_wire_version: v
            .get("maxWireVersion")
            .and_then(Value::as_i64)
            .unwrap_or(21) as i32,
    })
}

fn topology(test: &Value) -> Result<TopologyDescription, String> {
    let t = &test["topology_description"];
    Ok(TopologyDescription {
        topology_type: TopologyType::from_spec_name(t["type"].as_str().ok_or("type")?)
            .ok_or_else(|| format!("unknown topology type {}", t["type"]))?,
        servers: t["servers"]
            .as_array()
            .ok_or("servers")?
            .iter()
            .map(server)
            .collect::<Result<_, _>>()?,
        heartbeat_frequency: Duration::from_millis(
            test.get("heartbeatFrequencyMS")
                .and_then(Value::as_u64)
                .unwrap_or(10_000),
        ),
        local_threshold: Duration::from_millis(15),
    })
}

fn read_preference(v: Option<&Value>) -> Result<ReadPreference, String> {
    let Some(v) = v else {
        return Ok(ReadPreference::default());
    };
    let mode = match v.get("mode").and_then(Value::as_str) {
        Some(m) => ReadMode::from_name(m).ok_or_else(|| format!("unknown mode {m}"))?,
        None => ReadMode::Primary,
    };
    let tag_sets = v
        .get("tag_sets")
        .and_then(Value::as_array)
        .map(|sets| {
            sets.iter()
                .map(|set| {
                    set.as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.as_str().unwrap_or_default().to_string())
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let max_staleness = match v.get("maxStalenessSeconds").and_then(Value::as_i64) {
        None | Some(-1) => None,
        Some(n) if n < 0 => return Err(format!("maxStalenessSeconds {n}")),
        Some(n) => Some(Duration::from_secs(n as u64)),
    };
    Ok(ReadPreference {
        mode,
        tag_sets,
        max_staleness,
        hedge: None,
    })
}

fn addresses<'a>(servers: impl IntoIterator<Item = &'a ServerDescription>) -> BTreeSet<String> {
    servers.into_iter().map(|s| s.address.to_string()).collect()
}

fn expected_addresses(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["address"].as_str())
                .map(|s| ServerAddress::parse(s).unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn check_selection(test: &Value) -> Result<(), String> {
    let topo = topology(test)?;
    let rp = read_preference(test.get("read_preference"));
    let write = test.get("operation").and_then(Value::as_str) == Some("write");
    let deprioritized: Vec<ServerAddress> = test
        .get("deprioritized_servers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| ServerAddress::parse(s["address"].as_str()?).ok())
                .collect()
        })
        .unwrap_or_default();
    let expect_error = test.get("error").and_then(Value::as_bool) == Some(true);
    let result = rp.and_then(|rp| {
        let op = if write {
            Operation::Write
        } else {
            Operation::Read(&rp)
        };
        suitable_servers(&topo, op, &deprioritized)
            .map(|s| s.into_iter().cloned().collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    });
    let suitable = match (expect_error, result) {
        (true, Err(_)) => return Ok(()),
        (true, Ok(s)) => return Err(format!("expected an error, selected {:?}", addresses(&s))),
        (false, Err(e)) => return Err(format!("unexpected error: {e}")),
        (false, Ok(s)) => s,
    };
    if let Some(expected) = test.get("suitable_servers") {
        let (want, got) = (expected_addresses(expected), addresses(&suitable));
        if want != got {
            return Err(format!("suitable: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(expected) = test.get("in_latency_window") {
        let refs: Vec<&ServerDescription> = suitable.iter().collect();
        let window = in_latency_window(&refs, topo.local_threshold);
        let (want, got) = (expected_addresses(expected), addresses(window));
        if want != got {
            return Err(format!("in window: expected {want:?}, got {got:?}"));
        }
    }
    Ok(())
}

fn check_rtt(test: &Value) -> Result<(), String> {
    let ms = |v: &Value| v.as_f64().map(|m| Duration::from_secs_f64(m / 1000.0));
    let mut rtt = RoundTripTime::with_average(ms(&test["avg_rtt_ms"]));
    let new = rtt.add_sample(ms(&test["new_rtt_ms"]).ok_or("new_rtt_ms")?);
    let want = test["new_avg_rtt"].as_f64().ok_or("new_avg_rtt")?;
    let got = new.as_secs_f64() * 1000.0;
    if (got - want).abs() > 1e-6 {
        return Err(format!("expected {want}, got {got}"));
    }
    Ok(())
}

fn check_in_window(test: &Value) -> Result<(), String> {
    let topo = topology(test)?;
    let counts: HashMap<String, usize> = test["mocked_topology_state"]
        .as_array()
        .ok_or("mocked_topology_state")?
        .iter()
        .map(|s| {
            (
                ServerAddress::parse(s["address"].as_str().unwrap())
                    .unwrap()
                    .to_string(),
                s["operation_count"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let rp = ReadPreference {
        mode: ReadMode::Nearest,
        ..Default::default()
    };
    let suitable = suitable_servers(&topo, Operation::Read(&rp), &[]).map_err(|e| e.to_string())?;
    let window = in_latency_window(&suitable, topo.local_threshold);
    let iterations = test["iterations"].as_u64().ok_or("iterations")? as usize;
    // A small deterministic generator: the spec's tolerances allow for sampling noise.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut chosen: HashMap<String, usize> = HashMap::new();
    for _ in 0..iterations {
        let s = choose_by_operation_count(&window, |a| counts[&a.to_string()], &mut random)
            .ok_or("nothing selected")?;
        *chosen.entry(s.address.to_string()).or_default() += 1;
    }
    let outcome = &test["outcome"];
    let tolerance = outcome["tolerance"].as_f64().unwrap_or(0.0);
    for (address, expected) in outcome["expected_frequencies"]
        .as_object()
        .ok_or("frequencies")?
    {
        let key = ServerAddress::parse(address).unwrap().to_string();
        let got = *chosen.get(&key).unwrap_or(&0) as f64 / iterations as f64;
        let want = expected.as_f64().unwrap();
        if (got - want).abs() > tolerance + 1e-9 {
            return Err(format!(
                "{address}: frequency {got}, expected {want} ± {tolerance}"
            ));
        }
    }
    Ok(())
}

#[test]
fn server_selection_spec() {
    let dir = spec::root().join("server-selection/server_selection");
    spec::run_files(
        "server-selection/server_selection",
        &dir,
        &[],
        check_selection,
    );
}

#[test]
fn server_selection_rtt_spec() {
    let dir = spec::root().join("server-selection/rtt");
    spec::run_files("server-selection/rtt", &dir, &[], check_rtt);
}

#[test]
fn server_selection_in_window_spec() {
    let dir = spec::root().join("server-selection/in_window");
    spec::run_files("server-selection/in_window", &dir, &[], check_in_window);
}

#[test]
fn max_staleness_spec() {
    spec::run_files(
        "max-staleness",
        &spec::root().join("max-staleness"),
        &[],
        check_selection,
    );
}
