//! The live deployment: what the monitors have learned, one pool per server, and server
//! selection that waits for the monitors.
//!
//! The decisions are sans-IO and live in [`crate::topology`]: [`Topology`] applies the SDAM
//! rules, [`suitable_servers`] and friends pick a server. This module is the glue with state
//! and time in it:
//!
//! - one lock ([`State`]) holds the topology, the servers (each with its CMAP pool, its
//!   affinity layer and its monitor's handle), and the callers waiting in selection. It is a
//!   parking_lot lock held only for bookkeeping — never across I/O or a park — so it is safe
//!   for coroutines and threads alike;
//! - every change rebuilds an immutable [`Snapshot`] behind an `Arc`, so an operation selects
//!   from a snapshot without holding the lock, and the common case (one primary, or one server)
//!   is answered by a precomputed index with no allocation;
//! - every change wakes the callers waiting in selection, who look again.
//!
//! Pools follow their server's state, as CMAP and SDAM prescribe: a pool starts paused, is
//! made ready when a monitor first finds the server usable, and is cleared (paused, older
//! connections discarded) on a failed check or a network error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bson::{Bson, Document};
use greenlet_pool::GreenletPool;
use parking_lot::Mutex;

use crate::address::ServerAddress;
use crate::conn::connection::{ConnectSettings, Connector};
use crate::conn::{Connection, ServerType};
use crate::error::{CommandError, Error, ErrorKind, Result, WriteConcernError, WriteFailure};
use crate::event::cmap::CmapEvent;
use crate::event::deferred::{Deferred, DeliverOnDrop};
use crate::event::{EventHandler, log};
use crate::monitor::{CheckSink, Monitor, MonitorControl};
use crate::options::Affinity;
use crate::pool::{Pool, PoolOptions, Pooled};
use crate::runtime::{self, Core, Parker, Wake};
use crate::topology::events::{
    ServerHeartbeatFailedEvent, ServerHeartbeatStartedEvent, ServerHeartbeatSucceededEvent,
    TopologyClosedEvent,
};
use crate::topology::{
    ApplicationError, Operation, ReadMode, RoundTripTime, SdamEvent, Topology, TopologyDescription,
    TopologyType, choose_by_operation_count, in_latency_window, suitable_servers,
};

/// What one look in server selection found.
enum Look {
    Done(Result<(Arc<Server>, TopologyType)>),
    /// The topology changed while looking: look again at once.
    Again,
    /// Nothing suitable yet: park on this (already registered) for at most this long.
    Wait(Arc<Parker>, Duration),
}

/// One server's pool as a source for the affinity layer (requests, per-coroutine pinning).
pub(crate) struct ServerPool(pub(crate) Arc<Pool<Connector>>);

impl greenlet_pool::Source for ServerPool {
    type Conn = Pooled<Connection>;
    type Error = Error;

    fn check_out(&self) -> Result<Pooled<Connection>> {
        self.0.check_out()
    }

    fn check_out_until(&self, deadline: Option<Instant>) -> Result<Pooled<Connection>> {
        self.0.check_out_until(deadline)
    }

    /// No I/O: at worst closes a socket. Safe in a coroutine-local destructor.
    fn check_in(&self, conn: Pooled<Connection>) {
        self.0.check_in(conn)
    }

    fn is_reusable(&self, conn: &Pooled<Connection>) -> bool {
        !crate::pool::PoolConnection::is_broken(&**conn)
    }
}

/// A server the client talks to: its pool, the affinity layer over it, and its monitor.
pub(crate) struct Server {
    pub(crate) address: ServerAddress,
    pub(crate) pool: Arc<Pool<Connector>>,
    pub(crate) affinity: GreenletPool<ServerPool>,
    /// Operations in progress on this server, for the "power of two choices".
    pub(crate) operations: AtomicUsize,
    monitor: Arc<MonitorControl>,
}

/// What a monitor measures besides the `hello` reply (not part of SDAM's description
/// equality, so kept beside the topology).
#[derive(Default)]
struct Heartbeat {
    rtt: RoundTripTime,
    last_update_ms: i64,
    last_write_ms: Option<i64>,
}

