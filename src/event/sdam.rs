//! SDAM monitoring events, in the official `mongodb` crate's shape (`mongodb::event::sdam`):
//! topology and server changes as the driver learns the deployment, and each monitor's
//! heartbeats. Install a handler with `ClientOptions::sdam_event_handler`.
//!
//! The descriptions are this driver's own snapshots, [`Topology`](crate::Topology) and
//! [`ServerState`](crate::topology::ServerState), under the official names; they have public
//! fields where the official types have accessor methods.

pub use crate::topology::TopologyType;
pub use crate::topology::events::*;

/// What the driver knows about one server (the official crate's name for it).
pub type ServerDescription = crate::topology::ServerState;

/// What the driver knows about the deployment (the official crate's name for it).
pub type TopologyDescription = crate::topology::Topology;

/// Usage of this trait is deprecated, as in the official crate: use
/// [`EventHandler::callback`](super::EventHandler::callback). An `Arc` of an implementation
/// converts into an [`EventHandler<SdamEvent>`](super::EventHandler).
#[deprecated = "use the EventHandler API"]
#[allow(missing_docs)]
pub trait SdamEventHandler: Send + Sync {
    fn handle_server_description_changed_event(&self, _event: ServerDescriptionChangedEvent) {}
    fn handle_server_opening_event(&self, _event: ServerOpeningEvent) {}
    fn handle_server_closed_event(&self, _event: ServerClosedEvent) {}
    fn handle_topology_description_changed_event(&self, _event: TopologyDescriptionChangedEvent) {}
    fn handle_topology_opening_event(&self, _event: TopologyOpeningEvent) {}
    fn handle_topology_closed_event(&self, _event: TopologyClosedEvent) {}
    fn handle_server_heartbeat_started_event(&self, _event: ServerHeartbeatStartedEvent) {}
    fn handle_server_heartbeat_succeeded_event(&self, _event: ServerHeartbeatSucceededEvent) {}
    fn handle_server_heartbeat_failed_event(&self, _event: ServerHeartbeatFailedEvent) {}
}
