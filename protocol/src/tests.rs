//! Unit tests of the wire codec: every message type round-trips, and malformed input of every
//! kind is an error rather than a panic or a large allocation.

use bson::{RawDocumentBuf, doc};

use super::*;

fn small_limits() -> Limits {
    Limits {
        max_bson_object_size: 1024,
        max_message_size: 4096,
        max_wire_version: 21,
        max_write_batch_size: 100_000,
    }
}

fn op_msg(flags: MsgFlags) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, flags, Limits::default());
    b.body(&doc! { "insert": "c", "$db": "test" }).unwrap();
    b.begin_sequence("documents").unwrap();
    b.push(&doc! { "_id": 1, "x": "a" }).unwrap();
    b.push(&doc! { "_id": 2, "x": "b" }).unwrap();
    b.finish(42, 0).unwrap();
    buf
}

#[test]
fn op_msg_round_trips_body_and_sequence() {
    let buf = op_msg(MsgFlags::default());
    let header = Header::parse(&buf).unwrap();
    assert_eq!(header.length as usize, buf.len());
    assert_eq!(header.request_id, 42);
    assert_eq!(header.op_code, OpCode::Msg as i32);
    let msg = OpMsg::parse_message(&buf).unwrap();
    assert_eq!(msg.body.get_str("insert").unwrap(), "c");
    let seqs: Vec<_> = msg.sequences().collect();
    assert_eq!(seqs.len(), 1);
    assert_eq!(seqs[0].identifier, "documents");
    let ids: Vec<i32> = seqs[0]
        .documents()
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn op_msg_sequence_before_body_and_two_sequences() {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.begin_sequence("a").unwrap();
    b.push(&doc! { "n": 1 }).unwrap();
    b.body(&doc! { "cmd": 1 }).unwrap();
    b.begin_sequence("b").unwrap();
    b.push(&doc! { "n": 2 }).unwrap();
    b.push(&doc! { "n": 3 }).unwrap();
    b.finish(1, 0).unwrap();
    let msg = OpMsg::parse_message(&buf).unwrap();
    let seqs: Vec<(String, usize)> = msg
        .sequences()
        .map(|s| (s.identifier.to_string(), s.documents().count()))
        .collect();
    assert_eq!(seqs, vec![("a".into(), 1), ("b".into(), 2)]);
    assert_eq!(msg.body.get_i32("cmd").unwrap(), 1);
}

#[test]
fn a_field_appended_to_the_body_lands_in_it_whatever_follows() {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.body(&doc! { "find": "c", "$db": "d" }).unwrap();
    b.begin_sequence("a").unwrap();
    b.push(&doc! { "n": 1 }).unwrap();
    // Appended while the sequence after the body is still open, and again after it closed.
    b.append_to_body(&BodyField::new("$readPreference", &doc! { "mode": "secondary" }).unwrap())
        .unwrap();
    b.push(&doc! { "n": 2 }).unwrap();
    b.begin_sequence("b").unwrap();
    b.append_to_body(&BodyField::new("extra", &doc! { "x": 1 }).unwrap())
        .unwrap();
    b.finish(1, 0).unwrap();
    let msg = OpMsg::parse_message(&buf).unwrap();
    assert_eq!(msg.body.get_str("find").unwrap(), "c");
    assert_eq!(
        msg.body
            .get_document("$readPreference")
            .unwrap()
            .get_str("mode")
            .unwrap(),
        "secondary"
    );
    assert_eq!(
        msg.body
            .get_document("extra")
            .unwrap()
            .get_i32("x")
            .unwrap(),
        1
    );
    let seqs: Vec<(String, usize)> = msg
        .sequences()
        .map(|s| (s.identifier.to_string(), s.documents().count()))
        .collect();
    assert_eq!(seqs, vec![("a".into(), 2), ("b".into(), 0)]);

    // Without a body there is nothing to append to; past the size limit is refused.
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), small_limits());
    let empty = BodyField::new("k", &doc! {}).unwrap();
    assert!(b.append_to_body(&empty).is_err());
    b.body(&doc! { "ping": 1 }).unwrap();
    let big = doc! { "s": "x".repeat(64 * 1024) };
    assert!(matches!(
        b.append_to_body(&BodyField::new("k", &big).unwrap()),
        Err(WireError::DocumentTooLarge { .. })
    ));
}

