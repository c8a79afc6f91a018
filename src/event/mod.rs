//! Monitoring: the events the driver emits, and the handler that receives them.
//!
//! Three families: CMAP events from each connection pool ([`CmapEvent`]), command events
//! around each command sent ([`CommandEvent`], after MongoDB's command logging and
//! monitoring spec), and SDAM events as the driver learns the deployment ([`SdamEvent`]). Install a handler with `ClientOptions::event_handler`.

use std::time::Duration;

pub mod cmap;

pub use crate::topology::SdamEvent;
pub use cmap::{CheckOutFailedReason, CmapEvent, ConnectionClosedReason};

use crate::address::ServerAddress;
use crate::error::Error;

/// A command was sent, answered, or failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CommandEvent {
    /// A command is about to be written.
    Started {
        /// The command as sent: the body, with each document sequence as an array field
        /// (`documents: [...]`). Empty for security-sensitive commands (authentication, user
        /// management, `hello` carrying `speculativeAuthenticate`).
        command: bson::Document,
        /// The command's name, e.g. `find`.
        command_name: String,
        /// The database it runs against.
        database: String,
        /// The request id of its message.
        request_id: i32,
        /// The driver's id of the connection it travels on (the pool's id, 1, 2, ...).
        connection_id: u64,
        /// The server's own id for that connection: the `connectionId` of the connection's
        /// handshake reply (MongoDB 4.2+), the number the server's log and `currentOp` show
        /// it under, so a slow command can be found there. `None` when the server gave none.
        server_connection_id: Option<i64>,
        /// The server.
        address: ServerAddress,
    },
    /// The server answered `ok: 1` (write errors inside such a reply still count as success).
    Succeeded {
        /// The reply (empty for security-sensitive commands).
        reply: bson::Document,
        /// The command's name.
        command_name: String,
        /// The database it ran against (as in the started event, so a handler need not keep
        /// started events to tell which database a reply came from).
        database: String,
        /// The request id.
        request_id: i32,
        /// The connection.
        connection_id: u64,
        /// The server's id for the connection (see the started event).
        server_connection_id: Option<i64>,
        /// Round-trip time including encoding and decoding the reply's envelope.
        duration: Duration,
        /// The server.
        address: ServerAddress,
    },
    /// The command failed: `ok: 0`, or a network or protocol error. (A command refused before
    /// sending, e.g. a document too large, was never started.)
    Failed {
        /// The command's name.
        command_name: String,
        /// The database it ran against.
        database: String,
        /// The request id.
        request_id: i32,
        /// The connection.
        connection_id: u64,
        /// The server's id for the connection (see the started event).
        server_connection_id: Option<i64>,
        /// Time until the failure.
        duration: Duration,
        /// What went wrong. For a security-sensitive command a server's error keeps only its
        /// code, code name and labels: its message and reply (which may echo credentials)
        /// are left out, as the spec requires; the caller still gets the whole error.
        failure: Error,
        /// The server.
        address: ServerAddress,
    },
}

impl CommandEvent {
    /// The connection the command used.
    pub fn connection_id(&self) -> u64 {
        match self {
            CommandEvent::Started { connection_id, .. }
            | CommandEvent::Succeeded { connection_id, .. }
            | CommandEvent::Failed { connection_id, .. } => *connection_id,
        }
    }

    /// The command's name.
    pub fn command_name(&self) -> &str {
        match self {
            CommandEvent::Started { command_name, .. }
            | CommandEvent::Succeeded { command_name, .. }
            | CommandEvent::Failed { command_name, .. } => command_name,
        }
    }

    /// The database the command ran against.
    pub fn database(&self) -> &str {
        match self {
            CommandEvent::Started { database, .. }
            | CommandEvent::Succeeded { database, .. }
            | CommandEvent::Failed { database, .. } => database,
        }
    }

    /// The server's id for the connection, when its handshake reply gave one.
    pub fn server_connection_id(&self) -> Option<i64> {
        match self {
            CommandEvent::Started {
                server_connection_id,
                ..
            }
            | CommandEvent::Succeeded {
                server_connection_id,
                ..
            }
            | CommandEvent::Failed {
                server_connection_id,
                ..
            } => *server_connection_id,
        }
    }
}

/// Receives the driver's monitoring events. Every method has an empty default, so a handler
/// implements only what it cares about.
///
/// Handlers run synchronously, on the coroutine or thread that caused the event (so a
/// coroutine-local in a handler sees the caller's values), and CMAP events are delivered while
/// the pool's lock is held — which keeps them in one true order. Keep handlers short: record,
/// count or send on a channel; never call back into the client, block, or do may I/O.
pub trait EventHandler: Send + Sync {
    /// A pool or connection event.
    fn handle_cmap_event(&self, _event: &CmapEvent) {}
    /// A command event.
    fn handle_command_event(&self, _event: &CommandEvent) {}
    /// A topology, server or heartbeat event (SDAM monitoring). Delivered from the monitors'
    /// coroutines or threads, and from operations whose errors change a server's state.
    fn handle_sdam_event(&self, _event: &SdamEvent) {}
}
