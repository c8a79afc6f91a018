//! OP_MSG (opcode 2013): the message every modern command travels in.
//!
//! ```text
//! | header | flagBits u32 | section ... | [checksum u32] |
//! section kind 0: | 0u8 | BSON body document |
//! section kind 1: | 1u8 | size i32 | identifier cstring | BSON document ... |
//! ```
//! Kind 1 ("document sequence") lets a large batch of documents — an `insert`'s `documents`,
//! say — travel outside the command body, so no 16 MiB body limit applies to the batch as a
//! whole and the server can read each document where it lies.

use bson::RawDocument;
use serde::Serialize;

use super::header::{HEADER_LEN, OpCode, begin_message, finish_message};
use super::{
    COMMAND_OVERHEAD, Limits, WireError, put_cstr, put_document, read_i32, split_cstr,
    split_document,
};

/// OP_MSG flag bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgFlags(pub u32);

impl MsgFlags {
    /// A CRC-32C checksum follows the last section.
    pub const CHECKSUM_PRESENT: MsgFlags = MsgFlags(1 << 0);
    /// The sender will send another message without waiting for a reply.
    pub const MORE_TO_COME: MsgFlags = MsgFlags(1 << 1);
    /// The requester accepts several replies to one request (exhaust cursors).
    pub const EXHAUST_ALLOWED: MsgFlags = MsgFlags(1 << 16);
    /// Bits 0–15 are "required": a receiver must reject bits it does not understand.
    const KNOWN_REQUIRED: u32 = (1 << 0) | (1 << 1);

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: MsgFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, rhs: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | rhs.0)
    }
}

/// Builds one OP_MSG at the end of a caller's buffer.
///
/// The body and each sequence document are serialised straight into the buffer with
/// `bson::serialize_to_buffer`: no intermediate `Document`, no second copy. Size limits are
/// checked as each piece is written, so an oversized document is refused before anything
/// reaches a socket.
///
/// ```
/// use may_mongo_protocol::{Limits, MsgFlags, OpMsg, OpMsgBuilder, Header, HEADER_LEN};
/// let mut buf = Vec::new();
/// let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
/// b.body(&bson::doc! { "ping": 1, "$db": "admin" }).unwrap();
/// let len = b.finish(7, 0).unwrap();
/// let header = Header::parse(&buf).unwrap();
/// assert_eq!(header.length as usize, len);
/// let msg = OpMsg::parse(&buf[HEADER_LEN..]).unwrap();
/// assert_eq!(msg.body.get_i32("ping").unwrap(), 1);
/// ```
pub struct OpMsgBuilder<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
    flags: MsgFlags,
    limits: Limits,
    /// Offset of the open sequence's size field, if a sequence is open.
    open_sequence: Option<usize>,
    has_body: bool,
    /// Offset of the body document, once written.
    body_at: Option<usize>,
}

