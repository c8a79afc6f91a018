//! What the server told us about itself in the handshake.

use bson::{RawBsonRef, RawDocument};

use crate::wire::{
    DEFAULT_MAX_BSON_OBJECT_SIZE, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_WRITE_BATCH_SIZE, Limits,
};

/// The kind of server at the other end, from its `hello` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerType {
    /// A server not in a replica set.
    Standalone,
    /// A `mongos` router.
    Mongos,
    /// The writable member of a replica set.
    RsPrimary,
    /// A readable, non-writable member.
    RsSecondary,
    /// An arbiter (votes, holds no data).
    RsArbiter,
    /// Another replica set member state (hidden, starting up, ...).
    RsOther,
    /// A replica set member that has not been initiated.
    RsGhost,
    /// Not known yet, or unreachable.
    Unknown,
    /// A load balancer in front of mongos routers.
    LoadBalancer,
    /// Named as primary by another member, not yet heard from itself.
    PossiblePrimary,
}

impl ServerType {
    /// The SDAM spec's name, e.g. `RSPrimary`.
    pub fn spec_name(self) -> &'static str {
        match self {
            ServerType::Standalone => "Standalone",
            ServerType::Mongos => "Mongos",
            ServerType::RsPrimary => "RSPrimary",
            ServerType::RsSecondary => "RSSecondary",
            ServerType::RsArbiter => "RSArbiter",
            ServerType::RsOther => "RSOther",
            ServerType::RsGhost => "RSGhost",
            ServerType::Unknown => "Unknown",
            ServerType::LoadBalancer => "LoadBalancer",
            ServerType::PossiblePrimary => "PossiblePrimary",
        }
    }

    /// The SDAM spec's reading of a `hello` reply: `msg` is its `msg` field, `in_set` says
    /// whether it has a `setName`, `flag(k)` whether boolean field `k` is true. Shared by the
    /// connection handshake and the topology, so both always agree.
    pub(crate) fn from_hello(
        msg: Option<&str>,
        in_set: bool,
        flag: impl Fn(&str) -> bool,
    ) -> ServerType {
        if msg == Some("isdbgrid") {
            ServerType::Mongos
        } else if flag("isreplicaset") {
            ServerType::RsGhost
        } else if !in_set {
            ServerType::Standalone
        } else if flag("isWritablePrimary") || flag("ismaster") {
            ServerType::RsPrimary
        } else if flag("hidden") {
            ServerType::RsOther
        } else if flag("secondary") {
            ServerType::RsSecondary
        } else if flag("arbiterOnly") {
            ServerType::RsArbiter
        } else {
            ServerType::RsOther
        }
    }

    /// The type for a spec name.
    pub fn from_spec_name(name: &str) -> Option<ServerType> {
        [
            ServerType::Standalone,
            ServerType::Mongos,
            ServerType::RsPrimary,
            ServerType::RsSecondary,
            ServerType::RsArbiter,
            ServerType::RsOther,
            ServerType::RsGhost,
            ServerType::Unknown,
            ServerType::LoadBalancer,
            ServerType::PossiblePrimary,
        ]
        .into_iter()
        .find(|t| t.spec_name() == name)
    }
}

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
            max_bson_object_size: get_int(reply, "maxBsonObjectSize")
                .map_or(DEFAULT_MAX_BSON_OBJECT_SIZE, |v| v as usize),
            max_message_size: get_int(reply, "maxMessageSizeBytes")
                .map_or(DEFAULT_MAX_MESSAGE_SIZE, |v| v as usize),
            max_write_batch_size: get_int(reply, "maxWriteBatchSize")
                .map_or(DEFAULT_MAX_WRITE_BATCH_SIZE, |v| v as usize),
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

/// Reads a numeric field whatever BSON number type the server chose for it.
pub(crate) fn get_int(doc: &RawDocument, key: &str) -> Option<i64> {
    match doc.get(key).ok()?? {
        RawBsonRef::Int32(v) => Some(v as i64),
        RawBsonRef::Int64(v) => Some(v),
        RawBsonRef::Double(v) if v.fract() == 0.0 => Some(v as i64),
        _ => None,
    }
}

/// Reads an array of strings, skipping anything else; empty when absent.
pub(crate) fn get_strings(doc: &RawDocument, key: &str) -> Vec<String> {
    doc.get_array(key)
        .map(|a| {
            a.into_iter()
                .filter_map(|v| v.ok()?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
