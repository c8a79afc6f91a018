//! `.await` on the blocking API's actions: the official async crate's names, one job per call.
//!
//! Every action — what `coll.find(filter).sort(..)` returns before `.run()` — also implements
//! [`IntoFuture`]. Awaiting it does what `.run()` does, on the client's runner instead of the
//! caller's thread: a new may coroutine (coroutine core) or a pool thread (threaded core).
//!
//! An action borrows its handle (`&'a Collection<T>`), and a job outlives the borrow, so
//! `into_future` *detaches* it: the handle is cloned (an `Arc` bump), the action's owned
//! fields move into the job, and the job rebuilds the same action around its own clone and
//! calls `.run()`. One route per call, then: the async façade adds no second implementation
//! of any operation, only the hop.
//!
//! Documents an action only borrows (`insert_one(&doc)`, `replace_one(f, &doc)`) cannot go
//! into the job as they are: they are encoded to BSON on the caller's thread first, and the
//! job writes the encoded copy. A `Serialize` impl that panics there resolves the future to
//! [`ErrorKind::Panicked`], as a panic inside the job does.
//!
//! The work starts when the future is made (`into_future`, which `.await` calls), not when it
//! is first polled: a future that is dropped unpolled has still sent its operation. Futures
//! from the official crate start when polled; see the README's porting section.

use std::borrow::Borrow;
use std::future::IntoFuture;

use bson::{Bson, Document};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cursor;
use crate::action::aggregate::Target;
use crate::action::gridfs as gfs;
use crate::action::*;
use crate::client_bulk_write::{ClientBulkWrite, ClientBulkWriteResult};
use crate::error::{Error, Result};
use crate::gridfs::{FilesCollectionDocument, GridFsBucket};
use crate::results::DatabaseSpecification;
use crate::results::{CollectionSpecification, CreateIndexResult, CreateIndexesResult};
use crate::runtime::{AsyncOp, Runner};
use crate::{
    BulkWriteResult, Client, ClientOptions, Collection, Database, DeleteResult, IndexModel,
    InsertManyResult, InsertOneResult, UpdateResult,
};

/// A handle an action borrows: cheap to clone into a job, and it knows its client's runner.
pub(crate) trait Handle: Clone + Send + Sync + 'static {
    fn client(&self) -> &Client;
}

impl<T: 'static> Handle for Collection<T> {
    fn client(&self) -> &Client {
        &self.client
    }
}

impl Handle for Database {
    fn client(&self) -> &Client {
        &self.client
    }
}

impl Handle for Client {
    fn client(&self) -> &Client {
        self
    }
}

impl Handle for GridFsBucket {
    fn client(&self) -> &Client {
        &self.files().client
    }
}

/// Runs `job` with a clone of `handle` on the handle's runner.
fn detach<H: Handle, R: Send + 'static>(
    handle: &H,
    job: impl FnOnce(&H) -> Result<R> + Send + 'static,
) -> AsyncOp<R> {
    let runner = match handle.client().runner() {
        Ok(runner) => runner.clone(),
        Err(e) => return AsyncOp::failed(e),
    };
    let handle = handle.clone();
    runner.run(move || job(&handle))
}

/// [`detach`] for an action whose result is a blocking cursor: it comes back as a [`Cursor`]
/// stream that fetches on the same runner.
fn detach_cursor<H: Handle, U: Send + 'static>(
    handle: &H,
    job: impl FnOnce(&H) -> Result<crate::Cursor<U>> + Send + 'static,
) -> AsyncOp<Cursor<U>> {
    let runner = match handle.client().runner() {
        Ok(runner) => runner.clone(),
        Err(e) => return AsyncOp::failed(e),
    };
    let handle = handle.clone();
    let for_cursor = runner.clone();
    runner.run(move || job(&handle).map(|c| Cursor::new(c, for_cursor)))
}

/// Encodes a document the caller only lends, on the caller's thread (see the module's doc).
fn encode<T: Serialize>(doc: &T) -> Result<Document> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bson::serialize_to_document(doc).map_err(Error::ser)
    }))
    .unwrap_or_else(|panic| Err(crate::runtime::panicked(&*panic)))
}

/// `impl IntoFuture for $ty` with output `Result<$out>`; `$this => $body` builds the future.
macro_rules! awaitable {
    ([$($gen:tt)*] $ty:ty => $out:ty, $this:ident => $body:expr) => {
        impl<$($gen)*> IntoFuture for $ty {
            type Output = Result<$out>;
            type IntoFuture = AsyncOp<$out>;

            fn into_future($this) -> AsyncOp<$out> {
                $body
            }
        }
    };
}

// ---- Collection: reads -------------------------------------------------------------------

