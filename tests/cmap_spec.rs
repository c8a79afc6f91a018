//! MongoDB's CMAP spec tests, unit style: the pool driven over a mock connection.
//!
//! Each JSON file under `<specs>/cmap/cmap-format/` scripts operations on one pool — check
//! out and in, clear, close, ready, start "threads" — and lists the events that must follow.
//! The spec's threads are played by may coroutines, each fed its operations over a may channel,
//! so the pool's waiting is exercised exactly as coroutine callers exercise it.
//!
//! Files with `"style": "integration"` need a server with `failCommand` fail points (FerretDB
//! has none) and are skipped with that reason. Any other file that cannot pass must be listed,
//! with its reason, in `tests/cmap_exceptions.txt`.
//!
//! The spec data is read from `$MAY_MONGO_SPECS` (default: `../shared/specs` beside the
//! repository), never copied here.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use may_mongo::pool::{
    CmapEvent, ConnectionCheckoutFailedReason, ConnectionClosedReason, Establish, EventHandler,
    Pool, PoolConnection, PoolOptions, Pooled,
};
use may_mongo::{ErrorKind, ServerAddress};
use serde_json::{Value, json};

/// A connection that is nothing but itself: the pool is what is under test.
struct MockConn;

impl PoolConnection for MockConn {
    fn is_broken(&self) -> bool {
        false
    }
    fn close(self) {}
}

struct MockEstablish;

impl Establish for MockEstablish {
    type Conn = MockConn;
    fn establish(&self, _: Option<std::time::Instant>) -> may_mongo::Result<MockConn> {
        Ok(MockConn)
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<CmapEvent>>);

impl Events {
    fn count(&self, name: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name() == name)
            .count()
    }
}

fn specs_dir() -> PathBuf {
    let dir = std::env::var_os("MAY_MONGO_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"));
    let cmap = dir.join("cmap/cmap-format");
    if !cmap.is_dir() {
        panic!(
            "\n\n*** CMAP spec tests not found at {} ***\n\
             Put MongoDB's specification test data beside the repository (../shared/specs) or\n\
             set MAY_MONGO_SPECS to its folder. Refusing to pass without running them.\n",
            cmap.display()
        );
    }
    cmap
}

/// What a spec test's event looks like in JSON, from ours.
fn event_json(e: &CmapEvent) -> Value {
    let mut v = json!({ "type": e.name(), "address": "mock:27017" });
    if let Some(id) = e.connection_id() {
        v["connectionId"] = json!(id);
    }
    match e {
        CmapEvent::PoolCreated(e) => {
            let options = e.options.clone().unwrap_or_default();
            let mut o = json!({
                "maxPoolSize": options.max_pool_size,
                "minPoolSize": options.min_pool_size,
            });
            if let Some(t) = options.max_idle_time {
                o["maxIdleTimeMS"] = json!(t.as_millis() as u64);
            }
            if let Some(t) = options.wait_queue_timeout {
                o["waitQueueTimeoutMS"] = json!(t.as_millis() as u64);
            }
            v["options"] = o;
        }
        CmapEvent::PoolCleared(e) => {
            v["interruptInUseConnections"] = json!(e.interrupt_in_use_connections);
        }
        CmapEvent::ConnectionClosed(e) => {
            v["reason"] = json!(match e.reason {
                ConnectionClosedReason::Stale => "stale",
                ConnectionClosedReason::Idle => "idle",
                ConnectionClosedReason::Error => "error",
                ConnectionClosedReason::PoolClosed => "poolClosed",
                other => panic!("unexpected reason {other:?}"),
            });
        }
        CmapEvent::ConnectionCheckoutFailed(e) => {
            v["reason"] = json!(match e.reason {
                ConnectionCheckoutFailedReason::PoolClosed => "poolClosed",
                ConnectionCheckoutFailedReason::Timeout => "timeout",
                ConnectionCheckoutFailedReason::ConnectionError => "connectionError",
                other => panic!("unexpected reason {other:?}"),
            });
            v["duration"] = json!(e.duration.as_millis() as u64);
        }
        CmapEvent::ConnectionCheckedOut(e) => {
            v["duration"] = json!(e.duration.as_millis() as u64);
        }
        CmapEvent::ConnectionReady(e) => {
            v["duration"] = json!(e.duration.as_millis() as u64);
        }
        _ => {}
    }
    v
}

/// The spec's matching rule: 42 means "present, any value"; objects match field by field.
fn matches(expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::Number(n), _) if n.as_i64() == Some(42) => match actual {
            Value::Null => Err("missing".into()),
            _ => Ok(()),
        },
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                let av = a.get(k).unwrap_or(&Value::Null);
                matches(ev, av).map_err(|m| format!("{k}: {m} (expected {ev}, got {av})"))?;
            }
            Ok(())
        }
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("expected {e}, got {a}")),
    }
}

