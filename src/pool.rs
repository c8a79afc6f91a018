//! A bounded pool of connections to one server.
//!
//! The shape is MotorPool's and CMAP's: the cap counts checked-out *and* idle connections;
//! callers beyond the cap wait in a FIFO queue; a returned connection is handed *directly* to
//! the first waiter rather than put back and raced for; a connection whose operation did not
//! complete is closed, and its slot passed on as a permit to open a new one.
//!
//! Waiting never blocks a may worker: each waiter parks on the seam's [`Parker`], which parks
//! a coroutine (or, outside coroutines, the thread). The state lock is a parking_lot mutex held
//! only for a few pointer moves, never across I/O or a park — the pitfall that deadlocks may.
//!
//! Checking out returns a [`PooledConnection`]; its `Drop` checks the connection back in. That
//! covers every way an operation can end — success, error, panic, a cancelled coroutine
//! unwinding — and because a connection knows whether it is mid-operation, a half-used one is
//! closed rather than pooled. `Drop` does no I/O beyond closing a socket.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::conn::Connection;
use crate::conn::connection::ConnectSettings;
use crate::error::{ErrorKind, Result};
use crate::options::ServerAddress;
use crate::runtime::{Parker, Wake};

/// What a waiter is handed. (The connection is moved, not boxed: a hand-off should not
/// allocate.)
#[allow(clippy::large_enum_variant)]
enum Grant {
    /// A ready connection.
    Conn(Connection),
    /// A free slot: open a new connection in it.
    Permit,
    /// The pool was closed while waiting.
    Closed,
}

struct Waiter {
    grant: Mutex<Option<Grant>>,
    parker: Parker,
}

struct State {
    idle: Vec<Connection>,
    /// Connections in existence or being opened: idle + checked out + connecting.
    total: usize,
    waiters: VecDeque<Arc<Waiter>>,
    generation: u64,
    closed: bool,
}

/// A pool of connections to one server.
pub(crate) struct Pool {
    address: ServerAddress,
    settings: ConnectSettings,
    max_size: usize,
    wait_timeout: Option<Duration>,
    state: Mutex<State>,
}

/// Counters for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open or being opened (idle + checked out + connecting).
    pub total: usize,
    /// Idle connections.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiters: usize,
}

