//! The client: options, one pool per server, and the executor every operation goes through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use crate::address::ServerAddress;
use crate::conn::connection::ConnectSettings;
use crate::conn::{StreamDescription, check_ok, handshake_metadata};
use crate::deployment::{Deployment, DeploymentSettings, PRIMARY, Server, ServerPool};
use crate::error::{Error, ErrorKind, Result, WriteFailure};
use crate::event::EventHandler;
use crate::event::command::{
    CommandEvent, CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, ConnectionInfo,
};
use crate::ops::Operation;
use crate::options::ClientOptions;
use crate::pool::{PoolOptions, PoolStats};
use crate::retry::{
    Retry, is_network_or_pool_cleared, is_retryable_read_error, is_retryable_write_error,
    wrote_nothing,
};
use crate::runtime::{Core, Runner, ThreadPool, on_driver_stack};
use crate::selection_criteria::Criteria;
use crate::session::{Claim, ClusterTime, ServerSession, SessionCell, SessionPool, SessionState};
use crate::topology::{self, ReadMode, Topology, TopologyType};
use crate::wire::{BodyField, OpMsgBuilder, WireError, next_request_id};
use greenlet_pool::{Lease, Request};

/// A handle to a MongoDB deployment. Cheap to clone (an `Arc`); share one per process.
///
/// Creating a client starts one monitor per seed in the background (a coroutine each in the
/// coroutine core, a thread each in the threaded core); the caller does no I/O. Operations
/// select a server from what the monitors found — waiting up to `serverSelectionTimeoutMS`
/// for one — and open pooled connections on first use. Every method is blocking-style: inside
/// a may coroutine it parks the coroutine on I/O and lets others run; on a plain thread it
/// blocks the thread. One client can serve coroutines and OS threads at the same time.
///
/// ```no_run
/// # fn main() -> may_mongo::Result<()> {
/// let client = may_mongo::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
/// let reply = client.database("admin").run_command(bson::doc! { "ping": 1 }).run()?;
/// assert_eq!(reply.get_f64("ok").ok(), Some(1.0));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    options: ClientOptions,
    deployment: Arc<Deployment>,
    shut_down: AtomicBool,
    /// The client's selection criteria (the primary unless its options say otherwise).
    criteria: Criteria,
    /// `$readPreference` fields, encoded once: the client's own (when not primary), and the
    /// `primaryPreferred` a direct connection sends for primary reads.
    read_preference_field: Option<BodyField>,
    primary_preferred_field: BodyField,
    /// Where dropped cursors are queued for `killCursors` by a background task.
    reaper: may::sync::mpsc::Sender<Reap>,
    /// The credential every pooled connection authenticates with.
    auth: Option<Arc<crate::auth::Authenticator>>,
    /// Idle server sessions, lent to operations (implicit sessions) and to `ClientSession`s.
    sessions: SessionPool,
    /// The newest `$clusterTime` any reply carried, and its encoded field: sent with every
    /// command (gossip). `None` until a replica set or mongos reports one.
    cluster_time: Mutex<Option<Arc<(ClusterTime, BodyField)>>>,
    /// Where the async façade (the `motor` module) runs this client's blocking calls: made on the
    /// first async call, so a client used only blocking-style never starts a thread pool.
    runner: OnceLock<Runner>,
    /// Commands a server refused because of the `maxTimeMS` this driver derived from the
    /// operation's time limit (FerretDB v1.24's `distinct`: "unknown field maxTimeMS"). They
    /// are sent without it from then on; the client's own deadline still bounds them.
    max_time_refused: Mutex<std::collections::HashSet<String>>,
}

impl Drop for Inner {
    /// The last handle is gone: stop monitoring and close the pools (no I/O here).
    fn drop(&mut self) {
        self.deployment.close();
    }
}

/// A connection lent to one operation. Its `Drop` returns it — to the caller's request slot or
/// to the pool — on every path out of an operation, including a panic or a cancelled
/// coroutine's unwind; the pool closes it if the operation did not finish.
type CheckedOut = Lease<ServerPool>;

/// A request: while the guard lives (the outermost, when nested), the calling coroutine's — or
/// thread's — operations on this client use one connection per server, so it reads its own
/// writes. Returned by [`Client::start_request`]. It covers the servers known when it started
/// (a replica set member discovered later is used per operation).
pub struct RequestGuard {
    _requests: Vec<Request<ServerPool>>,
}

/// Counts an operation in flight on a server, for the "power of two choices".
struct InFlight<'a>(&'a Server);

