//! The client: options, one pool per server, and the executor every operation goes through.

use std::sync::Arc;
use std::time::Instant;

use crate::conn::connection::{ConnectSettings, Connector};
use crate::conn::{Connection, StreamDescription, check_ok, handshake_metadata};
use crate::database::Database;
use crate::error::{Error, ErrorKind, Result};
use crate::event::{CommandEvent, EventHandler};
use crate::ops::Operation;
use crate::options::{ClientOptions, ServerAddress};
use crate::pool::{Pool, PoolConnection, PoolOptions, PoolStats, Pooled};
use crate::runtime::Core;
use crate::wire::next_request_id;
use greenlet_pool::{GreenletPool, Lease, Request, Source};

/// A handle to a MongoDB deployment. Cheap to clone (an `Arc`); share one per process.
///
/// Creating a client does no I/O: connections are opened on first use, by whichever
/// coroutine or thread first needs one. Every method is blocking-style: inside a may coroutine
/// it parks the coroutine on I/O and lets others run; on a plain thread it blocks the thread.
/// One client can serve coroutines and OS threads at the same time.
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

struct Inner {
    options: ClientOptions,
    pool: Arc<Pool<Connector>>,
    /// The affinity layer over the pool: requests and per-coroutine pinning.
    affinity: GreenletPool<ServerPool>,
    shut_down: std::sync::atomic::AtomicBool,
}

/// The CMAP pool as a source of connections for the affinity layer.
struct ServerPool(Arc<Pool<Connector>>);

impl Source for ServerPool {
    type Conn = Pooled<Connection>;
    type Error = Error;

    fn check_out(&self) -> Result<Pooled<Connection>> {
        self.0.check_out()
    }

    /// No I/O: at worst closes a socket. Safe in a coroutine-local destructor.
    fn check_in(&self, conn: Pooled<Connection>) {
        self.0.check_in(conn)
    }

    fn is_reusable(&self, conn: &Pooled<Connection>) -> bool {
        !conn.is_broken()
    }
}

/// A connection lent to one operation. Its `Drop` returns it — to the caller's request slot or
/// to the pool — on every path out of an operation, including a panic or a cancelled
/// coroutine's unwind; the pool closes it if the operation did not finish.
type CheckedOut = Lease<ServerPool>;

/// A request: while the guard lives (the outermost, when nested), the calling coroutine's — or
/// thread's — operations on this client all use one connection, so it reads its own writes.
/// Returned by [`Client::start_request`].
pub struct RequestGuard {
    _request: Request<ServerPool>,
}

impl Client {
    /// Parses `uri` and creates a client (no I/O).
    pub fn with_uri_str(uri: &str) -> Result<Client> {
        Client::with_options(ClientOptions::parse(uri)?)
    }

    /// Creates a client from options (no I/O).
    pub fn with_options(options: ClientOptions) -> Result<Client> {
        let address = options
            .hosts
            .first()
            .cloned()
            .ok_or_else(|| Error::invalid_argument("ClientOptions.hosts is empty"))?;
        let settings = ConnectSettings {
            core: options.core,
            connect_timeout: options.connect_timeout,
            socket_timeout: options.socket_timeout,
            metadata: handshake_metadata(options.app_name.as_deref(), options.core),
        };
        let pool_options = PoolOptions {
            max_pool_size: options.max_pool_size,
            min_pool_size: options.min_pool_size,
            max_connecting: options.max_connecting,
            max_idle_time: options.max_idle_time,
            wait_queue_timeout: options.wait_queue_timeout,
            ..PoolOptions::default()
        };
        let pool = Pool::new(
            address.clone(),
            pool_options,
            options.core,
            Connector { address, settings },
            options.event_handler.as_ref().map(|h| h.0.clone()),
        );
        // No server monitoring yet: the one server is taken to be available.
        pool.ready();
        let affinity = GreenletPool::new(ServerPool(pool.clone()), options.affinity);
        Ok(Client {
            inner: Arc::new(Inner {
                options,
                pool,
                affinity,
                shut_down: Default::default(),
            }),
        })
    }

