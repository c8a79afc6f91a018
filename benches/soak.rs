//! Soak: many coroutines doing mixed CRUD against the real server for a long time, with every
//! pool cleared every 30 s, to show that nothing leaks, hangs or goes missing.
//!
//! Each task (a may coroutine, or an OS thread with `--core threaded`) loops over its own
//! documents: insert one, read it back, update it, and delete the one before. Every 30 s the
//! client's pools are cleared (`Client::clear_pools`): idle connections close, in-use ones
//! close when their operation ends, waiters get a retryable `PoolCleared`. At the end:
//!
//! - operations completed, by kind, and errors by kind;
//! - the client's RSS (and the embedded server's) at the start, the middle and the end;
//! - connections the client holds open at the end (pool counts, and sockets in `/proc`);
//! - an audit: the documents left in the collection against what the client was told.
//!
//! ```text
//! cargo bench --bench soak                                  # 10,000 coroutines, 10 minutes
//! cargo bench --bench soak -- --seconds 60 --tasks 1000     # a short run
//! cargo bench --bench soak -- --core threaded               # OS threads instead
//! cargo bench --bench soak -- --collections 1               # all tasks on one collection
//! ```
//!
//! Uses `MONGODB_URI` when set, otherwise starts the embedded FerretDB.

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::error::WriteFailure;
use may_mongo::{Client, ClientOptions, Collection, Core, ErrorKind};

const CLEAR_EVERY: Duration = Duration::from_secs(30);

struct Args {
    seconds: u64,
    tasks: usize,
    core: Core,
    collections: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 600,
        tasks: 10_000,
        core: Core::Coroutine,
        collections: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("option needs a value");
        match arg.as_str() {
            "--seconds" => a.seconds = value().parse().expect("--seconds N"),
            "--tasks" => a.tasks = value().parse().expect("--tasks N"),
            "--collections" => a.collections = value().parse().expect("--collections N"),
            "--core" => {
                a.core = match value().as_str() {
                    "coroutine" => Core::Coroutine,
                    "threaded" => Core::Threaded,
                    other => panic!("--core coroutine|threaded, not {other}"),
                }
            }
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// Per-kind counters shared by all tasks (one atomic add per operation).
#[derive(Default)]
struct Counters {
    ops: [AtomicU64; 4],
    /// Inserts acknowledged, and deletes that removed a document: the audit's inputs.
    inserted: AtomicU64,
    deleted: AtomicU64,
    /// Inserts and deletes whose outcome is unknown (a network error after sending).
    unknown_insert: AtomicU64,
    unknown_delete: AtomicU64,
    /// Count, and the first message, per error kind.
    errors: Mutex<BTreeMap<String, (u64, String)>>,
}

const OP_NAMES: [&str; 4] = ["insert_one", "find_one", "update_one", "delete_one"];

impl Counters {
    fn error(&self, e: &may_mongo::Error) {
        let kind = match &*e.kind {
            ErrorKind::Io(_) => "Io".to_string(),
            ErrorKind::ConnectionPoolCleared { .. } => "PoolCleared".to_string(),
            ErrorKind::ServerSelection { .. } => "ServerSelection".to_string(),
            ErrorKind::WaitQueueTimeout { .. } => "WaitQueueTimeout".to_string(),
            ErrorKind::Timeout { .. } => "Timeout".to_string(),
            ErrorKind::Command(c) => format!("Command({})", c.code),
            ErrorKind::Write(WriteFailure::WriteError(w)) => format!("Write({})", w.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
                format!("WriteConcern({})", w.code)
            }
            other => format!("{other:?}").chars().take(40).collect(),
        };
        let mut errors = self.errors.lock().unwrap();
        let entry = errors.entry(kind).or_insert_with(|| (0, e.to_string()));
        entry.0 += 1;
    }

    fn total(&self) -> u64 {
        self.ops.iter().map(|o| o.load(Ordering::Relaxed)).sum()
    }
}

/// One task's loop: insert `k`, read it, update it, delete `k - 1`.
fn task(id: usize, coll: Collection<Document>, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut k: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{id}-{k}");
        match coll
            .insert_one(doc! { "_id": &key, "task": id as i64, "v": 0 })
            .run()
        {
            Ok(_) => {
                c.ops[0].fetch_add(1, Ordering::Relaxed);
                c.inserted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if e.is_network_error() {
                    c.unknown_insert.fetch_add(1, Ordering::Relaxed);
                }
                c.error(&e);
            }
        }
        match coll.find_one(doc! { "_id": &key }).run() {
            Ok(_) => c.ops[1].fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                c.error(&e);
                0
            }
        };
        match coll
            .update_one(doc! { "_id": &key }, doc! { "$inc": { "v": 1 } })
            .run()
        {
            Ok(_) => c.ops[2].fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                c.error(&e);
                0
            }
        };
        if k > 0 {
            let previous = format!("{id}-{}", k - 1);
            match coll.delete_one(doc! { "_id": previous }).run() {
                Ok(r) => {
                    c.ops[3].fetch_add(1, Ordering::Relaxed);
                    c.deleted.fetch_add(r.deleted_count, Ordering::Relaxed);
                }
                Err(e) => {
                    if e.is_network_error() {
                        c.unknown_delete.fetch_add(1, Ordering::Relaxed);
                    }
                    c.error(&e);
                }
            }
        }
        k += 1;
    }
}

