//! The driver's log, through [`tracing`]: off until the application installs a subscriber,
//! and then filtered by target, as `RUST_LOG` filters with `tracing-subscriber`'s `EnvFilter`:
//!
//! | target                          | what                                             | level |
//! |---------------------------------|--------------------------------------------------|-------|
//! | `may_mongo::command`            | each command started, succeeded, failed          | debug |
//! | `may_mongo::connection`         | pools and connections (the CMAP events)          | debug |
//! | `may_mongo::topology`           | servers and the topology (the SDAM events)       | debug |
//! | `may_mongo::server_selection`   | selection started, waiting, succeeded, failed    | debug |
//! | `may_mongo::options`            | URI options ignored or not used                  | warn  |
//! | `may_mongo::background`         | a background task that failed to start           | warn  |
//!
//! The first four are the components of MongoDB's logging spec. As that spec asks, a
//! security-sensitive command is logged without its body or reply, and documents are cut at
//! `MONGODB_LOG_MAX_DOCUMENT_LENGTH` characters (1,000 by default) with `...` after.
//!
//! Off, each log point costs a load and a compare (the callsite's cached interest): the
//! documents are never rendered, the events never built. `benches/tracing_cost.rs` measures it.

use std::sync::OnceLock;

use super::{CmapEvent, CommandEvent, SdamEvent};

/// Commands: started, succeeded, failed.
pub const COMMAND: &str = "may_mongo::command";
/// Connection pools and connections.
pub const CONNECTION: &str = "may_mongo::connection";
/// Server and topology changes, heartbeats.
pub const TOPOLOGY: &str = "may_mongo::topology";
/// Server selection.
pub const SERVER_SELECTION: &str = "may_mongo::server_selection";
/// Options given and not used.
pub const OPTIONS: &str = "may_mongo::options";
/// Background tasks.
pub const BACKGROUND: &str = "may_mongo::background";

/// True when a subscriber wants command events.
pub(crate) fn commands_on() -> bool {
    tracing::enabled!(target: COMMAND, tracing::Level::DEBUG)
}

/// True when a subscriber wants pool and connection events.
pub(crate) fn connections_on() -> bool {
    tracing::enabled!(target: CONNECTION, tracing::Level::DEBUG)
}

/// True when a subscriber wants server selection events.
pub(crate) fn selection_on() -> bool {
    tracing::enabled!(target: SERVER_SELECTION, tracing::Level::DEBUG)
}

/// Server selection for `selector` begins.
#[inline(never)]
pub(crate) fn selection_started(selector: &dyn std::fmt::Debug) {
    tracing::debug!(target: SERVER_SELECTION, selector = ?selector, "Server selection started");
}

/// Server selection waits (at most `remaining`) for a suitable server.
#[inline(never)]
pub(crate) fn selection_waiting(selector: &dyn std::fmt::Debug, remaining: std::time::Duration) {
    tracing::debug!(
        target: SERVER_SELECTION,
        selector = ?selector,
        remaining_ms = remaining.as_millis() as u64,
        "Waiting for suitable server to become available"
    );
}

/// Server selection ended: the server chosen, or why none was.
#[inline(never)]
pub(crate) fn selection_ended(
    selector: &dyn std::fmt::Debug,
    outcome: Result<&crate::address::ServerAddress, &crate::error::Error>,
) {
    match outcome {
        Ok(server) => tracing::debug!(
            target: SERVER_SELECTION,
            selector = ?selector,
            server = %server,
            "Server selection succeeded"
        ),
        Err(e) => tracing::debug!(
            target: SERVER_SELECTION,
            selector = ?selector,
            failure = %e,
            "Server selection failed"
        ),
    }
}

/// A handler for one operation's command events that logs each, then passes it to `user`.
#[inline(never)]
pub(crate) fn command_logger(
    user: Option<&super::EventHandler<CommandEvent>>,
) -> Option<super::EventHandler<CommandEvent>> {
    if !commands_on() {
        return None;
    }
    let user = user.cloned();
    Some(super::EventHandler::callback(move |e: CommandEvent| {
        command(&e);
        if let Some(user) = &user {
            user.handle(e);
        }
    }))
}

/// True when a subscriber wants topology events.
pub(crate) fn topology_on() -> bool {
    tracing::enabled!(target: TOPOLOGY, tracing::Level::DEBUG)
}

