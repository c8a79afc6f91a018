//! Options of the collection operations, with the official driver's names, fields and
//! builders.
//!
//! Every options struct has public fields and `Default`, and `X::builder()...build()` as the
//! official `mongodb` crate derives it (with `typed-builder`), so both
//! `FindOptions::builder().limit(10).build()` and
//! `FindOptions { limit: Some(10), ..Default::default() }` work. Fields left `None` are not
//! sent, and the server's defaults apply; an operation's own `write_concern`, `read_concern`
//! and `selection_criteria` override its collection's.
//!
//! Beyond the official fields, the options of the commands that take it have `raw_data`
//! (server 8.2+; not sent to older servers).

pub use crate::write_results::{BulkWriteResult, DeleteResult, InsertManyResult, UpdateResult};
use std::time::Duration;

use bson::{Bson, Document};
use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::collation::Collation;
use crate::concern::{ReadConcern, WriteConcern};
use crate::selection_criteria::SelectionCriteria;

/// The default read preference and concerns of a collection handle, for
/// [`Database::collection_with_options`](crate::Database::collection_with_options) (unset: the
/// database's).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct CollectionOptions {
    /// Where its reads go.
    pub selection_criteria: Option<SelectionCriteria>,
    /// Its read concern.
    pub read_concern: Option<ReadConcern>,
    /// Its write concern.
    pub write_concern: Option<WriteConcern>,
}

/// How a cursor waits for new data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CursorType {
    /// An ordinary cursor: done when the results are.
    #[default]
    NonTailable,
    /// A tailable cursor on a capped collection: stays open after the last result, and an
    /// empty batch means "nothing new yet".
    Tailable,
    /// Tailable, and each `getMore` waits on the server (up to `max_await_time`) for new data.
    TailableAwait,
}

/// Which index an operation uses: by key pattern or by name. Sent as `hint`: the pattern
/// document, or the name string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Hint {
    /// The index's key pattern, e.g. `{ "a": 1 }`.
    Keys(Document),
    /// The index's name.
    Name(String),
}

impl From<Hint> for Bson {
    fn from(hint: Hint) -> Bson {
        match hint {
            Hint::Keys(keys) => Bson::Document(keys),
            Hint::Name(name) => Bson::String(name),
        }
    }
}

/// Options for `find`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct FindOptions {
    /// Let the server spill large sorts to disk.
    pub allow_disk_use: Option<bool>,
    /// On a sharded cluster, return what the reachable shards have rather than fail.
    pub allow_partial_results: Option<bool>,
    /// Documents per batch (the first and each `getMore`).
    pub batch_size: Option<u32>,
    /// A comment to find the query by in logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Tailable cursors (capped collections); `None` is `NonTailable`.
    pub cursor_type: Option<CursorType>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// Most results to return (a negative limit: one batch only, then close).
    pub limit: Option<i64>,
    /// The exclusive upper bound of an index scan (needs `hint`).
    pub max: Option<Document>,
    /// For `TailableAwait`: how long each `getMore` waits for new data.
    pub max_await_time: Option<Duration>,
    /// Server-side time limit for the query.
    pub max_time: Option<Duration>,
    /// The inclusive lower bound of an index scan (needs `hint`).
    pub min: Option<Document>,
    /// Ask the server not to time out an idle cursor.
    pub no_cursor_timeout: Option<bool>,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// The read concern (else the collection's).
    pub read_concern: Option<ReadConcern>,
    /// Return only the index keys of the results.
    pub return_key: Option<bool>,
    /// Where the query goes (else the collection's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
    /// Add each result's record id (`$recordId`).
    pub show_record_id: Option<bool>,
    /// Results to skip.
    pub skip: Option<u64>,
    /// Result order.
    pub sort: Option<Document>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// Variables the filter can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `find_one`: those of `find` that make sense for one document.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct FindOneOptions {
    /// On a sharded cluster, return what the reachable shards have rather than fail.
    pub allow_partial_results: Option<bool>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// The exclusive upper bound of an index scan (needs `hint`).
    pub max: Option<Document>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// The inclusive lower bound of an index scan (needs `hint`).
    pub min: Option<Document>,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// The read concern (else the collection's).
    pub read_concern: Option<ReadConcern>,
    /// Return only the index keys.
    pub return_key: Option<bool>,
    /// Where the query goes (else the collection's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
    /// Add the record id (`$recordId`).
    pub show_record_id: Option<bool>,
    /// Documents to skip.
    pub skip: Option<u64>,
    /// Which matching document comes first.
    pub sort: Option<Document>,
    /// Variables the filter can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