/// Settings the deployment needs from the client's options.
pub(crate) struct DeploymentSettings {
    pub(crate) core: Core,
    pub(crate) seeds: Vec<ServerAddress>,
    pub(crate) direct_connection: bool,
    pub(crate) replica_set: Option<String>,
    pub(crate) connect: ConnectSettings,
    pub(crate) pool: PoolOptions,
    pub(crate) affinity: Affinity,
    pub(crate) heartbeat: Duration,
    pub(crate) local_threshold: Duration,
    pub(crate) selection_timeout: Duration,
    /// Receives the SDAM events.
    pub(crate) sdam_handler: Option<EventHandler<SdamEvent>>,
    /// Receives the pools' CMAP events.
    pub(crate) cmap_handler: Option<EventHandler<CmapEvent>>,
}

pub(crate) struct Deployment {
    settings: DeploymentSettings,
    /// The driver's clock for `lastUpdateTime` (staleness estimates).
    epoch: Instant,
    state: Mutex<State>,
    /// SDAM and CMAP events made under `state`'s lock (and the pools'), delivered once it is
    /// released; shared with the pools so both families keep one order.
    events: Arc<Deferred>,
}

struct State {
    topology: Topology,
    servers: BTreeMap<ServerAddress, Arc<Server>>,
    heartbeats: BTreeMap<ServerAddress, Heartbeat>,
    snapshot: Arc<Snapshot>,
    /// Callers waiting in server selection; all are woken by every change.
    waiters: Vec<Arc<Parker>>,
    closed: bool,
}

/// An immutable view for server selection, rebuilt on every change.
pub(crate) struct Snapshot {
    version: u64,
    description: TopologyDescription,
    /// Index-aligned with `description.servers`.
    servers: Vec<Arc<Server>>,
    /// The one server for writes and primary reads, when there is exactly one.
    primary: Option<usize>,
    compatibility_error: Option<String>,
    /// Why each server is unsuitable when it is Unknown.
    errors: Vec<Option<String>>,
}

/// Read preference `primary`, for operations that name none.
pub(crate) const PRIMARY: crate::topology::ReadPreference = crate::topology::ReadPreference {
    mode: ReadMode::Primary,
    tag_sets: Vec::new(),
    max_staleness: None,
    hedge: None,
};

impl Deployment {
    /// Starts monitoring the seeds. No I/O on the caller's side: monitors run in the
    /// background (coroutines or threads, per core).
    pub(crate) fn start(settings: DeploymentSettings) -> Arc<Deployment> {
        let topology = Topology::new(
            &settings.seeds,
            settings.direct_connection,
            false,
            settings.replica_set.clone(),
        );
        let deployment = Arc::new(Deployment {
            epoch: Instant::now(),
            state: Mutex::new(State {
                topology,
                servers: BTreeMap::new(),
                heartbeats: BTreeMap::new(),
                snapshot: Arc::new(Snapshot::empty()),
                waiters: Vec::new(),
                closed: false,
            }),
            settings,
            events: Arc::default(),
        });
        let weak = Arc::downgrade(&deployment);
        let mut st = deployment.state.lock();
        let events = st.topology.opening_events();
        deployment.emit(events);
        deployment.sync(&mut st, &weak);
        drop(st);
        drop(DeliverOnDrop(&deployment.events));
        deployment
    }

    /// Queues events for delivery once the lock is released (see [`Deferred`]).
    fn emit(&self, events: impl IntoIterator<Item = SdamEvent>) {
        for e in events {
            self.emit_one(|| e);
        }
    }

    /// Queues the event `make` builds, if anyone listens (a handler, or a `tracing`
    /// subscriber interested in the topology).
    fn emit_one(&self, make: impl FnOnce() -> SdamEvent) {
        let logging = log::topology_on();
        if self.settings.sdam_handler.is_none() && !logging {
            return;
        }
        let (h, e) = (self.settings.sdam_handler.clone(), make());
        self.events.push(move || {
            if logging {
                log::topology(&e);
            }
            if let Some(h) = h {
                h.handle(e);
            }
        });
    }

    pub(crate) fn core(&self) -> Core {
        self.settings.core
    }

