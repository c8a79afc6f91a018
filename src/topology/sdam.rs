//! Server Discovery and Monitoring: how replies and errors change what the driver knows.
//!
//! [`Topology`] is the SDAM spec's TopologyDescription with its update rules, and nothing
//! else: monitors (which do the I/O) call [`Topology::on_hello`] with each heartbeat's reply
//! or failure, operations call [`Topology::on_application_error`] when a command fails, and
//! server selection reads the result. Every rule is the spec's; the comments name them.

use std::collections::BTreeMap;

use bson::{Bson, Document, oid::ObjectId};

use super::ServerType;
use super::events::SdamEvent;
use super::{MAX_WIRE_VERSION, MIN_WIRE_VERSION};
use super::{ServerDescription, TopologyDescription, TopologyType};
use crate::address::ServerAddress;

/// A server's `topologyVersion`: which server process, and how many state changes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopologyVersion {
    /// The server process.
    pub process_id: ObjectId,
    /// Increments with each state change of that process.
    pub counter: i64,
}

impl TopologyVersion {
    fn from_doc(d: &Document) -> Option<TopologyVersion> {
        let tv = d.get_document("topologyVersion").ok()?;
        Some(TopologyVersion {
            process_id: tv.get_object_id("processId").ok()?,
            counter: match tv.get("counter")? {
                Bson::Int64(n) => *n,
                Bson::Int32(n) => *n as i64,
                _ => return None,
            },
        })
    }

    /// True when `self` is known to be older than `other` (same process, smaller counter).
    fn older_than(self, other: TopologyVersion) -> bool {
        self.process_id == other.process_id && self.counter < other.counter
    }
}

/// The most members one `hello` may name (hosts, passives and arbiters together): MongoDB's
/// own limit on a replica set's size.
pub const MAX_MEMBERS: usize = 50;

/// Everything SDAM tracks about one server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerState {
    /// The server's type.
    pub server_type: ServerType,
    /// Replica set name.
    pub set_name: Option<String>,
    /// Replica set config version.
    pub set_version: Option<i64>,
    /// The primary's election id.
    pub election_id: Option<ObjectId>,
    /// The members this server names as hosts (electable, data-bearing).
    pub hosts: Vec<ServerAddress>,
    /// The members it names as passives (priority 0).
    pub passives: Vec<ServerAddress>,
    /// The members it names as arbiters.
    pub arbiters: Vec<ServerAddress>,
    /// Whom this server names as primary.
    pub primary: Option<ServerAddress>,
    /// The address this server calls itself.
    pub me: Option<ServerAddress>,
    /// Wire versions.
    pub min_wire_version: i32,
    /// Wire versions.
    pub max_wire_version: i32,
    /// Session timeout.
    pub logical_session_timeout_minutes: Option<i64>,
    /// The last topologyVersion seen.
    pub topology_version: Option<TopologyVersion>,
    /// Why the server is Unknown, when it is.
    pub error: Option<String>,
    /// The connection pool's generation (bumped by each clear).
    pub pool_generation: u64,
    /// Replica set tags.
    pub tags: super::TagSet,
}

impl ServerState {
    /// A server not heard from yet.
    pub fn unknown() -> ServerState {
        ServerState {
            server_type: ServerType::Unknown,
            set_name: None,
            set_version: None,
            election_id: None,
            hosts: Vec::new(),
            passives: Vec::new(),
            arbiters: Vec::new(),
            primary: None,
            me: None,
            min_wire_version: 0,
            max_wire_version: 0,
            logical_session_timeout_minutes: None,
            topology_version: None,
            error: None,
            pool_generation: 0,
            tags: super::TagSet::new(),
        }
    }

