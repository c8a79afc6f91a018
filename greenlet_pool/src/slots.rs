//! The per-caller registry: which connection each coroutine (or thread) has pinned.
//!
//! One `coroutine_local!` holds a short list of [`Slot`]s, one per pool the caller is in a
//! request with. A slot is type-erased (pools of different connection types share the list)
//! and carries its own `release` callback, holding only a `Weak` to its pool: PyMongo's
//! weakref callback, done with `Drop`. When the coroutine ends, may drops its locals — after
//! `join()` has returned, in thread context on a worker — and each slot hands its connection
//! back through `Source::check_in`, which must therefore never do may I/O (and, at a plain
//! thread's exit, never touch coroutine-locals: may's per-thread map is being destroyed).
//!
//! The `RefCell` is only borrowed for bookkeeping; no pool call is made while it is borrowed,
//! because a check-out may park the coroutine.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::{Inner, Source};

type Erased = Box<dyn Any + Send>;

/// One caller's state for one pool.
struct Slot {
    pool_id: u64,
    /// Explicit requests open (nesting counter).
    depth: usize,
    /// Pinned for the caller's whole life (per-coroutine mode).
    auto: bool,
    /// The pinned connection is out on a lease right now.
    leased: bool,
    /// The pinned connection, while it sits in the slot.
    conn: Option<Erased>,
    /// Returns the connection (if any) and settles the pool's counters.
    release: Box<dyn Fn(Option<Erased>) + Send>,
}

impl Slot {
    fn wanted(&self) -> bool {
        self.depth > 0 || self.auto || self.leased
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        (self.release)(self.conn.take());
    }
}

/// Slot lists created so far (see [`crate::slot_lists_created`]). Bumped once per coroutine or
/// thread that ever looks at `SLOTS`, never per operation: one relaxed increment next to the
/// cost of a coroutine's spawn.
static LISTS_CREATED: AtomicU64 = AtomicU64::new(0);

// A `Vec` searched linearly is the "small map": a caller is rarely in requests with more than
// one or two pools at once. may's `coroutine_local!` creates the value on first access in each
// coroutine (or, outside coroutines, each thread) and drops it when the coroutine ends.
may::coroutine_local!(static SLOTS: RefCell<Vec<Slot>> = {
    LISTS_CREATED.fetch_add(1, Ordering::Relaxed);
    RefCell::new(Vec::new())
});

pub(crate) fn lists_created() -> u64 {
    LISTS_CREATED.load(Ordering::Relaxed)
}

fn new_slot<S: Source>(inner: &Arc<Inner<S>>, auto: bool) -> Slot {
    inner.active.fetch_add(1, Ordering::AcqRel);
    let pool: Weak<Inner<S>> = Arc::downgrade(inner);
    Slot {
        pool_id: inner.id,
        depth: 0,
        auto,
        leased: false,
        conn: None,
        release: Box::new(move |conn| {
            // A pool that is gone takes nothing back: the connection simply drops. (A `Weak`,
            // not an `Arc`: a slot must not keep its pool alive, and a pool must not wait for
            // every coroutine that ever used it to end — PyMongo's callbacks held a weakref to
            // the pool for the same reason.)
            let Some(inner) = pool.upgrade() else { return };
            inner.active.fetch_sub(1, Ordering::AcqRel);
            if let Some(conn) = conn {
                inner.pinned.fetch_sub(1, Ordering::AcqRel);
                match conn.downcast::<S::Conn>() {
                    Ok(conn) => inner.source.check_in(*conn),
                    Err(_) => unreachable!("a slot only ever holds its own pool's connections"),
                }
            }
        }),
    }
}

/// Runs `f` on the caller's slot list, then drops any slot `f` removed *after* the borrow
/// ends (dropping one calls into the pool).
fn with_slots<R>(f: impl FnOnce(&mut Vec<Slot>) -> (R, Option<Slot>)) -> R {
    let (result, removed) = SLOTS.with(|slots| f(&mut slots.borrow_mut()));
    drop(removed);
    result
}

