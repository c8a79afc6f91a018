//! Topology descriptions and server selection, sans-IO.
//!
//! This is the decision half of MongoDB's SDAM and Server Selection specs: given what the
//! driver knows about each server (its type, round-trip time, tags, replication lag), which
//! servers may serve an operation, and which one should. No sockets and no clocks are
//! touched here: monitors (the I/O half) feed descriptions in, operations ask for a server.

pub(crate) mod events;
mod rtt;
mod sdam;
mod selection;
mod server_type;

pub use events::SdamEvent;
pub use rtt::RoundTripTime;
pub use sdam::{ApplicationError, ErrorOutcome, ServerState, Topology, TopologyVersion};
pub use selection::{
    Operation, Predicate, ReadMode, ReadPreference, SelectionError, ServerInfo, TagSet,
    choose_by_operation_count, in_latency_window, suitable_servers,
};
pub use server_type::ServerType;
pub(crate) use server_type::{MAX_WIRE_VERSION, MIN_WIRE_VERSION};

use std::time::Duration;

use crate::address::ServerAddress;

/// The shape of the deployment, as discovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyType {
    /// One server, connected to directly.
    Single,
    /// A replica set whose primary is known.
    ReplicaSetWithPrimary,
    /// A replica set with no known primary.
    ReplicaSetNoPrimary,
    /// mongos routers.
    Sharded,
    /// A load balancer.
    LoadBalanced,
    /// Not known yet.
    Unknown,
}

impl TopologyType {
    /// The type for a spec name, e.g. `ReplicaSetWithPrimary`.
    pub fn from_spec_name(name: &str) -> Option<TopologyType> {
        Some(match name {
            "Single" => TopologyType::Single,
            "ReplicaSetWithPrimary" => TopologyType::ReplicaSetWithPrimary,
            "ReplicaSetNoPrimary" => TopologyType::ReplicaSetNoPrimary,
            "Sharded" => TopologyType::Sharded,
            "LoadBalanced" => TopologyType::LoadBalanced,
            "Unknown" => TopologyType::Unknown,
            _ => return None,
        })
    }
}

/// What the driver knows about one server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerDescription {
    /// Its address.
    pub address: ServerAddress,
    /// Its type.
    pub server_type: ServerType,
    /// Average round-trip time, once measured.
    pub avg_rtt: Option<Duration>,
    /// Replica set member tags.
    pub tags: TagSet,
    /// When the driver last heard from it, in ms on the driver's clock.
    pub last_update_time_ms: i64,
    /// The server's last write, in ms since the epoch (replica set members).
    pub last_write_date_ms: Option<i64>,
    /// Its highest wire version.
    pub max_wire_version: i32,
}

impl ServerDescription {
    /// A server not heard from yet.
    pub fn unknown(address: ServerAddress) -> ServerDescription {
        ServerDescription {
            address,
            server_type: ServerType::Unknown,
            avg_rtt: None,
            tags: TagSet::new(),
            last_update_time_ms: 0,
            last_write_date_ms: None,
            max_wire_version: 0,
        }
    }

    /// True when the server has every tag of `tag_set` (an empty set matches any server).
    pub fn matches_tags(&self, tag_set: &TagSet) -> bool {
        tag_set.iter().all(|(k, v)| self.tags.get(k) == Some(v))
    }
}

/// What the driver knows about the deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct TopologyDescription {
    /// Its shape.
    pub topology_type: TopologyType,
    /// Its servers.
    pub servers: Vec<ServerDescription>,
    /// How often monitors check each server (enters the staleness estimate).
    pub heartbeat_frequency: Duration,
    /// `localThresholdMS`: the latency window's width.
    pub local_threshold: Duration,
}
