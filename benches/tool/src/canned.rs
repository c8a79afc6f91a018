//! A canned-reply wire server: it answers every command at once with a reply encoded ahead
//! of time, so the figures measured against it are the client's own costs.
//!
//! It runs in a process of its own (`may_mongo_bench serve-canned DATA_DIR`), so it shares
//! neither may's scheduler nor the allocator with the client being measured. One OS thread per
//! connection; each request is read whole, its command named from the body's first key, and
//! the matching pre-encoded reply written with only `responseTo` patched.
//!
//! What it answers:
//! - `hello`/`isMaster` (also as a legacy OP_QUERY): a standalone server, wire version 21.
//! - `find` with a non-empty filter: one document, the spec's tweet, cursor exhausted.
//! - `find` with an empty filter: a cursor over [`many_docs`] copies of the tweet, 101 in the
//!   first batch like a real server. The cursor id *is* the number of documents left, so
//!   `getMore` needs no state: its reply is looked up by id.
//! - `insert`: `{n, ok: 1}` with `n` the number of documents sent (counted, not decoded).
//! - anything else: `{ok: 1}`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use bson::{Document, RawDocument, doc};
use may_mongo_protocol::{HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder};

use crate::data::Data;

/// How many documents an empty-filter `find` on `collection` returns: the spec's 10,000 for
/// DriverBench's `corpus`, otherwise the matrix's find-many size.
pub fn many_docs(collection: &str) -> i64 {
    if collection == "corpus" {
        10_000
    } else {
        crate::workload::FIND_MANY_DOCS as i64
    }
}

/// A real server's first batch.
const FIRST_BATCH: i64 = 101;

/// Pre-encoded replies.
struct Replies {
    hello: Vec<u8>,
    /// `hello` as an OP_REPLY, for drivers whose first handshake is a legacy OP_QUERY
    /// `isMaster` (the official driver's, without a declared server API).
    hello_legacy: Vec<u8>,
    find_one: Vec<u8>,
    /// First batches of an empty-filter find, by collection.
    find_many: HashMap<String, Vec<u8>>,
    /// `getMore` replies, by cursor id (= documents left before the batch).
    get_more: HashMap<i64, Vec<u8>>,
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
    fn new(tweet: &Document) -> Replies {
        let hello = doc! {
            "isWritablePrimary": true, "ismaster": true, "helloOk": true,
            "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "localTime": bson::DateTime::now(),
            "minWireVersion": 0, "maxWireVersion": 21, "connectionId": 1, "ok": 1.0,
        };
        let mut hello_legacy = Vec::new();
        may_mongo_protocol::encode_op_reply(
            &mut hello_legacy,
            0,
            0,
            0,
            0,
            std::slice::from_ref(&hello),
            &Limits::default(),
        )
        .expect("encode the legacy hello");
        let batch = |n: i64| vec![tweet.clone(); n as usize];
        // A getMore returns what is left, up to what fits in a 16 MiB reply.
        let tweet_len = tweet.to_vec().unwrap().len() as i64;
        let per_more = (16 * 1024 * 1024 - 4096) / (tweet_len + 8);
        let mut find_many = HashMap::new();
        let mut get_more = HashMap::new();
        for coll in ["tweets", "corpus"] {
            let total = many_docs(coll);
            let first = total.min(FIRST_BATCH);
            let mut left = total - first;
            find_many.insert(
                coll.to_string(),
                encode(&doc! {
                    "cursor": { "id": left, "ns": format!("bench.{coll}"), "firstBatch": batch(first) },
                    "ok": 1.0,
                }),
            );
            while left > 0 {
                let n = left.min(per_more);
                get_more.entry(left).or_insert_with(|| {
                    encode(&doc! {
                        "cursor": { "id": left - n, "ns": format!("bench.{coll}"), "nextBatch": batch(n) },
                        "ok": 1.0,
                    })
                });
                left -= n;
            }
        }
        Replies {
            hello: encode(&hello),
            hello_legacy,
            find_one: encode(&doc! {
                "cursor": { "id": 0i64, "ns": "bench.coll", "firstBatch": [tweet.clone()] }, "ok": 1.0,
            }),
            find_many,
            get_more,
            ok: encode(&doc! { "ok": 1.0 }),
        }
    }

    /// The reply to `msg`; `inserted` caches `{n: k, ok: 1}` by `k` for this connection.
    fn for_command<'r>(
        &'r self,
        msg: &OpMsg<'_>,
        inserted: &'r mut HashMap<i32, Vec<u8>>,
    ) -> &'r [u8] {
        let body = msg.body;
        let Some(Ok((name, value))) = body.iter().next() else {
            return &self.ok;
        };
        match name.as_str() {
            "hello" | "isMaster" | "ismaster" => &self.hello,
            "find" => {
                let empty = body
                    .get_document("filter")
                    .map_or(true, |f| f.as_bytes().len() <= 5);
                let coll = value.as_str().unwrap_or("");
                match self.find_many.get(coll) {
                    Some(reply) if empty => reply,
                    _ if empty => &self.find_many["tweets"],
                    _ => &self.find_one,
                }
            }
            "getMore" => {
                let id = value.as_i64().unwrap_or(0);
                self.get_more.get(&id).unwrap_or(&self.ok)
            }
            "insert" => {
                let n = count_documents(msg, body);
                inserted
                    .entry(n)
                    .or_insert_with(|| encode(&doc! { "n": n, "ok": 1.0 }))
            }
            _ => &self.ok,
        }
    }
}

/// The documents an insert carries, in a kind-1 sequence or the body's array.
fn count_documents(msg: &OpMsg<'_>, body: &RawDocument) -> i32 {
    let in_sequences: usize = msg.sequences().map(|s| s.documents().count()).sum();
    let in_body = body
        .get_array("documents")
        .map_or(0, |a| a.into_iter().count());
    (in_sequences + in_body) as i32
}

/// Serves on `listener` until the process is killed.
pub fn serve(listener: TcpListener, data: &Data) -> ! {
    // Built once and shared read-only by every connection thread: no locks on the reply path.
    let replies: &'static Replies = Box::leak(Box::new(Replies::new(&data.ours("tweet"))));
    for sock in listener.incoming() {
        let Ok(sock) = sock else { continue };
        let _ = sock.set_nodelay(true);
        let _ = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || connection(sock, replies));
    }
    unreachable!("incoming() never ends")
}

fn connection(mut sock: TcpStream, replies: &Replies) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut inserted = HashMap::new();
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
        let reply = if h.op_code == may_mongo_protocol::OpCode::Query as i32 {
            &replies.hello_legacy[..]
        } else {
            match OpMsg::parse(&buf[HEADER_LEN..len]) {
                Ok(m) => replies.for_command(&m, &mut inserted),
                Err(_) => return,
            }
        };
        // Only `responseTo` changes. Small replies are copied and sent in one write; a big
        // one (a getMore of thousands of tweets) goes as a patched header plus the rest.
        let sent = if reply.len() <= out.capacity() {
            out.clear();
            out.extend_from_slice(reply);
            out[8..12].copy_from_slice(&h.request_id.to_le_bytes());
            sock.write_all(&out)
        } else {
            let mut header = [0u8; HEADER_LEN];
            header.copy_from_slice(&reply[..HEADER_LEN]);
            header[8..12].copy_from_slice(&h.request_id.to_le_bytes());
            sock.write_all(&header)
                .and_then(|()| sock.write_all(&reply[HEADER_LEN..]))
        };
        if sent.is_err() {
            return;
        }
    }
}
