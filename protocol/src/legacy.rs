//! OP_QUERY (2004) and OP_REPLY (1): the legacy pair, kept only for the first handshake with
//! servers that do not know `hello` (the `isMaster` fallback). Servers since MongoDB 3.6 speak
//! OP_MSG for everything else.
//!
//! ```text
//! OP_QUERY: | header | flags i32 | fullCollectionName cstring | skip i32 | return i32 | query | [fields] |
//! OP_REPLY: | header | flags i32 | cursorID i64 | startingFrom i32 | numberReturned i32 | documents |
//! ```
//! The encoders for OP_REPLY and the parser for OP_QUERY are the server's side; scripted test
//! servers use them.

use bson::RawDocument;
use serde::Serialize;

use super::header::{OpCode, begin_message, finish_message};
use super::{Limits, WireError, put_cstr, put_document, read_i32, split_cstr, split_document};

/// Appends an OP_QUERY to `out`. Returns the message length.
#[allow(clippy::too_many_arguments)]
pub fn encode_op_query<T: Serialize>(
    out: &mut Vec<u8>,
    request_id: i32,
    flags: i32,
    full_collection_name: &str,
    skip: i32,
    n_return: i32,
    query: &T,
    limits: &Limits,
) -> Result<usize, WireError> {
    let start = begin_message(out);
    out.extend_from_slice(&flags.to_le_bytes());
    let written = put_cstr(out, full_collection_name).and_then(|()| {
        out.extend_from_slice(&skip.to_le_bytes());
        out.extend_from_slice(&n_return.to_le_bytes());
        put_document(out, query, limits.max_bson_object_size)
    });
    if let Err(e) = written {
        out.truncate(start);
        return Err(e);
    }
    finish_message(out, start, request_id, 0, OpCode::Query, limits)
}

/// A parsed OP_QUERY payload (the message without its header).
#[derive(Debug)]
pub struct OpQuery<'a> {
    /// Query flags.
    pub flags: i32,
    /// `db.collection`, e.g. `admin.$cmd`.
    pub full_collection_name: &'a str,
    /// Documents to skip.
    pub skip: i32,
    /// Documents to return.
    pub n_return: i32,
    /// The query (for a command: the command document).
    pub query: &'a RawDocument,
    /// The optional projection.
    pub fields: Option<&'a RawDocument>,
}

impl<'a> OpQuery<'a> {
    /// Parses an OP_QUERY payload.
    pub fn parse(payload: &'a [u8]) -> Result<OpQuery<'a>, WireError> {
        let flags = read_i32(payload, 0)?;
        let (full_collection_name, rest) = split_cstr(&payload[4..])?;
        let skip = read_i32(rest, 0)?;
        let n_return = read_i32(rest, 4)?;
        let (query, rest) = split_document(&rest[8..])?;
        let fields = if rest.is_empty() {
            None
        } else {
            let (fields, rest) = split_document(rest)?;
            if !rest.is_empty() {
                return Err(WireError::BadLength(rest.len() as i64));
            }
            Some(fields)
        };
        Ok(OpQuery {
            flags,
            full_collection_name,
            skip,
            n_return,
            query,
            fields,
        })
    }
}

/// Appends an OP_REPLY answering `response_to` with `documents`. Returns the message length.
pub fn encode_op_reply<T: Serialize>(
    out: &mut Vec<u8>,
    request_id: i32,
    response_to: i32,
    flags: i32,
    cursor_id: i64,
    documents: &[T],
    limits: &Limits,
) -> Result<usize, WireError> {
    let start = begin_message(out);
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&cursor_id.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&(documents.len() as i32).to_le_bytes());
    for d in documents {
        if let Err(e) = put_document(out, d, limits.max_bson_object_size) {
            out.truncate(start);
            return Err(e);
        }
    }
    finish_message(out, start, request_id, response_to, OpCode::Reply, limits)
}

/// A parsed OP_REPLY payload.
#[derive(Debug)]
pub struct OpReply<'a> {
    /// Response flags (bit 1: QueryFailure).
    pub flags: i32,
    /// The cursor id, 0 when exhausted.
    pub cursor_id: i64,
    /// Position of the first document in the cursor.
    pub starting_from: i32,
    documents: &'a [u8],
    count: usize,
}

impl<'a> OpReply<'a> {
    /// The QueryFailure flag: the single document is an error.
    pub const QUERY_FAILURE: i32 = 1 << 1;

    /// Parses an OP_REPLY payload, checking that exactly `numberReturned` well-framed
    /// documents follow and nothing else.
    pub fn parse(payload: &'a [u8]) -> Result<OpReply<'a>, WireError> {
        let flags = read_i32(payload, 0)?;
        let lo = read_i32(payload, 4)? as u32 as u64;
        let hi = read_i32(payload, 8)? as u32 as u64;
        let cursor_id = ((hi << 32) | lo) as i64;
        let starting_from = read_i32(payload, 12)?;
        let number_returned = read_i32(payload, 16)?;
        if number_returned < 0 {
            return Err(WireError::BadLength(number_returned as i64));
        }
        let documents = &payload[20..];
        let mut rest = documents;
        let mut count = 0usize;
        while !rest.is_empty() {
            rest = split_document(rest)?.1;
            count += 1;
        }
        if count != number_returned as usize {
            return Err(WireError::BadDocument(format!(
                "OP_REPLY declares {number_returned} documents but holds {count}"
            )));
        }
        Ok(OpReply {
            flags,
            cursor_id,
            starting_from,
            documents,
            count,
        })
    }

    /// Number of documents returned.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no documents were returned.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The documents, lazily (framing already validated by `parse`).
    pub fn documents(&self) -> impl Iterator<Item = &'a RawDocument> + 'a {
        let mut rest = self.documents;
        std::iter::from_fn(move || {
            let (doc, tail) = split_document(rest).ok()?;
            rest = tail;
            Some(doc)
        })
    }
}