    /// Reads a `hello` reply (or `None` for a failed check) the spec's way.
    pub fn from_hello(reply: Option<&Document>) -> ServerState {
        let mut s = ServerState::unknown();
        let Some(r) = reply else {
            return s;
        };
        let num = |k: &str| match r.get(k) {
            Some(Bson::Int32(n)) => Some(*n as i64),
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Double(n)) => Some(*n as i64),
            _ => None,
        };
        let flag = |k: &str| matches!(r.get(k), Some(Bson::Boolean(true)));
        s.topology_version = TopologyVersion::from_doc(r);
        if num("ok") != Some(1) {
            return s;
        }
        let addresses = |k: &str| -> Vec<ServerAddress> {
            r.get_array(k)
                .map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str())
                        .filter_map(|h| ServerAddress::parse(h).ok())
                        .map(|a| a.lowercase())
                        .collect()
                })
                .unwrap_or_default()
        };
        s.set_name = r.get_str("setName").ok().map(str::to_string);
        s.server_type = ServerType::from_hello(r.get_str("msg").ok(), s.set_name.is_some(), flag);
        s.set_version = num("setVersion");
        s.election_id = r.get_object_id("electionId").ok();
        s.hosts = addresses("hosts");
        s.passives = addresses("passives");
        s.arbiters = addresses("arbiters");
        let listed = s.hosts.len() + s.passives.len() + s.arbiters.len();
        if listed > MAX_MEMBERS {
            // Each member named gets a monitor (on the coroutine core a coroutine on a 1 MiB
            // stack): a reply naming thousands would make thousands. No replica set can be
            // that large, so the reply is not believed, and the server is Unknown.
            let mut refused = ServerState::unknown();
            refused.topology_version = s.topology_version;
            refused.error = Some(format!(
                "its hello names {listed} members; a replica set has at most {MAX_MEMBERS}, \
                 so the reply is not trusted"
            ));
            return refused;
        }
        s.primary = r
            .get_str("primary")
            .ok()
            .and_then(|p| ServerAddress::parse(p).ok())
            .map(|a| a.lowercase());
        s.me = r
            .get_str("me")
            .ok()
            .and_then(|p| ServerAddress::parse(p).ok())
            .map(|a| a.lowercase());
        s.min_wire_version = num("minWireVersion").unwrap_or(0) as i32;
        s.max_wire_version = num("maxWireVersion").unwrap_or(0) as i32;
        s.logical_session_timeout_minutes = num("logicalSessionTimeoutMinutes");
        s.tags = r
            .get_document("tags")
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        s
    }

    /// Every member this server names: hosts, passives and arbiters.
    pub fn members(&self) -> impl Iterator<Item = &ServerAddress> {
        self.hosts
            .iter()
            .chain(&self.passives)
            .chain(&self.arbiters)
    }

    fn data_bearing(&self) -> bool {
        matches!(
            self.server_type,
            ServerType::Standalone
                | ServerType::Mongos
                | ServerType::RsPrimary
                | ServerType::RsSecondary
                | ServerType::LoadBalancer
        )
    }
}

/// How an operation failed, for the error rules.
#[derive(Clone, Debug)]
pub enum ApplicationError {
    /// A network error (not a timeout).
    Network,
    /// A network timeout.
    Timeout,
    /// A command error reply (`ok: 0`), as sent by the server.
    Command(Document),
}

/// What the caller must do after an error.
#[derive(Clone, Debug, Default)]
pub struct ErrorOutcome {
    /// Clear the server's connection pool (the generation was bumped).
    pub clear_pool: bool,
    /// Check the server at once rather than waiting for the next heartbeat.
    pub check_now: bool,
    /// The events the error caused (the server marked Unknown).
    pub events: Vec<SdamEvent>,
}

/// The SDAM spec's TopologyDescription, with its update rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// The topology's id, which its SDAM events carry (`topology_id`); new for each client.
    pub id: ObjectId,
    /// Its type.
    pub topology_type: TopologyType,
    /// The replica set name, once known (or required by `replicaSet`).
    pub set_name: Option<String>,
    /// The highest setVersion seen from a primary.
    pub max_set_version: Option<i64>,
    /// The highest electionId seen from a primary.
    pub max_election_id: Option<ObjectId>,
    /// The servers, by address.
    pub servers: BTreeMap<ServerAddress, ServerState>,
    /// Why the driver cannot talk to some server's wire version, if so.
    pub compatibility_error: Option<String>,
    /// The smallest session timeout among data-bearing servers (None if any lacks one).
    pub logical_session_timeout_minutes: Option<i64>,
}

const NOT_WRITABLE_PRIMARY: &[i32] = &[10107, 13435, 10058];
const NODE_IS_RECOVERING: &[i32] = &[11600, 11602, 13436, 189, 91];
const SHUTDOWN: &[i32] = &[11600, 91];

