//! The client: options, one pool per server, and the executor every operation goes through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::conn::connection::ConnectSettings;
use crate::conn::{StreamDescription, check_ok, handshake_metadata};
use crate::database::Database;
use crate::deployment::{Deployment, DeploymentSettings, PRIMARY, Server, ServerPool};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{CommandEvent, EventHandler};
use crate::ops::Operation;
use crate::options::{ClientOptions, ServerAddress};
use crate::pool::{PoolOptions, PoolStats};
use crate::retry::{
    Retry, is_network_or_pool_cleared, is_retryable_read_error, is_retryable_write_error,
    wrote_nothing,
};
use crate::runtime::Core;
use crate::session::{ServerSession, SessionPool};
use crate::topology::{self, ReadMode, Topology, TopologyType};
use crate::wire::{BodyField, next_request_id};
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
/// let reply = client.database("admin").run_command(bson::doc! { "ping": 1 })?;
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
    /// `$readPreference` fields, encoded once: the client's own (when not primary), and the
    /// `primaryPreferred` a direct connection sends for primary reads.
    read_preference_field: Option<BodyField>,
    primary_preferred_field: BodyField,
    /// Where dropped cursors are queued for `killCursors` by a background task.
    reaper: may::sync::mpsc::Sender<crate::cursor::Kill>,
    /// The credential every pooled connection authenticates with.
    auth: Option<Arc<crate::auth::Authenticator>>,
    /// Idle server sessions, for retryable writes.
    sessions: SessionPool,
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
    pub fn with_uri_str(uri: &str) -> Result<Client> {
        Client::with_options(ClientOptions::parse(uri)?)
    }

    /// Creates a client from options and starts monitoring its seeds in the background.
    pub fn with_options(options: ClientOptions) -> Result<Client> {
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
            handler: options.event_handler.as_ref().map(|h| h.0.clone()),
        };
        let field = |rp: &crate::topology::ReadPreference| {
            BodyField::new("$readPreference", &read_preference_doc(rp)).map_err(|e| {
                Error::invalid_argument(format!("read preference cannot be encoded: {e}"))
            })
        };
        let read_preference_field = match options.read_preference.mode {
            ReadMode::Primary => None,
            _ => Some(field(&options.read_preference)?),
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
                shut_down: AtomicBool::new(false),
                read_preference_field,
                primary_preferred_field,
                reaper: crate::cursor::start_reaper(core, weak.clone()),
                auth,
                sessions: SessionPool::default(),
            }),
        })
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Client {
        Client { inner }
    }

    /// Queues a server cursor for `killCursors` in the background (no I/O on the caller).
    pub(crate) fn queue_kill(&self, kill: crate::cursor::Kill) {
        let _ = self.inner.reaper.send(kill);
    }

    /// A handle to database `name` (no I/O).
    pub fn database(&self, name: &str) -> Database {
        Database::new(self.clone(), name)
    }

    /// Every database's description (`listDatabases`: name, sizeOnDisk, empty).
    pub fn list_databases(&self) -> Result<Vec<bson::Document>> {
        let op = crate::ops::Command::write(
            "listDatabases",
            "admin",
            bson::doc! { "listDatabases": 1 },
            |r| {
                let dbs = r
                    .get_array("databases")
                    .map_err(|_| crate::ops::malformed_reply("listDatabases", "no databases"))?;
                dbs.into_iter()
                    .map(|d| {
                        d.ok()
                            .and_then(|d| d.as_document())
                            .ok_or_else(|| crate::ops::malformed_reply("listDatabases", "entry"))
                            .and_then(crate::decode::to_document)
                    })
                    .collect()
            },
        );
        self.execute(op)
    }

    /// Every database's name.
    pub fn list_database_names(&self) -> Result<Vec<String>> {
        Ok(self
            .list_databases()?
            .iter()
            .filter_map(|d| d.get_str("name").ok().map(str::to_string))
            .collect())
    }

    /// The database named in the connection string's path, if any.
    pub fn default_database(&self) -> Option<Database> {
        self.inner
            .options
            .default_database
            .as_deref()
            .map(|name| self.database(name))
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
    /// retryable [`ErrorKind::PoolCleared`](crate::ErrorKind::PoolCleared).
    pub fn clear_pools(&self) {
        for s in self.inner.deployment.servers() {
            s.pool.clear_and_keep_ready();
        }
    }

    /// Shuts the client down: monitors stop, idle connections close now, checked-out ones when
    /// their operation ends, callers waiting for a connection get
    /// [`ErrorKind::PoolClosed`](crate::ErrorKind::PoolClosed), and every later operation on this
    /// client or its clones gets [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown).
    pub fn shutdown(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
        self.inner.deployment.close();
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

    /// Runs one operation: select a server, check out a connection, round trip, check `ok`,
    /// read the reply — and retry once where the operation and the error allow. Errors go
    /// through the SDAM rules (a network error clears that server's pool and asks its monitor
    /// for a check). Bounded by the client's `timeout`, when it has one.
    pub(crate) fn execute<O: Operation>(&self, op: O) -> Result<O::Output> {
        self.execute_full(op, None, self.inner.options.timeout)
            .map(|(output, _)| output)
    }

    /// [`execute`](Self::execute) bounded by `timeout` (a database's or collection's).
    pub(crate) fn execute_timed<O: Operation>(
        &self,
        op: O,
        timeout: Option<Duration>,
    ) -> Result<O::Output> {
        self.execute_full(op, None, timeout)
            .map(|(output, _)| output)
    }

    /// Runs `op` on `server` when given — a cursor's getMore and killCursors must reach the
    /// server holding the cursor — or else on a selected one, and returns the server too.
    pub(crate) fn execute_on<O: Operation>(
        &self,
        op: O,
        server: Option<Arc<Server>>,
    ) -> Result<(O::Output, Arc<Server>)> {
        self.execute_full(op, server, self.inner.options.timeout)
    }

    /// The executor. One attempt, and — for a retryable operation whose first attempt failed
    /// in a retryable way — one more on a server selected afresh, after the Retryable Reads and
    /// Retryable Writes specs (see [`crate::retry`]). `timeout` bounds the whole call,
    /// retry included.
    pub(crate) fn execute_full<O: Operation>(
        &self,
        mut op: O,
        pinned: Option<Arc<Server>>,
        timeout: Option<Duration>,
    ) -> Result<(O::Output, Arc<Server>)> {
        let limit = timeout.map(|t| Limit {
            started: Instant::now(),
            timeout: t,
        });
        let options = &self.inner.options;
        let retry = match (&pinned, op.retry()) {
            (None, Retry::Read) if options.retry_reads => Retry::Read,
            (None, Retry::Write) if options.retry_writes => Retry::Write,
            _ => Retry::No,
        };
        let mut txn: Option<Txn> = None;
        let first = match self.attempt(&mut op, pinned, limit, retry, &mut txn, None) {
            Ok(done) => {
                self.end_txn(txn);
                return Ok(done);
            }
            Err(failed) => failed,
        };
        let retryable = match (retry, first.stage) {
            (Retry::No, _) | (_, Stage::Final) => false,
            // Nothing was sent: trying again cannot do anything twice.
            (_, Stage::CheckOut) => is_network_or_pool_cleared(&first.error),
            (Retry::Read, Stage::Sent) => is_retryable_read_error(&first.error),
            (Retry::Write, Stage::Sent) => {
                txn.is_some() && is_retryable_write_error(&first.error, first.max_wire_version)
            }
        };
        if !retryable || limit.is_some_and(|l| l.expired()) {
            self.end_txn(txn);
            return Err(first.error);
        }
        let avoid = first.server.as_ref();
        let second = self.attempt(&mut op, None, limit, retry, &mut txn, avoid);
        self.end_txn(txn);
        match second {
            Ok(done) => Ok(done),
            // A retry that never reached a server, or that wrote nothing, leaves the first
            // error standing: it says more about what happened.
            Err(again)
                if again.stage != Stage::Sent
                    || (retry == Retry::Write && wrote_nothing(&again.error)) =>
            {
                Err(first.error)
            }
            Err(again) => Err(again.error),
        }
    }

    /// Returns a retryable write's session to the pool (unless a network error dirtied it).
    fn end_txn(&self, txn: Option<Txn>) {
        if let Some(t) = txn {
            self.inner.sessions.give_back(t.session, t.session_timeout);
        }
    }

    /// One attempt of `op`: select (unless `pinned`), check out, send, read the reply.
    fn attempt<O: Operation>(
        &self,
        op: &mut O,
        pinned: Option<Arc<Server>>,
        limit: Option<Limit>,
        retry: Retry,
        txn: &mut Option<Txn>,
        avoid: Option<&ServerAddress>,
    ) -> std::result::Result<(O::Output, Arc<Server>), Failed> {
        // A retry always names the server its first attempt failed on.
        let is_retry = avoid.is_some();
        let deadline = limit.map(|l| l.deadline());
        let final_error = |error: Error| Failed {
            error,
            stage: Stage::Final,
            max_wire_version: 0,
            server: None,
        };
        // An operation's own read preference (rare) is cloned and encoded here; the client's
        // was encoded once, at creation.
        let own = op.read_preference().cloned();
        let read_preference = own.as_ref().unwrap_or(&self.inner.options.read_preference);
        let (server, topology_type) = match pinned {
            Some(s) => (s, TopologyType::Unknown),
            None => {
                let wanted = if op.is_read() {
                    topology::Operation::Read(read_preference)
                } else {
                    topology::Operation::Write
                };
                self.select(wanted, deadline, avoid)
                    .map_err(|e| final_error(timed_out(e, limit, "selecting a server")))?
            }
        };
        let in_flight = InFlight::new(&server);
        let mut conn = self.check_out(&server, deadline).map_err(|e| Failed {
            error: timed_out(e, limit, "waiting for a connection")
                .in_operation(op.command_name(), &server.address),
            stage: Stage::CheckOut,
            max_wire_version: 0,
            server: Some(server.address.clone()),
        })?;
        let max_wire_version = conn.description().max_wire_version;
        if let Some((wire, name)) = O::MIN_SERVER
            && max_wire_version < wire
        {
            let message = format!(
                "{} needs {name} (wire version {wire}) or newer; {} speaks wire versions up to {max_wire_version}",
                op.command_name(),
                server.address
            );
            let e = Error::from(ErrorKind::IncompatibleServer { message });
            return Err(final_error(
                e.in_operation(op.command_name(), &server.address),
            ));
        }
        // A retryable write carries a session id and transaction number when the server can
        // de-duplicate by them; a retry reuses the first attempt's.
        if retry == Retry::Write {
            match session_timeout(conn.description()) {
                Some(session_timeout) if txn.is_none() => {
                    let mut session = self.inner.sessions.take(session_timeout);
                    let number = session.next_txn_number();
                    let fields = session
                        .fields(number)
                        .map_err(|e| final_error(Error::internal(e.to_string())))?;
                    *txn = Some(Txn {
                        session,
                        session_timeout,
                        fields,
                    });
                }
                Some(_) => {}
                // The first attempt was sent with a transaction number; this server cannot
                // honour it, so there is no safe retry here.
                None if is_retry && txn.is_some() => {
                    return Err(final_error(Error::internal("retry not possible")));
                }
                None => {}
            }
        }
        // `$readPreference` travels with reads a secondary or mongos must honour; a direct
        // connection (Single, not mongos) sends primaryPreferred so any member answers.
        let inner = &*self.inner;
        let own_field;
        let send_read_preference = if !op.is_read() {
            None
        } else {
            let mongos = conn.description().server_type == crate::ServerType::Mongos;
            match (topology_type, read_preference.mode) {
                (TopologyType::Single, ReadMode::Primary) if !mongos => {
                    Some(&inner.primary_preferred_field)
                }
                (_, ReadMode::Primary) => None,
                _ if own.is_some() => {
                    own_field =
                        BodyField::new("$readPreference", &read_preference_doc(read_preference))
                            .map_err(|e| final_error(Error::invalid_argument(e.to_string())))?;
                    Some(&own_field)
                }
                _ => inner.read_preference_field.as_ref(),
            }
        };
        let txn_fields = txn.as_ref().map(|t| &t.fields);
        let request_id = next_request_id();
        // Command monitoring decodes the message only when a handler listens.
        let handler = self.inner.options.event_handler.as_ref().map(|h| &*h.0);
        let names = handler.map(|_| (op.command_name().to_string(), op.database().to_string()));
        let connection_id = conn.id();
        let mut monitor = None;
        let result = conn
            .limit_io(deadline)
            .and_then(|()| {
                conn.round_trip_observed(
                    request_id,
                    |msg| {
                        op.build(msg)?;
                        if let Some(field) = send_read_preference {
                            msg.append_to_body(field)?;
                        }
                        match txn_fields {
                            Some(fields) => msg.append_to_body(fields),
                            None => Ok(()),
                        }
                    },
                    |message| {
                        if let (Some(handler), Some((name, db))) = (handler, names) {
                            monitor = Some(CommandMonitor::start(
                                handler,
                                name,
                                db,
                                message,
                                request_id,
                                connection_id,
                                &server.address,
                            ));
                        }
                    },
                )
            })
            .and_then(|reply| check_ok(reply).map(|()| reply));
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                if let Some(m) = monitor {
                    m.failed(&e);
                }
                let generation = conn.generation();
                drop(conn);
                self.inner
                    .deployment
                    .on_operation_error(&server, generation, max_wire_version, &e);
                if e.is_network_error()
                    && let Some(t) = txn
                {
                    // The server may hold this session in a state we do not know.
                    t.session.dirty = true;
                }
                let error = timed_out(e, limit, "waiting for the reply")
                    .in_operation(op.command_name(), &server.address);
                return Err(Failed {
                    error,
                    stage: Stage::Sent,
                    max_wire_version,
                    server: Some(server.address.clone()),
                });
            }
        };
        if let Some(m) = monitor {
            m.succeeded(reply);
        }
        let output = op.handle_response(reply).map_err(|e| {
            if matches!(e.kind(), ErrorKind::WriteConcern(_)) {
                // A write concern error can say the primary stepped down: SDAM learns from it.
                let generation = conn.generation();
                self.inner
                    .deployment
                    .on_operation_error(&server, generation, max_wire_version, &e);
            }
            Failed {
                error: e.in_operation(op.command_name(), &server.address),
                stage: Stage::Sent,
                max_wire_version,
                server: Some(server.address.clone()),
            }
        })?;
        drop(conn);
        drop(in_flight);
        Ok((output, server))
    }
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

