//! MongoDB's wire protocol, sans-IO: the message codec under the `may_mongo` driver, as
//! `postgres-protocol` is under `rust-postgres`.
//!
//! This crate turns commands into the bytes a MongoDB server reads, and the bytes it answers
//! with back into documents. It is a building block: the driver's connections use it, and so
//! do the project's test servers and tools. Most programs want the driver, not this crate.
//!
//! # What is in it
//!
//! - [`OpMsgBuilder`] and [`OpMsg`]: OP_MSG (opcode 2013), the message every command travels
//!   in since MongoDB 3.6 — flag bits, the body, document sequences (kind 1), the CRC-32C
//!   checksum.
//! - [`encode_op_query`] and [`OpReply`]: the legacy OP_QUERY/OP_REPLY pair, kept for the
//!   `isMaster` handshake with servers that have no `hello`; [`OpQuery`] and
//!   [`encode_op_reply`] are their server side.
//! - [`Header`], [`OpCode`], [`HEADER_LEN`]: the 16-byte header of every message, and
//!   [`Header::checked_len`], the check that stands between a length read from the network and
//!   a buffer sized from it.
//! - [`compress_message`], [`decompress_message`], [`Codec`], [`Compressor`]: OP_COMPRESSED
//!   with snappy, zlib and zstd.
//! - [`to_document`], [`to_bson`], [`check_depth`]: raw BSON into `Document` and `Bson`, and
//!   the depth check, without recursion (so a deep reply cannot overflow a small coroutine
//!   stack); [`get_int`] and [`get_strings`]: reading a reply's loosely typed fields.
//! - [`Limits`] (the sizes a server accepts), [`WireError`], [`next_request_id`].
//!
//! # Why sans-IO
//!
//! Nothing here touches a socket: encoders append a complete message to a caller's
//! `Vec<u8>` (so a connection can reuse one buffer for every request) and decoders borrow from
//! a caller's byte slice (so a reply is read lazily, in place, without decoding every field).
//! Bytes in, bytes out. How the bytes travel — a may coroutine that parks on `EAGAIN`, an OS
//! thread that blocks, TLS or not, with which timeouts — is the caller's business, so one
//! codec serves every way of moving them, and every rule of the protocol can be tested
//! without a server.
//!
//! The compiler keeps it that way. The crate's only dependencies are `bson`, `serde`,
//! `crc32c`, `snap`, `flate2`, `zstd` and `thiserror`: no may, no socket2, and nothing here
//! uses `std::net`. And since the driver depends on this crate, this crate cannot name the
//! driver: no layer above can leak down into it. (`scripts/layers` and
//! `cargo tree -p may_mongo_protocol` show both.)
//!
//! # Who uses it
//!
//! - The driver, as `crate::wire`: a connection frames each request with [`OpMsgBuilder`],
//!   reads a reply's header, checks its length with [`Header::checked_len`], reads that many
//!   bytes, unwraps compression and parses with [`OpMsg::parse_message`]; the error type and
//!   the decoder read replies with [`get_int`] and [`to_document`]. Both of its cores (may
//!   coroutines, OS threads) share this code.
//! - `ferretdb_embed`, which waits for a test server to be ready with one `hello` over a
//!   blocking std `TcpStream`, built and parsed with this crate.
//! - The server side: the driver's scripted test servers, its fuzz targets, the benchmark's
//!   canned-reply server.
//!
//! A request and its reply, with the I/O left out:
//!
//! ```
//! use may_mongo_protocol::{HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder};
//!
//! // The client encodes a command...
//! let limits = Limits::default();
//! let mut request = Vec::new();
//! let mut b = OpMsgBuilder::new(&mut request, MsgFlags::default(), limits);
//! b.body(&bson::doc! { "ping": 1, "$db": "admin" }).unwrap();
//! b.finish(7, 0).unwrap();
//!
//! // ...the server reads the header first, then as many bytes as it declares...
//! let header = Header::parse(&request[..HEADER_LEN]).unwrap();
//! assert_eq!(header.checked_len(&limits).unwrap(), request.len());
//! let command = OpMsg::parse_message(&request).unwrap();
//! assert_eq!(command.body.get_str("$db").unwrap(), "admin");
//!
//! // ...and answers; the client checks the reply answers its request.
//! let mut reply = Vec::new();
//! let mut b = OpMsgBuilder::new(&mut reply, MsgFlags::default(), limits);
//! b.body(&bson::doc! { "ok": 1.0 }).unwrap();
//! b.finish(8, header.request_id).unwrap();
//! Header::parse(&reply).unwrap().check_reply_to(7).unwrap();
//! assert_eq!(OpMsg::parse_message(&reply).unwrap().body.get_f64("ok").unwrap(), 1.0);
//! ```
//!
//! # Lengths
//!
//! Every length read from the network is checked before it is used: a truncated, oversized,
//! negative or inconsistent length is a [`WireError`], never a panic and never a large
//! allocation. The caller decides the size ceiling ([`Limits`]), normally the server's
//! `maxMessageSizeBytes` from the handshake.
//!
//! Layout of every message (all integers little-endian):
//! ```text
//! | messageLength i32 | requestID i32 | responseTo i32 | opCode i32 | payload ... |
//! ```