    /// The current snapshot (for reports).
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.state.lock().snapshot.clone()
    }

    /// Every server's pool, in address order.
    pub(crate) fn servers(&self) -> Vec<Arc<Server>> {
        self.state.lock().servers.values().cloned().collect()
    }

    /// The topology as SDAM sees it now.
    pub(crate) fn topology(&self) -> Topology {
        self.state.lock().topology.clone()
    }

    /// Makes the servers and pools follow the topology: new members get a pool and a
    /// monitor, removed ones are closed, usable ones have their pool ready. Then publishes a
    /// new snapshot and wakes the waiters. Called with the lock held after every change.
    fn sync(&self, st: &mut State, weak: &Weak<Deployment>) {
        let wanted: Vec<ServerAddress> = st.topology.servers.keys().cloned().collect();
        for address in &wanted {
            if !st.servers.contains_key(address) {
                let server = self.open_server(address, weak);
                st.servers.insert(address.clone(), server);
            }
        }
        let gone: Vec<ServerAddress> = st
            .servers
            .keys()
            .filter(|a| !st.topology.servers.contains_key(*a))
            .cloned()
            .collect();
        for address in gone {
            if let Some(server) = st.servers.remove(&address) {
                server.monitor.stop();
                server.pool.close_deferred();
            }
            st.heartbeats.remove(&address);
        }
        for (address, state) in &st.topology.servers {
            if state.server_type != ServerType::Unknown {
                st.servers[address].pool.ready_deferred();
            }
        }
        let version = st.snapshot.version + 1;
        st.snapshot = Arc::new(self.build_snapshot(st, version));
        for w in st.waiters.drain(..) {
            w.unpark();
        }
    }

    fn open_server(&self, address: &ServerAddress, weak: &Weak<Deployment>) -> Arc<Server> {
        let s = &self.settings;
        let pool = Pool::new_sharing(
            address.clone(),
            s.pool.clone(),
            s.core,
            Connector {
                address: address.clone(),
                settings: s.connect.clone(),
            },
            s.cmap_handler.clone(),
            self.events.clone(),
        );
        let control = Arc::new(MonitorControl::default());
        // A monitor's socket timeout is the connect timeout: a check must not hang forever
        // even when operations may (socketTimeoutMS unset).
        let mut monitor_settings = s.connect.clone();
        monitor_settings.socket_timeout = Some(s.connect.connect_timeout);
        Monitor {
            deployment: weak.clone(),
            address: address.clone(),
            control: control.clone(),
            core: s.core,
            settings: monitor_settings,
            heartbeat: s.heartbeat,
        }
        .start();
        Arc::new(Server {
            address: address.clone(),
            affinity: GreenletPool::new(ServerPool(pool.clone()), s.affinity),
            pool,
            operations: AtomicUsize::new(0),
            monitor: control,
        })
    }

    fn build_snapshot(&self, st: &State, version: u64) -> Snapshot {
        let mut description = st
            .topology
            .description(self.settings.heartbeat, self.settings.local_threshold);
        for d in &mut description.servers {
            if let Some(h) = st.heartbeats.get(&d.address) {
                d.avg_rtt = h.rtt.average();
                d.last_update_time_ms = h.last_update_ms;
                d.last_write_date_ms = h.last_write_ms;
            }
        }
        let servers: Vec<Arc<Server>> = description
            .servers
            .iter()
            .map(|d| st.servers[&d.address].clone())
            .collect();
        let errors = description
            .servers
            .iter()
            .map(|d| st.topology.servers[&d.address].error.clone())
            .collect();
        let primary = match suitable_servers(&description, Operation::Write, &[]) {
            Ok(s) if s.len() == 1 => description
                .servers
                .iter()
                .position(|d| d.address == s[0].address),
            _ => None,
        };
        Snapshot {
            version,
            primary,
            compatibility_error: st.topology.compatibility_error.clone(),
            errors,
            servers,
            description,
        }
    }
}

/// The monitors report to the deployment through this trait: they do not name the deployment.
impl CheckSink for Deployment {
    /// A monitor starts a check over its connection `driver_connection_id` (whose handshake
    /// gave the server's id for it, `server_connection_id`, if it is open).
    fn heartbeat_started(
        &self,
        address: &ServerAddress,
        driver_connection_id: u32,
        server_connection_id: Option<i64>,
    ) {
        let _deliver = DeliverOnDrop(&self.events);
        self.emit_one(|| {
            SdamEvent::ServerHeartbeatStarted(ServerHeartbeatStartedEvent {
                server_address: address.clone(),
                awaited: false,
                driver_connection_id,
                server_connection_id,
            })
        });
    }

