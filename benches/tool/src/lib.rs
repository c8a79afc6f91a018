//! `may_mongo_bench`: the comparative benchmark (issues 8 and 20).
//!
//! ```text
//! cargo run --release --manifest-path benches/tool/Cargo.toml --bin may_mongo_bench -- [OPTIONS]
//! ```
//!
//! Two binaries are built from this library, one per allocator: `may_mongo_bench` with the
//! system allocator (glibc malloc) and `may_mongo_bench_mimalloc` with mimalloc. A point runs
//! in a child process of the binary with its allocator, so one run measures every contender
//! with both, side by side.
//!
//! It measures four workloads (find_one, insert_one, find many, insert_many) at 1 to 10,000
//! concurrent tasks for eight contenders — this driver's two cores, its async API on each
//! core, the official `mongodb` crate async and sync, the coroutine core handing back the raw
//! reply, and a raw loopback ping-pong of the same bytes — then MongoDB's DriverBench tasks,
//! and writes a markdown report with SVG charts into the folder given by `--out`.
//!
//! Every point runs in a child process of its own (`point`), so its peak RSS and its
//! connections are its own; runs are interleaved (round 1 of every point, then round 2, ...)
//! so that drift on a noisy machine spreads over every contender.
//!
//! Options (defaults in brackets):
//! - `--out DIR` [bench-report]: where results.json, report.md and the charts go.
//! - `--server canned|embedded|uri` [canned]: the tool's canned-reply server (driver
//!   overhead only), the embedded FerretDB, or `$MONGODB_URI`.
//! - `--seconds N` [2]: the measured window of each point.
//! - `--runs N` [3]: interleaved runs of every point; the report quotes the median.
//! - `--levels 1,16,...` [1,16,256,1024,10000], `--workloads`, `--contenders`: a subset.
//! - `--allocators glibc,mimalloc` [both]: which allocators' binaries run the points.
//! - `--driverbench-seconds N` [4]: time per DriverBench task and contender (0 skips it).
//! - `--driverbench-tasks "Run command,Find one by ID"`: a subset, by the spec's names.
//! - `--no-matrix`: DriverBench only.
//! - `--profile`: run each missed target's point again under `perf record` and put the
//!   hottest functions in the report.
//! - `render DIR`: rewrite DIR's report and charts from its results.json.

mod canned;
mod data;
mod driverbench;
mod matrix;
mod official;
mod ours;
mod pingpong;
mod point;
mod procfs;
mod report;
mod workload;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use workload::{Contender, Workload};

/// The allocator a binary of this tool links: each binary names its own when it calls
/// [`main`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// The system allocator: glibc malloc, what a new Rust program gets.
    Glibc,
    /// mimalloc, a thread-caching allocator.
    Mimalloc,
}

impl Allocator {
    pub const ALL: [Allocator; 2] = [Allocator::Glibc, Allocator::Mimalloc];

    pub fn name(self) -> &'static str {
        match self {
            Allocator::Glibc => "glibc",
            Allocator::Mimalloc => "mimalloc",
        }
    }

    pub fn parse(s: &str) -> Option<Allocator> {
        Allocator::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The binary of this tool built with this allocator.
    pub fn binary(self) -> &'static str {
        match self {
            Allocator::Glibc => "may_mongo_bench",
            Allocator::Mimalloc => "may_mongo_bench_mimalloc",
        }
    }

    /// That binary's path: beside the running one.
    pub fn exe(self) -> Result<PathBuf, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let path = me.with_file_name(self.binary());
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} is missing: build both binaries (cargo build --release --manifest-path \
                 benches/tool/Cargo.toml)",
                path.display()
            ))
        }
    }
}

/// `--name value` from the command line.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn list<T>(args: &[String], name: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    flag(args, name).map(|l| {
        l.split(',')
            .map(|s| parse(s.trim()).unwrap_or_else(|| fail(&format!("{name}: unknown {s:?}"))))
            .collect()
    })
}

fn fail(msg: &str) -> ! {
    eprintln!("may_mongo_bench: {msg}");
    std::process::exit(2)
}

