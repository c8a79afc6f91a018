//! Teaching program 4: a toy green-thread driver, whole, in one file. No database needed.
//!
//! Three parts, each a few dozen lines:
//!
//! - **A tiny wire server** on plain OS threads, one per connection. It reads OP_MSG
//!   requests and answers `{ n: <the request's n> + 1, ok: 1 }`. It speaks through the
//!   driver's own sans-IO codec (`may_mongo_protocol`): the same encoder and parser the
//!   driver uses, from the server's side.
//! - **The toy driver**: `ToyClient::call(doc)`, a blocking-style call. It takes a
//!   connection from a pool, encodes the command into a buffer, writes it, reads the reply's
//!   16-byte header and then the rest, and parses the body. The pool is a may channel of
//!   connections: when all connections are out, `recv` parks the coroutine until one comes
//!   back. The sockets are may sockets, so every wait parks the coroutine, never a thread.
//! - **10,000 coroutines**, each making 10 calls in plain sequential code, over 8 pooled
//!   connections.
//!
//! Everything the real driver adds sits on top of this loop: server selection, retries,
//! time limits, sessions, and the care that a half-used connection is never put back. The
//! loop itself stays the same: encode (no I/O), write and read (parks), decode (no I/O).
//!
//! ```text
//! cargo run --release --example teach_toy_driver
//! ```

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use may_mongo::bson::{Document, doc};
use may_mongo_protocol::{
    HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder, next_request_id,
};

/// Encodes `body` as one OP_MSG answering (or asking, with `response_to` 0) into `out`.
fn encode(out: &mut Vec<u8>, body: &Document, request_id: i32, response_to: i32) {
    out.clear();
    let mut msg = OpMsgBuilder::new(out, MsgFlags::default(), Limits::default());
    msg.body(body).unwrap();
    msg.finish(request_id, response_to).unwrap();
}

/// Reads one whole message (header, then as many bytes as it declares) into `buf`.
fn read_message(stream: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<Header> {
    buf.resize(HEADER_LEN, 0);
    stream.read_exact(buf)?;
    let header = Header::parse(buf).map_err(std::io::Error::other)?;
    buf.resize(header.length as usize, 0);
    stream.read_exact(&mut buf[HEADER_LEN..])?;
    Ok(header)
}

/// The tiny server: answers each request with its `n` plus one.
fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let (mut request, mut reply) = (Vec::new(), Vec::new());
                while let Ok(header) = read_message(&mut conn, &mut request) {
                    let body = OpMsg::parse_message(&request).unwrap().body;
                    let n = body.get_i64("n").unwrap();
                    let answer = doc! { "n": n + 1, "ok": 1.0 };
                    encode(&mut reply, &answer, next_request_id(), header.request_id);
                    conn.write_all(&reply).unwrap();
                }
            });
        }
    });
    addr
}

/// The toy driver: a pool of may sockets, and one blocking-style call.
struct ToyClient {
    give_back: may::sync::mpmc::Sender<may::net::TcpStream>,
    take: may::sync::mpmc::Receiver<may::net::TcpStream>,
}

impl ToyClient {
    fn connect(addr: SocketAddr, connections: usize) -> ToyClient {
        let (give_back, take) = may::sync::mpmc::channel();
        for _ in 0..connections {
            give_back
                .send(may::net::TcpStream::connect(addr).unwrap())
                .unwrap();
        }
        ToyClient { give_back, take }
    }

    /// Sends `command`, returns the reply's body. Blocking-style: in a coroutine, every wait
    /// below (for a connection, for the socket) parks the coroutine.
    fn call(&self, command: &Document) -> Document {
        // 1. A connection: parks here while all of them are out.
        let mut conn = self.take.recv().unwrap();
        // 2. Encode: no I/O, just bytes in a buffer.
        let (mut out, mut reply) = (Vec::with_capacity(64), Vec::new());
        let request_id = next_request_id();
        encode(&mut out, command, request_id, 0);
        // 3. The round trip: `EAGAIN` on either side parks the coroutine.
        conn.write_all(&out).unwrap();
        let header = read_message(&mut conn, &mut reply).unwrap();
        assert_eq!(header.response_to, request_id, "a reply to our request");
        // 4. The connection goes back before decoding: another coroutine may use it now.
        self.give_back.send(conn).unwrap();
        // 5. Decode: no I/O.
        let body = OpMsg::parse_message(&reply).unwrap().body;
        Document::try_from(body).unwrap()
    }
}

fn main() {
    may::config().set_workers(2).set_worker_pin(false);
    let addr = start_server();
    let client = std::sync::Arc::new(ToyClient::connect(addr, 8));

    const COROUTINES: i64 = 10_000;
    const CALLS: i64 = 10;
    let started = Instant::now();
    let handles: Vec<_> = (0..COROUTINES)
        .map(|i| {
            let client = client.clone();
            may::go!(move || {
                // Plain sequential code: each call blocks this coroutine, and only it.
                let mut n = i * 1000;
                for _ in 0..CALLS {
                    n = client
                        .call(&doc! { "ping": 1, "n": n })
                        .get_i64("n")
                        .unwrap();
                }
                n - i * 1000
            })
        })
        .collect();
    let answered: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let took = started.elapsed();
    assert_eq!(
        answered,
        COROUTINES * CALLS,
        "every call answered, in order"
    );
    println!(
        "{COROUTINES} coroutines x {CALLS} calls over 8 connections: {} calls in {:.2} s, {:.0} calls/s",
        COROUTINES * CALLS,
        took.as_secs_f64(),
        (COROUTINES * CALLS) as f64 / took.as_secs_f64()
    );
    println!("(2 may worker threads and 8 server threads: no thread per caller.)");
}