fn find(slots: &mut [Slot], id: u64) -> Option<usize> {
    slots.iter().position(|s| s.pool_id == id)
}

/// Opens (or nests) a request.
pub(crate) fn enter<S: Source>(inner: &Arc<Inner<S>>) {
    with_slots(|slots| {
        let i = match find(slots, inner.id) {
            Some(i) => i,
            None => {
                slots.push(new_slot(inner, false));
                slots.len() - 1
            }
        };
        slots[i].depth += 1;
        ((), None)
    })
}

/// Closes one level of request; the outermost gives the connection back (unless it is out on
/// a lease, in which case the lease returns it).
pub(crate) fn leave<S: Source>(inner: &Arc<Inner<S>>) {
    with_slots(|slots| {
        let Some(i) = find(slots, inner.id) else {
            return ((), None);
        };
        let slot = &mut slots[i];
        slot.depth = slot.depth.saturating_sub(1);
        let removed = (!slot.wanted()).then(|| slots.swap_remove(i));
        ((), removed)
    })
}

pub(crate) fn in_request<S: Source>(inner: &Arc<Inner<S>>) -> bool {
    SLOTS.with(|slots| {
        slots
            .borrow()
            .iter()
            .any(|s| s.pool_id == inner.id && (s.depth > 0 || s.auto))
    })
}

/// What the caller's slot had for a `get`.
pub(crate) enum Take<C> {
    /// No request: use any connection.
    NotInRequest,
    /// The pinned connection is already out: use another, unpinned.
    Busy,
    /// The pinned connection, now leased.
    Pinned(C),
    /// In a request with nothing pinned yet (marked leased): check one out and pin it.
    Empty,
}

pub(crate) fn take<S: Source>(inner: &Arc<Inner<S>>, auto: bool) -> Take<S::Conn> {
    with_slots(|slots| {
        let i = match find(slots, inner.id) {
            Some(i) => i,
            None if auto => {
                slots.push(new_slot(inner, true));
                slots.len() - 1
            }
            None => return (Take::NotInRequest, None),
        };
        let slot = &mut slots[i];
        slot.auto |= auto;
        if slot.leased {
            return (Take::Busy, None);
        }
        slot.leased = true;
        let taken = match slot.conn.take() {
            Some(conn) => match conn.downcast::<S::Conn>() {
                Ok(conn) => Take::Pinned(*conn),
                Err(_) => unreachable!("a slot only ever holds its own pool's connections"),
            },
            None => Take::Empty,
        };
        (taken, None)
    })
}

/// Undoes `take`'s lease mark after a failed check-out.
pub(crate) fn unlease<S: Source>(inner: &Arc<Inner<S>>) {
    with_slots(|slots| {
        let Some(i) = find(slots, inner.id) else {
            return ((), None);
        };
        slots[i].leased = false;
        let removed = (!slots[i].wanted()).then(|| slots.swap_remove(i));
        ((), removed)
    })
}

/// Returns a pinned lease's connection to the caller's slot. Gives the connection back to the
/// caller (to check in to the pool) when it is not reusable or no request wants it any more.
pub(crate) fn put_back<S: Source>(
    inner: &Arc<Inner<S>>,
    conn: S::Conn,
    reusable: bool,
) -> Option<S::Conn> {
    with_slots(|slots| {
        let Some(i) = find(slots, inner.id).filter(|&i| slots[i].leased) else {
            return (Some(conn), None);
        };
        let slot = &mut slots[i];
        slot.leased = false;
        if reusable && (slot.depth > 0 || slot.auto) {
            slot.conn = Some(Box::new(conn));
            return (None, None);
        }
        let removed = (!slot.wanted()).then(|| slots.swap_remove(i));
        (Some(conn), removed)
    })
}
