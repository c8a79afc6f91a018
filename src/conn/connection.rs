//! A connection: a stream, what the handshake learned, and two reusable buffers.
//!
//! The hot path is `round_trip`: encode the command into `wbuf` (reused, never freed between
//! operations), write it in one call, read the reply into `rbuf` (reused too), and hand back
//! the body as a borrowed `&RawDocument` — nothing is decoded until an operation asks for a
//! field. So a steady-state operation allocates nothing here.
//!
//! A connection knows whether an operation is *in flight*: the flag is set before the first
//! byte is written and cleared only after a whole, well-formed reply has been read. If the
//! operation is abandoned half-way — an I/O error, a timeout, a malformed reply, a panic, or a
//! cancelled coroutine unwinding through us — the flag stays set, and the pool closes the
//! connection instead of handing it to the next caller mid-message.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bson::RawDocument;

use super::description::StreamDescription;
use super::handshake::{
    COMMAND_NOT_FOUND, MAX_WIRE_VERSION, MIN_WIRE_VERSION, check_ok, hello_command,
    is_master_command, negotiate_compressor,
};
use crate::address::ServerAddress;
use crate::error::{Error, Result};
use crate::runtime::{self, Core, Stream};
use crate::wire::{
    BodyField, Codec, Compressor, HEADER_LEN, Header, Limits, MsgFlags, OpCode, OpMsg,
    OpMsgBuilder, OpReply, WireError, encode_op_query, may_compress, next_request_id,
};

/// Initial size of the read buffer; replies to point operations fit in it.
const INITIAL_READ_BUF: usize = 16 * 1024;
/// A buffer grown past this by a large reply or request is released after use, so idle pooled
/// connections do not each pin megabytes.
const RETAINED_BUF: usize = 1024 * 1024;

/// Settings a connection needs from the client's options.
#[derive(Clone, Debug)]
pub(crate) struct ConnectSettings {
    pub core: Core,
    pub connect_timeout: Duration,
    pub socket_timeout: Option<Duration>,
    pub metadata: bson::Document,
    /// The client's credential; pooled connections authenticate with it, monitors' do not.
    pub auth: Option<std::sync::Arc<crate::auth::Authenticator>>,
    /// Compressors to offer in the handshake, in order of preference.
    pub compressors: Vec<Compressor>,
    /// TLS, when on: every connection (monitors' too) wraps its socket in a session.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The Stable API fields (`apiVersion`, ...), encoded once, when the client declares a
    /// version: every command on every connection carries them (see `Connection::prepare`).
    pub server_api: Option<BodyField>,
}

/// An established, handshaken connection.
pub(crate) struct Connection {
    stream: Stream,
    address: ServerAddress,
    description: StreamDescription,
    /// Set while an operation is between its first written byte and its complete reply.
    in_flight: bool,
    wbuf: Vec<u8>,
    rbuf: Vec<u8>,
    /// Length of the reply currently held in `rbuf`.
    reply_len: usize,
    /// Where the last OP_MSG reply's body lies in `rbuf`.
    reply_body: std::ops::Range<usize>,
    /// The prepared message was compressed: `wbuf` holds it compressed, `zbuf` plain.
    wbuf_plain_in_zbuf: bool,
    /// The compressor both sides agreed on in the handshake, if any, and its contexts, kept
    /// for the connection's life (boxed: most connections never compress).
    compression: Option<(Compressor, Box<Codec>)>,
    /// Where a message is compressed or a reply decompressed; then swapped with `wbuf` or
    /// `rbuf`, so no message is copied twice and all three buffers are reused.
    zbuf: Vec<u8>,
    /// `socketTimeoutMS`, and the read/write timeout the socket has now (an operation with a
    /// deadline shortens it; the next operation without one restores it).
    socket_timeout: Option<Duration>,
    io_timeout: Option<Duration>,
    /// The current operation's deadline, if it has one: every read and write is bounded by
    /// what is left of it, not by a window set once (a server trickling one byte at a time
    /// would otherwise restart the window with each byte).
    io_deadline: Option<Instant>,
    /// The client's Stable API fields, appended to every command this connection sends.
    server_api: Option<BodyField>,
}

