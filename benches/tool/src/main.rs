//! `may_mongo_bench`: the comparative benchmark (issue 8), first slice.
//!
//! Measures `find_one` by `_id` into a `Document` against a canned-reply server (its own
//! process), for the coroutine core and the threaded core, beside a raw loopback ping-pong of
//! the same request and reply bytes: the physical limit.
//!
//!     cargo run --release --manifest-path benches/tool/Cargo.toml -- [--seconds N] [--levels 1,16,256]
//!
//! Also the official `mongodb` crate (3.9), async under tokio and its sync API.
//!
//! Not yet: the async API, insert/find-many/insert-many
//! workloads, memory figures, interleaved repeated runs, the report and its charts.

mod canned;
mod official;
mod pingpong;
mod stats;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::{Client, ClientOptions, Collection, Core};
use stats::Sample;

/// The canned server's process; killed when dropped.
struct CannedServer {
    child: Child,
    port: u16,
}

impl CannedServer {
    /// Starts this binary as `serve-canned` and reads the port it prints.
    fn start() -> CannedServer {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg("serve-canned")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the canned-reply server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the canned server's port");
        let port = line.trim().parse().expect("a port number");
        CannedServer { child, port }
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(port: u16, core: Core) -> Client {
    let uri = format!("mongodb://127.0.0.1:{port}/?maxPoolSize=100");
    let mut o = ClientOptions::parse(&uri).unwrap();
    o.core = core;
    Client::with_options(o).unwrap()
}

/// What a driver contender's loop calls.
#[derive(Clone, Copy)]
enum Call {
    /// `find_one` into a `Document`.
    FindOne,
    /// The same `find` through `run_command_raw`: the reply handed back undecoded.
    FindRaw,
}

/// `tasks` coroutines (coroutine core) or OS threads (threaded core), each looping `call`
/// for `window`. Err when the OS refuses a thread.
fn run_driver(
    port: u16,
    core: Core,
    call: Call,
    tasks: usize,
    window: Duration,
) -> Result<Sample, String> {
    let client = client(port, core);
    let coll: Collection<Document> = client.database("bench").collection("coll");
    coll.find_one(doc! { "_id": 1 }).unwrap(); // connect and handshake before timing
    let stop = Arc::new(AtomicBool::new(false));
    let db = client.database("bench");
    let body = |coll: Collection<Document>, stop: Arc<AtomicBool>| {
        let db = db.clone();
        move || {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match call {
                    Call::FindOne => assert!(coll.find_one(doc! { "_id": 1 }).unwrap().is_some()),
                    Call::FindRaw => {
                        let reply = db
                            .run_command_raw(doc! {
                                "find": "coll", "filter": { "_id": 1 }, "limit": 1, "singleBatch": true,
                            })
                            .unwrap();
                        assert!(reply.as_bytes().len() > 100);
                    }
                }
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat
        }
    };
    let started = Instant::now();
    let latencies: Vec<u64> = match core {
        Core::Coroutine => {
            let hs: Vec<_> = (0..tasks)
                .map(|_| may::go!(body(coll.clone(), stop.clone())))
                .collect();
            std::thread::sleep(window);
            stop.store(true, Ordering::Relaxed);
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        }
        Core::Threaded => {
            stats::on_threads(tasks, &stop, window, |_| body(coll.clone(), stop.clone()))?
        }
    };
    let elapsed = started.elapsed();
    client.shutdown();
    Ok(Sample::new(latencies, elapsed))
}

fn row(name: &str, tasks: usize, s: &Sample) {
    println!(
        "| {name} | {tasks} | {:.0} | {:.1} µs | {:.1} µs | {:.1} µs |",
        s.ops_per_sec(),
        s.quantile_us(0.5),
        s.quantile_us(0.99),
        s.quantile_us(0.999)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve-canned") {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        println!("{}", listener.local_addr().unwrap().port());
        canned::serve(listener);
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let window = Duration::from_secs(flag("--seconds").and_then(|s| s.parse().ok()).unwrap_or(3));
    let levels: Vec<usize> = flag("--levels")
        .map(|l| l.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 256, 1024, 10_000]);
    may::config().set_worker_pin(false);

    let server = CannedServer::start();
    eprintln!(
        "canned-reply server on 127.0.0.1:{}; {window:?} per point",
        server.port
    );
    println!("find_one by _id into a Document, against the canned-reply server\n");
    println!("| contender | tasks | ops/s | p50 | p99 | p99.9 |");
    println!("|---|---|---|---|---|---|");
    for &tasks in &levels {
        if tasks <= 1024 {
            eprint!("raw ping-pong, {tasks} connections ... ");
            let s = pingpong::run(server.port, tasks, window);
            eprintln!("{:.0}/s", s.ops_per_sec());
            row("raw loopback ping-pong (std threads)", tasks, &s);
        } else {
            println!(
                "| raw loopback ping-pong (std threads) | {tasks} | not run: one thread and socket per task is the driver contenders' job | | | |"
            );
        }
        eprint!("official async (tokio, 2 workers), {tasks} tasks ... ");
        let s = official::run_async(server.port, tasks, window);
        eprintln!("{:.0}/s", s.ops_per_sec());
        row("official mongodb 3.9, async (tokio, 2 workers)", tasks, &s);
        eprint!("official sync, {tasks} threads ... ");
        match official::run_sync(server.port, tasks, window) {
            Ok(s) => {
                eprintln!("{:.0}/s", s.ops_per_sec());
                row("official mongodb 3.9, sync API (OS threads)", tasks, &s);
            }
            Err(why) => {
                eprintln!("{why}");
                println!(
                    "| official mongodb 3.9, sync API (OS threads) | {tasks} | not measured: {why} | | | |"
                );
            }
        }
        for (name, core, call) in [
            ("coroutine core", Core::Coroutine, Call::FindOne),
            ("threaded core", Core::Threaded, Call::FindOne),
            (
                "coroutine core, raw reply (no decoding)",
                Core::Coroutine,
                Call::FindRaw,
            ),
        ] {
            eprint!("{name}, {tasks} tasks ... ");
            match run_driver(server.port, core, call, tasks, window) {
                Ok(s) => {
                    eprintln!("{:.0}/s", s.ops_per_sec());
                    row(name, tasks, &s);
                }
                Err(why) => {
                    eprintln!("{why}");
                    println!("| {name} | {tasks} | not measured: {why} | | | |");
                }
            }
        }
    }
}
