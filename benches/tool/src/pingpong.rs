//! The physical limit: a workload's request bytes written and the reply read back over plain
//! std sockets, one thread and one socket per task, with nothing else. No pool, no encoding per
//! operation, no decoding beyond the cursor id a find-many must send back: what loopback and
//! the server cost, which no driver can beat.

use std::io::{Read, Write};
use std::net::TcpStream;

use bson::{Document, RawDocument, doc};
use may_mongo_protocol::{HEADER_LEN, Limits, MsgFlags, OpMsgBuilder};

use crate::point::{self, Outcome, Record, Spec, Window};
use crate::workload::{INSERT_MANY_DOCS, Workload};

fn message(body: &Document, docs: &[Document]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = OpMsgBuilder::new(&mut out, MsgFlags::default(), Limits::default());
    b.body(body).unwrap();
    if !docs.is_empty() {
        b.begin_sequence("documents").unwrap();
        for d in docs {
            b.push(d).unwrap();
        }
    }
    b.finish(1, 0).unwrap();
    out
}

/// The request a driver sends for one operation of `workload` (for find-many, the `find`).
pub fn request(workload: Workload, small: &Document) -> Vec<u8> {
    let insert = doc! { "insert": "inserts", "ordered": true, "$db": "bench" };
    match workload {
        Workload::FindOne => message(
            &doc! {
                "find": "coll", "filter": { "_id": 1 }, "limit": 1, "singleBatch": true, "$db": "bench",
            },
            &[],
        ),
        Workload::FindMany => message(
            &doc! { "find": "tweets", "filter": {}, "$db": "bench" },
            &[],
        ),
        Workload::InsertOne => message(&insert, std::slice::from_ref(small)),
        Workload::InsertMany => message(&insert, &vec![small.clone(); INSERT_MANY_DOCS]),
    }
}

/// Reads one reply into `buf`; returns its length.
fn read_reply(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    sock.read_exact(&mut buf[..HEADER_LEN])?;
    let len = i32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
    if buf.len() < len {
        buf.resize(len, 0);
    }
    sock.read_exact(&mut buf[HEADER_LEN..len])?;
    Ok(len)
}

/// The cursor id in an OP_MSG reply (flags, kind-0 byte, then the body).
fn cursor_id(reply: &[u8]) -> Result<i64, String> {
    let body = RawDocument::from_bytes(&reply[HEADER_LEN + 5..]).map_err(|e| e.to_string())?;
    body.get_document("cursor")
        .and_then(|c| c.get_i64("id"))
        .map_err(|e| format!("no cursor id in the reply: {e}"))
}

pub fn run(spec: &Spec) -> Result<Outcome, String> {
    let request = request(spec.workload, &spec.data.ours("small_doc"));
    let w = Window::new();
    let (port, host) = (spec.port, host(&spec.uri));
    let workload = spec.workload;
    point::on_threads(&w, spec, |_| {
        let (w, request, host) = (w.clone(), request.clone(), host.clone());
        move || {
            let mut sock = TcpStream::connect((host.as_str(), port)).map_err(|e| e.to_string())?;
            sock.set_nodelay(true).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut rec = Record::new();
            while !w.stopped() {
                w.time(&mut rec, || -> Result<(), String> {
                    sock.write_all(&request).map_err(|e| e.to_string())?;
                    let len = read_reply(&mut sock, &mut buf).map_err(|e| e.to_string())?;
                    if workload == Workload::FindMany {
                        let mut id = cursor_id(&buf[..len])?;
                        while id != 0 {
                            let more = message(
                                &doc! { "getMore": id, "collection": "tweets", "$db": "bench" },
                                &[],
                            );
                            sock.write_all(&more).map_err(|e| e.to_string())?;
                            let len = read_reply(&mut sock, &mut buf).map_err(|e| e.to_string())?;
                            id = cursor_id(&buf[..len])?;
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(rec)
        }
    })
}

/// The host of the URI's first seed (the ping-pong connects to it directly).
fn host(uri: &str) -> String {
    let hosts = uri.split_once("://").map_or(uri, |p| p.1);
    let hosts = hosts.split(['/', '?']).next().unwrap_or("");
    let first = hosts.rsplit('@').next().unwrap_or(hosts);
    let first = first.split(',').next().unwrap_or(first);
    match first.rsplit_once(':') {
        Some((h, _)) => h.trim_matches(['[', ']']).to_string(),
        None => first.to_string(),
    }
}
