//! The shared connection pool of one server, after MongoDB's CMAP spec.
//!
//! - **Capacity.** `maxPoolSize` counts idle, checked-out *and* connecting connections, as
//!   MotorPool and PyMongo 2.6+ did. `maxConnecting` (default 2) bounds how many are opened at
//!   once, so a burst of callers does not become a burst of handshakes.
//! - **Fairness.** Callers that cannot be served at once wait in a FIFO queue. Whenever a
//!   resource frees up — a connection checked in, a handshake finished, a connection closed —
//!   [`dispatch`](State) hands it *directly* to the first waiter, under the lock, so a
//!   newcomer can never overtake the queue.
//! - **Generations.** [`Pool::clear`] bumps the generation and pauses the pool: older
//!   connections are closed as they are met (at check-in, or found idle at check-out), waiters
//!   fail with a clear error, and check-outs fail until [`Pool::ready`].
//! - **Background work.** A background task (a coroutine or a thread, per the core) closes
//!   stale and perished idle connections and opens connections up to `minPoolSize`. It runs
//!   every `background_interval` and at once after ready, clear and close.
//! - **Safety.** A connection whose operation did not finish reports itself broken
//!   ([`PoolConnection::is_broken`]) and is closed at check-in, never reused. The waiting side
//!   parks on the core's parker; the lock is a parking_lot mutex held only for bookkeeping,
//!   never across I/O or a park.
//!
//! The pool is generic over the connection type and how connections are made, so MongoDB's
//! CMAP spec tests can drive it over a mock connection (tests/cmap_spec.rs).

mod ledger;

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use crate::event::cmap::{
    CmapEvent, ConnectionCheckoutFailedReason, ConnectionClosedReason, PoolOptions,
};
use crate::event::cmap::{
    ConnectionCheckedInEvent, ConnectionCheckedOutEvent, ConnectionCheckoutFailedEvent,
    ConnectionCheckoutStartedEvent, ConnectionClosedEvent, ConnectionCreatedEvent,
    ConnectionReadyEvent, PoolClearedEvent, PoolClosedEvent, PoolCreatedEvent, PoolReadyEvent,
};
use crate::event::deferred::{Deferred, DeliverOnDrop};
pub use crate::event::{EventHandler, log};

use crate::address::ServerAddress;
use crate::error::{ErrorKind, Result};
use crate::runtime::{self, Core, Parker, Wake};

/// A connection the pool can hold.
pub trait PoolConnection: Send + 'static {
    /// True when the last operation did not complete; the pool then closes the connection.
    fn is_broken(&self) -> bool;
    /// Closes the connection. Must not block or do may I/O (it can run in `Drop`).
    fn close(self);
}

/// How the pool opens connections.
pub trait Establish: Send + Sync + 'static {
    /// The connection type.
    type Conn: PoolConnection;
    /// Opens and handshakes a connection (blocking-style: parks a coroutine on I/O), giving
    /// up at `deadline` if there is one: the operation that asked for the connection has a
    /// time limit, and opening it is part of the operation.
    fn establish(&self, deadline: Option<Instant>) -> Result<Self::Conn>;
}

/// A connection owned by the pool's bookkeeping: the connection plus its generation and idle
/// time.
///
/// The connection itself lives on the heap ([`Held`]), once, from the moment it opens:
/// - handing it around — out of the idle list, through a check-out's `Result`, into a lease,
///   back in — moves a pointer, not the whole connection (several hundred bytes: its stream,
///   buffers and handshake description). In an unoptimised build every such move is a copy in
///   a stack slot of its own, and a check-out's frames alone took 8.5 KiB of the caller's
///   stack;
/// - a coroutine that dies holding it (a stack overflow unwinds nothing) loses only the
///   pointer: its ledger still reaches the connection and gives it back (see `ledger.rs`).
pub struct Pooled<C> {
    held: Arc<Held<C>>,
    generation: u64,
    idle_since: Instant,
}

/// A pooled connection's home: the connection, its id, and its lease state — the lease number
/// (bumped at each check-out) times four, plus [`IDLE`], [`OUT`] or [`RECLAIMED`].
pub(crate) struct Held<C> {
    id: u32,
    state: AtomicU64,
    conn: UnsafeCell<Option<C>>,
    /// Where a reclaimed connection goes.
    pool: Weak<dyn Reclaimer<C>>,
}

/// In the pool, or being handed around by it.
const IDLE: u64 = 0;
/// Checked out.
const OUT: u64 = 1;
/// Taken back from a coroutine that died holding it; the connection has left this cell.
const RECLAIMED: u64 = 2;

