//! What the server told us about itself in the handshake.

use bson::{RawBsonRef, RawDocument};

pub use crate::topology::ServerType;
use crate::wire::{
    DEFAULT_MAX_BSON_OBJECT_SIZE, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_WRITE_BATCH_SIZE, Limits,
    get_int, get_strings,
};

/// A connection's view of its server, taken from the handshake reply.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamDescription {
    /// The server's kind.
    pub server_type: ServerType,
    /// Lowest wire version the server speaks.
    pub min_wire_version: i32,
    /// Highest wire version the server speaks.
    pub max_wire_version: i32,
    /// `maxBsonObjectSize`.
    pub max_bson_object_size: usize,
    /// `maxMessageSizeBytes`.
    pub max_message_size: usize,
    /// `maxWriteBatchSize`.
    pub max_write_batch_size: usize,
    /// Whether the server said `helloOk: true` (it knows the `hello` command).
    pub hello_ok: bool,
    /// The replica set name, if any.
    pub set_name: Option<String>,
    /// Session timeout, when the server supports sessions.
    pub logical_session_timeout_minutes: Option<i64>,
    /// The server's id for this connection, when it says.
    pub connection_id: Option<i64>,
    /// SASL mechanisms the server offers for the user named in the handshake.
    pub sasl_supported_mechs: Vec<String>,
    /// Compressors the server accepts from those the handshake offered.
    pub compression: Vec<String>,
}

impl StreamDescription {
    /// Reads a `hello`/`isMaster` reply. Missing fields take the spec's defaults.
    pub fn from_hello(reply: &RawDocument) -> StreamDescription {
        let flag = |k: &str| matches!(reply.get(k), Ok(Some(RawBsonRef::Boolean(true))));
        let set_name = reply.get_str("setName").ok().map(str::to_string);
        let server_type =
            ServerType::from_hello(reply.get_str("msg").ok(), set_name.is_some(), flag);
        let sasl_supported_mechs = get_strings(reply, "saslSupportedMechs");
        StreamDescription {
            server_type,
            min_wire_version: get_int(reply, "minWireVersion").unwrap_or(0) as i32,
            max_wire_version: get_int(reply, "maxWireVersion").unwrap_or(0) as i32,
            max_bson_object_size: limit(
                reply,
                "maxBsonObjectSize",
                DEFAULT_MAX_BSON_OBJECT_SIZE,
                MAX_ACCEPTED_BSON_OBJECT_SIZE,
            ),
            max_message_size: limit(
                reply,
                "maxMessageSizeBytes",
                DEFAULT_MAX_MESSAGE_SIZE,
                MAX_ACCEPTED_MESSAGE_SIZE,
            ),
            max_write_batch_size: limit(
                reply,
                "maxWriteBatchSize",
                DEFAULT_MAX_WRITE_BATCH_SIZE,
                usize::MAX,
            ),
            hello_ok: flag("helloOk"),
            set_name,
            logical_session_timeout_minutes: get_int(reply, "logicalSessionTimeoutMinutes"),
            connection_id: get_int(reply, "connectionId"),
            sasl_supported_mechs,
            compression: get_strings(reply, "compression"),
        }
    }

    /// The size limits to encode and decode with.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bson_object_size: self.max_bson_object_size,
            max_message_size: self.max_message_size,
            max_wire_version: self.max_wire_version,
            max_write_batch_size: self.max_write_batch_size,
        }
    }
}

/// The largest `maxBsonObjectSize` and `maxMessageSizeBytes` a server may raise the limits
/// to: four times what MongoDB has used for years (16 MiB, 48 MB). The limits bound what a
/// reply may make the driver allocate, so a server (or anything posing as one) must not be
/// able to lift them to gigabytes; found by fuzzing the handshake reply.
pub(crate) const MAX_ACCEPTED_BSON_OBJECT_SIZE: usize = 64 * 1024 * 1024;
pub(crate) const MAX_ACCEPTED_MESSAGE_SIZE: usize = 192_000_000;

/// A size limit from `hello`: the default when absent or not positive, at most `max`.
fn limit(reply: &RawDocument, key: &str, default: usize, max: usize) -> usize {
    match get_int(reply, key) {
        Some(v) if v > 0 => usize::try_from(v).map_or(max, |v| v.min(max)),
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawDocumentBuf, doc};

    fn described(hello: bson::Document) -> StreamDescription {
        StreamDescription::from_hello(&RawDocumentBuf::try_from(&hello).unwrap())
    }

    #[test]
    fn a_hello_cannot_lift_the_size_limits_out_of_bounds() {
        let d = described(doc! { "maxBsonObjectSize": 1000, "maxMessageSizeBytes": 2000 });
        assert_eq!((d.max_bson_object_size, d.max_message_size), (1000, 2000));
        for bad in [
            doc! { "maxBsonObjectSize": -1, "maxMessageSizeBytes": 0 },
            doc! { "maxBsonObjectSize": "big", "maxMessageSizeBytes": 0.5 },
        ] {
            let d = described(bad);
            assert_eq!(d.max_bson_object_size, DEFAULT_MAX_BSON_OBJECT_SIZE);
            assert_eq!(d.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
        }
        let d = described(doc! {
            "maxBsonObjectSize": i64::MAX, "maxMessageSizeBytes": 1e300, "maxWriteBatchSize": -5,
        });
        assert_eq!(d.max_bson_object_size, MAX_ACCEPTED_BSON_OBJECT_SIZE);
        assert_eq!(d.max_message_size, MAX_ACCEPTED_MESSAGE_SIZE);
        assert_eq!(d.max_write_batch_size, DEFAULT_MAX_WRITE_BATCH_SIZE);
        // A reply header claiming 2 GiB is then refused before anything is allocated.
        let mut header = [0u8; crate::wire::HEADER_LEN];
        header[..4].copy_from_slice(&i32::MAX.to_le_bytes());
        header[12..16].copy_from_slice(&(crate::wire::OpCode::Msg as i32).to_le_bytes());
        let h = crate::wire::Header::parse(&header).unwrap();
        assert!(h.checked_len(&d.limits()).is_err());
    }
}
