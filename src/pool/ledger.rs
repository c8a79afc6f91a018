//! Connections a coroutine has checked out, written down where its death can find them.
//!
//! A coroutine that overflows its stack dies without unwinding: may's overflow handler jumps
//! out of the dead frames and no `Drop` in them runs. A connection checked out by one of those
//! frames was never checked in: the pool counted it out for good, and once `maxPoolSize` of
//! them were lost, every later caller — coroutine or thread — waited for ever. PyMongo's
//! GreenletPool took a dead greenlet's socket back through a weakref callback, but only the
//! socket pinned to it; this covers every checked-out connection.
//!
//! Two facts make it work (measured on may 0.3.51):
//! - a dead coroutine's *coroutine-local* storage is still dropped, after `join()` returns, in
//!   thread context on a worker, however the coroutine ended, overflow included;
//! - a pooled connection lives on the heap ([`Held`](super::Held)), not in the frame that
//!   checked it out: the frame holds a pointer.
//!
//! So each check-out made inside a coroutine is entered in a coroutine-local ledger with the
//! connection's lease number, and crossed out at check-in. When the ledger drops, whatever is
//! still entered is *reclaimed*: if the connection is still out on that very lease (an atomic
//! compare-and-swap on its lease state), the pool takes it back closed and settles its counts.
//! The compare-and-swap is what makes the order of coroutine-locals' drops irrelevant: a
//! connection that was checked in meanwhile — by a request's slot dropping before the ledger,
//! say — has moved on to another lease or back to idle, and is left alone; one reclaimed first
//! is skipped by the check-in that comes after.
//!
//! Cost, in a coroutine: one coroutine-local lookup at check-out and one at check-in, an `Arc`
//! clone, and a compare-and-swap. Outside coroutines nothing is entered: a thread that
//! overflows its stack takes the whole process with it.

use std::cell::RefCell;
use std::sync::Arc;

/// A checked-out connection that can be taken back if its holder vanished.
pub(crate) trait Lost: Send + Sync {
    /// Takes the connection back (closed) if it is still out on `lease`; otherwise nothing.
    fn reclaim(&self, lease: u64);
    /// Identity, for crossing out.
    fn key(&self) -> *const ();
}

struct Entry {
    held: Arc<dyn Lost>,
    lease: u64,
}

#[derive(Default)]
struct Ledger(Vec<Entry>);

impl Drop for Ledger {
    fn drop(&mut self) {
        for e in self.0.drain(..) {
            e.held.reclaim(e.lease);
        }
    }
}

may::coroutine_local!(static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default()));

/// Enters a check-out in the calling coroutine's ledger (nothing outside coroutines).
pub(crate) fn enter(held: Arc<dyn Lost>, lease: u64) {
    if may::coroutine::is_coroutine() {
        LEDGER.with(|l| l.borrow_mut().0.push(Entry { held, lease }));
    }
}

/// Crosses a check-out out of the calling coroutine's ledger, if it is there. (A check-in
/// made from elsewhere — a request's slot dropping in thread context after its coroutine
/// ended — finds nothing here; the lease number keeps the stale entry harmless.)
pub(crate) fn cross_out(key: *const (), lease: u64) {
    if !may::coroutine::is_coroutine() {
        return;
    }
    let entry = LEDGER.with(|l| {
        let mut l = l.borrow_mut();
        let i =
            l.0.iter()
                .rposition(|e| e.lease == lease && e.held.key() == key)?;
        Some(l.0.swap_remove(i))
    });
    // Its `Arc` drops outside the borrow.
    drop(entry);
}
