//! One error type for the whole driver, in the shape of the official `mongodb` crate's
//! (`mongodb::error`): [`Error`] with a public `kind: Box<ErrorKind>`, labels, the server's
//! response; [`ErrorKind`] with the official variants where this driver meets the same case
//! (`Command`, `Write`, `InsertMany`, `BulkWrite`, `ServerSelection`, `Io`, ...), and more
//! variants of its own where it says more (`Tls`, `Timeout`, `WaitQueueTimeout`, `TooDeep`,
//! ...).
//!
//! [`Error`] is two words — a boxed [`ErrorKind`] and a box for what is rarer (labels, the
//! operation and server, a source error, the server's reply) — so `Result<T>` stays small on
//! the hot path while the kind still says exactly what happened.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bson::{Bson, RawDocumentBuf};

/// The driver's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Retryable write error label: the write may be retried.
pub const RETRYABLE_WRITE_ERROR: &str = "RetryableWriteError";
/// Transient transaction error label. (This driver has no transactions yet; a server may
/// still send the label.)
pub const TRANSIENT_TRANSACTION_ERROR: &str = "TransientTransactionError";
/// Unknown transaction commit result label. (This driver has no transactions yet; a server
/// may still send the label.)
pub const UNKNOWN_TRANSACTION_COMMIT_RESULT: &str = "UnknownTransactionCommitResult";
/// The server was overloaded when the connection was made.
pub const SYSTEM_OVERLOADED_ERROR: &str = "SystemOverloadedError";
/// The error is retryable.
pub const RETRYABLE_ERROR: &str = "RetryableError";
/// No writes were performed before the error (a retry's error then yields to the first).
pub const NO_WRITES_PERFORMED: &str = "NoWritesPerformed";
/// A change stream can be resumed after this error.
pub const RESUMABLE_CHANGE_STREAM_ERROR: &str = "ResumableChangeStreamError";

/// An error from the driver. Match on `*err.kind` to see what happened.
#[derive(Clone)]
pub struct Error {
    /// What happened.
    pub kind: Box<ErrorKind>,
    /// Labels, context, source and response: absent for most errors.
    extra: Option<Box<Extra>>,
}

#[derive(Clone, Default)]
struct Extra {
    labels: HashSet<String>,
    /// The command that failed, when the executor knows it.
    operation: Option<String>,
    /// The server the error concerned (`host:port`).
    server: Option<String>,
    /// The error that stopped a client-level bulk write, under its [`ErrorKind::BulkWrite`].
    source: Option<Error>,
    /// The server's whole reply, for the fields the kind does not carry.
    server_response: Option<RawDocumentBuf>,
}

static NO_LABELS: LazyLock<HashSet<String>> = LazyLock::new(HashSet::new);