impl<'a> InFlight<'a> {
    fn new(server: &'a Server) -> Self {
        server.operations.fetch_add(1, Ordering::Relaxed);
        InFlight(server)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.operations.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Client {
    /// Parses `uri` and creates a client (no I/O).
    pub fn with_uri_str(uri: impl AsRef<str>) -> Result<Client> {
        let uri = uri.as_ref();
        crate::runtime::on_driver_stack(|| Client::build(ClientOptions::parse_now(uri)?))
    }

    /// Creates a client from options and starts monitoring its seeds in the background.
    pub fn with_options(options: ClientOptions) -> Result<Client> {
        // Built on a driver stack: checking the options and making the handshake's metadata
        // take more than a coroutine's 32 KiB in an unoptimised build.
        crate::runtime::on_driver_stack(move || Client::build(options))
    }

    /// Where async calls on this client run (the `motor` module): new coroutines for the
    /// coroutine core, a pool of [`ThreadPool::default_size`] threads for the threaded core,
    /// started on first use.
    pub(crate) fn runner(&self) -> Result<&Runner> {
        if let Some(runner) = self.inner.runner.get() {
            return Ok(runner);
        }
        // Two first calls at once may both make a runner; the loser's pool is dropped, and
        // its threads exit.
        let runner = Runner::new(self.core(), ThreadPool::default_size())?;
        Ok(self.inner.runner.get_or_init(|| runner))
    }

    /// Sets the runner before any async call has made one; false if one exists already.
    pub(crate) fn set_runner(&self, runner: Runner) -> bool {
        self.inner.runner.set(runner).is_ok()
    }

    fn build(options: ClientOptions) -> Result<Client> {
        // What the connection string held that this driver ignores or does not use: said
        // where an application sees its driver's warnings, not kept in a list nobody reads.
        for w in &options.warnings {
            tracing::warn!(target: crate::event::log::OPTIONS, "{w}");
        }
        if options.hosts.is_empty() {
            return Err(Error::invalid_argument("ClientOptions.hosts is empty"));
        }
        let direct = options.direct_connection == Some(true);
        if direct && options.hosts.len() > 1 {
            return Err(Error::invalid_argument(
                "directConnection=true takes exactly one host",
            ));
        }
        // The credential is checked now (mechanism, user, password), not on first use.
        let auth = options
            .credential
            .clone()
            .map(crate::auth::Authenticator::new)
            .transpose()?
            .map(Arc::new);
        if auth.as_ref().is_some_and(|a| a.uses_client_certificate())
            && options
                .tls
                .as_ref()
                .is_none_or(|t| t.cert_key_file.is_none())
        {
            return Err(Error::invalid_argument(
                "MONGODB-X509 authenticates with the TLS client certificate: set \
                 tlsCertificateKeyFile (which turns TLS on)",
            ));
        }
        let settings = DeploymentSettings {
            core: options.core,
            seeds: options.hosts.clone(),
            direct_connection: direct,
            replica_set: options.replica_set.clone(),
            connect: ConnectSettings {
                core: options.core,
                connect_timeout: options.connect_timeout,
                socket_timeout: options.socket_timeout,
                metadata: handshake_metadata(options.app_name.as_deref(), options.core),
                auth: auth.clone(),
                compressors: options.compressors.clone(),
                tls: options
                    .tls
                    .as_ref()
                    .map(crate::TlsOptions::client_config)
                    .transpose()?,
                server_api: options
                    .server_api
                    .as_ref()
                    .map(|api| BodyField::from_fields(&api.command_fields()))
                    .transpose()
                    .map_err(|e| Error::internal(format!("Stable API fields: {e}")))?,
            },
            pool: PoolOptions {
                max_pool_size: options.max_pool_size,
                min_pool_size: options.min_pool_size,
                max_connecting: options.max_connecting,
                max_idle_time: options.max_idle_time,
                wait_queue_timeout: options.wait_queue_timeout,
                ..PoolOptions::default()
            },
            affinity: options.affinity,
            heartbeat: options.heartbeat_frequency,
            local_threshold: options.local_threshold,
            selection_timeout: options.server_selection_timeout,
            sdam_handler: options.sdam_event_handler.clone(),
            cmap_handler: options.cmap_event_handler.clone(),
        };
        let field = |rp: &crate::topology::ReadPreference| {
            BodyField::new("$readPreference", &read_preference_doc(rp)).map_err(|e| {
                Error::invalid_argument(format!("read preference cannot be encoded: {e}"))
            })
        };
        let criteria = options
            .selection_criteria
            .as_ref()
            .map(Criteria::from)
            .unwrap_or_default();
        let read_preference_field = match criteria.read_preference() {
            Some(rp) if rp.mode != ReadMode::Primary => Some(field(rp)?),
            _ => None,
        };
        let primary_preferred_field = field(&crate::topology::ReadPreference {
            mode: ReadMode::PrimaryPreferred,
            ..PRIMARY
        })?;
        let core = options.core;
        Ok(Client {
            inner: Arc::new_cyclic(|weak| Inner {
                deployment: Deployment::start(settings),
                options,
                criteria,
                shut_down: AtomicBool::new(false),
                read_preference_field,
                primary_preferred_field,
                reaper: start_reaper(core, weak.clone()),
                auth,
                sessions: SessionPool::default(),
                cluster_time: Mutex::new(None),
                runner: OnceLock::new(),
                max_time_refused: Mutex::default(),
            }),
        })
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Client {
        Client { inner }
    }

    /// Queues a server cursor for `killCursors` in the background (no I/O on the caller).
    pub(crate) fn queue_kill(&self, kill: Kill) {
        let _ = self.inner.reaper.send(Reap::Kill(kill));
    }

    /// Queues `job` for the background task that kills dropped cursors: for cleanup a `Drop`
    /// must not do itself (it may run in a coroutine-local destructor, where may I/O hangs).
    pub(crate) fn queue_cleanup(&self, job: Box<dyn FnOnce(&Client) + Send>) {
        let _ = self.inner.reaper.send(Reap::Job(job));
    }

    /// The options this client was created with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// The core running this client's I/O.
    pub fn core(&self) -> Core {
        self.inner.deployment.core()
    }

    /// The deployment as the monitors see it now: its type, and each server's description.
    pub fn topology(&self) -> Topology {
        self.inner.deployment.topology()
    }

    /// What the server said about itself in the handshake of a pooled connection to the
    /// primary (or the one server), opening one if none is idle.
    pub fn stream_description(&self) -> Result<StreamDescription> {
        let (server, _) = self.select(topology::Operation::Write, None, None)?;
        let conn = self.check_out(&server, None)?;
        Ok(conn.description().clone())
    }

    /// How many connections this client has authenticated: each pooled connection once, as
    /// it opens (0 without a credential).
    pub fn authentications(&self) -> u64 {
        self.inner.auth.as_ref().map_or(0, |a| a.completed())
    }

    /// Connection counts of all the client's pools, added up (the generation is the highest).
    pub fn pool_stats(&self) -> PoolStats {
        let mut total = PoolStats::default();
        for s in self.inner.deployment.servers() {
            let p = s.pool.stats();
            total.total += p.total;
            total.idle += p.idle;
            total.connecting += p.connecting;
            total.checked_out += p.checked_out;
            total.waiters += p.waiters;
            total.generation = total.generation.max(p.generation);
        }
        total
    }

    /// Connection counts of the pool for one server, if the client has one for it.
    pub fn server_pool_stats(&self, address: &ServerAddress) -> Option<PoolStats> {
        self.inner
            .deployment
            .servers()
            .into_iter()
            .find(|s| &s.address == address)
            .map(|s| s.pool.stats())
    }

    /// Retires every pooled connection without marking any server unusable: idle connections
    /// close now, checked-out ones when their operation ends (the operation itself finishes
    /// normally), and callers waiting for a connection go on waiting for a new one. For soak
    /// runs, and for a program that knows its connections went stale (after a network change,
    /// say). A network error clears a pool the stricter way: waiters then fail with a
    /// retryable [`ErrorKind::ConnectionPoolCleared`](crate::ErrorKind::ConnectionPoolCleared).
    pub fn clear_pools(&self) {
        for s in self.inner.deployment.servers() {
            s.pool.clear_and_keep_ready();
        }
    }

    /// Shuts the client down: the pooled server sessions are ended first (`endSessions`, a
    /// round trip of at most a second when the deployment has sessions), then monitors stop,
    /// idle connections close now, checked-out ones when
    /// their operation ends, callers waiting for a connection get
    /// [`ErrorKind::PoolClosed`](crate::ErrorKind::PoolClosed), and every later operation on this
    /// client or its clones gets [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown).
    pub fn shutdown(&self) {
        if !self.inner.shut_down.load(Ordering::Acquire) {
            self.end_sessions();
        }
        self.inner.shut_down.store(true, Ordering::Release);
        self.inner.deployment.close();
    }

    /// Tells the server to forget every pooled server session (`endSessions`, 10,000 ids per
    /// command), as the Driver Sessions spec asks of a client that closes. Best effort: a
    /// server without the command (FerretDB 1.24) or without sessions is not an error, and
    /// no server is waited for longer than a second.
    fn end_sessions(&self) {
        let ids = self.inner.sessions.drain();
        if ids.is_empty() || self.topology().logical_session_timeout_minutes.is_none() {
            return;
        }
        for chunk in ids.chunks(10_000) {
            let mut op = crate::ops::Command::write(
                "endSessions",
                "admin",
                bson::doc! { "endSessions": chunk.to_vec() },
                |_| Ok(()),
            );
            // No session of its own: the ids it ends are the command.
            let mut route = Route::selected(Some(Duration::from_secs(1)));
            route.no_session = true;
            let _ = self.execute(&mut op, route);
        }
    }

    /// Starts (or nests) a request for the calling coroutine or thread: until the guard drops,
    /// its operations on this client use one connection per server. PyMongo 2.x's
    /// `start_request`, for coroutines: the connections also go back by themselves if the
    /// coroutine ends first.
    pub fn start_request(&self) -> RequestGuard {
        RequestGuard {
            _requests: self
                .inner
                .deployment
                .servers()
                .iter()
                .map(|s| s.affinity.start_request())
                .collect(),
        }
    }

    /// True when the caller is in a request (explicit, or pinned by
    /// [`Affinity::PerCoroutine`](crate::Affinity::PerCoroutine)) on any server.
    pub fn in_request(&self) -> bool {
        self.inner
            .deployment
            .servers()
            .iter()
            .any(|s| s.affinity.in_request())
    }

    /// Selects a server for `op` (see [`Deployment::select`]), unless the client was shut
    /// down.
    fn select(
        &self,
        op: topology::Operation<'_>,
        deadline: Option<Instant>,
        avoid: Option<&ServerAddress>,
    ) -> Result<(Arc<Server>, TopologyType)> {
        if self.inner.shut_down.load(Ordering::Acquire) {
            return Err(ErrorKind::Shutdown.into());
        }
        self.inner.deployment.select(op, deadline, avoid)
    }

    /// Checks out a connection to `server`, waiting no later than `deadline`. A failure to
    /// open one (refused, reset, a bad handshake) is an error the SDAM rules learn from, like
    /// an operation's.
    fn check_out(&self, server: &Arc<Server>, deadline: Option<Instant>) -> Result<CheckedOut> {
        server.affinity.get_until(deadline).inspect_err(|e| {
            let generation = server.pool.stats().generation;
            self.inner
                .deployment
                .on_operation_error(server, generation, 0, e);
        })
    }

    /// The executor's one entry point: runs `op` where `route` says — on a selected server,
    /// or on the one a cursor lives on — within the route's time limit, and returns its output
    /// with the server that produced it.
    ///
    /// The phases, each a method below: **select** a server (`select`, unless the route pins
    /// one) → **check out** a connection (`check_out`) → **plan** the command's session and
    /// `$readPreference` (`Step::plan`) → **encode** and **send** it, between the command
    /// events when there is a handler (`Step::encode`, `Step::send`, `Step::monitored`) →
    /// **read** the reply and **learn** from errors, SDAM first (`Step::finish`). Then, for a
    /// retryable operation whose first attempt failed in a retryable way, one more attempt on
    /// a server selected afresh, after the Retryable Reads and Writes specs (`drive`).
    ///
    /// The work is done by [`drive`](Self::drive), which sees the operation only as a
    /// `&mut dyn Drive`: one executor for every operation type, whose frames on the caller's
    /// stack are the same few hundred bytes whatever the operation carries. The operation is
    /// borrowed, not moved: it stays in the caller's frame, not copied into each of the
    /// executor's (the frames of a coroutine parked in the pool's queue are pages of RSS).
    pub(crate) fn execute<O: Operation>(
        &self,
        op: &mut O,
        route: Route,
    ) -> Result<Executed<O::Output>> {
        let mut bound = Bound { op, out: None };
        let ran = self.drive(&mut bound, route);
        let out = bound.out.take();
        let (server, session) = ran?;
        Ok(Executed {
            output: out.expect("a successful operation has its output"),
            server,
            session,
        })
    }

    /// After an operation: its implicit server session back to the pool, or kept.
    #[inline(never)]
    fn end_session(&self, sess: &mut Sess<'_>, keep: bool) -> Option<ServerSession> {
        let session = sess.implicit.server.take()?;
        if keep {
            return Some(session);
        }
        self.give_back_session(session);
        None
    }

    /// Returns a server session to the pool (no I/O): dropped instead if it is dirty or
    /// about to expire.
    pub(crate) fn give_back_session(&self, session: ServerSession) {
        self.inner.sessions.give_back(session);
    }

    /// Keeps `seen` if it is newer than the client's cluster time.
    pub(crate) fn advance_cluster_time(&self, seen: &ClusterTime) {
        let mut slot = self.inner.cluster_time.lock();
        if slot
            .as_ref()
            .is_none_or(|c| crate::session::later(seen.cluster_time, c.0.cluster_time))
            && let Ok(field) = seen.field()
        {
            *slot = Some(Arc::new((seen.clone(), field)));
        }
    }

    /// The deployment's session timeout, once a server the client's reads could use is
    /// known (this waits for one as a read's server selection does): `None` if the
    /// deployment does not support sessions.
    pub(crate) fn session_timeout_minutes(&self) -> Result<Option<i64>> {
        self.select(self.inner.criteria.operation(), None, None)?;
        Ok(self.topology().logical_session_timeout_minutes)
    }

    /// A server session from the pool (or a new one), for an explicit session.
    pub(crate) fn take_session(&self, timeout: Duration) -> ServerSession {
        self.inner.sessions.take(timeout)
    }

    /// [`execute`](Self::execute) for any operation: the attempts and the retry decision.
    fn drive(
        &self,
        op: &mut dyn Drive,
        mut route: Route,
    ) -> Result<(Arc<Server>, Option<ServerSession>)> {
        // The session: the route's, claimed for the operation, or an implicit one. (Built
        // here, not in a frame of its own: the frames live while an operation waits are on
        // the caller's stack, and at opt-level 0 each one costs.)
        let pinned = route.server.take();
        let mut sess = Sess::new(route.no_session);
        if let Some(cell) = route.session.as_deref() {
            sess.claim(cell)?;
        }
        let limit = route.timeout.map(|t| Limit {
            started: Instant::now(),
            timeout: t,
        });
        let (retry, pinned) = self.retry_and_server(op, &mut sess, pinned);
        let txn = &mut sess;
        let result = 'attempts: {
            let first = match self.attempt(op, pinned, limit, retry, txn, None) {
                Ok(server) => break 'attempts Ok(server),
                Err(failed) => failed,
            };
            let retryable = match (retry, first.stage) {
                (Retry::No, _) | (_, Stage::Final) => false,
                // Nothing was sent: trying again cannot do anything twice.
                (_, Stage::CheckOut) => is_network_or_pool_cleared(&first.error),
                (Retry::Read, Stage::Sent) => is_retryable_read_error(&first.error),
                (Retry::Write, Stage::Sent) => {
                    txn.txn_number.is_some()
                        && is_retryable_write_error(&first.error, first.max_wire_version)
                }
            };
            if !retryable || limit.is_some_and(|l| l.expired()) {
                break 'attempts Err(first.error);
            }
            let avoid = first.server.as_ref();
            match self.attempt(op, None, limit, retry, txn, avoid) {
                Ok(server) => Ok(server),
                // A retry that never reached a server, or that wrote nothing, leaves the
                // first error standing: it says more about what happened.
                Err(again)
                    if again.stage != Stage::Sent
                        || (retry == Retry::Write && wrote_nothing(&again.error)) =>
                {
                    Err(first.error)
                }
                Err(again) => Err(again.error),
            }
        };
        let result = match result {
            Err(e) if sess.in_txn => Err(sess.transaction_error(e)),
            other => other,
        };
        let kept = self.end_session(&mut sess, route.keep_session && result.is_ok());
        result.map(|s| (s, kept))
    }

    /// Whether and how `op` may be retried, and the server it must run on: the route's, or
    /// its transaction's mongos. In a transaction nothing is retried here (commit and abort
    /// retry in their actions). Settles the operation's transaction role first.
    #[inline(never)]
    fn retry_and_server(
        &self,
        op: &dyn Drive,
        sess: &mut Sess<'_>,
        pinned: Option<Arc<Server>>,
    ) -> (Retry, Option<Arc<Server>>) {
        let options = &self.inner.options;
        sess.settle_transaction_role(op.command_name());
        let (in_txn, txn_command) = (sess.in_txn, sess.txn_command);
        let retry = match (&pinned, op.retry()) {
            _ if in_txn => Retry::No,
            (None, Retry::Read) if options.retry_reads => Retry::Read,
            (None, Retry::Write) if options.retry_writes => Retry::Write,
            _ => Retry::No,
        };
        let pinned = match pinned {
            None if in_txn || txn_command => self.transaction_server(sess),
            pinned => pinned,
        };
        (retry, pinned)
    }

    /// The server a transaction is pinned to (a mongos), if it still exists.
    #[inline(never)]
    fn transaction_server(&self, sess: &mut Sess<'_>) -> Option<Arc<Server>> {
        let address = sess.state().transaction.as_ref()?.pinned.clone()?;
        self.inner
            .deployment
            .servers()
            .into_iter()
            .find(|s| s.address == address)
    }

    /// One attempt of `op`: select (unless `pinned`), check out, send, read the reply.
    ///
    /// Where each step runs: waiting — for a server, for a connection in the pool's queue —
    /// happens on the caller's stack, so that a thousand queued callers are a thousand small
    /// parks and hold no driver stack; the caller's command event handler, being the caller's
    /// code, runs there too. Everything else — encoding, the exchange with the server,
    /// decoding, error handling — runs on a driver stack (`runtime::on_driver_stack`), so no
    /// operation needs more of the caller's stack than a wait does, whatever its documents.
    fn attempt(
        &self,
        op: &mut dyn Drive,
        pinned: Option<Arc<Server>>,
        limit: Option<Limit>,
        retry: Retry,
        txn: &mut Sess<'_>,
        avoid: Option<&ServerAddress>,
    ) -> std::result::Result<Arc<Server>, Failed> {
        let deadline = limit.map(|l| l.deadline());
        let (server, topology_type) = match pinned {
            Some(s) => (s, TopologyType::Unknown),
            None => {
                // An operation's own selection criteria (rare) are used as they are; the
                // client's were converted once, at creation.
                let wanted = match op.criteria() {
                    _ if !op.is_read() || txn.in_txn => topology::Operation::Write,
                    Some(own) => own.operation(),
                    None => self.inner.criteria.operation(),
                };
                self.select(wanted, deadline, avoid)
                    .map_err(|e| Failed::final_error(timed_out(e, limit, "selecting a server")))?
            }
        };
        let in_flight = InFlight::new(&server);
        let conn = self.check_out(&server, deadline).map_err(|e| Failed {
            error: timed_out(e, limit, "waiting for a connection")
                .in_operation(op.command_name(), &server.address),
            stage: Stage::CheckOut,
            max_wire_version: 0,
            server: Some(server.address.clone()),
        })?;
        let step = Step {
            client: self,
            server: &server,
            topology_type,
            limit,
            retry,
            // A retry always names the server its first attempt failed on.
            is_retry: avoid.is_some(),
            request_id: next_request_id(),
            derived_max_time: std::cell::Cell::new(false),
        };
        let user = self.inner.options.command_event_handler.as_ref();
        // A `tracing` subscriber that wants commands gets them from the same monitoring as a
        // handler: a handler made for this operation logs each event, then passes it on.
        let logging = crate::event::log::command_logger(user);
        match logging.as_ref().or(user) {
            None => on_driver_stack(|| {
                let mut conn = conn;
                let plan = step.plan(op, &conn, txn)?;
                let mut sent = step
                    .encode(op, &mut conn, &plan, txn)
                    .and_then(|()| step.send(&mut conn, txn));
                if step.max_time_refused(op, &sent) {
                    sent = step
                        .encode(op, &mut conn, &plan, txn)
                        .and_then(|()| step.send(&mut conn, txn));
                }
                step.finish(op, conn, txn, sent)
            }),
            Some(handler) => step.monitored(handler, op, conn, txn),
        }?;
        drop(in_flight);
        Ok(server)
    }
}

/// An operation as the executor drives it: what routes it, how to build its command, and a
/// slot for its output. Object-safe, so that the executor is compiled once rather than once
/// per operation type, and its frames on the caller's stack do not grow with what an
/// operation carries (in an unoptimised build every value moved through a generic executor
/// took a stack slot of its own).
trait Drive {
    fn command_name(&self) -> &str;
    fn database(&self) -> &str;
    fn is_read(&self) -> bool;
    fn criteria(&self) -> Option<&Criteria>;
    fn retry(&self) -> Retry;
    fn min_server(&self) -> Option<(i32, &'static str)>;
    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError>;
    /// Reads an `ok: 1` reply into the output slot.
    fn handle(&mut self, reply: &bson::RawDocument) -> Result<()>;
}

/// An [`Operation`] and the slot its output lands in.
struct Bound<'o, O: Operation> {
    op: &'o mut O,
    out: Option<O::Output>,
}

impl<O: Operation> Drive for Bound<'_, O> {
    fn command_name(&self) -> &str {
        self.op.command_name()
    }
    fn database(&self) -> &str {
        self.op.database()
    }
    fn is_read(&self) -> bool {
        self.op.is_read()
    }
    fn criteria(&self) -> Option<&Criteria> {
        self.op.criteria()
    }
    fn retry(&self) -> Retry {
        self.op.retry()
    }
    fn min_server(&self) -> Option<(i32, &'static str)> {
        O::MIN_SERVER
    }
    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        self.op.build(msg)
    }
    fn handle(&mut self, reply: &bson::RawDocument) -> Result<()> {
        self.out = Some(self.op.handle_response(reply)?);
        Ok(())
    }
}

