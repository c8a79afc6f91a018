//! Server sessions: ids the server keys state by, pooled; and a session's client-side state.
//!
//! A retryable write carries a logical session id (`lsid`) and a transaction number
//! (`txnNumber`). The server remembers, per session, the outcome of the latest transaction
//! number it applied; a retry with the same pair is answered from that record instead of being
//! applied twice. That is what makes "retry once after a network error" safe for writes: the
//! first attempt may or may not have reached the server, and the driver cannot tell.
//!
//! Sessions are cheap to make (a random UUID) and the server keeps them for
//! `logicalSessionTimeoutMinutes`, so the driver pools them as the Driver Sessions spec says:
//! last in, first out (the freshest session is reused), and a session within a minute of
//! expiring is dropped rather than reused. A session whose operation hit a network error is
//! dropped too: the server may hold it in a state the driver does not know.
//!
//! Every operation runs in a session when the deployment supports them
//! (`logicalSessionTimeoutMinutes` in its `hello`): the caller's explicit one
//! (`ClientSession`, made by `Client::start_session`), or else an *implicit* one, a pooled
//! server session borrowed for the one operation (or for a cursor's life). The executor
//! appends `lsid` to the command. What a session remembers on the client side — the newest
//! `$clusterTime` and `operationTime` it has seen, for gossip and causal consistency — is a
//! [`SessionState`], kept in a [`SessionCell`] so that an operation can borrow it for its
//! duration and put it back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bson::{Binary, Document, RawDocument, Timestamp, doc, spec::BinarySubtype};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::address::ServerAddress;
use crate::concern::{ReadConcern, WriteConcern};
use crate::selection_criteria::SelectionCriteria;

use crate::wire::{BodyField, WireError};

/// One server session: its id and the last transaction number used with it.
#[derive(Debug)]
pub(crate) struct ServerSession {
    id: [u8; 16],
    last_use: Instant,
    txn_number: i64,
    /// Set after a network error: the session is not returned to the pool.
    pub(crate) dirty: bool,
}

impl ServerSession {
    fn new() -> ServerSession {
        // A version 4 (random) UUID, as the spec asks.
        let mut id: [u8; 16] = rand::random();
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        ServerSession {
            id,
            last_use: Instant::now(),
            txn_number: 0,
            dirty: false,
        }
    }

    /// Takes the next transaction number, for a new retryable write (a retry reuses it).
    pub(crate) fn next_txn_number(&mut self) -> i64 {
        self.txn_number += 1;
        self.txn_number
    }

    /// The session's id as commands carry it: `{ id: <UUID> }`.
    pub(crate) fn lsid(&self) -> Document {
        let id = Binary {
            subtype: BinarySubtype::Uuid,
            bytes: self.id.to_vec(),
        };
        doc! { "id": id }
    }

    /// `lsid`, and `txnNumber` when given, encoded once per operation and appended to the
    /// command body on each attempt.
    pub(crate) fn fields(&self, txn_number: Option<i64>) -> Result<BodyField, WireError> {
        let mut fields = doc! { "lsid": self.lsid() };
        if let Some(n) = txn_number {
            fields.insert("txnNumber", n);
        }
        BodyField::from_fields(&fields)
    }

    fn expires_soon(&self, timeout: Duration) -> bool {
        self.last_use.elapsed() + Duration::from_secs(60) >= timeout
    }
}

/// The client's idle sessions, most recently used last.
pub(crate) struct SessionPool {
    idle: Mutex<Vec<ServerSession>>,
    /// The deployment's session timeout as last seen by `take`, in seconds (30 minutes until
    /// then): what `give_back` measures expiry against.
    timeout_secs: AtomicU64,
}

impl Default for SessionPool {
    fn default() -> SessionPool {
        SessionPool {
            idle: Mutex::new(Vec::new()),
            timeout_secs: AtomicU64::new(30 * 60),
        }
    }
}

impl SessionPool {
    /// The freshest idle session that is not about to expire, or a new one. `timeout` is the
    /// deployment's `logicalSessionTimeoutMinutes`.
    pub(crate) fn take(&self, timeout: Duration) -> ServerSession {
        self.timeout_secs
            .store(timeout.as_secs(), Ordering::Relaxed);
        let mut idle = self.idle.lock();
        while let Some(s) = idle.pop() {
            if !s.expires_soon(timeout) {
                return s;
            }
        }
        drop(idle);
        ServerSession::new()
    }

    /// Returns a session after use, unless it is dirty or about to expire. No I/O.
    pub(crate) fn give_back(&self, mut session: ServerSession) {
        let timeout = Duration::from_secs(self.timeout_secs.load(Ordering::Relaxed));
        session.last_use = Instant::now();
        if session.dirty || session.expires_soon(timeout) {
            return;
        }
        let mut idle = self.idle.lock();
        idle.retain(|s| !s.expires_soon(timeout));
        idle.push(session);
    }

