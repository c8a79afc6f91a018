//! What 10,000 change streams waiting for events cost, each iterated by a coroutine of its
//! own on may's default stack: memory (RSS), OS threads, CPU while they wait, how late a timer
//! on the same workers fires, and how long one event takes to reach them all.
//!
//! ```text
//! cargo bench --bench watchers                   # 10,000 watchers
//! WATCHERS=1000 cargo bench --bench watchers
//! ```
//!
//! No server here has change streams, so the program starts a scripted replica-set primary in
//! a child process of its own (this same binary with `--serve`): one may coroutine per
//! connection, which answers `$changeStream` aggregates and holds each `getMore` for its
//! `maxTimeMS` unless an event is published (`{ publish: 1 }`). A child process, because each
//! waiting change stream holds a connection (its `getMore` is parked on the server), and
//! 10,000 connections' two ends in one process would pass the file limit here (20,000).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::{Client, ClientOptions, Core};
use may_mongo_protocol::{
    HEADER_LEN, Header, Limits, MsgFlags, OpCode, OpMsg, OpMsgBuilder, OpQuery, encode_op_reply,
};

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve();
        return;
    }
    let watchers: usize = std::env::var("WATCHERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    may::config().set_workers(2);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the scripted server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the server's port");
    let result = run(port, watchers);
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

fn rss_kib() -> u64 {
    status_field("VmRSS:")
}

fn threads() -> u64 {
    status_field("Threads:")
}

fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / 100)
}