/// One attempt's steps once it has a server and a connection, split so that an event handler
/// can run between them on the caller's stack (see [`Client::attempt`]).
struct Step<'a> {
    client: &'a Client,
    server: &'a Arc<Server>,
    topology_type: TopologyType,
    limit: Option<Limit>,
    retry: Retry,
    is_retry: bool,
    request_id: i32,
    /// The last encoded command carries a `maxTimeMS` this driver derived (not the caller's).
    derived_max_time: std::cell::Cell<bool>,
}

/// What a command carries besides its own body, decided before it is encoded.
struct Plan<'a> {
    read_preference: Option<std::borrow::Cow<'a, BodyField>>,
}

impl<'a> Step<'a> {
    /// Checks the server can run the command, starts a retryable write's transaction and
    /// chooses the `$readPreference` to send. Its failures are final (nothing was sent).
    fn plan(
        &self,
        op: &dyn Drive,
        conn: &CheckedOut,
        txn: &mut Sess<'_>,
    ) -> std::result::Result<Plan<'a>, Failed> {
        let inner = &*self.client.inner;
        let max_wire_version = conn.description().max_wire_version;
        if let Some((wire, name)) = op.min_server()
            && max_wire_version < wire
        {
            let message = format!(
                "{} needs {name} (wire version {wire}) or newer; {} speaks wire versions up to {max_wire_version}",
                op.command_name(),
                self.server.address
            );
            let e = Error::from(ErrorKind::IncompatibleServer { message });
            return Err(Failed::final_error(
                e.in_operation(op.command_name(), &self.server.address),
            ));
        }
        // The session: the caller's, or an implicit one taken from the pool when the server
        // supports sessions. A retryable write also takes a transaction number, when the
        // server can de-duplicate by it; a retry reuses the first attempt's.
        let description = conn.description();
        let no_session = txn.none;
        let state = txn.state();
        match description.logical_session_timeout_minutes {
            None if state.explicit => {
                return Err(Failed::final_error(ErrorKind::SessionsNotSupported.into()));
            }
            None => {}
            Some(_) if no_session => {}
            Some(minutes) if state.server.is_none() => {
                let timeout = Duration::from_secs(minutes.max(0) as u64 * 60);
                state.server = Some(inner.sessions.take(timeout));
            }
            Some(_) => {}
        }
        // A command of a transaction carries the transaction's number, `autocommit: false`,
        // and on the first one `startTransaction: true` (with the transaction's read concern).
        let (in_txn, txn_command) = (txn.in_txn, txn.txn_command);
        if in_txn || txn_command {
            let is_sharded = self.topology_type == TopologyType::Sharded;
            let address = &self.server.address;
            let state = txn.state();
            let Some(t) = state.transaction.as_mut() else {
                unreachable!("transaction_role said there is one")
            };
            if is_sharded && t.pinned.is_none() {
                t.pinned = Some(address.clone());
            }
            let starting = t.state == crate::session::TxnState::Starting && !txn_command;
            let number = t.number;
            let read_concern = starting.then(|| t.options.read_concern.clone()).flatten();
            let Some(server) = &state.server else {
                return Err(Failed::final_error(ErrorKind::SessionsNotSupported.into()));
            };
            let mut fields = bson::doc! { "lsid": server.lsid(), "txnNumber": number };
            if starting {
                fields.insert("startTransaction", true);
            }
            fields.insert("autocommit", false);
            txn.fields = Some(
                BodyField::from_fields(&fields)
                    .map_err(|e| Failed::final_error(Error::internal(e.to_string())))?,
            );
            txn.txn_number = Some(number);
            txn.txn_use = Some(TxnUse {
                starting,
                read_concern: read_concern.map(|rc| rc.to_document()),
                command: txn_command,
            });
        } else if self.retry == Retry::Write {
            match session_timeout(description) {
                Some(_) if txn.txn_number.is_none() => {
                    let server = txn.state().server.as_mut();
                    txn.txn_number = server.map(|s| s.next_txn_number());
                    txn.fields = None;
                }
                Some(_) => {}
                // The first attempt was sent with a transaction number; this server cannot
                // honour it, so there is no safe retry here.
                None if self.is_retry && txn.txn_number.is_some() => {
                    return Err(Failed::final_error(Error::internal("retry not possible")));
                }
                None => {}
            }
        }
        let number = txn.txn_number;
        if txn.fields.is_none()
            && let Some(server) = &txn.state().server
        {
            let fields = server
                .fields(number)
                .map_err(|e| Failed::final_error(Error::internal(e.to_string())))?;
            txn.fields = Some(fields);
        }
        // `$readPreference` travels with reads a secondary or mongos must honour; a direct
        // connection (Single, not mongos) sends primaryPreferred so any member answers.
        // A read selected by the caller's predicate goes as a primaryPreferred read, except
        // to mongos, which gets none (as the official driver does).
        let read_preference = if !op.is_read() || txn.txn_use.is_some() {
            None
        } else {
            let own = op.criteria();
            let mongos = conn.description().server_type == crate::ServerType::Mongos;
            let primary_preferred =
                || Some(std::borrow::Cow::Borrowed(&inner.primary_preferred_field));
            match own.unwrap_or(&inner.criteria).read_preference() {
                None if mongos => None,
                None => primary_preferred(),
                Some(rp) => match (self.topology_type, rp.mode, own.is_some()) {
                    (TopologyType::Single, ReadMode::Primary, _) if !mongos => primary_preferred(),
                    (_, ReadMode::Primary, _) => None,
                    (_, _, true) => {
                        let field = BodyField::new("$readPreference", &read_preference_doc(rp))
                            .map_err(|e| {
                                Failed::final_error(Error::invalid_argument(e.to_string()))
                            })?;
                        Some(std::borrow::Cow::Owned(field))
                    }
                    (_, _, false) => inner
                        .read_preference_field
                        .as_ref()
                        .map(std::borrow::Cow::Borrowed),
                },
            }
        };
        Ok(Plan { read_preference })
    }

    /// Bounds the connection's I/O by the deadline and encodes the command into its write
    /// buffer. A failure here sent nothing, but is handled like a failed send.
    fn encode(
        &self,
        op: &mut dyn Drive,
        conn: &mut CheckedOut,
        plan: &Plan<'_>,
        txn: &mut Sess<'_>,
    ) -> Result<()> {
        conn.limit_io(self.limit.map(|l| l.deadline()))?;
        self.derived_max_time.set(false);
        let server_limit = self.limit.filter(|_| {
            !txn.in_txn
                && tells_server_its_limit(op.command_name())
                && !self
                    .client
                    .inner
                    .max_time_refused
                    .lock()
                    .contains(op.command_name())
        });
        conn.prepare(self.request_id, |msg| {
            op.build(msg)?;
            if let Some(field) = &plan.read_preference {
                msg.append_to_body(field)?;
            }
            if let Some(limit) = server_limit {
                self.derived_max_time.set(append_max_time(msg, limit)?);
            }
            txn.append_session_fields(msg, op.is_read(), &self.client.inner.cluster_time)
        })
    }

    /// Sends the encoded command and reads the reply (left in the connection), checking `ok`.
    /// Any reply, an error's too, teaches the client and the session the newest
    /// `$clusterTime` and `operationTime`.
    fn send(&self, conn: &mut CheckedOut, txn: &mut Sess<'_>) -> Result<()> {
        let exchanged = conn.exchange(self.request_id);
        txn.command_sent();
        let reply = exchanged?;
        if txn.txn_use.is_some()
            && let Ok(token) = reply.get_document("recoveryToken")
            && let Some(t) = txn.state().transaction.as_mut()
        {
            t.recovery_token = bson::Document::try_from(token).ok();
        }
        let cluster_time = ClusterTime::of_reply(reply);
        if let Some(ct) = &cluster_time {
            self.client.advance_cluster_time(ct);
        }
        let state = txn.state();
        if state.explicit {
            state.learn(reply, cluster_time.as_ref());
        }
        check_ok(reply)
    }

    /// Turns the outcome of [`send`](Self::send) into the operation's output, or into a failed
    /// attempt after telling SDAM what the error says about the server. Checks the connection
    /// in either way (before SDAM hears of an error, so a pool it clears is cleared of it too).
    fn finish(
        &self,
        op: &mut dyn Drive,
        conn: CheckedOut,
        txn: &mut Sess<'_>,
        sent: Result<()>,
    ) -> std::result::Result<(), Failed> {
        let deployment = &self.client.inner.deployment;
        let address = &self.server.address;
        let max_wire_version = conn.description().max_wire_version;
        let generation = conn.generation();
        let failed = |error: Error, op: &dyn Drive| Failed {
            error: error.in_operation(op.command_name(), address),
            stage: Stage::Sent,
            max_wire_version,
            server: Some(address.clone()),
        };
        if let Err(e) = sent {
            drop(conn);
            deployment.on_operation_error(self.server, generation, max_wire_version, &e);
            if e.is_network_error()
                && let Some(session) = &mut txn.state().server
            {
                // The server may hold this session in a state we do not know.
                session.dirty = true;
            }
            return Err(failed(
                timed_out(e, self.limit, "waiting for the reply"),
                op,
            ));
        }
        let handled = op.handle(conn.reply());
        drop(conn);
        handled.map_err(|e| {
            if matches!(
                *e.kind,
                ErrorKind::Write(WriteFailure::WriteConcernError(_))
            ) {
                // A write concern error can say the primary stepped down: SDAM learns from it.
                deployment.on_operation_error(self.server, generation, max_wire_version, &e);
            }
            failed(e, op)
        })
    }

    /// The steps with command monitoring: the handler sees the started event before the
    /// command is sent and the succeeded or failed one after, on the caller's stack; the
    /// events are built and dropped on a driver stack (a command holds the caller's documents,
    /// as deep as they are).
    fn monitored(
        &self,
        handler: &EventHandler<CommandEvent>,
        op: &mut dyn Drive,
        mut conn: CheckedOut,
        txn: &mut Sess<'_>,
    ) -> std::result::Result<(), Failed> {
        let plan = on_driver_stack(|| self.plan(op, &conn, txn))?;
        let mut sent = self.monitored_exchange(handler, op, &mut conn, &plan, txn);
        if self.max_time_refused(op, &sent) {
            sent = self.monitored_exchange(handler, op, &mut conn, &plan, txn);
        }
        on_driver_stack(|| self.finish(op, conn, txn, sent))
    }

    /// True when the server refused the command because of the `maxTimeMS` this driver
    /// added (not one the caller set): the command is remembered, and the caller sends it
    /// again, without. The refusal was a complete `ok: 0` reply, so the connection is clean
    /// and nothing ran.
    fn max_time_refused(&self, op: &mut dyn Drive, sent: &Result<()>) -> bool {
        let Err(e) = sent else { return false };
        let refused = self.derived_max_time.replace(false)
            && matches!(&*e.kind, ErrorKind::Command(c)
                if c.code == 9 && c.message.contains("maxTimeMS"));
        if refused {
            self.client
                .inner
                .max_time_refused
                .lock()
                .insert(op.command_name().to_string());
            tracing::debug!(
                target: crate::event::log::COMMAND,
                command_name = op.command_name(),
                "the server refused maxTimeMS on this command; sent again without it from now on"
            );
        }
        refused
    }

    /// [`encode`](Self::encode) and [`send`](Self::send) with the command's started and
    /// ended events around the send.
    fn monitored_exchange(
        &self,
        handler: &EventHandler<CommandEvent>,
        op: &mut dyn Drive,
        conn: &mut CheckedOut,
        plan: &Plan<'_>,
        txn: &mut Sess<'_>,
    ) -> Result<()> {
        match on_driver_stack(|| self.encode(op, conn, plan, txn)) {
            // Nothing was sent: no events.
            Err(e) => Err(e),
            Ok(()) => {
                let (monitor, started) = on_driver_stack(|| {
                    CommandMonitor::start(
                        op.command_name(),
                        op.database(),
                        conn.prepared_message(),
                        self.request_id,
                        ConnectionInfo {
                            id: conn.id(),
                            server_id: conn.description().connection_id,
                            address: self.server.address.clone(),
                        },
                    )
                });
                // The event is the handler's now: kept, or dropped in the caller's code.
                handler.handle(started);
                let sent = on_driver_stack(|| self.send(conn, txn));
                let ended = on_driver_stack(|| match &sent {
                    Ok(()) => monitor.succeeded(conn.reply()),
                    Err(e) => monitor.failed(e),
                });
                handler.handle(ended);
                sent
            }
        }
    }
}