    /// True when the server's last known type is not Unknown.
    fn is_known(&self, address: &ServerAddress) -> bool {
        self.state
            .lock()
            .topology
            .servers
            .get(address)
            .is_some_and(|s| s.server_type != ServerType::Unknown)
    }

    /// A monitor's check finished: apply it, and on failure clear the server's pool. A check
    /// cancelled while it ran (its `round` is past) is reported but not applied.
    fn on_check(
        self: Arc<Self>,
        address: &ServerAddress,
        outcome: Result<Document>,
        duration: Duration,
        connection: (u32, Option<i64>),
        round: u64,
    ) {
        let (driver_connection_id, server_connection_id) = connection;
        let events = self.events.clone();
        let _deliver = DeliverOnDrop(&events);
        self.emit_one(|| match &outcome {
            Ok(reply) => SdamEvent::ServerHeartbeatSucceeded(ServerHeartbeatSucceededEvent {
                duration,
                reply: reply.clone(),
                server_address: address.clone(),
                awaited: false,
                driver_connection_id,
                server_connection_id,
            }),
            Err(e) => SdamEvent::ServerHeartbeatFailed(ServerHeartbeatFailedEvent {
                duration,
                failure: e.clone(),
                server_address: address.clone(),
                awaited: false,
                driver_connection_id,
                server_connection_id,
            }),
        });
        let mut st = self.state.lock();
        let Some(server) = st.servers.get(address) else {
            return;
        };
        if st.closed || server.monitor.round() != round {
            return;
        }
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        let events = match &outcome {
            Ok(reply) => {
                let h = st.heartbeats.entry(address.clone()).or_default();
                h.rtt.add_sample(duration);
                h.last_update_ms = now_ms;
                h.last_write_ms = last_write_ms(reply);
                st.topology.on_hello(address, Ok(reply))
            }
            Err(e) => {
                // A failed check resets the average (the spec) and clears the pool: whatever
                // stopped the monitor's connection likely stopped the pooled ones too.
                st.heartbeats.remove(address);
                let server = st.servers[address].clone();
                server.pool.clear_deferred();
                sync_generation(&mut st, &server);
                st.topology.on_hello(address, Err(e.to_string()))
            }
        };
        self.emit(events);
        self.sync(&mut st, &Arc::downgrade(&self));
    }
}