impl Topology {
    /// The initial topology for seeds and URI options: `directConnection=true` is Single,
    /// `loadBalanced=true` LoadBalanced, `replicaSet` ReplicaSetNoPrimary, else Unknown.
    pub fn new(
        seeds: &[ServerAddress],
        direct: bool,
        load_balanced: bool,
        replica_set: Option<String>,
    ) -> Topology {
        let topology_type = if load_balanced {
            TopologyType::LoadBalanced
        } else if direct {
            TopologyType::Single
        } else if replica_set.is_some() {
            TopologyType::ReplicaSetNoPrimary
        } else {
            TopologyType::Unknown
        };
        let mut servers = BTreeMap::new();
        for s in seeds {
            let mut state = ServerState::unknown();
            if load_balanced {
                state.server_type = ServerType::LoadBalancer;
            }
            servers.insert(s.lowercase(), state);
        }
        let mut t = Topology {
            id: ObjectId::new(),
            topology_type,
            set_name: replica_set,
            max_set_version: None,
            max_election_id: None,
            servers,
            compatibility_error: None,
            logical_session_timeout_minutes: None,
        };
        t.recompute();
        t
    }

    /// The events that announce a new topology: opening, the seeds as Unknown servers, and
    /// (load-balanced) each balancer known at once. The monitors' first replies follow.
    pub fn opening_events(&self) -> Vec<SdamEvent> {
        let empty = Topology {
            id: self.id,
            topology_type: TopologyType::Unknown,
            set_name: None,
            max_set_version: None,
            max_election_id: None,
            servers: BTreeMap::new(),
            compatibility_error: None,
            logical_session_timeout_minutes: None,
        };
        let mut seeds = self.clone();
        for s in seeds.servers.values_mut() {
            *s = ServerState::unknown();
        }
        let mut events = vec![
            SdamEvent::TopologyOpening(super::events::TopologyOpeningEvent {
                topology_id: self.id,
            }),
            SdamEvent::topology_changed(empty, seeds.clone()),
        ];
        events.extend(
            self.servers
                .keys()
                .map(|a| SdamEvent::server_opening(self.id, a)),
        );
        if seeds != *self {
            for (a, s) in &self.servers {
                events.push(SdamEvent::server_changed(
                    self.id,
                    a,
                    ServerState::unknown(),
                    s.clone(),
                ));
            }
            events.push(SdamEvent::topology_changed(seeds, self.clone()));
        }
        events
    }

    /// Applies a heartbeat's outcome for `address`: its `hello` reply, or why the check failed.
    /// Returns the events it causes (none when nothing changed). A reply from a server no
    /// longer in the topology, or one older than what we know (`topologyVersion`), is ignored.
    pub fn on_hello(
        &mut self,
        address: &ServerAddress,
        reply: std::result::Result<&Document, String>,
    ) -> Vec<SdamEvent> {
        let address = address.lowercase();
        let Some(old) = self.servers.get(&address) else {
            return Vec::new();
        };
        if self.topology_type == TopologyType::LoadBalanced {
            return Vec::new();
        }
        let mut new = match reply {
            Ok(r) => ServerState::from_hello(Some(r)),
            Err(why) => {
                let mut s = ServerState::unknown();
                s.error = Some(why);
                s
            }
        };
        if let (Some(seen), Some(got)) = (old.topology_version, new.topology_version)
            && got.older_than(seen)
        {
            return Vec::new();
        }
        new.pool_generation = old.pool_generation;
        let old = old.clone();
        let before = self.clone();
        self.apply(&address, new.clone());
        let mut events = Vec::new();
        if new != old {
            events.push(SdamEvent::server_changed(self.id, &address, old, new));
        }
        for a in self.servers.keys() {
            if !before.servers.contains_key(a) {
                events.push(SdamEvent::server_opening(self.id, a));
            }
        }
        for a in before.servers.keys() {
            if !self.servers.contains_key(a) {
                events.push(SdamEvent::server_closed(self.id, a));
            }
        }
        if before != *self {
            events.push(SdamEvent::topology_changed(before, self.clone()));
        }
        events
    }