impl From<FindOneOptions> for FindOptions {
    /// The `find` of one document: a single batch of one (`limit: -1`).
    fn from(o: FindOneOptions) -> FindOptions {
        FindOptions {
            allow_partial_results: o.allow_partial_results,
            collation: o.collation,
            comment: o.comment,
            hint: o.hint,
            max: o.max,
            max_time: o.max_time,
            min: o.min,
            projection: o.projection,
            read_concern: o.read_concern,
            return_key: o.return_key,
            selection_criteria: o.selection_criteria,
            show_record_id: o.show_record_id,
            skip: o.skip,
            sort: o.sort,
            let_vars: o.let_vars,
            raw_data: o.raw_data,
            limit: Some(-1),
            ..FindOptions::default()
        }
    }
}

/// Options for `update_one` and `update_many`, and for the update and replace models of a
/// `bulk_write` (which take only the statement's own fields: `upsert`, `array_filters`,
/// `hint`, `collation`, `sort`; the command's come from [`BulkWriteOptions`]).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct UpdateOptions {
    /// Which array elements `$[<id>]` operators apply to (not for replacements).
    pub array_filters: Option<Vec<Document>>,
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Insert a document when none matches.
    pub upsert: Option<bool>,
    /// String comparison rules for the filter.
    pub collation: Option<Collation>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// Variables the filter and update can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Which matching document a single-document update picks (server 8.0+).
    pub sort: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

impl UpdateOptions {
    /// True when a command-level field is set (not allowed on a bulk write's model).
    pub(crate) fn has_command_fields(&self) -> bool {
        self.let_vars.is_some()
            || self.comment.is_some()
            || self.bypass_document_validation.is_some()
            || self.write_concern.is_some()
    }
}

/// Options for `replace_one`: those of an update, but `array_filters`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct ReplaceOptions {
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Insert the replacement when no document matches.
    pub upsert: Option<bool>,
    /// String comparison rules for the filter.
    pub collation: Option<Collation>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// Variables the filter can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Which matching document is replaced (server 8.0+).
    pub sort: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

impl From<ReplaceOptions> for UpdateOptions {
    fn from(o: ReplaceOptions) -> UpdateOptions {
        UpdateOptions {
            array_filters: None,
            bypass_document_validation: o.bypass_document_validation,
            upsert: o.upsert,
            collation: o.collation,
            hint: o.hint,
            write_concern: o.write_concern,
            let_vars: o.let_vars,
            comment: o.comment,
            sort: o.sort,
            raw_data: o.raw_data,
        }
    }
}

/// Options for `delete_one` and `delete_many`, and for the delete models of a `bulk_write`
/// (which take only `hint` and `collation`).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DeleteOptions {
    /// String comparison rules for the filter.
    pub collation: Option<Collation>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// Variables the filter can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

impl DeleteOptions {
    /// True when a command-level field is set (not allowed on a bulk write's model).
    pub(crate) fn has_command_fields(&self) -> bool {
        self.let_vars.is_some()
            || self.comment.is_some()
            || self.raw_data.is_some()
            || self.write_concern.is_some()
    }
}