impl Deployment {
    /// Applies the SDAM error rules to an operation's failure on `server` over a connection
    /// of pool generation `generation`.
    pub(crate) fn on_operation_error(
        self: &Arc<Self>,
        server: &Server,
        generation: u64,
        max_wire_version: i32,
        error: &Error,
    ) {
        let application_error = match &*error.kind {
            ErrorKind::Io(source)
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                ApplicationError::Timeout
            }
            _ if error.is_network_error() => ApplicationError::Network,
            // The SDAM spec: a failed authentication marks the server Unknown and clears its
            // pool, as a network error during the handshake does.
            ErrorKind::Authentication { .. } => ApplicationError::Network,
            ErrorKind::Command(CommandError { code, message, .. })
            | ErrorKind::Write(WriteFailure::WriteConcernError(WriteConcernError {
                code,
                message,
                ..
            })) => {
                let mut reply = Document::new();
                reply.insert("ok", 0.0);
                reply.insert("code", Bson::Int32(*code));
                reply.insert("errmsg", message.clone());
                ApplicationError::Command(reply)
            }
            _ => return,
        };
        let _deliver = DeliverOnDrop(&self.events);
        let mut st = self.state.lock();
        if st.closed || !st.servers.contains_key(&server.address) {
            return;
        }
        sync_generation(&mut st, server);
        let outcome = st.topology.on_application_error(
            &server.address,
            generation,
            max_wire_version,
            &application_error,
        );
        if outcome.clear_pool {
            server.pool.clear_deferred();
            sync_generation(&mut st, server);
        }
        // The server was marked Unknown for a network error: a check in progress began
        // before it and must not undo it (the spec's "cancel the hello check").
        if outcome.clear_pool && matches!(application_error, ApplicationError::Network) {
            server.monitor.cancel_check();
        }
        if outcome.check_now || outcome.clear_pool {
            server.monitor.request_check();
        }
        let changed = !outcome.events.is_empty();
        self.emit(outcome.events);
        if changed {
            self.sync(&mut st, &Arc::downgrade(self));
        }
    }

    /// Selects a server for `op`, waiting up to `serverSelectionTimeoutMS` for the monitors
    /// to find one. While waiting, every monitor is asked for an early check. Returns the
    /// topology type it selected in too (it decides how a read preference is sent). An
    /// operation's `deadline` cuts the wait shorter. A retry names the mongos its first
    /// attempt failed on in `avoid`: another one is chosen when there is one.
    pub(crate) fn select(
        &self,
        op: Operation<'_>,
        deadline: Option<Instant>,
        avoid: Option<&ServerAddress>,
    ) -> Result<(Arc<Server>, TopologyType)> {
        // The log calls are out of line: a caller waiting for a server parks on its own stack
        // under this frame, and in an unoptimised build each `tracing` macro costs it
        // hundreds of bytes.
        let logging = log::selection_on();
        if logging {
            log::selection_started(&op);
        }
        let result = self.select_quietly(op, deadline, avoid);
        if logging {
            log::selection_ended(&op, result.as_ref().map(|(s, _)| &s.address));
        }
        result
    }

    fn select_quietly(
        &self,
        op: Operation<'_>,
        deadline: Option<Instant>,
        avoid: Option<&ServerAddress>,
    ) -> Result<(Arc<Server>, TopologyType)> {
        let start = Instant::now();
        let mut limit = self.settings.selection_timeout;
        if let Some(d) = deadline {
            limit = limit.min(d.saturating_duration_since(start));
        }
        let mut parker: Option<Arc<Parker>> = None;
        loop {
            // Looking (and registering to wait) runs on a driver stack; the wait itself on
            // the caller's, so a caller waiting here holds no driver stack.
            let (p, timeout) = match runtime::on_driver_stack(|| {
                self.look(op, avoid, start, limit, &mut parker)
            }) {
                Look::Done(result) => return result,
                Look::Again => continue,
                Look::Wait(p, timeout) => (p, timeout),
            };
            log::selection_waiting(&op, timeout);
            if p.park(Some(timeout)) == Wake::Cancelled {
                runtime::on_driver_stack(|| {
                    self.state.lock().waiters.retain(|w| !Arc::ptr_eq(w, &p))
                });
                may::coroutine::trigger_cancel_panic();
            }
        }
    }

    /// One look for a server: the answer, or the parker to wait on (registered with the
    /// waiters, every monitor asked for an early check) and for how long.
    fn look(
        &self,
        op: Operation<'_>,
        avoid: Option<&ServerAddress>,
        start: Instant,
        limit: Duration,
        parker: &mut Option<Arc<Parker>>,
    ) -> Look {
        let snapshot = {
            let st = self.state.lock();
            if st.closed {
                return Look::Done(Err(ErrorKind::Shutdown.into()));
            }
            st.snapshot.clone()
        };
        if let Some(e) = &snapshot.compatibility_error {
            return Look::Done(Err(
                ErrorKind::IncompatibleServer { message: e.clone() }.into()
            ));
        }
        match snapshot.choose(op, self.settings.local_threshold, avoid) {
            Ok(Some(server)) => {
                return Look::Done(Ok((server, snapshot.description.topology_type)));
            }
            Ok(None) => {}
            Err(e) => return Look::Done(Err(e)),
        }
        let waited = start.elapsed();
        if waited >= limit {
            return Look::Done(Err(snapshot.selection_error(op, waited)));
        }
        // A parker is made in the caller's context (coroutine or thread), once.
        let p = parker.get_or_insert_with(|| Arc::new(Parker::new(self.settings.core)));
        let mut st = self.state.lock();
        if st.snapshot.version != snapshot.version {
            return Look::Again; // changed meanwhile: look again before sleeping
        }
        st.waiters.push(p.clone());
        for s in st.servers.values() {
            s.monitor.request_check();
        }
        Look::Wait(p.clone(), limit - waited)
    }

    /// Stops the monitors, closes every pool, and fails the callers waiting in selection.
    /// The client calls it on `shutdown` and when its last handle drops (a monitor that is
    /// mid-check then finds the deployment gone through its `Weak` and exits).
    pub(crate) fn close(&self) {
        let _deliver = DeliverOnDrop(&self.events);
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        st.closed = true;
        for s in st.servers.values() {
            s.monitor.stop();
            s.pool.close_deferred();
        }
        for w in st.waiters.drain(..) {
            w.unpark();
        }
        let id = st.topology.id;
        let closed: Vec<SdamEvent> = st
            .servers
            .keys()
            .map(|a| SdamEvent::server_closed(id, a))
            .chain([SdamEvent::TopologyClosed(TopologyClosedEvent {
                topology_id: id,
            })])
            .collect();
        self.emit(closed);
    }
}