impl Pool {
    pub(crate) fn new(
        address: ServerAddress,
        settings: ConnectSettings,
        max_size: usize,
        wait_timeout: Option<Duration>,
    ) -> Pool {
        Pool {
            address,
            settings,
            max_size: if max_size == 0 { usize::MAX } else { max_size },
            wait_timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                total: 0,
                waiters: VecDeque::new(),
                generation: 0,
                closed: false,
            }),
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        PoolStats {
            total: st.total,
            idle: st.idle.len(),
            waiters: st.waiters.len(),
        }
    }

    /// Checks out a connection: an idle one, a new one if under the cap, or the next one
    /// returned, waiting in line for at most `waitQueueTimeoutMS`.
    pub(crate) fn check_out(&self) -> Result<PooledConnection<'_>> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(ErrorKind::Shutdown.into());
        }
        // LIFO: the most recently used connection is the likeliest to be warm and alive.
        if let Some(conn) = st.idle.pop() {
            return Ok(self.wrap(conn));
        }
        if st.total < self.max_size {
            st.total += 1;
            let generation = st.generation;
            drop(st);
            return self.open(generation);
        }
        let waiter = Arc::new(Waiter {
            grant: Mutex::new(None),
            parker: Parker::new(self.settings.core),
        });
        st.waiters.push_back(waiter.clone());
        drop(st);
        self.wait(&waiter)
    }

    fn wait(&self, waiter: &Arc<Waiter>) -> Result<PooledConnection<'_>> {
        let started = Instant::now();
        loop {
            let remaining = self
                .wait_timeout
                .map(|t| t.saturating_sub(started.elapsed()));
            let wake = waiter.parker.park(remaining);
            if let Some(grant) = waiter.grant.lock().take() {
                return self.take_grant(grant);
            }
            if wake == Wake::Notified {
                continue;
            }
            // Timed out or cancelled. A grant may have landed since we looked: settle it
            // under the state lock, where grants are given, so none is lost.
            let mut st = self.state.lock();
            let late = waiter.grant.lock().take();
            if late.is_none() {
                st.waiters.retain(|w| !Arc::ptr_eq(w, waiter));
            }
            drop(st);
            if wake == Wake::Cancelled {
                if let Some(grant) = late {
                    self.refuse_grant(grant);
                }
                may::coroutine::trigger_cancel_panic();
            }
            if let Some(grant) = late {
                return self.take_grant(grant);
            }
            return Err(ErrorKind::WaitQueueTimeout {
                address: self.address.to_string(),
                waited_ms: started.elapsed().as_millis() as u64,
                max_pool_size: self.max_size,
            }
            .into());
        }
    }

    fn take_grant(&self, grant: Grant) -> Result<PooledConnection<'_>> {
        match grant {
            Grant::Conn(conn) => Ok(self.wrap(conn)),
            Grant::Permit => {
                let generation = self.state.lock().generation;
                self.open(generation)
            }
            Grant::Closed => Err(ErrorKind::Shutdown.into()),
        }
    }

    /// Gives back a grant a cancelled waiter cannot use.
    fn refuse_grant(&self, grant: Grant) {
        match grant {
            Grant::Conn(conn) => self.check_in(conn),
            Grant::Permit => self.release_slot(),
            Grant::Closed => {}
        }
    }

    /// Opens a connection in a slot already counted in `total`.
    fn open(&self, generation: u64) -> Result<PooledConnection<'_>> {
        // If connecting fails, panics or is cancelled, the slot must be given back.
        struct SlotGuard<'a>(Option<&'a Pool>);
        impl Drop for SlotGuard<'_> {
            fn drop(&mut self) {
                if let Some(pool) = self.0 {
                    pool.release_slot();
                }
            }
        }
        let mut guard = SlotGuard(Some(self));
        let conn = Connection::connect(&self.address, &self.settings, generation)?;
        guard.0 = None;
        Ok(self.wrap(conn))
    }

    fn wrap(&self, conn: Connection) -> PooledConnection<'_> {
        PooledConnection {
            conn: Some(conn),
            pool: self,
        }
    }

    /// Frees one slot: the next waiter, if any, gets a permit to open a connection in it.
    fn release_slot(&self) {
        let mut st = self.state.lock();
        st.total -= 1;
        let next = if st.closed {
            None
        } else {
            st.waiters.pop_front()
        };
        if let Some(w) = &next {
            st.total += 1;
            *w.grant.lock() = Some(Grant::Permit);
        }
        drop(st);
        if let Some(w) = next {
            w.parker.unpark();
        }
    }

    /// Returns a connection: to the first waiter, to the idle list, or — if its operation did
    /// not finish, its generation is stale, or the pool is closed — to the bin.
    fn check_in(&self, conn: Connection) {
        let mut st = self.state.lock();
        if conn.is_broken() || st.closed || conn.generation != st.generation {
            drop(st);
            conn.close();
            self.release_slot();
            return;
        }
        match st.waiters.pop_front() {
            Some(w) => {
                *w.grant.lock() = Some(Grant::Conn(conn));
                drop(st);
                w.parker.unpark();
            }
            None => st.idle.push(conn),
        }
    }

    /// Closes the pool: idle connections now, checked-out ones when they come back; every
    /// waiter wakes with a shutdown error.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        let idle = std::mem::take(&mut st.idle);
        st.total -= idle.len();
        let waiters = std::mem::take(&mut st.waiters);
        for w in &waiters {
            *w.grant.lock() = Some(Grant::Closed);
        }
        drop(st);
        for c in idle {
            c.close();
        }
        for w in waiters {
            w.parker.unpark();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for c in self.state.get_mut().idle.drain(..) {
            c.close();
        }
    }
}

/// A checked-out connection; returns itself to the pool when dropped.
pub(crate) struct PooledConnection<'a> {
    conn: Option<Connection>,
    pool: &'a Pool,
}

impl Deref for PooledConnection<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl DerefMut for PooledConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.check_in(conn);
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("address", &self.address)
            .field("stats", &self.stats())
            .finish()
    }
}
