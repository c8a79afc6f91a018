//! The run: start the server, measure every (workload, tasks, contender) point in its own
//! child process, round after round, then DriverBench, then the report.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::point::Outcome;
use crate::workload::{Contender, FIND_MANY_DOCS, Workload};
use crate::{Allocator, driverbench, report};

pub struct Options {
    pub out: PathBuf,
    pub server: String,
    pub window: Duration,
    pub runs: usize,
    pub levels: Vec<usize>,
    pub workloads: Vec<Workload>,
    pub contenders: Vec<Contender>,
    pub allocators: Vec<Allocator>,
    pub driverbench: Duration,
    pub driverbench_only: Option<Vec<String>>,
    pub matrix: bool,
    pub profile: bool,
    pub command: String,
}

/// Every run of one point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointRuns {
    pub workload: String,
    pub contender: String,
    pub tasks: usize,
    /// The allocator of the process that ran it (`glibc` in reports made before there were
    /// two).
    #[serde(default = "glibc")]
    pub allocator: String,
    pub runs: Vec<Outcome>,
}

pub fn glibc() -> String {
    Allocator::Glibc.name().into()
}

/// All that a report is drawn from (saved as results.json).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Results {
    pub date: String,
    pub machine: String,
    pub server: String,
    pub command: String,
    pub window_s: f64,
    pub runs: usize,
    pub levels: Vec<usize>,
    pub workloads: Vec<String>,
    pub contenders: Vec<String>,
    pub points: Vec<PointRuns>,
    pub driverbench: Vec<driverbench::TaskResult>,
    pub driverbench_seconds: f64,
    pub duration_s: f64,
    /// A report made before there were two allocators names its one allocator here.
    pub allocator: String,
    /// The allocators measured, side by side.
    pub allocators: Vec<String>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

/// The hottest functions of one missed target's point.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Profile {
    pub what: String,
    pub top: Vec<String>,
}

/// The server the contenders talk to; stopped when dropped.
pub enum Server {
    Canned(Child),
    Embedded {
        _server: Box<ferretdb_embed::Server>,
    },
    Given,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Canned(child) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts (or finds) the server: its URI, port, description and handle.
pub fn start_server(kind: &str, data: &Data) -> Result<(String, u16, String, Server), String> {
    match kind {
        "canned" => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut child = Command::new(exe)
                .arg("serve-canned")
                .arg(&data.dir)
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("starting the canned-reply server: {e}"))?;
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let port: u16 = line
                .trim()
                .parse()
                .map_err(|_| "no port from the canned server")?;
            Ok((
                format!("mongodb://127.0.0.1:{port}/"),
                port,
                "the tool's canned-reply server (its own process; replies encoded ahead of time)"
                    .into(),
                Server::Canned(child),
            ))
        }
        "embedded" => {
            eprintln!("starting the embedded FerretDB v1.24.2 (built on first use) ...");
            let s =
                ferretdb_embed::Server::start(&Default::default()).map_err(|e| e.to_string())?;
            Ok((
                s.uri(),
                s.port(),
                "the embedded FerretDB v1.24.2 (SQLite backend) on loopback".into(),
                Server::Embedded {
                    _server: Box::new(s),
                },
            ))
        }
        "uri" => {
            let uri = std::env::var("MONGODB_URI").map_err(|_| "--server uri needs MONGODB_URI")?;
            let o = may_mongo::ClientOptions::parse(&uri).run().map_err(|e| e.to_string())?;
            let port = o.hosts.first().map_or(27017, |h| h.port);
            Ok((
                uri.clone(),
                port,
                format!("MONGODB_URI ({uri})"),
                Server::Given,
            ))
        }
        other => Err(format!(
            "--server {other}: expected canned, embedded or uri"
        )),
    }
}

/// On a real server, the documents the read workloads find.
fn seed(uri: &str, data: &Data) -> Result<(), String> {
    use bson::doc;
    let mut o = may_mongo::ClientOptions::parse(uri).run().map_err(|e| e.to_string())?;
    o.core = may_mongo::Core::Threaded;
    let client = may_mongo::Client::with_options(o).map_err(|e| e.to_string())?;
    let db = client.database("bench");
    db.drop().run().map_err(|e| e.to_string())?;
    let mut tweet = data.ours("tweet");
    tweet.insert("_id", 1);
    db.collection::<bson::Document>("coll")
        .insert_one(&tweet).run()
        .map_err(|e| e.to_string())?;
    let tweets = vec![data.ours("tweet"); FIND_MANY_DOCS];
    db.collection::<bson::Document>("tweets")
        .insert_many(&tweets).run()
        .map_err(|e| e.to_string())?;
    db.run_command(doc! { "ping": 1 }).run()
        .map_err(|e| e.to_string())?;
    client.shutdown();
    Ok(())
}