impl Snapshot {
    fn empty() -> Snapshot {
        Snapshot {
            version: 0,
            description: TopologyDescription {
                topology_type: TopologyType::Unknown,
                servers: Vec::new(),
                heartbeat_frequency: Duration::ZERO,
                local_threshold: Duration::ZERO,
            },
            servers: Vec::new(),
            primary: None,
            compatibility_error: None,
            errors: Vec::new(),
        }
    }

    /// The topology type selection saw.
    pub(crate) fn topology_type(&self) -> TopologyType {
        self.description.topology_type
    }

    /// Picks a server, or `None` when none is suitable now.
    fn choose(
        &self,
        op: Operation<'_>,
        local_threshold: Duration,
        avoid: Option<&ServerAddress>,
    ) -> Result<Option<Arc<Server>>> {
        // The common case, without allocating: a write or primary read, and exactly one
        // server can take it.
        let primary_only = match op {
            Operation::Write => true,
            Operation::Read(rp) => rp.mode == ReadMode::Primary && rp.tag_sets.is_empty(),
            Operation::Predicate(_) => false,
        };
        if primary_only && let Some(i) = self.primary {
            return Ok(Some(self.servers[i].clone()));
        }
        let mut suitable = suitable_servers(&self.description, op, &[])?;
        // The Retryable Reads/Writes specs: in a sharded cluster, a retry goes to another
        // mongos than the one that failed, when another is suitable.
        if let Some(avoid) = avoid
            && self.description.topology_type == TopologyType::Sharded
            && suitable.iter().any(|d| &d.address != avoid)
        {
            suitable.retain(|d| &d.address != avoid);
        }
        let window = in_latency_window(&suitable, local_threshold);
        let chosen = choose_by_operation_count(
            &window,
            |a| {
                self.server(a)
                    .map_or(0, |s| s.operations.load(Ordering::Relaxed))
            },
            crate::random::random_below,
        );
        Ok(chosen.and_then(|d| self.server(&d.address)).cloned())
    }

    fn server(&self, address: &ServerAddress) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| &s.address == address)
    }

    /// The error for a selection that timed out: every server, and why it did not qualify.
    fn selection_error(&self, op: Operation<'_>, waited: Duration) -> Error {
        let operation = match op {
            Operation::Write => "a write".to_string(),
            Operation::Read(rp) => format!("a read ({})", rp.mode.name()),
            Operation::Predicate(_) => "a read (by predicate)".to_string(),
        };
        let servers = self
            .description
            .servers
            .iter()
            .zip(&self.errors)
            .map(|(d, error)| {
                let why = match (d.server_type, error) {
                    (ServerType::Unknown, Some(e)) => format!("unreachable: {e}"),
                    (ServerType::Unknown, None) => "not checked yet".to_string(),
                    (t, _) => format!("a {}, not suitable", t.spec_name()),
                };
                (d.address.to_string(), why)
            })
            .collect();
        Error::server_selection(
            operation,
            waited.as_millis() as u64,
            format!("{:?}", self.description.topology_type),
            servers,
        )
    }
}

/// Copies a server's pool generation into the topology, which judges errors against it. The
/// pool owns the counter: clearing an already-paused pool does not bump it.
fn sync_generation(st: &mut State, server: &Server) {
    let generation = server.pool.stats().generation;
    st.topology.set_pool_generation(&server.address, generation);
}

/// `lastWrite.lastWriteDate` of a `hello` reply, in ms since the epoch.
fn last_write_ms(reply: &Document) -> Option<i64> {
    match reply.get_document("lastWrite").ok()?.get("lastWriteDate")? {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        _ => None,
    }
}