/// Where and how long the executor may run an operation.
#[derive(Clone, Default)]
pub(crate) struct Route {
    /// The server to use (a cursor's `getMore` and `killCursors` must reach the server that
    /// holds the cursor); `None`: one is selected, and a retry may select another.
    pub(crate) server: Option<Arc<Server>>,
    /// The limit on the whole call, retry included (a handle's `timeoutMS`).
    pub(crate) timeout: Option<Duration>,
    /// The session to run in: an explicit one, or a cursor's implicit one. `None`: an
    /// implicit session of the operation's own.
    pub(crate) session: Option<Arc<SessionCell>>,
    /// Keep the operation's own implicit session (in [`Executed::session`]) rather than
    /// return it to the pool: a cursor's opening command.
    pub(crate) keep_session: bool,
    /// Send no `lsid` at all (`endSessions`, whose body lists the sessions to end).
    pub(crate) no_session: bool,
}

impl Route {
    /// A server selected for the operation, within `timeout`.
    pub(crate) fn selected(timeout: Option<Duration>) -> Route {
        Route {
            server: None,
            timeout,
            session: None,
            keep_session: false,
            no_session: false,
        }
    }

    /// The same route, in `session` (when `Some`).
    pub(crate) fn in_session(mut self, session: Option<Arc<SessionCell>>) -> Route {
        self.session = session;
        self
    }

