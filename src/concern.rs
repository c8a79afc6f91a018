//! Read and write concerns: what a read may see, and what a write waits for.
//!
//! Both follow MongoDB's Read and Write Concern spec: an unset field is left to the server's
//! default (and not sent), `w: 0` means unacknowledged (and cannot be combined with
//! `j: true`), and the command document uses the wire names `w`, `wtimeout`, `j`, `level`.
//! The types have the official driver's shapes and constructors (`ReadConcern::majority()`,
//! `WriteConcern::builder()`, ...).

use std::time::Duration;

use bson::{Bson, Document, doc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use typed_builder::TypedBuilder;

use crate::error::{Error, Result};

/// How many members must acknowledge a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Acknowledgment {
    /// This many members (`w: 0` is unacknowledged).
    Nodes(u32),
    /// A majority of voting members.
    Majority,
    /// A named tag set configured on the replica set.
    Custom(String),
}

impl Serialize for Acknowledgment {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Acknowledgment::Nodes(n) => serializer.serialize_i32((*n).min(i32::MAX as u32) as i32),
            Acknowledgment::Majority => serializer.serialize_str("majority"),
            Acknowledgment::Custom(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Acknowledgment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum IntOrString {
            Int(u32),
            String(String),
        }
        Ok(match IntOrString::deserialize(deserializer)? {
            IntOrString::Int(n) => n.into(),
            IntOrString::String(s) => s.into(),
        })
    }
}

impl From<u32> for Acknowledgment {
    fn from(n: u32) -> Self {
        Acknowledgment::Nodes(n)
    }
}

impl From<&str> for Acknowledgment {
    /// `"majority"` is [`Majority`](Acknowledgment::Majority), any other name a custom one.
    fn from(s: &str) -> Self {
        if s == "majority" {
            Acknowledgment::Majority
        } else {
            Acknowledgment::Custom(s.to_string())
        }
    }
}

impl From<String> for Acknowledgment {
    fn from(s: String) -> Self {
        if s == "majority" {
            Acknowledgment::Majority
        } else {
            Acknowledgment::Custom(s)
        }
    }
}

/// A write concern. All fields unset is the server's default. Build one with
/// [`WriteConcern::builder`], or [`majority`](WriteConcern::majority),
/// [`nodes`](WriteConcern::nodes), [`custom`](WriteConcern::custom).
#[derive(Clone, Debug, Default, PartialEq, Eq, TypedBuilder, Serialize, Deserialize)]
#[builder(field_defaults(default, setter(into)))]
pub struct WriteConcern {
    /// `w`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<Acknowledgment>,
    /// `wtimeout`: how long the server waits for `w` before reporting an error.
    #[serde(
        rename = "wtimeout",
        alias = "wtimeoutMS",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::duration_option_as_int_millis"
    )]
    pub w_timeout: Option<Duration>,
    /// `j`: wait for the journal.
    #[serde(
        rename = "j",
        alias = "journal",
        skip_serializing_if = "Option::is_none"
    )]
    pub journal: Option<bool>,
}

impl From<Acknowledgment> for WriteConcern {
    fn from(w: Acknowledgment) -> Self {
        WriteConcern {
            w: Some(w),
            w_timeout: None,
            journal: None,
        }
    }
}

impl WriteConcern {
    /// `w: n`: acknowledged by `n` members (`0`: unacknowledged).
    pub fn nodes(n: u32) -> Self {
        Acknowledgment::Nodes(n).into()
    }

    /// `w: "majority"`.
    pub fn majority() -> Self {
        Acknowledgment::Majority.into()
    }

    /// `w: <name>`, a custom write concern configured on the replica set (`"majority"` is
    /// [`majority`](Self::majority)).
    pub fn custom(name: impl AsRef<str>) -> Self {
        Acknowledgment::from(name.as_ref()).into()
    }

    /// Checks the combinations the spec forbids.
    pub fn validate(&self) -> Result<()> {
        if self.w == Some(Acknowledgment::Nodes(0)) && self.journal == Some(true) {
            return Err(Error::invalid_argument(
                "write concern w: 0 (unacknowledged) cannot ask for j: true",
            ));
        }
        Ok(())
    }

    /// True unless `w: 0`.
    pub fn is_acknowledged(&self) -> bool {
        self.w != Some(Acknowledgment::Nodes(0)) || self.journal == Some(true)
    }

    /// True when nothing is set: the command then carries no `writeConcern` at all.
    pub fn is_server_default(&self) -> bool {
        self.w.is_none() && self.w_timeout.is_none() && self.journal.is_none()
    }

    /// The `writeConcern` field a command carries: none when nothing is set (the server's
    /// default applies).
    pub(crate) fn command_field(&self) -> Option<Document> {
        (!self.is_server_default()).then(|| self.to_document())
    }

    /// The `writeConcern` document to send.
    pub fn to_document(&self) -> Document {
        let mut d = Document::new();
        match &self.w {
            Some(Acknowledgment::Nodes(n)) => {
                d.insert("w", *n as i32);
            }
            Some(Acknowledgment::Majority) => {
                d.insert("w", "majority");
            }
            Some(Acknowledgment::Custom(tag)) => {
                d.insert("w", tag.as_str());
            }
            None => {}
        }
        if let Some(t) = self.w_timeout {
            d.insert("wtimeout", t.as_millis() as i64);
        }
        if let Some(j) = self.journal {
            d.insert("j", j);
        }
        d
    }