#[test]
fn a_field_taken_from_the_body_leaves_the_rest_whole() {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.body(&doc! { "find": "c", "readConcern": { "level": "local" }, "limit": 2, "$db": "d" })
        .unwrap();
    b.begin_sequence("a").unwrap();
    b.push(&doc! { "n": 1 }).unwrap();
    // Taken while the sequence after the body is still open; a second take finds nothing,
    // and a field that is not a document is removed but not returned.
    let rc = b.take_from_body("readConcern").unwrap();
    assert_eq!(rc, Some(doc! { "level": "local" }));
    assert_eq!(b.take_from_body("readConcern").unwrap(), None);
    assert_eq!(b.take_from_body("limit").unwrap(), None);
    b.append_to_body(&BodyField::new("readConcern", &doc! { "afterClusterTime": 1 }).unwrap())
        .unwrap();
    b.push(&doc! { "n": 2 }).unwrap();
    b.finish(1, 0).unwrap();
    let msg = OpMsg::parse_message(&buf).unwrap();
    let body: Vec<String> = msg.body.iter().map(|e| e.unwrap().0.to_string()).collect();
    assert_eq!(body, vec!["find", "$db", "readConcern"]);
    let seqs: Vec<(String, usize)> = msg
        .sequences()
        .map(|s| (s.identifier.to_string(), s.documents().count()))
        .collect();
    assert_eq!(seqs, vec![("a".into(), 2)]);
}

#[test]
fn op_msg_flags_round_trip() {
    for flags in [
        MsgFlags::MORE_TO_COME,
        MsgFlags::EXHAUST_ALLOWED,
        MsgFlags::MORE_TO_COME | MsgFlags::EXHAUST_ALLOWED,
    ] {
        let buf = op_msg(flags);
        assert_eq!(OpMsg::parse_message(&buf).unwrap().flags, flags);
    }
}

#[test]
fn op_msg_checksum_is_written_and_verified() {
    let mut buf = op_msg(MsgFlags::CHECKSUM_PRESENT);
    let msg = OpMsg::parse_message(&buf).unwrap();
    assert!(msg.flags.contains(MsgFlags::CHECKSUM_PRESENT));
    assert_eq!(msg.body.get_str("insert").unwrap(), "c");
    // Flip one byte of the body: the checksum must catch it.
    let at = buf.len() - 10;
    buf[at] ^= 0xff;
    assert!(matches!(
        OpMsg::parse_message(&buf),
        Err(WireError::Checksum)
    ));
}

#[test]
fn op_msg_unknown_required_flag_is_rejected() {
    let mut buf = op_msg(MsgFlags::default());
    buf[16] |= 1 << 5;
    assert!(matches!(
        OpMsg::parse(&buf[HEADER_LEN..]),
        Err(WireError::UnknownRequiredFlags(0x20))
    ));
}

#[test]
fn op_msg_needs_exactly_one_body() {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.begin_sequence("documents").unwrap();
    b.push(&doc! { "n": 1 }).unwrap();
    assert!(matches!(b.finish(1, 0), Err(WireError::BodyCount(0))));
    assert!(buf.is_empty(), "a failed message leaves no bytes behind");

    // Two bodies, spliced by hand.
    let one = op_msg(MsgFlags::default());
    let mut two = one.clone();
    let body = bson::serialize_to_vec(&doc! { "again": 1 }).unwrap();
    two.push(0);
    two.extend_from_slice(&body);
    assert!(matches!(
        OpMsg::parse(&two[HEADER_LEN..]),
        Err(WireError::BodyCount(2))
    ));
}

#[test]
fn every_truncation_of_op_msg_is_an_error() {
    let buf = op_msg(MsgFlags::default());
    for cut in 0..buf.len() {
        let r = OpMsg::parse_message(&buf[..cut]);
        assert!(r.is_err(), "prefix of {cut} bytes parsed");
        // Without the header's length, a payload cut exactly between two sections is a
        // valid, shorter message; anywhere else it must be an error.
        if cut >= HEADER_LEN
            && let Ok(m) = OpMsg::parse(&buf[HEADER_LEN..cut])
        {
            assert_eq!(
                m.sequences().count(),
                0,
                "cut {cut} inside a sequence parsed"
            );
        }
    }
}

