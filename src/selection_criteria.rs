//! Which servers may serve an operation, as the official driver's `options` module spells it:
//! [`SelectionCriteria`] is a [`ReadPreference`] or a [`Predicate`] over
//! [`ServerInfo`](crate::topology::ServerInfo).
//!
//! Server selection itself (`topology::selection`, sans-IO) keeps its own form of a read
//! preference; these types are converted to it once, when a client, handle or operation is
//! given them ([`Criteria`]).

use std::fmt;
use std::time::Duration;

use typed_builder::TypedBuilder;

use crate::error::{Error, Result};
use crate::topology::{self, ReadMode};
pub use crate::topology::{Predicate, TagSet};

/// Describes which servers are suitable for an operation.
#[derive(Clone)]
pub enum SelectionCriteria {
    /// By read preference: server type, maximum staleness and tags.
    ReadPreference(ReadPreference),
    /// Any server the predicate accepts (`predicate(server)` returns true).
    Predicate(Predicate),
}

impl fmt::Debug for SelectionCriteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionCriteria::ReadPreference(rp) => {
                f.debug_tuple("ReadPreference").field(rp).finish()
            }
            SelectionCriteria::Predicate(_) => f.write_str("Predicate"),
        }
    }
}

impl fmt::Display for SelectionCriteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectionCriteria::ReadPreference(rp) => write!(f, "ReadPreference {rp}"),
            SelectionCriteria::Predicate(_) => f.write_str("Custom predicate"),
        }
    }
}

impl PartialEq for SelectionCriteria {
    /// Read preferences compare by value; a predicate equals nothing.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::ReadPreference(a), Self::ReadPreference(b)) => a == b,
            _ => false,
        }
    }
}

impl From<ReadPreference> for SelectionCriteria {
    fn from(read_pref: ReadPreference) -> Self {
        SelectionCriteria::ReadPreference(read_pref)
    }
}

/// Where a read goes among a replica set's members, after the Server Selection spec: the
/// mode, and for the modes other than `Primary`, tag sets and a maximum staleness.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadPreference {
    /// Only the primary.
    Primary,
    /// Only a secondary.
    Secondary {
        /// Tag sets, maximum staleness, hedging.
        options: Option<ReadPreferenceOptions>,
    },
    /// The primary if there is one, else a secondary.
    PrimaryPreferred {
        /// Tag sets, maximum staleness, hedging.
        options: Option<ReadPreferenceOptions>,
    },
    /// A secondary if there is one, else the primary.
    SecondaryPreferred {
        /// Tag sets, maximum staleness, hedging.
        options: Option<ReadPreferenceOptions>,
    },
    /// The member with the least latency, primary or secondary.
    Nearest {
        /// Tag sets, maximum staleness, hedging.
        options: Option<ReadPreferenceOptions>,
    },
}

impl fmt::Display for ReadPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut mode = self.mode().to_string();
        mode[0..1].make_ascii_uppercase();
        write!(f, "{{ Mode: {mode}")?;
        if let Some(options) = self.options() {
            if let Some(tag_sets) = &options.tag_sets {
                write!(f, ", Tag Sets: {tag_sets:?}")?;
            }
            if let Some(max_staleness) = &options.max_staleness {
                write!(f, ", Max Staleness: {max_staleness:?}")?;
            }
            #[allow(deprecated)]
            if let Some(hedge) = &options.hedge {
                write!(f, ", Hedge: {}", hedge.enabled)?;
            }
        }
        f.write_str(" }")
    }
}