/// What went wrong. The variants before `CollectionBulkWrite` are the official crate's (with
/// extra fields where this driver knows more); the rest are this driver's own.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument given to the driver is invalid.
    #[error("invalid argument: {message}")]
    #[non_exhaustive]
    InvalidArgument {
        /// What was wrong.
        message: String,
    },

    /// The server refused the credential (or the exchange broke off). The connection was
    /// closed, never pooled. Names the mechanism, the user and where the user was looked up;
    /// never the password.
    #[error(
        "authentication failed ({mechanism}, user {user:?} in database {auth_source:?}): {message}"
    )]
    #[non_exhaustive]
    Authentication {
        /// What the server (or the client's check of the server) said.
        message: String,
        /// The mechanism, e.g. `SCRAM-SHA-256`.
        mechanism: String,
        /// The user name.
        user: String,
        /// The database holding the user (`authSource`).
        auth_source: String,
    },

    /// Serialising a value to BSON, or deserialising a server reply into the requested
    /// type, failed (the official crate's shape with bson 3: one variant for both ways).
    #[error("BSON error: {0}")]
    Bson(bson::error::Error),

    /// Some inserts of an `insert_many` failed: each failure with the index of its document,
    /// and the `_id`s of what was inserted.
    #[error("{}", describe_insert_many(.0))]
    InsertMany(InsertManyError),

    /// A client-level `bulk_write` (the `bulkWrite` command) failed in part: write errors by
    /// index, write concern errors, and the partial result. A top-level error that stopped
    /// it after some writes were reported is the [`Error`]'s source
    /// ([`std::error::Error::source`]).
    #[error("{}", describe_client_bulk(.0))]
    BulkWrite(BulkWriteError),

    /// The server answered `ok: 0`.
    #[error("{0}")]
    Command(CommandError),

    /// Resolving a `mongodb+srv://` name (its SRV or TXT records) failed.
    #[error("DNS resolution failed: {message}")]
    #[non_exhaustive]
    DnsResolve {
        /// What failed.
        message: String,
    },

    /// A GridFS file is missing, incomplete or malformed, or a stream was used after
    /// closing.
    #[error("GridFS: {0}")]
    GridFs(GridFsErrorKind),

    /// An internal invariant was broken. Please report it.
    #[error("internal error: {message}")]
    #[non_exhaustive]
    Internal {
        /// What happened.
        message: String,
    },

    /// A socket or name-resolution failure. The server it concerned is
    /// [`Error::server`] (and is in the message).
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),

    /// The pool was cleared (after a network error) while waiting, or is paused; retry.
    #[error("{message}")]
    #[non_exhaustive]
    ConnectionPoolCleared {
        /// What happened, naming the server.
        message: String,
        /// The server address whose pool was cleared.
        address: String,
    },

    /// The server's reply broke the wire protocol (truncated, oversized, inconsistent). The
    /// connection it came from has been closed.
    #[error("protocol error from {address}: {message}")]
    #[non_exhaustive]
    InvalidResponse {
        /// What was wrong with it.
        message: String,
        /// The server address the bad reply came from.
        address: String,
    },

    /// No server suitable for the operation was found within `serverSelectionTimeoutMS`.
    #[error("{message}")]
    #[non_exhaustive]
    ServerSelection {
        /// Everything below, in words.
        message: String,
        /// What the server was wanted for, e.g. `a write` or `a read (secondary)`.
        operation: String,
        /// How long selection waited.
        waited_ms: u64,
        /// The deployment's type when selection gave up, e.g. `ReplicaSetNoPrimary`.
        topology: String,
        /// Every known server, and why it was unsuitable.
        servers: Vec<(String, String)>,
    },

    /// The TLS options could not be loaded (a CA or certificate file missing or unreadable,
    /// a key that does not parse).
    #[error("invalid TLS configuration: {message}")]
    #[non_exhaustive]
    InvalidTlsConfig {
        /// What was wrong, naming the option and file.
        message: String,
    },

    /// A one-document write failed: its write error, or the write concern error it was
    /// acknowledged with.
    #[error("{0}")]
    Write(WriteFailure),

    /// A server speaks wire versions this driver cannot, or lacks what an operation needs;
    /// no operation is attempted.
    #[error("incompatible server: {message}")]
    #[non_exhaustive]
    IncompatibleServer {
        /// Which server, and which versions.
        message: String,
    },

    /// A value of the application's own, made with [`Error::custom`].
    #[error("custom user error{}", display_custom(.0))]
    Custom(Arc<dyn Any + Send + Sync>),

    /// The client was shut down; no further operations are possible.
    #[error("the client has been shut down")]
    Shutdown,

    /// An explicit session was used with a deployment that does not support sessions (its
    /// `hello` reports no `logicalSessionTimeoutMinutes`).
    #[error("the deployment does not support sessions")]
    SessionsNotSupported,

    /// Some writes of a collection's `bulk_write` failed: every failure with the index of its
    /// model, and what did succeed. (The official crate has no collection-level bulk write;
    /// its client-level one is [`ErrorKind::BulkWrite`].)
    #[error("{}", describe_bulk(.0))]
    CollectionBulkWrite(Box<BulkWriteFailure>),

    /// The TLS session with `address` failed: the handshake (an untrusted or mismatched
    /// certificate, a client certificate the server wanted) or a TLS record later. The message
    /// says which option would change the outcome. The connection has been closed.
    #[error("TLS error with {address}: {message}")]
    Tls {
        /// The server address.
        address: String,
        /// What rustls reported, and a hint.
        message: String,
    },

    /// A document is larger than the server accepts (`maxBsonObjectSize`); nothing was sent.
    #[error("document of {size} bytes exceeds the server's maxBsonObjectSize of {max} bytes")]
    DocumentTooLarge {
        /// The document's encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// A message is larger than the server accepts (`maxMessageSizeBytes`); nothing was sent.
    #[error("message of {size} bytes exceeds the server's maxMessageSizeBytes of {max} bytes")]
    MessageTooLarge {
        /// The encoded message size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// Waiting for a pooled connection took longer than `waitQueueTimeoutMS`.
    #[error(
        "timed out after {waited_ms} ms waiting for a connection to {address} (pool of {max_pool_size})"
    )]
    WaitQueueTimeout {
        /// The server address whose pool was exhausted.
        address: String,
        /// How long the caller waited.
        waited_ms: u64,
        /// The pool's `maxPoolSize`.
        max_pool_size: usize,
    },

    /// The pool was closed (its client shut down) while waiting or before checking out.
    #[error("the connection pool for {address} is closed")]
    PoolClosed {
        /// The server address whose pool was closed.
        address: String,
    },

    /// The operation's time limit ([`ClientOptions::timeout`](crate::ClientOptions::timeout),
    /// `timeoutMS`, or `with_timeout` on a database or collection) ran out. It bounds server
    /// selection, the wait for a connection, the reply and any retry; a connection that was
    /// waiting for a reply has been closed, never pooled.
    #[error("operation timed out after {elapsed_ms} ms (limit {limit_ms} ms) while {during}")]
    Timeout {
        /// The limit.
        limit_ms: u64,
        /// How long the operation ran.
        elapsed_ms: u64,
        /// What it was doing: `selecting a server`, `waiting for a connection`, `waiting for
        /// the reply`.
        during: String,
    },

    /// A document nested deeper than the driver reads or writes: more than
    /// [`MAX_DOCUMENT_DEPTH`](crate::MAX_DOCUMENT_DEPTH) levels, MongoDB's own default
    /// `maxBSONDepth` (it stores nothing deeper than 100). Found before anything recursed into
    /// it, so no stack was at risk; a reply this deep was read whole, and its connection is
    /// still good.
    #[error("{what} is nested more than {max} levels deep (MongoDB's maxBSONDepth)")]
    TooDeep {
        /// What was too deep: `a reply from <address>`, `a document to send`.
        what: String,
        /// The limit.
        max: usize,
    },

    /// The blocking call behind an async operation panicked (a `Serialize` or `Deserialize`
    /// impl, say); the panic was caught and is reported here instead of unwinding into the
    /// executor.
    #[error("the operation panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },

    /// A transaction API called in the wrong state (commit with none started, abort after
    /// commit, a second start, ...).
    #[error("transaction error: {message}")]
    Transaction {
        /// What was wrong.
        message: String,
    },
}

