//! Server selection: which servers may serve an operation, and which one should.
//!
//! 1. **Suitable servers** by topology: Single — the server; Sharded — every mongos (the read
//!    preference travels to mongos in `$readPreference`); LoadBalanced — the balancer;
//!    replica sets — the primary for writes, and for reads the read preference's mode,
//!    filtered by staleness, then by the first tag set any server matches. A read selected by
//!    the caller's [`Predicate`] instead takes any data-bearing server the predicate accepts
//!    (in a Single topology, the one server if it accepts it).
//! 2. **Deprioritized** servers (ones an earlier attempt of this operation failed on) are left
//!    out, unless that would leave nothing.
//! 3. **Latency window**: servers within `localThresholdMS` of the fastest.
//! 4. **Power of two choices**: of two random servers in the window, the one with fewer
//!    operations in flight — cheap, and it avoids herding onto one server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::ServerType;
use super::{ServerDescription, TopologyDescription, TopologyType};
use crate::address::ServerAddress;
use crate::error::{Error, Result};

/// The read preference modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Only the primary.
    #[default]
    Primary,
    /// The primary, else a secondary.
    PrimaryPreferred,
    /// Only secondaries.
    Secondary,
    /// A secondary, else the primary.
    SecondaryPreferred,
    /// Any data-bearing member, by latency.
    Nearest,
}

impl ReadMode {
    /// The mode's name as the specs and `$readPreference` write it, e.g. `secondaryPreferred`.
    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Primary => "primary",
            ReadMode::PrimaryPreferred => "primaryPreferred",
            ReadMode::Secondary => "secondary",
            ReadMode::SecondaryPreferred => "secondaryPreferred",
            ReadMode::Nearest => "nearest",
        }
    }

    /// The mode for a name (case-insensitive), e.g. `secondaryPreferred`.
    pub fn from_name(name: &str) -> Option<ReadMode> {
        [
            ReadMode::Primary,
            ReadMode::PrimaryPreferred,
            ReadMode::Secondary,
            ReadMode::SecondaryPreferred,
            ReadMode::Nearest,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// A replica set member's tags, or a tag set a read preference asks for: tag name to value.
pub type TagSet = HashMap<String, String>;

/// Where reads may go: selection's own form of a read preference (the public one is
/// `options::ReadPreference`, converted to this when a client, handle or operation gets it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadPreference {
    /// The mode.
    pub mode: ReadMode,
    /// Tag sets, tried in order; the first that matches any eligible server wins. An empty
    /// tag set matches every server.
    pub tag_sets: Vec<TagSet>,
    /// Secondaries estimated to lag more than this are not used.
    pub max_staleness: Option<Duration>,
    /// `hedge: { enabled }` for mongos (hedged reads, deprecated by MongoDB 8.0); selection
    /// does not look at it.
    pub hedge: Option<bool>,
}

/// A caller's test of which servers may serve a read (the official driver's
/// `SelectionCriteria::Predicate`): a server is suitable when the predicate returns true.
pub type Predicate = Arc<dyn Send + Sync + Fn(&ServerInfo) -> bool>;

/// What a [`Predicate`] sees of a server: a view of its description.
#[derive(Clone, Copy)]
pub struct ServerInfo<'a> {
    description: &'a ServerDescription,
}

impl<'a> ServerInfo<'a> {
    /// A view of `description`.
    pub fn new(description: &'a ServerDescription) -> ServerInfo<'a> {
        ServerInfo { description }
    }

    /// The server's address.
    pub fn address(&self) -> &'a ServerAddress {
        &self.description.address
    }

    /// The server's type.
    pub fn server_type(&self) -> ServerType {
        self.description.server_type
    }

    /// The average round trip of its monitor's checks, once measured.
    pub fn average_round_trip_time(&self) -> Option<Duration> {
        self.description.avg_rtt
    }

    /// The highest wire version it speaks, once it has answered a check.
    pub fn max_wire_version(&self) -> Option<i32> {
        (self.description.server_type != ServerType::Unknown)
            .then_some(self.description.max_wire_version)
    }

    /// Its replica set tags, when it has any.
    pub fn tags(&self) -> Option<&'a TagSet> {
        Some(&self.description.tags).filter(|t| !t.is_empty())
    }
}

impl std::fmt::Debug for ServerInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInfo")
            .field("address", self.address())
            .field("server_type", &self.server_type())
            .field("average_round_trip_time", &self.average_round_trip_time())
            .field("tags", &self.tags())
            .finish()
    }
}

