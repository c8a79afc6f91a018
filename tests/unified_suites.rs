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

use bson::{Bson, Document};
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

fn run_core(core: Core, suite: &str, files: &[PathBuf]) -> (Tally, Vec<String>) {
    let report = std::env::var("MAY_MONGO_UNIFIED_REPORT").unwrap_or_default();
    let server_name = common::server_name();
    let known = known_failures(server_name, suite);
    let server = std::sync::Arc::new(Server::discover(&common::uri(), core));
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
        "{suite}: {} passed, {} failed, {} skipped [{server_name}, {} core; skipped = {} by runOnRequirements + {} the server lacks (fail points, hello) + {} the driver lacks (sessions, transactions, change streams: issue 23) + {} listed known failures]",
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
    let min_passed = min_passed
        .iter()
        .find(|(server, _)| *server == common::server_name())
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
        let (tally, p) = run_core(core, suite, &files);
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

/// Every test of this suite is about Atlas Search indexes and needs a replica set or mongos:
/// none runs here, and each is counted as skipped with its reason.
#[test]
fn index_management() {
    spec_suite("index-management", "index-management", &[]);
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
    spec_suite("sessions", "sessions", &[]);
}
