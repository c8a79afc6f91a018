//! MongoDB's unified-format specification suites (`../shared/specs/<suite>/*.json`), run
//! against the real test server on both cores: one `#[test]` per suite.
//!
//! Each suite prints one line per core:
//! `<suite>: N passed, N failed, N skipped [<server>, <core> core; ...]`.
//!
//! - `MAY_MONGO_UNIFIED_DIR=<dir>` runs any directory of unified-format files instead, in the
//!   `crud_unified` test (the summary line is named after the directory).
//! - `MAY_MONGO_UNIFIED_FILE=<name.json>` runs one file of each suite that has it.
//! - `MAY_MONGO_UNIFIED_REPORT=files` prints a line per file; `=tests` a line per test, with
//!   the reason of each skip and failure.
//!
//! Every test must pass, be skipped (counted and printed, with the reason: its own
//! `runOnRequirements`; a fail point or `hello` the server refuses, probed at start; or sessions,
//! transactions or change streams, which the driver does not have yet — issue 23), or be
//! listed in `tests/known_failures/<server>/<suite>.txt` with the server's own error. The list
//! is the one of the server under test (`common::server_name()`); a listed test that passes
//! fails the run too, so a list cannot go stale. A test that fails because of the driver is
//! fixed, never listed.

mod common;
mod unified;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering::SeqCst};

use bson::{Bson, Document, doc};
use may_mongo::Core;

use unified::{Outcome, Server};

/// `file.json | test description | reason`, one per line (descriptions contain colons), from
/// `tests/known_failures/<server>/<suite>.txt`; no file means no known failure.
fn known_failures(server: &str, suite: &str) -> HashMap<(String, String), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/known_failures")
        .join(server)
        .join(format!("{suite}.txt"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return HashMap::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, " | ");
            let file = parts.next().unwrap_or_default().to_string();
            let test = parts.next().unwrap_or_default().to_string();
            let reason = parts.next().unwrap_or_default().to_string();
            assert!(
                !reason.is_empty(),
                "{}: known failure without a reason: {l}",
                path.display()
            );
            ((file, test), reason)
        })
        .collect()
}

fn load(path: &PathBuf) -> Document {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match Bson::try_from(json) {
        Ok(Bson::Document(d)) => d,
        other => panic!("{}: not a document: {other:?}", path.display()),
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Ruled out by the test's own `runOnRequirements` (or `skipReason`).
    skipped: usize,
    /// Needs what the server lacks and the runner probes for (fail points, `hello`).
    server_lacks: usize,
    /// Needs what the driver does not have yet (explicit and implicit sessions,
    /// transactions, change streams: issue 23).
    driver_lacks: usize,
    known: usize,
}

/// Where a suite runs: the server's URI, and its name for reports and known-failures lists.
struct Target {
    uri: String,
    name: &'static str,
}

impl Target {
    /// The test server (FerretDB, mongo-java-server, or `MONGODB_URI`'s).
    fn test_server() -> Target {
        Target {
            uri: common::uri(),
            name: common::server_name(),
        }
    }
}

fn run_core(core: Core, suite: &str, files: &[PathBuf], target: &Target) -> (Tally, Vec<String>) {
    let report = std::env::var("MAY_MONGO_UNIFIED_REPORT").unwrap_or_default();
    let server_name = target.name;
    let known = known_failures(server_name, suite);
    let server = std::sync::Arc::new(Server::discover(&target.uri, core));
    let mut total = Tally::default();
    let mut per_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut out = std::io::stderr().lock();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let data = load(path);
        let results = match core {
            // Each file runs inside one coroutine, so that every driver call in it is made
            // the way a coroutine user makes it. The stack is sized for the runner's own
            // (deep, serde_json-heavy) code; the driver's stack needs are measured elsewhere
            // (user_tests/, examples/stack_use.rs).
            Core::Coroutine => {
                let server = server.clone();
                // SAFETY: the closure uses no thread-local storage; the stack is sized above.
                let handle = unsafe {
                    may::coroutine::Builder::new()
                        .stack_size(1 << 20)
                        .spawn(move || unified::run_file(&server, core, &data))
                };
                handle.expect("spawn").join().expect("runner coroutine")
            }
            _ => unified::run_file(&server, core, &data),
        };
        let tally = per_file.entry(file.clone()).or_default();
        for (test, outcome) in results {
            let excuse = known.get(&(file.clone(), test.clone()));
            let label = match (&outcome, excuse) {
                (Outcome::Passed, None) => {
                    tally.passed += 1;
                    "pass".to_string()
                }
                (Outcome::Passed, Some(_)) => {
                    tally.failed += 1;
                    problems.push(format!(
                        "{suite}/{file}: {test}: passes on {server_name} but is listed as a known failure"
                    ));
                    "PASS (listed as known failure)".to_string()
                }
                (Outcome::Skipped(why), _) => {
                    if why.contains("(issue 23)") {
                        tally.driver_lacks += 1;
                    } else if why.contains("this server refuses") {
                        tally.server_lacks += 1;
                    } else {
                        tally.skipped += 1;
                    }
                    format!("skip ({why})")
                }
                (Outcome::Failed(e), Some(reason)) => {
                    tally.known += 1;
                    format!("known failure ({reason}): {e}")
                }
                (Outcome::Failed(e), None) => {
                    tally.failed += 1;
                    problems.push(format!("{suite}/{file}: {test}: {e}"));
                    format!("FAIL: {e}")
                }
            };
            if report == "tests" {
                let _ = writeln!(out, "  {file}: {test}: {label}");
            }
        }
        total.passed += tally.passed;
        total.failed += tally.failed;
        total.skipped += tally.skipped;
        total.server_lacks += tally.server_lacks;
        total.driver_lacks += tally.driver_lacks;
        total.known += tally.known;
    }
    if report == "files" || report == "tests" {
        for (file, t) in &per_file {
            let _ = writeln!(
                out,
                "  {file}: {} passed, {} failed, {} skipped, {} known failures",
                t.passed,
                t.failed,
                t.skipped + t.server_lacks + t.driver_lacks,
                t.known
            );
        }
    }
    let _ = writeln!(
        out,
        "{suite}: {} passed, {} failed, {} skipped [{server_name}, {} core; skipped = {} by runOnRequirements + {} the server lacks (fail points, hello, sessions, change streams) + {} the runner lacks (withTransaction, change stream operations) + {} listed known failures]",
        total.passed,
        total.failed,
        total.skipped + total.server_lacks + total.driver_lacks + total.known,
        core.name(),
        total.skipped,
        total.server_lacks,
        total.driver_lacks,
        total.known,
    );
    (total, problems)
}