/// The tool's entry point; `allocator` is the one the calling binary links.
pub fn main(allocator: Allocator) {
    let args: Vec<String> = std::env::args().collect();
    may::config().set_worker_pin(false);
    match args.get(1).map(String::as_str) {
        Some("serve-canned") => {
            let data = data::Data {
                dir: PathBuf::from(args.get(2).expect("serve-canned DATA_DIR")),
            };
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("{}", listener.local_addr().unwrap().port());
            canned::serve(listener, &data);
        }
        Some("point") => {
            let need = |n: &str| flag(&args, n).unwrap_or_else(|| fail(&format!("point: {n}")));
            // The matrix starts each point in the binary of the allocator it measures.
            if need("--allocator") != allocator.name() {
                fail(&format!(
                    "this binary links {}, not {}",
                    allocator.name(),
                    need("--allocator")
                ));
            }
            let spec = point::Spec {
                contender: Contender::parse(&need("--contender")).expect("a contender"),
                workload: Workload::parse(&need("--workload")).expect("a workload"),
                tasks: need("--tasks").parse().expect("--tasks N"),
                window: Duration::from_secs_f64(need("--seconds").parse().expect("--seconds")),
                uri: need("--uri"),
                port: need("--port").parse().expect("--port"),
                data: data::Data {
                    dir: PathBuf::from(need("--data")),
                },
            };
            let outcome = point::run(&spec);
            println!("{}", serde_json::to_string(&outcome).unwrap());
        }
        Some("driverbench") => {
            // One allocator's DriverBench, run by the matrix in this binary: JSON on stdout.
            let need =
                |n: &str| flag(&args, n).unwrap_or_else(|| fail(&format!("driverbench: {n}")));
            let data = data::Data {
                dir: PathBuf::from(need("--data")),
            };
            let only = list(&args, "--tasks", |s| Some(s.to_string()));
            let seconds: f64 = need("--seconds").parse().expect("--seconds N");
            let rounds: usize = need("--rounds").parse().expect("--rounds N");
            match driverbench::run(
                &need("--uri"),
                &data,
                Duration::from_secs_f64(seconds),
                rounds,
                only.as_deref(),
            ) {
                Ok(results) => println!("{}", serde_json::to_string(&results).unwrap()),
                Err(e) => fail(&e),
            }
        }
        Some("render") => {
            let dir = PathBuf::from(args.get(2).unwrap_or_else(|| fail("render DIR")));
            let results = report::load(&dir).unwrap_or_else(|e| fail(&e));
            report::write(&dir, &results).unwrap_or_else(|e| fail(&e));
            println!("{}", dir.join("report.md").display());
        }
        _ => {
            let o = matrix::Options {
                out: PathBuf::from(flag(&args, "--out").unwrap_or_else(|| "bench-report".into())),
                server: flag(&args, "--server").unwrap_or_else(|| "canned".into()),
                window: Duration::from_secs_f64(
                    flag(&args, "--seconds").map_or(2.0, |s| s.parse().expect("--seconds N")),
                ),
                runs: flag(&args, "--runs").map_or(3, |s| s.parse().expect("--runs N")),
                levels: list(&args, "--levels", |s| s.parse().ok())
                    .unwrap_or_else(|| vec![1, 16, 256, 1024, 10_000]),
                workloads: list(&args, "--workloads", Workload::parse)
                    .unwrap_or_else(|| Workload::ALL.to_vec()),
                contenders: list(&args, "--contenders", Contender::parse)
                    .unwrap_or_else(|| Contender::ALL.to_vec()),
                allocators: list(&args, "--allocators", Allocator::parse)
                    .unwrap_or_else(|| Allocator::ALL.to_vec()),
                driverbench: Duration::from_secs_f64(
                    flag(&args, "--driverbench-seconds")
                        .map_or(4.0, |s| s.parse().expect("--driverbench-seconds N")),
                ),
                driverbench_only: list(&args, "--driverbench-tasks", |s| Some(s.to_string())),
                matrix: !args.iter().any(|a| a == "--no-matrix"),
                profile: args.iter().any(|a| a == "--profile"),
                command: args[1..].join(" "),
            };
            if let Err(e) = matrix::main(o) {
                fail(&e);
            }
        }
    }
}