fn display_custom(custom: &Arc<dyn Any + Send + Sync>) -> String {
    if let Some(s) = custom.downcast_ref::<String>() {
        format!(": {s}")
    } else if let Some(s) = custom.downcast_ref::<&str>() {
        format!(": {s}")
    } else {
        String::new()
    }
}

/// A server's `ok: 0` reply to a command. Its labels (`RetryableWriteError`, ...) are the
/// [`Error`]'s ([`Error::labels`]), and the whole reply is [`Error::server_response`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CommandError {
    /// The numeric error code (0 when the server gave none).
    pub code: i32,
    /// The symbolic code name, e.g. `DuplicateKey` (empty when the server gave none).
    pub code_name: String,
    /// The server's message.
    pub message: String,
    /// How long to back off before retrying (`baseBackoffMS`), when the server said.
    pub base_backoff: Option<Duration>,
}

impl CommandError {
    /// Reads an error document: `code`, `codeName`, `errmsg` (or the legacy `$err`),
    /// `baseBackoffMS`.
    pub(crate) fn from_reply(reply: &bson::RawDocument) -> CommandError {
        CommandError {
            code: crate::wire::get_int(reply, "code").unwrap_or(0) as i32,
            code_name: reply.get_str("codeName").unwrap_or_default().to_string(),
            message: reply
                .get_str("errmsg")
                .or_else(|_| reply.get_str("$err"))
                .unwrap_or("(no message)")
                .to_string(),
            base_backoff: crate::wire::get_int(reply, "baseBackoffMS")
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed with code {}", self.code)?;
        if !self.code_name.is_empty() {
            write!(f, " ({})", self.code_name)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A write concern that was not satisfied (`writeConcernError`): the write was applied, but
/// not as durably as asked.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WriteConcernError {
    /// The numeric error code.
    pub code: i32,
    /// The symbolic code name (empty when the server gave none).
    pub code_name: String,
    /// The server's message.
    pub message: String,
    /// The server's `errInfo` (the write concern it was judged against, ...).
    pub details: Option<bson::Document>,
    /// The labels of the reply it came in (servers put them at the top level); the [`Error`]
    /// carrying it has them too.
    pub(crate) labels: Vec<String>,
}

impl WriteConcernError {
    /// Reads a `writeConcernError` document, with `labels` from the reply around it.
    pub(crate) fn from_reply(entry: &bson::RawDocument, mut labels: Vec<String>) -> Self {
        for label in crate::wire::get_strings(entry, "errorLabels") {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        WriteConcernError {
            code: crate::wire::get_int(entry, "code").unwrap_or(0) as i32,
            code_name: entry.get_str("codeName").unwrap_or_default().to_string(),
            message: entry
                .get_str("errmsg")
                .unwrap_or("(no message)")
                .to_string(),
            details: error_info(entry),
            labels,
        }
    }
}

impl fmt::Display for WriteConcernError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write concern error with code {}", self.code)?;
        if !self.code_name.is_empty() {
            write!(f, " ({})", self.code_name)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A document's write error inside a successful write command (`writeErrors`), for a write
/// of one document.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WriteError {
    /// The numeric error code, e.g. 11000 for a duplicate key.
    pub code: i32,
    /// The symbolic code name, when the server gave one.
    pub code_name: Option<String>,
    /// The server's message.
    pub message: String,
    /// The server's `errInfo`, when it gave one (a document validation failure explains
    /// itself there).
    pub details: Option<bson::Document>,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write error with code {}", self.code)?;
        if let Some(name) = &self.code_name {
            write!(f, " ({name})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A write error of a write of many documents (`insert_many`, a collection's `bulk_write`):
/// a [`WriteError`] with the index of its document or model in the input.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IndexedWriteError {
    /// Index of the failed document or model in the input (within the batch sent, until the
    /// caller shifts it).
    pub index: usize,
    /// The numeric error code, e.g. 11000 for a duplicate key.
    pub code: i32,
    /// The symbolic code name, when the server gave one.
    pub code_name: Option<String>,
    /// The server's message.
    pub message: String,
    /// The server's `errInfo`, when it gave one.
    pub details: Option<bson::Document>,
}

impl IndexedWriteError {
    /// Reads one entry of a reply's `writeErrors` (or of a `bulkWrite` results cursor).
    pub(crate) fn from_reply(entry: &bson::RawDocument) -> IndexedWriteError {
        IndexedWriteError {
            index: crate::wire::get_int(entry, "index").unwrap_or(0) as usize,
            code: crate::wire::get_int(entry, "code").unwrap_or(0) as i32,
            code_name: entry.get_str("codeName").ok().map(str::to_string),
            message: entry
                .get_str("errmsg")
                .unwrap_or("(no message)")
                .to_string(),
            details: error_info(entry),
        }
    }
}

impl From<IndexedWriteError> for WriteError {
    fn from(e: IndexedWriteError) -> WriteError {
        WriteError {
            code: e.code,
            code_name: e.code_name,
            message: e.message,
            details: e.details,
        }
    }
}

impl fmt::Display for IndexedWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write error at index {} with code {}: {}",
            self.index, self.code, self.message
        )
    }
}

fn error_info(entry: &bson::RawDocument) -> Option<bson::Document> {
    entry
        .get_document("errInfo")
        .ok()
        .and_then(|d| crate::wire::to_document(d).ok())
}

/// A one-document write's failure.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum WriteFailure {
    /// The write was applied, but its write concern was not satisfied.
    WriteConcernError(WriteConcernError),
    /// The write failed (a duplicate key, a validation failure, ...).
    WriteError(WriteError),
}

impl fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteFailure::WriteConcernError(e) => e.fmt(f),
            WriteFailure::WriteError(e) => e.fmt(f),
        }
    }
}