/// The child's command line for one point (after the executable).
fn point_args(
    (w, tasks, c, a): (&Workload, usize, &Contender, Allocator),
    o: &Options,
    uri: &str,
    port: u16,
    data: &Data,
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "point",
        "--allocator",
        a.name(),
        "--contender",
        c.name(),
        "--workload",
        w.name(),
        "--tasks",
        &tasks.to_string(),
        "--seconds",
        &o.window.as_secs_f64().to_string(),
        "--uri",
        uri,
        "--port",
        &port.to_string(),
        "--data",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(data.dir.clone().into_os_string());
    args
}

/// Runs one point in a child process of its allocator's binary, bounded by the window plus a
/// generous margin.
fn measure(
    point: (&Workload, usize, &Contender, Allocator),
    o: &Options,
    uri: &str,
    port: u16,
    data: &Data,
) -> Outcome {
    let failed = |e: String| Outcome {
        error: Some(e),
        ..Outcome::default()
    };
    let exe = match point.3.exe() {
        Ok(e) => e,
        Err(e) => return failed(e),
    };
    let child = Command::new(exe)
        .args(point_args(point, o, uri, port, data))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return failed(format!("could not start the child: {e}")),
    };
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    // Warm-up (at most a minute), the window, and the last calls draining.
    let margin = crate::point::WARM_UP_CAP + Duration::from_secs(90);
    let deadline = Instant::now() + o.window + margin;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let last_err = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    match status {
        None => failed(format!(
            "did not finish within {margin:?} of its window; killed"
        )),
        Some(s) if !s.success() => failed(format!("the child exited with {s}: {last_err}")),
        Some(_) => match out.lines().last().map(serde_json::from_str::<Outcome>) {
            Some(Ok(outcome)) => outcome,
            _ => failed(format!("no result from the child: {last_err}")),
        },
    }
}

