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

use crate::client::Client;
use crate::error::{ErrorKind, Result};
use crate::session::{ClusterTime, SessionCell, SessionOptions, SessionState};

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
    client: Client,
    pub(crate) cell: Arc<SessionCell>,
    options: Option<SessionOptions>,
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
    /// Returns the server session to the pool (no I/O).
    fn drop(&mut self) {
        if let Some(server) = self.cell.with(|s| s.server.take()) {
            self.client.give_back_session(server);
        }
    }
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("id", &self.id)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
