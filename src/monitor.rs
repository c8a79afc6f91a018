//! Server monitors: one background task per server, checking it with `hello`.
//!
//! This is the I/O half of SDAM. Each monitor owns one dedicated connection (never pooled, so
//! a busy pool cannot delay a heartbeat), sends `hello` every `heartbeatFrequencyMS`, times
//! the round trip, and hands the reply — or the failure — to its owner (a [`CheckSink`]: the
//! deployment), which applies the spec's rules and wakes operations waiting in server selection.
//!
//! In the coroutine core a monitor is a may coroutine: a thousand-member deployment costs a
//! thousand small stacks, not a thousand threads. In the threaded core it is an OS thread.
//! Either way it waits on a [`Parker`] made in its own context, so an operation that wants a
//! fresh look at the deployment (no suitable server, or an error that marked a server
//! Unknown) can wake it early — but never more often than every 500 ms
//! (`minHeartbeatFrequencyMS`), so a burst of failing operations cannot flood a server.
//!
//! FerretDB sends no `topologyVersion`, so only the polling protocol is implemented: no
//! streaming `hello`, no `awaitedTimeMS`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use parking_lot::Mutex;

use crate::address::ServerAddress;
use crate::conn::Connection;
use crate::conn::check_ok;
use crate::conn::connection::ConnectSettings;
use crate::error::Result;
use crate::runtime::{self, Core, Parker, Wake};
use crate::wire::next_request_id;

/// The spec's floor between two checks of one server, however often they are requested.
pub(crate) const MIN_HEARTBEAT: Duration = Duration::from_millis(500);

/// The driver's ids for monitoring connections (their heartbeat events carry them), shared
/// by every monitor as in the official crate.
fn next_monitoring_connection_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What a monitor reports to: the deployment that owns it. A trait, so that the monitor does
/// not import the layer above it.
pub(crate) trait CheckSink: Send + Sync {
    /// A check of `address` is starting over the monitor's connection `driver_connection_id`
    /// (whose handshake gave the server's id for it, `server_connection_id`, if it is open).
    fn heartbeat_started(
        &self,
        address: &ServerAddress,
        driver_connection_id: u32,
        server_connection_id: Option<i64>,
    );
    /// Whether `address`'s last known type is not Unknown (a failed check of a known server is
    /// retried once at once).
    fn is_known(&self, address: &ServerAddress) -> bool;
    /// A check finished with `outcome` after `duration`; `connection` is the driver's and
    /// the server's ids for the monitor's connection. `round` is the monitor's
    /// [`round`](MonitorControl::round) when the check began: if the check was cancelled since,
    /// its outcome is stale and must not be applied.
    fn on_check(
        self: Arc<Self>,
        address: &ServerAddress,
        outcome: Result<Document>,
        duration: Duration,
        connection: (u32, Option<i64>),
        round: u64,
    );
}

/// The handle through which the deployment steers a monitor.
#[derive(Default)]
pub(crate) struct MonitorControl {
    stop: AtomicBool,
    check_requested: AtomicBool,
    /// Bumped by [`cancel_check`](Self::cancel_check): a check that began in an earlier round
    /// was cancelled.
    round: AtomicU64,
    /// Set by the monitor once it runs: a parker must be made where it parks.
    parker: Mutex<Option<Arc<Parker>>>,
}

impl MonitorControl {
    /// Asks for a check as soon as the 500 ms floor allows.
    pub(crate) fn request_check(&self) {
        self.check_requested.store(true, Ordering::Release);
        self.wake();
    }

    /// Cancels the check in progress, if any: its outcome will not be applied, and the
    /// monitor closes its connection and opens a new one for the next check. The SDAM spec
    /// asks this when an operation's network error marks the server Unknown: a `hello` sent
    /// before the failure may answer after it, and would otherwise undo what the failure
    /// taught (a primary that just went away, made selectable again). The owner calls it
    /// under the same lock under which it applies outcomes, so no stale one slips between.
    ///
    /// The check is not interrupted: a `hello` already on the wire runs to its end (at most
    /// the monitor's socket timeout), and its answer is then dropped.
    pub(crate) fn cancel_check(&self) {
        self.round.fetch_add(1, Ordering::AcqRel);
    }

    /// How many cancellations there have been so far; a check remembers it when it begins.
    pub(crate) fn round(&self) -> u64 {
        self.round.load(Ordering::Acquire)
    }