impl Connection {
    /// Resolves, connects and handshakes: all of it bounded by `connectTimeoutMS`, and by
    /// what is left of `deadline` (the operation's that asked for a connection), whichever
    /// ends first.
    pub(crate) fn connect_until(
        address: &ServerAddress,
        settings: &ConnectSettings,
        deadline: Option<Instant>,
    ) -> Result<Connection> {
        Connection::open(address, settings, false, deadline).map(|(c, _)| c)
    }

    /// Like [`connect_until`](Self::connect_until), and also returns the handshake's `hello` reply, which a
    /// server monitor reads as its first check. The wire versions are not checked here: the
    /// topology judges them, so that selection fails at once with the reason instead of
    /// waiting for a server that will never qualify.
    pub(crate) fn connect_for_monitor(
        address: &ServerAddress,
        settings: &ConnectSettings,
    ) -> Result<(Connection, bson::Document)> {
        let (conn, reply) = Connection::open(address, settings, true, None)?;
        Ok((conn, reply.expect("asked for the reply")))
    }

    fn open(
        address: &ServerAddress,
        settings: &ConnectSettings,
        keep_reply: bool,
        op_deadline: Option<Instant>,
    ) -> Result<(Connection, Option<bson::Document>)> {
        let io_err = |e| Error::io(address, e);
        // Connecting as a whole — resolve, connect, TLS, hello, authentication — ends at
        // connectTimeoutMS from now, or at the operation's deadline if that comes first.
        let connect_deadline = Instant::now() + settings.connect_timeout;
        let deadline = op_deadline.map_or(connect_deadline, |d| d.min(connect_deadline));
        let left = || {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(io_err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the time limit ran out while connecting",
                )))
            } else {
                Ok(left)
            }
        };
        let stream = if address.is_unix_socket() {
            runtime::connect_unix(settings.core, &address.host).map_err(io_err)?
        } else {
            let addrs = runtime::resolve(settings.core, &address.host, address.port, left()?)
                .map_err(io_err)?;
            runtime::connect(settings.core, &addrs, left()?).map_err(io_err)?
        };
        // The TLS and MongoDB handshakes are part of connecting: bound them by what is left.
        let window = left()?;
        stream
            .set_read_timeout(Some(window))
            .and_then(|()| stream.set_write_timeout(Some(window)))
            .map_err(io_err)?;
        let stream = match &settings.tls {
            Some(config) => stream
                .into_tls(config.clone(), &address.host)
                .map_err(io_err)?,
            None => stream,
        };
        let mut conn = Connection {
            stream,
            address: address.clone(),
            description: StreamDescription::from_hello(
                RawDocument::from_bytes(&[5, 0, 0, 0, 0]).expect("empty document"),
            ),
            in_flight: false,
            wbuf: Vec::with_capacity(1024),
            rbuf: vec![0; INITIAL_READ_BUF],
            reply_len: 0,
            reply_body: 0..0,
            wbuf_plain_in_zbuf: false,
            compression: None,
            zbuf: Vec::new(),
            // Until the handshake is done, the connect deadline bounds every read and write
            // (socketTimeoutMS does not apply yet).
            socket_timeout: None,
            io_timeout: Some(window),
            io_deadline: Some(deadline),
            server_api: settings.server_api.clone(),
        };
        // A monitor's connection (`keep_reply`) never authenticates; a pooled one does, here,
        // before the pool can hand it to anyone.
        let auth = settings.auth.as_deref().filter(|_| !keep_reply);
        let mut hello = hello_command(&settings.metadata, &settings.compressors);
        let speculative = auth.map(|a| a.prepare_hello(&mut hello)).transpose()?;
        let (reply, speculative_reply) = conn
            .handshake(hello, &settings.metadata, &settings.compressors, keep_reply)
            .map_err(|e| handshake_timeout(e, settings.connect_timeout))?;
        if let (Some(auth), Some(speculative)) = (auth, speculative) {
            let offered = conn.description.sasl_supported_mechs.clone();
            auth.authenticate(speculative, speculative_reply, &offered, |command| {
                let reply = conn.round_trip(next_request_id(), |m| m.body(&command))?;
                check_ok(reply)?;
                crate::decode::to_document(reply)
            })?;
        }
        conn.socket_timeout = settings.socket_timeout;
        conn.limit_io(None)?;
        Ok((conn, reply))
    }

    /// Introduces the driver and reads the server's limits; returns the reply as a document
    /// when `keep_reply` — a monitor's connection, which also leaves the wire-version check
    /// to the topology (pooled connections don't need the reply, so they don't decode it).
    /// Also returns the server's `speculativeAuthenticate` reply, when it gave one.
    fn handshake(
        &mut self,
        hello: bson::Document,
        metadata: &bson::Document,
        compressors: &[Compressor],
        keep_reply: bool,
    ) -> Result<(Option<bson::Document>, Option<bson::Document>)> {
        let keep = |reply: &RawDocument| -> Result<Option<bson::Document>> {
            keep_reply
                .then(|| crate::decode::to_document(reply))
                .transpose()
        };
        let reply = self.round_trip(next_request_id(), |m| m.body(&hello))?;
        let speculative = match reply.get_document("speculativeAuthenticate") {
            Ok(d) => Some(crate::decode::to_document(d)?),
            Err(_) => None,
        };
        let (description, kept) = match check_ok(reply) {
            Ok(()) => (StreamDescription::from_hello(reply), keep(reply)?),
            // With a Stable API version declared, the spec forbids legacy hello (and OP_QUERY):
            // the error stands, and the server is Unknown.
            Err(e) if e.code() == Some(COMMAND_NOT_FOUND) && self.server_api.is_none() => {
                // A server without `hello`: ask the legacy way.
                let is_master = is_master_command(metadata, compressors);
                let reply = self.legacy_round_trip(&is_master)?;
                check_ok(reply)?;
                (StreamDescription::from_hello(reply), keep(reply)?)
            }
            Err(e) => return Err(e),
        };
        if !keep_reply
            && (description.max_wire_version < MIN_WIRE_VERSION
                || description.min_wire_version > MAX_WIRE_VERSION)
        {
            return Err(Error::protocol(
                &self.address,
                format!(
                    "server speaks wire versions {}..={}, this driver needs {}..={} (MongoDB 3.6 or newer)",
                    description.min_wire_version,
                    description.max_wire_version,
                    MIN_WIRE_VERSION,
                    MAX_WIRE_VERSION
                ),
            ));
        }
        // Authentication follows uncompressed whatever was agreed (its commands never travel
        // compressed); everything after it uses the compressor.
        self.compression = negotiate_compressor(compressors, &description.compression)
            .map(|c| (c, Box::default()));
        self.description = description;
        Ok((kept, speculative))
    }

    /// Bounds the next operation's reads and writes by `deadline` (an operation's overall time
    /// limit) as well as by `socketTimeoutMS`. Without a deadline, and with the socket already
    /// at `socketTimeoutMS`, this is free: no system call on the hot path.
    pub(crate) fn limit_io(&mut self, deadline: Option<Instant>) -> Result<()> {
        self.io_deadline = deadline;
        self.fit_timeout_to_deadline()
    }

    /// Sets the socket's timeout to `socketTimeoutMS` or what is left of the deadline,
    /// whichever is shorter; fails once nothing is left. Called before each read and write of
    /// an operation with a deadline (on the threaded core that is one `setsockopt` per read;
    /// on the coroutine core a field store), so that however the bytes arrive, the operation
    /// ends at its deadline.
    fn fit_timeout_to_deadline(&mut self) -> Result<()> {
        let wanted = match self.io_deadline {
            None => self.socket_timeout,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the operation's time limit ran out",
                    );
                    return Err(Error::io(&self.address, e));
                }
                Some(self.socket_timeout.map_or(left, |s| s.min(left)))
            }
        };
        if wanted != self.io_timeout {
            self.stream
                .set_read_timeout(wanted)
                .and_then(|()| self.stream.set_write_timeout(wanted))
                .map_err(|e| Error::io(&self.address, e))?;
            self.io_timeout = wanted;
        }
        Ok(())
    }

    /// What the handshake learned.
    pub(crate) fn description(&self) -> &StreamDescription {
        &self.description
    }

    /// Sends one OP_MSG built by `build` and returns the reply body: [`prepare`] then
    /// [`exchange`].
    ///
    /// [`prepare`]: Self::prepare
    /// [`exchange`]: Self::exchange
    pub(crate) fn round_trip(
        &mut self,
        request_id: i32,
        build: impl FnOnce(&mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError>,
    ) -> Result<&RawDocument> {
        self.prepare(request_id, build)?;
        self.exchange(request_id)
    }

    /// Encodes one OP_MSG built by `build` into the write buffer (compressed when agreed),
    /// ready for [`exchange`](Self::exchange). Size limits are checked as `build` writes, so
    /// nothing is sent if a document is too large. No I/O.
    ///
    /// Every OP_MSG the driver sends is built here — operations through the executor, but
    /// also the handshake's `hello`, authentication and the monitors' heartbeats — so this is
    /// where the Stable API fields are appended: the spec wants them on every command
    /// (`getMore` included, whose values the server checks against the cursor's opening
    /// command), and one place cannot forget one.
    pub(crate) fn prepare(
        &mut self,
        request_id: i32,
        build: impl FnOnce(&mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError>,
    ) -> Result<()> {
        self.recycle_buffers();
        let limits = self.description.limits();
        let mut msg = OpMsgBuilder::new(&mut self.wbuf, MsgFlags::default(), limits);
        build(&mut msg).map_err(encode_error)?;
        if let Some(api) = &self.server_api {
            msg.append_to_body(api).map_err(encode_error)?;
        }
        msg.finish(request_id, 0).map_err(encode_error)?;
        if let Some((compressor, codec)) = &mut self.compression
            && command_name(&self.wbuf).is_some_and(may_compress)
        {
            let compressor = *compressor;
            self.zbuf.clear();
            codec
                .compress_message(&self.wbuf, compressor, &mut self.zbuf)
                .map_err(encode_error)?;
            std::mem::swap(&mut self.wbuf, &mut self.zbuf);
            self.wbuf_plain_in_zbuf = true;
        }
        Ok(())
    }

    /// The prepared message as the server will read it once decompressed: what command
    /// monitoring shows. Valid between [`prepare`](Self::prepare) and
    /// [`exchange`](Self::exchange).
    pub(crate) fn prepared_message(&self) -> &[u8] {
        if self.wbuf_plain_in_zbuf {
            &self.zbuf
        } else {
            &self.wbuf
        }
    }

    /// Sends the prepared message and reads the reply; returns its body, borrowed from the
    /// read buffer (also available afterwards as [`reply`](Self::reply)). `ok: 0` is *not*
    /// checked here.
    pub(crate) fn exchange(&mut self, request_id: i32) -> Result<&RawDocument> {
        let limits = self.description.limits();
        self.send_and_receive(request_id, &limits, OpCode::Msg)?;
        let reply = &self.rbuf[..self.reply_len];
        let msg = OpMsg::parse_message(reply)
            .map_err(|e| Error::protocol(&self.address, format!("malformed OP_MSG reply: {e}")));
        match msg {
            Ok(m) if m.flags.contains(MsgFlags::MORE_TO_COME) => {
                // We never ask for exhaust replies; a server that streams anyway has left
                // more bytes on this socket than we will read.
                self.in_flight = true;
                Err(Error::protocol(
                    &self.address,
                    "unexpected moreToCome reply",
                ))
            }
            Ok(m) => {
                let start = m.body.as_bytes().as_ptr() as usize - reply.as_ptr() as usize;
                self.reply_body = start..start + m.body.as_bytes().len();
                Ok(m.body)
            }
            Err(e) => {
                self.in_flight = true;
                Err(e)
            }
        }
    }

    /// The body of the last reply [`exchange`](Self::exchange) returned.
    pub(crate) fn reply(&self) -> &RawDocument {
        RawDocument::from_bytes(&self.rbuf[self.reply_body.clone()])
            .expect("checked when the reply was read")
    }

    /// The OP_QUERY / OP_REPLY round trip, for the `isMaster` handshake fallback only.
    fn legacy_round_trip(&mut self, command: &bson::Document) -> Result<&RawDocument> {
        let request_id = next_request_id();
        let limits = self.description.limits();
        self.wbuf.clear();
        encode_op_query(
            &mut self.wbuf,
            request_id,
            0,
            "admin.$cmd",
            0,
            -1,
            command,
            &limits,
        )
        .map_err(encode_error)?;
        self.send_and_receive(request_id, &limits, OpCode::Reply)?;
        let parsed = OpReply::parse(&self.rbuf[HEADER_LEN..self.reply_len]);
        match parsed {
            Ok(r) if r.len() == 1 => Ok(r.documents().next().expect("one document")),
            Ok(r) => {
                self.in_flight = true;
                Err(Error::protocol(
                    &self.address,
                    format!("isMaster reply holds {} documents, expected 1", r.len()),
                ))
            }
            Err(e) => {
                self.in_flight = true;
                Err(Error::protocol(
                    &self.address,
                    format!("malformed OP_REPLY: {e}"),
                ))
            }
        }
    }

    fn unexpected_opcode(&self, op: i32) -> Error {
        let what = match OpCode::from_i32(op) {
            Some(OpCode::Compressed) => {
                "OP_COMPRESSED reply, but compression was not negotiated".to_string()
            }
            _ => format!("unexpected reply opcode {op}"),
        };
        Error::protocol(&self.address, what)
    }

    /// Writes `wbuf` and reads one whole reply, of opcode `expect`, into `rbuf`. On any failure
    /// the connection stays marked in flight, so the pool will close it.
    fn send_and_receive(&mut self, request_id: i32, limits: &Limits, expect: OpCode) -> Result<()> {
        self.in_flight = true;
        let mut written = 0;
        while written < self.wbuf.len() {
            self.fit_timeout_to_deadline()?;
            written += write_some(&mut self.stream, &self.wbuf[written..], &self.address)?;
        }
        self.stream
            .flush()
            .map_err(|e| Error::io(&self.address, e))?;

        // One read usually brings the whole reply; the header tells us if more must follow.
        if self.rbuf.len() < INITIAL_READ_BUF {
            self.rbuf.resize(INITIAL_READ_BUF, 0);
        }
        let mut filled = 0;
        while filled < HEADER_LEN {
            filled += self.read_more(filled, self.rbuf.len())?;
        }
        let address = &self.address;
        let header =
            Header::parse(&self.rbuf).map_err(|e| Error::protocol(address, e.to_string()))?;
        let len = header
            .checked_len(limits)
            .and_then(|len| header.check_reply_to(request_id).map(|()| len))
            .map_err(|e| Error::protocol(address, format!("bad reply header: {e}")))?;
        let compressed = header.op_code == OpCode::Compressed as i32 && self.compression.is_some();
        if header.op_code != expect as i32 && !compressed {
            return Err(self.unexpected_opcode(header.op_code));
        }
        if filled > len {
            return Err(Error::protocol(
                address,
                "server sent bytes beyond its reply",
            ));
        }
        while filled < len {
            // The buffer grows with the bytes that have arrived (doubling), not to the declared
            // length at once: a header claiming 48 MB followed by silence costs what was
            // sent, not 48 MB of zeroes.
            if self.rbuf.len() == filled {
                let grown = (filled * 2).clamp(INITIAL_READ_BUF, len);
                self.rbuf.resize(grown, 0);
            }
            let end = self.rbuf.len().min(len);
            filled += self.read_more(filled, end)?;
        }
        self.reply_len = len;
        if compressed {
            // Corrupt data, or a size over the limit, leaves the connection in flight: the
            // pool closes it.
            let address = &self.address;
            let (_, codec) = self.compression.as_mut().expect("checked above");
            let d = codec
                .decompress_message(&self.rbuf[..len], limits, &mut self.zbuf)
                .map_err(|e| Error::protocol(address, format!("bad compressed reply: {e}")))?;
            std::mem::swap(&mut self.rbuf, &mut self.zbuf);
            self.reply_len = d.length;
            if d.op_code != expect as i32 {
                return Err(self.unexpected_opcode(d.op_code));
            }
        }
        self.in_flight = false;
        Ok(())
    }

    /// One read into `rbuf[filled..end]`, within what is left of the operation's deadline.
    fn read_more(&mut self, filled: usize, end: usize) -> Result<usize> {
        self.fit_timeout_to_deadline()?;
        read_some(&mut self.stream, &mut self.rbuf[filled..end], &self.address)
    }

    /// Releases buffers a large message grew, before the next operation.
    fn recycle_buffers(&mut self) {
        self.wbuf.clear();
        self.wbuf_plain_in_zbuf = false;
        if self.wbuf.capacity() > RETAINED_BUF {
            self.wbuf = Vec::with_capacity(1024);
        }
        if self.rbuf.len() > RETAINED_BUF {
            self.rbuf = vec![0; INITIAL_READ_BUF];
        }
        if self.zbuf.capacity() > RETAINED_BUF {
            self.zbuf = Vec::new();
        }
    }
}

impl crate::pool::PoolConnection for Connection {
    fn is_broken(&self) -> bool {
        self.in_flight
    }

    /// Closes the socket (no I/O beyond the shutdown syscall; safe in `Drop` and on unwind).
    fn close(self) {
        self.stream.shutdown();
    }
}

/// Opens driver connections for a pool: resolve, connect, handshake.
pub(crate) struct Connector {
    pub(crate) address: ServerAddress,
    pub(crate) settings: ConnectSettings,
}

impl crate::pool::Establish for Connector {
    type Conn = Connection;

    /// Connects and handshakes. The pool calls this on a driver stack (a check-out's) or on
    /// its background task's own 1 MiB stack: a TLS handshake with SCRAM took 60 KiB in an
    /// unoptimised build, more than a coroutine's default 32 KiB in all.
    fn establish(&self, deadline: Option<Instant>) -> Result<Connection> {
        Connection::connect_until(&self.address, &self.settings, deadline)
    }
}

/// Says which option bounded a handshake that timed out.
fn handshake_timeout(e: Error, connect_timeout: Duration) -> Error {
    match (e.io_error(), e.server()) {
        (Some(source), Some(address)) if source.kind() == std::io::ErrorKind::TimedOut => {
            let message = format!(
                "timed out: no handshake reply within connectTimeoutMS ({} ms)",
                connect_timeout.as_millis()
            );
            Error::io(
                address,
                std::io::Error::new(std::io::ErrorKind::TimedOut, message),
            )
        }
        _ => e,
    }
}

/// Maps an encoding failure (nothing was sent) to the user-facing error.
fn encode_error(e: WireError) -> Error {
    use crate::error::ErrorKind;
    match e {
        WireError::DocumentTooLarge { size, max } => {
            ErrorKind::DocumentTooLarge { size, max }.into()
        }
        WireError::MessageTooLarge { size, max } => ErrorKind::MessageTooLarge { size, max }.into(),
        WireError::Serialize(e) => Error::ser(e),
        other => Error::invalid_argument(other.to_string()),
    }
}

/// The name of the command in an encoded OP_MSG: its body's first key.
fn command_name(message: &[u8]) -> Option<&str> {
    let msg = OpMsg::parse_message(message).ok()?;
    let (name, _) = msg.body.iter().next()?.ok()?;
    Some(name.as_str())
}

fn write_some(stream: &mut Stream, buf: &[u8], address: &ServerAddress) -> Result<usize> {
    counted(
        stream.write(buf),
        address,
        (
            std::io::ErrorKind::WriteZero,
            "the connection took no more bytes",
        ),
        "timed out sending to the server",
    )
}

fn read_some(stream: &mut Stream, buf: &mut [u8], address: &ServerAddress) -> Result<usize> {
    counted(
        stream.read(buf),
        address,
        (
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by the server in the middle of a reply",
        ),
        "timed out waiting for the server's reply",
    )
}

/// One read's or write's outcome as the driver reports it: a byte count (0 after an
/// interruption: try again); zero bytes moved as `zero`; a timeout as `TimedOut` with
/// `timed_out`. A std socket's timeout surfaces as WouldBlock ("Resource temporarily
/// unavailable"), a may socket's as TimedOut: one kind, one message, for both cores.
fn counted(
    outcome: std::io::Result<usize>,
    address: &ServerAddress,
    zero: (std::io::ErrorKind, &str),
    timed_out: &str,
) -> Result<usize> {
    use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
    let error = |kind, message: &str| Error::io(address, std::io::Error::new(kind, message));
    match outcome {
        Ok(0) => Err(error(zero.0, zero.1)),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == Interrupted => Ok(0),
        Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => Err(error(TimedOut, timed_out)),
        Err(e) => Err(Error::io(address, e)),
    }
}
