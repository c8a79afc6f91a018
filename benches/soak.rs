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
//! cargo bench --bench soak -- --faults                      # and kill the server, cancel tasks
//! ```
//!
//! With `--faults` the run also injects faults: every 60 s the embedded server is killed
//! (SIGKILL) and restarted 2 s later on the same port and data; on the coroutine core, every
//! 10 s 100 tasks picked at random are cancelled wherever they are — waiting for a connection,
//! selecting a server, mid-write, mid-read — and replaced. The audit then also checks, key by
//! key, that every insert the client acknowledged and never tried to delete is still there.
//!
//! Uses `MONGODB_URI` when set, otherwise starts the embedded FerretDB.

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::error::WriteFailure;
use may_mongo::{Client, ClientOptions, Collection, Core, ErrorKind};

const CLEAR_EVERY: Duration = Duration::from_secs(30);
/// With `--faults`: how often the server is killed, how long it stays down, and how often
/// (and how many) tasks are cancelled.
const KILL_EVERY: Duration = Duration::from_secs(60);
const DOWN_FOR: Duration = Duration::from_secs(2);
const CANCEL_EVERY: Duration = Duration::from_secs(10);
const CANCEL_BATCH: usize = 100;

/// What a task is doing, for a cancellation to know which outcome it left unknown.
const IDLE: u8 = 0;
const INSERTING: u8 = 1;
const DELETING: u8 = 2;