    /// Ends the monitor after its current check (its connection closes as it exits).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if let Some(p) = &*self.parker.lock() {
            p.unpark();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// One server's monitor, before it starts.
pub(crate) struct Monitor {
    pub(crate) deployment: Weak<dyn CheckSink>,
    pub(crate) address: ServerAddress,
    pub(crate) control: Arc<MonitorControl>,
    pub(crate) core: Core,
    pub(crate) settings: ConnectSettings,
    pub(crate) heartbeat: Duration,
}

impl Monitor {
    /// Starts monitoring in the background: a coroutine or a thread, per core.
    pub(crate) fn start(self) {
        let name = format!("may_mongo-monitor-{}", self.address);
        if let Err(e) = runtime::spawn(self.core, &name, move || self.run(None)) {
            // Without a monitor the server stays Unknown and selection times out naming it.
            tracing::warn!(
                target: crate::event::log::BACKGROUND,
                "could not start {name}: {e}; the server stays Unknown"
            );
        }
    }
}

impl Monitor {
    /// The monitor's life; `conn` is its dedicated connection once open.
    fn run(self, mut conn: Option<Connection>) {
        let parker = Arc::new(Parker::new(self.core));
        *self.control.parker.lock() = Some(parker.clone());
        // The driver's id for the monitoring connection, open or about to be.
        let mut conn_id = next_monitoring_connection_id();
        while !self.control.stopped() {
            self.control.check_requested.store(false, Ordering::Release);
            let started = Instant::now();
            let Some(deployment) = self.deployment.upgrade() else {
                return; // the client is gone
            };
            let server_id = |conn: &Option<Connection>| {
                conn.as_ref().and_then(|c| c.description().connection_id)
            };
            let before = server_id(&conn);
            let round = self.control.round();
            deployment.heartbeat_started(&self.address, conn_id, before);
            let had_conn = conn.is_some();
            let mut outcome = self.check(&mut conn);
            // The spec's one immediate retry: a known server whose established monitoring
            // connection failed may simply have dropped that one socket.
            if outcome.is_err() && had_conn && deployment.is_known(&self.address) {
                conn_id = next_monitoring_connection_id();
                outcome = self.check(&mut conn);
            }
            let ids = (conn_id, server_id(&conn).or(before));
            // Takes the handle: the client is not kept alive while the monitor sleeps.
            deployment.on_check(&self.address, outcome, started.elapsed(), ids, round);
            if self.control.round() != round {
                // Cancelled: the connection that carried the stale check is closed.
                conn = None;
            }
            if conn.is_none() {
                conn_id = next_monitoring_connection_id(); // the next check opens another
            }
            if !self.wait(&parker, started) {
                return;
            }
        }
    }

    /// Sleeps until the next heartbeat or an allowed early check; false when told to stop (or
    /// cancelled).
    fn wait(&self, parker: &Parker, started: Instant) -> bool {
        let next = started + self.heartbeat;
        let earliest = started + MIN_HEARTBEAT;
        loop {
            if self.control.stopped() {
                return false;
            }
            let now = Instant::now();
            let requested = self.control.check_requested.load(Ordering::Acquire);
            if now >= next || (requested && now >= earliest) {
                return true;
            }
            let until = if requested { earliest.min(next) } else { next };
            if parker.park(Some(until - now)) == Wake::Cancelled {
                return false;
            }
        }
    }

    /// One check: the handshake on a new connection, or `hello` on the established one. A
    /// failed check drops the connection; the next check opens a new one.
    fn check(&self, slot: &mut Option<Connection>) -> Result<Document> {
        let conn = match slot {
            Some(conn) => conn,
            None => {
                let (conn, reply) = Connection::connect_for_monitor(&self.address, &self.settings)?;
                *slot = Some(conn);
                return Ok(reply);
            }
        };
        // Servers that answered `helloOk` know `hello`; older ones only the legacy name. A
        // client declaring a Stable API version uses `hello` only (the spec forbids legacy
        // hello then); the connection adds the API fields, as to every command.
        let command = if conn.description().hello_ok || self.settings.server_api.is_some() {
            doc! { "hello": 1, "$db": "admin" }
        } else {
            doc! { "isMaster": 1, "$db": "admin" }
        };
        let reply = conn
            .round_trip(next_request_id(), |m| m.body(&command))
            .and_then(|raw| {
                check_ok(raw)?;
                crate::decode::to_document(raw)
            });
        if reply.is_err() {
            *slot = None;
        }
        reply
    }
}