/// Turns a failure caused by the operation's deadline into [`ErrorKind::Timeout`]; any other
/// error (or a deadline not yet reached: a `socketTimeoutMS` or `waitQueueTimeoutMS` of its
/// own) is returned as it is.
fn timed_out(e: Error, limit: Option<Limit>, during: &str) -> Error {
    let Some(limit) = limit.filter(|l| l.expired()) else {
        return e;
    };
    let timeout_like = match e.kind() {
        ErrorKind::Io { source, .. } => matches!(
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

/// A retryable write's session and transaction number, kept across its two attempts.
struct Txn {
    session: ServerSession,
    session_timeout: Duration,
    /// `lsid` and `txnNumber`, encoded.
    fields: BodyField,
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
                set.iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect()
            })
            .collect();
        doc.insert("tags", sets);
    }
    if let Some(s) = rp.max_staleness {
        doc.insert("maxStalenessSeconds", s.as_secs() as i64);
    }
    doc
}

/// Emits the command events of one operation (built only when a handler is installed).
struct CommandMonitor<'a> {
    handler: &'a dyn EventHandler,
    command_name: String,
    request_id: i32,
    connection_id: u64,
    address: &'a ServerAddress,
    started: Instant,
    sensitive: bool,
}

/// Commands whose contents never reach event handlers: credentials travel in them.
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

