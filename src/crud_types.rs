//! Options and results of the CRUD operations, one plain struct each.
//!
//! Options are plain structs with public fields and `Default`, so a call reads
//! `coll.find_with(filter, FindOptions { limit: Some(10), ..Default::default() })`. Fields left
//! `None` are not sent, and the server's defaults apply.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{Bson, Document};

use crate::cursor::CursorType;

/// Options for `find`.
#[derive(Clone, Debug, Default)]
pub struct FindOptions {
    /// Which fields to return.
    pub projection: Option<Document>,
    /// Result order.
    pub sort: Option<Document>,
    /// Results to skip.
    pub skip: Option<u64>,
    /// Most results to return (a negative limit: one batch only, then close).
    pub limit: Option<i64>,
    /// Documents per batch (the first and each `getMore`).
    pub batch_size: Option<u32>,
    /// An index to use, by name (string) or key pattern (document).
    pub hint: Option<Bson>,
    /// Server-side time limit for the query.
    pub max_time: Option<Duration>,
    /// A comment to find the query by in logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Let the server spill large sorts to disk.
    pub allow_disk_use: Option<bool>,
    /// Tailable cursors (capped collections).
    pub cursor_type: CursorType,
    /// For `TailableAwait`: how long each `getMore` waits for new data.
    pub max_await_time: Option<Duration>,
}

/// Options for `update_one`, `update_many` and `replace_one`.
#[derive(Clone, Debug, Default)]
pub struct UpdateOptions {
    /// Insert a document when none matches.
    pub upsert: Option<bool>,
    /// Which array elements `$[<id>]` operators apply to (not for `replace_one`).
    pub array_filters: Option<Vec<Document>>,
    /// An index to use.
    pub hint: Option<Bson>,
}

/// Options for `delete_one` and `delete_many`.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// An index to use.
    pub hint: Option<Bson>,
}

/// Which version `find_one_and_update` / `_replace` return.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnDocument {
    /// The document as it was before the change.
    #[default]
    Before,
    /// The document as the change left it.
    After,
}

/// Options for `find_one_and_delete`, `find_one_and_replace` and `find_one_and_update`.
#[derive(Clone, Debug, Default)]
pub struct FindOneAndModifyOptions {
    /// Which version to return (ignored by `find_one_and_delete`).
    pub return_document: ReturnDocument,
    /// Which fields to return.
    pub projection: Option<Document>,
    /// Which document to pick when several match.
    pub sort: Option<Document>,
    /// Insert when none matches (ignored by `find_one_and_delete`).
    pub upsert: Option<bool>,
    /// Array filters (`find_one_and_update` only).
    pub array_filters: Option<Vec<Document>>,
}

/// Options for `count_documents`.
#[derive(Clone, Debug, Default)]
pub struct CountOptions {
    /// Documents to skip before counting.
    pub skip: Option<u64>,
    /// Count at most this many.
    pub limit: Option<u64>,
}

/// Options for `aggregate`.
#[derive(Clone, Debug, Default)]
pub struct AggregateOptions {
    /// Documents per batch.
    pub batch_size: Option<u32>,
    /// Let the server spill large stages to disk.
    pub allow_disk_use: Option<bool>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
}

/// The result of `insert_many`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct InsertManyResult {
    /// The `_id` of each inserted document, by its index in the input.
    pub inserted_ids: BTreeMap<usize, Bson>,
}

/// The result of an update or replace.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct UpdateResult {
    /// Documents that matched the filter.
    pub matched_count: u64,
    /// Documents actually changed.
    pub modified_count: u64,
    /// The `_id` of an upserted document.
    pub upserted_id: Option<Bson>,
}

/// The result of a delete.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct DeleteResult {
    /// Documents deleted.
    pub deleted_count: u64,
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
        /// Insert when none matches.
        upsert: bool,
    },
    /// Update every document matching `filter`.
    UpdateMany {
        /// Which documents.
        filter: Document,
        /// Update operators, or a pipeline.
        update: Bson,
        /// Insert when none matches.
        upsert: bool,
    },
    /// Replace the first document matching `filter`.
    ReplaceOne {
        /// Which document.
        filter: Document,
        /// The new document.
        replacement: T,
        /// Insert when none matches.
        upsert: bool,
    },
    /// Delete the first document matching `filter`.
    DeleteOne {
        /// Which document.
        filter: Document,
    },
    /// Delete every document matching `filter`.
    DeleteMany {
        /// Which documents.
        filter: Document,
    },
}

/// What a `bulk_write` did (also carried, partial, by a bulk write error).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct BulkWriteResult {
    /// Documents inserted.
    pub inserted_count: u64,
    /// Documents matched by updates and replacements.
    pub matched_count: u64,
    /// Documents changed by updates and replacements.
    pub modified_count: u64,
    /// Documents deleted.
    pub deleted_count: u64,
    /// Documents upserted.
    pub upserted_count: u64,
    /// `_id`s of inserted documents, by model index.
    pub inserted_ids: BTreeMap<usize, Bson>,
    /// `_id`s of upserted documents, by model index.
    pub upserted_ids: BTreeMap<usize, Bson>,
}

/// An index to create: its key pattern and options (`name`, `unique`, ...).
#[derive(Clone, Debug, Default)]
pub struct IndexModel {
    /// The key pattern, e.g. `{ "a": 1 }`.
    pub keys: Document,
    /// Options as the `createIndexes` command takes them; `name` is generated when absent.
    pub options: Option<Document>,
}

impl IndexModel {
    /// An index on `keys` with `options`.
    pub fn new(keys: Document, options: Option<Document>) -> IndexModel {
        IndexModel { keys, options }
    }

    /// The index's name: the one given, else the server's convention (`a_1_b_-1`).
    pub fn name(&self) -> String {
        if let Some(name) = self.options.as_ref().and_then(|o| o.get_str("name").ok()) {
            return name.to_string();
        }
        self.keys
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Bson::Int32(n) => n.to_string(),
                    Bson::Int64(n) => n.to_string(),
                    Bson::Double(n) => n.to_string(),
                    Bson::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{k}_{v}")
            })
            .collect::<Vec<_>>()
            .join("_")
    }
}