/// Options for `insert_one_with`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct InsertOneOptions {
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `insert_many_with`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct InsertManyOptions {
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Stop at the first failure (the default, `None`, is ordered).
    pub ordered: Option<bool>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for a collection's `bulk_write_with` (this driver's; the official driver's
/// `BulkWriteOptions` are those of the client-level bulk write, here
/// [`ClientBulkWriteOptions`](crate::ClientBulkWriteOptions)).
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct BulkWriteOptions {
    /// Stop at the first failure (the default, `None`, is ordered).
    pub ordered: Option<bool>,
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Variables every model's filter and update can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`, on every command the bulk write sends.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `distinct_with`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DistinctOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Where the command goes (else the collection's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
    /// The read concern (else the collection's).
    pub read_concern: Option<ReadConcern>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// An index to use (server 7.1+).
    pub hint: Option<Hint>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `estimated_document_count_with`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct EstimatedDocumentCountOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Where the command goes (else the collection's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
    /// The read concern (else the collection's).
    pub read_concern: Option<ReadConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Which version `find_one_and_update` / `_replace` return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnDocument {
    /// The document as the change left it.
    After,
    /// The document as it was before the change.
    #[default]
    Before,
}

/// Options for `find_one_and_delete`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct FindOneAndDeleteOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// Which document to pick when several match.
    pub sort: Option<Document>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// An index to use (server 4.4+).
    pub hint: Option<Hint>,
    /// Variables the query can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `find_one_and_replace`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct FindOneAndReplaceOptions {
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// Which version to return (`None`: before the change).
    pub return_document: Option<ReturnDocument>,
    /// Which document to pick when several match.
    pub sort: Option<Document>,
    /// Insert when none matches.
    pub upsert: Option<bool>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// An index to use (server 4.4+).
    pub hint: Option<Hint>,
    /// Variables the query can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `find_one_and_update`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct FindOneAndUpdateOptions {
    /// Which array elements `$[<id>]` operators apply to.
    pub array_filters: Option<Vec<Document>>,
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// Which version to return (`None`: before the change).
    pub return_document: Option<ReturnDocument>,
    /// Which document to pick when several match.
    pub sort: Option<Document>,
    /// Insert when none matches.
    pub upsert: Option<bool>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// An index to use (server 4.4+).
    pub hint: Option<Hint>,
    /// Variables the query and update can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// The options of the three `findAndModify` operations, as one command takes them.
#[derive(Default)]
pub(crate) struct FindAndModifyOptions {
    pub(crate) array_filters: Option<Vec<Document>>,
    pub(crate) bypass_document_validation: Option<bool>,
    pub(crate) max_time: Option<Duration>,
    pub(crate) projection: Option<Document>,
    pub(crate) return_document: Option<ReturnDocument>,
    pub(crate) sort: Option<Document>,
    pub(crate) upsert: Option<bool>,
    pub(crate) write_concern: Option<WriteConcern>,
    pub(crate) collation: Option<Collation>,
    pub(crate) hint: Option<Hint>,
    pub(crate) let_vars: Option<Document>,
    pub(crate) comment: Option<Bson>,
    pub(crate) raw_data: Option<bool>,
}

impl From<FindOneAndDeleteOptions> for FindAndModifyOptions {
    fn from(o: FindOneAndDeleteOptions) -> Self {
        FindAndModifyOptions {
            max_time: o.max_time,
            projection: o.projection,
            sort: o.sort,
            write_concern: o.write_concern,
            collation: o.collation,
            hint: o.hint,
            let_vars: o.let_vars,
            comment: o.comment,
            raw_data: o.raw_data,
            ..FindAndModifyOptions::default()
        }
    }
}

impl From<FindOneAndReplaceOptions> for FindAndModifyOptions {
    fn from(o: FindOneAndReplaceOptions) -> Self {
        FindAndModifyOptions {
            array_filters: None,
            bypass_document_validation: o.bypass_document_validation,
            max_time: o.max_time,
            projection: o.projection,
            return_document: o.return_document,
            sort: o.sort,
            upsert: o.upsert,
            write_concern: o.write_concern,
            collation: o.collation,
            hint: o.hint,
            let_vars: o.let_vars,
            comment: o.comment,
            raw_data: o.raw_data,
        }
    }
}

impl From<FindOneAndUpdateOptions> for FindAndModifyOptions {
    fn from(o: FindOneAndUpdateOptions) -> Self {
        FindAndModifyOptions {
            array_filters: o.array_filters,
            bypass_document_validation: o.bypass_document_validation,
            max_time: o.max_time,
            projection: o.projection,
            return_document: o.return_document,
            sort: o.sort,
            upsert: o.upsert,
            write_concern: o.write_concern,
            collation: o.collation,
            hint: o.hint,
            let_vars: o.let_vars,
            comment: o.comment,
            raw_data: o.raw_data,
        }
    }
}

/// Options for `count_documents`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct CountOptions {
    /// An index to use.
    pub hint: Option<Hint>,
    /// Count at most this many.
    pub limit: Option<u64>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Documents to skip before counting.
    pub skip: Option<u64>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// Where the command goes (else the collection's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
    /// The read concern (else the collection's).
    pub read_concern: Option<ReadConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `aggregate`.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct AggregateOptions {
    /// Let the server spill large stages to disk.
    pub allow_disk_use: Option<bool>,
    /// Documents per batch.
    pub batch_size: Option<u32>,
    /// Skip the validator of an `$out` / `$merge` target.
    pub bypass_document_validation: Option<bool>,
    /// String comparison rules.
    pub collation: Option<Collation>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// An index to use.
    pub hint: Option<Hint>,
    /// For a tailable-await cursor (a change stream's): how long each `getMore` waits.
    pub max_await_time: Option<Duration>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// The read concern (else the collection's or database's).
    pub read_concern: Option<ReadConcern>,
    /// Where the command goes (else the handle's read preference; a pipeline ending in
    /// `$out` or `$merge` goes to the primary).
    pub selection_criteria: Option<SelectionCriteria>,
    /// The write concern of a pipeline ending in `$out` or `$merge` (else the handle's).
    pub write_concern: Option<WriteConcern>,
    /// Variables the pipeline can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for creating indexes.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct CreateIndexOptions {
    /// How many data-bearing voting members must finish the build before the index is
    /// ready.
    pub commit_quorum: Option<CommitQuorum>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
}

/// Options for dropping a collection.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DropCollectionOptions {
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
}

/// Options for dropping indexes.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct DropIndexOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// The write concern (else the collection's).
    pub write_concern: Option<WriteConcern>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
}

/// Options for listing indexes.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct ListIndexesOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Documents per batch.
    pub batch_size: Option<u32>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
}

