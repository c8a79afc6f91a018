//! A canned-reply wire server: it answers every command at once with a reply encoded ahead
//! of time, so the figures measured against it are the client's own costs.
//!
//! It runs in a process of its own (`may_mongo_bench serve-canned`), so it shares neither
//! may's scheduler nor the allocator with the client being measured. One OS thread per
//! connection; each request is read whole, its command named from the body's first key, and
//! the matching pre-encoded reply written with only `responseTo` patched: no decoding, no
//! allocation per request.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use bson::{Document, doc};
use may_mongo::wire::{HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder};

/// The document a canned `find` returns: a tweet-like document, as in the spec's benchmarks.
pub fn tweet() -> Document {
    doc! {
        "_id": 1,
        "text": "@may_mongo can coroutines beat threads? Measure, don't assume.",
        "user": { "id": 42, "name": "bench", "screen_name": "bench", "followers_count": 1234 },
        "retweet_count": 7, "favorited": false, "lang": "en",
        "entities": { "hashtags": [], "urls": [], "user_mentions": [] },
    }
}

/// Pre-encoded replies, by command name.
struct Replies {
    hello: Vec<u8>,
    /// `hello` as an OP_REPLY, for drivers whose first handshake is a legacy OP_QUERY
    /// `isMaster` (the official driver's, without a declared server API).
    hello_legacy: Vec<u8>,
    find: Vec<u8>,
    insert: Vec<u8>,
    ok: Vec<u8>,
}

fn encode(body: &Document) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = OpMsgBuilder::new(&mut out, MsgFlags::default(), Limits::default());
    b.body(body).expect("encode a canned reply");
    b.finish(0, 0).expect("finish a canned reply");
    out
}

impl Replies {
    fn new() -> Replies {
        let hello = doc! {
            "isWritablePrimary": true, "ismaster": true, "helloOk": true,
            "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "localTime": bson::DateTime::now(),
            "minWireVersion": 0, "maxWireVersion": 21, "connectionId": 1, "ok": 1.0,
        };
        let mut hello_legacy = Vec::new();
        may_mongo::wire::encode_op_reply(
            &mut hello_legacy,
            0,
            0,
            0,
            0,
            std::slice::from_ref(&hello),
            &Limits::default(),
        )
        .expect("encode the legacy hello");
        Replies {
            hello: encode(&hello),
            hello_legacy,
            find: encode(&doc! {
                "cursor": { "id": 0i64, "ns": "bench.coll", "firstBatch": [tweet()] }, "ok": 1.0,
            }),
            insert: encode(&doc! { "n": 1, "ok": 1.0 }),
            ok: encode(&doc! { "ok": 1.0 }),
        }
    }

    fn for_command(&self, name: &str) -> &[u8] {
        match name {
            "hello" | "isMaster" | "ismaster" => &self.hello,
            "find" => &self.find,
            "insert" => &self.insert,
            _ => &self.ok,
        }
    }
}

/// Serves on `listener` until the process is killed.
pub fn serve(listener: TcpListener) -> ! {
    let replies: &'static Replies = Box::leak(Box::new(Replies::new()));
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        let _ = sock.set_nodelay(true);
        std::thread::spawn(move || connection(sock, replies));
    }
    unreachable!("incoming() never ends")
}

fn connection(mut sock: TcpStream, replies: &Replies) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(4096);
    loop {
        if sock.read_exact(&mut buf[..HEADER_LEN]).is_err() {
            return;
        }
        let Ok(h) = Header::parse(&buf) else { return };
        let len = h.length as usize;
        if !(HEADER_LEN..=48_000_000).contains(&len) {
            return;
        }
        if buf.len() < len {
            buf.resize(len, 0);
        }
        if sock.read_exact(&mut buf[HEADER_LEN..len]).is_err() {
            return;
        }
        let reply = if h.op_code == may_mongo::wire::OpCode::Query as i32 {
            &replies.hello_legacy[..]
        } else {
            match OpMsg::parse(&buf[HEADER_LEN..len]) {
                Ok(m) => match m.body.iter().next() {
                    Some(Ok((name, _))) => replies.for_command(name.as_str()),
                    _ => &replies.ok,
                },
                Err(_) => return,
            }
        };
        out.clear();
        out.extend_from_slice(reply);
        out[8..12].copy_from_slice(&h.request_id.to_le_bytes());
        if sock.write_all(&out).is_err() {
            return;
        }
    }
}