    /// Empties the pool, for `endSessions` at shutdown: the ids of every idle session.
    pub(crate) fn drain(&self) -> Vec<Document> {
        self.idle.lock().drain(..).map(|s| s.lsid()).collect()
    }

    /// How many sessions are idle.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}

/// Options for `Client::start_session`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct SessionOptions {
    /// Whether reads in the session wait for the session's own earlier operations
    /// (`afterClusterTime`). Default: true.
    pub causal_consistency: Option<bool>,
    /// What each transaction started in the session uses unless it sets its own.
    pub default_transaction_options: Option<TransactionOptions>,
}

/// Options for a transaction (`session.start_transaction()`), each falling back to the
/// session's default transaction options, then to the client's.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct TransactionOptions {
    /// The read concern of every read in the transaction (sent with its first command).
    pub read_concern: Option<ReadConcern>,
    /// The write concern of the commit (and abort); operations inside send none.
    pub write_concern: Option<WriteConcern>,
    /// Where the transaction's operations go (a transaction's reads must go to the primary).
    pub selection_criteria: Option<SelectionCriteria>,
    /// `maxTimeMS` of `commitTransaction`.
    pub max_commit_time: Option<Duration>,
}

/// Where a session's transaction is (the Transactions spec's states).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum TxnState {
    /// No transaction yet.
    #[default]
    None,
    /// Started; no command sent yet (the first carries `startTransaction`).
    Starting,
    /// At least one command sent.
    InProgress,
    /// Committed (`empty`: no command was ever sent, so nothing was).
    Committed { empty: bool },
    /// Aborted.
    Aborted,
}

/// A session's transaction.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    pub(crate) state: TxnState,
    /// Its number (`txnNumber` on every command of it).
    pub(crate) number: i64,
    pub(crate) options: TransactionOptions,
    /// The mongos the transaction runs on, once its first command has picked one.
    pub(crate) pinned: Option<ServerAddress>,
    /// The newest `recoveryToken` a mongos sent, for commit and abort.
    pub(crate) recovery_token: Option<Document>,
}

impl Transaction {
    /// Whether commands run in the session are part of the transaction.
    pub(crate) fn active(&self) -> bool {
        matches!(self.state, TxnState::Starting | TxnState::InProgress)
    }
}

/// A cluster time: the logical clock of a replica set or sharded cluster, signed by the
/// server. Every reply from such a deployment carries the newest one the server knows as
/// `$clusterTime`; the driver sends the newest it has seen back with every command, which is
/// how the clock spreads between members ("gossip").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTime {
    /// The time.
    pub cluster_time: Timestamp,
    /// The server's signature over it (sent back unchanged).
    pub signature: Document,
}

impl ClusterTime {
    /// `$clusterTime` of a reply, if it has a well-formed one.
    pub(crate) fn of_reply(reply: &RawDocument) -> Option<ClusterTime> {
        let doc = reply.get_document("$clusterTime").ok()?;
        let cluster_time = doc.get_timestamp("clusterTime").ok()?;
        let signature = doc
            .get_document("signature")
            .ok()
            .and_then(|d| Document::try_from(d).ok())
            .unwrap_or_default();
        Some(ClusterTime {
            cluster_time,
            signature,
        })
    }

    /// The `$clusterTime` field of a command.
    pub(crate) fn field(&self) -> Result<BodyField, WireError> {
        BodyField::new(
            "$clusterTime",
            &doc! { "clusterTime": self.cluster_time, "signature": self.signature.clone() },
        )
    }
}

/// Orders timestamps as the server does: by seconds, then increment.
pub(crate) fn later(a: Timestamp, b: Timestamp) -> bool {
    (a.time, a.increment) > (b.time, b.increment)
}

/// What a session remembers between operations, on the client side.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The server session, taken from the pool on first use (`None` until then, and for an
    /// implicit session on a deployment without sessions).
    pub(crate) server: Option<ServerSession>,
    /// Made by `start_session` (else implicit: one operation's, or one cursor's).
    pub(crate) explicit: bool,
    /// Reads carry `afterClusterTime` = the newest `operationTime` seen.
    pub(crate) causal_consistency: bool,
    /// The newest `$clusterTime` this session has seen or been given (boxed: the state is
    /// in the frame of every operation, implicit ones included, while it waits).
    pub(crate) cluster_time: Option<Box<ClusterTime>>,
    /// The newest `operationTime` this session has seen or been given.
    pub(crate) operation_time: Option<Timestamp>,
    /// The session's transaction, once one was started (boxed: rare, and the state sits in
    /// every waiting operation's frame).
    pub(crate) transaction: Option<Box<Transaction>>,
}

impl SessionState {
    /// Learns `operationTime` and `$clusterTime` from a reply (success or error alike).
    pub(crate) fn learn(&mut self, reply: &RawDocument, cluster_time: Option<&ClusterTime>) {
        if let Some(ct) = cluster_time {
            self.advance_cluster_time(ct);
        }
        if let Ok(t) = reply.get_timestamp("operationTime") {
            self.advance_operation_time(t);
        }
    }

