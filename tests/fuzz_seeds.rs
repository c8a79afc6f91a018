//! The fuzz targets' seed inputs (`fuzz/seeds/<target>/`), run on stable in every test run.
//!
//! The fuzz targets (`fuzz/fuzz_targets/`) need nightly and libFuzzer; this file feeds each
//! seed through the same public functions, so a change that breaks a parser on a real
//! message is caught by `cargo test` too. The paths are short copies of the targets' (a test
//! of the root crate cannot depend on the fuzz crate). What is expected of a seed comes from
//! its name: `invalid-*` must be refused, `regress-*` (a fixed crash, kept as a reproducer)
//! must only not panic, anything else must parse.
//!
//! `regenerate_seeds` (ignored) writes the seeds: real messages built with the driver's own
//! encoders, and URIs from MongoDB's connection-string spec tests.
//!
//! ```sh
//! cargo test --test fuzz_seeds -- --ignored regenerate_seeds
//! ```

use std::path::{Path, PathBuf};

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, RawDocument, Timestamp, doc, oid::ObjectId};
use may_mongo::uri::ConnectionString;
use may_mongo::{ClientOptions, StreamDescription};
use may_mongo_protocol::{
    BodyField, Compressor, HEADER_LEN, Header, Limits, MsgFlags, OpCode, OpMsg, OpMsgBuilder,
    OpReply, compress_message, decompress_message, encode_op_reply,
};

mod common;
use common::spec;

const TARGETS: [&str; 3] = ["reply_decoder", "op_msg", "uri"];

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target)
}

/// Every seed of `target`, sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("a seed file"))
        })
        .collect()
}

/// What `fuzz_targets/reply_decoder.rs` does: returns how many documents were decoded.
fn reply_decoder(data: &[u8]) -> Result<usize, String> {
    let limits = Limits::default();
    let header = Header::parse(data).map_err(|e| e.to_string())?;
    let len = header.checked_len(&limits).map_err(|e| e.to_string())?;
    let message = data.get(..len).ok_or("truncated")?;
    let mut unwrapped = Vec::new();
    let message = if header.op_code == OpCode::Compressed as i32 {
        decompress_message(message, &limits, &mut unwrapped).map_err(|e| e.to_string())?;
        &unwrapped[..]
    } else {
        message
    };
    let mut decoded = 0;
    let mut read = |doc: &RawDocument| -> Result<(), String> {
        let _ = StreamDescription::from_hello(doc).limits();
        let d = may_mongo::decode_document(doc).map_err(|e| e.to_string())?;
        let _ = may_mongo::topology::ServerState::from_hello(Some(&d));
        decoded += 1;
        Ok(())
    };
    match OpCode::from_i32(Header::parse(message).unwrap().op_code) {
        Some(OpCode::Msg) => {
            let msg = OpMsg::parse_message(message).map_err(|e| e.to_string())?;
            read(msg.body)?;
            for sequence in msg.sequences() {
                for doc in sequence.documents() {
                    read(doc)?;
                }
            }
        }
        Some(OpCode::Reply) => {
            let reply = OpReply::parse(&message[HEADER_LEN..]).map_err(|e| e.to_string())?;
            for doc in reply.documents() {
                read(doc)?;
            }
        }
        _ => return Err("neither OP_MSG nor OP_REPLY".into()),
    }
    Ok(decoded)
}

/// What `fuzz_targets/op_msg.rs` parses (its round trips are left to the fuzzer): whether
/// the bytes are an OP_MSG payload, a whole OP_MSG, or an OP_COMPRESSED that unwraps.
fn op_msg(data: &[u8]) -> (bool, bool, bool) {
    let payload = OpMsg::parse(data).is_ok();
    let message = OpMsg::parse_message(data).is_ok();
    let mut out = Vec::new();
    let compressed = decompress_message(data, &Limits::default(), &mut out).is_ok();
    if compressed {
        assert!(OpMsg::parse_message(&out).is_ok() || Header::parse(&out).is_ok());
    }
    (payload, message, compressed)
}

/// What `fuzz_targets/uri.rs` parses: `ClientOptions::parse` only where it does no DNS.
fn uri(data: &[u8]) -> Result<(), String> {
    let s = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    let cs = ConnectionString::parse(s).map_err(|e| e.to_string())?;
    if !cs.srv {
        // Some valid strings name options this driver refuses (loadBalanced, proxies).
        let _ = ClientOptions::parse(s).run();
    }
    Ok(())
}

