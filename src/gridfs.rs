//! GridFS, after MongoDB's GridFS spec: files of any size stored as chunks.
//!
//! A bucket named `fs` (the default) is two collections:
//! - `fs.files`: one document per file, with `_id`, `length`, `chunkSize`, `uploadDate`,
//!   `filename` and optional `metadata`;
//! - `fs.chunks`: the bytes, as `{ files_id, n, data }` documents of `chunkSize` bytes each
//!   (the last one shorter).
//!
//! An upload writes the chunks first and the files document last, so a file becomes visible
//! only once all its bytes are stored. A download reads the files document, then the chunks in
//! order `n = 0, 1, ...`, and checks each one: a missing chunk, a chunk of the wrong size or an
//! extra chunk is an error, never silently wrong bytes.
//!
//! Both streams are blocking-style like the rest of the driver: [`GridFsUploadStream`] is a
//! [`std::io::Write`] and [`GridFsDownloadStream`] a [`std::io::Read`], so `std::io::copy`
//! moves a file in or out, inside a coroutine or on a thread.
//!
//! Before the first write to a bucket whose files collection is empty, the two indexes the spec
//! asks for are created unless they exist: `{ filename: 1, uploadDate: 1 }` on files and
//! `{ files_id: 1, n: 1 }` (unique) on chunks.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::collection::Collection;
use crate::crud_types::FindOptions;
use crate::cursor::Cursor;
use crate::database::Database;
use crate::error::{Error, ErrorKind, Result};
pub use crate::gridfs_options::{GridFsBucketOptions, GridFsUploadOptions};
use crate::index::{IndexModel, IndexOptions};
use crate::runtime::on_driver_stack;

/// The spec's default chunk size: 255 KiB (a chunk and its envelope fit well under 16 MiB, and
/// the last chunk of a small file wastes little).
pub const DEFAULT_CHUNK_SIZE: u32 = 255 * 1024;

pub use crate::error::{GridFsErrorKind, GridFsFileIdentifier};

impl From<GridFsErrorKind> for ErrorKind {
    fn from(e: GridFsErrorKind) -> ErrorKind {
        ErrorKind::GridFs(e)
    }
}

/// A file's description: its files document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FilesCollectionDocument {
    /// The file's id (an ObjectId unless the uploader chose another).
    #[serde(rename = "_id")]
    pub id: Bson,
    /// Its length in bytes (stored as an Int64).
    #[serde(serialize_with = "as_i64")]
    pub length: u64,
    /// The size of each chunk but the last (stored as an Int32).
    #[serde(rename = "chunkSize", serialize_with = "as_i32")]
    pub chunk_size_bytes: u32,
    /// When the upload finished.
    #[serde(rename = "uploadDate")]
    pub upload_date: DateTime,
    /// Its name (names need not be unique: each upload is a revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// What the uploader stored with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Document>,
}

/// The files collection's `length` as the spec stores it: an Int64.
fn as_i64<S: serde::Serializer>(value: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value = i64::try_from(*value).map_err(serde::ser::Error::custom)?;
    s.serialize_i64(value)
}

/// The files collection's `chunkSize` as the spec stores it: an Int32.
fn as_i32<S: serde::Serializer>(value: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    let value = i32::try_from(*value).map_err(serde::ser::Error::custom)?;
    s.serialize_i32(value)
}

/// A GridFS bucket in one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GridFsBucket {
    files: Collection<Document>,
    chunks: Collection<Document>,
    chunk_size: u32,
    /// Set once this handle has made sure the indexes exist.
    indexes_checked: Arc<AtomicBool>,
}

