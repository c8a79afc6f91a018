//! greenlet_pool over a bounded mock pool: requests pin, nest and release; coroutine and
//! thread exits give connections back by themselves; nothing leaks under 10,000 coroutines.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use greenlet_pool::{Affinity, GreenletPool, Source};

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        may::config().set_worker_pin(false);
    });
}

struct MockConn {
    id: u64,
    broken: bool,
}

/// A bounded pool of numbered connections; waiting uses may's semaphore, which parks
/// coroutines and blocks threads.
struct Mock {
    permits: may::sync::Semphore,
    idle: Mutex<Vec<u64>>,
    next: AtomicU64,
    out: AtomicUsize,
    created: AtomicUsize,
}

impl Mock {
    fn new(max: usize) -> Mock {
        Mock {
            permits: may::sync::Semphore::new(max),
            idle: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
            out: AtomicUsize::new(0),
            created: AtomicUsize::new(0),
        }
    }
}

impl Source for Mock {
    type Conn = MockConn;
    type Error = ();
    fn check_out(&self) -> Result<MockConn, ()> {
        self.permits.wait();
        self.out.fetch_add(1, Ordering::SeqCst);
        let id = self.idle.lock().unwrap().pop().unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::SeqCst);
            self.next.fetch_add(1, Ordering::SeqCst)
        });
        Ok(MockConn { id, broken: false })
    }
    fn check_in(&self, conn: MockConn) {
        self.out.fetch_sub(1, Ordering::SeqCst);
        if conn.broken {
            self.created.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.idle.lock().unwrap().push(conn.id);
        }
        self.permits.post();
    }
    fn is_reusable(&self, conn: &MockConn) -> bool {
        !conn.broken
    }
}

/// Coroutine-local values drop just after `join()` returns: poll until `f` holds.
fn settles(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

#[test]
fn a_request_pins_nests_and_releases() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerOperation);
    let p = pool.clone();
    may::go!(move || {
        assert!(!p.in_request());
        let outer = p.start_request();
        assert!(p.in_request());
        let first = p.get().unwrap().id;
        for _ in 0..5 {
            assert_eq!(p.get().unwrap().id, first);
            may::coroutine::yield_now();
        }
        let inner = p.start_request();
        assert_eq!(p.get().unwrap().id, first);
        drop(inner);
        assert_eq!(
            p.get().unwrap().id,
            first,
            "still pinned after the inner request"
        );
        assert_eq!(p.pinned(), 1);
        drop(outer);
        assert!(!p.in_request());
        assert_eq!(p.pinned(), 0);
        assert_eq!(p.source().out.load(Ordering::SeqCst), 0);
    })
    .join()
    .unwrap();
}

#[test]
fn nested_get_while_leased_gets_another_connection() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerOperation);
    let _r = pool.start_request();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    assert!(a.is_pinned() && !b.is_pinned());
    assert_ne!(a.id, b.id);
}

#[test]
fn coroutines_in_requests_get_different_connections() {
    init();
    let pool = GreenletPool::new(Mock::new(100), Affinity::PerOperation);
    let ids = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(may::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (p, ids, barrier) = (pool.clone(), ids.clone(), barrier.clone());
            may::go!(move || {
                let _r = p.start_request();
                let id = p.get().unwrap().id;
                barrier.wait(); // all twenty hold their pins at once
                assert_eq!(p.get().unwrap().id, id);
                ids.lock().unwrap().push(id);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut ids = ids.lock().unwrap().clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    assert!(settles(|| pool.pinned() == 0));
}

#[test]
fn a_coroutine_that_ends_in_a_request_gives_its_connection_back() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerOperation);
    let p = pool.clone();
    may::go!(move || {
        let r = p.start_request();
        let _ = p.get().unwrap().id;
        std::mem::forget(r); // never ends the request: only the coroutine's end can
    })
    .join()
    .unwrap();
    assert!(settles(|| pool.pinned() == 0), "pinned: {}", pool.pinned());
    assert_eq!(pool.source().out.load(Ordering::SeqCst), 0);
    assert_eq!(pool.source().idle.lock().unwrap().len(), 1);
}

#[test]
fn a_thread_that_exits_gives_its_connection_back() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerCoroutine);
    let p = pool.clone();
    let id = std::thread::spawn(move || {
        let a = p.get().unwrap().id;
        assert_eq!(p.get().unwrap().id, a, "pinned for the thread's life");
        assert!(p.in_request());
        a
    })
    .join()
    .unwrap();
    assert!(settles(|| pool.pinned() == 0));
    assert_eq!(*pool.source().idle.lock().unwrap(), vec![id]);
}

#[test]
fn per_coroutine_mode_ten_thousand_coroutines_leak_nothing() {
    init();
    let pool = GreenletPool::new(Mock::new(50), Affinity::PerCoroutine);
    let consistent = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10_000)
        .map(|_| {
            let (p, consistent) = (pool.clone(), consistent.clone());
            may::go!(move || {
                let a = p.get().unwrap().id;
                may::coroutine::sleep(Duration::from_micros(200));
                let b = p.get().unwrap().id;
                if a == b {
                    consistent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(consistent.load(Ordering::Relaxed), 10_000);
    assert!(settles(
        || pool.pinned() == 0 && pool.source().out.load(Ordering::SeqCst) == 0
    ));
    let created = pool.source().created.load(Ordering::SeqCst);
    assert!(created <= 50, "created {created}");
    assert_eq!(
        pool.source().idle.lock().unwrap().len(),
        created,
        "none leaked"
    );
}

#[test]
fn a_broken_connection_is_not_kept_pinned() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerOperation);
    let _r = pool.start_request();
    let first = {
        let mut lease = pool.get().unwrap();
        lease.broken = true; // as if its operation were interrupted
        lease.id
    };
    assert_eq!(pool.pinned(), 0);
    let second = pool.get().unwrap().id;
    assert_ne!(first, second, "a fresh connection was pinned");
    assert_eq!(pool.pinned(), 1);
}

#[test]
fn a_panicking_coroutine_returns_its_lease() {
    init();
    let pool = GreenletPool::new(Mock::new(10), Affinity::PerCoroutine);
    let p = pool.clone();
    let r = may::go!(move || {
        let _lease = p.get().unwrap();
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert!(settles(
        || pool.pinned() == 0 && pool.source().out.load(Ordering::SeqCst) == 0
    ));
}

#[test]
fn threads_and_coroutines_share_one_pool() {
    init();
    let pool = GreenletPool::new(Mock::new(8), Affinity::PerOperation);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let p = pool.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let _r = p.start_request();
                    let a = p.get().unwrap().id;
                    assert_eq!(p.get().unwrap().id, a);
                }
            })
        })
        .collect();
    let coroutines: Vec<_> = (0..200)
        .map(|_| {
            let p = pool.clone();
            may::go!(move || {
                let _r = p.start_request();
                let a = p.get().unwrap().id;
                may::coroutine::yield_now();
                assert_eq!(p.get().unwrap().id, a);
            })
        })
        .collect();
    for c in coroutines {
        c.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(settles(
        || pool.pinned() == 0 && pool.source().out.load(Ordering::SeqCst) == 0
    ));
}
