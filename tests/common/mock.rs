//! A scripted wire-protocol server for faults a real server will not produce on demand:
//! a hang-up before, during or after a reply, a stall, garbage, a lying length, state-change
//! errors, a server without `hello`. Several of them play a replica set (`tests/retry.rs`,
//! `tests/replica_set_mock.rs`).
//!
//! It speaks through the driver's own sans-IO codec (`may_mongo_protocol`), from the server side.
//! Each connection runs on its own OS thread; the script decides what happens to each request.
//! CRUD semantics are never mocked here: those tests run against the real server.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Document, doc};
use may_mongo_protocol::{
    Compressor, HEADER_LEN, Header, Limits, MsgFlags, OpCode, OpMsg, OpMsgBuilder, OpQuery,
    compress_message, decompress_message, encode_op_reply,
};

/// One request as the script sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// True for a legacy OP_QUERY, false for OP_MSG.
    pub legacy: bool,
    /// The command name (first key).
    pub command: String,
    /// The command document.
    pub body: Document,
    /// The OP_MSG's document sequences (`documents`, `ops`, ...), by identifier, in order.
    pub sequences: Vec<(String, Vec<Document>)>,
    /// The compressor, when the request came as OP_COMPRESSED. Replies to it are compressed
    /// the same way, as a real server's are.
    pub compressor: Option<Compressor>,
    /// Which connection (0, 1, ...) and which request on it (0, 1, ...).
    pub connection: usize,
    pub index: usize,
}

/// What the server does with a request.
pub enum Action {
    /// Reply with this document (OP_MSG, or OP_REPLY to an OP_QUERY).
    Reply(Document),
    /// Send these bytes verbatim, then keep serving.
    Raw(Vec<u8>),
    /// Send these bytes verbatim, then close the connection.
    RawThenClose(Vec<u8>),
    /// Wait, then do the inner action.
    After(Duration, Box<Action>),
    /// Close the connection without replying.
    HangUp,
    /// Send these bytes one at a time, waiting this long before each: a server (or network)
    /// that keeps a reply alive without ever finishing it in time.
    Trickle(Vec<u8>, Duration),
}

/// A `hello` reply like a modern standalone server's.
pub fn hello_reply() -> Document {
    doc! {
        "isWritablePrimary": true, "helloOk": true, "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
        "minWireVersion": 0, "maxWireVersion": 21, "ok": 1.0,
    }
}

/// Encodes an OP_MSG reply to `response_to` with body `doc`.
pub fn op_msg_bytes(response_to: i32, doc: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = OpMsgBuilder::new(&mut out, MsgFlags::default(), Limits::default());
    b.body(doc).unwrap();
    b.finish(may_mongo_protocol::next_request_id(), response_to)
        .unwrap();
    out
}

pub struct MockServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Every request seen, in order.
    pub log: Arc<Mutex<Vec<Request>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl Request {
    /// The documents of the sequence named `identifier` (empty when there is none).
    pub fn sequence(&self, identifier: &str) -> &[Document] {
        self.sequences
            .iter()
            .find(|(id, _)| id == identifier)
            .map_or(&[], |(_, docs)| docs.as_slice())
    }
}

impl MockServer {
    /// Starts a server on a free loopback port; `script` answers each request. Returns the
    /// request id being answered alongside, for scripts that build raw replies.
    pub fn start<F>(script: F) -> MockServer
    where
        F: Fn(&Request, i32) -> Action + Send + Sync + 'static,
    {
        MockServer::start_inner(None, script)
    }

    /// [`start`](Self::start) behind TLS with `config` (a server certificate, and a client
    /// certificate verifier if the test wants one): a handshake that fails closes the
    /// connection before any request.
    pub fn start_tls<F>(config: Arc<rustls::ServerConfig>, script: F) -> MockServer
    where
        F: Fn(&Request, i32) -> Action + Send + Sync + 'static,
    {
        MockServer::start_inner(Some(config), script)
    }

