//! MongoDB's CRUD unified spec tests (`../shared/specs/crud-unified/*.json`), run against the
//! real server on both cores.
//!
//! - `MAY_MONGO_UNIFIED_DIR=<dir>` runs any directory of unified-format files instead (the
//!   summary line is named after the directory).
//! - `MAY_MONGO_UNIFIED_FILE=<name.json>` runs one file of it.
//! - `MAY_MONGO_UNIFIED_REPORT=files` prints a line per file; `=tests` a line per test, with
//!   the reason of each skip and failure.
//!
//! Every test must pass, be skipped by its own `runOnRequirements`, or be listed in
//! `tests/crud_unified_known_failures.txt` with the server limitation that causes it. A listed
//! test that passes fails the run too, so the list cannot go stale.

mod common;
mod unified;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use bson::{Bson, Document};
use may_mongo::Core;

use unified::{Outcome, Server};

/// `file.json | test description | reason`, one per line (descriptions contain colons).
fn known_failures() -> HashMap<(String, String), String> {
    include_str!("crud_unified_known_failures.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, " | ");
            let file = parts.next().unwrap_or_default().to_string();
            let test = parts.next().unwrap_or_default().to_string();
            let reason = parts.next().unwrap_or_default().to_string();
            assert!(!reason.is_empty(), "known failure without a reason: {l}");
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
    skipped: usize,
    known: usize,
}

fn run_core(core: Core, dir: &std::path::Path, files: &[PathBuf]) -> Vec<String> {
    let suite = dir.file_name().unwrap().to_string_lossy().to_string();
    let report = std::env::var("MAY_MONGO_UNIFIED_REPORT").unwrap_or_default();
    let known = known_failures();
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
            // (examples/stack_use.rs, tests/crud.rs).
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
                        "{file}: {test}: passes but is listed as a known failure"
                    ));
                    "PASS (listed as known failure)".to_string()
                }
                (Outcome::Skipped(why), _) => {
                    tally.skipped += 1;
                    format!("skip ({why})")
                }
                (Outcome::Failed(e), Some(reason)) => {
                    tally.known += 1;
                    format!("known failure ({reason}): {e}")
                }
                (Outcome::Failed(e), None) => {
                    tally.failed += 1;
                    problems.push(format!("{file}: {test}: {e}"));
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
        total.known += tally.known;
    }
    if report == "files" || report == "tests" {
        for (file, t) in &per_file {
            let _ = writeln!(
                out,
                "  {file}: {} passed, {} failed, {} skipped, {} known failures",
                t.passed, t.failed, t.skipped, t.known
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{suite}: {} passed, {} failed, {} skipped [{} core; skipped = {} by runOnRequirements + {} listed known failures]",
        total.passed,
        total.failed,
        total.skipped + total.known,
        core.name(),
        total.skipped,
        total.known,
    );
    assert!(total.passed > 0, "{suite}: no test ran");
    problems
}

#[test]
fn crud_unified_spec_tests() {
    common::init();
    let dir = std::env::var_os("MAY_MONGO_UNIFIED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::spec::root().join("crud-unified"));
    let mut files = common::spec::files(&dir);
    if let Ok(only) = std::env::var("MAY_MONGO_UNIFIED_FILE") {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == only));
        assert!(!files.is_empty(), "no file {only} in {}", dir.display());
    }
    // One core after the other: the files name fixed databases and collections.
    let mut problems = run_core(Core::Coroutine, &dir, &files);
    problems.extend(run_core(Core::Threaded, &dir, &files));
    assert!(problems.is_empty(), "{problems:#?}");
}
