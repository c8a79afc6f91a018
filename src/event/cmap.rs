//! CMAP monitoring events and the pool options they report (the pool, one layer up, takes
//! both from here, so that events never import the pool).
//!
//! Names and fields follow MongoDB's Connection Monitoring and Pooling spec, so that tools and
//! tests written against the spec read naturally here.

use std::time::Duration;

use crate::address::ServerAddress;

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionClosedReason {
    /// Its pool was cleared after it was created (its generation is old).
    Stale,
    /// It sat idle longer than `maxIdleTimeMS`.
    Idle,
    /// Its last operation did not complete (I/O error, timeout, panic, cancellation).
    Error,
    /// Its pool was closed.
    PoolClosed,
}

/// Why a check-out failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOutFailedReason {
    /// The pool was closed.
    PoolClosed,
    /// `waitQueueTimeoutMS` passed.
    Timeout,
    /// Opening a connection failed, or the pool was cleared (paused) while waiting.
    ConnectionError,
}

/// A pool or connection event.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CmapEvent {
    /// A pool was created (paused until marked ready).
    PoolCreated {
        /// The pool's server.
        address: ServerAddress,
        /// Its options.
        options: PoolOptions,
    },
    /// The pool accepts check-outs.
    PoolReady {
        /// The pool's server.
        address: ServerAddress,
    },
    /// The pool was cleared: older connections will close, waiters fail, the pool pauses.
    PoolCleared {
        /// The pool's server.
        address: ServerAddress,
        /// Whether checked-out connections were interrupted too (this driver never does:
        /// they close when checked in).
        interrupt_in_use_connections: bool,
    },
    /// The pool was closed.
    PoolClosed {
        /// The pool's server.
        address: ServerAddress,
    },
    /// A connection is being opened (counted from now on).
    ConnectionCreated {
        /// The server.
        address: ServerAddress,
        /// The driver's id for this connection (1, 2, ...; per pool).
        connection_id: u64,
    },
    /// A connection finished its handshake and is usable.
    ConnectionReady {
        /// The server.
        address: ServerAddress,
        /// The connection.
        connection_id: u64,
        /// Time from creation to ready.
        duration: Duration,
    },
    /// A connection was closed.
    ConnectionClosed {
        /// The server.
        address: ServerAddress,
        /// The connection.
        connection_id: u64,
        /// Why.
        reason: ConnectionClosedReason,
    },
    /// A caller started checking out.
    CheckOutStarted {
        /// The server.
        address: ServerAddress,
    },
    /// A check-out failed.
    CheckOutFailed {
        /// The server.
        address: ServerAddress,
        /// Why.
        reason: CheckOutFailedReason,
        /// Time since the check-out started.
        duration: Duration,
    },
    /// A caller got a connection.
    CheckedOut {
        /// The server.
        address: ServerAddress,
        /// The connection.
        connection_id: u64,
        /// Time since the check-out started.
        duration: Duration,
    },
    /// A connection was returned.
    CheckedIn {
        /// The server.
        address: ServerAddress,
        /// The connection.
        connection_id: u64,
    },
}

impl CmapEvent {
    /// The spec's name for this event type, e.g. `ConnectionCheckedOut`.
    pub fn name(&self) -> &'static str {
        match self {
            CmapEvent::PoolCreated { .. } => "ConnectionPoolCreated",
            CmapEvent::PoolReady { .. } => "ConnectionPoolReady",
            CmapEvent::PoolCleared { .. } => "ConnectionPoolCleared",
            CmapEvent::PoolClosed { .. } => "ConnectionPoolClosed",
            CmapEvent::ConnectionCreated { .. } => "ConnectionCreated",
            CmapEvent::ConnectionReady { .. } => "ConnectionReady",
            CmapEvent::ConnectionClosed { .. } => "ConnectionClosed",
            CmapEvent::CheckOutStarted { .. } => "ConnectionCheckOutStarted",
            CmapEvent::CheckOutFailed { .. } => "ConnectionCheckOutFailed",
            CmapEvent::CheckedOut { .. } => "ConnectionCheckedOut",
            CmapEvent::CheckedIn { .. } => "ConnectionCheckedIn",
        }
    }

    /// The connection the event concerns, if any.
    pub fn connection_id(&self) -> Option<u64> {
        match self {
            CmapEvent::ConnectionCreated { connection_id, .. }
            | CmapEvent::ConnectionReady { connection_id, .. }
            | CmapEvent::ConnectionClosed { connection_id, .. }
            | CmapEvent::CheckedOut { connection_id, .. }
            | CmapEvent::CheckedIn { connection_id, .. } => Some(*connection_id),
            _ => None,
        }
    }
}

/// Pool options (the CMAP subset of the client options).
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