/// What the server is wanted for.
#[derive(Clone, Copy)]
pub enum Operation<'a> {
    /// A read, with its preference.
    Read(&'a ReadPreference),
    /// A read sent to a server the caller's predicate accepts.
    Predicate(&'a Predicate),
    /// A write: primaries, mongos, standalones only.
    Write,
}

impl std::fmt::Debug for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::Read(rp) => f.debug_tuple("Read").field(rp).finish(),
            Operation::Predicate(_) => f.write_str("Predicate(..)"),
            Operation::Write => f.write_str("Write"),
        }
    }
}

/// Why no server could be selected, per server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectionError {
    /// For each known server, why it was unsuitable.
    pub reasons: Vec<(ServerAddress, String)>,
}

/// The spec's idle write period: how often a primary writes a no-op, bounding staleness error.
const IDLE_WRITE_PERIOD: Duration = Duration::from_secs(10);
/// The smallest maxStalenessSeconds the spec allows.
const SMALLEST_MAX_STALENESS: Duration = Duration::from_secs(90);

fn check_read_preference(rp: &ReadPreference, topo: &TopologyDescription) -> Result<()> {
    let has_tags = rp.tag_sets.iter().any(|t| !t.is_empty());
    if rp.mode == ReadMode::Primary && (has_tags || rp.max_staleness.is_some()) {
        return Err(Error::invalid_argument(
            "read preference primary cannot have tag sets or maxStalenessSeconds",
        ));
    }
    if let Some(max) = rp.max_staleness {
        let floor = SMALLEST_MAX_STALENESS.max(topo.heartbeat_frequency + IDLE_WRITE_PERIOD);
        if max < floor {
            return Err(Error::invalid_argument(format!(
                "maxStalenessSeconds must be at least {} (the larger of 90 and heartbeatFrequencyMS/1000 + 10), got {}",
                floor.as_secs(),
                max.as_secs()
            )));
        }
    }
    Ok(())
}

/// The servers that may serve `op`, before the latency window. Errors only for an invalid
/// read preference; an empty list means "none suitable now".
pub fn suitable_servers<'a>(
    topo: &'a TopologyDescription,
    op: Operation<'_>,
    deprioritized: &[ServerAddress],
) -> Result<Vec<&'a ServerDescription>> {
    let replica_set = matches!(
        topo.topology_type,
        TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary
    );
    if let (Operation::Read(rp), true) = (op, replica_set) {
        check_read_preference(rp, topo)?;
    }
    let pick = |skip: &[ServerAddress]| -> Vec<&'a ServerDescription> {
        let candidates: Vec<&ServerDescription> = topo
            .servers
            .iter()
            .filter(|s| !skip.contains(&s.address))
            .collect();
        if let Operation::Predicate(accepts) = op {
            let single = topo.topology_type == TopologyType::Single;
            return candidates
                .into_iter()
                .filter(|s| s.server_type != ServerType::Unknown)
                .filter(|s| single || s.server_type.is_data_bearing())
                .filter(|s| accepts(&ServerInfo::new(s)))
                .collect();
        }
        match topo.topology_type {
            TopologyType::Unknown => Vec::new(),
            TopologyType::Single => candidates
                .into_iter()
                .filter(|s| s.server_type != ServerType::Unknown)
                .collect(),
            TopologyType::LoadBalanced => candidates
                .into_iter()
                .filter(|s| s.server_type == ServerType::LoadBalancer)
                .collect(),
            TopologyType::Sharded => candidates
                .into_iter()
                .filter(|s| s.server_type == ServerType::Mongos)
                .collect(),
            TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary => match op {
                // (A predicate was applied above.)
                Operation::Write | Operation::Predicate(_) => {
                    of_type(&candidates, ServerType::RsPrimary)
                }
                Operation::Read(rp) => replica_set_read(topo, &candidates, rp),
            },
        }
    };
    let preferred = pick(deprioritized);
    Ok(if preferred.is_empty() && !deprioritized.is_empty() {
        pick(&[])
    } else {
        preferred
    })
}

fn of_type<'a>(servers: &[&'a ServerDescription], t: ServerType) -> Vec<&'a ServerDescription> {
    servers
        .iter()
        .copied()
        .filter(|s| s.server_type == t)
        .collect()
}

