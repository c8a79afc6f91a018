//! # greenlet_pool: per-coroutine connection affinity
//!
//! PyMongo 2.x let a greenlet (or thread) *start a request*: from then on, every operation it
//! made used the same socket, so it read its own writes. The socket was tied to the greenlet's
//! identity in a dict, and a weakref callback took the socket back when the greenlet died.
//! This crate does the same for `may` coroutines, over **any** pool, with Rust's ownership in
//! place of weakrefs:
//!
//! - The caller's pinned connection lives in a `may::coroutine_local!` slot. When the coroutine
//!   ends, may drops its locals, and the slot's `Drop` hands the connection back to the pool.
//!   Outside coroutines, `coroutine_local!` falls back to per-thread storage, so plain OS
//!   threads get the same behaviour, and their thread-local destructors return the connection
//!   when they exit.
//! - Requests nest (a counter); ending the outermost returns the connection.
//! - [`Affinity::PerCoroutine`] pins on a caller's first operation until it ends, like PyMongo's
//!   `auto_start_request`.
//! - When no caller is in a request, [`GreenletPool::get`] goes straight to the pool without
//!   touching coroutine-local storage: per-operation use pays one atomic load.
//!
//! The pool is anything that implements [`Source`]. Its `check_in` may be called from the
//! destructor of a coroutine-local value, which may runs *in thread context on a worker after
//! `join()` has returned*: it must not do may I/O, sleep, or block.
//!
//! ## Things to know
//!
//! - **`join()` returns before the connection is back.** may drops a coroutine's locals just
//!   after its `JoinHandle` is released, so a pool count read right after `join()` can still
//!   include the connection the coroutine pinned. Tests poll until the counts settle.
//! - **Threads use the same slots.** On a plain thread the slot list lives in may's per-thread
//!   fallback storage, and is destroyed when the thread exits. Rust gives no guarantee that the
//!   *main* thread's thread-locals are destroyed at process exit, so a connection pinned there
//!   may simply never be returned; nothing is leaked while the process runs.
//! - **At an OS thread's exit, coroutine-local storage is off limits.** may keeps all of a
//!   thread's coroutine-locals in one thread-local map; while that map is being destroyed, any
//!   `coroutine_local!` access (any key) panics inside a TLS destructor, which aborts the
//!   process. So on a plain thread, don't keep a [`Lease`] or [`Request`] in coroutine-local or
//!   thread-local storage (their `Drop` looks up the caller's slot), and a source's `check_in`
//!   must not use coroutine-locals. In a coroutine the same drop is fine: its locals are
//!   destroyed on a worker whose own storage is still alive.
//! - **Code running in thread context on a may worker** (for example another coroutine-local's
//!   destructor) also sees that worker's per-thread storage. A per-coroutine pool used from
//!   there would pin a connection to the worker thread, which never exits: don't.
//! - **Per-coroutine mode holds a connection for the coroutine's whole life,** idle or not. More
//!   live coroutines than the pool's cap means the extra ones wait for earlier ones to *end*;
//!   if they wait on each other, they deadlock. Prefer explicit requests around the operations
//!   that need read-your-writes.
//!
//! ```
//! use greenlet_pool::{Affinity, GreenletPool, Source};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! /// A toy pool that makes numbered "connections".
//! struct Numbers(AtomicU32);
//! impl Source for Numbers {
//!     type Conn = u32;
//!     type Error = ();
//!     fn check_out(&self) -> Result<u32, ()> { Ok(self.0.fetch_add(1, Ordering::SeqCst)) }
//!     fn check_in(&self, _conn: u32) {}
//!     fn is_reusable(&self, _conn: &u32) -> bool { true }
//! }
//!
//! let pool = GreenletPool::new(Numbers(AtomicU32::new(1)), Affinity::PerOperation);
//! assert_ne!(*pool.get().unwrap(), *pool.get().unwrap()); // any connection each time
//! let request = pool.start_request();
//! let first = *pool.get().unwrap();
//! assert_eq!(*pool.get().unwrap(), first); // pinned for the request
//! drop(request);
//! assert_eq!(pool.pinned(), 0);
//! ```
//!
//! Per-coroutine mode, and a coroutine that ends while pinned:
//!
//! ```
//! # use greenlet_pool::{Affinity, GreenletPool, Source};
//! # use std::sync::atomic::{AtomicU32, Ordering};
//! # struct Numbers(AtomicU32);
//! # impl Source for Numbers {
//! #     type Conn = u32;
//! #     type Error = ();
//! #     fn check_out(&self) -> Result<u32, ()> { Ok(self.0.fetch_add(1, Ordering::SeqCst)) }
//! #     fn check_in(&self, _conn: u32) {}
//! #     fn is_reusable(&self, _conn: &u32) -> bool { true }
//! # }
//! may::config().set_worker_pin(false); // before the scheduler starts: shared machines
//! let pool = GreenletPool::new(Numbers(AtomicU32::new(1)), Affinity::PerCoroutine);
//! let p = pool.clone();
//! may::go!(move || {
//!     let first = *p.get().unwrap(); // pins
//!     may::coroutine::yield_now(); // may resume on another worker thread
//!     assert_eq!(*p.get().unwrap(), first); // same connection: the slot follows the coroutine
//! })
//! .join()
//! .unwrap();
//! // The coroutine's locals (and so its pinned connection) are dropped just *after* join()
//! // returns: wait for the count to settle rather than reading it once.
//! while pool.pinned() != 0 {
//!     std::thread::yield_now();
//! }
//! ```