type Pooled_ = Pooled<MockConn>;

struct Run {
    pool: Arc<Pool<MockEstablish>>,
    events: Arc<Events>,
    labels: Arc<Mutex<HashMap<String, Pooled_>>>,
    main_errors: Vec<may_mongo::Error>,
    thread_errors: Arc<Mutex<Vec<may_mongo::Error>>>,
    threads: HashMap<String, may::sync::mpsc::Sender<ThreadOp>>,
}

enum ThreadOp {
    CheckOut(Option<String>),
    Sync(may::sync::mpsc::Sender<()>),
}

fn check_out(
    pool: &Pool<MockEstablish>,
    labels: &Mutex<HashMap<String, Pooled_>>,
    label: Option<String>,
) -> may_mongo::Result<()> {
    let conn = pool.check_out()?;
    let mut labels = labels.lock().unwrap();
    // Unlabelled connections stay checked out for the rest of the test, under a name no
    // operation refers to.
    let label = label.unwrap_or_else(|| format!("(unlabelled {})", labels.len()));
    labels.insert(label, conn);
    Ok(())
}

impl Run {
    fn op(&mut self, op: &Value) -> Result<(), String> {
        let name = op["name"].as_str().unwrap_or_default();
        match name {
            "start" => {
                let target = op["target"].as_str().unwrap().to_string();
                let (tx, rx) = may::sync::mpsc::channel::<ThreadOp>();
                let (pool, labels, errors) = (
                    self.pool.clone(),
                    self.labels.clone(),
                    self.thread_errors.clone(),
                );
                may::go!(move || {
                    while let Ok(op) = rx.recv() {
                        match op {
                            ThreadOp::CheckOut(label) => {
                                if let Err(e) = check_out(&pool, &labels, label) {
                                    errors.lock().unwrap().push(e);
                                }
                            }
                            ThreadOp::Sync(ack) => {
                                let _ = ack.send(());
                            }
                        }
                    }
                });
                self.threads.insert(target, tx);
            }
            "checkOut" => {
                let label = op["label"].as_str().map(str::to_string);
                match op["thread"].as_str() {
                    Some(t) => self.threads[t]
                        .send(ThreadOp::CheckOut(label))
                        .map_err(|_| format!("thread {t} gone"))?,
                    None => {
                        if let Err(e) = check_out(&self.pool, &self.labels, label) {
                            self.main_errors.push(e);
                        }
                    }
                }
            }
            "checkIn" => {
                let label = op["connection"].as_str().unwrap();
                let conn = self
                    .labels
                    .lock()
                    .unwrap()
                    .remove(label)
                    .ok_or_else(|| format!("no connection labelled {label}"))?;
                self.pool.check_in(conn);
            }
            "wait" => std::thread::sleep(Duration::from_millis(op["ms"].as_u64().unwrap())),
            "waitForThread" => {
                let t = op["target"].as_str().unwrap();
                let (ack_tx, ack_rx) = may::sync::mpsc::channel();
                self.threads[t]
                    .send(ThreadOp::Sync(ack_tx))
                    .map_err(|_| format!("thread {t} gone"))?;
                ack_rx
                    .recv_timeout(Duration::from_secs(10))
                    .map_err(|_| format!("thread {t} did not finish within 10 s"))?;
            }
            "waitForEvent" => {
                let event = op["event"].as_str().unwrap();
                let count = op["count"].as_u64().unwrap() as usize;
                let timeout = Duration::from_millis(op["timeout"].as_u64().unwrap_or(10_000));
                let started = Instant::now();
                while self.events.count(event) < count {
                    if started.elapsed() > timeout {
                        return Err(format!(
                            "waited {timeout:?} for {count} {event}, saw {}",
                            self.events.count(event)
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            "clear" => self.pool.clear(),
            "close" => self.pool.close(),
            "ready" => self.pool.ready(),
            other => return Err(format!("unknown operation {other}")),
        }
        Ok(())
    }
}

fn pool_options(v: &Value) -> PoolOptions {
    let ms = |k: &str| v.get(k).and_then(Value::as_u64).map(Duration::from_millis);
    let mut o = PoolOptions::default();
    if let Some(n) = v.get("maxPoolSize").and_then(Value::as_u64) {
        o.max_pool_size = n as usize;
    }
    if let Some(n) = v.get("minPoolSize").and_then(Value::as_u64) {
        o.min_pool_size = n as usize;
    }
    if let Some(n) = v.get("maxConnecting").and_then(Value::as_u64) {
        o.max_connecting = n as usize;
    }
    o.max_idle_time = ms("maxIdleTimeMS");
    o.wait_queue_timeout = ms("waitQueueTimeoutMS");
    match v.get("backgroundThreadIntervalMS").and_then(Value::as_i64) {
        Some(n) if n <= 0 => o.background_interval = None,
        Some(n) => o.background_interval = Some(Duration::from_millis(n as u64)),
        None => {}
    }
    o
}

fn error_matches(expected: &Value, e: &may_mongo::Error) -> bool {
    matches!(
        (expected["type"].as_str(), &*e.kind),
        (
            Some("WaitQueueTimeoutError"),
            ErrorKind::WaitQueueTimeout { .. }
        ) | (Some("PoolClosedError"), ErrorKind::PoolClosed { .. })
            | (
                Some("PoolClearedError"),
                ErrorKind::ConnectionPoolCleared { .. }
            )
    )
}

/// Runs one spec file; Err describes the first mismatch.
fn run_test(test: &Value) -> Result<(), String> {
    let events = Arc::new(Events::default());
    let recorder = events.clone();
    let handler = EventHandler::callback(move |e| recorder.0.lock().unwrap().push(e));
    let pool = Pool::new(
        ServerAddress::parse("mock:27017").unwrap(),
        pool_options(test.get("poolOptions").unwrap_or(&json!({}))),
        may_mongo::Core::Coroutine,
        MockEstablish,
        Some(handler),
    );
    let mut run = Run {
        pool: pool.clone(),
        events: events.clone(),
        labels: Default::default(),
        main_errors: Vec::new(),
        thread_errors: Default::default(),
        threads: HashMap::new(),
    };
    let mut failure = None;
    for op in test["operations"].as_array().unwrap() {
        if let Err(e) = run.op(op) {
            failure = Some(format!("operation {op}: {e}"));
            break;
        }
    }
    // Let every thread finish what it was given before judging.
    let names: Vec<String> = run.threads.keys().cloned().collect();
    for t in names {
        let _ = run.op(&json!({ "name": "waitForThread", "target": t }));
    }
    pool.close();
    if let Some(f) = failure {
        return Err(f);
    }

    let thread_errors = std::mem::take(&mut *run.thread_errors.lock().unwrap());
    match test.get("error") {
        Some(expected) => {
            let all: Vec<_> = run.main_errors.iter().chain(thread_errors.iter()).collect();
            if !all.iter().any(|e| error_matches(expected, e)) {
                return Err(format!("expected error {expected}, got {all:?}"));
            }
        }
        None => {
            if let Some(e) = run.main_errors.first() {
                return Err(format!("unexpected error: {e}"));
            }
        }
    }

    let ignore: Vec<&str> = test
        .get("ignore")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let actual: Vec<Value> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| !ignore.contains(&e.name()))
        .map(event_json)
        .collect();
    let expected = test["events"].as_array().unwrap();
    for (i, exp) in expected.iter().enumerate() {
        let Some(act) = actual.get(i) else {
            return Err(format!(
                "event {i}: expected {exp}, but only {} events were seen: {actual:?}",
                actual.len()
            ));
        };
        matches(exp, act).map_err(|m| format!("event {i}: {m}\n  all events: {actual:?}"))?;
    }
    Ok(())
}

#[test]
fn cmap_unit_spec_tests() {
    common::init();
    let dir = specs_dir();
    let exceptions_text = include_str!("cmap_exceptions.txt");
    let exceptions: HashMap<&str, &str> = exceptions_text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(f, why)| (f.trim(), why.trim()))
        .collect();

    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut surprises = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let test: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        if test["style"] == "integration" {
            println!(
                "skip  {name}: integration style (needs failCommand fail points; FerretDB has none)"
            );
            skipped += 1;
            continue;
        }
        let result = run_test(&test);
        match (result, exceptions.get(name)) {
            (Ok(()), None) => {
                println!("pass  {name}");
                passed += 1;
            }
            (Ok(()), Some(_)) => {
                println!(
                    "pass  {name} (listed as an exception: remove it from cmap_exceptions.txt)"
                );
                passed += 1;
                surprises.push(format!("{name} passes but is listed as an exception"));
            }
            (Err(e), Some(why)) => {
                println!(
                    "skip  {name}: {why} (fails: {})",
                    e.lines().next().unwrap_or("")
                );
                skipped += 1;
            }
            (Err(e), None) => {
                println!("FAIL  {name}: {}\n      {e}", test["description"]);
                failed += 1;
                surprises.push(format!("{name}: {e}"));
            }
        }
    }
    // Written to stderr directly, past the test harness's output capture, so that the summary
    // shows in every run's log.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\ncmap: {passed} passed, {failed} failed, {skipped} skipped"
    );
    assert!(passed > 0, "no CMAP spec test ran");
    assert!(surprises.is_empty(), "{surprises:#?}");
}
