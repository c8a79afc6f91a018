//! Per-coroutine connection affinity against the real server: requests pin a connection,
//! per-coroutine mode pins one for a coroutine's life, and nothing leaks or hangs.
//!
//! FerretDB reports `connectionId: 42` on every connection, so these tests identify
//! connections by the driver's own ids, read from command monitoring events. An event handler
//! runs on the coroutine that caused the event, so a coroutine-local tag tells whose command
//! it was.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::doc;
use may_mongo::{Affinity, Client, ClientOptions, CommandEvent, Core, ErrorKind, EventHandler};

may::coroutine_local!(static TAG: std::cell::Cell<u64> = std::cell::Cell::new(0));

/// Records (caller tag, connection id) for each command started.
#[derive(Default)]
struct ByCaller(Mutex<Vec<(u64, u32)>>);

impl ByCaller {
    /// A handler that records into `me`.
    fn handler(me: Arc<ByCaller>) -> EventHandler<CommandEvent> {
        EventHandler::callback(move |e| {
            if let CommandEvent::Started(e) = e {
                let tag = TAG.with(|t| t.get());
                me.0.lock().unwrap().push((tag, e.connection.id));
            }
        })
    }

    /// The set of connections each caller's commands used.
    fn connections_by_caller(&self) -> HashMap<u64, HashSet<u32>> {
        let mut by_tag: HashMap<u64, HashSet<u32>> = HashMap::new();
        for (tag, conn) in self.0.lock().unwrap().iter() {
            by_tag.entry(*tag).or_default().insert(*conn);
        }
        by_tag
    }
}

fn client(affinity: Affinity, max_pool: usize, handler: Option<Arc<ByCaller>>) -> Client {
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.affinity = affinity;
    opts.max_pool_size = max_pool;
    opts.command_event_handler = handler.map(ByCaller::handler);
    Client::with_options(opts).unwrap()
}

fn ping(c: &Client) -> may_mongo::Result<bson::Document> {
    c.database("admin").run_command(doc! { "ping": 1 }).run()
}

