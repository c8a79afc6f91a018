//! The kind of server at the other end, read from its `hello` reply, and the wire versions
//! this driver speaks. Sans-IO rules like the rest of `topology/`: the connection's handshake
//! (above) reads a reply through them, so the two always agree.

/// Oldest wire version we speak: 6 (MongoDB 3.6) introduced OP_MSG.
pub(crate) const MIN_WIRE_VERSION: i32 = 6;
/// Newest wire version we know of (MongoDB 8.0).
pub(crate) const MAX_WIRE_VERSION: i32 = 25;

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

    /// True for the types that hold data or route to it: standalone, mongos, primary,
    /// secondary, load balancer.
    pub fn is_data_bearing(self) -> bool {
        matches!(
            self,
            ServerType::Standalone
                | ServerType::Mongos
                | ServerType::RsPrimary
                | ServerType::RsSecondary
                | ServerType::LoadBalancer
        )
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