// SAFETY: the cell is used by one party at a time — the pool (under its lock) while the
// connection is idle, the caller holding the `Pooled` while it is out, or the reclaiming ledger
// once a compare-and-swap has moved it from "out on lease n" to "reclaimed" (which happens only
// after the holder's coroutine has ended).
unsafe impl<C: Send> Sync for Held<C> {}

/// A pool, as a reclaimed connection sees it.
trait Reclaimer<C>: Send + Sync {
    fn reclaimed(&self, id: u32, conn: C);
}

impl<C: PoolConnection> ledger::Lost for Held<C> {
    fn reclaim(&self, lease: u64) {
        let out = lease * 4 + OUT;
        let gone = lease * 4 + RECLAIMED;
        if self
            .state
            .compare_exchange(out, gone, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // checked in meanwhile (and maybe out again, on a later lease)
        }
        // SAFETY: the compare-and-swap made this the cell's only user (see `Held`'s Sync).
        let conn = unsafe { (*self.conn.get()).take() };
        if let Some(conn) = conn {
            match self.pool.upgrade() {
                Some(pool) => pool.reclaimed(self.id, conn),
                None => conn.close(),
            }
        }
    }

    fn key(&self) -> *const () {
        (self as *const Held<C>).cast()
    }
}

impl<C> Pooled<C> {
    /// The pool's id for this connection (1, 2, ... in order of creation).
    pub fn id(&self) -> u32 {
        self.held.id
    }

    /// The pool generation the connection was created in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes the connection out of its cell, to close it.
    fn into_conn(self) -> Option<C> {
        // SAFETY: whoever owns the `Pooled` is the cell's user (see `Held`'s Sync); a
        // reclaimed cell is already empty.
        unsafe { (*self.held.conn.get()).take() }
    }
}

impl<C: PoolConnection> Pooled<C> {
    /// Marks the connection out on a new lease and, in a coroutine, enters it in the
    /// coroutine's ledger.
    fn lend(&self) {
        let lease = (self.held.state.load(Ordering::Acquire) >> 2) + 1;
        self.held.state.store(lease * 4 + OUT, Ordering::Release);
        ledger::enter(self.held.clone(), lease);
    }

    /// Ends the connection's lease; false when it was reclaimed instead (its cell is empty,
    /// and the pool has already settled it).
    fn end_lease(&self) -> bool {
        let v = self.held.state.load(Ordering::Acquire);
        if v & 3 != OUT {
            return v & 3 != RECLAIMED;
        }
        if self
            .held
            .state
            .compare_exchange(v, v - OUT + IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        ledger::cross_out(ledger::Lost::key(&*self.held), v >> 2);
        true
    }
}

impl<C> Deref for Pooled<C> {
    type Target = C;
    fn deref(&self) -> &C {
        // SAFETY: as in `into_conn`; only a reclaimed cell is empty, and a reclaimed `Pooled`
        // is never used again (its holder is gone).
        unsafe { (*self.held.conn.get()).as_ref() }.expect("a connection in use is present")
    }
}

impl<C> DerefMut for Pooled<C> {
    fn deref_mut(&mut self) -> &mut C {
        // SAFETY: as in `deref`.
        unsafe { (*self.held.conn.get()).as_mut() }.expect("a connection in use is present")
    }
}

/// Counters, exact at the moment they are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// All connections: idle + checked out + connecting.
    pub total: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections being opened.
    pub connecting: usize,
    /// Connections checked out.
    pub checked_out: usize,
    /// Callers waiting for a connection.
    pub waiters: usize,
    /// The current generation (bumped by every clear).
    pub generation: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Paused,
    Ready,
    Closed,
}

/// Where a check-out stands after a look under the lock.
enum Entry<C> {
    /// Finished: a connection, or why there is none.
    Done(Result<Pooled<C>>),
    /// In line: wait on this waiter's parker.
    Queued(Arc<Waiter<C>>),
}

/// What a waiter is handed.
enum Grant<C> {
    /// A ready connection (CheckedOut already emitted).
    Conn(Pooled<C>),
    /// A slot to open connection `id` in (ConnectionCreated already emitted).
    Permit { id: u32, generation: u64 },
    /// The check-out failed (CheckOutFailed already emitted).
    Fail(crate::Error),
}

struct Waiter<C> {
    grant: Mutex<Option<Grant<C>>>,
    parker: Parker,
    started: Instant,
    /// The operation's deadline, which bounds opening a connection for it.
    deadline: Option<Instant>,
}