    /// Reads `w` as given in a URI or a document: a non-negative number or a name.
    pub fn parse_w(w: &Bson) -> Result<Acknowledgment> {
        match w {
            Bson::Int32(n) if *n >= 0 => Ok(Acknowledgment::Nodes(*n as u32)),
            Bson::Int64(n) if *n >= 0 && *n <= u32::MAX as i64 => {
                Ok(Acknowledgment::Nodes(*n as u32))
            }
            Bson::String(s) if s == "majority" => Ok(Acknowledgment::Majority),
            Bson::String(s) => Ok(Acknowledgment::Custom(s.clone())),
            other => Err(Error::invalid_argument(format!(
                "write concern w must be a non-negative number or a name, got {other}"
            ))),
        }
    }
}

/// A read concern: what a read may see (`readConcern: { level }`). Leaving it unset (an
/// `Option<ReadConcern>` of `None`) is the server's default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadConcern {
    /// The level.
    pub level: ReadConcernLevel,
}

impl ReadConcern {
    /// Level `majority`.
    pub fn majority() -> Self {
        ReadConcernLevel::Majority.into()
    }

    /// Level `local`.
    pub fn local() -> Self {
        ReadConcernLevel::Local.into()
    }

    /// Level `linearizable`.
    pub fn linearizable() -> Self {
        ReadConcernLevel::Linearizable.into()
    }

    /// Level `available`.
    pub fn available() -> Self {
        ReadConcernLevel::Available.into()
    }

    /// Level `snapshot`.
    pub fn snapshot() -> Self {
        ReadConcernLevel::Snapshot.into()
    }

    /// A level by name: one of the above, or one this driver does not know (newer servers').
    pub fn custom(level: impl AsRef<str>) -> Self {
        ReadConcernLevel::from_str(level.as_ref()).into()
    }

    /// The `readConcern` document to send.
    pub fn to_document(&self) -> Document {
        doc! { "level": self.level.as_str() }
    }
}

impl From<ReadConcernLevel> for ReadConcern {
    fn from(level: ReadConcernLevel) -> Self {
        ReadConcern { level }
    }
}

/// A read concern's level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadConcernLevel {
    /// `local`.
    Local,
    /// `majority`.
    Majority,
    /// `linearizable`.
    Linearizable,
    /// `available`.
    Available,
    /// `snapshot`.
    Snapshot,
    /// Any other level, by name (for levels newer than this driver).
    Custom(String),
}

impl ReadConcernLevel {
    /// The level named `s` (a known one, else `Custom`).
    pub(crate) fn from_str(s: &str) -> Self {
        match s {
            "local" => ReadConcernLevel::Local,
            "majority" => ReadConcernLevel::Majority,
            "linearizable" => ReadConcernLevel::Linearizable,
            "available" => ReadConcernLevel::Available,
            "snapshot" => ReadConcernLevel::Snapshot,
            s => ReadConcernLevel::Custom(s.to_string()),
        }
    }

    /// The level's name, as the server takes it.
    pub fn as_str(&self) -> &str {
        match self {
            ReadConcernLevel::Local => "local",
            ReadConcernLevel::Majority => "majority",
            ReadConcernLevel::Linearizable => "linearizable",
            ReadConcernLevel::Available => "available",
            ReadConcernLevel::Snapshot => "snapshot",
            ReadConcernLevel::Custom(s) => s,
        }
    }
}

impl Serialize for ReadConcernLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.as_str().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ReadConcernLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Ok(ReadConcernLevel::from_str(&String::deserialize(
            deserializer,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_shapes_and_wire_documents() {
        let wc = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .w_timeout(Duration::from_millis(250))
            .journal(true)
            .build();
        assert_eq!(
            wc.to_document(),
            doc! { "w": "majority", "wtimeout": 250i64, "j": true }
        );
        assert_eq!(
            bson::serialize_to_document(&wc).unwrap(),
            doc! { "w": "majority", "wtimeout": 250i64, "j": true }
        );
        assert_eq!(WriteConcern::nodes(2).w, Some(Acknowledgment::Nodes(2)));
        assert_eq!(WriteConcern::custom("majority"), WriteConcern::majority());
        assert_eq!(
            WriteConcern::custom("dc").w,
            Some(Acknowledgment::Custom("dc".into()))
        );
        let back: WriteConcern =
            bson::deserialize_from_document(doc! { "w": 1, "wtimeoutMS": 5, "journal": false })
                .unwrap();
        assert_eq!(
            back,
            WriteConcern {
                w: Some(Acknowledgment::Nodes(1)),
                w_timeout: Some(Duration::from_millis(5)),
                journal: Some(false),
            }
        );
        assert_eq!(
            ReadConcern::majority().to_document(),
            doc! { "level": "majority" }
        );
        assert_eq!(ReadConcern::custom("local"), ReadConcern::local());
        assert_eq!(
            ReadConcern::custom("future").level,
            ReadConcernLevel::Custom("future".into())
        );
    }
}