#[test]
fn bad_section_kind_and_bad_lengths_are_errors() {
    let buf = op_msg(MsgFlags::default());
    let mut bad_kind = buf.clone();
    bad_kind[20] = 7;
    assert!(matches!(
        OpMsg::parse(&bad_kind[HEADER_LEN..]),
        Err(WireError::BadSectionKind(7))
    ));

    // A body document claiming to be 2 GiB long.
    let mut huge = buf.clone();
    huge[21..25].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(matches!(
        OpMsg::parse(&huge[HEADER_LEN..]),
        Err(WireError::Truncated { .. })
    ));

    // A negative body length.
    let mut neg = buf.clone();
    neg[21..25].copy_from_slice(&(-1i32).to_le_bytes());
    assert!(matches!(
        OpMsg::parse(&neg[HEADER_LEN..]),
        Err(WireError::BadLength(-1))
    ));

    // A sequence whose size runs past the message.
    let seq_at = HEADER_LEN + 4 + 1 + read_i32(&buf, 21).unwrap() as usize;
    assert_eq!(buf[seq_at], 1);
    let mut long_seq = buf.clone();
    long_seq[seq_at + 1..seq_at + 5].copy_from_slice(&10_000i32.to_le_bytes());
    assert!(OpMsg::parse(&long_seq[HEADER_LEN..]).is_err());
}

#[test]
fn header_length_is_checked_before_any_allocation() {
    let limits = small_limits();
    let mut header = [0u8; HEADER_LEN];
    for (len, ok) in [
        (-1i32, false),
        (0, false),
        (19, false),
        (20, true),
        (4096, true),
        (4097, false),
        (i32::MAX, false),
    ] {
        Header {
            length: len,
            request_id: 1,
            response_to: 0,
            op_code: 2013,
        }
        .write(&mut header);
        let r = Header::parse(&header).unwrap().checked_len(&limits);
        assert_eq!(r.is_ok(), ok, "length {len}");
    }
    assert!(Header::parse(&header[..15]).is_err());
}

#[test]
fn reply_to_must_match() {
    let h = Header {
        length: 30,
        request_id: 9,
        response_to: 5,
        op_code: 2013,
    };
    assert!(h.check_reply_to(5).is_ok());
    assert!(matches!(
        h.check_reply_to(6),
        Err(WireError::ResponseTo {
            expected: 6,
            got: 5
        })
    ));
}

#[test]
fn wrong_opcode_is_rejected() {
    let mut buf = op_msg(MsgFlags::default());
    buf[12..16].copy_from_slice(&(OpCode::Reply as i32).to_le_bytes());
    assert!(matches!(
        OpMsg::parse_message(&buf),
        Err(WireError::UnexpectedOpCode(1))
    ));
    assert_eq!(OpCode::from_i32(2012), Some(OpCode::Compressed));
    assert_eq!(OpCode::from_i32(2010), None);
}

#[test]
fn oversized_documents_and_messages_are_refused_before_sending() {
    let limits = small_limits();
    let big = doc! { "s": "x".repeat(2000) };
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), limits);
    b.body(&doc! { "insert": "c" }).unwrap();
    b.begin_sequence("documents").unwrap();
    assert!(matches!(
        b.push(&big),
        Err(WireError::DocumentTooLarge { max: 1024, .. })
    ));
    // Many small documents that together exceed the message limit.
    for _ in 0..10 {
        b.push(&doc! { "s": "y".repeat(500) }).unwrap();
    }
    assert!(matches!(
        b.finish(1, 0),
        Err(WireError::MessageTooLarge { max: 4096, .. })
    ));
    assert!(buf.is_empty());

    // The body may exceed maxBsonObjectSize by the 16 KiB command overhead, no more.
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    let limits = Limits::default();
    let fits = doc! { "s": "z".repeat(limits.max_bson_object_size + 1000) };
    b.body(&fits).unwrap();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    let too_big = doc! { "s": "z".repeat(limits.max_bson_object_size + COMMAND_OVERHEAD) };
    assert!(matches!(
        b.body(&too_big),
        Err(WireError::DocumentTooLarge { .. })
    ));
}