struct State<C> {
    status: Status,
    idle: Vec<Pooled<C>>,
    total: usize,
    connecting: usize,
    waiters: VecDeque<Arc<Waiter<C>>>,
    generation: u64,
    next_id: u32,
}

/// The shared pool of connections to one server.
pub struct Pool<E: Establish> {
    /// Itself, for the connections it opens to find their way back when reclaimed.
    me: Weak<Pool<E>>,
    address: ServerAddress,
    options: PoolOptions,
    core: Core,
    establisher: E,
    handler: Option<EventHandler<CmapEvent>>,
    /// Where events wait for the lock to be released (see [`Deferred`]).
    events: Arc<Deferred>,
    state: Mutex<State<E::Conn>>,
    /// The background task's parker, published by the task itself (see [`background`]).
    background: Mutex<Option<Arc<Parker>>>,
    /// A wake-up asked for since the background task last looked.
    background_wake: std::sync::atomic::AtomicBool,
}

impl<E: Establish> Pool<E> {
    /// Creates a pool, paused until [`ready`](Self::ready), and starts its background task if
    /// the options call for one.
    pub fn new(
        address: ServerAddress,
        options: PoolOptions,
        core: Core,
        establisher: E,
        handler: Option<EventHandler<CmapEvent>>,
    ) -> Arc<Pool<E>> {
        let pool = Pool::new_sharing(address, options, core, establisher, handler, Arc::default());
        pool.deliver_events();
        pool
    }

    /// [`new`](Self::new), queueing events on `events` (shared with the deployment, which
    /// delivers them once its lock is released) and delivering none itself.
    pub(crate) fn new_sharing(
        address: ServerAddress,
        mut options: PoolOptions,
        core: Core,
        establisher: E,
        handler: Option<EventHandler<CmapEvent>>,
        events: Arc<Deferred>,
    ) -> Arc<Pool<E>> {
        if options.max_pool_size == 0 {
            options.max_pool_size = usize::MAX;
        }
        options.max_connecting = options.max_connecting.max(1);
        let interval = options.background_interval;
        let pool = Arc::new_cyclic(|me| Pool {
            me: me.clone(),
            address,
            core,
            establisher,
            handler,
            events,
            state: Mutex::new(State {
                status: Status::Paused,
                idle: Vec::new(),
                total: 0,
                connecting: 0,
                waiters: VecDeque::new(),
                generation: 0,
                next_id: 1,
            }),
            background: Mutex::new(None),
            background_wake: std::sync::atomic::AtomicBool::new(false),
            options,
        });
        pool.emit(|| {
            CmapEvent::PoolCreated(PoolCreatedEvent {
                address: pool.address.clone(),
                options: Some(pool.options.event_options()),
            })
        });
        if let Some(interval) = interval {
            let weak = Arc::downgrade(&pool);
            let name = format!("may_mongo-pool-{}", pool.address);
            if let Err(e) = runtime::spawn(core, &name, move || background(weak, interval)) {
                // No background task: minPoolSize is then simply not maintained.
                tracing::warn!(
                    target: log::BACKGROUND,
                    "could not start the pool's background task for {}: {e}; minPoolSize is not maintained",
                    pool.address
                );
            }
        }
        pool
    }

    /// The server this pool connects to.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// The pool's options.
    pub fn options(&self) -> &PoolOptions {
        &self.options
    }