/// What a failed `insert_many` did and did not do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertManyError {
    /// Each failed insert, with its document's index in the input.
    pub write_errors: Option<Vec<IndexedWriteError>>,
    /// A write concern error, if the server reported one.
    pub write_concern_error: Option<WriteConcernError>,
    /// The `_id` of each document that was inserted, by its index in the input. (Public here;
    /// the official crate keeps it to itself.)
    pub inserted_ids: HashMap<usize, Bson>,
}

fn describe_insert_many(e: &InsertManyError) -> String {
    let errors = e.write_errors.as_deref().unwrap_or_default();
    let mut s = format!(
        "insert_many failed: {} write error(s), {} document(s) inserted",
        errors.len(),
        e.inserted_ids.len()
    );
    if let Some(first) = errors.first() {
        s.push_str(&format!(", first: {first}"));
    }
    if let Some(wc) = &e.write_concern_error {
        s.push_str(&format!("; {wc}"));
    }
    s
}

/// What a failed collection-level `bulk_write` did and did not do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BulkWriteFailure {
    /// Each failed write, with its model's index in the input.
    pub write_errors: Vec<IndexedWriteError>,
    /// A write concern error, if the server reported one.
    pub write_concern_error: Option<WriteConcernError>,
    /// What succeeded before (ordered) or besides (unordered) the failures.
    pub partial_result: crate::write_results::BulkWriteResult,
}