awaitable!(['a, T: DeserializeOwned + Send + 'static] Find<'a, T> => Cursor<T>, self => {
    let Find { coll, filter, options, session } = self;
    detach_cursor(coll, move |coll| Find { coll, filter, options, session }.run())
});

awaitable!(['a, T: DeserializeOwned + Send + 'static] FindOne<'a, T> => Option<T>, self => {
    let FindOne { coll, filter, options, session } = self;
    detach(coll, move |coll| FindOne { coll, filter, options, session }.run())
});

awaitable!(['a, T: DeserializeOwned + Send + 'static] Aggregate<'a, T> => Cursor<T>, self => {
    let Aggregate { target, pipeline, options, _type, session } = self;
    match target {
        Target::Collection(coll) => detach_cursor(&coll, move |coll| {
            let target = Target::Collection(coll.clone());
            Aggregate { target, pipeline, options, _type, session }.run()
        }),
        Target::Database(db) => detach_cursor(db, move |db| {
            Aggregate { target: Target::Database(db), pipeline, options, _type, session }.run()
        }),
    }
});

awaitable!(['a, T: 'static] CountDocuments<'a, T> => u64, self => {
    let CountDocuments { coll, filter, options, session } = self;
    detach(coll, move |coll| CountDocuments { coll, filter, options, session }.run())
});

awaitable!(['a, T: 'static] EstimatedDocumentCount<'a, T> => u64, self => {
    let EstimatedDocumentCount { coll, options, session } = self;
    detach(coll, move |coll| EstimatedDocumentCount { coll, options, session }.run())
});

awaitable!(['a, T: 'static] Distinct<'a, T> => Vec<Bson>, self => {
    let Distinct { coll, field_name, filter, options, session } = self;
    detach(coll, move |coll| Distinct { coll, field_name, filter, options, session }.run())
});

// ---- Collection: writes ------------------------------------------------------------------

awaitable!(['a, T: Serialize + 'static, B: Borrow<T>] InsertOne<'a, T, B> => InsertOneResult,
    self => {
    let InsertOne { coll, doc, options, session } = self;
    let doc = match encode(doc.borrow()) {
        Ok(doc) => doc,
        Err(e) => return AsyncOp::failed(e),
    };
    detach(coll, move |coll| {
        let coll = coll.clone_with_type::<Document>();
        InsertOne { coll: &coll, doc, options, session }.run()
    })
});

awaitable!(['a, T: Serialize + 'static, B: Borrow<T>] InsertMany<'a, T, B> => InsertManyResult,
    self => {
    let InsertMany { coll, docs, options, session } = self;
    let docs = match docs.iter().map(|d| encode(d.borrow())).collect::<Result<Vec<_>>>() {
        Ok(docs) => docs,
        Err(e) => return AsyncOp::failed(e),
    };
    detach(coll, move |coll| {
        let coll = coll.clone_with_type::<Document>();
        InsertMany { coll: &coll, docs, options, session }.run()
    })
});

awaitable!(['a, T: 'static] Update<'a, T> => UpdateResult, self => {
    let Update { coll, query, update, multi, options, session } = self;
    detach(coll, move |coll| Update { coll, query, update, multi, options, session }.run())
});

awaitable!(['a, T: Serialize + 'static, B: Borrow<T>] ReplaceOne<'a, T, B> => UpdateResult,
    self => {
    let ReplaceOne { coll, query, replacement, options, session } = self;
    let replacement = match encode(replacement.borrow()) {
        Ok(doc) => doc,
        Err(e) => return AsyncOp::failed(e),
    };
    detach(coll, move |coll| {
        let coll = coll.clone_with_type::<Document>();
        ReplaceOne { coll: &coll, query, replacement, options, session }.run()
    })
});

awaitable!(['a, T: 'static] Delete<'a, T> => DeleteResult, self => {
    let Delete { coll, query, limit, options, session } = self;
    detach(coll, move |coll| Delete { coll, query, limit, options, session }.run())
});

awaitable!(['a, T: Serialize + Send + 'static] BulkWrite<'a, T> => BulkWriteResult, self => {
    let BulkWrite { coll, models, options, session } = self;
    detach(coll, move |coll| BulkWrite { coll, models, options, session }.run())
});

awaitable!(['a, T: DeserializeOwned + Send + 'static] FindOneAndDelete<'a, T> => Option<T>,
    self => {
    let FindOneAndDelete { coll, filter, options, session } = self;
    detach(coll, move |coll| FindOneAndDelete { coll, filter, options, session }.run())
});