/// The longest document rendered, in characters: `MONGODB_LOG_MAX_DOCUMENT_LENGTH`, read once.
fn max_document_length() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("MONGODB_LOG_MAX_DOCUMENT_LENGTH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000)
    })
}

/// `doc` as bson's `Display` writes it (JSON-like), cut at the maximum length (on a
/// character boundary).
pub(crate) fn truncated(doc: &bson::Document) -> String {
    let max = max_document_length();
    let json = doc.to_string();
    match json.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &json[..cut]),
        None => json,
    }
}

/// Logs one command event. (A sensitive command's event arrives already emptied.)
#[inline(never)]
pub(crate) fn command(e: &CommandEvent) {
    match e {
        CommandEvent::Started(s) => tracing::debug!(
            target: COMMAND,
            command_name = %s.command_name,
            database_name = %s.db,
            request_id = s.request_id,
            server = %s.connection.address,
            driver_connection_id = s.connection.id,
            server_connection_id = ?s.connection.server_id,
            command = %truncated(&s.command),
            "Command started"
        ),
        CommandEvent::Succeeded(s) => tracing::debug!(
            target: COMMAND,
            command_name = %s.command_name,
            database_name = %s.db,
            request_id = s.request_id,
            server = %s.connection.address,
            driver_connection_id = s.connection.id,
            duration_ms = s.duration.as_secs_f64() * 1e3,
            reply = %truncated(&s.reply),
            "Command succeeded"
        ),
        CommandEvent::Failed(f) => tracing::debug!(
            target: COMMAND,
            command_name = %f.command_name,
            database_name = %f.db,
            request_id = f.request_id,
            server = %f.connection.address,
            driver_connection_id = f.connection.id,
            duration_ms = f.duration.as_secs_f64() * 1e3,
            failure = %f.failure,
            "Command failed"
        ),
    }
}

/// Logs one pool or connection event: its spec name, its server, and the event's fields.
pub(crate) fn connection(e: &CmapEvent) {
    let server = match e {
        CmapEvent::PoolCreated(e) => &e.address,
        CmapEvent::PoolReady(e) => &e.address,
        CmapEvent::PoolCleared(e) => &e.address,
        CmapEvent::PoolClosed(e) => &e.address,
        CmapEvent::ConnectionCreated(e) => &e.address,
        CmapEvent::ConnectionReady(e) => &e.address,
        CmapEvent::ConnectionClosed(e) => &e.address,
        CmapEvent::ConnectionCheckoutStarted(e) => &e.address,
        CmapEvent::ConnectionCheckoutFailed(e) => &e.address,
        CmapEvent::ConnectionCheckedOut(e) => &e.address,
        CmapEvent::ConnectionCheckedIn(e) => &e.address,
    };
    tracing::debug!(target: CONNECTION, server = %server, event = ?e, "{}", e.name());
}

/// Logs one topology event: what happened, the server it concerns (if one), and the event's
/// fields.
pub(crate) fn topology(e: &SdamEvent) {
    let (name, server) = match e {
        SdamEvent::ServerDescriptionChanged(e) => ("Server description changed", Some(&e.address)),
        SdamEvent::ServerOpening(e) => ("Starting server monitoring", Some(&e.address)),
        SdamEvent::ServerClosed(e) => ("Stopped server monitoring", Some(&e.address)),
        SdamEvent::TopologyDescriptionChanged(_) => ("Topology description changed", None),
        SdamEvent::TopologyOpening(_) => ("Starting topology monitoring", None),
        SdamEvent::TopologyClosed(_) => ("Stopped topology monitoring", None),
        SdamEvent::ServerHeartbeatStarted(e) => {
            ("Server heartbeat started", Some(&e.server_address))
        }
        SdamEvent::ServerHeartbeatSucceeded(e) => {
            ("Server heartbeat succeeded", Some(&e.server_address))
        }
        SdamEvent::ServerHeartbeatFailed(e) => ("Server heartbeat failed", Some(&e.server_address)),
    };
    match server {
        Some(server) => tracing::debug!(target: TOPOLOGY, server = %server, event = ?e, "{name}"),
        None => tracing::debug!(target: TOPOLOGY, event = ?e, "{name}"),
    }
}
