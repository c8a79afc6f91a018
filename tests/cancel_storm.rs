//! A cancellation storm against the real server: coroutines cancelled at random moments —
//! waiting in the pool's queue, selecting, writing a large insert, reading a reply — and then
//! the pool's counts and this process's sockets checked. A connection whose operation did
//! not finish must be closed, never pooled, never lost with its coroutine.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::Core;

fn sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| t.to_string_lossy().starts_with("socket:"))
        .count()
}

const ROUNDS: usize = 12;

#[test]
fn cancelled_coroutines_leave_the_pool_whole() {
    common::init();
    let uri = common::uri();
    let mut opts = may_mongo::ClientOptions::parse(&uri).run().unwrap();
    opts.core = Core::Coroutine;
    opts.max_pool_size = 8;
    let client = may_mongo::Client::with_options(opts).unwrap();
    let coll = client.database("cancel_storm").collection::<Document>("c");
    coll.drop().run().unwrap();
    let big = "x".repeat(64 * 1024);
    let mut random = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % n
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut cancelled = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        // 32 coroutines for 8 connections: most wait in line, some write 64 KiB inserts,
        // some read replies.
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (coll, big, stop) = (coll.clone(), big.clone(), stop.clone());
                may::go!(move || {
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let id = format!("{round}-{i}-{k}");
                        coll.insert_one(doc! { "_id": &id, "big": &big })
                            .run()
                            .unwrap();
                        coll.find_one(doc! { "_id": &id }).run().unwrap();
                        k += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20 + next(30)));
        let mut survivors = Vec::new();
        for h in handles {
            if next(2) == 0 {
                // SAFETY: our own coroutine; the driver must unwind cleanly wherever it is.
                unsafe { h.coroutine().cancel() };
                let _ = h.join(); // Err if the cancel struck, Ok if the coroutine had just ended
                cancelled += 1;
            } else {
                survivors.push(h);
            }
        }
        stop.store(true, Ordering::Relaxed);
        // The survivors finish their current call and stop. (Before the fix a cancelled
        // waiter stayed in the pool's queue, was granted a connection, and the connection
        // was lost with it: after a few rounds every connection was, and this waited for ever.)
        let until = Instant::now() + Duration::from_secs(30);
        while !survivors.iter().all(|h| h.is_done()) {
            assert!(
                Instant::now() < until,
                "round {round}: survivors stuck; pool {:?}",
                client.pool_stats()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in survivors {
            h.join().expect("a surviving coroutine finished its work");
        }
        stop.store(false, Ordering::Relaxed);
        let s = client.pool_stats();
        assert_eq!(
            (s.checked_out, s.waiters),
            (0, 0),
            "round {round}: a connection or a place in line was lost: {s:?}"
        );
        assert!(s.total <= 8, "{s:?}");
    }
    // The process holds the pool's connections and the monitor's, nothing more.
    let s = client.pool_stats();
    let open = sockets();
    println!(
        "{cancelled} coroutines cancelled over {ROUNDS} rounds in {:?}; pool {s:?}; {open} sockets open",
        started.elapsed()
    );
    assert!(
        open <= s.total + 2,
        "{open} sockets for a pool of {}",
        s.total
    );
    // And the pool still serves.
    coll.find_one(doc! {}).run().unwrap();
}