/// Runs the suite in `dir` on both cores, one after the other (the files name fixed databases
/// and collections), and fails on any unlisted failure. `min_passed` (per server name; other
/// servers: none) guards against a runner that silently skips everything: fewer passes than
/// that on either core fail the run.
fn run_suite(suite: &str, dir: &Path, min_passed: &[(&str, usize)]) {
    run_suite_on(suite, dir, min_passed, &Target::test_server());
}

fn run_suite_on(suite: &str, dir: &Path, min_passed: &[(&str, usize)], target: &Target) {
    let min_passed = min_passed
        .iter()
        .find(|(server, _)| *server == target.name)
        .map_or(0, |(_, n)| *n);
    common::init();
    // One suite at a time: suites share database names (`database0`, ...).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.is_dir() {
        panic!(
            "{suite}: the specification tests are missing: {} is not a folder \
             (put MongoDB's specification test files in ../shared/specs, or set MAY_MONGO_SPECS)",
            dir.display(),
        );
    }
    let mut files = common::spec::files(dir);
    if let Ok(only) = std::env::var("MAY_MONGO_UNIFIED_FILE") {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == only));
        if files.is_empty() {
            eprintln!("{suite}: no file {only}; nothing run");
            return;
        }
    }
    let mut problems = Vec::new();
    for core in [Core::Coroutine, Core::Threaded] {
        let (tally, p) = run_core(core, suite, &files, target);
        problems.extend(p);
        if std::env::var("MAY_MONGO_UNIFIED_FILE").is_err() {
            assert!(
                tally.passed >= min_passed,
                "{suite}: only {} tests passed on the {} core (at least {min_passed} expected)",
                tally.passed,
                core.name()
            );
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs `../shared/specs/<path>` under the name `suite`.
fn spec_suite(suite: &str, path: &str, min_passed: &[(&str, usize)]) {
    run_suite(suite, &common::spec::root().join(path), min_passed);
}

#[test]
fn crud_unified() {
    match std::env::var_os("MAY_MONGO_UNIFIED_DIR").map(PathBuf::from) {
        Some(dir) => {
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            run_suite(&name, &dir, &[])
        }
        None => spec_suite(
            "crud-unified",
            "crud-unified",
            &[("ferretdb", 120), ("mongo-java-server", 120)],
        ),
    }
}

#[test]
fn gridfs() {
    spec_suite(
        "gridfs",
        "gridfs",
        &[("ferretdb", 24), ("mongo-java-server", 24)],
    );
}

#[test]
fn collection_management() {
    spec_suite(
        "collection-management",
        "collection-management",
        &[("ferretdb", 3), ("mongo-java-server", 2)],
    );
}

/// Every test of this suite is about Atlas Search indexes, on a replica set or mongos: no
/// server here has them, and each test expects the error a mongod without Atlas Search gives
/// (one naming Atlas). So the suite runs against a scripted one-member replica set that
/// answers as such a mongod 7.0.5 does — the search index commands and `$listSearchIndexes`
/// with that error, everything the runner needs to start (`hello`, `buildInfo`) as a server
/// does, anything else `CommandNotFound` — and checks what the driver sends. On the real test
/// server the suite is skipped by its `runOnRequirements` (replica set), and counted so.
#[test]
fn index_management() {
    spec_suite("index-management", "index-management", &[]);
    let dir = common::spec::root().join("index-management");
    let port = Arc::new(AtomicU16::new(0));
    let server = {
        let port = port.clone();
        common::mock::MockServer::start(move |req, _| {
            common::mock::Action::Reply(mongod_without_atlas_search(req, port.load(SeqCst)))
        })
    };
    port.store(server.port, SeqCst);
    let target = Target {
        uri: server.uri(),
        name: "scripted mongod 7.0.5 without Atlas Search",
    };
    run_suite_on("index-management", &dir, &[(target.name, 17)], &target);
}

/// The replies of a one-member replica set of mongod 7.0.5 without Atlas Search.
fn mongod_without_atlas_search(req: &common::mock::Request, port: u16) -> Document {
    let me = format!("127.0.0.1:{port}");
    let listing = req
        .body
        .get_array("pipeline")
        .ok()
        .and_then(|p| p.first())
        .and_then(Bson::as_document)
        .is_some_and(|stage| stage.contains_key("$listSearchIndexes"));
    match req.command.as_str() {
        "hello" | "isMaster" | "ismaster" => {
            let mut reply = common::mock::hello_reply();
            reply.insert("setName", "rs0");
            reply.insert("hosts", vec![me.clone()]);
            reply.insert("me", me);
            reply.insert("secondary", false);
            reply.insert("logicalSessionTimeoutMinutes", 30);
            reply
        }
        "buildInfo" => doc! { "version": "7.0.5", "versionArray": [7, 0, 5, 0], "ok": 1.0 },
        "ping" | "endSessions" | "killCursors" => doc! { "ok": 1.0 },
        "createSearchIndexes" | "dropSearchIndex" | "updateSearchIndex" => atlas_search_error(),
        "aggregate" if listing => atlas_search_error(),
        other => doc! {
            "ok": 0.0, "code": 59, "codeName": "CommandNotFound",
            "errmsg": format!("no such command: '{other}'"),
        },
    }
}

/// What mongod 7.0 answers a search index command when Atlas Search is not configured.
fn atlas_search_error() -> Document {
    doc! {
        "ok": 0.0,
        "errmsg": "Using Atlas Search Database Commands and the $listSearchIndexes aggregation \
                   stage requires additional configuration. Please connect to Atlas or an \
                   AtlasCLI local deployment to enable.",
        "code": 31082,
        "codeName": "SearchNotEnabled",
    }
}

#[test]
fn run_command() {
    spec_suite(
        "run-command",
        "run-command/unified",
        &[("ferretdb", 6), ("mongo-java-server", 5)],
    );
}

#[test]
fn command_monitoring() {
    spec_suite(
        "command-monitoring",
        "command-logging-and-monitoring/monitoring",
        &[("ferretdb", 20), ("mongo-java-server", 20)],
    );
}

#[test]
fn versioned_api() {
    spec_suite("versioned-api", "versioned-api", &[("ferretdb", 30)]);
}

#[test]
fn retryable_reads() {
    spec_suite(
        "retryable-reads",
        "retryable-reads/unified",
        &[("ferretdb", 15), ("mongo-java-server", 15)],
    );
}

/// Every test here needs a replica set or mongos (retryable writes need one): counted as
/// skipped with the reason.
#[test]
fn retryable_writes() {
    spec_suite("retryable-writes", "retryable-writes/unified", &[]);
}

#[test]
fn sessions() {
    spec_suite("sessions", "sessions", &[("ferretdb", 2)]);
}

/// Every test needs a replica set or mongos (or fail points): counted as skipped with the
/// reason. The driver's side of the protocol is tested in tests/transactions.rs.
#[test]
fn transactions() {
    spec_suite("transactions", "transactions/unified", &[]);
}

#[test]
fn transactions_convenient_api() {
    spec_suite(
        "transactions-convenient-api",
        "transactions-convenient-api/unified",
        &[],
    );
}

/// FerretDB 1.24 and mongo-java-server refuse `$changeStream`: the tests that need a replica
/// set are skipped by their requirements, the rest with the server's refusal. The driver's
/// side is tested in tests/change_streams.rs.
#[test]
fn change_streams() {
    spec_suite("change-streams", "change-streams/unified", &[]);
}

/// Every test needs a replica set or mongos: the rules are tested in tests/sessions.rs.
#[test]
fn causal_consistency() {
    spec_suite("causal-consistency", "causal-consistency", &[]);
}