/// The options of a read preference other than `Primary`.
#[allow(deprecated)]
#[derive(Clone, Debug, Default, PartialEq, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct ReadPreferenceOptions {
    /// Tag sets, tried in order until one matches one or more eligible servers (an empty tag
    /// set matches any).
    pub tag_sets: Option<Vec<TagSet>>,

    /// Secondaries estimated to lag the primary by more than this are not used. At least 90
    /// seconds (and at least `heartbeatFrequencyMS` + 10 s), else the operation fails. Sent as
    /// `maxStalenessSeconds`.
    pub max_staleness: Option<Duration>,

    /// Hedged reads on a sharded cluster (`hedge: { enabled }` to mongos).
    #[deprecated(
        note = "hedged reads are deprecated as of MongoDB 8.0 and will be removed in a future \
                server version"
    )]
    pub hedge: Option<HedgedReadOptions>,
}

/// Hedged reads: mongos sends each read to two members of each shard and takes the first
/// answer.
#[derive(Clone, Debug, PartialEq, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct HedgedReadOptions {
    /// Whether reads are hedged.
    pub enabled: bool,
}

impl ReadPreference {
    /// `Primary`: reads go to the primary only.
    pub fn primary() -> Self {
        ReadPreference::Primary
    }

    /// `Secondary` with `options`.
    pub fn secondary(options: impl Into<Option<ReadPreferenceOptions>>) -> Self {
        ReadPreference::Secondary {
            options: options.into(),
        }
    }

    /// `PrimaryPreferred` with `options`.
    pub fn primary_preferred(options: impl Into<Option<ReadPreferenceOptions>>) -> Self {
        ReadPreference::PrimaryPreferred {
            options: options.into(),
        }
    }

    /// `SecondaryPreferred` with `options`.
    pub fn secondary_preferred(options: impl Into<Option<ReadPreferenceOptions>>) -> Self {
        ReadPreference::SecondaryPreferred {
            options: options.into(),
        }
    }

    /// `Nearest` with `options`.
    pub fn nearest(options: impl Into<Option<ReadPreferenceOptions>>) -> Self {
        ReadPreference::Nearest {
            options: options.into(),
        }
    }

    /// The mode's name as `$readPreference` carries it, e.g. `secondaryPreferred`.
    pub(crate) fn mode(&self) -> &'static str {
        self.read_mode().name()
    }

    fn read_mode(&self) -> ReadMode {
        match self {
            ReadPreference::Primary => ReadMode::Primary,
            ReadPreference::Secondary { .. } => ReadMode::Secondary,
            ReadPreference::PrimaryPreferred { .. } => ReadMode::PrimaryPreferred,
            ReadPreference::SecondaryPreferred { .. } => ReadMode::SecondaryPreferred,
            ReadPreference::Nearest { .. } => ReadMode::Nearest,
        }
    }

    /// The read preference of `mode`, without options.
    pub(crate) fn from_mode(mode: ReadMode) -> ReadPreference {
        match mode {
            ReadMode::Primary => ReadPreference::Primary,
            ReadMode::Secondary => ReadPreference::Secondary { options: None },
            ReadMode::PrimaryPreferred => ReadPreference::PrimaryPreferred { options: None },
            ReadMode::SecondaryPreferred => ReadPreference::SecondaryPreferred { options: None },
            ReadMode::Nearest => ReadPreference::Nearest { options: None },
        }
    }

    pub(crate) fn options(&self) -> Option<&ReadPreferenceOptions> {
        match self {
            ReadPreference::Primary => None,
            ReadPreference::Secondary { options }
            | ReadPreference::PrimaryPreferred { options }
            | ReadPreference::SecondaryPreferred { options }
            | ReadPreference::Nearest { options } => options.as_ref(),
        }
    }

    fn options_mut(&mut self, what: &str) -> Result<&mut ReadPreferenceOptions> {
        match self {
            ReadPreference::Primary => Err(Error::invalid_argument(format!(
                "{what} can only be specified with a read preference mode other than primary"
            ))),
            ReadPreference::Secondary { options }
            | ReadPreference::PrimaryPreferred { options }
            | ReadPreference::SecondaryPreferred { options }
            | ReadPreference::Nearest { options } => Ok(options.get_or_insert_default()),
        }
    }

    /// This read preference with `tag_sets`; an error for `Primary`.
    pub(crate) fn with_tags(mut self, tag_sets: Vec<TagSet>) -> Result<Self> {
        self.options_mut("read preference tags")?.tag_sets = Some(tag_sets);
        Ok(self)
    }

    /// This read preference with `max_staleness`; an error for `Primary`.
    pub(crate) fn with_max_staleness(mut self, max_staleness: Duration) -> Result<Self> {
        self.options_mut("max staleness")?.max_staleness = Some(max_staleness);
        Ok(self)
    }

    /// Selection's form of this read preference.
    pub(crate) fn to_selection(&self) -> topology::ReadPreference {
        let options = self.options();
        #[allow(deprecated)]
        let hedge = options.and_then(|o| o.hedge.as_ref()).map(|h| h.enabled);
        topology::ReadPreference {
            mode: self.read_mode(),
            tag_sets: options.and_then(|o| o.tag_sets.clone()).unwrap_or_default(),
            max_staleness: options.and_then(|o| o.max_staleness),
            hedge,
        }
    }
}

