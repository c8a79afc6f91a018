//! Transactions: `session.start_transaction()`, `commit_transaction()`,
//! `abort_transaction()`, and `start_transaction().and_run(callback)`, the Convenient
//! Transactions API (`with_transaction`).
//!
//! A transaction lives in its session. `start_transaction` only changes the session's state;
//! the first operation run in the session then carries `startTransaction: true` and the
//! transaction's read concern, and every operation of it `txnNumber` and `autocommit: false`
//! (the executor adds them). Operations inside send no write concern: the commit's applies to
//! all of them. In a sharded cluster the first operation pins the transaction to its mongos.
//!
//! `and_run` runs a plain closure — blocking-style code, so it can run in a coroutine — and
//! retries the whole transaction while it fails with `TransientTransactionError`, and the
//! commit while it fails with `UnknownTransactionCommitResult`, for up to 120 seconds.

use std::time::{Duration, Instant};

use crate::client_session::{ClientSession, End, end_transaction};
use crate::concern::{ReadConcern, WriteConcern};
use crate::error::{
    Error, ErrorKind, Result, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
use crate::selection_criteria::SelectionCriteria;
use crate::session::{Transaction, TransactionOptions, TxnState};
use crate::topology::TopologyType;

use super::option_setters;

/// How long `and_run` keeps retrying (the Convenient API spec's 120 seconds).
const WITH_TRANSACTION_LIMIT: Duration = Duration::from_secs(120);

impl ClientSession {
    /// Starts a transaction in this session; [`run`](StartTransaction::run) starts it, and
    /// [`and_run`](StartTransaction::and_run) runs a closure in it and commits, with retries.
    /// Options not set here come from the session's default transaction options, then from
    /// the client.
    pub fn start_transaction(&mut self) -> StartTransaction<'_> {
        StartTransaction {
            session: self,
            options: None,
        }
    }

    /// Commits the transaction in progress. An error labelled
    /// `UnknownTransactionCommitResult` says the commit may or may not have been applied:
    /// committing again is safe.
    pub fn commit_transaction(&mut self) -> CommitTransaction<'_> {
        CommitTransaction { session: self }
    }

    /// Aborts the transaction in progress (a session dropped with one in progress aborts it
    /// in the background).
    pub fn abort_transaction(&mut self) -> AbortTransaction<'_> {
        AbortTransaction { session: self }
    }

    /// The state of the session's transaction.
    fn transaction_state(&self) -> TxnState {
        self.cell
            .with(|s| s.transaction.as_ref().map_or(TxnState::None, |t| t.state))
    }
}

/// Starts a transaction. Made by [`ClientSession::start_transaction`].
#[must_use = "nothing happens until .run() or .and_run()"]
pub struct StartTransaction<'a> {
    pub(crate) session: &'a mut ClientSession,
    pub(crate) options: Option<TransactionOptions>,
}