    /// `server` itself, within `timeout` (never retried elsewhere).
    pub(crate) fn pinned(server: Arc<Server>, timeout: Option<Duration>) -> Route {
        Route {
            server: Some(server),
            timeout,
            session: None,
            keep_session: false,
            no_session: false,
        }
    }
}

/// An operation's output, and the server that produced it.
pub(crate) struct Executed<T> {
    pub(crate) output: T,
    pub(crate) server: Arc<Server>,
    /// The operation's implicit session, when the route asked to keep it.
    pub(crate) session: Option<ServerSession>,
}

/// An operation's overall time limit.
#[derive(Clone, Copy)]
struct Limit {
    started: Instant,
    timeout: Duration,
}

impl Limit {
    fn deadline(self) -> Instant {
        self.started + self.timeout
    }

    /// True once the deadline has passed (timers can fire a hair early: 1 ms of slack).
    fn expired(self) -> bool {
        self.started.elapsed() + Duration::from_millis(1) >= self.timeout
    }
}

/// Whether a command with a time limit tells the server what is left of it (`maxTimeMS`), as
/// the client-side operations timeout spec asks: otherwise the server goes on with work the
/// client has given up on. Not for `getMore` (on a tailable cursor its `maxTimeMS` means how
/// long to wait for new data), `killCursors` or `endSessions`; nor inside a transaction, where
/// a command's limit would abort the whole transaction.
fn tells_server_its_limit(command: &str) -> bool {
    !matches!(command, "getMore" | "killCursors" | "endSessions")
}