    /// The counters, read under the lock.
    pub fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        PoolStats {
            total: st.total,
            idle: st.idle.len(),
            connecting: st.connecting,
            checked_out: st.total - st.idle.len() - st.connecting,
            waiters: st.waiters.len(),
            generation: st.generation,
        }
    }

    /// Queues an event, made only if someone listens. Called under the state lock, which
    /// keeps events in the order of the changes they report; delivered after it (see
    /// [`Deferred`]).
    fn emit(&self, event: impl FnOnce() -> CmapEvent) {
        let logging = log::connections_on();
        if self.handler.is_none() && !logging {
            return;
        }
        let (h, event) = (self.handler.clone(), event());
        self.events.push(move || {
            if logging {
                log::connection(&event);
            }
            if let Some(h) = h {
                h.handle(event);
            }
        });
    }

    /// Runs the handlers of queued events, on a driver stack (a handler's stack use is the
    /// user's, not the caller's to pay). One atomic load when nothing is queued. Never call it
    /// holding a lock.
    pub(crate) fn deliver_events(&self) {
        drop(DeliverOnDrop(&self.events));
    }

    /// Marks the pool ready for check-outs (after creation, or after a clear).
    pub fn ready(&self) {
        self.ready_deferred();
        self.deliver_events();
    }

    /// [`ready`](Self::ready) for a caller holding a lock: its events wait for
    /// [`deliver_events`](Self::deliver_events).
    pub(crate) fn ready_deferred(&self) {
        let mut st = self.state.lock();
        if st.status == Status::Paused {
            st.status = Status::Ready;
            self.emit(|| {
                CmapEvent::PoolReady(PoolReadyEvent {
                    address: self.address.clone(),
                })
            });
        }
        drop(st);
        self.wake_background();
    }

    /// Clears the pool: bumps the generation (older connections close when met), pauses it,
    /// and fails every waiter with a pool-cleared error. Clearing a paused or closed pool does
    /// nothing.
    pub fn clear(&self) {
        self.clear_deferred();
        self.deliver_events();
    }

    /// [`clear`](Self::clear) for a caller holding a lock: its events wait for
    /// [`deliver_events`](Self::deliver_events).
    pub(crate) fn clear_deferred(&self) {
        let mut st = self.state.lock();
        if !self.retire_connections(&mut st) {
            return;
        }
        st.status = Status::Paused;
        let waiters = std::mem::take(&mut st.waiters);
        for w in &waiters {
            let e = self.fail(w.started, ConnectionCheckoutFailedReason::ConnectionError);
            *w.grant.lock() = Some(Grant::Fail(e));
        }
        drop(st);
        for w in waiters {
            w.parker.unpark();
        }
        // Close the now-stale idle connections soon rather than at the next interval.
        self.wake_background();
    }

    /// Retires every connection open now, without pausing: the generation moves on, idle
    /// connections close at once, checked-out ones when they come back, and callers waiting in
    /// line keep waiting — for connections opened afresh. For a user who knows the
    /// connections went stale while the server is fine (a network change, a soak test);
    /// [`clear`](Self::clear) is for a server that failed.
    pub fn clear_and_keep_ready(&self) {
        let mut st = self.state.lock();
        let retired = self.retire_connections(&mut st);
        drop(st);
        self.deliver_events();
        if !retired {
            return;
        }
        // The background task closes the now-stale idle connections.
        self.wake_background();
    }

    /// The half both clears share: a ready pool moves to the next generation (every older
    /// connection closes when next met) and says so. False, doing nothing, when the pool is
    /// not ready (already paused or closed).
    fn retire_connections(&self, st: &mut State<E::Conn>) -> bool {
        if st.status != Status::Ready {
            return false;
        }
        st.generation += 1;
        self.emit(|| {
            CmapEvent::PoolCleared(PoolClearedEvent {
                address: self.address.clone(),
                service_id: None,
                interrupt_in_use_connections: false,
            })
        });
        true
    }

    /// Closes the pool: idle connections close now, checked-out ones at check-in; waiters and
    /// later check-outs fail with a pool-closed error.
    pub fn close(&self) {
        self.close_deferred();
        self.deliver_events();
    }

    /// [`close`](Self::close) for a caller holding a lock: its events wait for
    /// [`deliver_events`](Self::deliver_events).
    pub(crate) fn close_deferred(&self) {
        let mut st = self.state.lock();
        if st.status == Status::Closed {
            return;
        }
        st.status = Status::Closed;
        let idle = std::mem::take(&mut st.idle);
        st.total -= idle.len();
        for c in idle {
            self.close_conn(c, ConnectionClosedReason::PoolClosed);
        }
        let waiters = std::mem::take(&mut st.waiters);
        for w in &waiters {
            let e = self.fail(w.started, ConnectionCheckoutFailedReason::PoolClosed);
            *w.grant.lock() = Some(Grant::Fail(e));
        }
        self.emit(|| {
            CmapEvent::PoolClosed(PoolClosedEvent {
                address: self.address.clone(),
            })
        });
        drop(st);
        for w in waiters {
            w.parker.unpark();
        }
        self.wake_background();
    }

    /// Checks out a connection: an idle one, a new one if under the caps, or — after waiting
    /// in line for at most `waitQueueTimeoutMS` — the next one freed.
    pub fn check_out(&self) -> Result<Pooled<E::Conn>> {
        self.check_out_until(None)
    }

    /// [`check_out`](Self::check_out), waiting in line no later than `deadline` (an
    /// operation's overall time limit) nor longer than `waitQueueTimeoutMS`; either way the
    /// caller gets [`ErrorKind::WaitQueueTimeout`](crate::error::ErrorKind::WaitQueueTimeout).
    pub fn check_out_until(&self, deadline: Option<Instant>) -> Result<Pooled<E::Conn>> {
        // The check-out's events are delivered however it ends: returned, or unwound by a
        // cancellation. (No wrapper function for it: a caller waiting in line parks on its
        // own stack, under this frame, and each frame there costs the caller.)
        let _deliver = DeliverOnDrop(&self.events);
        let started = Instant::now();
        // The bookkeeping (and opening a connection, when granted a slot to open one) runs on
        // a driver stack; only the wait in line runs on the caller's, so a caller queued here
        // holds no driver stack.
        let waiter = match runtime::on_driver_stack(|| self.enter(started, deadline)) {
            Entry::Done(result) => return result,
            Entry::Queued(waiter) => waiter,
        };
        let queue_deadline = self.options.wait_queue_timeout.map(|t| started + t);
        let wait_deadline = match (queue_deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        loop {
            let remaining = wait_deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wake = waiter.parker.park(remaining);
            // A grant taken here goes straight into a driver section: the path from the park
            // to it is shallower than the park itself, so no stack overflow can strike
            // between a grant's arrival and its use.
            match runtime::on_driver_stack(|| self.after_wait(&waiter, wake)) {
                Entry::Done(result) => return result,
                Entry::Queued(_) => continue,
            }
        }
    }

    /// A check-out's first look, under the lock: a connection (or a slot to open one) if the
    /// queue is empty and one is free, an error if the pool is not ready, else a place in line.
    fn enter(&self, started: Instant, deadline: Option<Instant>) -> Entry<E::Conn> {
        let mut st = self.state.lock();
        self.emit(|| {
            CmapEvent::ConnectionCheckoutStarted(ConnectionCheckoutStartedEvent {
                address: self.address.clone(),
            })
        });
        match st.status {
            Status::Closed => {
                return Entry::Done(Err(
                    self.fail(started, ConnectionCheckoutFailedReason::PoolClosed)
                ));
            }
            Status::Paused => {
                return Entry::Done(Err(
                    self.fail(started, ConnectionCheckoutFailedReason::ConnectionError)
                ));
            }
            Status::Ready => {}
        }
        if st.waiters.is_empty()
            && let Some(grant) = self.try_grant(&mut st, started)
        {
            drop(st);
            return Entry::Done(self.use_grant(grant, started, deadline));
        }
        let waiter = Arc::new(Waiter {
            grant: Mutex::new(None),
            parker: Parker::new(self.core),
            started,
            deadline,
        });
        st.waiters.push_back(waiter.clone());
        Entry::Queued(waiter)
    }

    /// What a park in line ended with: the grant, if one came; a timeout or a cancellation
    /// settled under the lock; or `Queued` to wait on.
    fn after_wait(&self, waiter: &Arc<Waiter<E::Conn>>, wake: Wake) -> Entry<E::Conn> {
        if let Some(grant) = waiter.grant.lock().take() {
            return Entry::Done(self.use_grant(grant, waiter.started, waiter.deadline));
        }
        if wake == Wake::Notified {
            return Entry::Queued(waiter.clone());
        }
        // Timed out or cancelled. A grant may land between our look and now; settle it
        // under the state lock, where grants are given, so none is ever lost.
        let mut st = self.state.lock();
        let late = waiter.grant.lock().take();
        if late.is_none() {
            st.waiters.retain(|w| !Arc::ptr_eq(w, waiter));
        }
        if wake == Wake::Cancelled {
            if let Some(grant) = late {
                self.refuse(&mut st, grant);
            }
            let grants = self.dispatch(&mut st);
            drop(st);
            deliver(grants);
            may::coroutine::trigger_cancel_panic();
        }
        match late {
            Some(grant) => {
                drop(st);
                Entry::Done(self.use_grant(grant, waiter.started, waiter.deadline))
            }
            None => {
                self.emit(|| {
                    CmapEvent::ConnectionCheckoutFailed(ConnectionCheckoutFailedEvent {
                        address: self.address.clone(),
                        reason: ConnectionCheckoutFailedReason::Timeout,
                        duration: waiter.started.elapsed(),
                    })
                });
                Entry::Done(Err(ErrorKind::WaitQueueTimeout {
                    address: self.address.to_string(),
                    waited_ms: waiter.started.elapsed().as_millis() as u64,
                    max_pool_size: self.options.max_pool_size,
                }
                .into()))
            }
        }
    }

    /// Emits CheckOutFailed and builds the matching error.
    fn fail(&self, started: Instant, reason: ConnectionCheckoutFailedReason) -> crate::Error {
        self.emit(|| {
            CmapEvent::ConnectionCheckoutFailed(ConnectionCheckoutFailedEvent {
                address: self.address.clone(),
                reason,
                duration: started.elapsed(),
            })
        });
        match reason {
            ConnectionCheckoutFailedReason::PoolClosed => ErrorKind::PoolClosed {
                address: self.address.to_string(),
            }
            .into(),
            _ => crate::Error::pool_cleared(&self.address),
        }
    }

    /// Serves one caller from what is free now, if anything is: an idle connection (closing
    /// stale and perished ones on the way), or a permit to open one.
    fn try_grant(&self, st: &mut State<E::Conn>, started: Instant) -> Option<Grant<E::Conn>> {
        while let Some(c) = st.idle.pop() {
            match self.idle_close_reason(st, &c) {
                Some(reason) => {
                    st.total -= 1;
                    self.close_conn(c, reason);
                }
                None => {
                    self.emit(|| {
                        CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                            address: self.address.clone(),
                            connection_id: c.id(),
                            duration: started.elapsed(),
                        })
                    });
                    return Some(Grant::Conn(c));
                }
            }
        }
        if st.total < self.options.max_pool_size && st.connecting < self.options.max_connecting {
            let (id, generation) = self.reserve(st);
            return Some(Grant::Permit { id, generation });
        }
        None
    }

    /// Counts a new connection as connecting and announces it; returns its id and generation.
    fn reserve(&self, st: &mut State<E::Conn>) -> (u32, u64) {
        st.total += 1;
        st.connecting += 1;
        let id = st.next_id;
        st.next_id += 1;
        self.emit(|| {
            CmapEvent::ConnectionCreated(ConnectionCreatedEvent {
                address: self.address.clone(),
                connection_id: id,
            })
        });
        (id, st.generation)
    }

    /// Why an idle connection must be closed instead of used, if it must.
    fn idle_close_reason(
        &self,
        st: &State<E::Conn>,
        c: &Pooled<E::Conn>,
    ) -> Option<ConnectionClosedReason> {
        if c.generation != st.generation {
            Some(ConnectionClosedReason::Stale)
        } else if self.perished(c) {
            Some(ConnectionClosedReason::Idle)
        } else {
            None
        }
    }

    /// Hands whatever is free to the waiters at the front of the queue, in order. The grants
    /// are set here, under the lock; the caller wakes the waiters after unlocking.
    fn dispatch(&self, st: &mut State<E::Conn>) -> Vec<Arc<Waiter<E::Conn>>> {
        let mut woken = Vec::new();
        if st.status != Status::Ready {
            return woken;
        }
        while let Some(front) = st.waiters.front() {
            let started = front.started;
            match self.try_grant(st, started) {
                Some(grant) => {
                    let w = st.waiters.pop_front().expect("front exists");
                    *w.grant.lock() = Some(grant);
                    woken.push(w);
                }
                None => break,
            }
        }
        woken
    }

    /// Turns a grant into a connection: a connection is ready; a permit is opened now.
    fn use_grant(
        &self,
        grant: Grant<E::Conn>,
        started: Instant,
        deadline: Option<Instant>,
    ) -> Result<Pooled<E::Conn>> {
        let conn = match grant {
            Grant::Conn(c) => c,
            Grant::Fail(e) => return Err(e),
            Grant::Permit { id, generation } => {
                let conn = self.open(id, generation, Some(started), deadline)?;
                self.emit(|| {
                    CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                        address: self.address.clone(),
                        connection_id: id,
                        duration: started.elapsed(),
                    })
                });
                conn
            }
        };
        conn.lend();
        Ok(conn)
    }

    /// Opens connection `id` in a slot already counted as connecting. Whatever happens —
    /// success, error, panic, cancellation — the slot's bookkeeping is settled.
    /// `check_out` is when the check-out that asked for it started (None: background fill),
    /// `deadline` that operation's deadline.
    fn open(
        &self,
        id: u32,
        generation: u64,
        check_out: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<Pooled<E::Conn>> {
        struct Settle<'a, E: Establish> {
            pool: &'a Pool<E>,
            id: u32,
            done: bool,
        }
        impl<E: Establish> Drop for Settle<'_, E> {
            fn drop(&mut self) {
                if !self.done {
                    // Failed, panicked or cancelled: give the slot back.
                    let mut st = self.pool.state.lock();
                    st.connecting -= 1;
                    st.total -= 1;
                    self.pool.emit(|| {
                        CmapEvent::ConnectionClosed(ConnectionClosedEvent {
                            address: self.pool.address.clone(),
                            connection_id: self.id,
                            reason: ConnectionClosedReason::Error,
                        })
                    });
                    let woken = self.pool.dispatch(&mut st);
                    drop(st);
                    deliver(woken);
                }
            }
        }
        let created = Instant::now();
        let mut settle = Settle {
            pool: self,
            id,
            done: false,
        };
        let conn = match self.establisher.establish(deadline) {
            Ok(c) => c,
            Err(e) => {
                drop(settle);
                if let Some(started) = check_out {
                    self.emit(|| {
                        CmapEvent::ConnectionCheckoutFailed(ConnectionCheckoutFailedEvent {
                            address: self.address.clone(),
                            reason: ConnectionCheckoutFailedReason::ConnectionError,
                            duration: started.elapsed(),
                        })
                    });
                }
                return Err(e);
            }
        };
        settle.done = true;
        let mut st = self.state.lock();
        st.connecting -= 1;
        self.emit(|| {
            CmapEvent::ConnectionReady(ConnectionReadyEvent {
                address: self.address.clone(),
                connection_id: id,
                duration: created.elapsed(),
            })
        });
        // One fewer handshake in progress may let a waiter start one.
        let woken = self.dispatch(&mut st);
        drop(st);
        deliver(woken);
        let pool: Weak<dyn Reclaimer<E::Conn>> = self.me.clone();
        Ok(Pooled {
            held: Arc::new(Held {
                id,
                state: AtomicU64::new(IDLE),
                conn: UnsafeCell::new(Some(conn)),
                pool,
            }),
            generation,
            idle_since: Instant::now(),
        })
    }

    /// Returns a connection: closed if broken, stale or the pool is closed; otherwise handed to
    /// the first waiter or kept idle. Runs on a driver stack: it takes the lock, and a caller
    /// whose stack ran out there would leave it taken for good.
    pub fn check_in(&self, conn: Pooled<E::Conn>) {
        runtime::on_driver_stack(|| {
            self.check_in_here(conn);
            self.events.deliver();
        })
    }

    fn check_in_here(&self, mut conn: Pooled<E::Conn>) {
        if !conn.end_lease() {
            return; // reclaimed from a coroutine that died holding it: settled already
        }
        let mut st = self.state.lock();
        self.emit(|| {
            CmapEvent::ConnectionCheckedIn(ConnectionCheckedInEvent {
                address: self.address.clone(),
                connection_id: conn.id(),
            })
        });
        let reason = if st.status == Status::Closed {
            Some(ConnectionClosedReason::PoolClosed)
        } else if conn.is_broken() {
            Some(ConnectionClosedReason::Error)
        } else if conn.generation != st.generation {
            Some(ConnectionClosedReason::Stale)
        } else {
            None
        };
        match reason {
            Some(reason) => {
                st.total -= 1;
                self.close_conn(conn, reason);
            }
            None => {
                conn.idle_since = Instant::now();
                st.idle.push(conn);
            }
        }
        let woken = self.dispatch(&mut st);
        drop(st);
        deliver(woken);
    }

    /// Gives back a grant a cancelled waiter cannot use.
    fn refuse(&self, st: &mut State<E::Conn>, grant: Grant<E::Conn>) {
        match grant {
            Grant::Conn(mut c) => {
                c.idle_since = Instant::now();
                st.idle.push(c);
            }
            Grant::Permit { id, .. } => {
                st.total -= 1;
                st.connecting -= 1;
                self.emit(|| {
                    CmapEvent::ConnectionClosed(ConnectionClosedEvent {
                        address: self.address.clone(),
                        connection_id: id,
                        reason: ConnectionClosedReason::Error,
                    })
                });
            }
            Grant::Fail(_) => {}
        }
    }

    fn perished(&self, c: &Pooled<E::Conn>) -> bool {
        self.options
            .max_idle_time
            .is_some_and(|t| c.idle_since.elapsed() >= t)
    }

    fn close_conn(&self, c: Pooled<E::Conn>, reason: ConnectionClosedReason) {
        self.emit(|| {
            CmapEvent::ConnectionClosed(ConnectionClosedEvent {
                address: self.address.clone(),
                connection_id: c.id(),
                reason,
            })
        });
        if let Some(conn) = c.into_conn() {
            conn.close();
        }
    }

    fn wake_background(&self) {
        self.background_wake
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(p) = &*self.background.lock() {
            p.unpark();
        }
    }

    /// One pass of background maintenance; returns false once the pool is closed.
    fn maintain(&self) -> bool {
        // Close idle connections that perished or went stale.
        let mut st = self.state.lock();
        if st.status == Status::Closed {
            return false;
        }
        for c in std::mem::take(&mut st.idle) {
            match self.idle_close_reason(&st, &c) {
                Some(reason) => {
                    st.total -= 1;
                    self.close_conn(c, reason);
                }
                None => st.idle.push(c),
            }
        }
        // Open connections up to minPoolSize, one at a time, never overtaking waiters.
        while st.status == Status::Ready
            && st.total < self.options.min_pool_size
            && st.connecting < self.options.max_connecting
            && st.waiters.is_empty()
        {
            let (id, generation) = self.reserve(&mut st);
            drop(st);
            match self.open(id, generation, None, None) {
                Ok(conn) => self.check_in_quietly(conn),
                // The spec: a background establishment error clears the pool.
                Err(_) => self.clear(),
            }
            st = self.state.lock();
        }
        true
    }

    /// Puts a freshly opened background connection in the idle list (no CheckedIn event: it
    /// was never checked out).
    fn check_in_quietly(&self, mut conn: Pooled<E::Conn>) {
        let mut st = self.state.lock();
        if st.status == Status::Closed || conn.generation != st.generation {
            st.total -= 1;
            let reason = if st.status == Status::Closed {
                ConnectionClosedReason::PoolClosed
            } else {
                ConnectionClosedReason::Stale
            };
            self.close_conn(conn, reason);
        } else {
            conn.idle_since = Instant::now();
            st.idle.push(conn);
        }
        let woken = self.dispatch(&mut st);
        drop(st);
        deliver(woken);
    }
}