fn describe_bulk(f: &BulkWriteFailure) -> String {
    let mut s = format!("bulk write failed: {} write error(s)", f.write_errors.len());
    if let Some(first) = f.write_errors.first() {
        s.push_str(&format!(", first: {first}"));
    }
    if let Some(wc) = &f.write_concern_error {
        s.push_str(&format!("; {wc}"));
    }
    s
}

/// What a failed client-level bulk write did and did not do. The error that stopped it, if
/// one did (a network error, an `ok: 0` reply, a failed `getMore`), is the source of the
/// [`Error`] carrying this.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BulkWriteError {
    /// Write concern errors, one per `bulkWrite` command that reported one.
    pub write_concern_errors: Vec<WriteConcernError>,
    /// Each failed write, by its index in the input. At most one for an ordered bulk write.
    pub write_errors: HashMap<usize, WriteError>,
    /// What succeeded, when some write is known to have: totals, and per-write results if
    /// they were asked for.
    pub partial_result: Option<PartialBulkWriteResult>,
}

/// What a partly failed client-level bulk write did.
#[derive(Clone, Debug)]
pub enum PartialBulkWriteResult {
    /// The totals (`verbose_results` was not asked for).
    Summary(crate::write_results::SummaryBulkWriteResult),
    /// The totals and each successful write's own result.
    Verbose(crate::write_results::VerboseBulkWriteResult),
}

fn describe_client_bulk(f: &BulkWriteError) -> String {
    let mut s = String::from("bulk write failed");
    if let Some(first) = f.write_errors.keys().min() {
        s.push_str(&format!(
            "; {} write error(s), first at index {first}: {}",
            f.write_errors.len(),
            f.write_errors[first]
        ));
    }
    if let Some(wc) = f.write_concern_errors.first() {
        s.push_str(&format!(
            "; {} write concern error(s), first: {wc}",
            f.write_concern_errors.len()
        ));
    }
    s
}

