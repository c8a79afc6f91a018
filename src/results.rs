//! The results of the operations, as the official driver's `results` module has them: what
//! writes report (defined below the error type, in `write_results`, and re-exported here) and
//! what index creation and the list commands describe.

use bson::{Binary, Document};
use serde::{Deserialize, Serialize};

use crate::db_options::CreateCollectionOptions;
pub use crate::write_results::*;

/// The index a `create_index` created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateIndexResult {
    /// Its name.
    pub index_name: String,
}

/// The indexes a `create_indexes` created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateIndexesResult {
    /// Their names, in the order given.
    pub index_names: Vec<String>,
}

/// What kind of data store a `listCollections` entry describes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum CollectionType {
    /// A view.
    View,
    /// A collection.
    #[default]
    Collection,
    /// A time-series collection.
    Timeseries,
}

/// The `info` of a `listCollections` entry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CollectionSpecificationInfo {
    /// Whether the data store is read-only.
    #[serde(default)]
    pub read_only: bool,
    /// The collection's UUID (none for a view).
    pub uuid: Option<Binary>,
}

/// One collection as `listCollections` describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CollectionSpecification {
    /// Its name.
    pub name: String,
    /// What it is.
    #[serde(rename = "type")]
    pub collection_type: CollectionType,
    /// The options it was created with.
    pub options: CreateCollectionOptions,
    /// Whether it is read-only, and its UUID.
    pub info: CollectionSpecificationInfo,
    /// Its `_id` index (none for a view).
    pub id_index: Option<Document>,
}

/// One database as `listDatabases` describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DatabaseSpecification {
    /// Its name.
    pub name: String,
    /// Bytes on disk (0 when the server leaves it out, as mongo-java-server does: a missing
    /// size is no reason to fail the whole listing).
    #[serde(
        default,
        deserialize_with = "crate::serde_util::u64_from_number",
        serialize_with = "crate::serde_util::u64_as_i64"
    )]
    pub size_on_disk: u64,
    /// Whether it holds no data (`false` when the server leaves it out).
    #[serde(default)]
    pub empty: bool,
    /// On a sharded cluster, each shard's size of it.
    pub shards: Option<Document>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn list_entries_read_as_specifications() {
        let db: DatabaseSpecification = bson::deserialize_from_document(
            doc! { "name": "shop", "sizeOnDisk": 8192.0, "empty": false },
        )
        .unwrap();
        assert_eq!(
            (db.name.as_str(), db.size_on_disk, db.empty),
            ("shop", 8192, false)
        );
        let bare: DatabaseSpecification =
            bson::deserialize_from_document(doc! { "name": "bare" }).unwrap();
        assert_eq!(
            (bare.name.as_str(), bare.size_on_disk, bare.empty),
            ("bare", 0, false)
        );
        let coll: CollectionSpecification = bson::deserialize_from_document(doc! {
            "name": "v", "type": "view",
            "options": { "viewOn": "c", "pipeline": [] },
            "info": { "readOnly": true },
        })
        .unwrap();
        assert_eq!(coll.collection_type, CollectionType::View);
        assert_eq!(coll.options.view_on.as_deref(), Some("c"));
        assert!(coll.info.read_only && coll.id_index.is_none());
    }
}
