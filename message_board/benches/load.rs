//! Load test: `cargo bench -p message_board --bench load [-- OPTIONS]`
//!
//! Starts the message board binary (a separate process, as deployed) against `MONGODB_URI`
//! or the embedded FerretDB, drives it with `wrk` (Debian package `wrk`) over loopback with
//! a mix of `GET /` and `POST /compose`, then audits the database: every POST that was
//! answered `303` must name a stored message with the text that was sent.
//!
//! Options: `--connections N` (1000), `--seconds N` (30), `--threads N` (2),
//! `--post-percent N` (20), `--timeout S` (30), `--pool N` (the app's maxPoolSize; default:
//! the app's own).
//!
//! Why `--timeout 30`: with 1,000 connections open and a server answering R requests/s, a
//! request waits about 1000/R seconds in line. wrk's default 2 s timeout would count that
//! line as errors; here an error is a request that failed, and the wait shows in the latency
//! percentiles instead.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use may_mongo::Client;
use message_board::Board;

struct Options {
    connections: u32,
    seconds: u32,
    threads: u32,
    post_percent: u32,
    timeout: u32,
    pool: Option<u32>,
}

fn parse_options() -> Options {
    let mut o = Options {
        connections: 1000,
        seconds: 30,
        threads: 2,
        post_percent: 20,
        timeout: 30,
        pool: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> u32 {
            let v = args.next().unwrap_or_default();
            v.parse()
                .unwrap_or_else(|_| panic!("{arg} needs a number, got {v:?}"))
        };
        match arg.as_str() {
            "--connections" => o.connections = value(),
            "--seconds" => o.seconds = value(),
            "--threads" => o.threads = value(),
            "--post-percent" => o.post_percent = value(),
            "--timeout" => o.timeout = value(),
            "--pool" => o.pool = Some(value()),
            // cargo bench passes --bench.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// The app's process; killed when dropped (also when the audit panics).
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    may::config().set_worker_pin(false);
    let o = parse_options();
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => {}
        Err(e) => panic!("cannot run wrk ({e}): install it with `apt-get install wrk`"),
    }
    // `MONGODB_URI`, or an embedded FerretDB that lives until the process exits.
    let uri = ferretdb_embed::shared_uri();
    let db_name = "message_board_load";
    let client = Client::with_uri_str(&uri).expect("client");
    let board = Board::new(&client, db_name);
    board.reset().expect("reset the board");

    let app_uri = match o.pool {
        Some(n) => with_query(&uri, &format!("maxPoolSize={n}")),
        None => uri.clone(),
    };
    let (app, addr) = start_app(&app_uri, db_name);

    let run = format!("{:x}", std::process::id());
    let dir = std::env::temp_dir().join(format!("message_board_load_{run}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = dir.join("load.lua");
    std::fs::write(&script, include_str!("load.lua")).expect("write the wrk script");
    println!(
        "wrk: {} connections, {} threads, {} s, {}% POST, timeout {} s, app pool {}",
        o.connections,
        o.threads,
        o.seconds,
        o.post_percent,
        o.timeout,
        o.pool.map_or("default".to_string(), |n| n.to_string())
    );
    let started = Instant::now();
    let output = Command::new("wrk")
        .args([
            "-t",
            &o.threads.to_string(),
            "-c",
            &o.connections.to_string(),
        ])
        .args(["-d", &format!("{}s", o.seconds), "--latency"])
        .args(["--timeout", &format!("{}s", o.timeout)])
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{addr}/"))
        .arg("--")
        .arg(&run)
        .arg(&dir)
        .arg(o.post_percent.to_string())
        .output()
        .expect("run wrk");
    let wrk_out = String::from_utf8_lossy(&output.stdout).to_string();
    print!("{wrk_out}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "wrk failed: {}", output.status);
    println!("wrk ran {:.1} s", started.elapsed().as_secs_f64());
    let app_peak_rss = peak_rss_kib(app.0.id());

    // Requests still in flight when wrk stopped finish in the app: wait until the count of
    // this run's messages stops changing.
    let prefix = format!("load {run} ");
    let mut stored = Vec::new();
    for _ in 0..60 {
        let now: Vec<_> = board
            .all_messages()
            .expect("read the messages")
            .into_iter()
            .filter(|m| m.text.starts_with(&prefix))
            .collect();
        let settled = now.len() == stored.len();
        stored = now;
        if settled {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(app);

    let audit = audit(&wrk_out, &dir, &stored, &prefix);
    println!("\n{audit}");
    println!(
        "app peak RSS: {}",
        app_peak_rss.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(audit.ok(), "the load test failed: see above");
}

/// Starts the board binary on a free port; returns it and where it listens.
fn start_app(uri: &str, db_name: &str) -> (App, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_message_board"))
        .args(["--listen", "127.0.0.1:0", "--db", db_name])
        .env("MONGODB_URI", uri)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the message board");
    let stdout = child.stdout.take().expect("stdout");
    let app = App(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the app's first line");
    print!("app: {line}");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the app did not say where it listens: {line:?}"))
        .to_string();
    (app, addr)
}

fn with_query(uri: &str, option: &str) -> String {
    if uri.contains('?') {
        format!("{uri}&{option}")
    } else if uri.ends_with('/') {
        format!("{uri}?{option}")
    } else {
        format!("{uri}/?{option}")
    }
}

/// What the audit found.
struct Audit {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    socket_errors: u64,
    bad_statuses: u64,
    posts_sent: u64,
    posts_acked: u64,
    acked_found: u64,
    acked_missing: Vec<String>,
    stored: u64,
    duplicates: u64,
}

impl Audit {
    fn ok(&self) -> bool {
        self.socket_errors == 0
            && self.bad_statuses == 0
            && self.acked_missing.is_empty()
            && self.duplicates == 0
            && self.acked_found == self.posts_acked
            && self.posts_acked > 0
    }
}

impl std::fmt::Display for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "requests: {} ({:.0}/s), latency p50 {:.0} ms, p99 {:.0} ms",
            self.requests, self.requests_per_s, self.p50_ms, self.p99_ms
        )?;
        writeln!(
            f,
            "errors: {} socket errors (connect, read, write, timeout), {} responses other than 200/303",
            self.socket_errors, self.bad_statuses
        )?;
        writeln!(
            f,
            "POSTs: {} sent, {} answered 303, {} of those found stored with their text, {} missing",
            self.posts_sent,
            self.posts_acked,
            self.acked_found,
            self.acked_missing.len()
        )?;
        write!(
            f,
            "stored: {} messages of this run ({} in flight when wrk stopped and stored anyway), {} duplicated texts",
            self.stored,
            self.stored.saturating_sub(self.acked_found),
            self.duplicates
        )?;
        for id in self.acked_missing.iter().take(10) {
            write!(f, "\n  missing: {id}")?;
        }
        Ok(())
    }
}

fn audit(
    wrk_out: &str,
    dir: &std::path::Path,
    stored: &[message_board::Message],
    prefix: &str,
) -> Audit {
    let load: HashMap<&str, f64> = wrk_out
        .lines()
        .find_map(|l| l.strip_prefix("LOAD "))
        .expect("the script's LOAD line")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap_or(f64::NAN)))
        .collect();
    let requests_per_s = wrk_out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN);
    // "Socket errors: connect 0, read 0, write 0, timeout 12" is printed only when nonzero.
    let socket_errors = wrk_out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().nth(1))
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        });
    let non_2xx_3xx: u64 = wrk_out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);

    let by_id: HashMap<String, &str> = stored
        .iter()
        .map(|m| (m.id.to_hex(), m.text.as_str()))
        .collect();
    let mut acked_found = 0;
    let mut acked_missing = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the acked files") {
        let path = entry.expect("dir entry").path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("acked-"))
        {
            continue;
        }
        for location in std::fs::read_to_string(&path).expect("read acked").lines() {
            let id = location.strip_prefix("/#m-").unwrap_or(location);
            match by_id.get(id) {
                Some(text) if text.starts_with(prefix) => acked_found += 1,
                _ => acked_missing.push(location.to_string()),
            }
        }
    }
    let texts: HashSet<&str> = stored.iter().map(|m| m.text.as_str()).collect();
    Audit {
        requests_per_s,
        p50_ms: load["p50_us"] / 1000.0,
        p99_ms: load["p99_us"] / 1000.0,
        requests: load["requests"] as u64,
        socket_errors,
        // The script counts statuses other than 200 and 303; wrk counts those outside
        // 2xx/3xx. Either is a failure; they overlap, so take the larger.
        bad_statuses: non_2xx_3xx.max(load["other_statuses"] as u64),
        posts_sent: load["posts_sent"] as u64,
        posts_acked: load["posts_acked"] as u64,
        acked_found,
        acked_missing,
        stored: stored.len() as u64,
        duplicates: (stored.len() - texts.len()) as u64,
    }
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
