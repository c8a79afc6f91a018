//! The last `Client` handle dropped while operations are in flight, against the real server:
//! the operations finish (their collections hold the client), and once the last of them lets
//! go, every background task ends and every socket closes — counted in `/proc/self/fd` and
//! `/proc/self/status`. A test binary of its own, with one test, so that no other test's
//! sockets or threads move the counts.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::Core;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn os_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits up to 10 s for `now()` to come back to `baseline` (or below).
fn settles(what: &str, baseline: usize, now: impl Fn() -> usize) {
    let until = Instant::now() + Duration::from_secs(10);
    while now() > baseline {
        assert!(
            Instant::now() < until,
            "{what}: {} now, {baseline} before the client",
            now()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dropping_the_last_client_mid_operations_leaves_no_socket_or_task() {
    common::init();
    let uri = common::uri(); // starts the shared server (its process, not ours) first
    for core in [Core::Coroutine, Core::Threaded] {
        // may's workers (coroutine core) start on first use: start them before the baseline.
        may::go!(|| ()).join().unwrap();
        let (fds, threads) = (open_fds(), os_threads());
        let mut opts = may_mongo::ClientOptions::parse(&uri).run().unwrap();
        opts.core = core;
        opts.min_pool_size = 2; // a pool background task too
        let client = may_mongo::Client::with_options(opts).unwrap();
        let coll = client
            .database("last_client")
            .collection::<Document>(core.name());
        coll.insert_one(doc! { "_id": 1 }).run().unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let workers = common::spawn_workers(core, 50, {
            let (coll, stop, done) = (coll.clone(), stop.clone(), done.clone());
            move |_| {
                while !stop.load(Ordering::Relaxed) {
                    assert!(coll.find_one(doc! { "_id": 1 }).run().unwrap().is_some());
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let before_drop = done.load(Ordering::Relaxed);
        drop(client); // the application's last handle; the workers' collections hold on
        drop(coll);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            done.load(Ordering::Relaxed) > before_drop,
            "operations go on after the handle is dropped"
        );
        stop.store(true, Ordering::Relaxed);
        workers.join_all(Duration::from_secs(30));
        // Now nothing holds the client: monitors, the pool's task, the cursor reaper end, and
        // every connection closes.
        settles("open file descriptors", fds, open_fds);
        settles("OS threads", threads, os_threads);
        println!(
            "{core:?}: {before_drop} finds before the drop; fds back to {fds}, threads to {threads}"
        );
    }
}
