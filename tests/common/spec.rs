//! Shared support for the spec-test runners: where the data is, which tests are excused, and
//! the summary line.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The specs root: `$MAY_MONGO_SPECS`, else `../shared/specs` beside the repository. Missing
/// data fails loudly rather than passing without running.
pub fn root() -> PathBuf {
    let root = std::env::var_os("MAY_MONGO_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/specs"));
    assert!(
        root.is_dir(),
        "\n\n*** MongoDB spec test data not found at {} ***\n\
         Put it beside the repository (../shared/specs) or set MAY_MONGO_SPECS.\n",
        root.display()
    );
    root
}

/// `tests/spec_exceptions.txt`: `suite/file.json: test description: reason`.
pub fn exceptions() -> HashMap<(String, String), String> {
    include_str!("../spec_exceptions.txt")
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

/// The JSON files of a suite directory, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no spec files in {}", dir.display());
    files
}

/// Runs `check` on every test of every file in `dir`, honouring the exceptions, prints
/// `<suite>: N passed, N failed, N skipped` past the harness's capture, and fails on any
/// unexcused failure (or on an excused test that passes: its entry must go).
pub fn run_suite(
    suite: &str,
    dir: &Path,
    only: Option<&str>,
    check: impl Fn(&serde_json::Value) -> Result<(), String>,
) {
    let exceptions = exceptions();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut problems = Vec::new();
    for path in files(dir) {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if only.is_some_and(|o| o != file) {
            continue;
        }
        let key_file = format!("{suite}/{file}");
        let data: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for test in data["tests"].as_array().unwrap() {
            let description = test["description"].as_str().unwrap_or("").to_string();
            let excused = exceptions.get(&(key_file.clone(), description.clone()));
            match (check(test), excused) {
                (Ok(()), None) => passed += 1,
                (Ok(()), Some(_)) => {
                    passed += 1;
                    problems.push(format!("{key_file}: {description}: passes but is excused"));
                }
                (Err(_), Some(_)) => skipped += 1,
                (Err(e), None) => {
                    failed += 1;
                    problems.push(format!("{key_file}: {description}: {e}"));
                }
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{suite}: {passed} passed, {failed} failed, {skipped} skipped"
    );
    assert!(problems.is_empty(), "{suite}: {problems:#?}");
    assert!(passed > 0, "{suite}: no test ran");
}

/// Every JSON file below `dir`, recursively, sorted.
pub fn files_recursive(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no spec files below {}", dir.display());
    out
}

/// Like [`run_suite`] for suites with one test per file (found recursively below `dir`,
/// skipping folders named in `skip_dirs`). Exceptions are keyed `suite/relative/path.json:
/// (file): reason`.
pub fn run_files(
    suite: &str,
    dir: &Path,
    skip_dirs: &[&str],
    check: impl Fn(&serde_json::Value) -> Result<(), String>,
) {
    let exceptions = exceptions();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let mut problems = Vec::new();
    for path in files_recursive(dir) {
        let rel = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if skip_dirs.iter().any(|s| rel.starts_with(&format!("{s}/"))) {
            continue;
        }
        let key = (format!("{suite}/{rel}"), "(file)".to_string());
        let test: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        match (check(&test), exceptions.get(&key)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => {
                passed += 1;
                problems.push(format!("{}: passes but is excused", key.0));
            }
            (Err(_), Some(_)) => skipped += 1,
            (Err(e), None) => {
                failed += 1;
                problems.push(format!("{}: {e}", key.0));
            }
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{suite}: {passed} passed, {failed} failed, {skipped} skipped"
    );
    assert!(problems.is_empty(), "{suite}: {problems:#?}");
    assert!(passed > 0, "{suite}: no test ran");
}
