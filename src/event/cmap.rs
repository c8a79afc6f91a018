//! CMAP monitoring events, in the official `mongodb` crate's shape
//! (`mongodb::event::cmap`), and the pool options they report (the pool, one layer up, takes
//! both from here, so that events never import the pool).
//!
//! Each [`CmapEvent`] variant wraps a struct named after MongoDB's Connection Monitoring and
//! Pooling spec. Install a handler with `ClientOptions::cmap_event_handler`.

use std::time::Duration;

use crate::address::ServerAddress;

/// A pool was created (paused until marked ready).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolCreatedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// Its options.
    pub options: Option<ConnectionPoolOptions>,
}

/// The pool options a [`PoolCreatedEvent`] reports.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ConnectionPoolOptions {
    /// `maxIdleTimeMS`: idle connections older than this are closed.
    pub max_idle_time: Option<Duration>,
    /// `maxPoolSize` (`None`: no limit).
    pub max_pool_size: Option<u32>,
    /// `minPoolSize`.
    pub min_pool_size: Option<u32>,
    /// `maxConnecting`: most connections being opened at once. (Not in the official crate.)
    pub max_connecting: Option<u32>,
    /// `waitQueueTimeoutMS`: how long a check-out may wait. (Not in the official crate.)
    pub wait_queue_timeout: Option<Duration>,
}

/// The pool accepts check-outs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolReadyEvent {
    /// The pool's server.
    pub address: ServerAddress,
}

/// The pool was cleared: older connections will close, waiters fail, the pool pauses.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolClearedEvent {
    /// The pool's server.
    pub address: ServerAddress,
    /// The load balancer backend's id (always `None`: this driver does not load-balance).
    pub service_id: Option<bson::oid::ObjectId>,
    /// Whether checked-out connections were interrupted too (this driver never does: they
    /// close when checked in).
    pub interrupt_in_use_connections: bool,
}

/// The pool was closed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolClosedEvent {
    /// The pool's server.
    pub address: ServerAddress,
}

/// A connection is being opened (counted from now on).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionCreatedEvent {
    /// The server.
    pub address: ServerAddress,
    /// The driver's id for this connection (1, 2, ...; per pool).
    pub connection_id: u32,
}

/// A connection finished its handshake (and authentication) and is usable.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionReadyEvent {
    /// The server.
    pub address: ServerAddress,
    /// The connection.
    pub connection_id: u32,
    /// Time from creation to ready.
    pub duration: Duration,
}

/// A connection was closed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionClosedEvent {
    /// The server.
    pub address: ServerAddress,
    /// The connection.
    pub connection_id: u32,
    /// Why.
    pub reason: ConnectionClosedReason,
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionClosedReason {
    /// Its pool was cleared after it was created (its generation is old).
    Stale,
    /// It sat idle longer than `maxIdleTimeMS`.
    Idle,
    /// Its last operation did not complete (I/O error, timeout, panic, cancellation), or
    /// opening it failed.
    Error,
    /// Dropped during a read or write. (Not emitted by this driver: a connection whose
    /// operation was cancelled is closed with [`Error`](Self::Error).)
    Dropped,
    /// Its pool was closed.
    PoolClosed,
}

/// A caller started checking out.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionCheckoutStartedEvent {
    /// The server.
    pub address: ServerAddress,
}

/// A check-out failed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionCheckoutFailedEvent {
    /// The server.
    pub address: ServerAddress,
    /// Why.
    pub reason: ConnectionCheckoutFailedReason,
    /// Time since the check-out started.
    pub duration: Duration,
}

/// Why a check-out failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionCheckoutFailedReason {
    /// `waitQueueTimeoutMS` passed.
    Timeout,
    /// Opening a connection failed, or the pool was cleared (paused) while waiting.
    ConnectionError,
    /// The pool was closed. (The CMAP spec's `poolClosed`; not in the official crate.)
    PoolClosed,
}

/// A caller got a connection.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionCheckedOutEvent {
    /// The server.
    pub address: ServerAddress,
    /// The connection.
    pub connection_id: u32,
    /// Time since the check-out started.
    pub duration: Duration,
}

/// A connection was returned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConnectionCheckedInEvent {
    /// The server.
    pub address: ServerAddress,
    /// The connection.
    pub connection_id: u32,
}

/// A pool or connection event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum CmapEvent {
    PoolCreated(PoolCreatedEvent),
    PoolReady(PoolReadyEvent),
    PoolCleared(PoolClearedEvent),
    PoolClosed(PoolClosedEvent),
    ConnectionCreated(ConnectionCreatedEvent),
    ConnectionReady(ConnectionReadyEvent),
    ConnectionClosed(ConnectionClosedEvent),
    ConnectionCheckoutStarted(ConnectionCheckoutStartedEvent),
    ConnectionCheckoutFailed(ConnectionCheckoutFailedEvent),
    ConnectionCheckedOut(ConnectionCheckedOutEvent),
    ConnectionCheckedIn(ConnectionCheckedInEvent),
}