/// Appends `maxTimeMS`: what is left of the limit, in whole milliseconds (at least 1), unless
/// the operation set its own (`find().max_time(..)`), which the caller chose and is kept. The
/// spec also subtracts the server's round-trip time; this driver does not (yet), so the
/// server's limit is a round trip longer than the client's, and the client's deadline is
/// what the caller sees first.
/// Returns whether it appended one.
fn append_max_time(
    msg: &mut OpMsgBuilder<'_>,
    limit: Limit,
) -> std::result::Result<bool, WireError> {
    let own = msg
        .body_document()
        .is_some_and(|b| matches!(b.get("maxTimeMS"), Ok(Some(_))));
    if own {
        return Ok(false);
    }
    let left = limit.deadline().saturating_duration_since(Instant::now());
    let ms = (left.as_millis() as i64).max(1);
    msg.append_to_body(&BodyField::from_fields(&bson::doc! { "maxTimeMS": ms })?)?;
    Ok(true)
}

/// Turns a failure caused by the operation's deadline into [`ErrorKind::Timeout`]; any other
/// error (or a deadline not yet reached: a `socketTimeoutMS` or `waitQueueTimeoutMS` of its
/// own) is returned as it is.
fn timed_out(e: Error, limit: Option<Limit>, during: &str) -> Error {
    let Some(limit) = limit.filter(|l| l.expired()) else {
        return e;
    };
    let timeout_like = match &*e.kind {
        ErrorKind::Io(source) => matches!(
            source.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        ErrorKind::ServerSelection { .. } | ErrorKind::WaitQueueTimeout { .. } => true,
        _ => false,
    };
    if !timeout_like {
        return e;
    }
    ErrorKind::Timeout {
        limit_ms: limit.timeout.as_millis() as u64,
        elapsed_ms: limit.started.elapsed().as_millis() as u64,
        during: during.to_string(),
    }
    .into()
}

/// Where an attempt failed, which decides whether it may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Before any server could be tried (no server selected, an incompatible server, a retry
    /// this server cannot take): not retried.
    Final,
    /// Checking out a connection: nothing was sent.
    CheckOut,
    /// The command was (or may have been) sent.
    Sent,
}

/// A failed attempt.
struct Failed {
    error: Error,
    stage: Stage,
    max_wire_version: i32,
    /// Where it failed (a retry avoids that mongos); `None` before a server was chosen.
    server: Option<ServerAddress>,
}

impl Failed {
    /// A failure before any server could be tried: not retried.
    fn final_error(error: Error) -> Failed {
        Failed {
            error,
            stage: Stage::Final,
            max_wire_version: 0,
            server: None,
        }
    }
}