impl Database {
    /// A GridFS bucket in this database (no I/O).
    pub fn gridfs_bucket(&self, options: impl Into<Option<GridFsBucketOptions>>) -> GridFsBucket {
        let options = options.into().unwrap_or_default();
        let name = options.bucket_name.as_deref().unwrap_or("fs");
        let settle = |c: Collection<Document>| {
            let c = match &options.write_concern {
                Some(wc) => c.with_write_concern(wc.clone()),
                None => c,
            };
            let c = match &options.read_concern {
                Some(rc) => c.with_read_concern(rc.clone()),
                None => c,
            };
            match &options.selection_criteria {
                Some(criteria) => c.with_selection_criteria(criteria.clone()),
                None => c,
            }
        };
        GridFsBucket {
            files: settle(self.collection(&format!("{name}.files"))),
            chunks: settle(self.collection(&format!("{name}.chunks"))),
            chunk_size: options
                .chunk_size_bytes
                .unwrap_or(DEFAULT_CHUNK_SIZE)
                .max(1),
            indexes_checked: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl GridFsBucket {
    /// The files collection.
    pub fn files(&self) -> &Collection<Document> {
        &self.files
    }

    /// The chunks collection.
    pub fn chunks(&self) -> &Collection<Document> {
        &self.chunks
    }

    /// Opens a stream that stores what is written to it as a new file named `filename`, with a
    /// new ObjectId. Nothing is visible until [`GridFsUploadStream::close`].
    pub(crate) fn upload_stream(
        &self,
        id: Option<Bson>,
        filename: &str,
        options: GridFsUploadOptions,
    ) -> GridFsUploadStream {
        let id = id.unwrap_or_else(|| Bson::ObjectId(crate::collection::object_id()));
        self.upload_stream_with_id(id, filename, options)
    }

    fn upload_stream_with_id(
        &self,
        id: Bson,
        filename: &str,
        options: GridFsUploadOptions,
    ) -> GridFsUploadStream {
        let chunk_size = options.chunk_size_bytes.unwrap_or(self.chunk_size).max(1);
        GridFsUploadStream {
            bucket: self.clone(),
            id,
            filename: filename.to_string(),
            metadata: options.metadata,
            chunk_size,
            buffer: Vec::new(),
            n: 0,
            length: 0,
            state: UploadState::Open,
        }
    }

    /// Stores everything `source` yields as a new file; returns its id.
    pub fn upload_from_reader(
        &self,
        filename: &str,
        source: &mut impl io::Read,
        options: GridFsUploadOptions,
    ) -> Result<Bson> {
        let mut stream = self.upload_stream(None, filename, options);
        if let Err(e) = io::copy(source, &mut stream) {
            let _ = stream.abort();
            return Err(io_error_to_driver(e));
        }
        stream.finish()
    }

    /// Opens the file with id `id` for reading.
    pub(crate) fn download_stream(&self, id: &Bson) -> Result<GridFsDownloadStream> {
        let file = self
            .files
            .find_one(doc! { "_id": id.clone() })
            .run()?
            .ok_or_else(|| GridFsErrorKind::FileNotFound {
                identifier: GridFsFileIdentifier::Id(id.clone()),
            })?;
        self.open_file(file)
    }

    /// Opens one revision of the files named `filename`: 0 is the first uploaded, 1 the
    /// second, ...; -1 the latest (the usual choice), -2 the one before, ...
    pub(crate) fn download_stream_by_name(
        &self,
        filename: &str,
        revision: i32,
    ) -> Result<GridFsDownloadStream> {
        // The query is built on a driver stack: only waiting needs the caller's (see
        // `runtime::on_driver_stack`), and every frame live during a wait is kept small.
        let file = self
            .files
            .find_one_built(
                || {
                    let (order, skip) = if revision >= 0 {
                        (1, revision as u64)
                    } else {
                        (-1, (-(revision as i64) - 1) as u64)
                    };
                    let options = FindOptions {
                        sort: Some(doc! { "uploadDate": order }),
                        skip: Some(skip),
                        ..FindOptions::default()
                    };
                    (doc! { "filename": filename }, options)
                },
                None,
            )?
            .ok_or_else(|| GridFsErrorKind::RevisionNotFound {
                revision,
                filename: filename.to_string(),
            })?;
        self.open_file(file)
    }

    /// Writes the whole file `id` to `sink`; returns its length.
    pub fn download_to_writer(&self, id: &Bson, sink: &mut impl io::Write) -> Result<u64> {
        let mut stream = self.download_stream(id)?;
        io::copy(&mut stream, sink).map_err(io_error_to_driver)
    }

    fn open_file(&self, file: Document) -> Result<GridFsDownloadStream> {
        // Its metadata is the user's, as deep as they made it: serde runs on a driver stack.
        let (file, chunks) = on_driver_stack(|| read_files_document(file))?;
        // An empty file has no chunks to ask for.
        let cursor = if chunks == 0 {
            None
        } else {
            Some(self.chunks.find_built(
                || {
                    let options = FindOptions {
                        sort: Some(doc! { "n": 1 }),
                        ..FindOptions::default()
                    };
                    (doc! { "files_id": file.id.clone() }, options)
                },
                None,
            )?)
        };
        Ok(GridFsDownloadStream {
            file,
            cursor,
            chunks,
            next: 0,
            current: Vec::new(),
            offset: 0,
        })
    }

    /// The files documents matching `filter`.
    pub(crate) fn find_files(
        &self,
        filter: Document,
        options: FindOptions,
    ) -> Result<Cursor<FilesCollectionDocument>> {
        self.files
            .clone_with_type()
            .find_built(move || (filter, options), None)
    }

    /// Deletes file `id`: its files document, then its chunks. A file that does not exist
    /// is [`GridFsErrorKind::FileNotFound`] (any stray chunks with its id are deleted anyway).
    pub(crate) fn delete_now(&self, id: &Bson) -> Result<()> {
        let deleted = self.files.delete_one(doc! { "_id": id.clone() }).run()?;
        self.chunks
            .delete_many(doc! { "files_id": id.clone() })
            .run()?;
        if deleted.deleted_count == 0 {
            return Err(GridFsErrorKind::FileNotFound {
                identifier: GridFsFileIdentifier::Id(id.clone()),
            }
            .into());
        }
        Ok(())
    }

    /// Renames file `id`.
    pub(crate) fn rename_now(&self, id: &Bson, new_filename: &str) -> Result<()> {
        let r = self
            .files
            .update_one(
                doc! { "_id": id.clone() },
                doc! { "$set": { "filename": new_filename } },
            )
            .run()?;
        if r.matched_count == 0 {
            return Err(GridFsErrorKind::FileNotFound {
                identifier: GridFsFileIdentifier::Id(id.clone()),
            }
            .into());
        }
        Ok(())
    }

    /// Deletes every revision of the file named `filename`: the files documents, then their
    /// chunks. No file of that name is [`GridFsErrorKind::FileNotFound`].
    pub(crate) fn delete_by_name_now(&self, filename: &str) -> Result<()> {
        let options = FindOptions {
            projection: Some(doc! { "_id": 1 }),
            ..FindOptions::default()
        };
        let ids = self
            .files
            .find_built(move || (doc! { "filename": filename }, options), None)?
            .map(|d| d.map(|mut d| d.remove("_id").unwrap_or(Bson::Null)))
            .collect::<Result<Vec<Bson>>>()?;
        if ids.is_empty() {
            return Err(GridFsErrorKind::FileNotFound {
                identifier: GridFsFileIdentifier::Filename(filename.to_string()),
            }
            .into());
        }
        self.files
            .delete_many(doc! { "_id": { "$in": ids.clone() } })
            .run()?;
        self.chunks
            .delete_many(doc! { "files_id": { "$in": ids } })
            .run()?;
        Ok(())
    }

    /// Renames every revision of the file named `filename`. No file of that name is
    /// [`GridFsErrorKind::FileNotFound`].
    pub(crate) fn rename_by_name_now(&self, filename: &str, new_filename: &str) -> Result<()> {
        let r = self
            .files
            .update_many(
                doc! { "filename": filename },
                doc! { "$set": { "filename": new_filename } },
            )
            .run()?;
        if r.matched_count == 0 {
            return Err(GridFsErrorKind::FileNotFound {
                identifier: GridFsFileIdentifier::Filename(filename.to_string()),
            }
            .into());
        }
        Ok(())
    }

    /// Drops both collections (every file in the bucket, and the indexes).
    pub(crate) fn drop_now(&self) -> Result<()> {
        self.files.drop().run()?;
        self.chunks.drop().run()?;
        self.indexes_checked.store(false, Ordering::Release);
        Ok(())
    }

    /// Before the first write: if the files collection is empty, creates the spec's indexes
    /// unless indexes with those keys exist already.
    fn ensure_indexes(&self) -> Result<()> {
        if self.indexes_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let any = self.files.find_one_built(
            || {
                let options = FindOptions {
                    projection: Some(doc! { "_id": 1 }),
                    ..FindOptions::default()
                };
                (doc! {}, options)
            },
            None,
        )?;
        if any.is_none() {
            // Listing and creating the indexes is the deepest path a GridFS write takes, and
            // it runs once per bucket handle: on a driver stack, waits included, so that the
            // writes that follow need no more of the caller's stack than an insert does.
            on_driver_stack(|| {
                self.create_missing_index(&self.files, false)?;
                self.create_missing_index(&self.chunks, true)
            })?;
        }
        self.indexes_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// Creates the spec's index on the files collection (`chunks` false) or the chunks
    /// collection (true, unique) unless one with the same keys exists.
    fn create_missing_index(&self, coll: &Collection<Document>, chunks: bool) -> Result<()> {
        let keys = || match chunks {
            false => doc! { "filename": 1, "uploadDate": 1 },
            true => doc! { "files_id": 1, "n": 1 },
        };
        if has_index(coll, &on_driver_stack(keys))? {
            return Ok(());
        }
        let index = on_driver_stack(|| {
            let options = chunks.then(|| IndexOptions {
                unique: Some(true),
                ..IndexOptions::default()
            });
            IndexModel::new(keys(), options)
        });
        coll.create_index(index).run().map(drop)
    }
}

/// A files document read as a [`FilesCollectionDocument`] and checked, with its number of chunks.
fn read_files_document(file: Document) -> Result<(FilesCollectionDocument, u32)> {
    let id = file.get("_id").cloned().unwrap_or(Bson::Null);
    let file: FilesCollectionDocument =
        bson::deserialize_from_document(file).map_err(|e| GridFsErrorKind::BadFilesDocument {
            id: id.to_string(),
            message: e.to_string(),
        })?;
    // A negative length or chunk size fails to read as unsigned above.
    if file.chunk_size_bytes == 0 {
        return Err(GridFsErrorKind::BadFilesDocument {
            id: id.to_string(),
            message: format!("length {}, chunkSize 0", file.length),
        }
        .into());
    }
    // Chunk numbers are int32s: a count beyond that is a broken document, not a count to
    // wrap (a cast made 2^32 chunks into 0, an "empty" file).
    let chunks = file.length.div_ceil(u64::from(file.chunk_size_bytes));
    let chunks = u32::try_from(chunks)
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| GridFsErrorKind::BadFilesDocument {
            id: id.to_string(),
            message: format!(
                "length {} in chunks of {} bytes needs {chunks} chunks, more than a chunk \
                 number (an int32) can count",
                file.length, file.chunk_size_bytes
            ),
        })?;
    Ok((file, chunks))
}

/// True when `coll` has an index on exactly `keys` (numbers compared by value, as the spec
/// asks: `1`, `1.0` and `1i64` are the same direction). A collection that does not exist has
/// none.
fn has_index(coll: &Collection<Document>, keys: &Document) -> Result<bool> {
    const NAMESPACE_NOT_FOUND: i32 = 26;
    let mut cursor = match coll.list_indexes().open::<Document>(None) {
        Ok(c) => c,
        Err(e) if e.code() == Some(NAMESPACE_NOT_FOUND) => return Ok(false),
        Err(e) => return Err(e),
    };
    while cursor.advance()? {
        if on_driver_stack(|| same_keys(cursor.current(), keys)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// True when index description `index` has `key` equal to `keys`, directions compared as
/// numbers.
fn same_keys(index: &bson::RawDocument, keys: &Document) -> bool {
    let Ok(key) = index.get_document("key") else {
        return false;
    };
    let mut theirs = key.iter();
    for (k, v) in keys {
        match theirs.next() {
            Some(Ok((name, value))) if name == k.as_str() => {
                let (a, b) = (raw_f64(value), as_f64(v));
                if a.is_none() || a != b {
                    return false;
                }
            }
            _ => return false,
        }
    }
    theirs.next().is_none()
}

fn as_f64(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(i) => Some(*i as f64),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

fn raw_f64(v: bson::RawBsonRef<'_>) -> Option<f64> {
    match v {
        bson::RawBsonRef::Int32(i) => Some(i as f64),
        bson::RawBsonRef::Int64(i) => Some(i as f64),
        bson::RawBsonRef::Double(d) => Some(d),
        _ => None,
    }
}

/// A driver error carried through `std::io` (and back: [`io_error_to_driver`]).
fn to_io(e: Error) -> io::Error {
    io::Error::other(e)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UploadState {
    Open,
    Closed,
}

/// A file being uploaded: a [`std::io::Write`] that stores each full chunk as it fills.
///
/// Finish with [`close`](Self::close), which stores the last chunk and then the files document
/// that makes the file visible, or [`abort`](Self::abort), which deletes the chunks stored so
/// far. Dropping the stream does neither (a destructor must not do I/O: it may run in a
/// coroutine's unwinding); the chunks already stored stay behind, unreferenced, until deleted.
pub struct GridFsUploadStream {
    bucket: GridFsBucket,
    id: Bson,
    filename: String,
    metadata: Option<Document>,
    chunk_size: u32,
    buffer: Vec<u8>,
    n: u32,
    length: u64,
    state: UploadState,
}

impl GridFsUploadStream {
    /// The id the file will have.
    pub fn id(&self) -> &Bson {
        &self.id
    }

    /// Stores the buffered chunk as chunk `n`.
    fn store_chunk(&mut self) -> Result<()> {
        if self.n == 0 {
            self.bucket.ensure_indexes()?;
        }
        let chunk = on_driver_stack(|| {
            let bytes = std::mem::replace(
                &mut self.buffer,
                Vec::with_capacity(self.chunk_size as usize),
            );
            doc! {
                "_id": bson::oid::ObjectId::new(),
                "files_id": self.id.clone(),
                "n": self.n as i32,
                "data": Binary { subtype: BinarySubtype::Generic, bytes },
            }
        });
        self.bucket.chunks.insert_one(&chunk).run()?;
        self.n += 1;
        Ok(())
    }

    /// Stores what is left and the files document, which makes the file visible (the
    /// official crate's signature: errors come as `std::io::Error`s wrapping the driver's;
    /// [`finish`](Self::finish) returns them typed).
    pub fn close(&mut self) -> io::Result<()> {
        self.finish_in_place().map(drop).map_err(to_io)
    }

    /// [`close`](Self::close), returning the file's id and the driver's typed error. (An
    /// addition of this driver.)
    pub fn finish(mut self) -> Result<Bson> {
        self.finish_in_place()
    }

    fn finish_in_place(&mut self) -> Result<Bson> {
        if self.state != UploadState::Open {
            return Err(GridFsErrorKind::UploadStreamClosed.into());
        }
        self.state = UploadState::Closed;
        if !self.buffer.is_empty() {
            self.store_chunk()?;
        } else if self.n == 0 {
            // An empty file: no chunks, but the indexes are due all the same.
            self.bucket.ensure_indexes()?;
        }
        let document = on_driver_stack(|| {
            let file = FilesCollectionDocument {
                id: self.id.clone(),
                length: self.length,
                chunk_size_bytes: self.chunk_size,
                upload_date: DateTime::now(),
                filename: Some(std::mem::take(&mut self.filename)),
                metadata: self.metadata.take(),
            };
            crate::collection::to_document(&file)
        })?;
        self.bucket.files.insert_one(&document).run()?;
        // The metadata is the user's, as deep as they made it.
        on_driver_stack(move || drop(document));
        Ok(self.id.clone())
    }

    /// Gives up the upload: deletes the chunks stored so far.
    pub fn abort(&mut self) -> Result<()> {
        if self.state != UploadState::Open {
            return Err(GridFsErrorKind::UploadStreamClosed.into());
        }
        self.state = UploadState::Closed;
        self.bucket
            .chunks
            .delete_many(doc! { "files_id": self.id.clone() })
            .run()?;
        Ok(())
    }
}

impl Drop for GridFsUploadStream {
    /// The metadata is the user's, as deep as they made it: freed on a driver stack (see
    /// `runtime::on_driver_stack`), not on the caller's.
    fn drop(&mut self) {
        crate::runtime::drop_on_driver_stack(self.metadata.take());
    }
}

impl io::Write for GridFsUploadStream {
    /// Buffers `buf`, storing each chunk as it fills. A driver error comes back as an
    /// `io::Error` wrapping the [`Error`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.state != UploadState::Open {
            return Err(to_io(GridFsErrorKind::UploadStreamClosed.into()));
        }
        let room = self.chunk_size as usize - self.buffer.len();
        let take = room.min(buf.len());
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.chunk_size as usize);
        }
        self.buffer.extend_from_slice(&buf[..take]);
        self.length += take as u64;
        if self.buffer.len() == self.chunk_size as usize {
            self.store_chunk().map_err(to_io)?;
        }
        Ok(take)
    }

    /// Nothing to do: a partial chunk is stored by `close` (storing it early would make it
    /// the wrong size).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A file being downloaded: a [`std::io::Read`] over its chunks, fetched in order and each
/// checked against the file's length and chunk size.
pub struct GridFsDownloadStream {
    file: FilesCollectionDocument,
    cursor: Option<Cursor<Document>>,
    /// How many chunks the file has, and the next one expected.
    chunks: u32,
    next: u32,
    current: Vec<u8>,
    offset: usize,
}

impl Drop for GridFsDownloadStream {
    /// As for an upload stream: the metadata is freed on a driver stack.
    fn drop(&mut self) {
        crate::runtime::drop_on_driver_stack(self.file.metadata.take());
    }
}

impl GridFsDownloadStream {
    /// The file's description.
    pub fn file(&self) -> &FilesCollectionDocument {
        &self.file
    }

    /// The size chunk `n` must have.
    fn expected_size(&self, n: u32) -> usize {
        let chunk = u64::from(self.file.chunk_size_bytes);
        if n + 1 < self.chunks {
            chunk as usize
        } else {
            (self.file.length - chunk * u64::from(n)) as usize
        }
    }

    /// At the end of the file: a chunk beyond its length is an error (once; the cursor is
    /// then done).
    fn check_no_extra_chunk(&mut self) -> Result<()> {
        let Some(mut cursor) = self.cursor.take() else {
            return Ok(());
        };
        match cursor.next() {
            None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(doc)) => Err(GridFsErrorKind::WrongNumberOfChunks {
                actual_number: doc
                    .get_i32("n")
                    .ok()
                    .and_then(|n| u32::try_from(n).ok())
                    .map_or(self.chunks + 1, |n| n.max(self.chunks) + 1),
                expected_number: self.chunks,
                id: self.file.id.to_string(),
            }
            .into()),
        }
    }

    /// Fetches and checks the next chunk into `current`.
    fn next_chunk(&mut self) -> Result<()> {
        let id = || self.file.id.to_string();
        let n = self.next;
        let doc = match self.cursor.as_mut().and_then(Iterator::next) {
            Some(doc) => doc?,
            None => return Err(GridFsErrorKind::MissingChunk { n, id: id() }.into()),
        };
        let found = match doc.get("n") {
            Some(Bson::Int32(v)) => i64::from(*v),
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Double(v)) if v.fract() == 0.0 => *v as i64,
            _ => -1,
        };
        if found != i64::from(n) {
            // Sorted by n: a higher number means chunk n is missing, a lower one a duplicate.
            return Err(if found > i64::from(n) {
                GridFsErrorKind::MissingChunk { n, id: id() }
            } else {
                GridFsErrorKind::UnexpectedChunk {
                    id: id(),
                    n: found,
                    expected: n,
                }
            }
            .into());
        }
        let bytes = match doc.get("data") {
            Some(Bson::Binary(b)) => &b.bytes,
            _ => {
                return Err(GridFsErrorKind::BadFilesDocument {
                    id: id(),
                    message: format!("chunk {n} has no binary data"),
                }
                .into());
            }
        };
        let expected = self.expected_size(n);
        if bytes.len() != expected {
            return Err(GridFsErrorKind::WrongSizeChunk {
                actual_size: bytes.len(),
                expected_size: expected as u32,
                n,
                id: id(),
            }
            .into());
        }
        self.current.clear();
        self.current.extend_from_slice(bytes);
        self.offset = 0;
        self.next += 1;
        Ok(())
    }
}

impl io::Read for GridFsDownloadStream {
    /// Reads the file's bytes in order. A missing or malformed chunk is an `io::Error`
    /// wrapping the [`Error`] ([`GridFsErrorKind`] inside).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.current.len() {
            if self.next == self.chunks {
                self.check_no_extra_chunk().map_err(to_io)?;
                return Ok(0);
            }
            self.next_chunk().map_err(to_io)?;
        }
        let n = buf.len().min(self.current.len() - self.offset);
        buf[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

/// Unwraps a driver error from an `io::Error` produced by a GridFS stream (for callers of
/// `std::io::copy` and friends who want the typed error back); any other I/O error becomes
/// [`ErrorKind::Io`](crate::ErrorKind::Io).
pub fn io_error_to_driver(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return *e
            .into_inner()
            .expect("checked")
            .downcast::<Error>()
            .expect("checked");
    }
    Error::io("GridFS stream", e)
}
