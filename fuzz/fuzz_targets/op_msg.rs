//! The OP_MSG and OP_COMPRESSED parsers, and the encoders checked against them.
//!
//! The same bytes are offered three ways: as an OP_MSG payload (`OpMsg::parse`, the message
//! after its header), as a whole OP_MSG (`OpMsg::parse_message`, checksum verified) and as an
//! OP_COMPRESSED (`decompress_message` with the default limits: snappy, zlib or zstd by the
//! id byte). Properties asserted, each of which must hold for any input:
//!
//! - a whole OP_MSG that parses, rebuilt with `OpMsgBuilder` from its flags, body and
//!   sequences, parses back to the same flags, body bytes and sequences; when the body comes
//!   first (the order the builder writes) the rebuilt message is the original, byte for byte,
//!   checksum included;
//! - an OP_COMPRESSED that unwraps gives a message whose header says its true length and the
//!   original opcode, and compressing that message again with the same compressor and
//!   unwrapping it gives it back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use may_mongo_protocol::{
    HEADER_LEN, Header, Limits, OpCode, OpMsg, OpMsgBuilder, compress_message, decompress_message,
};

fuzz_target!(|data: &[u8]| {
    // The payload alone, as the parser sees it after a header.
    if let Ok(msg) = OpMsg::parse(data) {
        for sequence in msg.sequences() {
            for doc in sequence.documents() {
                let _ = doc.as_bytes().len();
            }
        }
    }

    // A whole OP_MSG.
    if let Ok(msg) = OpMsg::parse_message(data) {
        round_trip(data, &msg);
    }

    // A whole OP_COMPRESSED.
    let limits = Limits::default();
    let mut out = Vec::new();
    if let Ok(d) = decompress_message(data, &limits, &mut out) {
        assert_eq!(d.length, out.len());
        assert!(d.length <= limits.max_message_size);
        let header = Header::parse(&out).expect("a rebuilt header");
        let original = Header::parse(data).expect("parsed above");
        assert_eq!(header.length as usize, d.length);
        assert_eq!(header.op_code, d.op_code);
        assert_eq!(header.request_id, original.request_id);
        assert_eq!(header.response_to, original.response_to);
        if let Ok(msg) = OpMsg::parse_message(&out) {
            round_trip(&out, &msg);
        }
        let mut again = Vec::new();
        compress_message(&out, d.compressor, &mut again).expect("compressing a valid message");
        let mut back = Vec::new();
        let d2 = decompress_message(&again, &limits, &mut back).expect("our own compression");
        assert_eq!(d2, d);
        assert_eq!(back, out);
    }
});

/// Rebuilds `msg` (parsed from `message`) and checks what must survive.
fn round_trip(message: &[u8], msg: &OpMsg<'_>) {
    let header = Header::parse(message).expect("parsed");
    let mut buf = Vec::new();
    let mut builder = OpMsgBuilder::new(&mut buf, msg.flags, Limits::default());
    builder
        .body(&msg.body)
        .expect("a body that parsed is small enough");
    for sequence in msg.sequences() {
        builder
            .begin_sequence(sequence.identifier)
            .expect("an identifier that parsed has no NUL");
        for doc in sequence.documents() {
            builder
                .push(&doc)
                .expect("a document that parsed is small enough");
        }
    }
    builder
        .finish(header.request_id, header.response_to)
        .expect("no larger than the original");

    let rebuilt = OpMsg::parse_message(&buf).expect("the builder's output parses");
    assert_eq!(rebuilt.flags, msg.flags);
    assert_eq!(rebuilt.body.as_bytes(), msg.body.as_bytes());
    let sequences = |m: &OpMsg<'_>| -> Vec<(String, Vec<Vec<u8>>)> {
        m.sequences()
            .map(|s| {
                let docs = s.documents().map(|d| d.as_bytes().to_vec()).collect();
                (s.identifier.to_string(), docs)
            })
            .collect()
    };
    assert_eq!(sequences(&rebuilt), sequences(msg));
    if message.get(HEADER_LEN + 4) == Some(&0) {
        // Body first, then the sequences in order: exactly what the builder writes.
        assert_eq!(buf, message);
    }
    assert_eq!(
        Header::parse(&buf).expect("parsed").op_code,
        OpCode::Msg as i32
    );
}