impl<'a> CommandMonitor<'a> {
    fn start(
        handler: &'a dyn EventHandler,
        command_name: String,
        database: String,
        message: &[u8],
        request_id: i32,
        connection_id: u64,
        address: &'a ServerAddress,
    ) -> Self {
        let mut command = command_document(message).unwrap_or_default();
        let lower = command_name.to_ascii_lowercase();
        let sensitive = SENSITIVE.contains(&lower.as_str())
            || (matches!(lower.as_str(), "hello" | "ismaster")
                && command.contains_key("speculativeAuthenticate"));
        if sensitive {
            command = bson::Document::new();
        }
        handler.handle_command_event(&CommandEvent::Started {
            command,
            command_name: command_name.clone(),
            database,
            request_id,
            connection_id,
            address: address.clone(),
        });
        CommandMonitor {
            handler,
            command_name,
            request_id,
            connection_id,
            address,
            started: Instant::now(),
            sensitive,
        }
    }

    fn succeeded(self, reply: &bson::RawDocument) {
        let reply = if self.sensitive {
            bson::Document::new()
        } else {
            crate::decode::to_document(reply).unwrap_or_default()
        };
        self.handler.handle_command_event(&CommandEvent::Succeeded {
            reply,
            command_name: self.command_name,
            request_id: self.request_id,
            connection_id: self.connection_id,
            duration: self.started.elapsed(),
            address: self.address.clone(),
        });
    }

    fn failed(self, e: &Error) {
        self.handler.handle_command_event(&CommandEvent::Failed {
            command_name: self.command_name,
            request_id: self.request_id,
            connection_id: self.connection_id,
            duration: self.started.elapsed(),
            failure: e.clone(),
            address: self.address.clone(),
        });
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
