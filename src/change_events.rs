//! The types of change streams that lower layers name: what a change stream yields (one
//! [`ChangeStreamEvent`] per change, with its resume token) and its options. The stream itself
//! is in `change_stream/`.

use std::time::Duration;

use bson::{Bson, DateTime, Document, RawBson, Timestamp};
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::collation::Collation;
use crate::concern::ReadConcern;
use crate::selection_criteria::SelectionCriteria;

/// An opaque token naming a point in a change stream: give it to
/// [`ChangeStreamOptions::resume_after`]
/// (or `start_after`) to continue after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeToken(pub(crate) RawBson);

impl ResumeToken {
    /// The token as BSON.
    pub fn as_raw(&self) -> &RawBson {
        &self.0
    }
}

/// One change, as the server describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChangeStreamEvent<T> {
    /// The event's resume token.
    #[serde(rename = "_id")]
    pub id: ResumeToken,
    /// What kind of change.
    pub operation_type: OperationType,
    /// Where it happened.
    pub ns: Option<ChangeNamespace>,
    /// The new name, for a `rename`.
    pub to: Option<ChangeNamespace>,
    /// The changed document's `_id` (and shard key), for CRUD changes.
    pub document_key: Option<Document>,
    /// The fields an `update` changed and removed.
    pub update_description: Option<UpdateDescription>,
    /// When it happened, on the cluster's clock.
    pub cluster_time: Option<Timestamp>,
    /// When it happened, by the wall clock of the server that applied it.
    pub wall_time: Option<DateTime>,
    /// The document after the change: inserts and replaces, and updates with
    /// `full_document: UpdateLookup`.
    pub full_document: Option<T>,
    /// The document before the change, when pre-images were asked for and kept.
    pub full_document_before_change: Option<T>,
}

/// The fields an update changed and removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdateDescription {
    /// The fields set, with their new values.
    pub updated_fields: Document,
    /// The fields removed.
    pub removed_fields: Vec<String>,
    /// Arrays truncated by the update.
    pub truncated_arrays: Option<Vec<TruncatedArray>>,
}

/// An array an update truncated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TruncatedArray {
    /// The array's field path.
    pub field: String,
    /// Its new length.
    pub new_size: i32,
}

/// Where a change happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChangeNamespace {
    /// The database.
    pub db: String,
    /// The collection (none for a database-wide event).
    pub coll: Option<String>,
}

/// The kind of a change (`operationType`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OperationType {
    /// A document was inserted.
    Insert,
    /// A document was updated.
    Update,
    /// A document was replaced.
    Replace,
    /// A document was deleted.
    Delete,
    /// The collection was dropped.
    Drop,
    /// The collection was renamed.
    Rename,
    /// The database was dropped.
    DropDatabase,
    /// The stream can no longer go on (its collection was dropped or renamed, say).
    Invalidate,
    /// A kind this driver does not name.
    Other(String),
}

impl OperationType {
    fn name(&self) -> &str {
        match self {
            OperationType::Insert => "insert",
            OperationType::Update => "update",
            OperationType::Replace => "replace",
            OperationType::Delete => "delete",
            OperationType::Drop => "drop",
            OperationType::Rename => "rename",
            OperationType::DropDatabase => "dropDatabase",
            OperationType::Invalidate => "invalidate",
            OperationType::Other(s) => s,
        }
    }
}

impl Serialize for OperationType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match name.as_str() {
            "insert" => OperationType::Insert,
            "update" => OperationType::Update,
            "replace" => OperationType::Replace,
            "delete" => OperationType::Delete,
            "drop" => OperationType::Drop,
            "rename" => OperationType::Rename,
            "dropDatabase" => OperationType::DropDatabase,
            "invalidate" => OperationType::Invalidate,
            _ => OperationType::Other(name),
        })
    }
}

/// Options for a change stream (`coll.watch()`, `db.watch()`, `client.watch()`).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct ChangeStreamOptions {
    /// Whether updates carry the whole document (`UpdateLookup`), and when.
    pub full_document: Option<FullDocumentType>,
    /// Whether events carry the document as it was before the change.
    pub full_document_before_change: Option<FullDocumentBeforeChangeType>,
    /// Continue after this token.
    pub resume_after: Option<ResumeToken>,
    /// Start after this token, even one from an `invalidate` event.
    pub start_after: Option<ResumeToken>,
    /// Start at this cluster time.
    pub start_at_operation_time: Option<Timestamp>,
    /// How long the server waits for a change before answering a `getMore` with none.
    pub max_await_time: Option<Duration>,
    /// Events per batch.
    pub batch_size: Option<u32>,
    /// The collation.
    pub collation: Option<Collation>,
    /// A comment for the server's logs.
    pub comment: Option<Bson>,
    /// Where the stream reads from.
    pub selection_criteria: Option<SelectionCriteria>,
    /// The read concern.
    pub read_concern: Option<ReadConcern>,
    /// Whether to show the expanded event kinds (DDL events, MongoDB 6.0+).
    pub show_expanded_events: Option<bool>,
}

/// When an event carries the whole document (`fullDocument`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullDocumentType {
    /// The server's default: inserts and replaces only.
    Default,
    /// Updates too: the current majority-committed version of the document.
    UpdateLookup,
    /// The post-image, when the collection keeps them.
    WhenAvailable,
    /// The post-image, an error if the collection does not keep them.
    Required,
    /// A value this driver does not name.
    Other(String),
}

impl FullDocumentType {
    pub(crate) fn name(&self) -> &str {
        match self {
            FullDocumentType::Default => "default",
            FullDocumentType::UpdateLookup => "updateLookup",
            FullDocumentType::WhenAvailable => "whenAvailable",
            FullDocumentType::Required => "required",
            FullDocumentType::Other(s) => s,
        }
    }
}

/// When an event carries the document before the change (`fullDocumentBeforeChange`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullDocumentBeforeChangeType {
    /// The pre-image, when the collection keeps them.
    WhenAvailable,
    /// The pre-image, an error if the collection does not keep them.
    Required,
    /// No pre-image.
    Off,
    /// A value this driver does not name.
    Other(String),
}

impl FullDocumentBeforeChangeType {
    pub(crate) fn name(&self) -> &str {
        match self {
            FullDocumentBeforeChangeType::WhenAvailable => "whenAvailable",
            FullDocumentBeforeChangeType::Required => "required",
            FullDocumentBeforeChangeType::Off => "off",
            FullDocumentBeforeChangeType::Other(s) => s,
        }
    }
}