/// The session an operation runs in, held by the executor across its attempts.
struct Sess<'c> {
    /// The caller's session (explicit, or a cursor's implicit one), claimed for the
    /// operation.
    claim: Option<Claim<'c>>,
    /// Otherwise an implicit session for this operation alone (its server session, if the
    /// server supports sessions, goes back to the pool at the end).
    implicit: SessionState,
    /// A retryable write's transaction number, fixed by its first attempt.
    txn_number: Option<i64>,
    /// `lsid` (and `txnNumber`), encoded once for every attempt.
    fields: Option<BodyField>,
    /// No session at all, not even an implicit one.
    none: bool,
    /// What the session's transaction adds to this command, when it is part of one.
    txn_use: Option<TxnUse>,
    /// The command is an operation of the session's active transaction.
    in_txn: bool,
    /// The command is the transaction's own `commitTransaction` or `abortTransaction`.
    txn_command: bool,
}

/// How a command takes part in its session's transaction.
struct TxnUse {
    /// The transaction's first command: `startTransaction`, and its read concern.
    starting: bool,
    /// The transaction's read concern, for the first command.
    read_concern: Option<bson::Document>,
    /// `commitTransaction` or `abortTransaction` (which keep their write concern).
    command: bool,
}

impl<'c> Sess<'c> {
    /// An implicit session (`none`: not even that), until [`claim`](Self::claim).
    fn new(none: bool) -> Sess<'c> {
        Sess {
            claim: None,
            implicit: SessionState::default(),
            txn_number: None,
            fields: None,
            none,
            txn_use: None,
            in_txn: false,
            txn_command: false,
        }
    }

    /// Runs in `cell`'s session instead: refused if another operation has it.
    #[inline(never)]
    fn claim(&mut self, cell: &'c SessionCell) -> Result<()> {
        let claim = cell.claim().ok_or_else(|| {
            Error::invalid_argument(
                "this session is in use by another operation: a session serves one operation at a time",
            )
        })?;
        self.claim = Some(claim);
        Ok(())
    }

    /// Settles, once per operation, whether `command` runs inside the session's active
    /// transaction (as one of its operations), and whether it is the transaction's own
    /// `commitTransaction` or `abortTransaction`.
    fn settle_transaction_role(&mut self, command: &str) {
        let Some(t) = self.state().transaction.as_deref() else {
            return;
        };
        let txn_command = matches!(command, "commitTransaction" | "abortTransaction");
        self.in_txn = t.active() && !txn_command;
        self.txn_command = txn_command;
    }

    /// An operation of a transaction failed: a network or server selection error is
    /// transient (the whole transaction may be retried), and a transient error unpins the
    /// transaction from its mongos (the Transactions spec).
    #[inline(never)]
    fn transaction_error(&mut self, mut e: Error) -> Error {
        if e.is_network_error() || matches!(*e.kind, ErrorKind::ServerSelection { .. }) {
            e.add_label(crate::error::TRANSIENT_TRANSACTION_ERROR);
        }
        if e.contains_label(crate::error::TRANSIENT_TRANSACTION_ERROR)
            && let Some(t) = self.state().transaction.as_mut()
        {
            t.pinned = None;
        }
        e
    }

    /// The command was sent: the transaction it starts is in progress, whatever the reply.
    fn command_sent(&mut self) {
        if self.txn_use.is_some()
            && let Some(t) = self.state().transaction.as_mut()
            && t.state == crate::session::TxnState::Starting
        {
            t.state = crate::session::TxnState::InProgress;
        }
    }

    fn state(&mut self) -> &mut SessionState {
        match &mut self.claim {
            Some(claim) => claim.state(),
            None => &mut self.implicit,
        }
    }

    /// Appends what the session adds to a command: `lsid` (and `txnNumber`), the newest
    /// `$clusterTime` known, and for a read in a causally consistent session
    /// `readConcern.afterClusterTime`.
    fn append_session_fields(
        &mut self,
        msg: &mut OpMsgBuilder<'_>,
        is_read: bool,
        client_time: &Mutex<Option<Arc<(ClusterTime, BodyField)>>>,
    ) -> std::result::Result<(), WireError> {
        let fields = self.fields.take();
        let state = self.state();
        // No implicit session for an unacknowledged write (the Driver Sessions spec): the
        // server would not say whether it used it.
        let unacknowledged = !state.explicit && !is_read && is_unacknowledged(msg);
        if let Some(f) = &fields
            && !unacknowledged
        {
            msg.append_to_body(f)?;
        }
        // Gossip: the newer of the client's and the session's cluster time.
        let client_time = client_time.lock().clone();
        match (&client_time, &state.cluster_time) {
            (Some(c), Some(own)) if crate::session::later(own.cluster_time, c.0.cluster_time) => {
                msg.append_to_body(&own.field()?)?
            }
            (Some(c), _) => msg.append_to_body(&c.1)?,
            (None, Some(own)) => msg.append_to_body(&own.field()?)?,
            (None, None) => {}
        }
        let after = state
            .operation_time
            .filter(|_| state.explicit && state.causal_consistency);
        match &self.txn_use {
            // Inside a transaction: no write concern on its operations; the read concern
            // (with afterClusterTime) on its first command only.
            Some(txn) => {
                if !txn.command {
                    msg.take_from_body("writeConcern")?;
                    msg.take_from_body("readConcern")?;
                }
                if txn.starting {
                    let mut read_concern = txn.read_concern.clone().unwrap_or_default();
                    if let Some(t) = after {
                        read_concern.insert("afterClusterTime", t);
                    }
                    if !read_concern.is_empty() {
                        msg.append_to_body(&BodyField::new("readConcern", &read_concern)?)?;
                    }
                }
            }
            None if is_read && after.is_some() => {
                let mut read_concern = msg.take_from_body("readConcern")?.unwrap_or_default();
                read_concern.insert("afterClusterTime", after.expect("checked"));
                msg.append_to_body(&BodyField::new("readConcern", &read_concern)?)?;
            }
            None => {}
        }
        self.fields = fields;
        Ok(())
    }
}

/// Whether the command in `msg` asks for `writeConcern: { w: 0 }`.
fn is_unacknowledged(msg: &OpMsgBuilder<'_>) -> bool {
    let Some(body) = msg.body_document() else {
        return false;
    };
    let Ok(wc) = body.get_document("writeConcern") else {
        return false;
    };
    matches!(
        wc.get("w"),
        Ok(Some(bson::RawBsonRef::Int32(0))) | Ok(Some(bson::RawBsonRef::Int64(0)))
    )
}

/// The session timeout when the server can de-duplicate retried writes: it supports sessions
/// (`logicalSessionTimeoutMinutes`) and is a replica set member or mongos (a standalone does
/// not record transaction numbers), wire version 6 (MongoDB 3.6) or newer. Any member counts:
/// a connection opened to a primary that has just stepped down says "secondary" in its
/// handshake, and the write sent there must still carry a transaction number so that its
/// retry on the new primary is safe.
fn session_timeout(d: &StreamDescription) -> Option<Duration> {
    let minutes = d.logical_session_timeout_minutes?;
    let records = !matches!(
        d.server_type,
        crate::ServerType::Standalone | crate::ServerType::Unknown
    );
    (records && d.max_wire_version >= 6).then(|| Duration::from_secs(minutes.max(0) as u64 * 60))
}