/// How many data-bearing voting members must finish an index build (`commitQuorum`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitQuorum {
    /// This many members (0 turns quorum voting off).
    Nodes(u32),
    /// Every data-bearing voting member (the server's default).
    VotingMembers,
    /// A majority of voting members.
    Majority,
    /// A replica set tag name.
    Custom(String),
}

impl Serialize for CommitQuorum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CommitQuorum::Nodes(n) => s.serialize_i32((*n).min(i32::MAX as u32) as i32),
            CommitQuorum::VotingMembers => s.serialize_str("votingMembers"),
            CommitQuorum::Majority => s.serialize_str("majority"),
            CommitQuorum::Custom(name) => s.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for CommitQuorum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum IntOrString {
            Int(u32),
            String(String),
        }
        Ok(match IntOrString::deserialize(d)? {
            IntOrString::Int(n) => CommitQuorum::Nodes(n),
            IntOrString::String(s) if s == "votingMembers" => CommitQuorum::VotingMembers,
            IntOrString::String(s) if s == "majority" => CommitQuorum::Majority,
            IntOrString::String(s) => CommitQuorum::Custom(s),
        })
    }
}

impl From<CommitQuorum> for Bson {
    fn from(q: CommitQuorum) -> Bson {
        bson::serialize_to_bson(&q).expect("a commit quorum is a number or a string")
    }
}

/// One write of a `bulk_write`.
#[derive(Clone, Debug)]
pub enum WriteModel<T> {
    /// Insert a document.
    InsertOne(T),
    /// Update the first document matching `filter`.
    UpdateOne {
        /// Which document.
        filter: Document,
        /// Update operators, or a pipeline as `Bson::Array`.
        update: Bson,
        /// `upsert`, `array_filters`, `hint`, `collation`, `sort`.
        options: UpdateOptions,
    },
    /// Update every document matching `filter`.
    UpdateMany {
        /// Which documents.
        filter: Document,
        /// Update operators, or a pipeline.
        update: Bson,
        /// `upsert`, `array_filters`, `hint`, `collation`.
        options: UpdateOptions,
    },
    /// Replace the first document matching `filter`.
    ReplaceOne {
        /// Which document.
        filter: Document,
        /// The new document.
        replacement: T,
        /// `upsert`, `hint`, `collation`, `sort`.
        options: UpdateOptions,
    },
    /// Delete the first document matching `filter`.
    DeleteOne {
        /// Which document.
        filter: Document,
        /// `hint`, `collation`.
        options: DeleteOptions,
    },
    /// Delete every document matching `filter`.
    DeleteMany {
        /// Which documents.
        filter: Document,
        /// `hint`, `collation`.
        options: DeleteOptions,
    },
}

impl<T> WriteModel<T> {
    /// An `UpdateOne` model with default options.
    pub fn update_one(filter: Document, update: impl Into<Bson>) -> Self {
        WriteModel::UpdateOne {
            filter,
            update: update.into(),
            options: UpdateOptions::default(),
        }
    }

    /// An `UpdateMany` model with default options.
    pub fn update_many(filter: Document, update: impl Into<Bson>) -> Self {
        WriteModel::UpdateMany {
            filter,
            update: update.into(),
            options: UpdateOptions::default(),
        }
    }

    /// A `ReplaceOne` model with default options.
    pub fn replace_one(filter: Document, replacement: T) -> Self {
        WriteModel::ReplaceOne {
            filter,
            replacement,
            options: UpdateOptions::default(),
        }
    }