struct Args {
    seconds: u64,
    tasks: usize,
    core: Core,
    collections: usize,
    faults: bool,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 600,
        tasks: 10_000,
        core: Core::Coroutine,
        collections: 100,
        faults: false,
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
            "--faults" => a.faults = true,
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
    /// Keys whose insert was acknowledged and whose delete was never tried: each must be there
    /// at the end, whatever was killed or cancelled meanwhile.
    live: Mutex<HashSet<String>>,
    /// Tasks cancelled (`--faults`, coroutine core).
    cancelled: AtomicU64,
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
fn task(
    id: usize,
    coll: Collection<Document>,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
    doing: Arc<AtomicU8>,
) {
    let mut k: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("{id}-{k}");
        doing.store(INSERTING, Ordering::SeqCst);
        let inserted = coll
            .insert_one(doc! { "_id": &key, "task": id as i64, "v": 0 })
            .run();
        doing.store(IDLE, Ordering::SeqCst);
        match inserted {
            Ok(_) => {
                c.ops[0].fetch_add(1, Ordering::Relaxed);
                c.inserted.fetch_add(1, Ordering::Relaxed);
                c.live.lock().unwrap().insert(key.clone());
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
            c.live.lock().unwrap().remove(&previous);
            doing.store(DELETING, Ordering::SeqCst);
            let deleted = coll.delete_one(doc! { "_id": previous }).run();
            doing.store(IDLE, Ordering::SeqCst);
            match deleted {
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
    let (uri, mut server) = match std::env::var("MONGODB_URI") {
        Ok(uri) if a.faults => panic!("--faults kills the server: unset MONGODB_URI ({uri})"),
        Ok(uri) => (uri, None),
        Err(_) => {
            let s = ferretdb_embed::Server::start(&Default::default()).expect("start FerretDB");
            (s.uri(), Some(s))
        }
    };
    // The server's pid changes with each restart: read it each time.
    let server_rss = |s: &Option<ferretdb_embed::Server>| {
        s.as_ref()
            .and_then(|s| s.pid())
            .map_or(f64::NAN, |p| rss_mib(&p.to_string()))
    };
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    if a.faults {
        // Operations started while the server is down wait for it (2 s) instead of failing
        // at once; the monitors look every 500 ms.
        opts.server_selection_timeout = Duration::from_secs(20);
        opts.heartbeat_frequency = Duration::from_millis(500);
    }
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
    // Says a task has ended, however it ends (a cancelled coroutine unwinds through this).
    struct Done(mpsc::Sender<()>);
    impl Drop for Done {
        fn drop(&mut self) {
            let _ = self.0.send(());
        }
    }
    let spawn_task = |id: usize| {
        let doing = Arc::new(AtomicU8::new(IDLE));
        let (coll, stop, c, done) = (
            colls[id % colls.len()].clone(),
            stop.clone(),
            counters.clone(),
            Done(done_tx.clone()),
        );
        let d = doing.clone();
        let job = move || {
            let _done = done;
            task(id, coll, stop, c, d);
        };
        let handle = match a.core {
            Core::Coroutine => Some(may::go!(job)),
            Core::Threaded => {
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(job)
                    .expect("spawn a thread");
                None
            }
        };
        (handle, doing)
    };
    let mut tasks: Vec<_> = (0..a.tasks).map(spawn_task).collect();
    let mut spawned = a.tasks;
    let rss_start = (rss_mib("self"), server_rss(&server));
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
    let far = started + run + Duration::from_secs(3600);
    let mut next_kill = if a.faults { started + KILL_EVERY } else { far };
    let mut next_cancel = if a.faults && a.core == Core::Coroutine {
        started + CANCEL_EVERY
    } else {
        far
    };
    let (mut kills, mut random) = (0, 0x9e37_79b9_7f4a_7c15u64);
    let mut took_middle = false;
    while started.elapsed() < run {
        let step = next_clear
            .min(next_kill)
            .min(next_cancel)
            .min(started + run)
            .saturating_duration_since(Instant::now());
        std::thread::sleep(step);
        if !took_middle && started.elapsed() >= run / 2 {
            rss_middle = (rss_mib("self"), server_rss(&server));
            took_middle = true;
        }
        if Instant::now() >= next_kill && started.elapsed() < run {
            let s = server.as_mut().expect("--faults runs its own server");
            s.kill();
            std::thread::sleep(DOWN_FOR);
            s.restart().expect("restart the server");
            kills += 1;
            next_kill += KILL_EVERY;
            println!(
                "{:>5.0} s: server killed and restarted ({kills} so far)",
                started.elapsed().as_secs_f64()
            );
        }
        if Instant::now() >= next_cancel && started.elapsed() < run {
            for _ in 0..CANCEL_BATCH {
                random = random
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let i = (random >> 33) as usize % tasks.len();
                let (handle, doing) = &mut tasks[i];
                let handle = handle.take().expect("coroutine core");
                // SAFETY: cancelling unwinds the task's coroutine at its next park; the task
                // holds nothing that unwinding cannot release (that is what is under test).
                unsafe { handle.coroutine().cancel() };
                let _ = handle.join();
                match doing.load(Ordering::SeqCst) {
                    INSERTING => counters.unknown_insert.fetch_add(1, Ordering::Relaxed),
                    DELETING => counters.unknown_delete.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                counters.cancelled.fetch_add(1, Ordering::Relaxed);
                tasks[i] = spawn_task(spawned);
                spawned += 1;
            }
            next_cancel += CANCEL_EVERY;
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
        rss_middle = (rss_mib("self"), server_rss(&server));
    }
    let rss_end = (rss_mib("self"), server_rss(&server));
    drop(tasks);
    drop(done_tx);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    // Every task must finish its last operation and stop: none may hang.
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut finished = 0;
    while finished < spawned {
        match done_rx.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
            Ok(()) => finished += 1,
            Err(_) => break,
        }
    }
    let wind_down = started.elapsed() - elapsed;
    let rss_after = (rss_mib("self"), server_rss(&server));

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
        "- tasks ended: {finished} of {spawned} started (within {:.1} s of the stop)",
        wind_down.as_secs_f64()
    );
    if a.faults {
        println!(
            "- faults: server killed and restarted {kills} times, {} tasks cancelled (and replaced)",
            counters.cancelled.load(Ordering::Relaxed)
        );
    }
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
    if finished < spawned {
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
    // Key by key: every acknowledged insert not since deleted (nor tried) is there.
    let live: Vec<String> = counters.live.lock().unwrap().iter().cloned().collect();
    let mut present = 0;
    for (n, coll) in colls.iter().enumerate() {
        let mine: Vec<&String> = live
            .iter()
            .filter(|k| {
                k.split('-')
                    .next()
                    .and_then(|t| t.parse::<usize>().ok())
                    .unwrap()
                    % colls.len()
                    == n
            })
            .collect();
        for chunk in mine.chunks(1000) {
            let ids: Vec<bson::Bson> = chunk.iter().map(|k| k.as_str().into()).collect();
            present += coll
                .count_documents(doc! { "_id": { "$in": ids } })
                .run()
                .unwrap();
        }
    }
    let none_lost = present as usize == live.len();
    println!(
        "- acknowledged and never deleted: {} keys, {present} present: {}",
        live.len(),
        if none_lost {
            "nothing lost"
        } else {
            "LOST WRITES"
        }
    );
    if !ok || !none_lost {
        std::process::exit(1);
    }
}