impl<'a> OpMsgBuilder<'a> {
    /// Starts a message at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>, flags: MsgFlags, limits: Limits) -> Self {
        let start = begin_message(out);
        out.extend_from_slice(&flags.0.to_le_bytes());
        OpMsgBuilder {
            out,
            start,
            flags,
            limits,
            open_sequence: None,
            has_body: false,
            body_at: None,
        }
    }

    /// Writes the kind-0 body section. A command body may exceed `maxBsonObjectSize` by the
    /// spec's 16 KiB command overhead.
    pub fn body<T: Serialize>(&mut self, command: &T) -> Result<(), WireError> {
        self.close_sequence();
        self.out.push(0);
        let max = self.limits.max_bson_object_size + COMMAND_OVERHEAD;
        let at = self.out.len();
        if let Err(e) = put_document(self.out, command, max) {
            self.out.pop();
            return Err(e);
        }
        self.has_body = true;
        self.body_at = Some(at);
        Ok(())
    }

    /// Appends one field to the body written by [`body`](Self::body), wherever later sections
    /// put it. For fields the executor adds to any command (`$readPreference`); the body's
    /// length is patched and the size limit checked again.
    pub fn append_to_body(&mut self, field: &BodyField) -> Result<(), WireError> {
        let Some(at) = self.body_at else {
            return Err(WireError::BodyCount(0));
        };
        let len = read_i32(self.out, at)? as usize;
        let element = field.0.as_slice();
        let new_len = len + element.len();
        let max = self.limits.max_bson_object_size + COMMAND_OVERHEAD;
        if new_len > max {
            return Err(WireError::DocumentTooLarge { size: new_len, max });
        }
        let end = at + len - 1; // before the body's closing NUL
        self.out.splice(end..end, element.iter().copied());
        self.out[at..at + 4].copy_from_slice(&(new_len as i32).to_le_bytes());
        if let Some(seq) = &mut self.open_sequence {
            *seq += element.len();
        }
        Ok(())
    }

    /// The body as written so far (after [`body`](Self::body) and any appended fields).
    pub fn body_document(&self) -> Option<&RawDocument> {
        let at = self.body_at?;
        let len = read_i32(self.out, at).ok()? as usize;
        RawDocument::from_bytes(self.out.get(at..at + len)?).ok()
    }

    /// Removes the top-level field `key` from the body, if it is there, and returns its value
    /// as a document (`None` if absent or not a document). For fields a session decides
    /// rather than the command (a transaction's `readConcern` goes on its first command only;
    /// a causally consistent read's carries `afterClusterTime`): the executor takes the
    /// command's own and appends the one to send.
    pub fn take_from_body(&mut self, key: &str) -> Result<Option<bson::Document>, WireError> {
        let Some(body) = self.body_document() else {
            return Err(WireError::BodyCount(0));
        };
        let at = self.body_at.expect("body_document found it");
        // Find the element's byte range by walking the body's top-level keys.
        let mut range = None;
        let mut offset = 4;
        for element in body.iter_elements() {
            let element = element.map_err(|e| WireError::BadDocument(e.to_string()))?;
            let name = element.key().as_str();
            let size = 1 + name.len() + 1 + element.size();
            if name == key {
                let value = match element.value() {
                    Ok(bson::RawBsonRef::Document(d)) => bson::Document::try_from(d).ok(),
                    _ => None,
                };
                range = Some((offset, size, value));
                break;
            }
            offset += size;
        }
        let Some((offset, size, value)) = range else {
            return Ok(None);
        };
        let len = read_i32(self.out, at)? as usize;
        let start = at + offset;
        self.out.drain(start..start + size);
        self.out[at..at + 4].copy_from_slice(&((len - size) as i32).to_le_bytes());
        if let Some(seq) = &mut self.open_sequence {
            *seq -= size;
        }
        Ok(value)
    }

    /// Opens a kind-1 document sequence named `identifier` (e.g. `"documents"`).
    pub fn begin_sequence(&mut self, identifier: &str) -> Result<(), WireError> {
        self.close_sequence();
        self.out.push(1);
        let at = self.out.len();
        self.out.extend_from_slice(&[0u8; 4]);
        put_cstr(self.out, identifier)?;
        self.open_sequence = Some(at);
        Ok(())
    }

    /// Serialises one document into the open sequence, refusing it if it is larger than
    /// `maxBsonObjectSize`. Returns the document's byte range within the buffer, so that a
    /// caller can inspect it (for example to read its `_id`).
    pub fn push<T: Serialize>(
        &mut self,
        document: &T,
    ) -> Result<std::ops::Range<usize>, WireError> {
        debug_assert!(self.open_sequence.is_some(), "push outside a sequence");
        let at = self.out.len();
        put_document(self.out, document, self.limits.max_bson_object_size)?;
        Ok(at..self.out.len())
    }

    /// [`push`](Self::push) with a size limit of the caller's: for sequence entries that wrap
    /// a user document, such as a `bulkWrite` command's `ops` (which may be as large as a
    /// command document).
    pub fn push_sized<T: Serialize>(
        &mut self,
        document: &T,
        max: usize,
    ) -> Result<std::ops::Range<usize>, WireError> {
        debug_assert!(self.open_sequence.is_some(), "push outside a sequence");
        let at = self.out.len();
        put_document(self.out, document, max)?;
        Ok(at..self.out.len())
    }

    /// The buffer being written, for callers that need to read back what they pushed.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// The size limits this message is built under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Current size of the message so far, in bytes.
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }

    /// True when nothing but the header and flags has been written.
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN + 4
    }

    fn close_sequence(&mut self) {
        if let Some(at) = self.open_sequence.take() {
            let size = (self.out.len() - at) as i32;
            self.out[at..at + 4].copy_from_slice(&size.to_le_bytes());
        }
    }

    /// Completes the message: closes any open sequence, appends the checksum if the flags ask
    /// for one, fills in the header and checks the total against `maxMessageSizeBytes`.
    /// Returns the message's length. On error the partial message is removed from the buffer.
    pub fn finish(mut self, request_id: i32, response_to: i32) -> Result<usize, WireError> {
        self.close_sequence();
        if !self.has_body {
            self.out.truncate(self.start);
            return Err(WireError::BodyCount(0));
        }
        let checksum = self.flags.contains(MsgFlags::CHECKSUM_PRESENT);
        if checksum {
            self.out.extend_from_slice(&[0u8; 4]);
        }
        let len = finish_message(
            self.out,
            self.start,
            request_id,
            response_to,
            OpCode::Msg,
            &self.limits,
        )?;
        if checksum {
            let end = self.out.len() - 4;
            let crc = crc32c::crc32c(&self.out[self.start..end]);
            self.out[end..].copy_from_slice(&crc.to_le_bytes());
        }
        Ok(len)
    }
}

