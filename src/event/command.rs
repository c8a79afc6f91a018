//! Command monitoring events, in the official `mongodb` crate's shape
//! (`mongodb::event::command`), after MongoDB's command logging and monitoring spec. Install a
//! handler with `ClientOptions::command_event_handler`.

use std::time::Duration;

use bson::Document;
use bson::oid::ObjectId;

use crate::address::ServerAddress;
use crate::error::Error;

/// The connection a command travels on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The driver's id of the connection (the pool's id, 1, 2, ...; the id its CMAP events
    /// carry).
    pub id: u32,
    /// The server's own id for the connection: the `connectionId` of the connection's
    /// handshake reply (MongoDB 4.2+), the number the server's log and `currentOp` show it
    /// under, so a slow command can be found there. `None` when the server gave none.
    pub server_id: Option<i64>,
    /// The server.
    pub address: ServerAddress,
}

/// A command is about to be written.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CommandStartedEvent {
    /// The command as sent: the body, with each document sequence as an array field
    /// (`documents: [...]`). Empty for security-sensitive commands (authentication, user
    /// management, `hello` carrying `speculativeAuthenticate`).
    pub command: Document,
    /// The database it runs against.
    pub db: String,
    /// The command's name, e.g. `find`.
    pub command_name: String,
    /// The request id of its message; the succeeded or failed event carries the same.
    pub request_id: i32,
    /// The connection it travels on.
    pub connection: ConnectionInfo,
    /// The load balancer backend's id (always `None`: this driver does not load-balance).
    pub service_id: Option<ObjectId>,
}

/// The server answered `ok: 1` (write errors inside such a reply still count as success).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CommandSucceededEvent {
    /// Round-trip time including encoding and decoding the reply's envelope.
    pub duration: Duration,
    /// The reply (empty for security-sensitive commands).
    pub reply: Document,
    /// The command's name.
    pub command_name: String,
    /// The request id.
    pub request_id: i32,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The load balancer backend's id (always `None`).
    pub service_id: Option<ObjectId>,
    /// The database the command ran against, as in the started event, so that a handler need
    /// not keep started events to tell where a reply came from. (Not in the official crate.)
    pub db: String,
}

/// The command failed: `ok: 0`, or a network or protocol error. (A command refused before
/// sending, e.g. a document too large, was never started.)
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CommandFailedEvent {
    /// Time until the failure.
    pub duration: Duration,
    /// The command's name.
    pub command_name: String,
    /// What went wrong. For a security-sensitive command a server's error keeps only its
    /// code, code name and labels: its message and reply (which may echo credentials) are
    /// left out, as the spec requires; the caller still gets the whole error.
    pub failure: Error,
    /// The request id.
    pub request_id: i32,
    /// The connection.
    pub connection: ConnectionInfo,
    /// The load balancer backend's id (always `None`).
    pub service_id: Option<ObjectId>,
    /// The database the command ran against. (Not in the official crate.)
    pub db: String,
}

/// A command was sent, answered, or failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum CommandEvent {
    Started(CommandStartedEvent),
    Succeeded(CommandSucceededEvent),
    Failed(CommandFailedEvent),
}

impl CommandEvent {
    /// The command's name.
    pub fn command_name(&self) -> &str {
        match self {
            CommandEvent::Started(e) => &e.command_name,
            CommandEvent::Succeeded(e) => &e.command_name,
            CommandEvent::Failed(e) => &e.command_name,
        }
    }

    /// The database the command ran against.
    pub fn db(&self) -> &str {
        match self {
            CommandEvent::Started(e) => &e.db,
            CommandEvent::Succeeded(e) => &e.db,
            CommandEvent::Failed(e) => &e.db,
        }
    }

    /// The request id of the command's message.
    pub fn request_id(&self) -> i32 {
        match self {
            CommandEvent::Started(e) => e.request_id,
            CommandEvent::Succeeded(e) => e.request_id,
            CommandEvent::Failed(e) => e.request_id,
        }
    }

    /// The connection the command used.
    pub fn connection(&self) -> &ConnectionInfo {
        match self {
            CommandEvent::Started(e) => &e.connection,
            CommandEvent::Succeeded(e) => &e.connection,
            CommandEvent::Failed(e) => &e.connection,
        }
    }
}

/// Usage of this trait is deprecated, as in the official crate: use
/// [`EventHandler::callback`](super::EventHandler::callback). An `Arc` of an implementation
/// converts into an [`EventHandler<CommandEvent>`](super::EventHandler).
#[deprecated = "use the EventHandler API"]
#[allow(missing_docs)]
pub trait CommandEventHandler: Send + Sync {
    fn handle_command_started_event(&self, _event: CommandStartedEvent) {}
    fn handle_command_succeeded_event(&self, _event: CommandSucceededEvent) {}
    fn handle_command_failed_event(&self, _event: CommandFailedEvent) {}
}