    /// A handle to database `name` (no I/O).
    pub fn database(&self, name: &str) -> Database {
        Database::new(self.clone(), name)
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
        self.inner.options.core
    }

    /// What the server said about itself in the handshake of a pooled connection (opening
    /// one if none is idle).
    pub fn stream_description(&self) -> Result<StreamDescription> {
        let conn = self.check_out()?;
        Ok(conn.description().clone())
    }

    /// Connection counts of the pool, for tests and reports.
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Shuts the client down: idle connections close now, checked-out ones when their
    /// operation ends, callers waiting for a connection get
    /// [`ErrorKind::PoolClosed`](crate::ErrorKind::PoolClosed), and every later operation on this
    /// client or its clones gets [`ErrorKind::Shutdown`](crate::ErrorKind::Shutdown).
    pub fn shutdown(&self) {
        self.inner
            .shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.pool.close();
    }

    /// Starts (or nests) a request for the calling coroutine or thread: until the guard drops,
    /// its operations on this client share one connection. PyMongo 2.x's `start_request`,
    /// for coroutines: the connection also goes back by itself if the coroutine ends first.
    pub fn start_request(&self) -> RequestGuard {
        RequestGuard {
            _request: self.inner.affinity.start_request(),
        }
    }

    /// True when the caller is in a request (explicit, or pinned by
    /// [`Affinity::PerCoroutine`](crate::Affinity::PerCoroutine)).
    pub fn in_request(&self) -> bool {
        self.inner.affinity.in_request()
    }

    fn check_out(&self) -> Result<CheckedOut> {
        if self
            .inner
            .shut_down
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(ErrorKind::Shutdown.into());
        }
        self.inner.affinity.get()
    }

    /// Runs one operation: check out a connection, round trip, check `ok`, read the reply.
    pub(crate) fn execute<O: Operation>(&self, mut op: O) -> Result<O::Output> {
        let mut conn = self.check_out()?;
        let request_id = next_request_id();
        let monitor = self.inner.options.event_handler.as_ref().map(|h| {
            CommandMonitor::start(&*h.0, &op, &conn, request_id, self.inner.pool.address())
        });
        let result = conn
            .round_trip(request_id, |msg| op.build(msg))
            .and_then(|reply| check_ok(reply).map(|()| reply));
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                if let Some(m) = monitor {
                    m.failed(&e);
                }
                drop(conn);
                self.handle_error(&e);
                return Err(e);
            }
        };
        if let Some(m) = monitor {
            m.succeeded();
        }
        op.handle_response(reply)
    }

    /// The SDAM error rule that applies without a monitor: after a network error other than a
    /// timeout, the server may have restarted or dropped every connection, so clear the pool
    /// (older connections close as they are met). With no monitor to mark the server usable
    /// again, the pool is readied at once.
    fn handle_error(&self, e: &Error) {
        let timeout = matches!(e.kind(), ErrorKind::Io { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock));
        if e.is_network_error() && !timeout {
            self.inner.pool.clear();
            self.inner.pool.ready();
        }
    }
}

/// Emits the command events of one operation (built only when a handler is installed).
struct CommandMonitor<'a> {
    handler: &'a dyn EventHandler,
    command_name: String,
    request_id: i32,
    connection_id: u64,
    address: &'a ServerAddress,
    started: Instant,
}

impl<'a> CommandMonitor<'a> {
    fn start<O: Operation>(
        handler: &'a dyn EventHandler,
        op: &O,
        conn: &CheckedOut,
        request_id: i32,
        address: &'a ServerAddress,
    ) -> Self {
        let connection_id = conn.id();
        handler.handle_command_event(&CommandEvent::Started {
            command_name: op.command_name().to_string(),
            database: op.database().to_string(),
            request_id,
            connection_id,
            address: address.clone(),
        });
        CommandMonitor {
            handler,
            command_name: op.command_name().to_string(),
            request_id,
            connection_id,
            address,
            started: Instant::now(),
        }
    }

    fn succeeded(self) {
        self.handler.handle_command_event(&CommandEvent::Succeeded {
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

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("core", &self.core())
            .field("pool", &self.inner.pool)
            .finish()
    }
}
