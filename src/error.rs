//! One error type for the whole driver.
//!
//! [`Error`] is a boxed [`ErrorKind`], so `Result<T>` stays two words wide on the hot path
//! while the kind still says exactly what happened. Every failure a user can meet has its own
//! kind: I/O (with the address it concerned), a server's `ok: 0` reply, a write error, a
//! malformed reply, a size limit, a bad argument or URI, a BSON (de)serialisation problem, a
//! pool wait that timed out, a client that was shut down.

use std::fmt;
use std::io;
use std::sync::Arc;

/// The driver's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from the driver. Look at [`Error::kind`] to see what happened.
#[derive(Clone)]
pub struct Error {
    kind: Box<ErrorKind>,
    /// The operation and server the error happened in, when the executor knows them.
    context: Option<Box<(String, String)>>,
}

/// What went wrong.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A socket or name-resolution failure while talking to `address`.
    #[error("I/O error talking to {address}: {source}")]
    Io {
        /// The server address (`host:port`) the I/O concerned.
        address: String,
        /// The underlying error (shared so that `Error` can be cloned).
        source: Arc<io::Error>,
    },

    /// The server answered `ok: 0`.
    #[error("{0}")]
    Command(CommandError),

    /// A write command succeeded as a command but reported a per-document write error.
    #[error("{0}")]
    Write(WriteError),

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

    /// The server's reply broke the wire protocol (truncated, oversized, inconsistent). The
    /// connection it came from has been closed.
    #[error("protocol error from {address}: {message}")]
    Protocol {
        /// The server address the bad reply came from.
        address: String,
        /// What was wrong with it.
        message: String,
    },

    /// The write was applied but its write concern was not satisfied (`writeConcernError`).
    #[error("write concern error: {0}")]
    WriteConcern(CommandError),

    /// Some writes of an `insert_many` or `bulk_write` failed: every failure with the index of
    /// its document or model, and what did succeed.
    #[error("{}", describe_bulk(.0))]
    BulkWrite(Box<BulkWriteFailure>),

    /// A client-level `bulk_write` (the `bulkWrite` command) failed in part: write errors by
    /// index, write concern errors, or a top-level error after some writes were reported.
    #[error("{}", describe_client_bulk(.0))]
    ClientBulkWrite(Box<ClientBulkWriteFailure>),

    /// The server refused the credential (or the exchange broke off). The connection was
    /// closed, never pooled. Names the mechanism, the user and where the user was looked up;
    /// never the password.
    #[error(
        "authentication failed ({mechanism}, user {user:?} in database {auth_source:?}): {message}"
    )]
    Authentication {
        /// The mechanism, e.g. `SCRAM-SHA-256`.
        mechanism: String,
        /// The user name.
        user: String,
        /// The database holding the user (`authSource`).
        auth_source: String,
        /// What the server (or the client's check of the server) said.
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

    /// An argument given to the driver is invalid.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong.
        message: String,
    },

    /// The connection string could not be parsed.
    #[error("invalid connection string: {message}")]
    InvalidUri {
        /// What was wrong, naming the part or option at fault.
        message: String,
    },

    /// Serialising a value to BSON failed.
    #[error("BSON serialization error: {0}")]
    BsonSerialization(Arc<bson::error::Error>),

    /// Deserialising a server reply into the requested type failed.
    #[error("BSON deserialization error: {0}")]
    BsonDeserialization(Arc<bson::error::Error>),

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

    /// The pool was cleared (after a network error) while waiting, or is paused; retry.
    #[error("the connection pool for {address} was cleared; the operation may be retried")]
    PoolCleared {
        /// The server address whose pool was cleared.
        address: String,
    },

    /// The pool was closed (its client shut down) while waiting or before checking out.
    #[error("the connection pool for {address} is closed")]
    PoolClosed {
        /// The server address whose pool was closed.
        address: String,
    },

    /// No server suitable for the operation was found within `serverSelectionTimeoutMS`.
    #[error(
        "no suitable server for {operation} after {waited_ms} ms ({topology}): {}",
        describe_servers(servers)
    )]
    ServerSelection {
        /// What the server was wanted for, e.g. `a write` or `a read (secondary)`.
        operation: String,
        /// How long selection waited.
        waited_ms: u64,
        /// The deployment's type when selection gave up, e.g. `ReplicaSetNoPrimary`.
        topology: String,
        /// Every known server, and why it was unsuitable.
        servers: Vec<(String, String)>,
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

    /// A server speaks wire versions this driver cannot; no operation is attempted.
    #[error("incompatible server: {message}")]
    IncompatibleServer {
        /// Which server, and which versions.
        message: String,
    },

    /// A GridFS file is missing, incomplete or malformed, or a stream was used after
    /// closing.
    #[error("GridFS: {0}")]
    GridFs(GridFsError),

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

    /// The client was shut down; no further operations are possible.
    #[error("the client has been shut down")]
    Shutdown,

    /// The blocking call behind an async operation panicked (a `Serialize` or `Deserialize`
    /// impl, say); the panic was caught and is reported here instead of unwinding into the
    /// executor.
    #[error("the operation panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },

    /// An internal invariant was broken. Please report it.
    #[error("internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

/// What a failed bulk write did and did not do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BulkWriteFailure {
    /// Each failed write; `index` is the document's (or model's) index in the input.
    pub write_errors: Vec<WriteError>,
    /// A write concern error, if the server reported one.
    pub write_concern_error: Option<CommandError>,
    /// What succeeded before (ordered) or besides (unordered) the failures.
    pub partial_result: crate::write_results::BulkWriteResult,
}

