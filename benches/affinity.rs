//! Benchmark: per-operation vs per-coroutine connection affinity.
//!
//! For 1, 100 and 10,000 concurrent coroutines, each mode runs the same total number of short
//! operations (`ping`) against the real server and reports throughput, how long check-outs
//! waited (from the pool's own CMAP events), and how many connections were opened. Runs are
//! interleaved (mode A, mode B, mode A, ...) and the median is quoted with the min–max, because
//! the machines are noisy.
//!
//! ```text
//! cargo bench --bench affinity            # embedded FerretDB, or MONGODB_URI
//! cargo bench --bench affinity -- 5       # 5 runs per cell (default 3)
//! ```

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use may_mongo::bson::doc;
use may_mongo::{Affinity, Client, ClientOptions, CmapEvent, EventHandler};

const TOTAL_OPS: usize = 20_000;

#[derive(Default)]
struct PoolWatch {
    waits: Mutex<Vec<Duration>>,
    created: Mutex<usize>,
}

impl PoolWatch {
    fn record(&self, e: CmapEvent) {
        match e {
            CmapEvent::ConnectionCheckedOut(e) => self.waits.lock().unwrap().push(e.duration),
            CmapEvent::ConnectionCreated(_) => *self.created.lock().unwrap() += 1,
            _ => {}
        }
    }
}

struct Cell {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
    checkouts: usize,
    created: usize,
}

fn run(uri: &str, affinity: Affinity, coroutines: usize) -> Cell {
    let watch = Arc::new(PoolWatch::default());
    let mut opts = ClientOptions::parse(uri).run().unwrap();
    opts.affinity = affinity;
    let recorder = watch.clone();
    opts.cmap_event_handler = Some(EventHandler::callback(move |e| recorder.record(e)));
    let client = Client::with_options(opts).unwrap();
    let per = (TOTAL_OPS / coroutines).max(2);
    let started = Instant::now();
    let handles: Vec<_> = (0..coroutines)
        .map(|_| {
            let c = client.clone();
            may::go!(move || {
                let admin = c.database("admin");
                for _ in 0..per {
                    admin.run_command(doc! { "ping": 1 }).run().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed();
    client.shutdown();
    let mut waits = watch.waits.lock().unwrap().clone();
    waits.sort();
    let pct = |p: f64| waits[((waits.len() - 1) as f64 * p) as usize];
    let created = *watch.created.lock().unwrap();
    Cell {
        ops_per_sec: (per * coroutines) as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        checkouts: waits.len(),
        created,
    }
}

fn fmt_d(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn main() {
    may::config().set_worker_pin(false);
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let (uri, _server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            let s = ferretdb_embed::Server::start(&Default::default()).expect("FerretDB");
            (s.uri(), Some(s))
        }
    };
    println!(
        "server {uri}; {TOTAL_OPS} pings per cell, maxPoolSize 100, {runs} interleaved runs\n"
    );
    println!(
        "| coroutines | affinity | ops/s median (min–max) | check-out wait p50 | p99 | check-outs | connections opened |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for coroutines in [1, 100, 10_000] {
        let modes = [Affinity::PerOperation, Affinity::PerCoroutine];
        let mut cells: Vec<Vec<Cell>> = vec![Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (i, mode) in modes.iter().enumerate() {
                eprint!("\r{coroutines} coroutines, {mode:?}...          ");
                cells[i].push(run(&uri, *mode, coroutines));
            }
        }
        eprint!("\r                                              \r");
        for (i, mode) in modes.iter().enumerate() {
            let c = &mut cells[i];
            c.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            let med = &c[c.len() / 2];
            println!(
                "| {coroutines} | {mode:?} | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} |",
                med.ops_per_sec,
                c[0].ops_per_sec,
                c[c.len() - 1].ops_per_sec,
                fmt_d(med.p50),
                fmt_d(med.p99),
                med.checkouts,
                med.created
            );
        }
    }
}
