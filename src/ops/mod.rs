//! One small struct per command, each with `build` and `handle_response`.
//!
//! An operation knows how to write its command into an OP_MSG and how to read the reply; it
//! knows nothing about sockets, pools or cores. The executor ([`Client::execute`]) owns
//! checking out a connection, the round trip and the `ok: 0` check, so every operation gets
//! the same error handling for free.
//!
//! [`Client::execute`]: crate::Client

pub(crate) mod body;
mod bulk_write;
mod command;
mod find;
mod insert;
mod run_command;
mod write;

use bson::RawDocument;

pub(crate) use bulk_write::{BulkWriteBatch, OpKind, PreparedOp};
pub(crate) use command::{Command, body_for_server};
pub(crate) use find::FindOne;
pub(crate) use insert::InsertOne;
pub use insert::InsertOneResult;
pub(crate) use run_command::{RunCommand, RunCommandRaw, user_command_name};
pub(crate) use write::{InsertBatch, WriteReply, read_write_reply};

use crate::error::{Error, Result};
use crate::runtime::buffers;
use crate::wire::{OpMsgBuilder, WireError};

/// A command the executor can run.
pub(crate) trait Operation {
    /// What the caller gets back.
    type Output;
    /// The command's name, for error messages.
    const NAME: &'static str;

    /// The oldest server that knows the command: its wire version and its name. An older
    /// server gets [`ErrorKind::IncompatibleServer`] without a round trip.
    ///
    /// [`ErrorKind::IncompatibleServer`]: crate::ErrorKind::IncompatibleServer
    const MIN_SERVER: Option<(i32, &'static str)> = None;

    /// The command's name as sent (for monitoring); usually [`NAME`](Self::NAME).
    fn command_name(&self) -> &str {
        Self::NAME
    }

    /// The database the command runs against (for monitoring).
    fn database(&self) -> &str;

    /// True for reads: they go where the read preference says, and may carry
    /// `$readPreference`. Everything else goes to the primary (or the one server).
    fn is_read(&self) -> bool {
        false
    }

    /// The operation's own selection criteria, when it has them (else the client's apply).
    fn criteria(&self) -> Option<&crate::selection_criteria::Criteria> {
        None
    }

    /// Whether a failed attempt may be retried, and how (the executor checks the client's
    /// `retryReads` / `retryWrites`).
    fn retry(&self) -> crate::retry::Retry {
        crate::retry::Retry::No
    }

    /// Writes the command body (and any document sequences) into `msg`. Called again for a
    /// retry: it must send the same command (the same generated `_id`s).
    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError>;

    /// Reads an `ok: 1` reply into the output.
    fn handle_response(&mut self, reply: &RawDocument) -> Result<Self::Output>;
}

/// An error for a reply that lacks what its command always returns.
pub(crate) fn malformed_reply(op: &str, what: impl std::fmt::Display) -> Error {
    Error::protocol("server", format!("reply to {op} is malformed: {what}"))
}

/// A document of the caller's, encoded when an operation is made, into a reused buffer.
///
/// Operations encode the caller's documents (a filter, a command body) at once and free the
/// `Document`s there and then: before any wait, on the may worker that built them. Held until
/// the reply, they would often be freed by the other worker, which glibc's malloc makes
/// expensive for both (see `runtime::buffers`). A retry sends the same bytes; the buffer goes
/// back to the shelf when the operation is dropped.
pub(crate) struct Encoded(std::result::Result<Vec<u8>, WireError>);

impl Encoded {
    /// `value` encoded (serde recurses: call on a driver stack).
    pub(crate) fn new(value: &impl serde::Serialize) -> Encoded {
        let mut bytes = buffers::take();
        match bson::serialize_to_buffer(value, &mut bytes) {
            Ok(()) => Encoded(Ok(bytes)),
            Err(e) => {
                buffers::give(bytes);
                Encoded(Err(WireError::Serialize(e)))
            }
        }
    }

    /// The encoded document, or why it could not be encoded (reported once: an operation that
    /// cannot be encoded fails for good).
    pub(crate) fn get(&mut self) -> std::result::Result<&RawDocument, WireError> {
        if self.0.is_err() {
            return Err(std::mem::replace(&mut self.0, Ok(Vec::new())).unwrap_err());
        }
        let bytes = self.0.as_deref().unwrap_or_default();
        RawDocument::from_bytes(bytes).map_err(|e| WireError::BadDocument(e.to_string()))
    }
}

impl Drop for Encoded {
    fn drop(&mut self) {
        if let Ok(bytes) = &mut self.0 {
            buffers::give(std::mem::take(bytes));
        }
    }
}