impl<E: Establish> Reclaimer<E::Conn> for Pool<E> {
    /// Takes back connection `id`, checked out by a coroutine that ended without checking it
    /// in (its stack overflowed): closed, and counted out as an error closes a connection.
    /// Runs where coroutine-locals drop — thread context on a worker — so it parks nothing.
    fn reclaimed(&self, id: u32, conn: E::Conn) {
        runtime::on_driver_stack(|| {
            let mut st = self.state.lock();
            st.total -= 1;
            self.emit(|| {
                CmapEvent::ConnectionCheckedIn(ConnectionCheckedInEvent {
                    address: self.address.clone(),
                    connection_id: id,
                })
            });
            self.emit(|| {
                CmapEvent::ConnectionClosed(ConnectionClosedEvent {
                    address: self.address.clone(),
                    connection_id: id,
                    reason: ConnectionClosedReason::Error,
                })
            });
            conn.close();
            let woken = self.dispatch(&mut st);
            drop(st);
            deliver(woken);
            self.events.deliver();
        })
    }
}

/// Wakes waiters whose grants were set under the lock.
fn deliver<C>(woken: Vec<Arc<Waiter<C>>>) {
    for w in woken {
        w.parker.unpark();
    }
}

/// The background task: holds only a weak reference, so a dropped pool ends it.
///
/// It makes its own parker, here, in the context that will park on it. That is not a
/// nicety: may's `Blocker` decides at construction whether it parks a coroutine or a thread,
/// and a blocker made on the user's thread (in `Pool::new`) then parked in this coroutine
/// blocks the may *worker* on a condvar. With two pools that was both workers of a 2-core
/// machine, and every other coroutine stopped (the CMAP tests caught it).
fn background<E: Establish>(pool: Weak<Pool<E>>, interval: Duration) {
    use std::sync::atomic::Ordering;
    let Some(core) = pool.upgrade().map(|p| p.core) else {
        return;
    };
    let parker = Arc::new(Parker::new(core));
    match pool.upgrade() {
        Some(p) => *p.background.lock() = Some(parker.clone()),
        None => return,
    }
    loop {
        let Some(p) = pool.upgrade() else { return };
        p.background_wake.store(false, Ordering::Release);
        let alive = p.maintain();
        p.deliver_events();
        if !alive {
            return;
        }
        let woken_meanwhile = p.background_wake.load(Ordering::Acquire);
        drop(p);
        if !woken_meanwhile && parker.park(Some(interval)) == Wake::Cancelled {
            return;
        }
    }
}

impl<E: Establish> Drop for Pool<E> {
    fn drop(&mut self) {
        for c in self.state.get_mut().idle.drain(..) {
            if let Some(conn) = c.into_conn() {
                conn.close();
            }
        }
    }
}

impl<E: Establish> std::fmt::Debug for Pool<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("address", &self.address)
            .field("stats", &self.stats())
            .finish()
    }
}