    /// The SDAM spec's update rules for one new server description.
    fn apply(&mut self, address: &ServerAddress, mut new: ServerState) {
        // A direct connection with replicaSet= must find that set.
        if self.topology_type == TopologyType::Single
            && let Some(want) = &self.set_name
            && new.server_type != ServerType::Unknown
            && new.set_name.as_ref() != Some(want)
        {
            let mut unknown = ServerState::unknown();
            unknown.pool_generation = new.pool_generation;
            unknown.error = Some(format!("server is not a member of replica set {want}"));
            new = unknown;
        }
        self.servers.insert(address.clone(), new.clone());
        let address = address.clone();
        use ServerType as S;
        match (self.topology_type, new.server_type) {
            (TopologyType::Single, _) | (TopologyType::LoadBalanced, _) => {}
            (TopologyType::Unknown, S::Standalone) => {
                if self.servers.len() == 1 {
                    self.topology_type = TopologyType::Single;
                } else {
                    self.servers.remove(&address);
                }
            }
            (TopologyType::Unknown, S::Mongos) => self.topology_type = TopologyType::Sharded,
            (TopologyType::Unknown, S::RsPrimary) => {
                self.topology_type = TopologyType::ReplicaSetWithPrimary;
                self.update_rs_from_primary(&address, &new);
            }
            (TopologyType::Unknown, S::RsSecondary | S::RsArbiter | S::RsOther) => {
                self.topology_type = TopologyType::ReplicaSetNoPrimary;
                self.update_rs_without_primary(&address, &new);
            }
            (TopologyType::Unknown, _) => {}
            (TopologyType::Sharded, S::Unknown | S::Mongos) => {}
            (TopologyType::Sharded, _) => {
                self.servers.remove(&address);
            }
            (TopologyType::ReplicaSetNoPrimary, S::Standalone | S::Mongos) => {
                self.servers.remove(&address);
            }
            (TopologyType::ReplicaSetNoPrimary, S::RsPrimary) => {
                self.topology_type = TopologyType::ReplicaSetWithPrimary;
                self.update_rs_from_primary(&address, &new);
            }
            (TopologyType::ReplicaSetNoPrimary, S::RsSecondary | S::RsArbiter | S::RsOther) => {
                self.update_rs_without_primary(&address, &new);
            }
            (TopologyType::ReplicaSetNoPrimary, _) => {}
            (TopologyType::ReplicaSetWithPrimary, S::Standalone | S::Mongos) => {
                self.servers.remove(&address);
                self.check_if_has_primary();
            }
            (TopologyType::ReplicaSetWithPrimary, S::RsPrimary) => {
                self.update_rs_from_primary(&address, &new);
            }
            (TopologyType::ReplicaSetWithPrimary, S::RsSecondary | S::RsArbiter | S::RsOther) => {
                self.update_rs_with_primary_from_member(&address, &new);
            }
            (TopologyType::ReplicaSetWithPrimary, _) => self.check_if_has_primary(),
        }
        self.recompute();
    }

    fn add_members(&mut self, s: &ServerState) {
        for m in s.members() {
            self.servers
                .entry(m.clone())
                .or_insert_with(ServerState::unknown);
        }
    }

    fn update_rs_without_primary(&mut self, address: &ServerAddress, s: &ServerState) {
        match &self.set_name {
            None => self.set_name = s.set_name.clone(),
            Some(name) if s.set_name.as_ref() != Some(name) => {
                self.servers.remove(address);
                return;
            }
            Some(_) => {}
        }
        self.add_members(s);
        // The spec marks the hinted primary before checking `me`: a member that misnames
        // itself is removed, but what it said about the primary still counts.
        if let Some(primary) = &s.primary
            && let Some(p) = self.servers.get_mut(primary)
            && p.server_type == ServerType::Unknown
        {
            p.server_type = ServerType::PossiblePrimary;
        }
        if s.me.as_ref().is_some_and(|me| me != address) {
            self.servers.remove(address);
        }
    }

    fn update_rs_with_primary_from_member(&mut self, address: &ServerAddress, s: &ServerState) {
        if self.set_name.is_some() && s.set_name != self.set_name {
            self.servers.remove(address);
            self.check_if_has_primary();
            return;
        }
        if s.me.as_ref().is_some_and(|me| me != address) {
            self.servers.remove(address);
            self.check_if_has_primary();
            return;
        }
        if !self
            .servers
            .values()
            .any(|v| v.server_type == ServerType::RsPrimary)
        {
            self.topology_type = TopologyType::ReplicaSetNoPrimary;
            if let Some(primary) = &s.primary
                && let Some(p) = self.servers.get_mut(primary)
                && p.server_type == ServerType::Unknown
            {
                p.server_type = ServerType::PossiblePrimary;
            }
        }
    }

