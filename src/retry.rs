//! Which failures are worth one more attempt, after the Retryable Reads and Retryable Writes
//! specs. Sans-IO: the executor ([`crate::Client`]) asks, and does the retrying.
//!
//! The rule for both: an operation is retried **once**, on a server selected afresh (after the
//! SDAM error rules have had their say, so a primary that stepped down is no longer chosen),
//! when the first attempt failed in a way that says "the server could not do it now" rather
//! than "it cannot be done":
//!
//! - a network error (the connection broke or timed out: the outcome is unknown);
//! - a check-out that failed before anything was sent (the pool was cleared under it, or a new
//!   connection could not be opened);
//! - a server error saying it is not (or no longer) the primary, is shutting down or
//!   recovering, or an interrupted operation — the codes below, or the `RetryableWriteError`
//!   label that servers from 4.4 on attach themselves.
//!
//! Writes are retried only where the server can recognise a repeat: it must support sessions
//! and be a replica set member or mongos (a standalone does not record transaction numbers), so
//! the retry carries the same `lsid` and `txnNumber` and is applied at most once.

use crate::error::{Error, ErrorKind, NO_WRITES_PERFORMED, RETRYABLE_WRITE_ERROR, WriteFailure};

/// What kind of retry an operation allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Not retryable (getMore, a multi-document update or delete, `run_command`, ...).
    No,
    /// A retryable read: find, aggregate without `$out`/`$merge`, count, distinct, the list
    /// commands.
    Read,
    /// A retryable write: one statement (or a batch of inserts) that the server can
    /// de-duplicate by transaction number.
    Write,
}

/// The state-change and interruption codes both specs retry on.
const RETRYABLE_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// ReadConcernMajorityNotAvailableYet: retryable for reads only.
const READ_ONLY_RETRYABLE_CODE: i32 = 134;

/// Wire version 9 is MongoDB 4.4: from it on, servers label retryable write errors.
const LABELS_FROM_WIRE: i32 = 9;

/// A network error, or a pool cleared under the caller: retryable at any stage. A check-out
/// that failed this way sent nothing, so trying again is always safe.
pub(crate) fn is_network_or_pool_cleared(e: &Error) -> bool {
    matches!(*e.kind, ErrorKind::ConnectionPoolCleared { .. }) || e.is_network_error()
}

/// A read that failed with `e` may be retried.
pub(crate) fn is_retryable_read_error(e: &Error) -> bool {
    is_network_or_pool_cleared(e)
        || matches!(&*e.kind, ErrorKind::Command(c)
            if RETRYABLE_CODES.contains(&c.code) || c.code == READ_ONLY_RETRYABLE_CODE)
}

/// A write that failed with `e` on a server of wire version `max_wire` may be retried (it
/// carried a transaction number).
pub(crate) fn is_retryable_write_error(e: &Error, max_wire: i32) -> bool {
    if is_network_or_pool_cleared(e) {
        return true;
    }
    if e.contains_label(RETRYABLE_WRITE_ERROR) {
        return true;
    }
    // Older servers do not label: judge by the code (of the error, or of the write concern
    // error a write was acknowledged with).
    max_wire < LABELS_FROM_WIRE
        && match &*e.kind {
            ErrorKind::Command(c) => RETRYABLE_CODES.contains(&c.code),
            ErrorKind::Write(WriteFailure::WriteConcernError(c)) => {
                RETRYABLE_CODES.contains(&c.code)
            }
            _ => false,
        }
}

/// True when the retry's error says it wrote nothing, so the first error stands.
pub(crate) fn wrote_nothing(e: &Error) -> bool {
    e.contains_label(NO_WRITES_PERFORMED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(code: i32, labels: &[&str]) -> Error {
        let mut reply = bson::rawdoc! { "ok": 0, "code": code };
        let mut array = bson::RawArrayBuf::new();
        for l in labels {
            array.push(*l);
        }
        reply.append(bson::cstr!("errorLabels"), array);
        Error::from_command_reply(&reply)
    }

    #[test]
    fn reads_retry_on_network_errors_and_state_changes_only() {
        let io = Error::io(
            "h:1",
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"),
        );
        assert!(is_retryable_read_error(&io));
        assert!(is_retryable_read_error(&command(10107, &[])));
        assert!(is_retryable_read_error(&command(134, &[])));
        assert!(!is_retryable_read_error(&command(11000, &[])));
        assert!(!is_retryable_read_error(&command(2, &[])));
        let cleared = Error::pool_cleared("h:1");
        assert!(is_retryable_read_error(&cleared));
    }

    #[test]
    fn writes_follow_labels_from_4_4_and_codes_before() {
        // 4.4+: the label decides, whatever the code.
        assert!(is_retryable_write_error(
            &command(10107, &[RETRYABLE_WRITE_ERROR]),
            21
        ));
        assert!(!is_retryable_write_error(&command(10107, &[]), 21));
        assert!(is_retryable_write_error(
            &command(1, &[RETRYABLE_WRITE_ERROR]),
            21
        ));
        // Before 4.4: the code.
        assert!(is_retryable_write_error(&command(10107, &[]), 8));
        assert!(!is_retryable_write_error(&command(134, &[]), 8));
        assert!(!is_retryable_write_error(&command(11000, &[]), 8));
        assert!(wrote_nothing(&command(91, &[NO_WRITES_PERFORMED])));
    }
}