    /// A `DeleteOne` model with default options.
    pub fn delete_one(filter: Document) -> Self {
        WriteModel::DeleteOne {
            filter,
            options: DeleteOptions::default(),
        }
    }

    /// A `DeleteMany` model with default options.
    pub fn delete_many(filter: Document) -> Self {
        WriteModel::DeleteMany {
            filter,
            options: DeleteOptions::default(),
        }
    }

    /// The same model with `upsert` set (update and replace models; others are unchanged).
    pub fn with_upsert(mut self, upsert: bool) -> Self {
        if let WriteModel::UpdateOne { options, .. }
        | WriteModel::UpdateMany { options, .. }
        | WriteModel::ReplaceOne { options, .. } = &mut self
        {
            options.upsert = Some(upsert);
        }
        self
    }
}

/// An Atlas Search (or Vector Search) index to create with
/// [`create_search_index`](crate::Collection::create_search_index): a `definition` and,
/// optionally, a `name` (the server's default is `"default"`) and a type (the server's default
/// is [`SearchIndexType::Search`]). Fields left `None` are not sent.
///
/// ```
/// use may_mongo::{SearchIndexModel, SearchIndexType, bson::doc};
///
/// let model = SearchIndexModel::new(doc! { "mappings": { "dynamic": true } })
///     .with_name("by_text")
///     .with_type(SearchIndexType::Search);
/// assert_eq!(model.name.as_deref(), Some("by_text"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchIndexModel {
    /// The index definition, as Atlas Search takes it (`{ mappings: { dynamic: true } }`, or a
    /// vector search index's `{ fields: [...] }`).
    pub definition: Document,
    /// The index's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The kind of index (`type` in the command).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub index_type: Option<SearchIndexType>,
}

impl SearchIndexModel {
    /// A search index with `definition`, no name and no type (the server's defaults).
    pub fn new(definition: Document) -> SearchIndexModel {
        SearchIndexModel {
            definition,
            ..SearchIndexModel::default()
        }
    }

    /// The same model, named `name`.
    pub fn with_name(self, name: impl Into<String>) -> SearchIndexModel {
        SearchIndexModel {
            name: Some(name.into()),
            ..self
        }
    }

    /// The same model, of type `index_type`.
    pub fn with_type(self, index_type: SearchIndexType) -> SearchIndexModel {
        SearchIndexModel {
            index_type: Some(index_type),
            ..self
        }
    }

    /// The model as one entry of `createSearchIndexes`' `indexes`: `definition`, then `name`
    /// and `type` when set. The definition is moved, not cloned (a clone of a deep document
    /// recurses on the caller's stack).
    pub(crate) fn into_command_entry(self) -> Document {
        let mut entry = Document::new();
        entry.insert("definition", self.definition);
        if let Some(name) = self.name {
            entry.insert("name", name);
        }
        if let Some(t) = self.index_type {
            entry.insert("type", t.as_str());
        }
        entry
    }
}

/// The kind of an Atlas Search index: sent as `"search"` or `"vectorSearch"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SearchIndexType {
    /// A full-text Atlas Search index (`"search"`).
    Search,
    /// An Atlas Vector Search index (`"vectorSearch"`).
    VectorSearch,
}

impl SearchIndexType {
    /// The name the server uses: `"search"` or `"vectorSearch"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchIndexType::Search => "search",
            SearchIndexType::VectorSearch => "vectorSearch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn search_index_models_become_command_entries_in_field_order() {
        let bare = SearchIndexModel::new(doc! { "mappings": { "dynamic": true } });
        assert_eq!(
            bare.into_command_entry(),
            doc! { "definition": { "mappings": { "dynamic": true } } }
        );
        let full = SearchIndexModel::new(doc! { "fields": [] })
            .with_name("v")
            .with_type(SearchIndexType::VectorSearch);
        let entry = full.clone().into_command_entry();
        assert_eq!(
            entry,
            doc! { "definition": { "fields": [] }, "name": "v", "type": "vectorSearch" }
        );
        // serde gives the same document, and reads it back.
        let serialized = bson::serialize_to_document(&full).unwrap();
        assert_eq!(serialized, entry);
        let back: SearchIndexModel = bson::deserialize_from_document(serialized).unwrap();
        assert_eq!(back, full);
        assert_eq!(
            bson::serialize_to_bson(&SearchIndexType::Search).unwrap(),
            bson::Bson::String(SearchIndexType::Search.as_str().into())
        );
    }
}