/// `VmRSS` of a process, in MiB.
fn rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Sockets this process has open.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn main() {
    let a = args();
    may::config().set_worker_pin(false);
    let (uri, server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            let s = ferretdb_embed::Server::start(&Default::default()).expect("start FerretDB");
            (s.uri(), Some(s))
        }
    };
    let server_pid = server.as_ref().and_then(|s| s.pid()).map(|p| p.to_string());
    let server_rss = || server_pid.as_deref().map_or(f64::NAN, rss_mib);
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = a.core;
    let client = Client::with_options(opts).unwrap();
    // Tasks are spread over `--collections` collections (task i uses collection i mod N).
    // With one collection of 10,000-20,000 documents, FerretDB's SQLite backend answered
    // `_id` lookups more and more slowly (down to ~20 ops/s, the server busy, the client
    // idle): the figures measured the server, not the client.
    let db = client.database("soak");
    db.drop().run().unwrap();
    let colls: Vec<Collection<Document>> = (0..a.collections.max(1))
        .map(|i| db.collection(&format!("{}_{i}", a.core.name())))
        .collect();
    println!(
        "soak: {} {} tasks over {} collections, {} s, pools cleared every {} s, server {uri}",
        a.tasks,
        a.core.name(),
        colls.len(),
        a.seconds,
        CLEAR_EVERY.as_secs()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let started = Instant::now();
    for id in 0..a.tasks {
        let (coll, stop, c, done) = (
            colls[id % colls.len()].clone(),
            stop.clone(),
            counters.clone(),
            done_tx.clone(),
        );
        let job = move || {
            task(id, coll, stop, c);
            let _ = done.send(());
        };
        match a.core {
            Core::Coroutine => {
                may::go!(job);
            }
            Core::Threaded => {
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(job)
                    .expect("spawn a thread");
            }
        }
    }
    drop(done_tx);
    let rss_start = (rss_mib("self"), server_rss());
    println!(
        "start: {} tasks running after {:.1} s; RSS client {:.1} MiB, server {:.1} MiB",
        a.tasks,
        started.elapsed().as_secs_f64(),
        rss_start.0,
        rss_start.1
    );

    let run = Duration::from_secs(a.seconds);
    let mut rss_middle = (f64::NAN, f64::NAN);
    let mut clears = 0;
    let mut last = (Instant::now(), 0u64);
    let mut next_clear = started + CLEAR_EVERY;
    let mut took_middle = false;
    while started.elapsed() < run {
        let step = next_clear
            .min(started + run)
            .saturating_duration_since(Instant::now());
        std::thread::sleep(step);
        if !took_middle && started.elapsed() >= run / 2 {
            rss_middle = (rss_mib("self"), server_rss());
            took_middle = true;
        }
        if Instant::now() >= next_clear && started.elapsed() < run {
            client.clear_pools();
            clears += 1;
            next_clear += CLEAR_EVERY;
            let total = counters.total();
            let stats = client.pool_stats();
            println!(
                "{:>5.0} s: {:>8.0} ops/s over the last interval, {} errors so far, RSS {:.1} MiB, pool {} open ({} in use, generation {}); pools cleared",
                started.elapsed().as_secs_f64(),
                (total - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                counters
                    .errors
                    .lock()
                    .unwrap()
                    .values()
                    .map(|e| e.0)
                    .sum::<u64>(),
                rss_mib("self"),
                stats.total,
                stats.checked_out,
                stats.generation,
            );
            last = (Instant::now(), total);
        }
    }
    if !took_middle {
        rss_middle = (rss_mib("self"), server_rss());
    }
    let rss_end = (rss_mib("self"), server_rss());
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    // Every task must finish its last operation and stop: none may hang.
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut finished = 0;
    while finished < a.tasks {
        match done_rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok(()) => finished += 1,
            Err(_) => break,
        }
    }
    let wind_down = started.elapsed() - elapsed;
    let rss_after = (rss_mib("self"), server_rss());

    let c = &counters;
    let total = c.total();
    println!("\n## Results\n");
    println!(
        "- {} tasks ({}) over {} collections, {:.0} s, pools cleared {clears} times",
        a.tasks,
        a.core.name(),
        colls.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "- operations completed: {total} ({:.0}/s): {}",
        total as f64 / elapsed.as_secs_f64(),
        OP_NAMES
            .iter()
            .zip(&c.ops)
            .map(|(n, o)| format!("{n} {}", o.load(Ordering::Relaxed)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let errors = c.errors.lock().unwrap().clone();
    if errors.is_empty() {
        println!("- errors by kind: none");
    } else {
        println!("- errors by kind:");
        for (kind, (n, first)) in &errors {
            println!("  - {kind}: {n} (first: {first})");
        }
    }
    println!(
        "- tasks finished after the stop: {finished} of {} (within {:.1} s)",
        a.tasks,
        wind_down.as_secs_f64()
    );
    println!(
        "- RSS client start / middle / end of the run / after the tasks finished: {:.1} / {:.1} / {:.1} / {:.1} MiB; server: {:.1} / {:.1} / {:.1} / {:.1} MiB",
        rss_start.0,
        rss_middle.0,
        rss_end.0,
        rss_after.0,
        rss_start.1,
        rss_middle.1,
        rss_end.1,
        rss_after.1
    );
    let stats = client.pool_stats();
    println!(
        "- connections at the end: pool {} open ({} idle, {} in use), sockets open in this process {}",
        stats.total,
        stats.idle,
        stats.checked_out,
        open_sockets()
    );
    if finished < a.tasks {
        println!("- audit: skipped, tasks still running");
        std::process::exit(1);
    }
    // The audit: what is left should be what the client was told is left, give or take the
    // writes whose outcome a network error left unknown.
    let mut left = 0;
    for coll in &colls {
        left += coll.count_documents(doc! {}).run().unwrap();
    }
    let expected = c.inserted.load(Ordering::Relaxed) - c.deleted.load(Ordering::Relaxed);
    let unknown =
        c.unknown_insert.load(Ordering::Relaxed) + c.unknown_delete.load(Ordering::Relaxed);
    let ok = left.abs_diff(expected) <= unknown;
    println!(
        "- audit: {left} documents left, {expected} expected from acknowledged inserts and deletes (outcome unknown for {unknown}): {}",
        if ok { "consistent" } else { "MISMATCH" }
    );
    if !ok {
        std::process::exit(1);
    }
}