#[test]
fn identifier_with_nul_is_refused() {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    assert!(b.begin_sequence("bad\0name").is_err());
}

#[test]
fn op_query_round_trips() {
    let mut buf = Vec::new();
    let q = doc! { "isMaster": 1, "helloOk": true };
    let fields = RawDocumentBuf::new();
    let len = encode_op_query(&mut buf, 3, 0, "admin.$cmd", 0, -1, &q, &Limits::default()).unwrap();
    assert_eq!(len, buf.len());
    let h = Header::parse(&buf).unwrap();
    assert_eq!(h.op_code, OpCode::Query as i32);
    let parsed = OpQuery::parse(&buf[HEADER_LEN..]).unwrap();
    assert_eq!(parsed.full_collection_name, "admin.$cmd");
    assert_eq!(parsed.n_return, -1);
    assert!(parsed.query.get_bool("helloOk").unwrap());
    assert!(parsed.fields.is_none());

    // With a projection appended.
    buf.extend_from_slice(fields.as_bytes());
    let parsed = OpQuery::parse(&buf[HEADER_LEN..]).unwrap();
    assert!(parsed.fields.is_some());

    for cut in HEADER_LEN..HEADER_LEN + len - 16 - fields.as_bytes().len() {
        assert!(OpQuery::parse(&buf[HEADER_LEN..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn op_reply_round_trips_and_counts_documents() {
    let mut buf = Vec::new();
    let docs = [doc! { "ismaster": true, "ok": 1 }, doc! { "n": 2 }];
    encode_op_reply(
        &mut buf,
        8,
        3,
        0,
        0x1234_5678_9abc,
        &docs,
        &Limits::default(),
    )
    .unwrap();
    let h = Header::parse(&buf).unwrap();
    assert_eq!((h.op_code, h.response_to), (OpCode::Reply as i32, 3));
    let reply = OpReply::parse(&buf[HEADER_LEN..]).unwrap();
    assert_eq!(reply.cursor_id, 0x1234_5678_9abc);
    assert_eq!(reply.len(), 2);
    let first = reply.documents().next().unwrap();
    assert!(first.get_bool("ismaster").unwrap());

    // numberReturned that disagrees with the payload.
    let mut wrong = buf.clone();
    wrong[HEADER_LEN + 16..HEADER_LEN + 20].copy_from_slice(&5i32.to_le_bytes());
    assert!(OpReply::parse(&wrong[HEADER_LEN..]).is_err());
    let mut negative = buf.clone();
    negative[HEADER_LEN + 16..HEADER_LEN + 20].copy_from_slice(&(-3i32).to_le_bytes());
    assert!(matches!(
        OpReply::parse(&negative[HEADER_LEN..]),
        Err(WireError::BadLength(-3))
    ));
    for cut in HEADER_LEN..buf.len() {
        assert!(OpReply::parse(&buf[HEADER_LEN..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn garbage_never_panics() {
    // A small deterministic generator: random bytes of random lengths through every parser.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let template = op_msg(MsgFlags::default());
    for _ in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = Header::parse(&bytes).map(|h| h.checked_len(&small_limits()));
        let _ = OpMsg::parse(&bytes);
        let _ = OpMsg::parse_message(&bytes);
        let _ = OpQuery::parse(&bytes);
        let _ = OpReply::parse(&bytes);
        // Mutate a valid message in a few places too.
        bytes = template.clone();
        for _ in 0..3 {
            let i = (next() as usize) % bytes.len();
            bytes[i] = next() as u8;
        }
        if let Ok(m) = OpMsg::parse_message(&bytes) {
            for s in m.sequences() {
                s.documents().count();
            }
        }
    }
}

// --- OP_COMPRESSED ---

const COMPRESSORS: [Compressor; 5] = [
    Compressor::Snappy,
    Compressor::Zlib { level: None },
    Compressor::Zlib { level: Some(0) },
    Compressor::Zlib { level: Some(9) },
    Compressor::Zstd,
];

/// An OP_MSG big and repetitive enough that every compressor shrinks it.
fn compressible_msg() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.body(&doc! { "insert": "c", "$db": "d" }).unwrap();
    b.begin_sequence("documents").unwrap();
    for i in 0..200 {
        b.push(&doc! { "_id": i, "text": "the same words again and again" })
            .unwrap();
    }
    b.finish(41, 7).unwrap();
    buf
}

#[test]
fn each_compressor_round_trips_a_message_and_keeps_its_ids() {
    let msg = compressible_msg();
    for c in COMPRESSORS {
        let mut wrapped = vec![0xAA; 3]; // appends, leaving what was there
        compress_message(&msg, c, &mut wrapped).unwrap();
        let wrapped = &wrapped[3..];
        let h = Header::parse(wrapped).unwrap();
        assert_eq!(h.op_code, OpCode::Compressed as i32, "{c:?}");
        assert_eq!((h.request_id, h.response_to), (41, 7));
        assert_eq!(h.length as usize, wrapped.len());
        assert_eq!(wrapped[HEADER_LEN + 8], c.id());
        if c != (Compressor::Zlib { level: Some(0) }) {
            assert!(wrapped.len() < msg.len() / 2, "{c:?}: {}", wrapped.len());
        }
        let mut out = vec![1, 2, 3];
        let d = decompress_message(wrapped, &Limits::default(), &mut out).unwrap();
        assert_eq!(d.op_code, OpCode::Msg as i32);
        assert_eq!(d.length, msg.len());
        assert_eq!(d.compressor.id(), c.id());
        assert_eq!(out, msg, "{c:?}");
        let parsed = OpMsg::parse_message(&out).unwrap();
        assert_eq!(parsed.sequences().next().unwrap().documents().count(), 200);
    }
}

#[test]
fn corrupt_compressed_data_is_an_error_for_each_compressor() {
    let msg = compressible_msg();
    for c in COMPRESSORS {
        let mut wrapped = Vec::new();
        compress_message(&msg, c, &mut wrapped).unwrap();
        let mut out = Vec::new();
        // Flip bytes in the middle of the compressed stream.
        let mut bad = wrapped.clone();
        let mid = HEADER_LEN + 9 + (bad.len() - HEADER_LEN - 9) / 2;
        for b in &mut bad[mid..mid + 8] {
            *b ^= 0x5A;
        }
        let e = decompress_message(&bad, &Limits::default(), &mut out).unwrap_err();
        assert!(matches!(e, WireError::Compression(_)), "{c:?}: {e}");
        // Cut short.
        let cut = &wrapped[..wrapped.len() - 10];
        let e = decompress_message(cut, &Limits::default(), &mut out).unwrap_err();
        assert!(matches!(e, WireError::Compression(_)), "{c:?}: {e}");
        // A declared size that the data does not match.
        let mut lying = wrapped.clone();
        let size = read_i32(&lying, HEADER_LEN + 4).unwrap() + 1;
        lying[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&size.to_le_bytes());
        let e = decompress_message(&lying, &Limits::default(), &mut out).unwrap_err();
        assert!(e.to_string().contains("header says"), "{c:?}: {e}");
    }
}

#[test]
fn a_hostile_uncompressed_size_is_refused_before_allocating() {
    let msg = compressible_msg();
    let mut wrapped = Vec::new();
    compress_message(&msg, Compressor::Zstd, &mut wrapped).unwrap();
    wrapped[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&i32::MAX.to_le_bytes());
    let mut out = Vec::new();
    let e = decompress_message(&wrapped, &small_limits(), &mut out).unwrap_err();
    assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
    assert_eq!(out.capacity(), 0, "nothing allocated");
    wrapped[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&(-1i32).to_le_bytes());
    let e = decompress_message(&wrapped, &small_limits(), &mut out).unwrap_err();
    assert!(matches!(e, WireError::BadLength(-1)), "{e}");
}

#[test]
fn unknown_compressor_ids_nesting_and_truncated_prefixes_are_errors() {
    let msg = compressible_msg();
    let mut wrapped = Vec::new();
    compress_message(&msg, Compressor::Snappy, &mut wrapped).unwrap();
    let mut out = Vec::new();
    let mut unknown = wrapped.clone();
    unknown[HEADER_LEN + 8] = 0; // noop is never sent by servers to drivers
    let e = decompress_message(&unknown, &Limits::default(), &mut out).unwrap_err();
    assert!(e.to_string().contains("unknown compressor id 0"), "{e}");
    let mut nested = wrapped.clone();
    nested[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&2012i32.to_le_bytes());
    let e = decompress_message(&nested, &Limits::default(), &mut out).unwrap_err();
    assert!(e.to_string().contains("wraps another"), "{e}");
    for len in HEADER_LEN..HEADER_LEN + 9 {
        assert!(decompress_message(&wrapped[..len], &Limits::default(), &mut out).is_err());
    }
    let e = decompress_message(&msg, &Limits::default(), &mut out).unwrap_err();
    assert!(matches!(e, WireError::UnexpectedOpCode(2013)), "{e}");
}

#[test]
fn handshake_and_authentication_commands_are_never_compressed() {
    for name in [
        "hello",
        "isMaster",
        "ismaster",
        "saslStart",
        "saslContinue",
        "createUser",
    ] {
        assert!(!may_compress(name), "{name}");
    }
    for name in ["find", "insert", "ping", "getMore"] {
        assert!(may_compress(name), "{name}");
    }
    assert_eq!(Compressor::from_name("zstd"), Some(Compressor::Zstd));
    assert_eq!(Compressor::from_name("lz4"), None);
}

#[test]
fn a_declared_size_the_data_cannot_hold_is_refused_before_allocating() {
    // 40 MB claimed (under the 48 MB limit) by a few bytes of each compressor's data: refused
    // from the frame's own length (snappy, zstd) or deflate's maximum ratio (zlib), so the
    // 40 MB buffer is never made (`out` keeps its capacity).
    let msg = compressible_msg();
    for c in COMPRESSORS {
        let mut wrapped = Vec::new();
        compress_message(&msg, c, &mut wrapped).unwrap();
        wrapped[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&40_000_000i32.to_le_bytes());
        let mut out = Vec::new();
        let e = decompress_message(&wrapped, &Limits::default(), &mut out).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("header says") && e.contains("40000000"),
            "{c:?}: {e}"
        );
        assert_eq!(out.capacity(), 0, "{c:?}: allocated before refusing");
    }
}

/// Wraps `msg` in OP_COMPRESSED by hand, its zstd frame made by a streaming encoder, which
/// does not write the content size into the frame header.
fn zstd_stream_wrapped(msg: &[u8], declared: i32) -> Vec<u8> {
    use std::io::Write;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(&msg[HEADER_LEN..]).unwrap();
    let frame = enc.finish().unwrap();
    assert!(
        matches!(zstd::zstd_safe::get_frame_content_size(&frame), Ok(None)),
        "the frame states no size"
    );
    let header = Header::parse(msg).unwrap();
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(&header.op_code.to_le_bytes());
    out.extend_from_slice(&declared.to_le_bytes());
    out.push(3); // zstd's compressor id
    out.extend_from_slice(&frame);
    Header {
        length: out.len() as i32,
        request_id: header.request_id,
        response_to: header.response_to,
        op_code: OpCode::Compressed as i32,
    }
    .write(&mut out[..HEADER_LEN]);
    out
}

#[test]
fn a_zstd_frame_without_its_size_is_inflated_as_it_comes() {
    // Its real size declared: it decompresses to the original message.
    let msg = compressible_msg();
    let body_len = (msg.len() - HEADER_LEN) as i32;
    let mut out = Vec::new();
    let d = decompress_message(
        &zstd_stream_wrapped(&msg, body_len),
        &Limits::default(),
        &mut out,
    )
    .unwrap();
    assert_eq!(d.length, msg.len());
    assert_eq!(out[HEADER_LEN..], msg[HEADER_LEN..]);

    // 40 MB declared for the same few bytes: refused, and the buffer grew only with what the
    // frame really held (it used to be zeroed to the declared 40 MB first).
    let mut out = Vec::new();
    let e = decompress_message(
        &zstd_stream_wrapped(&msg, 40_000_000),
        &Limits::default(),
        &mut out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("header says 40000000"), "{e}");
    assert!(
        out.capacity() < 1 << 20,
        "{} bytes allocated for a frame of {} bytes",
        out.capacity(),
        msg.len()
    );

    // Declared shorter than the frame inflates to: refused too.
    let e = decompress_message(
        &zstd_stream_wrapped(&msg, body_len - 1),
        &Limits::default(),
        &mut out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("corrupt zstd"), "{e}");
}
