//! The 16-byte message header shared by every opcode.

use super::{Limits, WireError, read_i32};

/// Size of the standard message header.
pub const HEADER_LEN: usize = 16;

/// Opcodes this driver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum OpCode {
    /// Legacy reply to OP_QUERY (used only for the `isMaster` handshake fallback).
    Reply = 1,
    /// Legacy query (used only for the `isMaster` handshake fallback).
    Query = 2004,
    /// A compressed message wrapping another opcode.
    Compressed = 2012,
    /// The modern extensible message.
    Msg = 2013,
}

impl OpCode {
    /// The opcode for a raw value, if it is one we know.
    pub fn from_i32(v: i32) -> Option<OpCode> {
        match v {
            1 => Some(OpCode::Reply),
            2004 => Some(OpCode::Query),
            2012 => Some(OpCode::Compressed),
            2013 => Some(OpCode::Msg),
            _ => None,
        }
    }
}

/// A parsed message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Total message length including this header.
    pub length: i32,
    /// The sender's id for this message.
    pub request_id: i32,
    /// For replies, the id of the request answered.
    pub response_to: i32,
    /// The raw opcode.
    pub op_code: i32,
}

impl Header {
    /// Parses the first 16 bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        Ok(Header {
            length: read_i32(buf, 0)?,
            request_id: read_i32(buf, 4)?,
            response_to: read_i32(buf, 8)?,
            op_code: read_i32(buf, 12)?,
        })
    }

    /// Checks the declared length against the limits and returns it as a `usize`.
    ///
    /// This is the check that stops a hostile or corrupt length from turning into a huge
    /// allocation: callers size their buffers only from the value returned here.
    pub fn checked_len(&self, limits: &Limits) -> Result<usize, WireError> {
        // The smallest real message is an OP_MSG with flags, a kind byte and an empty
        // document: 16 + 4 + 1 + 5 bytes. OP_REPLY is 16 + 20.
        const MIN: i32 = HEADER_LEN as i32 + 4;
        if self.length < MIN {
            return Err(WireError::BadLength(self.length as i64));
        }
        let length = self.length as usize;
        if length > limits.max_message_size {
            return Err(WireError::TooLarge {
                length,
                max: limits.max_message_size,
            });
        }
        Ok(length)
    }

    /// Checks that this header is a reply to `request_id`.
    pub fn check_reply_to(&self, request_id: i32) -> Result<(), WireError> {
        if self.response_to != request_id {
            return Err(WireError::ResponseTo {
                expected: request_id,
                got: self.response_to,
            });
        }
        Ok(())
    }

    /// Writes the header into the first 16 bytes of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.length.to_le_bytes());
        out[4..8].copy_from_slice(&self.request_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.response_to.to_le_bytes());
        out[12..16].copy_from_slice(&self.op_code.to_le_bytes());
    }
}

/// Reserves a header at the end of `out`; [`finish_message`] fills it in.
pub(crate) fn begin_message(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

/// Fills in the header reserved at `start`, checking the total size against `limits`.
/// On error the message is removed from `out`.
pub(crate) fn finish_message(
    out: &mut Vec<u8>,
    start: usize,
    request_id: i32,
    response_to: i32,
    op_code: OpCode,
    limits: &Limits,
) -> Result<usize, WireError> {
    let size = out.len() - start;
    if size > limits.max_message_size || size > i32::MAX as usize {
        out.truncate(start);
        return Err(WireError::MessageTooLarge {
            size,
            max: limits.max_message_size,
        });
    }
    Header {
        length: size as i32,
        request_id,
        response_to,
        op_code: op_code as i32,
    }
    .write(&mut out[start..start + HEADER_LEN]);
    Ok(size)
}
