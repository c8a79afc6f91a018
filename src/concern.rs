//! Read and write concerns: what a read may see, and what a write waits for.
//!
//! Both follow MongoDB's Read and Write Concern spec: an unset field is left to the server's
//! default (and not sent), `w: 0` means unacknowledged (and cannot be combined with
//! `j: true`), and the command document uses the wire names `w`, `wtimeout`, `j`, `level`.

use std::time::Duration;

use bson::{Bson, Document, doc};

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

/// A write concern. All fields unset is the server's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteConcern {
    /// `w`.
    pub w: Option<Acknowledgment>,
    /// `wtimeout`: how long the server waits for `w` before reporting an error.
    pub w_timeout: Option<Duration>,
    /// `j`: wait for the journal.
    pub journal: Option<bool>,
}

impl WriteConcern {
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

/// A read concern. No level is the server's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadConcern {
    /// `level`: `local`, `majority`, `linearizable`, `available`, `snapshot`, or a newer one.
    pub level: Option<String>,
}

impl ReadConcern {
    /// True when no level is set: the command then carries no `readConcern`.
    pub fn is_server_default(&self) -> bool {
        self.level.is_none()
    }

    /// The `readConcern` document to send.
    pub fn to_document(&self) -> Document {
        match &self.level {
            Some(level) => doc! { "level": level.as_str() },
            None => Document::new(),
        }
    }
}
