//! The tour: the project's main job.
//!
//! On each core it runs 1,000 concurrent tasks — may coroutines for the coroutine core, OS
//! threads for the threaded core — that each insert their own document and read it back,
//! checks every read, and prints throughput and peak memory.
//!
//! Runs against `MONGODB_URI` if set; otherwise builds (first run only) and starts the
//! embedded FerretDB on a free loopback port, and stops it afterwards.
//!
//! ```text
//! cargo run --release --example tour [-- TASKS]
//! ```
//!
//! The driver's own log is `tracing` output, off unless asked for. `RUST_LOG` asks, by target:
//!
//! ```text
//! RUST_LOG=may_mongo::topology=debug,may_mongo::connection=debug cargo run --release --example tour -- 10
//! RUST_LOG=may_mongo=debug cargo run --release --example tour -- 2     # everything (many lines)
//! ```

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use may_mongo::bson::{Document, doc};
use may_mongo::{Client, ClientOptions, Collection, Core};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The driver logs through `tracing`; this subscriber prints what RUST_LOG selects (to
    // stderr), and nothing at all without it.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    may::config().set_worker_pin(false);
    let tasks: i64 = std::env::args().nth(1).map_or(Ok(1000), |s| s.parse())?;

    // Keep the embedded server (if any) alive until the end of main.
    let (uri, _server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            eprintln!("MONGODB_URI is unset: starting the embedded FerretDB v1.24.2 ...");
            let server = ferretdb_embed::Server::start(&Default::default())?;
            (server.uri(), Some(server))
        }
    };
    println!("server: {uri}");
    println!("tasks per core: {tasks} (each: insert_one + find_one of its own document)\n");
    println!(
        "{:<10} {:>7} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "core", "tasks", "ok reads", "seconds", "ops/s", "peak RSS", "connections"
    );

    let mut failures = 0;
    let mut topologies = Vec::new();
    for core in [Core::Coroutine, Core::Threaded] {
        reset_peak_rss();
        let mut opts = ClientOptions::parse(&uri).run()?;
        opts.core = core;
        opts.app_name = Some("may_mongo-tour".into());
        let client = Client::with_options(opts)?;
        let db = client.database(&format!("tour_{}", core.name()));
        db.run_command(doc! { "dropDatabase": 1 }).run()?;
        let coll = db.collection::<Document>("docs");

        let started = Instant::now();
        let good = match core {
            Core::Coroutine => {
                let handles: Vec<_> = (0..tasks)
                    .map(|i| {
                        let coll = coll.clone();
                        may::go!(move || round_trip(&coll, i))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(false))
                    .filter(|ok| *ok)
                    .count()
            }
            Core::Threaded => {
                let handles: Vec<_> = (0..tasks)
                    .map(|i| {
                        let coll = coll.clone();
                        std::thread::Builder::new()
                            .stack_size(256 * 1024)
                            .spawn(move || round_trip(&coll, i))
                    })
                    .collect::<Result<_, _>>()?;
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(false))
                    .filter(|ok| *ok)
                    .count()
            }
        };
        let secs = started.elapsed().as_secs_f64();
        let connections = client.pool_stats().total;
        failures += tasks as usize - good;
        println!(
            "{:<10} {:>7} {:>9} {:>10.3} {:>10.0} {:>9.1} MiB {:>12}",
            core.name(),
            tasks,
            good,
            secs,
            (2 * tasks) as f64 / secs,
            peak_rss_kib() as f64 / 1024.0,
            connections
        );
        db.run_command(doc! { "dropDatabase": 1 }).run()?;
        // What this core's monitor found (one per server: a coroutine, resp. a thread).
        let t = client.topology();
        let servers: Vec<String> = t
            .servers
            .iter()
            .map(|(a, s)| format!("{a} {}", s.server_type.spec_name()))
            .collect();
        topologies.push(format!(
            "{:<10} {:?}: {}",
            core.name(),
            t.topology_type,
            servers.join(", ")
        ));
        client.shutdown();
    }
    println!("\ntopology as each client's monitors saw it:");
    for t in topologies {
        println!("{t}");
    }
    println!(
        "\npeak RSS is the whole process (driver, tasks, runtime), reset before each core.\n\
         FerretDB's own memory is not included."
    );
    if failures > 0 {
        return Err(format!("{failures} tasks did not read back their own document").into());
    }
    Ok(())
}

/// One task: insert a document of its own (the driver gives it an ObjectId `_id`), read it
/// back by that id, check it.
///
/// (FerretDB's SQLite backend pushes `_id` filters on ObjectIds and strings down to SQL, but
/// scans and decodes every document for integer ids: driver-generated ids are both the
/// idiomatic choice and the one that measures the driver rather than a collection scan.)
fn round_trip(coll: &Collection<Document>, i: i64) -> bool {
    let token = format!("task-{i}-{}", i * 7919);
    let inserted = coll.insert_one(doc! { "task": i, "token": &token }).run();
    let read = inserted.and_then(|r| coll.find_one(doc! { "_id": r.inserted_id }).run());
    match read {
        Ok(Some(d)) => d.get_str("token").ok() == Some(token.as_str()),
        Ok(None) => {
            eprintln!("task {i}: document not found");
            false
        }
        Err(e) => {
            eprintln!("task {i}: {e}");
            false
        }
    }
}

/// Peak resident set size of this process so far (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak-RSS mark (Linux: writing 5 to clear_refs), so each core is measured alone.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