    fn start_inner<F>(tls: Option<Arc<rustls::ServerConfig>>, script: F) -> MockServer
    where
        F: Fn(&Request, i32) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        {
            let (stop, log, connections) = (stop.clone(), log.clone(), connections.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            sock.set_nonblocking(false).unwrap();
                            let n = connections.fetch_add(1, Ordering::SeqCst);
                            let (script, log, stop) = (script.clone(), log.clone(), stop.clone());
                            let tls = tls.clone();
                            std::thread::spawn(move || match tls {
                                None => serve(
                                    sock,
                                    |s: &TcpStream, t| s.set_read_timeout(t).unwrap(),
                                    n,
                                    &*script,
                                    &log,
                                    &stop,
                                ),
                                Some(config) => {
                                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                                        return;
                                    };
                                    serve(
                                        rustls::StreamOwned::new(conn, sock),
                                        |s: &rustls::StreamOwned<_, TcpStream>, t| {
                                            s.sock.set_read_timeout(t).unwrap()
                                        },
                                        n,
                                        &*script,
                                        &log,
                                        &stop,
                                    )
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        MockServer {
            port,
            stop,
            log,
            connections,
        }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// A client of `core` for this server. `userinfo` (with its `@`, or empty) and `query`
    /// go into the URI; connecting is bounded at 5 s; `tweak` adjusts the options last.
    pub fn client(
        &self,
        core: may_mongo::Core,
        userinfo: &str,
        query: &str,
        tweak: impl FnOnce(&mut may_mongo::ClientOptions),
    ) -> may_mongo::Client {
        // As `common::init` does (this module is also used by a bench without `common`).
        may::config().set_worker_pin(false);
        let uri = format!("mongodb://{userinfo}127.0.0.1:{}/?{query}", self.port);
        let mut opts = may_mongo::ClientOptions::parse(&uri).run().unwrap();
        opts.core = core;
        opts.connect_timeout = Duration::from_secs(5);
        tweak(&mut opts);
        may_mongo::Client::with_options(opts).unwrap()
    }

    /// Every request seen so far whose command is `name`.
    pub fn requests(&self, name: &str) -> Vec<Request> {
        let log = self.log.lock().unwrap();
        log.iter().filter(|r| r.command == name).cloned().collect()
    }

    /// The commands seen so far, as `(legacy, name)`.
    pub fn commands(&self) -> Vec<(bool, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|r| (r.legacy, r.command.clone()))
            .collect()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve<S: Read + Write>(
    mut sock: S,
    set_read_timeout: impl Fn(&S, Option<Duration>),
    connection: usize,
    script: &(dyn Fn(&Request, i32) -> Action + Send + Sync),
    log: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
) {
    set_read_timeout(&sock, Some(Duration::from_millis(200)));
    let mut index = 0;
    loop {
        let mut header = [0u8; HEADER_LEN];
        match sock.read_exact(&mut header) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        let h = Header::parse(&header).unwrap();
        let mut payload = vec![0u8; h.length as usize - HEADER_LEN];
        set_read_timeout(&sock, None);
        if sock.read_exact(&mut payload).is_err() {
            return;
        }
        set_read_timeout(&sock, Some(Duration::from_millis(200)));
        let (h, payload, compressor) = if h.op_code == OpCode::Compressed as i32 {
            let mut whole = header.to_vec();
            whole.extend_from_slice(&payload);
            let mut plain = Vec::new();
            let d = decompress_message(&whole, &Limits::default(), &mut plain).unwrap();
            let h = Header::parse(&plain).unwrap();
            (h, plain[HEADER_LEN..].to_vec(), Some(d.compressor))
        } else {
            (h, payload, None)
        };
        let (legacy, body, sequences) = if h.op_code == OpCode::Query as i32 {
            let q = OpQuery::parse(&payload).unwrap();
            (true, Document::try_from(q.query).unwrap(), Vec::new())
        } else {
            let m = OpMsg::parse(&payload).unwrap();
            let sequences = m
                .sequences()
                .map(|s| {
                    let docs = s.documents().map(|d| Document::try_from(d).unwrap());
                    (s.identifier.to_string(), docs.collect())
                })
                .collect();
            (false, Document::try_from(m.body).unwrap(), sequences)
        };
        let request = Request {
            legacy,
            command: body.keys().next().cloned().unwrap_or_default(),
            body,
            sequences,
            compressor,
            connection,
            index,
        };
        index += 1;
        log.lock().unwrap().push(request.clone());
        let mut action = script(&request, h.request_id);
        loop {
            match action {
                Action::After(d, inner) => {
                    std::thread::sleep(d);
                    action = *inner;
                }
                Action::Reply(doc) => {
                    let bytes = if legacy {
                        let mut out = Vec::new();
                        encode_op_reply(
                            &mut out,
                            1,
                            h.request_id,
                            0,
                            0,
                            &[doc],
                            &Limits::default(),
                        )
                        .unwrap();
                        out
                    } else {
                        op_msg_bytes(h.request_id, &doc)
                    };
                    let bytes = match compressor {
                        Some(c) => {
                            let mut out = Vec::new();
                            compress_message(&bytes, c, &mut out).unwrap();
                            out
                        }
                        None => bytes,
                    };
                    if sock.write_all(&bytes).is_err() {
                        return;
                    }
                    break;
                }
                Action::Raw(bytes) => {
                    if sock.write_all(&bytes).is_err() {
                        return;
                    }
                    break;
                }
                Action::RawThenClose(bytes) => {
                    let _ = sock.write_all(&bytes);
                    return;
                }
                Action::HangUp => return,
                Action::Trickle(bytes, gap) => {
                    for b in bytes {
                        std::thread::sleep(gap);
                        if sock.write_all(&[b]).is_err() {
                            return;
                        }
                    }
                    break;
                }
            }
        }
    }
}
