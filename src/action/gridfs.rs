//! GridFS's operations on a bucket: upload and download streams, find, delete, rename, drop.
//! The work itself is in `gridfs.rs`; these are the official crate's shapes for it.

use bson::{Bson, Document};

use crate::crud_types::FindOptions;
use crate::cursor::Cursor;
use crate::error::Result;
use crate::gridfs::{
    FilesCollectionDocument, GridFsBucket, GridFsDownloadStream, GridFsUploadStream,
};
use crate::gridfs_options::{
    GridFsDownloadByNameOptions, GridFsFindOneOptions, GridFsFindOptions, GridFsUploadOptions,
};

use super::option_setters;

impl GridFsBucket {
    /// Opens a stream that stores what is written to it as a new file named `filename`
    /// (with a new ObjectId unless [`id`](OpenUploadStream::id) gives one). Nothing is
    /// visible until [`GridFsUploadStream::close`].
    pub fn open_upload_stream(&self, filename: impl AsRef<str>) -> OpenUploadStream<'_> {
        OpenUploadStream {
            bucket: self,
            filename: filename.as_ref().to_string(),
            id: None,
            options: None,
        }
    }

    /// Opens the file with id `id` for reading.
    pub fn open_download_stream(&self, id: Bson) -> OpenDownloadStream<'_> {
        OpenDownloadStream { bucket: self, id }
    }

    /// Opens one revision (the latest unless [`revision`](OpenDownloadStreamByName::revision)
    /// says otherwise) of the files named `filename`.
    pub fn open_download_stream_by_name(
        &self,
        filename: impl Into<String>,
    ) -> OpenDownloadStreamByName<'_> {
        OpenDownloadStreamByName {
            bucket: self,
            filename: filename.into(),
            options: None,
        }
    }

    /// The files documents matching `filter`.
    pub fn find(&self, filter: Document) -> Find<'_> {
        Find {
            bucket: self,
            filter,
            options: None,
        }
    }

    /// The first files document matching `filter`.
    pub fn find_one(&self, filter: Document) -> FindOne<'_> {
        FindOne {
            bucket: self,
            filter,
            options: None,
        }
    }

    /// Deletes file `id`: its files document, then its chunks. A file that does not exist
    /// is [`GridFsErrorKind::FileNotFound`](crate::GridFsErrorKind) (any stray chunks with its id
    /// are deleted anyway).
    pub fn delete(&self, id: Bson) -> Delete<'_> {
        Delete { bucket: self, id }
    }

    /// Deletes every revision of the file named `filename`. No file of that name is
    /// [`GridFsErrorKind::FileNotFound`](crate::GridFsErrorKind), naming it.
    pub fn delete_by_name(&self, filename: impl Into<String>) -> DeleteByName<'_> {
        DeleteByName {
            bucket: self,
            filename: filename.into(),
        }
    }

    /// Renames file `id`.
    pub fn rename(&self, id: Bson, new_filename: impl Into<String>) -> Rename<'_> {
        Rename {
            bucket: self,
            id,
            new_filename: new_filename.into(),
        }
    }

    /// Renames every revision of the file named `filename`.
    pub fn rename_by_name(
        &self,
        filename: impl Into<String>,
        new_filename: impl Into<String>,
    ) -> RenameByName<'_> {
        RenameByName {
            bucket: self,
            filename: filename.into(),
            new_filename: new_filename.into(),
        }
    }

    /// Drops both collections: every file in the bucket, and the indexes.
    pub fn drop(&self) -> Drop<'_> {
        Drop { bucket: self }
    }
}

/// Opens an upload stream. Made by [`GridFsBucket::open_upload_stream`].
#[must_use = "nothing happens until .run()"]
pub struct OpenUploadStream<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filename: String,
    pub(crate) id: Option<Bson>,
    pub(crate) options: Option<GridFsUploadOptions>,
}

impl OpenUploadStream<'_> {
    option_setters!(GridFsUploadOptions {
        chunk_size_bytes: plain u32,
        metadata: plain Document,
    });

    /// The new file's id, rather than a new ObjectId.
    pub fn id(mut self, value: Bson) -> Self {
        self.id = Some(value);
        self
    }

    /// The stream (no I/O yet: the first chunk is stored when it fills).
    pub fn run(self) -> Result<GridFsUploadStream> {
        Ok(self
            .bucket
            .upload_stream(self.id, &self.filename, self.options.unwrap_or_default()))
    }
}

/// Opens a download stream by id. Made by [`GridFsBucket::open_download_stream`].
#[must_use = "nothing is sent until .run()"]
pub struct OpenDownloadStream<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) id: Bson,
}