/// A read preference as the `$readPreference` field carries it.
fn read_preference_doc(rp: &crate::topology::ReadPreference) -> bson::Document {
    let mut doc = bson::doc! { "mode": rp.mode.name() };
    if !rp.tag_sets.is_empty() {
        let sets: Vec<bson::Document> = rp
            .tag_sets
            .iter()
            .map(|set| {
                // A tag set is a map: its tags go in name order, the same bytes every time.
                let mut tags: Vec<_> = set.iter().collect();
                tags.sort();
                tags.into_iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect()
            })
            .collect();
        doc.insert("tags", sets);
    }
    if let Some(s) = rp.max_staleness {
        doc.insert("maxStalenessSeconds", s.as_secs() as i64);
    }
    if let Some(enabled) = rp.hedge {
        doc.insert("hedge", bson::doc! { "enabled": enabled });
    }
    doc
}

/// Builds the command events of one operation (only when a handler is installed); the
/// executor hands them to the handler.
struct CommandMonitor {
    command_name: String,
    database: String,
    request_id: i32,
    connection: ConnectionInfo,
    started: Instant,
    sensitive: bool,
}

/// Commands whose contents never reach event handlers: credentials travel in them. Lower
/// case: names are compared case-insensitively, as the spec says (legacy hello alone comes
/// as `isMaster` and `ismaster`).
const SENSITIVE: &[&str] = &[
    "authenticate",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "createuser",
    "updateuser",
    "copydbgetnonce",
    "copydbsaslstart",
    "copydb",
];

impl CommandMonitor {
    /// Starts timing the command and builds its started event from the encoded message.
    /// `connection` names the driver's and the server's ids for the connection (the
    /// server's from the connection's handshake reply, when it gave one).
    fn start(
        command_name: &str,
        database: &str,
        message: &[u8],
        request_id: i32,
        connection: ConnectionInfo,
    ) -> (Self, CommandEvent) {
        let mut command = command_document(message).unwrap_or_default();
        let sensitive = is_sensitive(command_name, &command);
        if sensitive {
            command = bson::Document::new();
        }
        let event = CommandEvent::Started(CommandStartedEvent {
            command,
            db: database.to_string(),
            command_name: command_name.to_string(),
            request_id,
            connection: connection.clone(),
            service_id: None,
        });
        let monitor = CommandMonitor {
            command_name: command_name.to_string(),
            database: database.to_string(),
            request_id,
            connection,
            started: Instant::now(),
            sensitive,
        };
        (monitor, event)
    }

    fn succeeded(self, reply: &bson::RawDocument) -> CommandEvent {
        let reply = if self.sensitive {
            bson::Document::new()
        } else {
            crate::decode::to_document(reply).unwrap_or_default()
        };
        CommandEvent::Succeeded(CommandSucceededEvent {
            duration: self.started.elapsed(),
            reply,
            command_name: self.command_name,
            request_id: self.request_id,
            connection: self.connection,
            service_id: None,
            db: self.database,
        })
    }

    fn failed(self, e: &Error) -> CommandEvent {
        let failure = if self.sensitive {
            redacted(e)
        } else {
            e.clone()
        };
        CommandEvent::Failed(CommandFailedEvent {
            duration: self.started.elapsed(),
            command_name: self.command_name,
            failure,
            request_id: self.request_id,
            connection: self.connection,
            service_id: None,
            db: self.database,
        })
    }
}

/// Whether a command's contents must not reach event handlers: a command of [`SENSITIVE`],
/// or `hello` / legacy hello carrying `speculativeAuthenticate` (its reply then carries the
/// server's first authentication message). Names compare case-insensitively.
fn is_sensitive(command_name: &str, command: &bson::Document) -> bool {
    let lower = command_name.to_ascii_lowercase();
    SENSITIVE.contains(&lower.as_str())
        || (matches!(lower.as_str(), "hello" | "ismaster")
            && command.contains_key("speculativeAuthenticate"))
}

/// A security-sensitive command's failure as its failed event shows it. The spec keeps only
/// `code`, `codeName` and `errorLabels` of a server's error: its message and the rest of the
/// reply may echo what the command carried (a SASL payload, a password), so they are
/// dropped. Failures that did not come from the server (network, protocol) carry nothing
/// of the command's and are shown as they are.
fn redacted(e: &Error) -> Error {
    let ErrorKind::Command(c) = &*e.kind else {
        return e.clone();
    };
    let c = crate::error::CommandError {
        message: "(redacted: security-sensitive command)".to_string(),
        ..c.clone()
    };
    let redacted = Error::new(ErrorKind::Command(c), e.labels().iter().cloned());
    match (e.operation(), e.server()) {
        (Some(op), Some(server)) => redacted.in_operation(op, server),
        _ => redacted,
    }
}

/// An encoded OP_MSG as the command document monitoring shows: the body, plus each document
/// sequence as an array field.
fn command_document(message: &[u8]) -> Result<bson::Document> {
    let msg = crate::wire::OpMsg::parse_message(message)
        .map_err(|e| Error::internal(format!("own message unreadable: {e}")))?;
    let mut command = crate::decode::to_document(msg.body)?;
    for seq in msg.sequences() {
        let docs = seq
            .documents()
            .map(|d| crate::decode::to_document(d).map(bson::Bson::Document))
            .collect::<Result<Vec<_>>>()?;
        command.insert(seq.identifier, docs);
    }
    Ok(command)
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("core", &self.core())
            .field("hosts", &self.inner.options.hosts)
            .field(
                "topology",
                &self.inner.deployment.snapshot().topology_type(),
            )
            .finish()
    }
}

/// A server-side cursor the client should forget: queued by `Cursor::drop`.
pub(crate) struct Kill {
    pub(crate) server: Arc<Server>,
    pub(crate) db: String,
    pub(crate) coll: String,
    pub(crate) id: i64,
    /// The cursor's session: `killCursors` goes in it, then an implicit one is returned.
    pub(crate) session: Option<Arc<SessionCell>>,
}

/// Starts the task that sends `killCursors` for dropped cursors; returns where to queue them.
/// The task ends when the client is gone (the sender drops with it).
/// What the background cleanup task does: kill a dropped cursor, or run another job.
pub(crate) enum Reap {
    Kill(Kill),
    Job(Box<dyn FnOnce(&Client) + Send>),
}

fn start_reaper(core: Core, client: std::sync::Weak<Inner>) -> may::sync::mpsc::Sender<Reap> {
    let (tx, rx) = may::sync::mpsc::channel::<Reap>();
    let task = move || {
        while let Ok(reap) = rx.recv() {
            let Some(inner) = client.upgrade() else {
                return;
            };
            let client = Client::from_inner(inner);
            let kill = match reap {
                Reap::Kill(kill) => kill,
                Reap::Job(job) => {
                    job(&client);
                    continue;
                }
            };
            let ids = vec![bson::Bson::Int64(kill.id)];
            let mut op = crate::ops::Command::write(
                "killCursors",
                &kill.db,
                bson::doc! { "killCursors": &kill.coll, "cursors": ids },
                |_| Ok(()),
            );
            // Best effort: the server forgets idle cursors by itself after 10 minutes. An
            // explicit session busy with another operation is not waited for: the kill goes
            // without it.
            let route = Route::pinned(kill.server.clone(), client.options().timeout);
            let in_session = route.clone().in_session(kill.session.clone());
            if let Err(e) = client.execute(&mut op, in_session)
                && matches!(*e.kind, ErrorKind::InvalidArgument { .. })
            {
                let _ = client.execute(&mut op, route);
            }
            if let Some(s) = kill.session.and_then(|cell| cell.take_implicit_server()) {
                client.give_back_session(s);
            }
        }
    };
    if let Err(e) = crate::runtime::spawn(core, "may_mongo-cursor-reaper", task) {
        tracing::warn!(
            target: crate::event::log::BACKGROUND,
            "could not start the cursor reaper ({e}); dropped cursors will time out on the server"
        );
    }
    tx
}