#[test]
fn every_target_has_seeds() {
    for target in TARGETS {
        let n = seeds(target).len();
        assert!((5..=100).contains(&n), "{target}: {n} seeds");
    }
}

#[test]
fn reply_decoder_seeds() {
    for (name, data) in seeds("reply_decoder") {
        let got = reply_decoder(&data);
        if !name.starts_with("regress-") && !name.starts_with("invalid-") {
            let n = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(n >= 1, "{name}");
        } else if name.starts_with("invalid-") {
            assert!(got.is_err(), "{name} was accepted");
        }
    }
}

#[test]
fn op_msg_seeds() {
    for (name, data) in seeds("op_msg") {
        let (payload, message, compressed) = op_msg(&data);
        let ok = if name.starts_with("payload-") {
            payload
        } else if name.starts_with("compressed-") {
            compressed
        } else {
            message
        };
        if name.starts_with("invalid-") {
            assert!(!(payload || message || compressed), "{name} was accepted");
        } else if !name.starts_with("regress-") {
            assert!(ok, "{name} does not parse");
        }
    }
}

#[test]
fn uri_seeds() {
    for (name, data) in seeds("uri") {
        let got = uri(&data);
        if name.starts_with("invalid-") {
            assert!(got.is_err(), "{name} was accepted");
        } else if !name.starts_with("regress-") {
            got.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// A fixed id, so that regenerating gives the same bytes.
fn oid(n: u8) -> ObjectId {
    ObjectId::from_bytes([
        0x65, 0x6c, 0x5e, 0x6a, 0x4d, 0x9c, 0x9b, 0x3f, 0x2e, 0x1d, 0x0c, n,
    ])
}

fn when() -> DateTime {
    DateTime::from_millis(1_795_996_800_000) // 2026-11-24
}

fn op_msg_bytes(
    flags: MsgFlags,
    body: &impl serde::Serialize,
    sequences: &[(&str, &[Document])],
    request_id: i32,
    response_to: i32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = OpMsgBuilder::new(&mut out, flags, Limits::default());
    b.body(body).unwrap();
    for (identifier, docs) in sequences {
        b.begin_sequence(identifier).unwrap();
        for d in *docs {
            b.push(d).unwrap();
        }
    }
    b.finish(request_id, response_to).unwrap();
    out
}

fn hello_reply() -> Document {
    doc! {
        "helloOk": true,
        "isWritablePrimary": true,
        "topologyVersion": { "processId": oid(1), "counter": 0i64 },
        "maxBsonObjectSize": 16_777_216,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": when(),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": 42,
        "minWireVersion": 0,
        "maxWireVersion": 25,
        "readOnly": false,
        "compression": ["snappy", "zlib", "zstd"],
        "saslSupportedMechs": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
        "ok": 1.0,
    }
}

fn replica_set_hello_reply() -> Document {
    doc! {
        "topologyVersion": { "processId": oid(2), "counter": 6i64 },
        "hosts": ["a.example.com:27017", "b.example.com:27017", "[::1]:27019"],
        "passives": ["c.example.com:27018"],
        "arbiters": ["d.example.com:27017"],
        "setName": "rs0",
        "setVersion": 3,
        "isWritablePrimary": false,
        "secondary": true,
        "primary": "a.example.com:27017",
        "me": "b.example.com:27017",
        "electionId": oid(3),
        "tags": { "dc": "ny", "rack": "2" },
        "lastWrite": {
            "opTime": { "ts": Timestamp { time: 1_795_996_800, increment: 1 }, "t": 5i64 },
            "lastWriteDate": when(),
        },
        "maxBsonObjectSize": 16_777_216,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": when(),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": 7,
        "minWireVersion": 0,
        "maxWireVersion": 21,
        "readOnly": false,
        "$clusterTime": {
            "clusterTime": Timestamp { time: 1_795_996_800, increment: 1 },
            "signature": { "hash": Binary { subtype: BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 0i64 },
        },
        "operationTime": Timestamp { time: 1_795_996_800, increment: 1 },
        "ok": 1.0,
    }
}

fn item(i: i32) -> Document {
    doc! {
        "_id": oid(10 + i as u8),
        "name": format!("item {i}"),
        "n": i,
        "price": 9.99 * i as f64,
        "tags": ["red", "blue"],
        "stock": { "warehouse": "A", "qty": 100i64 * i as i64 },
        "updated": when(),
    }
}

/// A body holding one value of every BSON type the driver may meet.
fn all_types() -> Document {
    doc! {
        "double": 1.5,
        "nan": f64::NAN,
        "string": "héllo",
        "document": { "a": 1 },
        "array": [1, "two", { "three": 3 }],
        "binary": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
        "undefined": Bson::Undefined,
        "oid": oid(4),
        "bool": true,
        "date": when(),
        "null": Bson::Null,
        "regex": Bson::RegularExpression(bson::Regex {
            pattern: "^a.*b$".try_into().unwrap(),
            options: "im".try_into().unwrap(),
        }),
        "code": Bson::JavaScriptCode("function () { return 1; }".into()),
        "symbol": Bson::Symbol("sym".into()),
        "code_w_scope": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
            code: "x + 1".into(),
            scope: doc! { "x": 1 },
        }),
        "int32": 32,
        "timestamp": Timestamp { time: 1, increment: 2 },
        "int64": 64i64,
        "decimal": Bson::Decimal128(bson::Decimal128::from_bytes([
            0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x30,
        ])),
        "minKey": Bson::MinKey,
        "maxKey": Bson::MaxKey,
        "ok": 1,
    }
}

/// `depth` nested documents, built from the inside out.
fn nested(depth: usize) -> bson::RawDocumentBuf {
    let mut raw = bson::rawdoc! { "leaf": true };
    for i in 0..depth {
        let mut outer = bson::RawDocumentBuf::new();
        outer.append(bson::raw::cstr!("n"), i as i32);
        outer.append(bson::raw::cstr!("d"), raw);
        raw = outer;
    }
    raw.append(bson::raw::cstr!("ok"), 1.0);
    raw
}

fn compressed(message: &[u8], compressor: Compressor) -> Vec<u8> {
    let mut out = Vec::new();
    compress_message(message, compressor, &mut out).unwrap();
    out
}

const COMPRESSORS: [Compressor; 3] = [
    Compressor::Snappy,
    Compressor::Zlib { level: Some(6) },
    Compressor::Zstd,
];

fn make_reply_decoder_seeds() -> Vec<(String, Vec<u8>)> {
    let none = MsgFlags::default();
    let find = doc! {
        "cursor": {
            "firstBatch": [item(1), item(2), item(3)],
            "id": 0i64,
            "ns": "shop.items",
        },
        "ok": 1.0,
    };
    let get_more = doc! {
        "cursor": { "nextBatch": [item(4), item(5)], "id": 7_777_777_777i64, "ns": "shop.items" },
        "ok": 1.0,
    };
    let error = doc! {
        "ok": 0.0,
        "errmsg": "not primary",
        "code": 10107,
        "codeName": "NotWritablePrimary",
        "errorLabels": ["RetryableWriteError"],
        "topologyVersion": { "processId": oid(2), "counter": 7i64 },
    };
    let write_errors = doc! {
        "n": 1,
        "writeErrors": [{
            "index": 1,
            "code": 11000,
            "errmsg": "E11000 duplicate key error collection: shop.items index: _id_ dup key: { _id: 1 }",
            "keyPattern": { "_id": 1 },
            "keyValue": { "_id": 1 },
        }],
        "writeConcernError": {
            "code": 64,
            "codeName": "WriteConcernFailed",
            "errmsg": "waiting for replication timed out",
            "errInfo": { "wtimeout": true },
        },
        "ok": 1.0,
    };
    let find_msg = op_msg_bytes(none, &find, &[], 1001, 11);
    let mut seeds = vec![
        (
            "hello.bin",
            op_msg_bytes(none, &hello_reply(), &[], 1000, 10),
        ),
        (
            "hello-replica-set.bin",
            op_msg_bytes(none, &replica_set_hello_reply(), &[], 1000, 10),
        ),
        ("find-first-batch.bin", find_msg.clone()),
        ("get-more.bin", op_msg_bytes(none, &get_more, &[], 1002, 12)),
        ("error.bin", op_msg_bytes(none, &error, &[], 1003, 13)),
        (
            "write-errors.bin",
            op_msg_bytes(none, &write_errors, &[], 1004, 14),
        ),
        (
            "all-types.bin",
            op_msg_bytes(none, &all_types(), &[], 1005, 15),
        ),
        (
            "nested-100.bin",
            op_msg_bytes(none, &nested(100), &[], 1006, 16),
        ),
        (
            "checksum.bin",
            op_msg_bytes(MsgFlags::CHECKSUM_PRESENT, &find, &[], 1007, 17),
        ),
        (
            "document-sequence.bin",
            op_msg_bytes(
                none,
                &doc! { "ok": 1.0 },
                &[("documents", &[item(6), item(7)])],
                1008,
                18,
            ),
        ),
    ];
    let mut op_reply = Vec::new();
    let mut is_master = hello_reply();
    is_master.remove("helloOk");
    is_master.remove("isWritablePrimary");
    is_master.insert("ismaster", true);
    encode_op_reply(
        &mut op_reply,
        1009,
        19,
        8,
        0,
        &[is_master],
        &Limits::default(),
    )
    .unwrap();
    seeds.push(("op-reply-ismaster.bin", op_reply));
    let mut seeds: Vec<(String, Vec<u8>)> =
        seeds.into_iter().map(|(n, b)| (n.to_string(), b)).collect();
    for c in COMPRESSORS {
        seeds.push((
            format!("compressed-{}.bin", c.name()),
            compressed(&find_msg, c),
        ));
    }
    seeds
}

fn make_op_msg_seeds() -> Vec<(String, Vec<u8>)> {
    let none = MsgFlags::default();
    let lsid = doc! { "id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![0x5a; 16] } };
    let insert_body =
        doc! { "insert": "items", "ordered": true, "lsid": lsid.clone(), "$db": "shop" };
    let items = [item(1), item(2), item(3)];
    let insert = op_msg_bytes(none, &insert_body, &[("documents", &items)], 1, 0);

    let updates = [
        doc! { "q": { "_id": oid(11) }, "u": { "$set": { "n": 10 } }, "upsert": false },
        doc! { "q": { "n": { "$gt": 2 } }, "u": { "$inc": { "n": 1 } }, "multi": true },
    ];
    let update = op_msg_bytes(
        none,
        &doc! { "update": "items", "ordered": false, "$db": "shop" },
        &[("updates", &updates)],
        2,
        0,
    );
    let bulk = op_msg_bytes(
        none,
        &doc! { "bulkWrite": 1, "errorsOnly": true, "ordered": true, "$db": "admin" },
        &[
            (
                "ops",
                &[
                    doc! { "insert": 0, "document": item(4) },
                    doc! { "delete": 1, "filter": { "n": 1 }, "multi": false },
                ],
            ),
            (
                "nsInfo",
                &[doc! { "ns": "shop.items" }, doc! { "ns": "shop.archive" }],
            ),
        ],
        3,
        0,
    );

    // The spec allows sections in any order: a document sequence before the body.
    let mut sequence_first = Vec::new();
    let mut b = OpMsgBuilder::new(&mut sequence_first, none, Limits::default());
    b.begin_sequence("documents").unwrap();
    for d in &items {
        b.push(d).unwrap();
    }
    b.body(&insert_body).unwrap();
    b.finish(4, 0).unwrap();

    // A read with the `$readPreference` the executor appends to any command.
    let mut find = Vec::new();
    let mut b = OpMsgBuilder::new(&mut find, none, Limits::default());
    b.body(
        &doc! { "find": "items", "filter": { "n": { "$gte": 1 } }, "batchSize": 2, "$db": "shop" },
    )
    .unwrap();
    b.append_to_body(
        &BodyField::new("$readPreference", &doc! { "mode": "secondaryPreferred" }).unwrap(),
    )
    .unwrap();
    b.finish(5, 0).unwrap();

    let mut seeds = vec![
        ("insert-documents.bin".to_string(), insert.clone()),
        ("update-updates.bin".into(), update),
        ("bulk-write-two-sequences.bin".into(), bulk),
        ("sequence-before-body.bin".into(), sequence_first),
        ("find-read-preference.bin".into(), find),
        (
            "checksum.bin".into(),
            op_msg_bytes(
                MsgFlags::CHECKSUM_PRESENT,
                &insert_body,
                &[("documents", &items)],
                6,
                0,
            ),
        ),
        (
            "more-to-come.bin".into(),
            op_msg_bytes(
                MsgFlags::MORE_TO_COME,
                &doc! { "insert": "items", "writeConcern": { "w": 0 }, "$db": "shop" },
                &[("documents", &items[..1])],
                7,
                0,
            ),
        ),
        (
            "exhaust-allowed.bin".into(),
            op_msg_bytes(
                MsgFlags::EXHAUST_ALLOWED,
                &doc! { "getMore": 7_777_777_777i64, "collection": "items", "$db": "shop" },
                &[],
                8,
                0,
            ),
        ),
        (
            "empty-sequence.bin".into(),
            op_msg_bytes(none, &insert_body, &[("documents", &[])], 9, 0),
        ),
        (
            "hello-reply.bin".into(),
            op_msg_bytes(none, &hello_reply(), &[], 10, 1),
        ),
        ("payload-insert.bin".into(), insert[HEADER_LEN..].to_vec()),
    ];
    for c in COMPRESSORS {
        seeds.push((
            format!("compressed-{}-insert.bin", c.name()),
            compressed(&insert, c),
        ));
    }
    let mut op_reply = Vec::new();
    encode_op_reply(
        &mut op_reply,
        11,
        2,
        0,
        0,
        &[hello_reply()],
        &Limits::default(),
    )
    .unwrap();
    seeds.push((
        "compressed-zlib-op-reply.bin".into(),
        compressed(&op_reply, COMPRESSORS[1]),
    ));
    seeds
}

/// URIs from the connection-string, URI-options and auth spec tests: from each file the
/// first valid and the first invalid one (six of each, spread over the file, from the auth spec's file, eight
/// invalid ones from invalid-uris.json), and three written here.
fn make_uri_seeds() -> Vec<(String, Vec<u8>)> {
    let root = spec::root();
    let exceptions = spec::exceptions();
    let mut files = Vec::new();
    for dir in ["connection-string", "uri-options"] {
        let in_dir = spec::files(&root.join(dir));
        let short = if dir == "uri-options" { "opts" } else { "cs" };
        // invalid-uris.json is all edge cases (ports, '@', '%'): take more of it.
        files.extend(in_dir.into_iter().map(|p| {
            let n = if p.ends_with("invalid-uris.json") {
                8
            } else {
                1
            };
            (short, p, n)
        }));
    }
    files.push(("auth", root.join("auth/connection-string.json"), 6));
    let mut seeds = Vec::new();
    for (short, file, per_kind) in files {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        // As the exceptions name it: `suite/file.json`.
        let suite_file = format!(
            "{}/{}",
            file.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy(),
            file.file_name().unwrap().to_string_lossy()
        );
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let stem = stem
            .trim_start_matches("valid-")
            .trim_start_matches("invalid-");
        for want_valid in [true, false] {
            let picked = json["tests"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["valid"].as_bool() == Some(want_valid))
                .filter(|t| !t["uri"].as_str().unwrap_or_default().is_empty())
                .filter(|t| {
                    let description = t["description"].as_str().unwrap_or_default();
                    !exceptions.contains_key(&(suite_file.clone(), description.to_string()))
                })
                .collect::<Vec<_>>();
            // Spread over the file: its tests are grouped by theme.
            let n = picked.len();
            let picked = (0..per_kind.min(n)).map(|k| picked[k * n / per_kind.min(n)]);
            for (i, t) in picked.enumerate() {
                let kind = if want_valid { "valid" } else { "invalid" };
                seeds.push((
                    format!("{kind}-{short}-{stem}-{i}.txt"),
                    t["uri"].as_str().unwrap().as_bytes().to_vec(),
                ));
            }
        }
    }
    // Shapes worth having whole: every part at once, escapes in the credentials, SRV options.
    for (name, uri) in [
        (
            "valid-everything.txt",
            "mongodb://us%40er:p%3Ass%2Fword@a.example.com:27017,[::1]:27018,10.0.0.1/shop?replicaSet=rs0&readPreference=secondaryPreferred&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=&maxStalenessSeconds=120&w=majority&wTimeoutMS=500&journal=true&compressors=zstd,snappy,zlib&zlibCompressionLevel=9&appName=fuzz&tls=true&tlsCAFile=/tmp/ca.pem&authSource=admin&authMechanism=SCRAM-SHA-256",
        ),
        (
            "valid-srv-options.txt",
            "mongodb+srv://user:secret@cluster0.example.com/app?srvServiceName=custom&srvMaxHosts=2&retryWrites=false",
        ),
        (
            "valid-unix-socket.txt",
            "mongodb://user:pencil@%2Ftmp%2Fmongodb-27017.sock/db?authMechanism=PLAIN",
        ),
    ] {
        seeds.push((name.to_string(), uri.as_bytes().to_vec()));
    }
    seeds
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand to regenerate them"]
fn regenerate_seeds() {
    for (target, seeds) in [
        ("reply_decoder", make_reply_decoder_seeds()),
        ("op_msg", make_op_msg_seeds()),
        ("uri", make_uri_seeds()),
    ] {
        let dir = seeds_dir(target);
        // Keep `regress-*` reproducers; everything else is generated.
        if dir.exists() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("regress-")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(&name), bytes).unwrap();
        }
    }
}
