//! What the writes report: the result types of inserts, updates, deletes and bulk writes.
//!
//! Plain data, on their own below everything that produces them — and below the error type,
//! whose bulk-write failures carry a partial result — so that `error.rs` need not import the
//! collection or client layers to name them. The public `results` module
//! re-exports them with the results of the other operations, whose types sit higher up.

use std::collections::{BTreeMap, HashMap};

use bson::Bson;

/// The result of `insert_one`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertOneResult {
    /// The `_id` of the inserted document: the document's own, or the one the driver added.
    pub inserted_id: Bson,
}

/// The result of `insert_many`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct InsertManyResult {
    /// The `_id` of each inserted document, by its index in the input.
    pub inserted_ids: HashMap<usize, Bson>,
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

/// What a client-level bulk write did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ClientBulkWriteResult {
    /// False for a `w: 0` write concern: the server said nothing, and the counts are zero.
    pub acknowledged: bool,
    /// Documents inserted.
    pub inserted_count: u64,
    /// Documents upserted.
    pub upserted_count: u64,
    /// Documents matched by updates and replacements.
    pub matched_count: u64,
    /// Documents changed by updates and replacements.
    pub modified_count: u64,
    /// Documents deleted.
    pub deleted_count: u64,
    /// Each successful write's own result: present exactly when `verbose_results` was asked.
    pub verbose: Option<VerboseResults>,
}

/// The per-write results of a bulk write run with `verbose_results`, keyed by the index of the
/// write in the input.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct VerboseResults {
    /// Each successful insert's `_id`.
    pub insert_results: BTreeMap<usize, InsertOneResult>,
    /// Each successful update's or replacement's counts and upserted `_id`.
    pub update_results: BTreeMap<usize, UpdateResult>,
    /// Each successful delete's count.
    pub delete_results: BTreeMap<usize, DeleteResult>,
}

/// The totals of a client-level bulk write, as the official crate reports them (a partly
/// failed one's in the error's `PartialBulkWriteResult`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SummaryBulkWriteResult {
    /// Documents inserted.
    pub inserted_count: i64,
    /// Documents matched by updates and replacements.
    pub matched_count: i64,
    /// Documents changed by updates and replacements.
    pub modified_count: i64,
    /// Documents upserted.
    pub upserted_count: i64,
    /// Documents deleted.
    pub deleted_count: i64,
}

/// The totals and per-write results of a client-level bulk write run with
/// `verbose_results`, keyed by the index of the write in the input.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct VerboseBulkWriteResult {
    /// The totals.
    pub summary: SummaryBulkWriteResult,
    /// Each successful insert's `_id`.
    pub insert_results: std::collections::HashMap<usize, InsertOneResult>,
    /// Each successful update's or replacement's counts and upserted `_id`.
    pub update_results: std::collections::HashMap<usize, UpdateResult>,
    /// Each successful delete's count.
    pub delete_results: std::collections::HashMap<usize, DeleteResult>,
}