awaitable!(['a, T: DeserializeOwned + Send + 'static] FindOneAndUpdate<'a, T> => Option<T>,
    self => {
    let FindOneAndUpdate { coll, filter, update, options, session } = self;
    detach(coll, move |coll| FindOneAndUpdate { coll, filter, update, options, session }.run())
});

awaitable!(['a, T: Serialize + DeserializeOwned + Send + 'static, B: Borrow<T>]
    FindOneAndReplace<'a, T, B> => Option<T>, self => {
    let FindOneAndReplace { coll, filter, replacement, options, session } = self;
    let replacement = match encode(replacement.borrow()) {
        Ok(doc) => doc,
        Err(e) => return AsyncOp::failed(e),
    };
    // Run untyped, since the replacement is already a document; the result is decoded to
    // `T` in the job, where a decoding error is reported as the blocking call reports it.
    detach(coll, move |coll| {
        let coll = coll.clone_with_type::<Document>();
        FindOneAndReplace { coll: &coll, filter, replacement, options, session }
            .run()?
            .map(|doc| {
                // On a driver stack, as the blocking decoders run: the job has may's 32 KiB.
                crate::runtime::on_driver_stack(|| bson::deserialize_from_document::<T>(doc))
                    .map_err(Error::de)
            })
            .transpose()
    })
});

// ---- Collection: indexes, search indexes, rename, drop -----------------------------------
// (`DropIndexes` is `DropIndex` without a name.)

awaitable!(['a, T: 'static] CreateIndex<'a, T> => CreateIndexResult, self => {
    let CreateIndex { coll, indexes, options, session } = self;
    detach(coll, move |coll| CreateIndex { coll, indexes, options, session }.run())
});

awaitable!(['a, T: 'static] CreateIndexes<'a, T> => CreateIndexesResult, self => {
    let CreateIndex { coll, indexes, options, session } = self.0;
    detach(coll, move |coll| CreateIndexes(CreateIndex { coll, indexes, options, session }).run())
});

awaitable!(['a, T: 'static] DropIndex<'a, T> => (), self => {
    let DropIndex { coll, name, options, session } = self;
    detach(coll, move |coll| DropIndex { coll, name, options, session }.run())
});

awaitable!(['a, T: 'static] ListIndexes<'a, T> => Cursor<IndexModel>, self => {
    let ListIndexes { coll, options, session } = self;
    detach_cursor(coll, move |coll| ListIndexes { coll, options, session }.run())
});

awaitable!(['a, T: 'static] ListIndexNames<'a, T> => Vec<String>, self => {
    let ListIndexNames(ListIndexes { coll, options, session }, explicit) = self;
    detach(coll, move |coll| {
        ListIndexNames(ListIndexes { coll, options, session }, explicit).run()
    })
});

awaitable!(['a, T: 'static] CreateSearchIndex<'a, T> => String, self => {
    let CreateSearchIndexes { coll, models } = self.0;
    detach(coll, move |coll| CreateSearchIndex(CreateSearchIndexes { coll, models }).run())
});

awaitable!(['a, T: 'static] CreateSearchIndexes<'a, T> => Vec<String>, self => {
    let CreateSearchIndexes { coll, models } = self;
    detach(coll, move |coll| CreateSearchIndexes { coll, models }.run())
});

awaitable!(['a, T: 'static] UpdateSearchIndex<'a, T> => (), self => {
    let UpdateSearchIndex { coll, name, definition } = self;
    detach(coll, move |coll| UpdateSearchIndex { coll, name, definition }.run())
});

awaitable!(['a, T: 'static] DropSearchIndex<'a, T> => (), self => {
    let DropSearchIndex { coll, name } = self;
    detach(coll, move |coll| DropSearchIndex { coll, name }.run())
});

awaitable!(['a, T: 'static] ListSearchIndexes<'a, T> => Cursor<Document>, self => {
    let ListSearchIndexes { coll, name, options } = self;
    detach_cursor(coll, move |coll| ListSearchIndexes { coll, name, options }.run())
});

awaitable!(['a, T: 'static] RenameCollection<'a, T> => (), self => {
    let RenameCollection { coll, to, drop_target, write_concern, comment, session } = self;
    detach(coll, move |coll| {
        RenameCollection { coll, to, drop_target, write_concern, comment, session }.run()
    })
});

awaitable!(['a, T: 'static] DropCollection<'a, T> => (), self => {
    let DropCollection { coll, options, session } = self;
    detach(coll, move |coll| DropCollection { coll, options, session }.run())
});

// ---- Database ----------------------------------------------------------------------------