mod compression;
mod document;
mod fields;
mod header;
mod legacy;
mod op_msg;

use std::sync::atomic::{AtomicI32, Ordering};

pub use compression::{
    Codec, Compressor, Decompressed, compress_message, decompress_message, may_compress,
};
pub use document::{DecodeError, MAX_DEPTH, check_depth, to_bson, to_document};
pub use fields::{get_int, get_strings};
pub use header::{HEADER_LEN, Header, OpCode};
pub use legacy::{OpQuery, OpReply, encode_op_query, encode_op_reply};
pub use op_msg::{BodyField, DocumentSequence, MsgFlags, OpMsg, OpMsgBuilder};

/// The default `maxBsonObjectSize` before a handshake says otherwise (16 MiB).
pub const DEFAULT_MAX_BSON_OBJECT_SIZE: usize = 16 * 1024 * 1024;
/// The default `maxMessageSizeBytes` before a handshake says otherwise.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 48_000_000;
/// The default `maxWriteBatchSize`: what every server from 3.6 on reports.
pub const DEFAULT_MAX_WRITE_BATCH_SIZE: usize = 100_000;
/// A command document may exceed `maxBsonObjectSize` by this much (the spec's allowance for
/// the command's own fields around a maximum-size user document).
pub const COMMAND_OVERHEAD: usize = 16 * 1024;

/// What the server accepts: the size limits that bound what we encode and accept, and the
/// newest wire version it speaks (fields only newer servers understand are left out below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest document the server accepts.
    pub max_bson_object_size: usize,
    /// Largest message, in either direction.
    pub max_message_size: usize,
    /// The server's `maxWireVersion` (0 before a handshake).
    pub max_wire_version: i32,
    /// Most statements in one write command (`maxWriteBatchSize`).
    pub max_write_batch_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bson_object_size: DEFAULT_MAX_BSON_OBJECT_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_wire_version: 0,
            max_write_batch_size: DEFAULT_MAX_WRITE_BATCH_SIZE,
        }
    }
}

