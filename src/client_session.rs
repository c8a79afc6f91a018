//! Explicit sessions: `client.start_session().run()?`, then `.session(&mut session)` on any
//! operation.
//!
//! A session is the server's unit of causal order and of transactions. Every operation runs
//! in one: without `.session(..)` the driver lends it an *implicit* session from its pool for
//! that operation (or for a cursor's life) and takes it back. An explicit [`ClientSession`]
//! keeps one server session for as long as the caller holds it, and remembers what the
//! server said about time: the newest `$clusterTime` (sent back with every command) and
//! `operationTime` (with causal consistency, on by default, each read waits until the
//! server has caught up with it: `readConcern.afterClusterTime`). So in a replica set a read
//! from a secondary sees the session's own earlier writes.
//!
//! **One operation at a time.** Operations take `&mut ClientSession`, so in blocking code
//! the compiler already allows only one at a time. Across coroutines, or through the async
//! façade (whose futures run detached), a second operation started while one is in flight
//! gets [`ErrorKind::InvalidArgument`](crate::ErrorKind::InvalidArgument) ("in use by another
//! operation") rather than interleaving on the server's session.
//!
//! A session is cheap: a 16-byte id. Dropping it returns the server session to the pool (no
//! I/O); `Client::shutdown` tells the server to end every pooled one (`endSessions`).

use std::sync::Arc;
use std::time::Duration;

use bson::{Document, Timestamp};

use bson::doc;

use crate::client::Client;
use crate::concern::WriteConcern;
use crate::error::{Error, ErrorKind, Result};
use crate::session::{ClusterTime, SessionCell, SessionOptions, SessionState};
use crate::session::{Transaction, TxnState};

impl ClientSession {
    /// Starts a session on `client`: [`ErrorKind::SessionsNotSupported`] if the deployment has
    /// none. Waits, as a server selection does, until the deployment says.
    pub(crate) fn start(client: &Client, options: Option<SessionOptions>) -> Result<ClientSession> {
        let Some(minutes) = client.session_timeout_minutes()? else {
            return Err(ErrorKind::SessionsNotSupported.into());
        };
        let server = client.take_session(Duration::from_secs(minutes.max(0) as u64 * 60));
        let id = server.lsid();
        let state = SessionState {
            server: Some(server),
            explicit: true,
            causal_consistency: options
                .as_ref()
                .and_then(|o| o.causal_consistency)
                .unwrap_or(true),
            ..Default::default()
        };
        Ok(ClientSession {
            client: client.clone(),
            cell: Arc::new(SessionCell::new(state)),
            options,
            id,
        })
    }
}

/// An explicit session. Made by `Client::start_session`; see the module docs above.
pub struct ClientSession {
    pub(crate) client: Client,
    pub(crate) cell: Arc<SessionCell>,
    pub(crate) options: Option<SessionOptions>,
    id: Document,
}

impl ClientSession {
    /// The client the session belongs to.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The session's id as commands carry it: `{ id: <UUID> }`.
    pub fn id(&self) -> &Document {
        &self.id
    }

    /// The options the session was started with.
    pub fn options(&self) -> Option<&SessionOptions> {
        self.options.as_ref()
    }

    /// The newest cluster time the session has seen or been given. A copy: the state lives
    /// where an operation in flight can update it.
    pub fn cluster_time(&self) -> Option<ClusterTime> {
        self.cell.with(|s| s.cluster_time.as_deref().cloned())
    }

    /// The newest operation time the session has seen or been given.
    pub fn operation_time(&self) -> Option<Timestamp> {
        self.cell.with(|s| s.operation_time)
    }

    /// Moves the session's cluster time forward to `to` (never back): to make this session
    /// causally follow another, give it the other's cluster and operation times.
    pub fn advance_cluster_time(&mut self, to: &ClusterTime) {
        self.cell.with(|s| s.advance_cluster_time(to));
    }

