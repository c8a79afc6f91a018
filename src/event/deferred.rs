//! Events raised under a lock, delivered once it is released.
//!
//! The pool and the deployment learn what happened while holding their locks, and that is
//! where their events are made: made anywhere else, two threads' events could come out in an
//! order their state changes never had. But a handler called there runs under the lock: a
//! handler that blocks stalls every check-out (and on the coroutine core, every coroutine of
//! that worker thread queued behind it), and one that calls back into the client — asks for
//! `pool_stats()`, say — deadlocks on a lock its own thread holds.
//!
//! So events are queued under the lock and delivered after it: whoever releases a lock calls
//! [`Deferred::deliver`], which runs the queued handlers in queue order, one deliverer at a
//! time, with no lock of the driver's held. The queue is FIFO and filled under the locks, so
//! the order is the one the state changes had. A handler may run on another caller's thread
//! or coroutine, the one delivering when the event was queued.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

type Delivery = Box<dyn FnOnce() + Send>;

/// A queue of handler calls, shared by a client's deployment and its pools so that SDAM and
/// CMAP events keep one order between them.
#[derive(Default)]
pub(crate) struct Deferred {
    queue: Mutex<VecDeque<Delivery>>,
    /// Queued and not yet taken: read without the lock, so [`deliver`](Self::deliver) costs
    /// one atomic load when nothing is waiting (always, without handlers).
    pending: AtomicUsize,
    /// Someone is delivering; others leave the queue to them.
    delivering: AtomicBool,
}

impl Deferred {
    /// Queues one handler call. Safe under any lock: it takes only the queue's own, briefly.
    pub(crate) fn push(&self, delivery: impl FnOnce() + Send + 'static) {
        self.queue.lock().push_back(Box::new(delivery));
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// True if calls are queued.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
    }

    /// Runs the queued calls, in order, unless another caller is already doing so (it will
    /// run these too). Call it holding none of the driver's locks.
    pub(crate) fn deliver(&self) {
        /// Lets the next caller deliver even if a handler panics (or its coroutine is
        /// cancelled) mid-call.
        struct Release<'a>(&'a AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        while self.has_pending() {
            if self.delivering.swap(true, Ordering::SeqCst) {
                return; // the deliverer re-checks the queue after letting go
            }
            let _release = Release(&self.delivering);
            loop {
                let next = self.queue.lock().pop_front();
                let Some(delivery) = next else { break };
                self.pending.fetch_sub(1, Ordering::SeqCst);
                delivery();
            }
            // `_release` lets go here; the loop then looks again, so a call queued between
            // the last pop and the release is not left waiting for the next event.
        }
    }
}

/// Delivers `Deferred`'s queued calls when dropped, on a driver stack (a handler's stack use
/// is the user's, not the caller's to pay). Declared before a lock guard, it runs after that
/// guard is dropped, on every way out of the function: return, `?`, or an unwinding
/// cancellation.
pub(crate) struct DeliverOnDrop<'a>(pub(crate) &'a Deferred);

impl Drop for DeliverOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.has_pending() {
            crate::runtime::on_driver_stack(|| self.0.deliver());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn calls_run_in_order_and_a_call_may_queue_more() {
        let d = Arc::new(Deferred::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let (d2, seen) = (d.clone(), seen.clone());
            d.push(move || {
                seen.lock().push(i);
                if i == 0 {
                    // Queued while delivering: runs in this same delivery, last.
                    let seen = seen.clone();
                    d2.push(move || seen.lock().push(9));
                }
            });
        }
        d.deliver();
        assert_eq!(*seen.lock(), [0, 1, 2, 9]);
        assert!(!d.has_pending());
    }

    #[test]
    fn a_panicking_handler_does_not_stop_later_deliveries() {
        let d = Deferred::default();
        d.push(|| panic!("handler bug"));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.deliver()));
        assert!(r.is_err());
        let ran = Arc::new(AtomicBool::new(false));
        let r2 = ran.clone();
        d.push(move || r2.store(true, Ordering::SeqCst));
        d.deliver();
        assert!(ran.load(Ordering::SeqCst));
    }
}