/// Runs each missed target's point again under `perf record` and keeps the top of
/// `perf report`. Without perf, says so once.
fn profile_misses(o: &Options, r: &Results, uri: &str, port: u16, data: &Data) -> Vec<Profile> {
    let mut out: Vec<Profile> = Vec::new();
    let file = std::env::temp_dir().join(format!("may_mongo_bench-{}.perf", std::process::id()));
    for check in report::targets(r) {
        let (Some(false), Some((a, w, c, tasks))) = (check.met(), check.point) else {
            continue;
        };
        let Ok(exe) = a.exe() else { continue };
        eprintln!("profiling {} ...", check.what);
        let recorded = Command::new("perf")
            .args(["record", "-F", "999", "-g", "-o"])
            .arg(&file)
            .arg("--")
            .arg(&exe)
            .args(point_args((&w, tasks, &c, a), o, uri, port, data))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !recorded.is_ok_and(|s| s.success()) {
            out.push(Profile {
                what: check.what,
                top: vec![
                    "perf record failed or perf is not installed (Debian: linux-perf)".into(),
                ],
            });
            break;
        }
        let report = Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--sort",
                "sym",
                "--stdio",
                "-g",
                "none",
                "-i",
            ])
            .arg(&file)
            .output();
        let text = report
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let top: Vec<String> = text
            .lines()
            .filter(|l| l.contains('%') && !l.trim_start().starts_with('#'))
            .take(15)
            .map(|l| l.trim_end().to_string())
            .collect();
        out.push(Profile {
            what: format!(
                "{} ({}, {} tasks, {}, {})",
                check.what,
                w.name(),
                tasks,
                c.name(),
                a.name()
            ),
            top,
        });
    }
    let _ = std::fs::remove_file(&file);
    out
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPU model, cores, memory and kernel, as this machine reports them.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|p| p.1.trim())
        })
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cores} cores ({model}), {mem_gib:.0} GiB RAM, Linux {}",
        shell("uname", &["-r"])
    )
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn main(o: Options) -> Result<(), String> {
    let started = Instant::now();
    let data = Data::unpack()?;
    std::fs::create_dir_all(&o.out).map_err(|e| format!("creating {}: {e}", o.out.display()))?;
    let (uri, port, server_desc, server) = start_server(&o.server, &data)?;
    if o.server != "canned" {
        seed(&uri, &data)?;
    }
    let mut results = Results {
        date: shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        machine: machine(),
        server: server_desc,
        command: o.command.clone(),
        window_s: o.window.as_secs_f64(),
        runs: o.runs,
        levels: o.levels.clone(),
        workloads: o.workloads.iter().map(|w| w.name().to_string()).collect(),
        contenders: o.contenders.iter().map(|c| c.name().to_string()).collect(),
        driverbench_seconds: o.driverbench.as_secs_f64(),
        allocators: o.allocators.iter().map(|a| a.name().to_string()).collect(),
        ..Results::default()
    };
    eprintln!("{}; server: {}", results.machine, results.server);

    let mut plan = Vec::new();
    for w in &o.workloads {
        for &tasks in &o.levels {
            for c in o.contenders.iter().filter(|c| c.runs(*w)) {
                for &a in &o.allocators {
                    let mut point = PointRuns {
                        workload: w.name().into(),
                        contender: c.name().into(),
                        tasks,
                        allocator: a.name().into(),
                        runs: Vec::new(),
                    };
                    match c.skips(*w, tasks) {
                        Some(why) => point.runs.push(Outcome {
                            error: Some(why.into()),
                            ..Outcome::default()
                        }),
                        None => plan.push((w, tasks, c, a, results.points.len())),
                    }
                    results.points.push(point);
                }
            }
        }
    }
    if o.matrix {
        // The 10,000-task points run once: each takes up to a minute (warm-up, window,
        // drain), and repeating them would double the report's running time.
        let once = |tasks: usize| tasks >= 10_000;
        let total: usize = plan
            .iter()
            .map(|p| if once(p.1) { 1 } else { o.runs })
            .sum();
        let matrix_started = Instant::now();
        let mut done = 0;
        for run in 0..o.runs {
            for &(w, tasks, c, a, at) in &plan {
                if run > 0 && once(tasks) {
                    continue;
                }
                let outcome = measure((w, tasks, c, a), &o, &uri, port, &data);
                let elapsed = matrix_started.elapsed();
                done += 1;
                let left = elapsed.mul_f64((total - done) as f64 / done as f64);
                let what = match &outcome.error {
                    Some(e) => format!("not measured: {e}"),
                    None => format!(
                        "{:>9.0} ops/s  p99 {:>9.0} µs  peak {:>6.1} MiB  {} conns",
                        outcome.ops_per_sec(),
                        outcome.p99_us,
                        outcome.peak_rss_kib as f64 / 1024.0,
                        outcome.connections
                    ),
                };
                eprintln!(
                    "[{:>3}/{total}] run {}/{} {:<11} {:>5} tasks {:<15} {:<8} {what}   ({} elapsed, ~{} left)",
                    done,
                    run + 1,
                    o.runs,
                    w.name(),
                    tasks,
                    c.name(),
                    a.name(),
                    fmt_duration(elapsed),
                    fmt_duration(left)
                );
                results.points[at].runs.push(outcome);
            }
            // Save as we go: a long run interrupted still leaves its figures.
            save(&o, &results)?;
        }
    }
    if !o.driverbench.is_zero() {
        for &a in &o.allocators {
            eprintln!("DriverBench with {} ...", a.name());
            let mut tasks = run_driverbench(a, &o, &uri, &data)?;
            for t in &mut tasks {
                t.allocator = a.name().into();
            }
            results.driverbench.extend(tasks);
        }
    }
    if o.profile {
        results.profiles = profile_misses(&o, &results, &uri, port, &data);
    }
    drop(server);
    results.duration_s = started.elapsed().as_secs_f64();
    save(&o, &results)?;
    report::write(&o.out, &results)?;
    eprintln!(
        "done in {}: {}",
        fmt_duration(started.elapsed()),
        o.out.join("report.md").display()
    );
    Ok(())
}

/// One allocator's DriverBench, in a child process of its binary.
fn run_driverbench(
    a: Allocator,
    o: &Options,
    uri: &str,
    data: &Data,
) -> Result<Vec<driverbench::TaskResult>, String> {
    let mut cmd = Command::new(a.exe()?);
    cmd.args(["driverbench", "--uri", uri, "--seconds"])
        .arg(o.driverbench.as_secs_f64().to_string())
        .args(["--rounds", &o.runs.max(1).to_string(), "--data"])
        .arg(&data.dir);
    if let Some(only) = &o.driverbench_only {
        cmd.args(["--tasks", &only.join(",")]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running DriverBench with {}: {e}", a.name()))?;
    if !out.status.success() {
        return Err(format!(
            "DriverBench with {} failed: {}",
            a.name(),
            out.status
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .map_err(|e| format!("DriverBench with {}: no result ({e})", a.name()))
}

fn save(o: &Options, results: &Results) -> Result<(), String> {
    let path = o.out.join("results.json");
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))
}
