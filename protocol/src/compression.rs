//! OP_COMPRESSED (opcode 2012): any other message, compressed.
//!
//! ```text
//! | header (opCode 2012) | originalOpcode i32 | uncompressedSize i32 | compressorId u8 | compressed bytes |
//! ```
//! `uncompressedSize` counts the original message *without* its 16-byte header; the
//! original header's ids travel in the OP_COMPRESSED header, so unwrapping rebuilds the
//! original message exactly. Compressors are negotiated once per connection: the driver lists
//! the ones it would use in `hello` (`compression: [...]`) and the server answers with those
//! it accepts; the first of ours that the server named is used from then on. `hello` and the
//! authentication commands are never compressed (they would leak sizes of secrets, and the
//! server must be able to read `hello` before anything is negotiated).
//!
//! Decompression never trusts `uncompressedSize` beyond the caller's limit: a hostile size
//! cannot make us allocate more than `maxMessageSizeBytes`, and a stream that inflates to a
//! different size than it declared is an error, as is any corrupt stream.

use super::header::{HEADER_LEN, Header, OpCode};
use super::{Limits, WireError, read_i32};

/// Bytes between the OP_COMPRESSED header and the compressed data.
const PREFIX_LEN: usize = 4 + 4 + 1;

/// A wire compressor, as named in the `compressors` URI option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compressor {
    /// Snappy (id 1): fastest, lightest compression.
    Snappy,
    /// zlib (id 2) at `level` 0–9; `None` (or `zlibCompressionLevel=-1`) is zlib's default, 6.
    Zlib {
        /// Compression level 0 (none) to 9 (smallest).
        level: Option<u32>,
    },
    /// Zstandard (id 3) at its default level.
    Zstd,
}

impl Compressor {
    /// The name used in the URI and in `hello`.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Snappy => "snappy",
            Compressor::Zlib { .. } => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// The compressor for a name, if it is one we speak.
    pub fn from_name(name: &str) -> Option<Compressor> {
        match name {
            "snappy" => Some(Compressor::Snappy),
            "zlib" => Some(Compressor::Zlib { level: None }),
            "zstd" => Some(Compressor::Zstd),
            _ => None,
        }
    }

    /// The id written into OP_COMPRESSED.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Snappy => 1,
            Compressor::Zlib { .. } => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The compressor for an id (the level of zlib does not matter when decompressing).
    fn from_id(id: u8) -> Option<Compressor> {
        match id {
            1 => Some(Compressor::Snappy),
            2 => Some(Compressor::Zlib { level: None }),
            3 => Some(Compressor::Zstd),
            _ => None,
        }
    }
}

/// The compression contexts of one connection, created on first use and reused for every
/// message after: zstd and zlib contexts cost tens of microseconds and tens of kilobytes to
/// set up, far more than compressing a small command, so a connection keeps its own.
#[derive(Default)]
pub struct Codec {
    snappy_enc: Option<snap::raw::Encoder>,
    snappy_dec: Option<snap::raw::Decoder>,
    zlib_enc: Option<(u32, flate2::Compress)>,
    zlib_dec: Option<flate2::Decompress>,
    zstd_enc: Option<zstd::bulk::Compressor<'static>>,
    zstd_dec: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Codec")
    }
}

impl Codec {
    /// A codec with no contexts yet.
    pub fn new() -> Codec {
        Codec::default()
    }

    /// Compresses `input` onto the end of `out`.
    fn compress(
        &mut self,
        compressor: Compressor,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        let start = out.len();
        match compressor {
            Compressor::Snappy => {
                let enc = self.snappy_enc.get_or_insert_with(snap::raw::Encoder::new);
                out.resize(start + snap::raw::max_compress_len(input.len()), 0);
                let n = enc.compress(input, &mut out[start..])?;
                out.truncate(start + n);
            }
            Compressor::Zlib { level } => {
                let level = level.unwrap_or(6).min(9);
                let enc = match &mut self.zlib_enc {
                    Some((l, enc)) if *l == level => {
                        enc.reset();
                        enc
                    }
                    slot => {
                        let enc = flate2::Compress::new(flate2::Compression::new(level), true);
                        &mut slot.insert((level, enc)).1
                    }
                };
                // zlib's own bound for one-shot deflate, plus room for the header and trailer.
                out.reserve(input.len() + input.len() / 1000 + 64);
                loop {
                    let consumed = enc.total_in() as usize;
                    let status =
                        enc.compress_vec(&input[consumed..], out, flate2::FlushCompress::Finish)?;
                    if status == flate2::Status::StreamEnd {
                        break;
                    }
                    out.reserve(out.capacity().max(1024));
                }
            }
            Compressor::Zstd => {
                let enc = match &mut self.zstd_enc {
                    Some(enc) => enc,
                    slot => {
                        let mut enc = zstd::bulk::Compressor::new(zstd::DEFAULT_COMPRESSION_LEVEL)?;
                        // A content checksum (4 bytes) lets the receiver notice corruption that
                        // would otherwise inflate to the right size with the wrong bytes; zlib
                        // has Adler-32 for the same reason.
                        enc.include_checksum(true)?;
                        slot.insert(enc)
                    }
                };
                out.resize(start + zstd::zstd_safe::compress_bound(input.len()), 0);
                let n = enc.compress_to_buffer(input, &mut out[start..])?;
                out.truncate(start + n);
            }
        }
        Ok(())
    }