/// One body field, encoded once (a BSON element: type, name, value), to be appended to many
/// commands with [`OpMsgBuilder::append_to_body`] at the cost of a copy.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyField(Vec<u8>);

impl BodyField {
    /// Encodes `key: value`.
    pub fn new(key: &str, value: &bson::Document) -> Result<BodyField, WireError> {
        let mut doc = Vec::new();
        put_document(&mut doc, &bson::doc! { key: value.clone() }, usize::MAX)?;
        // A one-field document is length(4) + element + NUL(1): keep the element only.
        Ok(BodyField(doc[4..doc.len() - 1].to_vec()))
    }

    /// Encodes every field of `fields`, to be appended together (e.g. `lsid` and `txnNumber`).
    pub fn from_fields(fields: &bson::Document) -> Result<BodyField, WireError> {
        let mut doc = Vec::new();
        put_document(&mut doc, fields, usize::MAX)?;
        Ok(BodyField(doc[4..doc.len() - 1].to_vec()))
    }
}

/// A parsed OP_MSG, borrowing from the bytes that follow the header.
///
/// Parsing checks the framing of every section (declared sizes, C strings, the outer length of
/// every document) but decodes no document fields: the body is a [`RawDocument`] read lazily.
#[derive(Debug)]
pub struct OpMsg<'a> {
    /// The flag bits.
    pub flags: MsgFlags,
    /// The kind-0 body.
    pub body: &'a RawDocument,
    /// The raw kind-1 sections, already validated; see [`OpMsg::sequences`].
    sequences: &'a [u8],
}

