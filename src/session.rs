//! Server sessions, for retryable writes.
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
//! Only retryable writes use sessions here (the driver has no explicit session API yet), so an
//! ordinary operation pays nothing for them.

use std::time::{Duration, Instant};

use bson::{Binary, doc, spec::BinarySubtype};
use parking_lot::Mutex;

use crate::wire::{BodyField, WireError};

/// One server session: its id and the last transaction number used with it.
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

    /// `lsid` and `txnNumber`, encoded once per write and appended to the command body on
    /// each attempt.
    pub(crate) fn fields(&self, txn_number: i64) -> Result<BodyField, WireError> {
        let id = Binary {
            subtype: BinarySubtype::Uuid,
            bytes: self.id.to_vec(),
        };
        BodyField::from_fields(&doc! { "lsid": { "id": id }, "txnNumber": txn_number })
    }

    fn expires_soon(&self, timeout: Duration) -> bool {
        self.last_use.elapsed() + Duration::from_secs(60) >= timeout
    }
}

/// The client's idle sessions, most recently used last.
#[derive(Default)]
pub(crate) struct SessionPool {
    idle: Mutex<Vec<ServerSession>>,
}

impl SessionPool {
    /// The freshest idle session that is not about to expire, or a new one. `timeout` is the
    /// deployment's `logicalSessionTimeoutMinutes`.
    pub(crate) fn take(&self, timeout: Duration) -> ServerSession {
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
    pub(crate) fn give_back(&self, mut session: ServerSession, timeout: Duration) {
        session.last_use = Instant::now();
        if session.dirty || session.expires_soon(timeout) {
            return;
        }
        let mut idle = self.idle.lock();
        idle.retain(|s| !s.expires_soon(timeout));
        idle.push(session);
    }

    /// How many sessions are idle (for tests).
    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().len()
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
        pool.give_back(a, timeout);
        pool.give_back(b, timeout);
        // Last in, first out; the transaction number carries on.
        let mut again = pool.take(timeout);
        assert_eq!(again.id, b_id);
        let mut first = pool.take(timeout);
        assert_eq!(first.id, a_id);
        assert_eq!(first.next_txn_number(), 3);
        again.dirty = true;
        pool.give_back(again, timeout);
        assert_eq!(pool.idle(), 0, "a dirty session is dropped");
        // A session within a minute of the server's timeout is not reused.
        pool.give_back(first, Duration::from_secs(30));
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn fields_are_lsid_and_txn_number() {
        let s = ServerSession::new();
        let field = s.fields(7).unwrap();
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
