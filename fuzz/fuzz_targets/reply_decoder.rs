//! What the driver does with the bytes of a server reply, in the order it does it
//! (`src/conn/connection.rs`, `send_and_receive` and `round_trip`):
//!
//! 1. the 16-byte header, and its declared length checked against the limits before any
//!    buffer is sized from it;
//! 2. OP_COMPRESSED unwrapped (as on a connection that negotiated compression);
//! 3. the OP_MSG (checksum verified) or, for the legacy `isMaster` handshake, OP_REPLY;
//! 4. the body read as a `hello` reply (`StreamDescription::from_hello`), decoded by the
//!    driver's non-recursive decoder (`decode_document`) and fed to SDAM
//!    (`ServerState::from_hello`, what a monitor does with each heartbeat); every document of
//!    every document sequence decoded too.
//!
//! The command `ok` check (`conn::check_ok`) is crate-private, so it is not reached here.
//! Besides "no panic", one property is asserted: the driver's decoder and bson's own
//! (recursive) conversion agree on every document, both on whether it is valid and on what
//! it holds.
#![no_main]

use bson::RawDocument;
use libfuzzer_sys::fuzz_target;
use may_mongo::StreamDescription;
use may_mongo::topology::ServerState;
use may_mongo_protocol::{HEADER_LEN, Header, Limits, OpCode, OpMsg, OpReply, decompress_message};

fuzz_target!(|data: &[u8]| {
    // Before the handshake the driver reads with the default limits (48 MB messages).
    let limits = Limits::default();
    let Ok(header) = Header::parse(data) else {
        return;
    };
    let Ok(len) = header.checked_len(&limits) else {
        return;
    };
    // The driver reads exactly `len` bytes; fewer means it is still waiting for the rest.
    let Some(message) = data.get(..len) else {
        return;
    };
    let mut unwrapped = Vec::new();
    let message = if header.op_code == OpCode::Compressed as i32 {
        match decompress_message(message, &limits, &mut unwrapped) {
            Ok(d) => {
                assert_eq!(d.length, unwrapped.len());
                &unwrapped[..]
            }
            Err(_) => return,
        }
    } else {
        message
    };
    match OpCode::from_i32(Header::parse(message).expect("whole header").op_code) {
        Some(OpCode::Msg) => {
            let Ok(msg) = OpMsg::parse_message(message) else {
                return;
            };
            read_reply(msg.body);
            for sequence in msg.sequences() {
                for doc in sequence.documents() {
                    check_decode(doc);
                }
            }
        }
        Some(OpCode::Reply) => {
            let Ok(reply) = OpReply::parse(&message[HEADER_LEN..]) else {
                return;
            };
            // `parse` counted the documents; iterating must yield exactly that many.
            assert_eq!(reply.documents().count(), reply.len());
            for doc in reply.documents() {
                read_reply(doc);
            }
        }
        _ => {}
    }
});

/// The body of a reply, read the ways the driver reads one.
fn read_reply(body: &RawDocument) {
    let description = StreamDescription::from_hello(body);
    let _ = description.limits();
    if let Some(doc) = check_decode(body) {
        let _ = ServerState::from_hello(Some(&doc));
    }
}

/// Decodes `raw` with the driver's decoder and checks it against bson's.
fn check_decode(raw: &RawDocument) -> Option<bson::Document> {
    let ours = may_mongo::decode_document(raw);
    let theirs = bson::Document::try_from(raw);
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => {
            // Compared as bytes: `Bson::Double(NaN) != Bson::Double(NaN)`.
            assert_eq!(
                bson::serialize_to_vec(&ours).ok(),
                bson::serialize_to_vec(&theirs).ok(),
                "decode_document and bson disagree on {raw:?}"
            );
            Some(ours)
        }
        (Err(_), Err(_)) => None,
        (ours, theirs) => panic!(
            "decode_document says {:?}, bson says {:?}, for {raw:?}",
            ours.map(|_| ()),
            theirs.map(|_| ())
        ),
    }
}
