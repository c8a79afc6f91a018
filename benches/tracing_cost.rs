//! What the driver's `tracing` log costs: nothing measurable when off, and how much when on.
//!
//! One thread runs sequential `ping`s on the threaded core against the embedded FerretDB (a
//! latency-bound loop of the cheapest command, where a per-call cost shows most; each ping
//! makes a selection, a check-out, a command and a check-in, each with its log points), in
//! three settings,
//! interleaved over several rounds:
//! - no subscriber at all (the default);
//! - a subscriber whose filter (`warn`) turns the driver's debug events off: each log point
//!   is then a cached "not interested" check;
//! - `may_mongo=debug`, every command, connection and selection event formatted (into
//!   `io::sink`, so the figure is the driver's cost, not a terminal's).
//!
//! It also times a disabled log point alone. Scoped subscribers (`with_default`) are
//! per-thread, which is why the loop runs on this thread with the threaded core.
//!
//! ```text
//! cargo bench --bench tracing_cost [-- --ops N --rounds R]
//! ```

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use bson::doc;
use may_mongo::{Client, ClientOptions, Core, Database};

fn ping_loop(db: &Database, ops: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..ops {
        db.run_command(doc! { "ping": 1 }).run().unwrap();
    }
    ops as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let mut ops = 20_000;
    let mut rounds = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ops" => ops = args.next().unwrap().parse().unwrap(),
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            _ => {} // `--bench`, added by cargo
        }
    }
    let (uri, _server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            let s = ferretdb_embed::Server::start(&Default::default()).expect("start FerretDB");
            (s.uri(), Some(s))
        }
    };
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = Core::Threaded;
    let client = Client::with_options(opts).unwrap();
    let db = client.database("admin");
    ping_loop(&db, ops / 5); // warm up

    let off = || {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_writer(std::io::sink)
            .finish()
    };
    let on = || {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("may_mongo=debug"))
            .with_writer(std::io::sink)
            .finish()
    };
    let mut figures = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        figures[0].push(ping_loop(&db, ops));
        figures[1].push(tracing::subscriber::with_default(off(), || {
            ping_loop(&db, ops)
        }));
        figures[2].push(tracing::subscriber::with_default(on(), || {
            ping_loop(&db, ops)
        }));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut figures[0].clone());
    println!(
        "sequential pings, threaded core, {ops} per round, {rounds} rounds (median; all rounds)"
    );
    let names = [
        "no subscriber",
        "subscriber, driver events off (warn)",
        "subscriber, may_mongo=debug (to a sink)",
    ];
    for (name, v) in names.iter().zip(figures.iter_mut()) {
        let all: Vec<String> = v.iter().map(|f| format!("{f:.0}")).collect();
        let m = median(v);
        println!(
            "  {name:42} {m:>7.0} ops/s  ({:+.1}% vs none)  [{}]",
            (m / base - 1.0) * 100.0,
            all.join(", ")
        );
    }
    // A disabled log point alone.
    let n = 10_000_000u32;
    let ns = tracing::subscriber::with_default(off(), || {
        let t = Instant::now();
        for i in 0..n {
            tracing::debug!(target: may_mongo::event::log::COMMAND, i, "Command started");
        }
        t.elapsed().as_nanos() as f64 / f64::from(n)
    });
    println!("  a disabled log point: {ns:.2} ns");
}