impl CmapEvent {
    /// The spec's name for this event type, e.g. `ConnectionCheckedOut`.
    pub fn name(&self) -> &'static str {
        match self {
            CmapEvent::PoolCreated(_) => "ConnectionPoolCreated",
            CmapEvent::PoolReady(_) => "ConnectionPoolReady",
            CmapEvent::PoolCleared(_) => "ConnectionPoolCleared",
            CmapEvent::PoolClosed(_) => "ConnectionPoolClosed",
            CmapEvent::ConnectionCreated(_) => "ConnectionCreated",
            CmapEvent::ConnectionReady(_) => "ConnectionReady",
            CmapEvent::ConnectionClosed(_) => "ConnectionClosed",
            CmapEvent::ConnectionCheckoutStarted(_) => "ConnectionCheckOutStarted",
            CmapEvent::ConnectionCheckoutFailed(_) => "ConnectionCheckOutFailed",
            CmapEvent::ConnectionCheckedOut(_) => "ConnectionCheckedOut",
            CmapEvent::ConnectionCheckedIn(_) => "ConnectionCheckedIn",
        }
    }

    /// The connection the event concerns, if any.
    pub fn connection_id(&self) -> Option<u32> {
        match self {
            CmapEvent::ConnectionCreated(e) => Some(e.connection_id),
            CmapEvent::ConnectionReady(e) => Some(e.connection_id),
            CmapEvent::ConnectionClosed(e) => Some(e.connection_id),
            CmapEvent::ConnectionCheckedOut(e) => Some(e.connection_id),
            CmapEvent::ConnectionCheckedIn(e) => Some(e.connection_id),
            _ => None,
        }
    }
}

/// Usage of this trait is deprecated, as in the official crate: use
/// [`EventHandler::callback`](super::EventHandler::callback). An `Arc` of an implementation
/// converts into an [`EventHandler<CmapEvent>`](super::EventHandler).
#[deprecated = "use the EventHandler API"]
#[allow(missing_docs)]
pub trait CmapEventHandler: Send + Sync {
    fn handle_pool_created_event(&self, _event: PoolCreatedEvent) {}
    fn handle_pool_ready_event(&self, _event: PoolReadyEvent) {}
    fn handle_pool_cleared_event(&self, _event: PoolClearedEvent) {}
    fn handle_pool_closed_event(&self, _event: PoolClosedEvent) {}
    fn handle_connection_created_event(&self, _event: ConnectionCreatedEvent) {}
    fn handle_connection_ready_event(&self, _event: ConnectionReadyEvent) {}
    fn handle_connection_closed_event(&self, _event: ConnectionClosedEvent) {}
    fn handle_connection_checkout_started_event(&self, _event: ConnectionCheckoutStartedEvent) {}
    fn handle_connection_checkout_failed_event(&self, _event: ConnectionCheckoutFailedEvent) {}
    fn handle_connection_checked_out_event(&self, _event: ConnectionCheckedOutEvent) {}
    fn handle_connection_checked_in_event(&self, _event: ConnectionCheckedInEvent) {}
}

/// Pool options (the CMAP subset of the client options): what the pool runs by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Most connections, idle + in use + connecting. 0 means no limit.
    pub max_pool_size: usize,
    /// Connections the background task keeps open.
    pub min_pool_size: usize,
    /// Most connections being opened at once (at least 1).
    pub max_connecting: usize,
    /// Idle connections older than this are closed.
    pub max_idle_time: Option<Duration>,
    /// How long a check-out may wait. `None`: as long as it takes.
    pub wait_queue_timeout: Option<Duration>,
    /// How often the background task runs (it is also woken at once by ready, clear and
    /// close); `None` disables it. It closes stale and perished idle connections and keeps
    /// `min_pool_size` connections open. Default: 1 s.
    pub background_interval: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_pool_size: 100,
            min_pool_size: 0,
            max_connecting: 2,
            max_idle_time: None,
            wait_queue_timeout: None,
            background_interval: Some(Duration::from_secs(1)),
        }
    }
}

impl PoolOptions {
    /// The options as a [`PoolCreatedEvent`] reports them.
    pub(crate) fn event_options(&self) -> ConnectionPoolOptions {
        let count = |n: usize| Some(u32::try_from(n).unwrap_or(u32::MAX));
        ConnectionPoolOptions {
            max_idle_time: self.max_idle_time,
            max_pool_size: if self.max_pool_size == usize::MAX {
                None
            } else {
                count(self.max_pool_size)
            },
            min_pool_size: count(self.min_pool_size),
            max_connecting: count(self.max_connecting),
            wait_queue_timeout: self.wait_queue_timeout,
        }
    }
}