    /// Moves the session's operation time forward to `ts` (never back).
    pub fn advance_operation_time(&mut self, ts: Timestamp) {
        self.cell.with(|s| s.advance_operation_time(ts));
    }

    /// True after the session's server session has been marked dirty by a network error
    /// (it will not go back to the pool).
    pub fn is_dirty(&self) -> bool {
        self.cell
            .with(|s| s.server.as_ref().is_some_and(|s| s.dirty))
    }
}

impl Drop for ClientSession {
    /// Returns the server session to the pool (no I/O). A transaction still in progress is
    /// aborted first, by the client's background task: a `Drop` must not do I/O.
    fn drop(&mut self) {
        let active = self
            .cell
            .with(|s| s.transaction.as_ref().is_some_and(|t| t.active()));
        if active {
            let cell = self.cell.clone();
            self.client.queue_cleanup(Box::new(move |client| {
                let _ = end_transaction(client, &cell, End::Abort);
                if let Some(server) = cell.with(|s| s.server.take()) {
                    client.give_back_session(server);
                }
            }));
            return;
        }
        if let Some(server) = self.cell.with(|s| s.server.take()) {
            self.client.give_back_session(server);
        }
    }
}

/// How a transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Commit,
    Abort,
}

/// Sends `commitTransaction` or `abortTransaction` for the session in `cell`, retried once
/// after a retryable error as a retryable write is (the Transactions spec). A commit sent
/// again — a retry, or the caller committing twice — asks for `w: "majority"` with a 10 s
/// `wtimeout`, so that a commit that may have been applied is made durable, not re-applied.
pub(crate) fn end_transaction(client: &Client, cell: &Arc<SessionCell>, end: End) -> Result<()> {
    let (name, mut again) = match end {
        End::Commit => (
            "commitTransaction",
            cell.with(|s| {
                s.transaction
                    .as_ref()
                    .is_some_and(|t| matches!(t.state, TxnState::Committed { .. }))
            }),
        ),
        End::Abort => ("abortTransaction", false),
    };
    let mut first_error = None;
    for attempt in 0..2 {
        let body = cell.with(|s| {
            let t = s
                .transaction
                .as_deref()
                .expect("ended only when there is one");
            end_command(name, t, again)
        });
        let mut op = crate::ops::Command::write(name, "admin", body, |_| Ok(()));
        let route =
            crate::client::Route::selected(client.options().timeout).in_session(Some(cell.clone()));
        match client.execute(&mut op, route) {
            Ok(_) => return Ok(()),
            Err(e) if attempt == 0 && retryable(&e) => {
                first_error = Some(e);
                again = true;
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_error.expect("set before a second attempt"))
}

/// A failure after which `commitTransaction` / `abortTransaction` is sent once more.
fn retryable(e: &Error) -> bool {
    crate::retry::is_network_or_pool_cleared(e)
        || crate::retry::is_retryable_write_error(e, i32::MAX)
        || matches!(*e.kind, ErrorKind::ServerSelection { .. })
}

/// The body of `commitTransaction` / `abortTransaction` (the executor adds `lsid`,
/// `txnNumber` and `autocommit`).
fn end_command(name: &str, t: &Transaction, again: bool) -> Document {
    let mut body = doc! { name: 1 };
    let mut wc = t.options.write_concern.clone();
    if name == "commitTransaction" && again {
        let mut majority = wc.unwrap_or_default();
        majority.w = Some(crate::concern::Acknowledgment::Majority);
        majority.w_timeout.get_or_insert(Duration::from_secs(10));
        wc = Some(majority);
    }
    if let Some(field) = wc.as_ref().and_then(WriteConcern::command_field) {
        body.insert("writeConcern", field);
    }
    if name == "commitTransaction"
        && let Some(max) = t.options.max_commit_time
    {
        body.insert("maxTimeMS", max.as_millis() as i64);
    }
    if let Some(token) = &t.recovery_token {
        body.insert("recoveryToken", token.clone());
    }
    body
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("id", &self.id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