/// A [`SelectionCriteria`] in the form server selection takes: converted once, when a client,
/// handle or operation is given one.
#[derive(Clone)]
pub(crate) enum Criteria {
    /// A read preference.
    ReadPreference(topology::ReadPreference),
    /// The caller's predicate.
    Predicate(Predicate),
}

impl Criteria {
    /// What selection is asked for a read under these criteria.
    pub(crate) fn operation(&self) -> topology::Operation<'_> {
        match self {
            Criteria::ReadPreference(rp) => topology::Operation::Read(rp),
            Criteria::Predicate(p) => topology::Operation::Predicate(p),
        }
    }

    /// The read preference, unless a predicate selects.
    pub(crate) fn read_preference(&self) -> Option<&topology::ReadPreference> {
        match self {
            Criteria::ReadPreference(rp) => Some(rp),
            Criteria::Predicate(_) => None,
        }
    }
}

impl Default for Criteria {
    /// The primary.
    fn default() -> Self {
        Criteria::ReadPreference(topology::ReadPreference::default())
    }
}

impl fmt::Debug for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Criteria::ReadPreference(rp) => f.debug_tuple("ReadPreference").field(rp).finish(),
            Criteria::Predicate(_) => f.write_str("Predicate"),
        }
    }
}

impl From<&SelectionCriteria> for Criteria {
    fn from(criteria: &SelectionCriteria) -> Criteria {
        match criteria {
            SelectionCriteria::ReadPreference(rp) => Criteria::ReadPreference(rp.to_selection()),
            SelectionCriteria::Predicate(p) => Criteria::Predicate(p.clone()),
        }
    }
}

impl From<&ReadPreference> for Criteria {
    fn from(rp: &ReadPreference) -> Criteria {
        Criteria::ReadPreference(rp.to_selection())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_conversion() {
        assert_eq!(ReadPreference::primary(), ReadPreference::Primary);
        assert_eq!(
            ReadPreference::nearest(None),
            ReadPreference::Nearest { options: None }
        );
        let options = ReadPreferenceOptions::builder()
            .max_staleness(Duration::from_secs(120))
            .tag_sets(vec![TagSet::from([("dc".to_string(), "ny".to_string())])])
            .build();
        let rp = ReadPreference::secondary(options.clone());
        assert_eq!(
            rp,
            ReadPreference::Secondary {
                options: Some(options)
            }
        );
        let internal = rp.to_selection();
        assert_eq!(internal.mode, ReadMode::Secondary);
        assert_eq!(internal.max_staleness, Some(Duration::from_secs(120)));
        assert_eq!(internal.tag_sets[0]["dc"], "ny");
        assert!(ReadPreference::Primary.with_tags(vec![]).is_err());
        assert_eq!(
            SelectionCriteria::from(ReadPreference::Primary).to_string(),
            "ReadPreference { Mode: Primary }"
        );
    }
}