fn describe_servers(servers: &[(String, String)]) -> String {
    if servers.is_empty() {
        return "no servers known".into();
    }
    servers
        .iter()
        .map(|(a, why)| format!("{a} ({why})"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// An error carrying a value of the application's own (see [`Error::get_custom`]).
    pub fn custom(e: impl Any + Send + Sync) -> Self {
        ErrorKind::Custom(Arc::new(e)).into()
    }

    /// The value given to [`Error::custom`], if this is a custom error of that type.
    pub fn get_custom<E: Any>(&self) -> Option<&E> {
        match &*self.kind {
            ErrorKind::Custom(c) => c.downcast_ref(),
            _ => None,
        }
    }

    /// An error of `kind` with `labels`; a write concern error's labels are added.
    pub(crate) fn new(kind: ErrorKind, labels: impl IntoIterator<Item = String>) -> Self {
        let mut labels: HashSet<String> = labels.into_iter().collect();
        let wce = match &kind {
            ErrorKind::Write(WriteFailure::WriteConcernError(wce))
            | ErrorKind::InsertMany(InsertManyError {
                write_concern_error: Some(wce),
                ..
            }) => Some(wce),
            ErrorKind::CollectionBulkWrite(f) => f.write_concern_error.as_ref(),
            _ => None,
        };
        if let Some(wce) = wce {
            labels.extend(wce.labels.iter().cloned());
        }
        let mut e = Error {
            kind: Box::new(kind),
            extra: None,
        };
        if !labels.is_empty() {
            e.extra_mut().labels = labels;
        }
        e
    }

    /// An `ok: 0` reply as an error: [`ErrorKind::Command`], its `errorLabels`, and the
    /// reply itself as the server response.
    pub(crate) fn from_command_reply(reply: &bson::RawDocument) -> Self {
        let mut e = Error::new(
            ErrorKind::Command(CommandError::from_reply(reply)),
            crate::wire::get_strings(reply, "errorLabels"),
        );
        e.extra_mut().server_response = Some(reply.to_owned());
        e
    }

    /// Adds `label` (the transactions' `TransientTransactionError`, ...).
    pub(crate) fn add_label(&mut self, label: &str) {
        self.extra_mut().labels.insert(label.to_string());
    }

    /// Removes `label`, if the error has it.
    pub(crate) fn remove_label(&mut self, label: &str) {
        if let Some(x) = self.extra.as_mut() {
            x.labels.remove(label);
        }
    }

    /// A [`ErrorKind::Transaction`] error.
    pub(crate) fn transaction(message: impl Into<String>) -> Self {
        ErrorKind::Transaction {
            message: message.into(),
        }
        .into()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// What happened: the same as `&*self.kind`.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The command that failed (e.g. `insert`), when the error came from running one.
    pub fn operation(&self) -> Option<&str> {
        self.extra.as_ref()?.operation.as_deref()
    }

    /// The server the error concerned: the one a failed command ran on, or the one an I/O
    /// error happened with.
    pub fn server(&self) -> Option<&str> {
        self.extra.as_ref()?.server.as_deref()
    }

    /// The error's labels (e.g. `RetryableWriteError`): the server's `errorLabels`, and a
    /// write concern error's.
    pub fn labels(&self) -> &HashSet<String> {
        self.extra.as_ref().map_or(&NO_LABELS, |x| &x.labels)
    }

    /// Whether this error, or the error that caused it, has `label`.
    pub fn contains_label<T: AsRef<str>>(&self, label: T) -> bool {
        let label = label.as_ref();
        self.labels().contains(label)
            || self
                .extra
                .as_ref()
                .and_then(|x| x.source.as_ref())
                .is_some_and(|s| s.contains_label(label))
    }

    /// The server's whole reply, for the fields the kind does not carry (`keyPattern` and
    /// `keyValue` of a duplicate key, `errInfo`, ...). Present for command errors.
    pub fn server_response(&self) -> Option<&RawDocumentBuf> {
        self.extra.as_ref()?.server_response.as_ref()
    }

    /// [`CommandError::base_backoff`], for a command error.
    pub fn base_backoff(&self) -> Option<Duration> {
        match &*self.kind {
            ErrorKind::Command(c) => c.base_backoff,
            _ => None,
        }
    }

    /// The error that caused this one: the top-level error that stopped a client-level bulk
    /// write.
    pub(crate) fn with_source(mut self, source: Error) -> Self {
        self.extra_mut().source = Some(source);
        self
    }

    /// The error under this one, if any (see [`Error::with_source`]).
    pub(crate) fn source_error(&self) -> Option<&Error> {
        self.extra.as_ref()?.source.as_ref()
    }

    /// Names the operation and server (the executor does this for every error it returns);
    /// what is already named stays.
    pub(crate) fn in_operation(mut self, operation: &str, server: impl fmt::Display) -> Self {
        let x = self.extra_mut();
        x.operation.get_or_insert_with(|| operation.to_string());
        x.server.get_or_insert_with(|| server.to_string());
        self
    }

    /// Whether the server said the namespace (collection or database) does not exist:
    /// code 26 (`NamespaceNotFound`), or a command error whose message is "ns not found"
    /// from a server that gives no code (mongo-java-server answers a `drop` of a missing
    /// collection with code 0 and that message, as old mongod versions did). MongoDB's
    /// drivers treat this as success for `drop`, which is why it has a name here.
    pub fn is_ns_not_found(&self) -> bool {
        match &*self.kind {
            ErrorKind::Command(e) => {
                e.code == 26 || (e.code == 0 && e.message.contains("ns not found"))
            }
            _ => false,
        }
    }

    /// The server error code: of a command error, a write error or write concern error, the
    /// first write error of a write of many (else its write concern error), or the error that
    /// stopped a client-level bulk write.
    pub fn code(&self) -> Option<i32> {
        match &*self.kind {
            ErrorKind::Command(e) => Some(e.code),
            ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
            ErrorKind::InsertMany(e) => e
                .write_errors
                .as_ref()
                .and_then(|w| w.first())
                .map(|w| w.code)
                .or(e.write_concern_error.as_ref().map(|w| w.code)),
            ErrorKind::CollectionBulkWrite(b) => b
                .write_errors
                .first()
                .map(|e| e.code)
                .or(b.write_concern_error.as_ref().map(|w| w.code)),
            ErrorKind::BulkWrite(f) => match self.source_error() {
                Some(e) => e.code(),
                None => f.write_errors.keys().min().map(|i| f.write_errors[i].code),
            },
            _ => None,
        }
    }

    /// True for failures of the network or of the wire protocol: the connection involved has
    /// been closed and the operation's outcome on the server may be unknown.
    pub fn is_network_error(&self) -> bool {
        match &*self.kind {
            ErrorKind::Io(_) | ErrorKind::InvalidResponse { .. } | ErrorKind::Tls { .. } => true,
            ErrorKind::BulkWrite(_) => self.source_error().is_some_and(Error::is_network_error),
            _ => false,
        }
    }

    /// An I/O failure with `address`; one that rustls caused (it wraps its error in the
    /// `io::Error`) is a [`ErrorKind::Tls`], so the user sees what TLS objected to.
    pub(crate) fn io(address: impl fmt::Display, source: io::Error) -> Self {
        let address = address.to_string();
        if let Some(tls) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            let host = address.rsplit_once(':').map_or(&*address, |(h, _)| h);
            let message = describe_tls(tls, host.trim_matches(['[', ']']));
            return ErrorKind::Tls { address, message }.into();
        }
        let mut e = Error::from(ErrorKind::Io(Arc::new(source)));
        e.extra_mut().server = Some(address);
        e
    }

    /// The `io::Error` of an [`ErrorKind::Io`].
    pub(crate) fn io_error(&self) -> Option<&io::Error> {
        match &*self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn protocol(address: impl fmt::Display, message: impl Into<String>) -> Self {
        ErrorKind::InvalidResponse {
            address: address.to_string(),
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn pool_cleared(address: impl fmt::Display) -> Self {
        let address = address.to_string();
        ErrorKind::ConnectionPoolCleared {
            message: format!(
                "the connection pool for {address} was cleared; the operation may be retried"
            ),
            address,
        }
        .into()
    }

    pub(crate) fn server_selection(
        operation: String,
        waited_ms: u64,
        topology: String,
        servers: Vec<(String, String)>,
    ) -> Self {
        ErrorKind::ServerSelection {
            message: format!(
                "no suitable server for {operation} after {waited_ms} ms ({topology}): {}",
                describe_servers(&servers)
            ),
            operation,
            waited_ms,
            topology,
            servers,
        }
        .into()
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        ErrorKind::InvalidArgument {
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn invalid_tls_config(message: impl Into<String>) -> Self {
        ErrorKind::InvalidTlsConfig {
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn dns(message: impl Into<String>) -> Self {
        ErrorKind::DnsResolve {
            message: message.into(),
        }
        .into()
    }

    /// A connection string that could not be parsed: [`ErrorKind::InvalidArgument`], as in
    /// the official crate, its message naming the part or option at fault.
    pub(crate) fn invalid_uri(message: impl Into<String>) -> Self {
        ErrorKind::InvalidArgument {
            message: format!("invalid connection string: {}", message.into()),
        }
        .into()
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        ErrorKind::Internal {
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn ser(e: bson::error::Error) -> Self {
        ErrorKind::Bson(e).into()
    }

    pub(crate) fn de(e: bson::error::Error) -> Self {
        ErrorKind::Bson(e).into()
    }
}

impl<E> From<E> for Error
where
    ErrorKind: From<E>,
{
    fn from(kind: E) -> Self {
        Error::new(kind.into(), [])
    }
}

impl From<io::Error> for ErrorKind {
    fn from(e: io::Error) -> Self {
        ErrorKind::Io(Arc::new(e))
    }
}

impl From<io::ErrorKind> for ErrorKind {
    fn from(e: io::ErrorKind) -> Self {
        ErrorKind::Io(Arc::new(e.into()))
    }
}

impl From<crate::write_results::ClientBulkWriteResult> for PartialBulkWriteResult {
    fn from(r: crate::write_results::ClientBulkWriteResult) -> Self {
        let summary = crate::write_results::SummaryBulkWriteResult {
            inserted_count: r.inserted_count as i64,
            matched_count: r.matched_count as i64,
            modified_count: r.modified_count as i64,
            upserted_count: r.upserted_count as i64,
            deleted_count: r.deleted_count as i64,
        };
        match r.verbose {
            None => PartialBulkWriteResult::Summary(summary),
            Some(v) => {
                PartialBulkWriteResult::Verbose(crate::write_results::VerboseBulkWriteResult {
                    summary,
                    insert_results: v.insert_results.into_iter().collect(),
                    update_results: v.update_results.into_iter().collect(),
                    delete_results: v.delete_results.into_iter().collect(),
                })
            }
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(x) = &self.extra else {
            return fmt::Debug::fmt(&self.kind, f);
        };
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if !x.labels.is_empty() {
            d.field("labels", &x.labels);
        }
        if let Some(op) = &x.operation {
            d.field("operation", op);
        }
        if let Some(server) = &x.server {
            d.field("server", server);
        }
        if let Some(source) = &x.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)?;
        let Some(x) = &self.extra else {
            return Ok(());
        };
        if let Some(source) = &x.source {
            write!(f, "; stopped by: {source}")?;
        }
        if !x.labels.is_empty() {
            let mut labels: Vec<&str> = x.labels.iter().map(String::as_str).collect();
            labels.sort_unstable();
            write!(f, " [labels: {}]", labels.join(", "))?;
        }
        match (&x.operation, &x.server) {
            (Some(op), Some(server)) => write!(f, " (in {op} on {server})"),
            (Some(op), None) => write!(f, " (in {op})"),
            (None, Some(server)) => write!(f, " (talking to {server})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(source) = self.source_error() {
            return Some(source);
        }
        match &*self.kind {
            ErrorKind::Io(source) => Some(&**source),
            ErrorKind::Bson(e) => Some(e),
            _ => None,
        }
    }
}

/// What went wrong in a GridFS operation (the official crate's `GridFsErrorKind`, with the
/// file named in each variant, and a few cases of this driver's own).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridFsErrorKind {
    /// No file has this id (open, delete, rename), or no file has this name (`delete_by_name`,
    /// `rename_by_name`).
    #[error("no file {identifier}")]
    #[non_exhaustive]
    FileNotFound {
        /// The id or name asked for.
        identifier: GridFsFileIdentifier,
    },
    /// No file has this name, or not this revision of it.
    #[error("no revision {revision} of a file named {filename:?}")]
    #[non_exhaustive]
    RevisionNotFound {
        /// The revision asked for (0 the first, -1 the latest).
        revision: i32,
        /// The name asked for.
        filename: String,
    },
    /// A chunk the file's length calls for is not there.
    #[error("file {id}: chunk {n} is missing")]
    #[non_exhaustive]
    MissingChunk {
        /// The chunk expected next.
        n: u32,
        /// The file's id.
        id: String,
    },
    /// The upload stream was already closed or aborted.
    #[error("the upload stream is already closed or aborted")]
    UploadStreamClosed,
    /// A chunk holds the wrong number of bytes for its place in the file.
    #[error("file {id}: chunk {n} holds {actual_size} bytes, {expected_size} expected")]
    #[non_exhaustive]
    WrongSizeChunk {
        /// What it holds.
        actual_size: usize,
        /// What it should hold.
        expected_size: u32,
        /// The chunk.
        n: u32,
        /// The file's id.
        id: String,
    },
    /// There are more chunks than the file's length calls for.
    #[error("file {id}: at least {actual_number} chunks, {expected_number} expected")]
    #[non_exhaustive]
    WrongNumberOfChunks {
        /// How many there are at least (the number of the extra chunk found, plus one).
        actual_number: u32,
        /// How many the file's length calls for.
        expected_number: u32,
        /// The file's id.
        id: String,
    },
    /// A chunk out of order: a duplicate of one already read. (Not in the official crate.)
    #[error("file {id}: unexpected chunk {n} (expected {expected})")]
    UnexpectedChunk {
        /// The file's id.
        id: String,
        /// The chunk found.
        n: i64,
        /// The chunk expected.
        expected: u32,
    },
    /// The files document (or a chunk document) is not one this driver can read. (Not in the
    /// official crate.)
    #[error("file {id}: bad files document: {message}")]
    BadFilesDocument {
        /// The file's id.
        id: String,
        /// What is wrong with it.
        message: String,
    },
}

/// How a GridFS file was asked for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GridFsFileIdentifier {
    /// By name (not necessarily unique).
    Filename(String),
    /// By its `_id`.
    Id(Bson),
}

impl fmt::Display for GridFsFileIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GridFsFileIdentifier::Filename(name) => write!(f, "named {name:?}"),
            GridFsFileIdentifier::Id(id) => write!(f, "with id {id}"),
        }
    }
}

/// Explains a rustls failure in the driver's terms: which option would change the outcome.
fn describe_tls(e: &rustls::Error, host: &str) -> String {
    use rustls::Error as E;
    let hint = match e {
        E::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            "; the server's certificate is not signed by a trusted CA (set tlsCAFile to the \
             CA that signed it, or tlsAllowInvalidCertificates=true to skip the check)"
                .to_string()
        }
        E::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "; the certificate does not name {host:?} (tlsAllowInvalidHostnames=true skips \
             this check)"
        ),
        E::InvalidCertificate(
            rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. },
        ) => "; the certificate is outside its validity period".to_string(),
        E::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "; the server requires a client certificate (tlsCertificateKeyFile)".to_string()
        }
        _ => String::new(),
    };
    format!("{e}{hint}")
}
