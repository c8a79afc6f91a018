//! The smallest possible MongoDB client: one OP_MSG command over a blocking std `TcpStream`.
//!
//! This crate must not depend on the driver it helps to test, so it speaks to the server with
//! the driver's sans-IO wire codec (`may_mongo_protocol`, bytes in and bytes out) and does the
//! I/O itself: one request written, one reply read header first.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bson::{Bson, Document, doc};
use may_mongo_protocol::{
    HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder, next_request_id, to_document,
};

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

    let limits = Limits::default();
    let request_id = next_request_id();
    let mut msg = Vec::new();
    let mut builder = OpMsgBuilder::new(&mut msg, MsgFlags::default(), limits);
    builder.body(body).map_err(invalid)?;
    builder.finish(request_id, 0).map_err(invalid)?;
    stream.write_all(&msg)?;

    // The header says how long the reply is; the codec checks that length (and that this is
    // the answer to our request) before a buffer is sized from it.
    let mut reply = vec![0u8; HEADER_LEN];
    stream.read_exact(&mut reply)?;
    let header = Header::parse(&reply).map_err(invalid)?;
    header.check_reply_to(request_id).map_err(invalid)?;
    reply.resize(header.checked_len(&limits).map_err(invalid)?, 0);
    stream.read_exact(&mut reply[HEADER_LEN..])?;
    let reply = OpMsg::parse_message(&reply).map_err(invalid)?;
    to_document(reply.body).map_err(invalid)
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
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