fn replica_set_read<'a>(
    topo: &TopologyDescription,
    candidates: &[&'a ServerDescription],
    rp: &ReadPreference,
) -> Vec<&'a ServerDescription> {
    let primaries = of_type(candidates, ServerType::RsPrimary);
    let secondaries = || {
        let fresh = not_stale(topo, of_type(candidates, ServerType::RsSecondary), rp);
        by_tags(fresh, &rp.tag_sets)
    };
    match rp.mode {
        ReadMode::Primary => primaries,
        ReadMode::PrimaryPreferred if !primaries.is_empty() => primaries,
        ReadMode::PrimaryPreferred | ReadMode::Secondary => secondaries(),
        ReadMode::SecondaryPreferred => {
            let s = secondaries();
            if s.is_empty() { primaries } else { s }
        }
        ReadMode::Nearest => {
            let members: Vec<_> = candidates
                .iter()
                .copied()
                .filter(|s| {
                    matches!(
                        s.server_type,
                        ServerType::RsPrimary | ServerType::RsSecondary
                    )
                })
                .collect();
            by_tags(not_stale(topo, members, rp), &rp.tag_sets)
        }
    }
}

/// Drops secondaries whose estimated staleness exceeds maxStalenessSeconds (primaries are
/// never stale). The estimate is the spec's: lag behind the primary (or, with none known,
/// behind the freshest secondary) plus one heartbeat of uncertainty.
fn not_stale<'a>(
    topo: &TopologyDescription,
    servers: Vec<&'a ServerDescription>,
    rp: &ReadPreference,
) -> Vec<&'a ServerDescription> {
    let Some(max) = rp.max_staleness else {
        return servers;
    };
    let heartbeat = topo.heartbeat_frequency.as_millis() as i64;
    let primary = topo
        .servers
        .iter()
        .find(|s| s.server_type == ServerType::RsPrimary);
    let freshest = topo
        .servers
        .iter()
        .filter(|s| s.server_type == ServerType::RsSecondary)
        .filter_map(|s| s.last_write_date_ms)
        .max();
    servers
        .into_iter()
        .filter(|s| {
            if s.server_type == ServerType::RsPrimary {
                return true;
            }
            let write = s.last_write_date_ms.unwrap_or(0);
            let staleness = match primary {
                Some(p) => {
                    (s.last_update_time_ms - write)
                        - (p.last_update_time_ms - p.last_write_date_ms.unwrap_or(0))
                        + heartbeat
                }
                None => freshest.unwrap_or(write) - write + heartbeat,
            };
            staleness <= max.as_millis() as i64
        })
        .collect()
}

/// Keeps the servers matching the first tag set that matches any of them.
fn by_tags<'a>(
    servers: Vec<&'a ServerDescription>,
    tag_sets: &[TagSet],
) -> Vec<&'a ServerDescription> {
    if tag_sets.is_empty() {
        return servers;
    }
    for set in tag_sets {
        let matching: Vec<_> = servers
            .iter()
            .copied()
            .filter(|s| s.matches_tags(set))
            .collect();
        if !matching.is_empty() {
            return matching;
        }
    }
    Vec::new()
}

/// The suitable servers whose average round trip is within `localThresholdMS` of the fastest.
pub fn in_latency_window<'a>(
    servers: &[&'a ServerDescription],
    local_threshold: Duration,
) -> Vec<&'a ServerDescription> {
    let fastest = servers.iter().filter_map(|s| s.avg_rtt).min();
    match fastest {
        None => servers.to_vec(),
        Some(fastest) => servers
            .iter()
            .copied()
            .filter(|s| s.avg_rtt.is_none_or(|rtt| rtt <= fastest + local_threshold))
            .collect(),
    }
}

/// Power of two choices: of two distinct servers drawn at random (`random` yields indices
/// below its argument), the one with fewer operations in flight.
pub fn choose_by_operation_count<'a>(
    in_window: &[&'a ServerDescription],
    operation_count: impl Fn(&ServerAddress) -> usize,
    mut random: impl FnMut(usize) -> usize,
) -> Option<&'a ServerDescription> {
    match in_window.len() {
        0 => None,
        1 => Some(in_window[0]),
        n => {
            let a = random(n);
            let mut b = random(n - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (in_window[a], in_window[b]);
            Some(
                if operation_count(&b.address) < operation_count(&a.address) {
                    b
                } else {
                    a
                },
            )
        }
    }
}
