//! Monitoring: the events the driver emits, and the handlers that receive them, in the
//! official `mongodb` crate's shape (`mongodb::event`).
//!
//! Three families, each with its own handler in the client options: CMAP events from each
//! connection pool ([`cmap::CmapEvent`], `ClientOptions::cmap_event_handler`), command
//! events around each command sent ([`command::CommandEvent`], after MongoDB's command logging
//! and monitoring spec, `ClientOptions::command_event_handler`), and SDAM events as the driver
//! learns the deployment ([`sdam::SdamEvent`], `ClientOptions::sdam_event_handler`). A family
//! without a handler costs nothing: its events are never built.

use std::sync::Arc;

pub mod cmap;
pub mod command;
pub(crate) mod deferred;
pub mod log;
pub mod sdam;

pub use cmap::CmapEvent;
pub use command::CommandEvent;
pub use sdam::SdamEvent;

/// Where events of type `T` go: a callback, made with [`EventHandler::callback`].
///
/// ```
/// use may_mongo::ClientOptions;
/// use may_mongo::event::EventHandler;
/// use may_mongo::event::command::CommandEvent;
///
/// let mut options = ClientOptions::default();
/// options.command_event_handler = Some(EventHandler::callback(|ev: CommandEvent| {
///     if let CommandEvent::Failed(f) = ev {
///         eprintln!("{} failed: {}", f.command_name, f.failure);
///     }
/// }));
/// ```
///
/// Command callbacks run synchronously, on the caller's coroutine or thread and its own stack,
/// as the rest of the caller's code. CMAP and SDAM events are made under the pool's or the
/// deployment's lock, which gives them one true order, and delivered in that order once the
/// lock is released, on a driver stack: by the caller whose operation or check caused them,
/// or — when another caller is delivering at that moment — by that one. No lock of the
/// driver's is held while a callback runs, so a callback may call back into the client
/// (`pool_stats()`, `topology()`) without deadlocking, and a slow one delays only its
/// deliverer. Still, keep callbacks short: record, count or send on a channel; a callback
/// that blocks a may worker stalls every coroutine queued on it. The event is the callback's
/// to keep or drop (dropping a command event frees its documents, which recurses as deep as
/// they are nested).
///
/// The official crate also has `AsyncCallback` and `TokioMpsc` handlers; this driver has no
/// async runtime to run them on, and offers the callback only.
#[derive(Clone)]
#[non_exhaustive]
pub enum EventHandler<T> {
    /// A callback.
    Callback(Arc<dyn Fn(T) + Sync + Send>),
}

impl<T> std::fmt::Debug for EventHandler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EventHandler").finish()
    }
}

impl<T: Send + Sync + 'static> EventHandler<T> {
    /// A handler that calls `f` with each event.
    pub fn callback(f: impl Fn(T) + Send + Sync + 'static) -> Self {
        EventHandler::Callback(Arc::new(f))
    }

    /// Delivers one event.
    pub(crate) fn handle(&self, event: T) {
        match self {
            EventHandler::Callback(f) => f(event),
        }
    }
}

#[allow(deprecated)]
impl<H: command::CommandEventHandler + 'static> From<Arc<H>> for EventHandler<CommandEvent> {
    fn from(h: Arc<H>) -> Self {
        EventHandler::callback(move |ev| match ev {
            CommandEvent::Started(e) => h.handle_command_started_event(e),
            CommandEvent::Succeeded(e) => h.handle_command_succeeded_event(e),
            CommandEvent::Failed(e) => h.handle_command_failed_event(e),
        })
    }
}

#[allow(deprecated)]
impl<H: cmap::CmapEventHandler + 'static> From<Arc<H>> for EventHandler<CmapEvent> {
    fn from(h: Arc<H>) -> Self {
        use CmapEvent::*;
        EventHandler::callback(move |ev| match ev {
            PoolCreated(e) => h.handle_pool_created_event(e),
            PoolReady(e) => h.handle_pool_ready_event(e),
            PoolCleared(e) => h.handle_pool_cleared_event(e),
            PoolClosed(e) => h.handle_pool_closed_event(e),
            ConnectionCreated(e) => h.handle_connection_created_event(e),
            ConnectionReady(e) => h.handle_connection_ready_event(e),
            ConnectionClosed(e) => h.handle_connection_closed_event(e),
            ConnectionCheckoutStarted(e) => h.handle_connection_checkout_started_event(e),
            ConnectionCheckoutFailed(e) => h.handle_connection_checkout_failed_event(e),
            ConnectionCheckedOut(e) => h.handle_connection_checked_out_event(e),
            ConnectionCheckedIn(e) => h.handle_connection_checked_in_event(e),
        })
    }
}

#[allow(deprecated)]
impl<H: sdam::SdamEventHandler + 'static> From<Arc<H>> for EventHandler<SdamEvent> {
    fn from(h: Arc<H>) -> Self {
        use SdamEvent::*;
        EventHandler::callback(move |ev| match ev {
            ServerDescriptionChanged(e) => h.handle_server_description_changed_event(*e),
            ServerOpening(e) => h.handle_server_opening_event(e),
            ServerClosed(e) => h.handle_server_closed_event(e),
            TopologyDescriptionChanged(e) => h.handle_topology_description_changed_event(*e),
            TopologyOpening(e) => h.handle_topology_opening_event(e),
            TopologyClosed(e) => h.handle_topology_closed_event(e),
            ServerHeartbeatStarted(e) => h.handle_server_heartbeat_started_event(e),
            ServerHeartbeatSucceeded(e) => h.handle_server_heartbeat_succeeded_event(e),
            ServerHeartbeatFailed(e) => h.handle_server_heartbeat_failed_event(e),
        })
    }
}
