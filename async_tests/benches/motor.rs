//! The Motor question, measured: the same workload through the async API (tokio, 2 workers)
//! and through the blocking API, on each core, at 1, 100 and 10,000 concurrent tasks.
//!
//! Workload: `find_one` by `_id` on a 10-document collection, each task looping for a fixed
//! time. (FerretDB 1.24 on SQLite scans the collection for a `find` by `_id`: on 1,000
//! documents one query took 24 ms, and the figures measured the server, not the driver.) Prints ops/s and p50/p99 latency per contender and level as a markdown table
//! (the one in notes/motor-technique.md).
//!
//!     cargo bench -p async_tests --bench motor            (about a minute)
//!     SECONDS_PER_POINT=5 cargo bench -p async_tests --bench motor

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::{Client, ClientOptions, Collection, Core};

const LEVELS: [usize; 3] = [1, 100, 10_000];
const DOCS: i32 = 10;

/// Per-task latencies (µs) over one measured window.
struct Point {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<u32>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn blocking_client(uri: &str, core: Core) -> Client {
    let mut o = ClientOptions::parse(uri).run().unwrap();
    o.core = core;
    Client::with_options(o).unwrap()
}

fn key(task: usize, i: usize) -> i32 {
    ((task * 7919 + i * 104_729) % DOCS as usize) as i32
}

/// `tasks` coroutines (or OS threads) looping `find_one` for `window`.
fn run_blocking(
    coll: &Collection<Document>,
    core: Core,
    tasks: usize,
    window: Duration,
) -> Result<Point, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let body = |task: usize, coll: Collection<Document>, stop: Arc<AtomicBool>| {
        move || {
            let mut lat = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                coll.find_one(doc! { "_id": key(task, i) })
                    .run()
                    .unwrap()
                    .unwrap();
                lat.push(t.elapsed().as_micros() as u32);
                i += 1;
            }
            lat
        }
    };
    let latencies: Vec<u32> = match core {
        Core::Coroutine => {
            let hs: Vec<_> = (0..tasks)
                .map(|t| may::go!(body(t, coll.clone(), stop.clone())))
                .collect();
            std::thread::sleep(window);
            stop.store(true, Ordering::Relaxed);
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        }
        Core::Threaded => {
            let mut hs = Vec::with_capacity(tasks);
            for t in 0..tasks {
                let spawned = std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(body(t, coll.clone(), stop.clone()));
                match spawned {
                    Ok(h) => hs.push(h),
                    Err(e) => {
                        stop.store(true, Ordering::Relaxed);
                        hs.into_iter().for_each(|h| drop(h.join()));
                        return Err(format!("thread {t} of {tasks} could not start: {e}"));
                    }
                }
            }
            std::thread::sleep(window);
            stop.store(true, Ordering::Relaxed);
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        }
    };
    Ok(Point {
        ops: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    })
}

/// `tasks` tokio tasks on 2 workers looping `find_one().await` for `window`.
fn run_async(client: &may_mongo::motor::Client, tasks: usize, window: Duration) -> Point {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let coll = client
        .database("bench_motor")
        .collection::<Document>("docs");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let latencies = rt.block_on(async {
        let hs: Vec<_> = (0..tasks)
            .map(|task| {
                let (coll, stop) = (coll.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        coll.find_one(doc! { "_id": key(task, i) })
                            .await
                            .unwrap()
                            .unwrap();
                        lat.push(t.elapsed().as_micros() as u32);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for h in hs {
            all.extend(h.await.unwrap());
        }
        all
    });
    Point {
        ops: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}

fn main() {
    let window = Duration::from_secs(
        std::env::var("SECONDS_PER_POINT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let uri = async_tests::uri();
    let setup = blocking_client(&uri, Core::Threaded);
    let coll = setup.database("bench_motor").collection::<Document>("docs");
    coll.drop().run().unwrap();
    let docs: Vec<Document> = (0..DOCS)
        .map(|i| doc! { "_id": i, "name": format!("doc {i}"), "tags": ["a", "b"] })
        .collect();
    coll.insert_many(&docs).ordered(false).run().unwrap();
    setup.shutdown();

    eprintln!("server {uri}; {window:?} per point");
    println!("| contender | tasks | ops/s | p50 | p99 | connections |");
    println!("|---|---|---|---|---|---|");
    for tasks in LEVELS {
        for (name, core, asynchronous) in [
            ("async API, coroutine core (tokio)", Core::Coroutine, true),
            ("async API, threaded core (tokio)", Core::Threaded, true),
            ("blocking API, coroutines", Core::Coroutine, false),
            ("blocking API, OS threads", Core::Threaded, false),
        ] {
            eprint!("{name}, {tasks} tasks ... ");
            let client = blocking_client(&uri, core);
            let point = if asynchronous {
                let a = may_mongo::motor::Client::from(client.clone());
                run_async(&a, tasks, window)
            } else {
                let coll = client
                    .database("bench_motor")
                    .collection::<Document>("docs");
                // A thread per task may be refused; say so rather than fail the run.
                match run_blocking(&coll, core, tasks, window) {
                    Ok(p) => p,
                    Err(why) => {
                        eprintln!("{why}");
                        println!("| {name} | {tasks} | not measured: {why} | | | |");
                        continue;
                    }
                }
            };
            let mut lat = point.latencies;
            lat.sort_unstable();
            let rate = point.ops as f64 / point.elapsed.as_secs_f64();
            eprintln!("{rate:.0} ops/s");
            println!(
                "| {name} | {tasks} | {rate:.0} | {:.2} ms | {:.2} ms | {} |",
                percentile(&lat, 0.50) as f64 / 1000.0,
                percentile(&lat, 0.99) as f64 / 1000.0,
                client.pool_stats().total
            );
            client.shutdown();
        }
    }
}