/// A violation of the wire protocol, or a size limit hit while encoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than a field or section needs.
    #[error("truncated message: needed {needed} bytes, had {available}")]
    Truncated {
        /// Bytes the structure declared or needs.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// A length field that is negative or too small to hold its own structure.
    #[error("invalid length {0}")]
    BadLength(i64),
    /// A declared message length above the accepted maximum.
    #[error("message length {length} exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The declared length.
        length: usize,
        /// The maximum accepted.
        max: usize,
    },
    /// An opcode other than the one expected here.
    #[error("unexpected opcode {0}")]
    UnexpectedOpCode(i32),
    /// A reply answering a different request.
    #[error("reply answers request {got}, expected {expected}")]
    ResponseTo {
        /// The request id we sent.
        expected: i32,
        /// The `responseTo` in the reply.
        got: i32,
    },
    /// An OP_MSG whose CRC-32C checksum does not match its contents.
    #[error("OP_MSG checksum mismatch")]
    Checksum,
    /// An OP_MSG with required flag bits this driver does not know.
    #[error("OP_MSG has unknown required flag bits {0:#x}")]
    UnknownRequiredFlags(u32),
    /// A section kind other than 0 (body) or 1 (document sequence).
    #[error("unknown OP_MSG section kind {0}")]
    BadSectionKind(u8),
    /// An OP_MSG without exactly one body section.
    #[error("OP_MSG must have exactly one body section, found {0}")]
    BodyCount(usize),
    /// A malformed BSON document or C string.
    #[error("malformed document: {0}")]
    BadDocument(String),
    /// A document larger than `maxBsonObjectSize`.
    #[error("document of {size} bytes exceeds maxBsonObjectSize {max}")]
    DocumentTooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A message larger than `maxMessageSizeBytes`.
    #[error("message of {size} bytes exceeds maxMessageSizeBytes {max}")]
    MessageTooLarge {
        /// Encoded size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// OP_COMPRESSED that could not be unwrapped (corrupt data, an unknown compressor, a
    /// size that does not match), or a compressor that failed.
    #[error("compression: {0}")]
    Compression(String),
    /// A value could not be serialised to BSON.
    #[error("serialization failed: {0}")]
    Serialize(#[from] bson::error::Error),
}

/// A fresh request id. Ids only need to be unique per connection for a while; one
/// process-wide counter makes them unique everywhere, which helps when reading logs.
pub fn next_request_id() -> i32 {
    static NEXT: AtomicI32 = AtomicI32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Reads a little-endian i32 at `at`, or reports truncation.
pub(crate) fn read_i32(buf: &[u8], at: usize) -> Result<i32, WireError> {
    let bytes = buf.get(at..at + 4).ok_or(WireError::Truncated {
        needed: at + 4,
        available: buf.len(),
    })?;
    Ok(i32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

/// Splits a BSON document off the front of `buf`, checking its declared length against what
/// is present. Returns the document and the rest.
pub(crate) fn split_document(buf: &[u8]) -> Result<(&bson::RawDocument, &[u8]), WireError> {
    let len = read_i32(buf, 0)?;
    if len < 5 {
        return Err(WireError::BadLength(len as i64));
    }
    let len = len as usize;
    if len > buf.len() {
        return Err(WireError::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    let (doc, rest) = buf.split_at(len);
    let doc =
        bson::RawDocument::from_bytes(doc).map_err(|e| WireError::BadDocument(e.to_string()))?;
    Ok((doc, rest))
}

/// Splits a NUL-terminated UTF-8 string off the front of `buf`.
pub(crate) fn split_cstr(buf: &[u8]) -> Result<(&str, &[u8]), WireError> {
    let nul = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| WireError::BadDocument("unterminated C string".into()))?;
    let s = std::str::from_utf8(&buf[..nul])
        .map_err(|_| WireError::BadDocument("C string is not UTF-8".into()))?;
    Ok((s, &buf[nul + 1..]))
}

/// Appends `s` as a C string, refusing interior NULs (they would corrupt the framing).
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &str) -> Result<(), WireError> {
    if s.as_bytes().contains(&0) {
        return Err(WireError::BadDocument(format!("{s:?} contains a NUL byte")));
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// Serialises `value` as a BSON document onto `out` and checks its size against `max`.
/// On error `out` is left as it was.
pub(crate) fn put_document<T: serde::Serialize>(
    out: &mut Vec<u8>,
    value: &T,
    max: usize,
) -> Result<(), WireError> {
    let start = out.len();
    if let Err(e) = bson::serialize_to_buffer(value, out) {
        out.truncate(start);
        return Err(e.into());
    }
    let size = out.len() - start;
    if size > max {
        out.truncate(start);
        return Err(WireError::DocumentTooLarge { size, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
