//! Options of the database and client operations, with the official driver's names, fields
//! and builders (re-exported by the public `options` module).

use std::time::Duration;

use bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::collation::Collation;
use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::CursorType;
use crate::selection_criteria::SelectionCriteria;

/// The default read preference and concerns of a database handle, for
/// [`Client::database_with_options`](crate::Client::database_with_options) (unset: the
/// client's).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DatabaseOptions {
    /// Where its reads go.
    pub selection_criteria: Option<SelectionCriteria>,
    /// Its read concern.
    pub read_concern: Option<ReadConcern>,
    /// Its write concern.
    pub write_concern: Option<WriteConcern>,
}

/// Options for creating a collection or view: the `create` command's fields, under their
/// command names when serialized (unset ones left out).
#[derive(Clone, Debug, Default, Serialize, Deserialize, TypedBuilder)]
#[serde(rename_all = "camelCase")]
#[builder(field_defaults(default, setter(into)))]
pub struct CreateCollectionOptions {
    /// A capped collection (needs `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped: Option<bool>,

    /// The most bytes a capped collection holds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::serde_util::option_u64_as_i64",
        deserialize_with = "crate::serde_util::option_u64_from_number"
    )]
    pub size: Option<u64>,

    /// The most documents a capped collection holds (`size` wins first).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::serde_util::option_u64_as_i64",
        deserialize_with = "crate::serde_util::option_u64_from_number"
    )]
    pub max: Option<u64>,

    /// `{ <storage engine>: <options> }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_engine: Option<Document>,

    /// A validator every document must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator: Option<Document>,

    /// How strictly the validator applies to updates of existing documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_level: Option<ValidationLevel>,

    /// Whether a document that fails validation is refused or only logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_action: Option<ValidationAction>,

    /// The collection or view a view is made from (this makes a view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_on: Option<String>,

    /// The view's pipeline, run on `view_on`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<Document>>,

    /// The default collation of the collection or view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collation: Option<Collation>,

    /// The write concern (else the database's).
    #[serde(skip_serializing)]
    pub write_concern: Option<WriteConcern>,

    /// Defaults for the indexes created on the collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_option_defaults: Option<IndexOptionDefaults>,

    /// Makes a time-series collection (server 5.0+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeseries: Option<TimeseriesOptions>,

    /// Time-series documents are deleted this long after their time field.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::duration_option_as_int_seconds"
    )]
    pub expire_after_seconds: Option<Duration>,

    /// Change stream pre- and post-images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_stream_pre_and_post_images: Option<ChangeStreamPreAndPostImages>,

    /// Makes a clustered collection (server 5.3+).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "ClusteredIndex::deserialize_self_or_true"
    )]
    pub clustered_index: Option<ClusteredIndex>,

    /// A comment for logs and `currentOp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<Bson>,
}

/// How strictly a validator applies to updates of existing documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidationLevel {
    /// No validation.
    Off,
    /// Every insert and update.
    Strict,
    /// Inserts, and updates of documents that were valid.
    Moderate,
}

/// What happens to a document that fails validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidationAction {
    /// It is refused.
    Error,
    /// It is written, and a warning logged.
    Warn,
}

/// A clustered collection's index. The `Default` has the values the server requires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusteredIndex {
    /// The key pattern: `{ _id: 1 }`.
    pub key: Document,
    /// Must be true.
    pub unique: bool,
    /// Generated when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Must be 2 when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<i32>,
}

impl Default for ClusteredIndex {
    fn default() -> Self {
        ClusteredIndex {
            key: doc! { "_id": 1 },
            unique: true,
            name: None,
            v: None,
        }
    }
}

impl ClusteredIndex {
    /// Atlas describes a time-series collection's `clusteredIndex` as `true`: the default.
    fn deserialize_self_or_true<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ClusteredIndex>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum SelfOrBool {
            Bool(bool),
            Index(ClusteredIndex),
        }
        match Option::<SelfOrBool>::deserialize(d)? {
            None => Ok(None),
            Some(SelfOrBool::Bool(true)) => Ok(Some(ClusteredIndex::default())),
            Some(SelfOrBool::Bool(false)) => Err(serde::de::Error::custom(
                "if clusteredIndex is a boolean it must be `true`",
            )),
            Some(SelfOrBool::Index(index)) => Ok(Some(index)),
        }
    }
}