    /// Decompresses `input` into `out`, which is exactly as long as the declared size: a
    /// stream that yields fewer or more bytes is corrupt.
    fn decompress(
        &mut self,
        compressor: Compressor,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(), String> {
        let expected = out.len();
        let got = match compressor {
            Compressor::Snappy => {
                let len = snap::raw::decompress_len(input).map_err(|e| e.to_string())?;
                if len != expected {
                    return Err(format!(
                        "snappy data holds {len} bytes, header says {expected}"
                    ));
                }
                let dec = self.snappy_dec.get_or_insert_with(snap::raw::Decoder::new);
                dec.decompress(input, out).map_err(|e| e.to_string())?
            }
            Compressor::Zlib { .. } => {
                let dec = self
                    .zlib_dec
                    .get_or_insert_with(|| flate2::Decompress::new(true));
                dec.reset(true);
                let status = dec
                    .decompress(input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| e.to_string())?;
                let got = dec.total_out() as usize;
                if status != flate2::Status::StreamEnd {
                    return Err(if got == expected {
                        format!("inflates to more than the {expected} bytes the header says")
                    } else {
                        format!("stream ends early, after {got} of {expected} bytes")
                    });
                }
                got
            }
            Compressor::Zstd => {
                let dec = match &mut self.zstd_dec {
                    Some(dec) => dec,
                    slot => {
                        slot.insert(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?)
                    }
                };
                // A frame larger than `out` is an error ("destination buffer is too small").
                dec.decompress_to_buffer(input, out)
                    .map_err(|e| e.to_string())?
            }
        };
        if got != expected {
            return Err(format!("inflated to {got} bytes, header says {expected}"));
        }
        Ok(())
    }
}

/// Commands that are never compressed: the handshake and everything that carries secrets.
const UNCOMPRESSIBLE: &[&str] = &[
    "hello",
    "ismaster",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "authenticate",
    "createuser",
    "updateuser",
    "copydbsaslstart",
    "copydbgetnonce",
    "copydb",
];

/// True if a command named `name` may travel compressed.
pub fn may_compress(name: &str) -> bool {
    !UNCOMPRESSIBLE.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// [`Codec::compress_message`] with a codec of its own (contexts made and dropped per call).
pub fn compress_message(
    message: &[u8],
    compressor: Compressor,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    Codec::new().compress_message(message, compressor, out)
}

/// [`Codec::decompress_message`] with a codec of its own (contexts made and dropped per call).
pub fn decompress_message(
    message: &[u8],
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<Decompressed, WireError> {
    Codec::new().decompress_message(message, limits, out)
}

/// Inflates a zstd frame of unstated size onto `out`, which grows only as output arrives; the
/// output must be exactly `size` bytes.
fn inflate_zstd_stream(data: &[u8], size: usize, out: &mut Vec<u8>) -> Result<(), WireError> {
    use std::io::Read;
    let corrupt = |e: String| WireError::Compression(format!("corrupt zstd data: {e}"));
    let start = out.len();
    let decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt(e.to_string()))?;
    // One byte more than declared is enough to tell "too long" from "exact".
    decoder
        .take(size as u64 + 1)
        .read_to_end(out)
        .map_err(|e| corrupt(e.to_string()))?;
    let got = out.len() - start;
    if got != size {
        out.truncate(start);
        out.shrink_to(start);
        return Err(corrupt(format!(
            "inflated to {got} bytes, header says {size}"
        )));
    }
    Ok(())
}

/// Refuses, before anything is allocated, a declared size the compressed bytes cannot hold:
/// snappy and zstd frames state their decompressed length, and deflate expands at most about
/// 1,032 to 1. Without this, a 33-byte message claiming 40 MB got a 40 MB buffer before the
/// stream was found corrupt (found by fuzzing); now one reply costs at most about a thousand
/// times its own size, and never more than the limit.
fn check_declared_size(
    compressor: Compressor,
    compressed: &[u8],
    size: usize,
) -> Result<(), WireError> {
    let states = |n: u64| {
        if n == size as u64 {
            Ok(())
        } else {
            Err(WireError::Compression(format!(
                "{} data holds {n} bytes, header says {size}",
                compressor.name()
            )))
        }
    };
    match compressor {
        Compressor::Snappy => match snap::raw::decompress_len(compressed) {
            Ok(n) => states(n as u64),
            Err(e) => Err(WireError::Compression(format!("corrupt snappy data: {e}"))),
        },
        Compressor::Zstd => match zstd::zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(n)) => states(n),
            Ok(None) => Ok(()), // the frame does not say; the limit still holds
            Err(_) => Err(WireError::Compression("corrupt zstd frame header".into())),
        },
        Compressor::Zlib { .. } => {
            const DEFLATE_MAX_RATIO: usize = 1032;
            if size > compressed.len().saturating_mul(DEFLATE_MAX_RATIO) + 64 {
                Err(WireError::Compression(format!(
                    "{} bytes of zlib data cannot inflate to the {size} bytes the header says",
                    compressed.len()
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// What [`decompress_message`] unwrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decompressed {
    /// The compressor the sender used.
    pub compressor: Compressor,
    /// The original message's opcode.
    pub op_code: i32,
    /// Length of the rebuilt message (header included) now in `out`.
    pub length: usize,
}

impl Codec {
    /// Wraps the complete message `message` (header included) in OP_COMPRESSED, appended to `out`.
    /// The new message keeps the original's request id and `responseTo`.
    pub fn compress_message(
        &mut self,
        message: &[u8],
        compressor: Compressor,
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let header = Header::parse(message)?;
        let payload = &message[HEADER_LEN..];
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_LEN]);
        out.extend_from_slice(&header.op_code.to_le_bytes());
        out.extend_from_slice(&(payload.len() as i32).to_le_bytes());
        out.push(compressor.id());
        if let Err(e) = self.compress(compressor, payload, out) {
            out.truncate(start);
            return Err(WireError::Compression(e.to_string()));
        }
        let length = out.len() - start;
        Header {
            length: i32::try_from(length).map_err(|_| WireError::BadLength(length as i64))?,
            request_id: header.request_id,
            response_to: header.response_to,
            op_code: OpCode::Compressed as i32,
        }
        .write(&mut out[start..start + HEADER_LEN]);
        Ok(())
    }

    /// Unwraps the complete OP_COMPRESSED message `message` (header included), writing the
    /// original message — header rebuilt — into `out` (cleared first). The declared size is
    /// checked against `limits` before anything is allocated.
    pub fn decompress_message(
        &mut self,
        message: &[u8],
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Result<Decompressed, WireError> {
        let header = Header::parse(message)?;
        if header.op_code != OpCode::Compressed as i32 {
            return Err(WireError::UnexpectedOpCode(header.op_code));
        }
        let body = &message[HEADER_LEN..];
        if body.len() < PREFIX_LEN {
            return Err(WireError::Truncated {
                needed: HEADER_LEN + PREFIX_LEN,
                available: message.len(),
            });
        }
        let op_code = read_i32(body, 0)?;
        if op_code == OpCode::Compressed as i32 {
            return Err(WireError::Compression(
                "OP_COMPRESSED wraps another OP_COMPRESSED".into(),
            ));
        }
        let size = read_i32(body, 4)?;
        let size = usize::try_from(size).map_err(|_| WireError::BadLength(size as i64))?;
        let length = HEADER_LEN + size;
        if length > limits.max_message_size {
            return Err(WireError::TooLarge {
                length,
                max: limits.max_message_size,
            });
        }
        let compressor = Compressor::from_id(body[8])
            .ok_or_else(|| WireError::Compression(format!("unknown compressor id {}", body[8])))?;
        let data = &body[PREFIX_LEN..];
        check_declared_size(compressor, data, size)?;
        out.clear();
        if matches!(compressor, Compressor::Zstd)
            && matches!(zstd::zstd_safe::get_frame_content_size(data), Ok(None))
        {
            // A zstd frame that does not state its size (a streaming compressor's) cannot be
            // checked up front, and zeroing the declared size first would let a few bytes
            // claiming 48 MB cost 48 MB. Such a frame is inflated as a stream instead: the
            // buffer grows with what the data really holds, never past the declared size.
            out.resize(HEADER_LEN, 0);
            inflate_zstd_stream(data, size, out)?;
        } else {
            out.resize(length, 0);
            self.decompress(compressor, data, &mut out[HEADER_LEN..])
                .map_err(|e| {
                    WireError::Compression(format!("corrupt {} data: {e}", compressor.name()))
                })?;
        }
        Header {
            length: length as i32,
            request_id: header.request_id,
            response_to: header.response_to,
            op_code,
        }
        .write(&mut out[..HEADER_LEN]);
        Ok(Decompressed {
            compressor,
            op_code,
            length,
        })
    }
}