impl<'a> OpMsg<'a> {
    /// Parses an OP_MSG payload (the message without its 16-byte header). If the checksum
    /// flag is set, `payload` must be preceded by its header in the same allocation; use
    /// [`OpMsg::parse_message`] to verify it.
    pub fn parse(payload: &'a [u8]) -> Result<OpMsg<'a>, WireError> {
        let flags = MsgFlags(read_i32(payload, 0)? as u32);
        let unknown = flags.0 & 0xffff & !MsgFlags::KNOWN_REQUIRED;
        if unknown != 0 {
            return Err(WireError::UnknownRequiredFlags(unknown));
        }
        let mut rest = &payload[4..];
        if flags.contains(MsgFlags::CHECKSUM_PRESENT) {
            if rest.len() < 4 {
                return Err(WireError::Truncated {
                    needed: 8,
                    available: payload.len(),
                });
            }
            rest = &rest[..rest.len() - 4];
        }
        let mut body = None;
        let mut bodies = 0;
        let mut first_sequence: Option<usize> = None;
        let mut last_sequence_end = 0;
        // Offset within `payload` of the start of `rest`.
        let mut offset = 4;
        while !rest.is_empty() {
            let kind = rest[0];
            rest = &rest[1..];
            offset += 1;
            match kind {
                0 => {
                    let (doc, tail) = split_document(rest)?;
                    offset += rest.len() - tail.len();
                    rest = tail;
                    body = Some(doc);
                    bodies += 1;
                }
                1 => {
                    let section_start = offset - 1;
                    let size = read_i32(rest, 0)?;
                    if size < 5 {
                        return Err(WireError::BadLength(size as i64));
                    }
                    let size = size as usize;
                    if size > rest.len() {
                        return Err(WireError::Truncated {
                            needed: size,
                            available: rest.len(),
                        });
                    }
                    let (section, tail) = rest.split_at(size);
                    // Validate the identifier and every document's framing now, so that
                    // iteration later cannot fail.
                    let (_, mut docs) = split_cstr(&section[4..])?;
                    while !docs.is_empty() {
                        docs = split_document(docs)?.1;
                    }
                    first_sequence.get_or_insert(section_start);
                    offset += size;
                    last_sequence_end = offset;
                    rest = tail;
                }
                other => return Err(WireError::BadSectionKind(other)),
            }
        }
        let body = match (body, bodies) {
            (Some(b), 1) => b,
            _ => return Err(WireError::BodyCount(bodies)),
        };
        let sequences = match first_sequence {
            // Sequences may sit before or after the body; keep the span that covers them and
            // skip the body when iterating.
            Some(start) => &payload[start..last_sequence_end],
            None => &[],
        };
        Ok(OpMsg {
            flags,
            body,
            sequences,
        })
    }

    /// Parses a whole OP_MSG message (header included), verifying the checksum if present.
    pub fn parse_message(message: &'a [u8]) -> Result<OpMsg<'a>, WireError> {
        let header = super::Header::parse(message)?;
        if header.op_code != OpCode::Msg as i32 {
            return Err(WireError::UnexpectedOpCode(header.op_code));
        }
        if header.length as usize != message.len() {
            return Err(WireError::BadLength(header.length as i64));
        }
        let msg = OpMsg::parse(&message[HEADER_LEN..])?;
        if msg.flags.contains(MsgFlags::CHECKSUM_PRESENT) {
            let end = message.len() - 4;
            let want = u32::from_le_bytes(message[end..].try_into().expect("4 bytes"));
            if crc32c::crc32c(&message[..end]) != want {
                return Err(WireError::Checksum);
            }
        }
        Ok(msg)
    }

    /// The kind-1 document sequences, in order.
    pub fn sequences(&self) -> impl Iterator<Item = DocumentSequence<'a>> + 'a {
        let mut rest = self.sequences;
        std::iter::from_fn(move || {
            loop {
                let (&kind, tail) = rest.split_first()?;
                // Framing was validated by `parse`, so these cannot fail.
                if kind == 0 {
                    rest = split_document(tail).ok()?.1;
                    continue;
                }
                let size = read_i32(tail, 0).ok()? as usize;
                let (section, after) = tail.split_at(size);
                rest = after;
                let (identifier, documents) = split_cstr(&section[4..]).ok()?;
                return Some(DocumentSequence {
                    identifier,
                    documents,
                });
            }
        })
    }
}

/// One kind-1 section: an identifier and the documents that follow it.
#[derive(Clone, Copy, Debug)]
pub struct DocumentSequence<'a> {
    /// The field name the documents stand for, e.g. `documents`.
    pub identifier: &'a str,
    documents: &'a [u8],
}

impl<'a> DocumentSequence<'a> {
    /// The documents, lazily.
    pub fn documents(&self) -> impl Iterator<Item = &'a RawDocument> + 'a {
        let mut rest = self.documents;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (doc, tail) = split_document(rest).ok()?;
            rest = tail;
            Some(doc)
        })
    }
}
