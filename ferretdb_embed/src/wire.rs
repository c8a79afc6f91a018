//! The smallest possible MongoDB client: one OP_MSG command over a blocking std `TcpStream`.
//!
//! This crate must not depend on the driver it helps to test, so readiness is checked with a hand-framed
//! OP_MSG whose body is serialized by the `bson` crate.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bson::{Bson, Document, doc};

const OP_MSG: i32 = 2013;

static REQUEST_ID: AtomicI32 = AtomicI32::new(1);

/// Sends `{<greeting>: 1, $db: "admin"}` (`hello`, or `isMaster` for a server that has no
/// `hello`) and returns the reply if it has `ok: 1`.
pub(crate) fn greet(addr: SocketAddr, greeting: &str, timeout: Duration) -> io::Result<Document> {
    let reply = command(addr, &doc! { greeting: 1, "$db": "admin" }, timeout)?;
    if ok_is_one(&reply) {
        Ok(reply)
    } else {
        Err(io::Error::other(format!(
            "{greeting} did not return ok: 1: {reply}"
        )))
    }
}

/// Runs one command (the body must carry `$db`) on a fresh connection and returns the reply body.
pub(crate) fn command(
    addr: SocketAddr,
    body: &Document,
    timeout: Duration,
) -> io::Result<Document> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;

    let body = body.to_vec().map_err(io::Error::other)?;
    let len = 16 + 4 + 1 + body.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as i32).to_le_bytes()); // messageLength
    msg.extend_from_slice(&REQUEST_ID.fetch_add(1, Ordering::Relaxed).to_le_bytes()); // requestID
    msg.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    msg.extend_from_slice(&OP_MSG.to_le_bytes()); // opCode
    msg.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    msg.push(0); // section kind 0: the body document
    msg.extend_from_slice(&body);
    stream.write_all(&msg)?;

    let mut header = [0u8; 16];
    stream.read_exact(&mut header)?;
    let reply_len = i32::from_le_bytes(header[0..4].try_into().unwrap());
    let op_code = i32::from_le_bytes(header[12..16].try_into().unwrap());
    if op_code != OP_MSG || !(21..=48 * 1024 * 1024).contains(&reply_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply header: length {reply_len}, opCode {op_code}"),
        ));
    }
    let mut rest = vec![0u8; reply_len as usize - 16];
    stream.read_exact(&mut rest)?;
    // rest = flagBits (4) + kind byte (1) + document (+ optional checksum, ignored).
    if rest[4] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reply starts with section kind {}, expected 0", rest[4]),
        ));
    }
    Document::from_reader(&rest[5..]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `ok` may come back as a double, an int32 or an int64 depending on the server.
pub(crate) fn ok_is_one(reply: &Document) -> bool {
    match reply.get("ok") {
        Some(Bson::Double(v)) => *v == 1.0,
        Some(Bson::Int32(v)) => *v == 1,
        Some(Bson::Int64(v)) => *v == 1,
        Some(Bson::Boolean(v)) => *v,
        _ => false,
    }
}