fn describe_bulk(f: &BulkWriteFailure) -> String {
    let mut s = format!("bulk write failed: {} write error(s)", f.write_errors.len());
    if let Some(first) = f.write_errors.first() {
        s.push_str(&format!(", first: {first}"));
    }
    if let Some(wc) = &f.write_concern_error {
        s.push_str(&format!("; write concern error: {wc}"));
    }
    s
}

/// What a failed client-level bulk write did and did not do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientBulkWriteFailure {
    /// The error that stopped the bulk write (a network error, an `ok: 0` reply, a failed
    /// `getMore`), when one did; `None` when only individual writes failed.
    pub error: Option<Error>,
    /// Each failed write, by its index in the input. At most one for an ordered bulk write.
    pub write_errors: std::collections::BTreeMap<usize, WriteError>,
    /// Write concern errors, one per `bulkWrite` command that reported one.
    pub write_concern_errors: Vec<CommandError>,
    /// What succeeded, when some write is known to have: totals, and per-write results if
    /// they were asked for.
    pub partial_result: Option<crate::write_results::ClientBulkWriteResult>,
}

fn describe_client_bulk(f: &ClientBulkWriteFailure) -> String {
    let mut s = String::from("bulk write failed");
    if let Some(e) = &f.error {
        s.push_str(&format!(": {e}"));
    }
    if let Some(first) = f.write_errors.values().next() {
        s.push_str(&format!(
            "; {} write error(s), first: {first}",
            f.write_errors.len()
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

/// A server's `ok: 0` reply to a command (or the `writeConcernError` inside a reply).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandError {
    /// The numeric error code (0 when the server gave none).
    pub code: i32,
    /// The symbolic code name, e.g. `DuplicateKey` (empty when the server gave none).
    pub code_name: String,
    /// The server's message.
    pub message: String,
    /// Labels such as `RetryableWriteError`.
    pub labels: Vec<String>,
    /// The server's whole error document, for the fields beyond these (`keyPattern` and
    /// `keyValue` of a duplicate key, `errInfo` of a validation failure, ...).
    pub raw_response: Option<bson::Document>,
}

impl CommandError {
    /// Reads an error document: `code`, `codeName`, `errmsg` (or the legacy `$err`),
    /// `errorLabels`, and the document itself as `raw_response`.
    pub(crate) fn from_reply(reply: &bson::RawDocument) -> CommandError {
        CommandError {
            code: crate::wire::get_int(reply, "code").unwrap_or(0) as i32,
            code_name: reply.get_str("codeName").unwrap_or_default().to_string(),
            message: reply
                .get_str("errmsg")
                .or_else(|_| reply.get_str("$err"))
                .unwrap_or("(no message)")
                .to_string(),
            labels: crate::wire::get_strings(reply, "errorLabels"),
            raw_response: crate::wire::to_document(reply).ok(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed with code {}", self.code)?;
        if !self.code_name.is_empty() {
            write!(f, " ({})", self.code_name)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.labels.is_empty() {
            write!(f, " [labels: {}]", self.labels.join(", "))?;
        }
        Ok(())
    }
}

/// A per-document error reported inside a successful write command (`writeErrors`).
#[derive(Clone, Debug, PartialEq)]
pub struct WriteError {
    /// Index of the failed document: within the batch sent for `insert_one`, within the
    /// input for `insert_many` and `bulk_write`.
    pub index: usize,
    /// The numeric error code, e.g. 11000 for a duplicate key.
    pub code: i32,
    /// The server's message.
    pub message: String,
    /// The server's `errInfo`, when it gave one (a document validation failure explains
    /// itself there).
    pub details: Option<bson::Document>,
}

impl WriteError {
    /// Reads one entry of a reply's `writeErrors`.
    pub(crate) fn from_reply(entry: &bson::RawDocument) -> WriteError {
        WriteError {
            index: crate::wire::get_int(entry, "index").unwrap_or(0) as usize,
            code: crate::wire::get_int(entry, "code").unwrap_or(0) as i32,
            message: entry
                .get_str("errmsg")
                .unwrap_or("(no message)")
                .to_string(),
            details: entry
                .get_document("errInfo")
                .ok()
                .and_then(|d| crate::wire::to_document(d).ok()),
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write error at index {} with code {}: {}",
            self.index, self.code, self.message
        )
    }
}

impl Error {
    /// What happened.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The command that failed (e.g. `insert`), when the error came from running one.
    pub fn operation(&self) -> Option<&str> {
        self.context.as_ref().map(|c| c.0.as_str())
    }

    /// The server the failed command ran on, when the error came from running one.
    pub fn server(&self) -> Option<&str> {
        self.context.as_ref().map(|c| c.1.as_str())
    }

    /// The server's error labels (e.g. `RetryableWriteError`), for command errors (and the
    /// error that stopped a client-level bulk write).
    pub fn labels(&self) -> &[String] {
        match &*self.kind {
            ErrorKind::Command(e) | ErrorKind::WriteConcern(e) => &e.labels,
            ErrorKind::ClientBulkWrite(f) => f.error.as_ref().map_or(&[], |e| e.labels()),
            _ => &[],
        }
    }

    /// Names the operation and server (the executor does this for every error it returns).
    pub(crate) fn in_operation(mut self, operation: &str, server: impl fmt::Display) -> Self {
        if self.context.is_none() {
            self.context = Some(Box::new((operation.to_string(), server.to_string())));
        }
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

    /// The server error code, for command and write errors.
    pub fn code(&self) -> Option<i32> {
        match &*self.kind {
            ErrorKind::Command(e) | ErrorKind::WriteConcern(e) => Some(e.code),
            ErrorKind::Write(e) => Some(e.code),
            ErrorKind::BulkWrite(b) => b.write_errors.first().map(|e| e.code),
            ErrorKind::ClientBulkWrite(f) => match &f.error {
                Some(e) => e.code(),
                None => f.write_errors.values().next().map(|e| e.code),
            },
            _ => None,
        }
    }

    /// True for failures of the network or of the wire protocol: the connection involved has
    /// been closed and the operation's outcome on the server may be unknown.
    pub fn is_network_error(&self) -> bool {
        match &*self.kind {
            ErrorKind::Io { .. } | ErrorKind::Protocol { .. } | ErrorKind::Tls { .. } => true,
            ErrorKind::ClientBulkWrite(f) => f.error.as_ref().is_some_and(Error::is_network_error),
            _ => false,
        }
    }

    /// An I/O failure; one that rustls caused (it wraps its error in the `io::Error`) is a
    /// [`ErrorKind::Tls`], so the user sees what TLS objected to.
    pub(crate) fn io(address: impl fmt::Display, source: io::Error) -> Self {
        if let Some(tls) = source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            let address = address.to_string();
            let host = address.rsplit_once(':').map_or(&*address, |(h, _)| h);
            let message = describe_tls(tls, host.trim_matches(['[', ']']));
            return ErrorKind::Tls { address, message }.into();
        }
        ErrorKind::Io {
            address: address.to_string(),
            source: Arc::new(source),
        }
        .into()
    }

    pub(crate) fn protocol(address: impl fmt::Display, message: impl Into<String>) -> Self {
        ErrorKind::Protocol {
            address: address.to_string(),
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        ErrorKind::InvalidArgument {
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn invalid_uri(message: impl Into<String>) -> Self {
        ErrorKind::InvalidUri {
            message: message.into(),
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
        ErrorKind::BsonSerialization(Arc::new(e)).into()
    }

    pub(crate) fn de(e: bson::error::Error) -> Self {
        ErrorKind::BsonDeserialization(Arc::new(e)).into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
            context: None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)?;
        if let Some(c) = &self.context {
            write!(f, " (in {} on {})", c.0, c.1)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            ErrorKind::Io { source, .. } => Some(&**source),
            ErrorKind::BsonSerialization(e) | ErrorKind::BsonDeserialization(e) => Some(&**e),
            _ => None,
        }
    }
}

/// What went wrong in a GridFS operation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GridFsError {
    /// No file has this id.
    #[error("no file with id {id}")]
    FileNotFound {
        /// The id asked for.
        id: String,
    },
    /// No file has this name (`delete_by_name`, `rename_by_name`).
    #[error("no file named {filename:?}")]
    FileNameNotFound {
        /// The name asked for.
        filename: String,
    },
    /// No file has this name, or not this revision of it.
    #[error("no revision {revision} of a file named {filename:?}")]
    RevisionNotFound {
        /// The name asked for.
        filename: String,
        /// The revision asked for (0 the first, -1 the latest).
        revision: i32,
    },
    /// A chunk the file's length calls for is not there.
    #[error("file {id}: chunk {n} is missing")]
    MissingChunk {
        /// The file.
        id: String,
        /// The chunk expected next.
        n: u32,
    },
    /// A chunk holds the wrong number of bytes for its place in the file.
    #[error("file {id}: chunk {n} holds {got} bytes, {expected} expected")]
    WrongChunkSize {
        /// The file.
        id: String,
        /// The chunk.
        n: u32,
        /// What it should hold.
        expected: usize,
        /// What it holds.
        got: usize,
    },
    /// A chunk beyond the file's length, or out of order.
    #[error("file {id}: unexpected chunk {n} (expected {expected})")]
    UnexpectedChunk {
        /// The file.
        id: String,
        /// The chunk found.
        n: i64,
        /// The chunk expected.
        expected: u32,
    },
    /// The files document is not one this driver can read.
    #[error("file {id}: bad files document: {message}")]
    BadFilesDocument {
        /// The file.
        id: String,
        /// What is wrong with it.
        message: String,
    },
    /// The upload stream was already closed or aborted.
    #[error("the upload stream is already closed or aborted")]
    StreamClosed,
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