mod slots;

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// What the affinity layer pins connections from.
///
/// The driver's CMAP pool implements it; so can any other pool. The source's own `Drop` can,
/// rarely, run where `check_in` does (a coroutine's locals may hold the last handle on the
/// pool for a moment), so it should not do may I/O either.
pub trait Source: Send + Sync + 'static {
    /// The connection type.
    type Conn: Send + 'static;
    /// The check-out error.
    type Error;
    /// Checks a connection out; may park the calling coroutine (or block the thread) waiting.
    fn check_out(&self) -> Result<Self::Conn, Self::Error>;
    /// Like [`check_out`](Self::check_out), but waits no later than `deadline` (an
    /// operation's overall time limit). The default ignores the deadline.
    fn check_out_until(&self, deadline: Option<Instant>) -> Result<Self::Conn, Self::Error> {
        let _ = deadline;
        self.check_out()
    }
    /// Returns a connection. Must not do may I/O, sleep or block: it can run inside a
    /// coroutine-local destructor, in thread context on a may worker after the coroutine's
    /// `join()` has returned (a may I/O call there parks the worker for good). Nor may it use
    /// `coroutine_local!` storage: at an OS thread's exit it runs while may's per-thread
    /// fallback storage is being destroyed, and touching it then aborts the process.
    ///
    /// Waking a waiter (posting a `may::sync` semaphore, sending on a may channel) is fine,
    /// and so is closing a socket.
    fn check_in(&self, conn: Self::Conn);
    /// False for a connection whose last operation did not complete: it must not stay pinned.
    fn is_reusable(&self, conn: &Self::Conn) -> bool;
}

/// Which connection an operation uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Affinity {
    /// Any connection from the pool, returned when the operation ends — unless the caller is in
    /// a request.
    #[default]
    PerOperation,
    /// The caller's first operation pins a connection until the coroutine (or thread) ends,
    /// like PyMongo's `auto_start_request`. Every `get` then looks at coroutine-local storage,
    /// and a coroutine holds its connection while idle: see the crate docs for the deadlock this
    /// invites when there are more live coroutines than connections.
    PerCoroutine,
}

pub(crate) struct Inner<S: Source> {
    pub(crate) source: S,
    pub(crate) id: u64,
    affinity: Affinity,
    /// Callers with a slot for this pool: in a request, pinned in per-coroutine mode, or
    /// holding a pinned lease past the end of their request. While it is zero, no caller can
    /// have anything in its slot for this pool, so per-operation `get` skips the lookup.
    pub(crate) active: AtomicUsize,
    /// Callers currently holding a pinned connection.
    pub(crate) pinned: AtomicUsize,
}

