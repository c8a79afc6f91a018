//! SDAM monitoring events, in the official `mongodb` crate's shape (`mongodb::event::sdam`,
//! which re-exports these). They live here, beside the rules that cause most of them, so that
//! the sans-IO topology imports nothing above it.

use std::time::Duration;

use bson::Document;
use bson::oid::ObjectId;

use super::{ServerState, Topology};
use crate::address::ServerAddress;
use crate::error::Error;

/// A server's description changed. Descriptions are whole snapshots: compare
/// `previous_description` and `new_description` as you like.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerDescriptionChangedEvent {
    /// The server.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
    /// Before.
    pub previous_description: ServerState,
    /// After.
    pub new_description: ServerState,
}

/// A server joined the topology (a seed, or a member another server named).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerOpeningEvent {
    /// The server.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// A server left the topology (or the client was shut down).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerClosedEvent {
    /// The server.
    pub address: ServerAddress,
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// The deployment's description changed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TopologyDescriptionChangedEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
    /// Before.
    pub previous_description: Topology,
    /// After.
    pub new_description: Topology,
}

/// The client started monitoring a deployment.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TopologyOpeningEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// The client stopped monitoring (it was shut down).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TopologyClosedEvent {
    /// The topology's id.
    pub topology_id: ObjectId,
}

/// A monitor is about to check its server.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerHeartbeatStartedEvent {
    /// The server.
    pub server_address: ServerAddress,
    /// Whether the check is an awaitable `hello` (always false: this driver polls).
    pub awaited: bool,
    /// The driver's id for the monitor's connection (the one the check opens, when it has
    /// none).
    pub driver_connection_id: u32,
    /// The server's id for that connection, once its handshake gave one.
    pub server_connection_id: Option<i64>,
}

/// A check succeeded.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerHeartbeatSucceededEvent {
    /// The round trip (the connection's set-up included on a monitor's first check).
    pub duration: Duration,
    /// The `hello` (or legacy hello) reply.
    pub reply: Document,
    /// The server.
    pub server_address: ServerAddress,
    /// Whether the check was an awaitable `hello` (always false).
    pub awaited: bool,
    /// The driver's id for the monitor's connection.
    pub driver_connection_id: u32,
    /// The server's id for that connection.
    pub server_connection_id: Option<i64>,
}

/// A check failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerHeartbeatFailedEvent {
    /// Time until the failure.
    pub duration: Duration,
    /// Why.
    pub failure: Error,
    /// The server.
    pub server_address: ServerAddress,
    /// Whether the check was an awaitable `hello` (always false).
    pub awaited: bool,
    /// The driver's id for the monitor's connection.
    pub driver_connection_id: u32,
    /// The server's id for that connection, if its handshake gave one.
    pub server_connection_id: Option<i64>,
}

/// A change in what the driver knows about the deployment (the SDAM monitoring spec's
/// events), or a monitor's check.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum SdamEvent {
    ServerDescriptionChanged(Box<ServerDescriptionChangedEvent>),
    ServerOpening(ServerOpeningEvent),
    ServerClosed(ServerClosedEvent),
    TopologyDescriptionChanged(Box<TopologyDescriptionChangedEvent>),
    TopologyOpening(TopologyOpeningEvent),
    TopologyClosed(TopologyClosedEvent),
    ServerHeartbeatStarted(ServerHeartbeatStartedEvent),
    ServerHeartbeatSucceeded(ServerHeartbeatSucceededEvent),
    ServerHeartbeatFailed(ServerHeartbeatFailedEvent),
}

impl SdamEvent {
    pub(crate) fn server_opening(topology_id: ObjectId, address: &ServerAddress) -> SdamEvent {
        SdamEvent::ServerOpening(ServerOpeningEvent {
            address: address.clone(),
            topology_id,
        })
    }

    pub(crate) fn server_closed(topology_id: ObjectId, address: &ServerAddress) -> SdamEvent {
        SdamEvent::ServerClosed(ServerClosedEvent {
            address: address.clone(),
            topology_id,
        })
    }

    pub(crate) fn server_changed(
        topology_id: ObjectId,
        address: &ServerAddress,
        previous_description: ServerState,
        new_description: ServerState,
    ) -> SdamEvent {
        SdamEvent::ServerDescriptionChanged(Box::new(ServerDescriptionChangedEvent {
            address: address.clone(),
            topology_id,
            previous_description,
            new_description,
        }))
    }

    pub(crate) fn topology_changed(
        previous_description: Topology,
        new_description: Topology,
    ) -> SdamEvent {
        SdamEvent::TopologyDescriptionChanged(Box::new(TopologyDescriptionChangedEvent {
            topology_id: new_description.id,
            previous_description,
            new_description,
        }))
    }
}