/// Waits until the pool's counters satisfy `f` (coroutine-local values drop after `join`
/// returns, so counts settle a moment later).
fn settle(c: &Client, f: impl Fn(&may_mongo::PoolStats) -> bool) -> may_mongo::PoolStats {
    let started = Instant::now();
    loop {
        let s = c.pool_stats();
        if f(&s) || started.elapsed() > Duration::from_secs(10) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_request_pins_one_connection_per_coroutine() {
    let events = Arc::new(ByCaller::default());
    let client = client(Affinity::PerOperation, 100, Some(events.clone()));
    let all_pinned = Arc::new(may::sync::Barrier::new(20));
    let handles: Vec<_> = (1..=20u64)
        .map(|tag| {
            let (c, all_pinned) = (client.clone(), all_pinned.clone());
            may::go!(move || {
                TAG.with(|t| t.set(tag));
                let _request = c.start_request();
                assert!(c.in_request());
                ping(&c).unwrap();
                all_pinned.wait(); // all twenty now hold their pinned connections at once
                for _ in 0..10 {
                    ping(&c).unwrap();
                    may::coroutine::yield_now();
                }
                // Nested requests keep the same connection.
                let inner = c.start_request();
                ping(&c).unwrap();
                drop(inner);
                ping(&c).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let by_tag = events.connections_by_caller();
    assert_eq!(by_tag.len(), 20);
    for (tag, conns) in &by_tag {
        assert_eq!(conns.len(), 1, "coroutine {tag} used {conns:?}");
    }
    // All 20 held their pins at the same moment, so the connections are all distinct.
    let distinct: HashSet<u32> = by_tag.values().flatten().copied().collect();
    assert_eq!(distinct.len(), 20, "{by_tag:?}");
    let s = settle(&client, |s| s.checked_out == 0);
    assert_eq!(s.checked_out, 0, "{s:?}");
}

#[test]
fn outside_a_request_operations_use_any_connection() {
    let client = client(Affinity::PerOperation, 100, None);
    may::go!({
        let c = client.clone();
        move || {
            assert!(!c.in_request());
            ping(&c).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(client.pool_stats().checked_out, 0);
}

#[test]
fn ten_thousand_coroutines_per_coroutine_mode_leak_nothing() {
    let client = client(Affinity::PerCoroutine, 50, None);
    let ok = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10_000)
        .map(|_| {
            let (c, ok) = (client.clone(), ok.clone());
            may::go!(move || {
                if ping(&c).is_ok() && ping(&c).is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(ok.load(Ordering::Relaxed), 10_000);
    let s = settle(&client, |s| s.checked_out == 0 && s.waiters == 0);
    assert!(s.total <= 50, "{s:?}");
    assert_eq!((s.checked_out, s.waiters, s.connecting), (0, 0, 0), "{s:?}");
    assert_eq!(s.idle, s.total, "every connection is back: {s:?}");
}

#[test]
fn per_coroutine_mode_pins_for_the_coroutines_life() {
    let events = Arc::new(ByCaller::default());
    let client = client(Affinity::PerCoroutine, 100, Some(events.clone()));
    let handles: Vec<_> = (1..=10u64)
        .map(|tag| {
            let c = client.clone();
            may::go!(move || {
                TAG.with(|t| t.set(tag));
                for _ in 0..5 {
                    ping(&c).unwrap();
                    may::coroutine::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let by_tag = events.connections_by_caller();
    assert!(by_tag.values().all(|c| c.len() == 1), "{by_tag:?}");
    let s = settle(&client, |s| s.checked_out == 0);
    assert_eq!(s.checked_out, 0, "{s:?}");
}

#[test]
fn thousand_waiters_time_out_on_one_busy_connection() {
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.max_pool_size = 1;
    opts.wait_queue_timeout = Some(Duration::from_millis(100));
    let client = Client::with_options(opts).unwrap();
    // Pin the only connection in a request and hold it.
    let (pinned_tx, pinned_rx) = may::sync::mpsc::channel();
    let holder = {
        let c = client.clone();
        may::go!(move || {
            let _request = c.start_request();
            ping(&c).unwrap();
            pinned_tx.send(()).unwrap();
            may::coroutine::sleep(Duration::from_millis(1500));
            ping(&c).unwrap();
        })
    };
    pinned_rx.recv().unwrap();
    let started = Instant::now();
    let waiters: Vec<_> = (0..1000)
        .map(|_| {
            let c = client.clone();
            may::go!(move || ping(&c))
        })
        .collect();
    let results: Vec<_> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
    let waited = started.elapsed();
    for r in &results {
        match r {
            Err(e) => assert!(
                matches!(&*e.kind, ErrorKind::WaitQueueTimeout { .. }),
                "{e}"
            ),
            Ok(_) => panic!("a waiter got the pinned connection"),
        }
    }
    assert!(
        waited < Duration::from_millis(1400),
        "all timed out before the holder let go: {waited:?}"
    );
    holder.join().unwrap();
    let s = settle(&client, |s| s.checked_out == 0);
    assert_eq!((s.total, s.checked_out, s.waiters), (1, 0, 0), "{s:?}");
}

#[test]
fn threads_pin_too_and_give_back_on_exit() {
    let events = Arc::new(ByCaller::default());
    let client = client(Affinity::PerCoroutine, 100, Some(events.clone()));
    let threads: Vec<_> = (1..=4u64)
        .map(|tag| {
            let c = client.clone();
            std::thread::spawn(move || {
                TAG.with(|t| t.set(tag));
                for _ in 0..5 {
                    ping(&c).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let by_tag = events.connections_by_caller();
    assert_eq!(by_tag.len(), 4);
    assert!(by_tag.values().all(|c| c.len() == 1), "{by_tag:?}");
    let s = settle(&client, |s| s.checked_out == 0);
    assert_eq!(
        s.checked_out, 0,
        "thread exit returned the pinned connections: {s:?}"
    );
}

#[test]
fn threaded_core_requests_pin_too() {
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.core = Core::Threaded;
    let events = Arc::new(ByCaller::default());
    opts.command_event_handler = Some(ByCaller::handler(events.clone()));
    let client = Client::with_options(opts).unwrap();
    std::thread::scope(|s| {
        for tag in 1..=4u64 {
            let c = client.clone();
            s.spawn(move || {
                TAG.with(|t| t.set(tag));
                let _r = c.start_request();
                for _ in 0..5 {
                    ping(&c).unwrap();
                }
            });
        }
    });
    let by_tag = events.connections_by_caller();
    assert!(by_tag.values().all(|c| c.len() == 1), "{by_tag:?}");
    assert_eq!(client.pool_stats().checked_out, 0);
}