/// A pool wrapper that gives each coroutine (or thread) in a request its own connection.
pub struct GreenletPool<S: Source> {
    inner: Arc<Inner<S>>,
}

impl<S: Source> Clone for GreenletPool<S> {
    fn clone(&self) -> Self {
        GreenletPool {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Source> GreenletPool<S> {
    /// Wraps `source`.
    pub fn new(source: S, affinity: Affinity) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        GreenletPool {
            inner: Arc::new(Inner {
                source,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                affinity,
                active: AtomicUsize::new(0),
                pinned: AtomicUsize::new(0),
            }),
        }
    }

    /// The wrapped pool.
    pub fn source(&self) -> &S {
        &self.inner.source
    }

    /// The affinity mode.
    pub fn affinity(&self) -> Affinity {
        self.inner.affinity
    }

    /// Starts (or nests) a request for the calling coroutine or thread: until the returned
    /// guard — the outermost, when nested — is dropped, [`get`](Self::get) returns the same
    /// connection.
    pub fn start_request(&self) -> Request<S> {
        slots::enter(&self.inner);
        Request {
            inner: self.inner.clone(),
            _not_send: PhantomData,
        }
    }

    /// True when the caller is in a request (explicit, or pinned by per-coroutine mode).
    pub fn in_request(&self) -> bool {
        self.inner.active.load(Ordering::Acquire) > 0 && slots::in_request(&self.inner)
    }

    /// How many coroutines or threads hold a pinned connection of this pool right now.
    pub fn pinned(&self) -> usize {
        self.inner.pinned.load(Ordering::Acquire)
    }

    /// A connection for one operation: the caller's pinned one when in a request (checked out
    /// on first use), otherwise any connection, returned to the pool when the lease drops.
    ///
    /// A `get` while the caller's pinned connection is already leased out (nested use in one
    /// coroutine, e.g. iterating one cursor while running another query) returns a fresh,
    /// unpinned connection: one connection cannot serve two operations at once. That second
    /// connection comes from the source like any other, so it can wait for the source's cap
    /// (with a cap of one, a coroutine nesting like this waits for itself).
    ///
    /// In per-operation mode with no request open on this pool anywhere, this is one atomic
    /// load and a check-out: coroutine-local storage is not touched.
    pub fn get(&self) -> Result<Lease<S>, S::Error> {
        self.get_until(None)
    }

    /// [`get`](Self::get), waiting for a connection no later than `deadline`.
    pub fn get_until(&self, deadline: Option<Instant>) -> Result<Lease<S>, S::Error> {
        let inner = &self.inner;
        // The fast path: nobody is in a request, so nobody's slot needs looking at.
        if inner.affinity == Affinity::PerOperation && inner.active.load(Ordering::Acquire) == 0 {
            return Ok(Lease::unpinned(
                inner.clone(),
                inner.source.check_out_until(deadline)?,
            ));
        }
        match slots::take(inner, inner.affinity == Affinity::PerCoroutine) {
            slots::Take::NotInRequest | slots::Take::Busy => Ok(Lease::unpinned(
                inner.clone(),
                inner.source.check_out_until(deadline)?,
            )),
            slots::Take::Pinned(conn) => Ok(Lease::pinned(inner.clone(), conn)),
            slots::Take::Empty => {
                // The slot is now marked "leased" with nothing in it. If the check-out fails,
                // or unwinds (a panicking source, a coroutine cancelled while it waits), the
                // mark must go, or every later `get` in this request would find the slot
                // "busy" and never pin. A guard covers both ways out.
                let unmark = Unmark(inner);
                let conn = inner.source.check_out_until(deadline)?;
                std::mem::forget(unmark);
                inner.pinned.fetch_add(1, Ordering::AcqRel);
                Ok(Lease::pinned(inner.clone(), conn))
            }
        }
    }
}

/// Clears a slot's "leased" mark if a check-out for it does not complete.
struct Unmark<'a, S: Source>(&'a Arc<Inner<S>>);

impl<S: Source> Drop for Unmark<'_, S> {
    fn drop(&mut self) {
        slots::unlease(self.0);
    }
}