    fn update_rs_from_primary(&mut self, address: &ServerAddress, s: &ServerState) {
        match &self.set_name {
            None => self.set_name = s.set_name.clone(),
            Some(name) if s.set_name.as_ref() != Some(name) => {
                self.servers.remove(address);
                self.check_if_has_primary();
                return;
            }
            Some(_) => {}
        }
        // Stale primaries: order by (electionId, setVersion) from wire version 17 (6.0) on,
        // by (setVersion, electionId) before.
        let stale = if s.max_wire_version >= 17 {
            let ours = (s.election_id, s.set_version);
            let max = (self.max_election_id, self.max_set_version);
            let stale = compare_election(ours, max) == std::cmp::Ordering::Less;
            if !stale {
                self.max_election_id = s.election_id;
                self.max_set_version = s.set_version;
            }
            stale
        } else {
            let mut stale = false;
            if let (Some(sv), Some(eid)) = (s.set_version, s.election_id) {
                if let (Some(max_sv), Some(max_eid)) = (self.max_set_version, self.max_election_id)
                    && (max_sv > sv || (max_sv == sv && max_eid > eid))
                {
                    stale = true;
                } else {
                    self.max_election_id = Some(eid);
                }
            }
            if !stale
                && let Some(sv) = s.set_version
                && self.max_set_version.is_none_or(|m| sv > m)
            {
                self.max_set_version = Some(sv);
            }
            stale
        };
        if stale {
            let mut unknown = ServerState::unknown();
            unknown.pool_generation = s.pool_generation;
            unknown.error = Some("primary with a stale electionId/setVersion".into());
            self.servers.insert(address.clone(), unknown);
            self.check_if_has_primary();
            return;
        }
        // Only one primary: any other is demoted to Unknown.
        for (a, other) in self.servers.iter_mut() {
            if a != address && other.server_type == ServerType::RsPrimary {
                let generation = other.pool_generation;
                *other = ServerState::unknown();
                other.pool_generation = generation;
            }
        }
        self.add_members(s);
        self.servers.retain(|a, _| s.members().any(|m| m == a));
        self.check_if_has_primary();
    }

    fn check_if_has_primary(&mut self) {
        if matches!(
            self.topology_type,
            TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary
        ) {
            self.topology_type = if self
                .servers
                .values()
                .any(|s| s.server_type == ServerType::RsPrimary)
            {
                TopologyType::ReplicaSetWithPrimary
            } else {
                TopologyType::ReplicaSetNoPrimary
            };
        }
    }

    /// Recomputes the derived fields: wire compatibility and the session timeout.
    fn recompute(&mut self) {
        self.compatibility_error = None;
        for (a, s) in &self.servers {
            // Only servers we have heard from have wire versions: not Unknown ones, not a
            // PossiblePrimary (another member named it), and not a load balancer (never
            // checked by a monitor; each connection's handshake tells instead).
            if matches!(
                s.server_type,
                ServerType::Unknown | ServerType::PossiblePrimary | ServerType::LoadBalancer
            ) {
                continue;
            }
            if s.min_wire_version > MAX_WIRE_VERSION {
                self.compatibility_error = Some(format!(
                    "server {a} requires wire version {}, this driver speaks up to {MAX_WIRE_VERSION}",
                    s.min_wire_version
                ));
            } else if s.max_wire_version < MIN_WIRE_VERSION {
                self.compatibility_error = Some(format!(
                    "server {a} speaks wire versions up to {}, this driver needs {MIN_WIRE_VERSION} (MongoDB 3.6)",
                    s.max_wire_version
                ));
            }
        }
        let data_bearing: Vec<&ServerState> =
            self.servers.values().filter(|s| s.data_bearing()).collect();
        self.logical_session_timeout_minutes = if data_bearing.is_empty() {
            None
        } else {
            data_bearing
                .iter()
                .map(|s| s.logical_session_timeout_minutes)
                .collect::<Option<Vec<_>>>()
                .and_then(|v| v.into_iter().min())
        };
    }

    /// Sets the pool generation SDAM compares errors against (the runtime's pool owns the
    /// counter; clearing a pool that is already paused does not bump it).
    pub fn set_pool_generation(&mut self, address: &ServerAddress, generation: u64) {
        if let Some(s) = self.servers.get_mut(&address.lowercase()) {
            s.pool_generation = generation;
        }
    }