    /// Keeps the newer of the session's cluster time and `seen`.
    pub(crate) fn advance_cluster_time(&mut self, seen: &ClusterTime) {
        if self
            .cluster_time
            .as_ref()
            .is_none_or(|c| later(seen.cluster_time, c.cluster_time))
        {
            self.cluster_time = Some(Box::new(seen.clone()));
        }
    }

    /// Keeps the later of the session's operation time and `t`.
    pub(crate) fn advance_operation_time(&mut self, t: Timestamp) {
        if self.operation_time.is_none_or(|o| later(t, o)) {
            self.operation_time = Some(t);
        }
    }
}

/// A session's state where an operation can borrow it: `claim` takes it out for the
/// operation's duration (the operation runs with it on its own stack, no lock held across
/// I/O), and the claim's `Drop` puts it back. A second claim while one is out is refused:
/// an explicit session serves one operation at a time.
#[derive(Debug)]
pub(crate) struct SessionCell {
    /// The state; `None` only while an operation has it (boxed, so that taking it out moves
    /// a pointer: the claim lives in the operation's frame while it waits).
    state: Mutex<Option<Box<SessionState>>>,
    in_use: AtomicBool,
}

impl SessionCell {
    pub(crate) fn new(state: SessionState) -> SessionCell {
        SessionCell {
            state: Mutex::new(Some(Box::new(state))),
            in_use: AtomicBool::new(false),
        }
    }

    /// Takes the state out for one operation; `None` if another operation has it.
    pub(crate) fn claim(&self) -> Option<Claim<'_>> {
        if self.in_use.swap(true, Ordering::Acquire) {
            return None;
        }
        let state = self.state.lock().take();
        Some(Claim { cell: self, state })
    }

    /// The server session of an implicit cell (a cursor's), to return to the pool; `None`
    /// for an explicit session, which keeps its own until the `ClientSession` drops.
    pub(crate) fn take_implicit_server(&self) -> Option<ServerSession> {
        self.with(|state| (!state.explicit).then(|| state.server.take()).flatten())
    }

    /// Reads or changes the state between operations (no I/O under the lock). While an
    /// operation has it, `f` sees a default state (and its changes are lost): callers use
    /// this only when no operation can be running.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> R {
        match &mut *self.state.lock() {
            Some(state) => f(state),
            None => f(&mut SessionState::default()),
        }
    }
}

/// A session's state, borrowed by one operation (see [`SessionCell::claim`]).
pub(crate) struct Claim<'a> {
    cell: &'a SessionCell,
    /// Always `Some` until the claim drops.
    state: Option<Box<SessionState>>,
}

impl Claim<'_> {
    pub(crate) fn state(&mut self) -> &mut SessionState {
        self.state.as_mut().expect("held until drop")
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        *self.cell.state.lock() = self.state.take();
        self.cell.in_use.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_reused_last_in_first_out_and_dirty_ones_dropped() {
        let pool = SessionPool::default();
        let timeout = Duration::from_secs(30 * 60);
        let mut a = pool.take(timeout);
        assert_eq!(a.next_txn_number(), 1);
        assert_eq!(a.next_txn_number(), 2);
        let a_id = a.id;
        let b = pool.take(timeout);
        assert_ne!(a_id, b.id);
        assert_eq!(a_id[6] >> 4, 4, "a version 4 UUID");
        let b_id = b.id;
        pool.give_back(a);
        pool.give_back(b);
        // Last in, first out; the transaction number carries on.
        let mut again = pool.take(timeout);
        assert_eq!(again.id, b_id);
        let mut first = pool.take(timeout);
        assert_eq!(first.id, a_id);
        assert_eq!(first.next_txn_number(), 3);
        again.dirty = true;
        pool.give_back(again);
        assert_eq!(pool.idle(), 0, "a dirty session is dropped");
        // A session within a minute of the server's timeout is not reused.
        // (the pool learns the timeout from `take`)
        let _short = pool.take(Duration::from_secs(30));
        pool.give_back(first);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn fields_are_lsid_and_txn_number() {
        let s = ServerSession::new();
        let field = s.fields(Some(7)).unwrap();
        let mut out = Vec::new();
        let mut b = crate::wire::OpMsgBuilder::new(
            &mut out,
            crate::wire::MsgFlags::default(),
            crate::wire::Limits::default(),
        );
        b.body(&doc! { "insert": "c" }).unwrap();
        b.append_to_body(&field).unwrap();
        b.finish(1, 0).unwrap();
        let msg = crate::wire::OpMsg::parse_message(&out).unwrap();
        let body = crate::decode::to_document(msg.body).unwrap();
        assert_eq!(body.get_i64("txnNumber").unwrap(), 7);
        match body.get_document("lsid").unwrap().get("id").unwrap() {
            bson::Bson::Binary(b) => {
                assert_eq!(b.subtype, BinarySubtype::Uuid);
                assert_eq!(b.bytes, s.id.to_vec());
            }
            other => panic!("lsid.id is {other:?}"),
        }
    }
}
