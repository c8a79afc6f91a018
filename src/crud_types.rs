//! Options and results of the CRUD operations, one plain struct each.
//!
//! Options are plain structs with public fields and `Default`, so a call reads
//! `coll.find_with(filter, FindOptions { limit: Some(10), ..Default::default() })`. Fields left
//! `None` are not sent, and the server's defaults apply.
//!
//! The field names follow the command fields they become (`let_vars` is `let`, a Rust
//! keyword). `collation` and `let_vars` are documents as the server takes them; the driver
//! passes them through unchanged.

pub use crate::results::{BulkWriteResult, DeleteResult, InsertManyResult, UpdateResult};
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
    /// String comparison rules (`{ locale: "fr", strength: 2 }`).
    pub collation: Option<Document>,
    /// Variables the filter can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
    /// The exclusive upper bound of an index scan (needs `hint`).
    pub max: Option<Document>,
    /// The inclusive lower bound of an index scan (needs `hint`).
    pub min: Option<Document>,
    /// Return only the index keys of the results.
    pub return_key: Option<bool>,
    /// Add each result's record id (`$recordId`).
    pub show_record_id: Option<bool>,
    /// Ask the server not to time out an idle cursor.
    pub no_cursor_timeout: Option<bool>,
    /// On a sharded cluster, return what the reachable shards have rather than fail.
    pub allow_partial_results: Option<bool>,
}

/// Options for `update_one`, `update_many` and `replace_one`, and for the update models of a
/// `bulk_write` (which take only the statement's own fields: `upsert`, `array_filters`,
/// `hint`, `collation`, `sort`; the command's come from [`BulkWriteOptions`]).
#[derive(Clone, Debug, Default)]
pub struct UpdateOptions {
    /// Insert a document when none matches.
    pub upsert: Option<bool>,
    /// Which array elements `$[<id>]` operators apply to (not for `replace_one`).
    pub array_filters: Option<Vec<Document>>,
    /// An index to use, by name or key pattern.
    pub hint: Option<Bson>,
    /// String comparison rules for the filter.
    pub collation: Option<Document>,
    /// Which matching document a single-document update picks (server 8.0+).
    pub sort: Option<Document>,
    /// Variables the filter and update can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
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
    }
}

/// Options for `delete_one` and `delete_many`, and for the delete models of a `bulk_write`
/// (which take only `hint` and `collation`).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// An index to use.
    pub hint: Option<Bson>,
    /// String comparison rules for the filter.
    pub collation: Option<Document>,
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
        self.let_vars.is_some() || self.comment.is_some() || self.raw_data.is_some()
    }
}

/// Options for `insert_one_with`.
#[derive(Clone, Debug, Default)]
pub struct InsertOneOptions {
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `insert_many_with`.
#[derive(Clone, Debug, Default)]
pub struct InsertManyOptions {
    /// Stop at the first failure (the default, `None`, is ordered).
    pub ordered: Option<bool>,
    /// Skip the collection's validator.
    pub bypass_document_validation: Option<bool>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `bulk_write_with`.
#[derive(Clone, Debug, Default)]
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
#[derive(Clone, Debug, Default)]
pub struct DistinctOptions {
    /// String comparison rules.
    pub collation: Option<Document>,
    /// An index to use (server 7.1+).
    pub hint: Option<Bson>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `estimated_document_count_with`.
#[derive(Clone, Debug, Default)]
pub struct EstimatedCountOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
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
    /// An index to use (server 4.4+).
    pub hint: Option<Bson>,
    /// String comparison rules.
    pub collation: Option<Document>,
    /// Variables the query and update can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Skip the collection's validator (not for `find_one_and_delete`).
    pub bypass_document_validation: Option<bool>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
}

/// Options for `count_documents`.
#[derive(Clone, Debug, Default)]
pub struct CountOptions {
    /// Documents to skip before counting.
    pub skip: Option<u64>,
    /// Count at most this many.
    pub limit: Option<u64>,
    /// An index to use.
    pub hint: Option<Bson>,
    /// String comparison rules.
    pub collation: Option<Document>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// A comment for logs and `currentOp`.
    pub comment: Option<Bson>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
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
    /// An index to use.
    pub hint: Option<Bson>,
    /// String comparison rules.
    pub collation: Option<Document>,
    /// Variables the pipeline can use as `$$name` (server 5.0+).
    pub let_vars: Option<Document>,
    /// Skip the validator of an `$out` / `$merge` target.
    pub bypass_document_validation: Option<bool>,
    /// Work on a time-series collection's raw buckets (server 8.2+; not sent to older
    /// servers).
    pub raw_data: Option<bool>,
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