    /// Applies the SDAM error rules to an operation's failure on `address`, over a connection of
    /// pool generation `generation`. Returns what the caller must do.
    pub fn on_application_error(
        &mut self,
        address: &ServerAddress,
        generation: u64,
        max_wire_version: i32,
        error: &ApplicationError,
    ) -> ErrorOutcome {
        let address = address.lowercase();
        let Some(server) = self.servers.get(&address) else {
            return ErrorOutcome::default();
        };
        // An error from a connection older than the pool's last clear says nothing new.
        if generation < server.pool_generation {
            return ErrorOutcome::default();
        }
        let mut outcome = ErrorOutcome::default();
        let mut topology_version = None;
        match error {
            // A timeout says the server is slow, not gone: after the handshake it is the
            // operation's problem, and (per the current spec) during connection set-up it
            // must not clear the pool either, or a burst of slow connects would empty it.
            ApplicationError::Timeout => return outcome,
            ApplicationError::Network => outcome.clear_pool = true,
            ApplicationError::Command(reply) => {
                let code = match reply.get("code") {
                    Some(Bson::Int32(c)) => Some(*c),
                    Some(Bson::Int64(c)) => Some(*c as i32),
                    Some(Bson::Double(c)) => Some(*c as i32),
                    _ => None,
                };
                let message = reply.get_str("errmsg").unwrap_or("");
                let recovering = match code {
                    Some(c) => NODE_IS_RECOVERING.contains(&c),
                    None => {
                        message.contains("node is recovering")
                            || message.contains("not master or secondary")
                    }
                };
                let not_primary = match code {
                    Some(c) => NOT_WRITABLE_PRIMARY.contains(&c),
                    None => !recovering && message.contains("not master"),
                };
                if !recovering && !not_primary {
                    return outcome; // not a state change: nothing to learn
                }
                topology_version = TopologyVersion::from_doc(reply);
                if let (Some(new), Some(current)) = (topology_version, server.topology_version)
                    && (new.older_than(current) || new == current)
                {
                    return outcome; // the server's state has moved on since this error
                }
                let shutdown = code.is_some_and(|c| SHUTDOWN.contains(&c));
                outcome.clear_pool = max_wire_version <= 7 || shutdown;
                outcome.check_now = true;
            }
        }
        let mut unknown = ServerState::unknown();
        unknown.pool_generation = server.pool_generation + u64::from(outcome.clear_pool);
        unknown.topology_version = topology_version;
        unknown.error = Some(match error {
            ApplicationError::Network => "network error".into(),
            ApplicationError::Timeout => "timed out connecting".into(),
            ApplicationError::Command(r) => format!(
                "command error: {}",
                r.get_str("errmsg").unwrap_or("(no message)")
            ),
        });
        let before = self.clone();
        let previous = self.servers.insert(address.clone(), unknown.clone());
        self.check_if_has_primary();
        self.recompute();
        if let Some(previous) = previous
            && previous != unknown
        {
            outcome.events.push(SdamEvent::server_changed(
                self.id, &address, previous, unknown,
            ));
        }
        if before != *self {
            outcome
                .events
                .push(SdamEvent::topology_changed(before, self.clone()));
        }
        outcome
    }

    /// The view server selection needs.
    pub fn description(
        &self,
        heartbeat_frequency: std::time::Duration,
        local_threshold: std::time::Duration,
    ) -> TopologyDescription {
        TopologyDescription {
            topology_type: self.topology_type,
            servers: self
                .servers
                .iter()
                .map(|(a, s)| ServerDescription {
                    address: a.clone(),
                    server_type: s.server_type,
                    avg_rtt: None,
                    tags: s.tags.clone(),
                    last_update_time_ms: 0,
                    last_write_date_ms: None,
                    max_wire_version: s.max_wire_version,
                })
                .collect(),
            heartbeat_frequency,
            local_threshold,
        }
    }
}

/// Orders (electionId, setVersion) pairs; a missing value sorts first.
fn compare_election(
    a: (Option<ObjectId>, Option<i64>),
    b: (Option<ObjectId>, Option<i64>),
) -> std::cmp::Ordering {
    a.0.map(|o| o.bytes())
        .cmp(&b.0.map(|o| o.bytes()))
        .then(a.1.cmp(&b.1))
}