fn run(port: u16, watchers: usize) -> may_mongo::Result<()> {
    let uri = format!(
        "mongodb://127.0.0.1:{port}/?replicaSet=rs&maxPoolSize={}&maxConnecting=64",
        watchers + 10
    );
    let mut options = ClientOptions::parse(&uri).run()?;
    options.core = Core::Coroutine;
    let client = Client::with_options(options)?;
    // Connect first, so that the figure below is the watchers' alone.
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()?;
    let before = rss_kib();
    let opened = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for _ in 0..watchers {
        let (client, opened, received, failed) = (
            client.clone(),
            opened.clone(),
            received.clone(),
            failed.clone(),
        );
        may::go!(move || {
            let coll = client.database("db").collection::<Document>("c");
            let mut stream = match coll.watch().max_await_time(Duration::from_secs(2)).run() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("watch: {e}");
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            opened.fetch_add(1, Ordering::Relaxed);
            // Wait for one event, then stop.
            loop {
                match stream.next_if_any() {
                    Ok(Some(_)) => {
                        received.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        eprintln!("next: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
    }
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < watchers {
        std::thread::sleep(Duration::from_millis(20));
    }
    let open_time = started.elapsed();
    // Let every first getMore reach the server.
    std::thread::sleep(Duration::from_millis(500));
    let parked = rss_kib();
    let pool = client.pool_stats();

    // While they all wait: CPU used, and how late a 10 ms timer fires on the same workers.
    let lateness = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_time();
    let window = Duration::from_secs(3);
    let ticker = {
        let lateness = lateness.clone();
        may::go!(move || {
            let end = Instant::now() + window;
            while Instant::now() < end {
                let t = Instant::now();
                may::coroutine::sleep(Duration::from_millis(10));
                let late = t.elapsed().saturating_sub(Duration::from_millis(10));
                lateness.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
            }
        })
    };
    ticker.join().unwrap();
    let cpu = cpu_time() - cpu_before;

    // One event: how long until every watcher has it.
    let published = Instant::now();
    client
        .database("admin")
        .run_command(doc! { "publish": 1 })
        .run()?;
    while received.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < watchers {
        assert!(
            published.elapsed() < Duration::from_secs(60),
            "only {} of {watchers} watchers got the event",
            received.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered = published.elapsed();

    println!("| figure | value |");
    println!("|---|---|");
    println!("| watchers (coroutines, may's default stack) | {watchers} |");
    println!("| failed | {} |", failed.load(Ordering::Relaxed));
    println!("| time to open them all | {open_time:.2?} |");
    println!(
        "| RSS before / with all waiting | {:.1} MiB / {:.1} MiB |",
        before as f64 / 1024.0,
        parked as f64 / 1024.0
    );
    println!(
        "| RSS per waiting watcher | {:.1} KiB |",
        (parked.saturating_sub(before)) as f64 / watchers as f64
    );
    println!(
        "| connections (open / checked out) | {} / {} |",
        pool.total, pool.checked_out
    );
    println!("| OS threads in the process | {} |", threads());
    println!(
        "| CPU while all wait ({window:?}) | {:.0} ms ({:.1}% of one core) |",
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() / window.as_secs_f64() * 100.0
    );
    println!(
        "| latest a 10 ms timer fired, same workers | {:.2} ms |",
        lateness.load(Ordering::Relaxed) as f64 / 1000.0
    );
    println!("| one event reached every watcher in | {delivered:.2?} |");
    client.shutdown();
    Ok(())
}

// ---- the scripted server (child process) ------------------------------------------------

/// Events published so far; a getMore returns one when its cursor has not seen the newest.
static EVENTS: AtomicI64 = AtomicI64::new(0);
static NEXT_CURSOR: AtomicI64 = AtomicI64::new(1);

fn serve() {
    may::config().set_workers(2).set_stack_size(0x2000);
    let listener = may::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    println!("{port}");
    std::io::stdout().flush().unwrap();
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        may::go!(move || connection(sock));
    }
}

fn connection(mut sock: may::net::TcpStream) {
    let _ = sock.set_nodelay(true);
    let me = format!("127.0.0.1:{}", sock.local_addr().unwrap().port());
    // Cursor id → the number of events it has returned.
    let mut cursors: std::collections::HashMap<i64, i64> = Default::default();
    loop {
        let mut header = [0u8; HEADER_LEN];
        if sock.read_exact(&mut header).is_err() {
            return;
        }
        let h = Header::parse(&header).unwrap();
        let mut payload = vec![0u8; h.length as usize - HEADER_LEN];
        if sock.read_exact(&mut payload).is_err() {
            return;
        }
        let legacy = h.op_code == OpCode::Query as i32;
        let body = if legacy {
            Document::try_from(OpQuery::parse(&payload).unwrap().query).unwrap()
        } else {
            Document::try_from(OpMsg::parse(&payload).unwrap().body).unwrap()
        };
        let command = body.keys().next().cloned().unwrap_or_default();
        let reply = match command.as_str() {
            "hello" | "isMaster" | "ismaster" => doc! {
                "helloOk": true, "isWritablePrimary": true, "setName": "rs", "setVersion": 1,
                "hosts": [&me], "primary": &me, "me": &me, "logicalSessionTimeoutMinutes": 30,
                "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000, "minWireVersion": 0, "maxWireVersion": 21,
                "ok": 1.0,
            },
            "aggregate" => {
                let id = NEXT_CURSOR.fetch_add(1, Ordering::Relaxed);
                cursors.insert(id, EVENTS.load(Ordering::Relaxed));
                doc! {
                    "cursor": { "id": id, "ns": "db.c", "firstBatch": [],
                                "postBatchResumeToken": { "_data": "0" } },
                    "ok": 1.0,
                }
            }
            "getMore" => {
                let id = body.get_i64("getMore").unwrap_or(0);
                let wait = body.get_i64("maxTimeMS").unwrap_or(1000);
                let seen = cursors.get(&id).copied().unwrap_or(0);
                // Wait for an event, checking every 20 ms (a coroutine sleep: no thread).
                let end = Instant::now() + Duration::from_millis(wait as u64);
                let mut now = EVENTS.load(Ordering::Relaxed);
                while now == seen && Instant::now() < end {
                    may::coroutine::sleep(Duration::from_millis(20));
                    now = EVENTS.load(Ordering::Relaxed);
                }
                cursors.insert(id, now);
                let batch: Vec<Document> = (seen..now)
                    .map(|n| {
                        doc! {
                            "_id": { "_data": format!("{n}") }, "operationType": "insert",
                            "ns": { "db": "db", "coll": "c" }, "documentKey": { "_id": n },
                            "fullDocument": { "_id": n },
                        }
                    })
                    .collect();
                doc! {
                    "cursor": { "id": id, "ns": "db.c", "nextBatch": batch,
                                "postBatchResumeToken": { "_data": format!("{now}") } },
                    "ok": 1.0,
                }
            }
            "publish" => {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                doc! { "ok": 1.0 }
            }
            _ => doc! { "ok": 1.0 },
        };
        let mut out = Vec::new();
        if legacy {
            encode_op_reply(
                &mut out,
                1,
                h.request_id,
                0,
                0,
                &[reply],
                &Limits::default(),
            )
            .unwrap();
        } else {
            let mut b = OpMsgBuilder::new(&mut out, MsgFlags::default(), Limits::default());
            b.body(&reply).unwrap();
            b.finish(1, h.request_id).unwrap();
        }
        if sock.write_all(&out).is_err() {
            return;
        }
    }
}
