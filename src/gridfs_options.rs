//! Options of GridFS buckets and their operations, with the official driver's names, fields
//! and builders. Below the bucket itself, so that the public `options` module can name them.

use std::time::Duration;

use bson::Document;
use typed_builder::TypedBuilder;

use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::{FindOneOptions, FindOptions};
use crate::selection_criteria::SelectionCriteria;

/// A bucket's options; every field has the spec's default.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct GridFsBucketOptions {
    /// The bucket's name, the prefix of its two collections (default `fs`).
    pub bucket_name: Option<String>,
    /// The chunk size for new files (default 255 KiB).
    pub chunk_size_bytes: Option<u32>,
    /// For the bucket's writes (default: the database's).
    pub write_concern: Option<WriteConcern>,
    /// For the bucket's reads (default: the database's).
    pub read_concern: Option<ReadConcern>,
    /// Where the bucket's reads go (default: the database's read preference).
    pub selection_criteria: Option<SelectionCriteria>,
}

/// Options for one upload.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[non_exhaustive]
pub struct GridFsUploadOptions {
    /// This file's chunk size (default: the bucket's).
    pub chunk_size_bytes: Option<u32>,
    /// Stored as the files document's `metadata` (a content type, say).
    pub metadata: Option<Document>,
}

/// Options for downloading a file by name.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct GridFsDownloadByNameOptions {
    /// Which revision: 0 the first upload, 1 the second, ...; -1 the latest (the default), -2
    /// the one before, ...
    pub revision: Option<i32>,
}

/// Options for finding files in a bucket.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct GridFsFindOptions {
    /// Let the server spill large sorts to disk.
    pub allow_disk_use: Option<bool>,
    /// Files documents per batch.
    pub batch_size: Option<u32>,
    /// Most files to return.
    pub limit: Option<i64>,
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Keep an idle cursor open on the server.
    pub no_cursor_timeout: Option<bool>,
    /// Files to skip.
    pub skip: Option<u64>,
    /// Result order (default: none).
    pub sort: Option<Document>,
}

impl From<GridFsFindOptions> for FindOptions {
    fn from(o: GridFsFindOptions) -> FindOptions {
        FindOptions {
            allow_disk_use: o.allow_disk_use,
            batch_size: o.batch_size,
            limit: o.limit,
            max_time: o.max_time,
            no_cursor_timeout: o.no_cursor_timeout,
            skip: o.skip,
            sort: o.sort,
            ..FindOptions::default()
        }
    }
}

/// Options for finding one file in a bucket.
#[derive(Clone, Debug, Default, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
pub struct GridFsFindOneOptions {
    /// Server-side time limit.
    pub max_time: Option<Duration>,
    /// Files to skip.
    pub skip: Option<u64>,
    /// Which file comes first (default: none).
    pub sort: Option<Document>,
}

impl From<GridFsFindOneOptions> for FindOneOptions {
    fn from(o: GridFsFindOneOptions) -> FindOneOptions {
        FindOneOptions {
            max_time: o.max_time,
            skip: o.skip,
            sort: o.sort,
            ..FindOneOptions::default()
        }
    }
}
