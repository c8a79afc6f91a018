//! Benchmark: what topology monitoring costs and buys, per core.
//!
//! 1. **First operation.** A fresh client's first `ping` waits for its monitor's handshake
//!    (server selection needs a known server); later pings don't. Measured on 20 fresh clients
//!    against the real server, next to the steady-state ping.
//! 2. **Step-down recovery.** A scripted three-member replica set elects a new primary (a
//!    second after the last one) while a writer inserts in a loop; measured: time until a write
//!    lands on the new primary, and how many writes were refused (`NotWritablePrimary`) on the
//!    way. `heartbeatFrequencyMS` is 10 s, so recovery comes from the error rule (mark Unknown,
//!    check now), not from polling.
//! 3. **Monitor memory.** RSS added by a client with 200 seeds nobody listens on: 200
//!    monitors, coroutines or threads.
//!
//! ```text
//! cargo bench --bench topology            # embedded FerretDB, or MONGODB_URI
//! ```

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/common/mock.rs"]
mod mock;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc, oid::ObjectId};
use may_mongo::{Client, ClientOptions, Core};
use mock::{Action, MockServer};

fn main() {
    may::config().set_worker_pin(false);
    let (uri, _server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            let s = ferretdb_embed::Server::start(&Default::default()).unwrap();
            (s.uri(), Some(s))
        }
    };
    println!("server: {uri}\n");
    println!("1. first operation of a fresh client vs steady state (20 clients, median [min-max])");
    for core in [Core::Coroutine, Core::Threaded] {
        let (first, steady) = first_operation(&uri, core);
        println!(
            "   {:<9} first ping {}   steady ping {}",
            core.name(),
            summary(&first),
            summary(&steady)
        );
    }
    println!(
        "\n2. step-down recovery, scripted 3-member set, heartbeatFrequencyMS=10000 (5 elections, 1 s apart)"
    );
    for core in [Core::Coroutine, Core::Threaded] {
        let (times, refused) = step_down(core);
        println!(
            "   {:<9} to first write on the new primary {}   refused writes per election {:?}",
            core.name(),
            summary(&times),
            refused
        );
    }
    println!("\n3. memory of 200 monitors (200 seeds nobody listens on)");
    for core in [Core::Coroutine, Core::Threaded] {
        println!(
            "   {:<9} +{:.1} MiB RSS",
            core.name(),
            monitors_rss(core, 200)
        );
    }
}

fn summary(v: &[Duration]) -> String {
    let mut v = v.to_vec();
    v.sort();
    format!(
        "{:>8.2?} [{:.2?}-{:.2?}]",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

fn run_on<T: Send + 'static>(core: Core, f: impl FnOnce() -> T + Send + 'static) -> T {
    match core {
        Core::Coroutine => may::go!(f).join().unwrap(),
        Core::Threaded => f(),
    }
}

fn first_operation(uri: &str, core: Core) -> (Vec<Duration>, Vec<Duration>) {
    let (mut first, mut steady) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut opts = ClientOptions::parse(uri).run().unwrap();
        opts.core = core;
        let (f, s) = run_on(core, move || {
            let started = Instant::now();
            let client = Client::with_options(opts).unwrap();
            let admin = client.database("admin");
            admin.run_command(doc! { "ping": 1 }).run().unwrap();
            let f = started.elapsed();
            let started = Instant::now();
            admin.run_command(doc! { "ping": 1 }).run().unwrap();
            (f, started.elapsed())
        });
        first.push(f);
        steady.push(s);
    }
    (first, steady)
}

fn step_down(core: Core) -> (Vec<Duration>, Vec<usize>) {
    let hosts: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let primary = Arc::new(AtomicUsize::new(0));
    let term = Arc::new(AtomicUsize::new(1));
    let members: Vec<MockServer> = (0..3)
        .map(|me| {
            let (hosts, primary, term) = (hosts.clone(), primary.clone(), term.clone());
            MockServer::start(move |req, _| {
                let is_primary = primary.load(Ordering::SeqCst) == me;
                match req.command.as_str() {
                    "hello" | "isMaster" => {
                        let hosts = hosts.lock().unwrap().clone();
                        let mut election = [0u8; 12];
                        election[11] = term.load(Ordering::SeqCst) as u8;
                        let mut r = doc! {
                            "isWritablePrimary": is_primary, "secondary": !is_primary,
                            "setName": "rs", "setVersion": 1, "hosts": hosts.clone(),
                            "primary": hosts[primary.load(Ordering::SeqCst)].clone(),
                            "me": hosts[me].clone(), "minWireVersion": 0, "maxWireVersion": 21,
                            "ok": 1.0,
                        };
                        if is_primary {
                            r.insert("electionId", ObjectId::from_bytes(election));
                        }
                        Action::Reply(r)
                    }
                    "insert" if !is_primary => Action::Reply(doc! {
                    "ok": 0.0, "code": 10107, "errmsg": "not primary" }),
                    _ => Action::Reply(doc! { "ok": 1.0, "n": 1 }),
                }
            })
        })
        .collect();
    *hosts.lock().unwrap() = members
        .iter()
        .map(|m| format!("127.0.0.1:{}", m.port))
        .collect();
    let seeds = hosts.lock().unwrap().join(",");
    let mut opts = ClientOptions::parse(format!("mongodb://{seeds}/?replicaSet=rs"))
        .run()
        .unwrap();
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let insert = |c: &Client| {
        let c = c.clone();
        run_on(core, move || {
            c.database("db")
                .collection::<Document>("c")
                .insert_one(doc! { "x": 1 })
                .run()
                .map(drop)
        })
    };
    insert(&client).unwrap();
    let (mut times, mut refused) = (Vec::new(), Vec::new());
    for election in 1..=5 {
        let new = election % 3;
        let count = |i: usize| {
            members[i]
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.command == "insert")
                .count()
        };
        let before = count(new);
        // Elections a second apart: monitors may check again (the 500 ms floor has passed).
        std::thread::sleep(Duration::from_secs(1));
        term.fetch_add(1, Ordering::SeqCst);
        primary.store(new, Ordering::SeqCst);
        let started = Instant::now();
        let mut no = 0;
        loop {
            match insert(&client) {
                Ok(()) if count(new) > before => break,
                Ok(()) => {}
                Err(_) => no += 1,
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no recovery");
        }
        times.push(started.elapsed());
        refused.push(no);
    }
    (times, refused)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn monitors_rss(core: Core, n: usize) -> f64 {
    // Hold every listener until all ports are read, so no port is handed out twice.
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(listeners);
    let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut opts = ClientOptions::parse(format!("mongodb://{}/", seeds.join(",")))
        .run()
        .unwrap();
    opts.core = core;
    let before = rss_mib();
    let client = Client::with_options(opts).unwrap();
    // Let every monitor run its first (failing) check and go to sleep.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_mib();
    assert_eq!(client.topology().servers.len(), n);
    drop(client);
    after - before
}
