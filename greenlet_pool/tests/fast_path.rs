//! Per-operation use without requests must not touch coroutine-local storage at all: `get`
//! reads the pool's count of active requests, finds zero, and goes straight to the source.
//!
//! The evidence is [`greenlet_pool::slot_lists_created`], a process-wide count of slot lists
//! created (one per coroutine or thread that ever looks at the storage). It is process-wide, so
//! this file holds a single test: cargo runs each test file as its own process, and nothing
//! else here can move the count.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use greenlet_pool::{Affinity, GreenletPool, Source, slot_lists_created};

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        may::config().set_worker_pin(false);
    });
}

/// An unbounded source of numbered connections.
struct Numbers(AtomicU64);

impl Source for Numbers {
    type Conn = u64;
    type Error = ();
    fn check_out(&self) -> Result<u64, ()> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst))
    }
    fn check_in(&self, _conn: u64) {}
    fn is_reusable(&self, _conn: &u64) -> bool {
        true
    }
}

/// Runs `n` fresh coroutines, each doing `gets` plain gets (and asking `in_request`).
fn plain_gets(pool: &GreenletPool<Numbers>, n: usize, gets: usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let p = pool.clone();
            may::go!(move || {
                for _ in 0..gets {
                    assert!(!p.in_request());
                    assert!(!p.get().unwrap().is_pinned());
                    may::coroutine::yield_now();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn per_operation_gets_without_requests_never_touch_the_coroutine_local() {
    init();
    let pool = GreenletPool::new(Numbers(AtomicU64::new(1)), Affinity::PerOperation);
    let before = slot_lists_created();

    // Fresh coroutines and a fresh thread: any look at the storage would create a list.
    plain_gets(&pool, 100, 10);
    let p = pool.clone();
    std::thread::spawn(move || {
        for _ in 0..10 {
            assert!(!p.get().unwrap().is_pinned());
        }
    })
    .join()
    .unwrap();
    assert_eq!(
        slot_lists_created(),
        before,
        "the fast path looked at the slots"
    );

    // Control: the counter does see the slow path. A request on the test thread creates this
    // thread's list, and while it is open, other callers' gets must look at their own slots.
    let request = pool.start_request();
    assert!(pool.get().unwrap().is_pinned());
    assert_eq!(slot_lists_created(), before + 1);
    plain_gets(&pool, 10, 1);
    assert_eq!(
        slot_lists_created(),
        before + 11,
        "one lookup per new coroutine"
    );

    // When the last request ends, the fast path is back.
    drop(request);
    let after = slot_lists_created();
    plain_gets(&pool, 100, 10);
    assert_eq!(slot_lists_created(), after);
}