/// Process-wide, how many coroutines and threads have had their slot list created: the first
/// look at the coroutine-local storage in a coroutine (or thread) creates it.
///
/// A diagnostic. It lets a test show that per-operation use without requests never looks at
/// coroutine-local storage: run fresh coroutines that only `get`, and see this number stay put.
pub fn slot_lists_created() -> u64 {
    slots::lists_created()
}

/// A connection lent for one operation. Dereferences to the connection; on drop it goes back
/// to the caller's slot (when pinned, still usable, and the request is still open) or to the
/// pool.
///
/// Holds an `Arc` on the pool rather than borrowing it, so it can live in structs (a cursor)
/// without a lifetime. Not `Send`: a pinned connection goes back to the slot of the coroutine
/// that leased it, and the slot is found through the *current* coroutine.
pub struct Lease<S: Source> {
    inner: Arc<Inner<S>>,
    conn: Option<S::Conn>,
    pinned: bool,
    _not_send: PhantomData<*const ()>,
}

impl<S: Source> Lease<S> {
    fn unpinned(inner: Arc<Inner<S>>, conn: S::Conn) -> Self {
        Lease {
            inner,
            conn: Some(conn),
            pinned: false,
            _not_send: PhantomData,
        }
    }

    fn pinned(inner: Arc<Inner<S>>, conn: S::Conn) -> Self {
        Lease {
            inner,
            conn: Some(conn),
            pinned: true,
            _not_send: PhantomData,
        }
    }

    /// True when this is the caller's pinned connection.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }
}

impl<S: Source> Deref for Lease<S> {
    type Target = S::Conn;
    fn deref(&self) -> &S::Conn {
        self.conn.as_ref().expect("present until drop")
    }
}

impl<S: Source> DerefMut for Lease<S> {
    fn deref_mut(&mut self) -> &mut S::Conn {
        self.conn.as_mut().expect("present until drop")
    }
}

impl<S: Source> Drop for Lease<S> {
    /// Runs on every way out of an operation, unwinding included. It does no I/O: a pinned,
    /// reusable connection goes back to the slot; anything else to the pool, which decides
    /// whether to keep or close it.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.pinned {
            self.inner.source.check_in(conn);
            return;
        }
        let reusable = self.inner.source.is_reusable(&conn);
        if let Some(conn) = slots::put_back(&self.inner, conn, reusable) {
            self.inner.pinned.fetch_sub(1, Ordering::AcqRel);
            self.inner.source.check_in(conn);
        }
    }
}

/// A request: while alive (the outermost, when nested), the caller's operations share one
/// connection. Not `Send`: it belongs to the coroutine or thread that started it, since
/// dropping it looks up the *current* caller's slot.
///
/// A cancelled or panicking coroutine drops the guard as it unwinds. If the guard is never
/// dropped (`mem::forget`), the connection still goes back when the coroutine or thread ends;
/// the forgotten guard does leak its handle on the pool, as forgetting any `Arc` does.
pub struct Request<S: Source> {
    inner: Arc<Inner<S>>,
    _not_send: PhantomData<*const ()>,
}

impl<S: Source> Drop for Request<S> {
    fn drop(&mut self) {
        slots::leave(&self.inner);
    }
}

impl<S: Source> fmt::Debug for GreenletPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenletPool")
            .field("id", &self.inner.id)
            .field("affinity", &self.inner.affinity)
            .field("pinned", &self.pinned())
            .finish_non_exhaustive()
    }
}

impl<S: Source> fmt::Debug for Lease<S>
where
    S::Conn: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("conn", &self.conn)
            .field("pinned", &self.pinned)
            .finish()
    }
}

impl<S: Source> fmt::Debug for Request<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("pool", &self.inner.id)
            .finish()
    }
}