/// Defaults for the indexes created on a collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(rename_all = "camelCase")]
#[builder(field_defaults(default, setter(into)))]
pub struct IndexOptionDefaults {
    /// `{ <storage engine>: <options> }`.
    pub storage_engine: Document,
}

/// A time-series collection's fields and buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(rename_all = "camelCase")]
#[builder(field_defaults(default, setter(into)))]
pub struct TimeseriesOptions {
    /// The top-level field holding each document's time (a BSON date).
    pub time_field: String,
    /// The top-level field describing the series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_field: Option<String>,
    /// The expected interval between measurements (default seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granularity: Option<TimeseriesGranularity>,
    /// The longest time span of one bucket (server 6.3+; with `bucket_rounding`).
    #[serde(
        default,
        rename = "bucketMaxSpanSeconds",
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::duration_option_as_int_seconds"
    )]
    pub bucket_max_span: Option<Duration>,
    /// What a new bucket's start time is rounded down to (server 6.3+).
    #[serde(
        default,
        rename = "bucketRoundingSeconds",
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::duration_option_as_int_seconds"
    )]
    pub bucket_rounding: Option<Duration>,
}

/// The expected interval between a time series' measurements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeseriesGranularity {
    /// Seconds.
    Seconds,
    /// Minutes.
    Minutes,
    /// Hours.
    Hours,
}

/// Change stream pre- and post-images of a collection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(rename_all = "camelCase")]
#[builder(field_defaults(default, setter(into)))]
pub struct ChangeStreamPreAndPostImages {
    /// Whether change streams can include them.
    pub enabled: bool,
}

/// Options for dropping a database.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DropDatabaseOptions {
    /// The write concern (else the database's).
    pub write_concern: Option<WriteConcern>,
}

/// Options for listing collections.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct ListCollectionsOptions {
    /// Documents per batch.
    pub batch_size: Option<u32>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Which collections.
    pub filter: Option<Document>,
    /// With the collection names only: only those the user has privileges on.
    pub authorized_collections: Option<bool>,
}

/// Options for listing databases.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct ListDatabasesOptions {
    /// Only the databases the user has privileges on (server 4.0.5+).
    pub authorized_databases: Option<bool>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Which databases.
    pub filter: Option<Document>,
}

/// Options for running a command.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct RunCommandOptions {
    /// Where the command goes (else the primary).
    pub selection_criteria: Option<SelectionCriteria>,
}

/// Options of [`Database::run_cursor_command`](crate::Database::run_cursor_command): they
/// shape the `getMore`s, not the command, which is sent as given.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct RunCursorCommandOptions {
    /// Where to send the command (the client's default when `None`; a secondary mode is not
    /// sent to a standalone, as with `run_command`).
    pub selection_criteria: Option<SelectionCriteria>,
    /// `Tailable` or `TailableAwait` for a command that opened a tailable cursor.
    pub cursor_type: Option<CursorType>,
    /// `batchSize` of each `getMore`.
    pub batch_size: Option<u32>,
    /// `maxTimeMS` of each `getMore`.
    pub max_time: Option<Duration>,
    /// `comment` of each `getMore`.
    pub comment: Option<Bson>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_collection_options_are_the_create_command_fields() {
        let options = CreateCollectionOptions::builder()
            .capped(true)
            .size(4096u64)
            .validation_level(ValidationLevel::Moderate)
            .timeseries(
                TimeseriesOptions::builder()
                    .time_field("t".to_string())
                    .granularity(TimeseriesGranularity::Minutes)
                    .build(),
            )
            .expire_after_seconds(Duration::from_secs(60))
            .write_concern(WriteConcern::majority())
            .build();
        assert_eq!(
            bson::serialize_to_document(&options).unwrap(),
            doc! {
                "capped": true,
                "size": 4096i64,
                "validationLevel": "moderate",
                "timeseries": { "timeField": "t", "granularity": "minutes" },
                "expireAfterSeconds": 60i64,
            }
        );
        let listed: CreateCollectionOptions = bson::deserialize_from_document(
            doc! { "capped": true, "size": 4096.0, "clusteredIndex": true },
        )
        .unwrap();
        assert_eq!(listed.size, Some(4096));
        assert_eq!(listed.clustered_index, Some(ClusteredIndex::default()));
    }
}