impl StartTransaction<'_> {
    option_setters!(TransactionOptions {
        read_concern: plain ReadConcern,
        write_concern: plain WriteConcern,
        selection_criteria: plain SelectionCriteria,
        max_commit_time: plain Duration,
    });

    /// Starts the transaction (no I/O: the first operation in the session carries it).
    pub fn run(self) -> Result<()> {
        start(self.session, self.options)
    }

    /// Runs `callback` in a transaction and commits it, retrying as the Convenient
    /// Transactions API says: the whole transaction again while an error carries
    /// `TransientTransactionError`, the commit again while it fails with
    /// `UnknownTransactionCommitResult`, for at most 120 seconds. An error the callback
    /// returns aborts the transaction and is returned (after any retry). The callback must
    /// return the errors of the operations it runs: swallowing one would hide an aborted
    /// transaction.
    pub fn and_run<R, F>(self, mut callback: F) -> Result<R>
    where
        F: FnMut(&mut ClientSession) -> Result<R>,
    {
        let session = self.session;
        let options = self.options;
        let started = Instant::now();
        let in_time = || started.elapsed() < WITH_TRANSACTION_LIMIT;
        'transaction: loop {
            start(session, options.clone())?;
            let value = match callback(session) {
                Ok(value) => value,
                Err(e) => {
                    if matches!(
                        session.transaction_state(),
                        TxnState::Starting | TxnState::InProgress
                    ) {
                        let _ = session.abort_transaction().run();
                    }
                    if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && in_time() {
                        continue 'transaction;
                    }
                    return Err(e);
                }
            };
            // The callback may have ended the transaction itself.
            if matches!(
                session.transaction_state(),
                TxnState::None | TxnState::Aborted | TxnState::Committed { .. }
            ) {
                return Ok(value);
            }
            loop {
                match session.commit_transaction().run() {
                    Ok(()) => return Ok(value),
                    Err(e)
                        if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                            && !is_max_time_expired(&e)
                            && in_time() =>
                    {
                        continue;
                    }
                    Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && in_time() => {
                        continue 'transaction;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Starts a transaction in `session`: checks the state and the deployment, takes the next
/// transaction number, and settles the options.
fn start(session: &mut ClientSession, options: Option<TransactionOptions>) -> Result<()> {
    let topology = session.client.topology();
    let standalone = topology.topology_type == TopologyType::Single
        && topology
            .servers
            .values()
            .any(|s| s.server_type == crate::ServerType::Standalone);
    if standalone {
        return Err(Error::transaction(
            "transactions need a replica set or a sharded cluster; this deployment is a standalone server",
        ));
    }
    let defaults = session
        .options
        .as_ref()
        .and_then(|o| o.default_transaction_options.clone())
        .unwrap_or_default();
    let own = options.unwrap_or_default();
    let client = session.client.options();
    let options = TransactionOptions {
        read_concern: own
            .read_concern
            .or(defaults.read_concern)
            .or_else(|| client.read_concern.clone()),
        write_concern: own
            .write_concern
            .or(defaults.write_concern)
            .or_else(|| client.write_concern.clone()),
        selection_criteria: own
            .selection_criteria
            .or(defaults.selection_criteria)
            .or_else(|| client.selection_criteria.clone()),
        max_commit_time: own.max_commit_time.or(defaults.max_commit_time),
    };
    if options
        .write_concern
        .as_ref()
        .is_some_and(|wc| !wc.is_acknowledged())
    {
        return Err(Error::transaction(
            "transactions do not support an unacknowledged write concern",
        ));
    }
    session.cell.with(|state| {
        if state.transaction.as_ref().is_some_and(|t| t.active()) {
            return Err(Error::transaction("a transaction is already in progress"));
        }
        let Some(server) = state.server.as_mut() else {
            return Err(ErrorKind::SessionsNotSupported.into());
        };
        let number = server.next_txn_number();
        state.transaction = Some(Box::new(Transaction {
            state: TxnState::Starting,
            number,
            options,
            pinned: None,
            recovery_token: None,
        }));
        Ok(())
    })
}

fn is_max_time_expired(e: &Error) -> bool {
    e.code() == Some(50)
}

/// Commits a transaction. Made by [`ClientSession::commit_transaction`].
#[must_use = "nothing is sent until .run()"]
pub struct CommitTransaction<'a> {
    pub(crate) session: &'a mut ClientSession,
}

impl CommitTransaction<'_> {
    /// Sends `commitTransaction` (none for a transaction that ran no operation).
    pub fn run(self) -> Result<()> {
        let session = self.session;
        match session.transaction_state() {
            TxnState::None => return Err(Error::transaction("no transaction started")),
            TxnState::Aborted => {
                return Err(Error::transaction(
                    "cannot call commitTransaction after calling abortTransaction",
                ));
            }
            TxnState::Starting | TxnState::Committed { empty: true } => {
                set_state(session, TxnState::Committed { empty: true });
                return Ok(());
            }
            TxnState::InProgress | TxnState::Committed { empty: false } => {}
        }
        let sent = end_transaction(&session.client, &session.cell, End::Commit);
        set_state(session, TxnState::Committed { empty: false });
        sent.map_err(commit_error)
    }
}

/// Labels a failed commit as the Transactions spec says: a commit whose outcome the driver
/// cannot know (a network or selection error, a retryable error, a timeout, a write concern
/// failure) is `UnknownTransactionCommitResult`, never transient.
fn commit_error(mut e: Error) -> Error {
    let write_concern_failed = matches!(
        &*e.kind,
        ErrorKind::Write(crate::error::WriteFailure::WriteConcernError(wc))
            if wc.code != 100 && wc.code != 79
    );
    let unknown = e.is_network_error()
        || matches!(*e.kind, ErrorKind::ServerSelection { .. })
        || crate::retry::is_retryable_write_error(&e, i32::MAX)
        || is_max_time_expired(&e)
        || write_concern_failed;
    if unknown {
        e.remove_label(TRANSIENT_TRANSACTION_ERROR);
        e.add_label(UNKNOWN_TRANSACTION_COMMIT_RESULT);
    }
    e
}

fn set_state(session: &ClientSession, to: TxnState) {
    session.cell.with(|s| {
        if let Some(t) = s.transaction.as_mut() {
            t.state = to;
            if to == TxnState::Aborted {
                t.pinned = None;
            }
        }
    });
}

/// Aborts a transaction. Made by [`ClientSession::abort_transaction`].
#[must_use = "nothing is sent until .run()"]
pub struct AbortTransaction<'a> {
    pub(crate) session: &'a mut ClientSession,
}

impl AbortTransaction<'_> {
    /// Sends `abortTransaction` (none for a transaction that ran no operation). The
    /// server's answer is not reported: the transaction is over either way (the server
    /// aborts it by itself after `transactionLifetimeLimitSeconds`).
    pub fn run(self) -> Result<()> {
        let session = self.session;
        match session.transaction_state() {
            TxnState::None => return Err(Error::transaction("no transaction started")),
            TxnState::Committed { .. } => {
                return Err(Error::transaction(
                    "cannot call abortTransaction after calling commitTransaction",
                ));
            }
            TxnState::Aborted => {
                return Err(Error::transaction("cannot call abortTransaction twice"));
            }
            TxnState::Starting => {}
            TxnState::InProgress => {
                let _ = end_transaction(&session.client, &session.cell, End::Abort);
            }
        }
        set_state(session, TxnState::Aborted);
        Ok(())
    }
}