impl OpenDownloadStream<'_> {
    /// Reads the files document and opens the chunks' cursor.
    pub fn run(self) -> Result<GridFsDownloadStream> {
        self.bucket.download_stream(&self.id)
    }
}

/// Opens a download stream by name. Made by [`GridFsBucket::open_download_stream_by_name`].
#[must_use = "nothing is sent until .run()"]
pub struct OpenDownloadStreamByName<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filename: String,
    pub(crate) options: Option<GridFsDownloadByNameOptions>,
}

impl OpenDownloadStreamByName<'_> {
    option_setters!(GridFsDownloadByNameOptions {
        revision: plain i32,
    });

    /// Finds the revision's files document and opens the chunks' cursor.
    pub fn run(self) -> Result<GridFsDownloadStream> {
        let revision = self.options.and_then(|o| o.revision).unwrap_or(-1);
        self.bucket
            .download_stream_by_name(&self.filename, revision)
    }
}

/// Finds files. Made by [`GridFsBucket::find`].
#[must_use = "nothing is sent until .run()"]
pub struct Find<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filter: Document,
    pub(crate) options: Option<GridFsFindOptions>,
}

impl Find<'_> {
    option_setters!(GridFsFindOptions {
        allow_disk_use: plain bool,
        batch_size: plain u32,
        limit: plain i64,
        max_time: plain std::time::Duration,
        no_cursor_timeout: plain bool,
        skip: plain u64,
        sort: plain Document,
    });

    /// Sends the `find` on the files collection.
    pub fn run(self) -> Result<Cursor<FilesCollectionDocument>> {
        let options = FindOptions::from(self.options.unwrap_or_default());
        self.bucket.find_files(self.filter, options)
    }
}

/// Finds one file. Made by [`GridFsBucket::find_one`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOne<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filter: Document,
    pub(crate) options: Option<GridFsFindOneOptions>,
}

impl FindOne<'_> {
    option_setters!(GridFsFindOneOptions {
        max_time: plain std::time::Duration,
        skip: plain u64,
        sort: plain Document,
    });

    /// Sends the `find` for one files document.
    pub fn run(self) -> Result<Option<FilesCollectionDocument>> {
        let o = self.options.unwrap_or_default();
        let options = FindOptions {
            limit: Some(-1),
            max_time: o.max_time,
            skip: o.skip,
            sort: o.sort,
            ..FindOptions::default()
        };
        self.bucket
            .find_files(self.filter, options)?
            .next()
            .transpose()
    }
}

/// Deletes a file. Made by [`GridFsBucket::delete`].
#[must_use = "nothing is sent until .run()"]
pub struct Delete<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) id: Bson,
}

impl Delete<'_> {
    /// Deletes the files document, then the chunks.
    pub fn run(self) -> Result<()> {
        self.bucket.delete_now(&self.id)
    }
}

/// Deletes every revision of a file. Made by [`GridFsBucket::delete_by_name`].
#[must_use = "nothing is sent until .run()"]
pub struct DeleteByName<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filename: String,
}

impl DeleteByName<'_> {
    /// Deletes the files documents, then their chunks.
    pub fn run(self) -> Result<()> {
        self.bucket.delete_by_name_now(&self.filename)
    }
}

/// Renames a file. Made by [`GridFsBucket::rename`].
#[must_use = "nothing is sent until .run()"]
pub struct Rename<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) id: Bson,
    pub(crate) new_filename: String,
}

impl Rename<'_> {
    /// Updates the files document.
    pub fn run(self) -> Result<()> {
        self.bucket.rename_now(&self.id, &self.new_filename)
    }
}

/// Renames every revision of a file. Made by [`GridFsBucket::rename_by_name`].
#[must_use = "nothing is sent until .run()"]
pub struct RenameByName<'a> {
    pub(crate) bucket: &'a GridFsBucket,
    pub(crate) filename: String,
    pub(crate) new_filename: String,
}

impl RenameByName<'_> {
    /// Updates the files documents.
    pub fn run(self) -> Result<()> {
        self.bucket
            .rename_by_name_now(&self.filename, &self.new_filename)
    }
}

/// Drops a bucket. Made by [`GridFsBucket::drop`].
#[must_use = "nothing is sent until .run()"]
pub struct Drop<'a> {
    pub(crate) bucket: &'a GridFsBucket,
}

impl Drop<'_> {
    /// Drops the files and chunks collections.
    pub fn run(self) -> Result<()> {
        self.bucket.drop_now()
    }
}