awaitable!(['a] RunCommand<'a> => Document, self => {
    let RunCommand { db, command, options, session } = self;
    detach(db, move |db| RunCommand { db, command, options, session }.run())
});

awaitable!(['a] RunCursorCommand<'a> => Cursor<Document>, self => {
    let RunCursorCommand { db, command, options, session } = self;
    detach_cursor(db, move |db| RunCursorCommand { db, command, options, session }.run())
});

awaitable!(['a] CreateCollection<'a> => (), self => {
    let CreateCollection { db, name, options, session } = self;
    detach(db, move |db| CreateCollection { db, name, options, session }.run())
});

awaitable!(['a] DropDatabase<'a> => (), self => {
    let DropDatabase { db, options, session } = self;
    detach(db, move |db| DropDatabase { db, options, session }.run())
});

awaitable!(['a] ListCollections<'a> => Cursor<CollectionSpecification>, self => {
    let ListCollections { db, options, session } = self;
    detach_cursor(db, move |db| ListCollections { db, options, session }.run())
});

awaitable!(['a] ListCollectionNames<'a> => Vec<String>, self => {
    let ListCollectionNames(ListCollections { db, options, session }, explicit) = self;
    detach(db, move |db| {
        ListCollectionNames(ListCollections { db, options, session }, explicit).run()
    })
});

// ---- Client ------------------------------------------------------------------------------

awaitable!(['a] ListDatabases<'a> => Vec<DatabaseSpecification>, self => {
    let ListDatabases { client, options, session } = self;
    detach(client, move |client| ListDatabases { client, options, session }.run())
});

awaitable!(['a] ListDatabaseNames<'a> => Vec<String>, self => {
    let ListDatabases { client, options, session } = self.0;
    detach(client, move |client| ListDatabaseNames(ListDatabases { client, options, session }).run())
});

awaitable!(['a] ClientBulkWrite<'a> => ClientBulkWriteResult, self => {
    let ClientBulkWrite { client, models, options, session } = self;
    detach(client, move |client| ClientBulkWrite { client, models, options, session }.run())
});

awaitable!([] ParseConnectionString => ClientOptions, self => {
    // No client yet, so no runner: parse in a coroutine of its own. A `mongodb+srv://` name
    // is resolved there, and the DNS wait runs off may's workers (`runtime::off_worker`).
    Runner::Coroutines.run(move || self.run())
});

// ---- Change streams ----------------------------------------------------------------------

awaitable!(['a, T: DeserializeOwned + Send + 'static] Watch<'a, T>
    => super::ChangeStream<crate::change_stream::ChangeStreamEvent<T>>, self => {
    let Watch { client, target, pipeline, options, read_concern, criteria, timeout, _type, session } = self;
    let runner = match client.runner() {
        Ok(runner) => runner.clone(),
        Err(e) => return AsyncOp::failed(e),
    };
    let client = client.clone();
    let for_stream = runner.clone();
    runner.run(move || {
        Watch { client: &client, target, pipeline, options, read_concern, criteria, timeout, _type, session }
            .run()
            .map(|s| super::ChangeStream::new(s, for_stream))
    })
});

// ---- GridFS ------------------------------------------------------------------------------
// Upload and download streams are blocking `io::Write` / `io::Read` objects and have no async
// form here (README, "Porting"); the bucket's other operations do.

awaitable!(['a] gfs::Find<'a> => Cursor<FilesCollectionDocument>, self => {
    let gfs::Find { bucket, filter, options } = self;
    detach_cursor(bucket, move |bucket| gfs::Find { bucket, filter, options }.run())
});

awaitable!(['a] gfs::FindOne<'a> => Option<FilesCollectionDocument>, self => {
    let gfs::FindOne { bucket, filter, options } = self;
    detach(bucket, move |bucket| gfs::FindOne { bucket, filter, options }.run())
});

awaitable!(['a] gfs::Delete<'a> => (), self => {
    let gfs::Delete { bucket, id } = self;
    detach(bucket, move |bucket| gfs::Delete { bucket, id }.run())
});

awaitable!(['a] gfs::DeleteByName<'a> => (), self => {
    let gfs::DeleteByName { bucket, filename } = self;
    detach(bucket, move |bucket| gfs::DeleteByName { bucket, filename }.run())
});

awaitable!(['a] gfs::Rename<'a> => (), self => {
    let gfs::Rename { bucket, id, new_filename } = self;
    detach(bucket, move |bucket| gfs::Rename { bucket, id, new_filename }.run())
});

awaitable!(['a] gfs::RenameByName<'a> => (), self => {
    let gfs::RenameByName { bucket, filename, new_filename } = self;
    detach(bucket, move |bucket| gfs::RenameByName { bucket, filename, new_filename }.run())
});

awaitable!(['a] gfs::Drop<'a> => (), self => {
    let gfs::Drop { bucket } = self;
    detach(bucket, move |bucket| gfs::Drop { bucket }.run())
});
