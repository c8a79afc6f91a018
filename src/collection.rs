//! A typed collection handle and its CRUD operations.
//!
//! Every method is blocking-style: in a may coroutine it parks the coroutine on I/O, on a plain
//! thread it blocks the thread. Read preference, read concern and write concern are inherited
//! client → database → collection, and each level can override them (`with_*`).

use std::borrow::{Borrow, Cow};
use std::marker::PhantomData;
use std::sync::Arc;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::*;
use crate::cursor::{Cursor, CursorSpec, CursorStart};
use crate::error::{
    BulkWriteFailure, Error, ErrorKind, IndexedWriteError, InsertManyError, Result,
    WriteConcernError,
};
use crate::index::IndexModel;
use crate::ops::{Command, FindOne, InsertBatch, InsertOne, InsertOneResult, read_write_reply};
use crate::retry::Retry;
use crate::selection_criteria::{Criteria, ReadPreference, SelectionCriteria};

/// Selection criteria and concerns, as inherited by a database or collection handle.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    /// Where reads go (`None`: the client's read preference).
    pub(crate) criteria: Option<Criteria>,
    pub(crate) read_concern: Option<ReadConcern>,
    pub(crate) write_concern: Option<WriteConcern>,
    /// A limit on each whole operation (the client's `timeoutMS` unless overridden).
    pub(crate) timeout: Option<std::time::Duration>,
}

impl Settings {
    /// Adds `readConcern` to a read command when one is set.
    pub(crate) fn read_concern_into(&self, body: &mut Document) {
        if let Some(rc) = &self.read_concern {
            body.insert("readConcern", rc.to_document());
        }
    }

    /// These settings with an operation's own selection criteria and concerns, when it sets
    /// any (`None`: the handle's apply unchanged).
    pub(crate) fn for_operation(
        &self,
        criteria: Option<&SelectionCriteria>,
        read_concern: Option<&ReadConcern>,
        write_concern: Option<&WriteConcern>,
    ) -> Option<Settings> {
        if criteria.is_none() && read_concern.is_none() && write_concern.is_none() {
            return None;
        }
        let mut settings = self.clone();
        if let Some(c) = criteria {
            settings.criteria = Some(c.into());
        }
        if let Some(rc) = read_concern {
            settings.read_concern = Some(rc.clone());
        }
        if let Some(wc) = write_concern {
            settings.write_concern = Some(wc.clone());
        }
        Some(settings)
    }

    /// The `writeConcern` to send, when one is set.
    pub(crate) fn write_concern_doc(&self) -> Option<Document> {
        self.write_concern
            .as_ref()
            .and_then(WriteConcern::command_field)
    }
}

/// A handle to one collection whose documents are `T`: any `Serialize` type for writes, any
/// `DeserializeOwned` type for reads, or [`Document`] for untyped use. Cheap to clone.
pub struct Collection<T> {
    client: Client,
    db: Arc<str>,
    name: Arc<str>,
    settings: Arc<Settings>,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        self.clone_with_type()
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collection({}.{})", self.db, self.name)
    }
}

impl<T> Collection<T> {
    pub(crate) fn new(client: Client, db: Arc<str>, name: &str, settings: Arc<Settings>) -> Self {
        Collection {
            client,
            db,
            name: name.into(),
            settings,
            _doc: PhantomData,
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's name.
    pub fn database_name(&self) -> &str {
        &self.db
    }

    /// `database.collection`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The same collection, read and written as `U`.
    pub fn clone_with_type<U>(&self) -> Collection<U> {
        Collection {
            client: self.client.clone(),
            db: self.db.clone(),
            name: self.name.clone(),
            settings: self.settings.clone(),
            _doc: PhantomData,
        }
    }

    /// This collection with another read preference for its reads.
    pub fn with_read_preference(&self, rp: ReadPreference) -> Collection<T> {
        self.with_criteria((&rp).into())
    }

    /// This collection with other selection criteria for its reads.
    pub(crate) fn with_criteria(&self, criteria: Criteria) -> Collection<T> {
        self.with(|s| s.criteria = Some(criteria))
    }

    /// This collection with `options`' selection criteria and concerns, where they are set.
    pub(crate) fn with_options(&self, options: &CollectionOptions) -> Collection<T> {
        let settings = self.settings.for_operation(
            options.selection_criteria.as_ref(),
            options.read_concern.as_ref(),
            options.write_concern.as_ref(),
        );
        match settings {
            Some(settings) => Collection {
                settings: Arc::new(settings),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    /// This collection with an operation's own selection criteria and concerns, where it sets
    /// any: the handle itself otherwise, without a copy.
    fn for_op(
        &self,
        criteria: Option<&SelectionCriteria>,
        read_concern: Option<&ReadConcern>,
        write_concern: Option<&WriteConcern>,
    ) -> Cow<'_, Collection<T>> {
        self.with_own(self.own_settings(criteria, read_concern, write_concern))
    }

    /// The settings an operation's own selection criteria and concerns make, when it sets any
    /// (made where its options are taken apart, on a driver stack for the hot paths).
    fn own_settings(
        &self,
        criteria: Option<&SelectionCriteria>,
        read_concern: Option<&ReadConcern>,
        write_concern: Option<&WriteConcern>,
    ) -> Option<Arc<Settings>> {
        self.settings
            .for_operation(criteria, read_concern, write_concern)
            .map(Arc::new)
    }

    /// This collection with `own` settings, or the handle itself.
    fn with_own(&self, own: Option<Arc<Settings>>) -> Cow<'_, Collection<T>> {
        match own {
            Some(settings) => Cow::Owned(Collection {
                settings,
                ..self.clone()
            }),
            None => Cow::Borrowed(self),
        }
    }

    /// This collection with another read concern.
    pub fn with_read_concern(&self, rc: ReadConcern) -> Collection<T> {
        self.with(|s| s.read_concern = Some(rc))
    }

    /// This collection with another write concern.
    pub fn with_write_concern(&self, wc: WriteConcern) -> Collection<T> {
        self.with(|s| s.write_concern = Some(wc))
    }

    /// This collection with a limit on each whole operation (server selection, the wait for
    /// a connection, the reply, any retry); `None` lifts it. A call that runs out gets
    /// [`ErrorKind::Timeout`].
    pub fn with_timeout(&self, timeout: Option<std::time::Duration>) -> Collection<T> {
        self.with(|s| s.timeout = timeout)
    }

    fn with(&self, f: impl FnOnce(&mut Settings)) -> Collection<T> {
        let mut settings = (*self.settings).clone();
        f(&mut settings);
        Collection {
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// A read command on this collection, with its read concern and preference.
    fn read<'a, O>(
        &'a self,
        name: &'static str,
        mut body: Document,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Result<O> {
        self.settings.read_concern_into(&mut body);
        self.client.execute_timed(
            &mut Command::read(
                name,
                &self.db,
                body,
                self.settings.criteria.as_ref(),
                handle,
            ),
            self.settings.timeout,
        )
    }

    /// A write command on this collection, with its write concern; `retry` says whether it is
    /// a retryable (single-statement) write.
    fn write<'a, O>(
        &'a self,
        name: &'static str,
        mut body: Document,
        retry: Retry,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Result<O> {
        if let Some(wc) = self.settings.write_concern_doc() {
            body.insert("writeConcern", wc);
        }
        self.client.execute_timed(
            &mut Command::write(name, &self.db, body, handle).retryable(retry),
            self.settings.timeout,
        )
    }

    /// A cursor command (`find`, `aggregate`, `listIndexes`): the first batch arrives with the
    /// reply; the cursor fetches the rest from the same server.
    fn cursor<U>(
        &self,
        name: &'static str,
        mut body: Document,
        read: bool,
        spec: CursorSpec,
    ) -> Result<Cursor<U>> {
        self.settings.read_concern_into(&mut body);
        let op = if read {
            let criteria = self.settings.criteria.as_ref();
            Command::read(name, &self.db, body, criteria, CursorStart::read)
        } else {
            // listIndexes is a read sent to the primary; an aggregate ending in $out or
            // $merge is a write, and not retryable.
            let retry = if name == "listIndexes" {
                Retry::Read
            } else {
                Retry::No
            };
            Command::write(name, &self.db, body, CursorStart::read).retryable(retry)
        };
        let spec = CursorSpec {
            timeout: self.settings.timeout,
            ..spec
        };
        Cursor::open(&self.client, op, spec)
    }

    /// Deletes the first document matching `filter`.
    pub fn delete_one(&self, filter: Document) -> Result<DeleteResult> {
        self.delete(filter, 1, DeleteOptions::default())
    }

    /// Deletes every document matching `filter`.
    pub fn delete_many(&self, filter: Document) -> Result<DeleteResult> {
        self.delete(filter, 0, DeleteOptions::default())
    }

    /// `delete_one` (`limit` 1) or `delete_many` (`limit` 0), with options.
    pub fn delete_with(
        &self,
        filter: Document,
        many: bool,
        options: DeleteOptions,
    ) -> Result<DeleteResult> {
        self.delete(filter, if many { 0 } else { 1 }, options)
    }

    fn delete(
        &self,
        filter: Document,
        limit: i32,
        mut options: DeleteOptions,
    ) -> Result<DeleteResult> {
        let write_concern = options.write_concern.take();
        let statement = delete_statement(filter, limit, &options);
        let mut body = doc! { "delete": &*self.name, "deletes": [statement], "ordered": true };
        put(&mut body, "let", options.let_vars);
        put(&mut body, "comment", options.comment);
        put(&mut body, "rawData", options.raw_data);
        let retry = if limit == 1 { Retry::Write } else { Retry::No };
        let reply = self.for_op(None, None, write_concern.as_ref()).write(
            "delete",
            body,
            retry,
            single_write_reply,
        )?;
        Ok(DeleteResult {
            deleted_count: reply.n,
        })
    }

    /// Updates the first document matching `filter` with update operators (or a pipeline,
    /// given as `Bson::Array`).
    pub fn update_one(
        &self,
        filter: Document,
        update: impl Into<Bson>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let update = update.into();
        check_update(&update)?;
        self.update(filter, update, false, options)
    }

    /// Updates every document matching `filter`.
    pub fn update_many(
        &self,
        filter: Document,
        update: impl Into<Bson>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let update = update.into();
        check_update(&update)?;
        self.update(filter, update, true, options)
    }

    fn update(
        &self,
        filter: Document,
        update: Bson,
        multi: bool,
        mut options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let mut body = doc! { "update": &*self.name, "ordered": true };
        let write_concern = options.write_concern.take();
        // Command-level fields move to the body; the rest go into the statement.
        put(&mut body, "let", options.let_vars.take());
        put(&mut body, "comment", options.comment.take());
        put(
            &mut body,
            "bypassDocumentValidation",
            options.bypass_document_validation,
        );
        put(&mut body, "rawData", options.raw_data);
        body.insert(
            "updates",
            [update_statement(filter, update, multi, options)],
        );
        let retry = if multi { Retry::No } else { Retry::Write };
        let reply = self.for_op(None, None, write_concern.as_ref()).write(
            "update",
            body,
            retry,
            single_write_reply,
        )?;
        let upserted_id = reply.upserted.into_iter().next().map(|(_, id)| id);
        Ok(UpdateResult {
            matched_count: reply.n - u64::from(upserted_id.is_some()),
            modified_count: reply.n_modified,
            upserted_id,
        })
    }

    /// Estimated count from the collection's metadata (the `count` command without a filter).
    pub fn estimated_document_count(&self) -> Result<u64> {
        self.estimated_document_count_with(EstimatedDocumentCountOptions::default())
    }

    /// `estimated_document_count` with a time limit or comment.
    pub fn estimated_document_count_with(
        &self,
        options: EstimatedDocumentCountOptions,
    ) -> Result<u64> {
        let mut body = doc! { "count": &*self.name };
        put(&mut body, "maxTimeMS", options.max_time.map(millis));
        put(&mut body, "comment", options.comment);
        put(&mut body, "rawData", options.raw_data);
        let coll = self.for_op(
            options.selection_criteria.as_ref(),
            options.read_concern.as_ref(),
            None,
        );
        coll.read("count", body, |r| {
            Ok(crate::conn::get_int(r, "n").unwrap_or(0) as u64)
        })
    }

    /// Counts the documents matching `filter` exactly (an aggregation).
    pub fn count_documents(&self, filter: Document, options: CountOptions) -> Result<u64> {
        let mut pipeline = vec![doc! { "$match": filter }];
        if let Some(skip) = options.skip {
            pipeline.push(doc! { "$skip": skip as i64 });
        }
        if let Some(limit) = options.limit {
            pipeline.push(doc! { "$limit": limit as i64 });
        }
        pipeline.push(doc! { "$group": { "_id": 1, "n": { "$sum": 1 } } });
        let mut body = doc! { "aggregate": &*self.name, "pipeline": pipeline, "cursor": {} };
        put(&mut body, "hint", options.hint);
        put(&mut body, "collation", options.collation);
        put(&mut body, "maxTimeMS", options.max_time.map(millis));
        put(&mut body, "comment", options.comment);
        put(&mut body, "rawData", options.raw_data);
        let coll = self.for_op(
            options.selection_criteria.as_ref(),
            options.read_concern.as_ref(),
            None,
        );
        coll.read("aggregate", body, |r| {
            let (_, _, batch) = crate::cursor::read_cursor(r, "firstBatch")?;
            let batch = RawDocument::from_bytes(batch)
                .map_err(|e| Error::protocol("server", e.to_string()))?;
            Ok(batch
                .get_document("0")
                .ok()
                .and_then(|d| crate::conn::get_int(d, "n"))
                .unwrap_or(0) as u64)
        })
    }

    /// The distinct values of `field` among documents matching `filter`.
    pub fn distinct(&self, field: &str, filter: Document) -> Result<Vec<Bson>> {
        self.distinct_with(field, filter, DistinctOptions::default())
    }

    /// `distinct` with options: collation, hint, time limit, comment.
    pub fn distinct_with(
        &self,
        field: &str,
        filter: Document,
        options: DistinctOptions,
    ) -> Result<Vec<Bson>> {
        let mut body = doc! { "distinct": &*self.name, "key": field, "query": filter };
        put(&mut body, "collation", options.collation);
        put(&mut body, "hint", options.hint);
        put(&mut body, "maxTimeMS", options.max_time.map(millis));
        put(&mut body, "comment", options.comment);
        put(&mut body, "rawData", options.raw_data);
        let coll = self.for_op(
            options.selection_criteria.as_ref(),
            options.read_concern.as_ref(),
            None,
        );
        coll.read("distinct", body, |r| {
            let values = r
                .get_array("values")
                .map_err(|_| crate::ops::malformed_reply("distinct", "no values"))?;
            values
                .into_iter()
                .map(|v| {
                    v.map_err(|e| Error::protocol("server", e.to_string()))
                        .and_then(crate::decode::to_bson)
                })
                .collect()
        })
    }

    /// Runs an aggregation pipeline; results as documents (`Cursor::with_type` is not needed:
    /// use [`aggregate_as`](Self::aggregate_as) for a typed cursor).
    pub fn aggregate(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> Result<Cursor<Document>> {
        self.aggregate_as(pipeline, options)
    }

    /// Runs an aggregation pipeline, its results read as `U`. A pipeline ending in `$out` or
    /// `$merge` writes: it goes to the primary with the collection's write concern.
    pub fn aggregate_as<U>(
        &self,
        pipeline: Vec<Document>,
        mut options: AggregateOptions,
    ) -> Result<Cursor<U>> {
        let (body, writes, spec, own) = crate::runtime::on_driver_stack(|| {
            // Taken through a reference: the closure holds no copy of the options.
            let mut options = std::mem::take(&mut options);
            let own = self.own_settings(
                options.selection_criteria.take().as_ref(),
                options.read_concern.take().as_ref(),
                options.write_concern.take().as_ref(),
            );
            let settings = own.as_deref().unwrap_or(&self.settings);
            let writes = ends_in_write_stage(&pipeline);
            let spec = CursorSpec {
                batch_size: options.batch_size,
                max_await_time: options.max_await_time,
                comment: options.comment.clone(),
                ..CursorSpec::default()
            };
            let mut body = aggregate_body(Bson::from(&*self.name), pipeline, options);
            if writes && let Some(wc) = settings.write_concern_doc() {
                body.insert("writeConcern", wc);
            }
            (body, writes, spec, own)
        });
        self.with_own(own).cursor("aggregate", body, !writes, spec)
    }

    /// Creates one index; returns its name.
    pub fn create_index(&self, index: IndexModel) -> Result<String> {
        Ok(self.create_indexes(vec![index])?.remove(0))
    }

    /// Creates several indexes in one command; returns their names.
    pub fn create_indexes(&self, indexes: Vec<IndexModel>) -> Result<Vec<String>> {
        // The specs are serialized on a driver stack: serde's frames for the index options
        // are large in an unoptimised build.
        let (names, body) = crate::runtime::on_driver_stack(move || -> Result<_> {
            let names: Vec<String> = indexes.iter().map(IndexModel::name).collect();
            let specs: Vec<Document> = indexes
                .into_iter()
                .zip(&names)
                .map(|(m, name)| m.into_spec(name))
                .collect::<Result<_>>()?;
            Ok((
                names,
                doc! { "createIndexes": &*self.name, "indexes": specs },
            ))
        })?;
        self.write("createIndexes", body, Retry::No, |_| Ok(()))?;
        Ok(names)
    }

    /// Drops the index called `name`.
    pub fn drop_index(&self, name: &str) -> Result<()> {
        self.write(
            "dropIndexes",
            doc! { "dropIndexes": &*self.name, "index": name },
            Retry::No,
            |_| Ok(()),
        )
    }

    /// Drops every index but `_id`'s.
    pub fn drop_indexes(&self) -> Result<()> {
        self.write(
            "dropIndexes",
            doc! { "dropIndexes": &*self.name, "index": "*" },
            Retry::No,
            |_| Ok(()),
        )
    }

    /// The collection's indexes.
    pub fn list_indexes(&self) -> Result<Cursor<Document>> {
        self.cursor(
            "listIndexes",
            doc! { "listIndexes": &*self.name, "cursor": {} },
            false,
            CursorSpec::default(),
        )
    }

    /// Creates one Atlas Search (or Vector Search) index; returns its name (the server names
    /// an unnamed one `default`).
    ///
    /// Atlas builds search indexes in the background: the call returns once the server has
    /// taken the request, and the index is usable when
    /// [`list_search_indexes`](Self::list_search_indexes) reports it `queryable`. A server
    /// without Atlas Search (a plain mongod, FerretDB, ...) answers with an error.
    pub fn create_search_index(&self, model: SearchIndexModel) -> Result<String> {
        let mut names = self.create_search_indexes([model])?;
        match names.len() {
            1 => Ok(names.remove(0)),
            n => Err(crate::ops::malformed_reply(
                "createSearchIndexes",
                format!("{n} names in indexesCreated for one index"),
            )),
        }
    }

    /// Creates several Atlas Search indexes in one `createSearchIndexes` command; returns
    /// their names, in the order the server reports them (`indexesCreated`). Sent to the
    /// primary, not retried, and without read or write concern, which these commands refuse
    /// (the Index Management spec forbids them).
    pub fn create_search_indexes(
        &self,
        models: impl IntoIterator<Item = SearchIndexModel>,
    ) -> Result<Vec<String>> {
        let indexes: Vec<Document> = models
            .into_iter()
            .map(SearchIndexModel::into_command_entry)
            .collect();
        let body = doc! { "createSearchIndexes": &*self.name, "indexes": indexes };
        self.unconcerned()
            .write("createSearchIndexes", body, Retry::No, |r| {
                let malformed =
                    |what: &str| crate::ops::malformed_reply("createSearchIndexes", what);
                let created = r
                    .get_array("indexesCreated")
                    .map_err(|_| malformed("no indexesCreated"))?;
                created
                    .into_iter()
                    .map(|entry| {
                        entry
                            .ok()
                            .and_then(|e| e.as_document())
                            .and_then(|e| e.get_str("name").ok())
                            .map(String::from)
                            .ok_or_else(|| malformed("an indexesCreated entry without a name"))
                    })
                    .collect()
            })
    }

    /// Drops the Atlas Search index called `name`. A missing collection (`NamespaceNotFound`)
    /// is success: the Index Management spec makes the drop idempotent. Sent without read or
    /// write concern.
    pub fn drop_search_index(&self, name: &str) -> Result<()> {
        let body = doc! { "dropSearchIndex": &*self.name, "name": name };
        match self
            .unconcerned()
            .write("dropSearchIndex", body, Retry::No, |_| Ok(()))
        {
            Err(e) if e.is_ns_not_found() => Ok(()),
            other => other,
        }
    }

    /// Replaces the definition of the Atlas Search index called `name` with `definition`
    /// (rebuilt in the background, like a new one). Sent without read or write concern.
    pub fn update_search_index(&self, name: &str, definition: Document) -> Result<()> {
        let body = doc! {
            "updateSearchIndex": &*self.name,
            "name": name,
            "definition": definition,
        };
        self.unconcerned()
            .write("updateSearchIndex", body, Retry::No, |_| Ok(()))
    }

    /// The collection's Atlas Search indexes, or only the one called `name`: an aggregation
    /// whose pipeline is `[{ $listSearchIndexes: { name } }]` (an empty stage without a name),
    /// run with `options` as any `aggregate` (`batch_size`, `comment`, `max_time`, ...) and
    /// with the collection's read preference, but without its read or write concern. Each
    /// document describes one index: `name`,
    /// `status`, `queryable`, `latestDefinition`, ...
    pub fn list_search_indexes(
        &self,
        name: Option<&str>,
        options: AggregateOptions,
    ) -> Result<Cursor<Document>> {
        let mut stage = Document::new();
        put(&mut stage, "name", name);
        self.unconcerned()
            .aggregate(vec![doc! { "$listSearchIndexes": stage }], options)
    }

    /// This collection with neither read concern nor write concern, for the Atlas Search
    /// index commands.
    ///
    /// mongod hands those commands to the Atlas Search process beside it, where a concern
    /// means nothing, and they fail when a `readConcern` or `writeConcern` field is present;
    /// the Index Management spec says drivers must not send either. The helpers would add
    /// them from the settings (`write` the write concern, `cursor` under `aggregate` the
    /// read concern), so these commands go through a handle whose settings have none. The
    /// read preference and the timeout stay. A `None` concern here sends nothing: the
    /// client's and database's defaults were already resolved into `Settings`.
    fn unconcerned(&self) -> Collection<T> {
        self.with(|s| {
            s.read_concern = None;
            s.write_concern = None;
        })
    }

    /// Drops the collection (a missing collection is not an error).
    pub fn drop(&self) -> Result<()> {
        match self.write("drop", doc! { "drop": &*self.name }, Retry::No, |_| Ok(())) {
            Err(e) if e.is_ns_not_found() => Ok(()),
            other => other,
        }
    }
}

impl<T: Serialize> Collection<T> {
    /// Inserts one document. If it has no `_id`, the driver adds an ObjectId and returns it.
    /// A document over the server's `maxBsonObjectSize` is refused before anything is sent.
    pub fn insert_one(&self, doc: impl Borrow<T>) -> Result<InsertOneResult> {
        self.insert_one_with(doc, InsertOneOptions::default())
    }

    /// `insert_one` with options (bypass validation, comment).
    pub fn insert_one_with(
        &self,
        doc: impl Borrow<T>,
        options: InsertOneOptions,
    ) -> Result<InsertOneResult> {
        let inserted = self.client.execute_timed(
            &mut InsertOne::new(
                &self.db,
                &self.name,
                doc.borrow(),
                self.settings.write_concern.as_ref(),
                options,
            ),
            self.settings.timeout,
        );
        crate::runtime::drop_on_driver_stack(doc);
        inserted
    }

    /// Inserts many documents, in as few commands as the server's limits allow (each a
    /// document sequence of at most `maxWriteBatchSize` documents and `maxMessageSizeBytes`). `ordered`
    /// stops at the first failure; unordered goes on. Failures come back as
    /// [`ErrorKind::InsertMany`] with each failed document's index and what was inserted.
    pub fn insert_many(&self, docs: &[T], ordered: bool) -> Result<InsertManyResult> {
        let options = InsertManyOptions {
            ordered: Some(ordered),
            ..InsertManyOptions::default()
        };
        self.insert_many_with(docs, options)
    }

    /// `insert_many` with options (ordered, bypass validation, comment).
    pub fn insert_many_with(
        &self,
        docs: &[T],
        options: InsertManyOptions,
    ) -> Result<InsertManyResult> {
        let ordered = options.ordered.unwrap_or(true);
        let mut extra = Document::new();
        put(
            &mut extra,
            "bypassDocumentValidation",
            options.bypass_document_validation,
        );
        put(&mut extra, "comment", options.comment);
        put(&mut extra, "rawData", options.raw_data);
        let write_concern = match &options.write_concern {
            Some(wc) => wc.command_field(),
            None => self.settings.write_concern_doc(),
        };
        put(&mut extra, "writeConcern", write_concern);
        if docs.is_empty() {
            return Err(Error::invalid_argument(
                "insert_many needs at least one document",
            ));
        }
        let mut result = InsertManyResult::default();
        let mut errors = Vec::new();
        let mut wc_error = None;
        let mut start = 0;
        while start < docs.len() {
            let mut batch = InsertBatch {
                db: &self.db,
                coll: &self.name,
                docs,
                start,
                ordered,
                extra: &extra,
                ids: Vec::new(),
            };
            let (ids, mut reply) = self
                .client
                .execute_timed(&mut batch, self.settings.timeout)?;
            let sent = ids.len();
            for (i, id) in ids.into_iter().enumerate() {
                if reply.applied(i, ordered) {
                    result.inserted_ids.insert(start + i, id);
                }
            }
            errors.extend(reply.take_errors(start));
            wc_error = wc_error.or(reply.write_concern_error);
            if ordered && !errors.is_empty() {
                break;
            }
            start += sent;
        }
        if errors.is_empty() && wc_error.is_none() {
            return Ok(result);
        }
        Err(ErrorKind::InsertMany(InsertManyError {
            write_errors: (!errors.is_empty()).then_some(errors),
            write_concern_error: wc_error,
            inserted_ids: result.inserted_ids.into_iter().collect(),
        })
        .into())
    }

    /// Replaces the first document matching `filter` with `replacement`.
    pub fn replace_one(
        &self,
        filter: Document,
        replacement: impl Borrow<T>,
        options: UpdateOptions,
    ) -> Result<UpdateResult> {
        let replacement = crate::runtime::on_driver_stack(move || -> Result<Document> {
            let replacement = to_document(replacement.borrow())?;
            check_replacement(&replacement)?;
            Ok(replacement)
        })?;
        self.update(filter, Bson::Document(replacement), false, options)
    }

    /// Runs a mix of inserts, updates, replaces and deletes, in order or not. Consecutive
    /// models of one kind travel in one command. A failure is
    /// [`ErrorKind::CollectionBulkWrite`], each error carrying its model's index, with the
    /// partial result.
    pub fn bulk_write(&self, models: Vec<WriteModel<T>>, ordered: bool) -> Result<BulkWriteResult> {
        let options = BulkWriteOptions {
            ordered: Some(ordered),
            ..BulkWriteOptions::default()
        };
        self.bulk_write_with(models, options)
    }

    /// `bulk_write` with options: ordered, bypass validation, `let` variables, comment.
    pub fn bulk_write_with(
        &self,
        models: Vec<WriteModel<T>>,
        options: BulkWriteOptions,
    ) -> Result<BulkWriteResult> {
        let ordered = options.ordered.unwrap_or(true);
        if models.is_empty() {
            return Err(Error::invalid_argument(
                "bulk_write needs at least one model",
            ));
        }
        let mut result = BulkWriteResult::default();
        let mut errors: Vec<IndexedWriteError> = Vec::new();
        let mut wc_error = None;
        let mut i = 0;
        while i < models.len() {
            // A run of models going into one command.
            let kind = model_kind(&models[i]);
            let end = models[i..]
                .iter()
                .position(|m| model_kind(m) != kind)
                .map_or(models.len(), |p| i + p);
            let run = &models[i..end];
            let (statements, ids): (Vec<Document>, Vec<Option<Bson>>) = run
                .iter()
                .map(statement)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let (name, key) = match kind {
                0 => ("insert", "documents"),
                1 => ("update", "updates"),
                _ => ("delete", "deletes"),
            };
            let mut body = doc! { name: &*self.name, "ordered": ordered };
            if kind != 2 {
                put(
                    &mut body,
                    "bypassDocumentValidation",
                    options.bypass_document_validation,
                );
            }
            if kind != 0 {
                put(&mut body, "let", options.let_vars.clone());
            }
            put(&mut body, "comment", options.comment.clone());
            put(&mut body, "rawData", options.raw_data);
            body.insert(key, statements);
            // A run of inserts, or of updates and deletes of one document each, is retryable.
            let retry = if run.iter().all(single_statement) {
                Retry::Write
            } else {
                Retry::No
            };
            let mut reply = self.write(name, body, retry, read_write_reply)?;
            match kind {
                0 => {
                    for (j, id) in ids.into_iter().enumerate() {
                        if reply.applied(j, ordered) {
                            result.inserted_ids.insert(i + j, id.unwrap_or(Bson::Null));
                        }
                    }
                    result.inserted_count += reply.n;
                }
                1 => {
                    result.matched_count += reply.n - reply.upserted.len() as u64;
                    result.modified_count += reply.n_modified;
                    result.upserted_count += reply.upserted.len() as u64;
                    for (j, id) in std::mem::take(&mut reply.upserted) {
                        result.upserted_ids.insert(i + j, id);
                    }
                }
                _ => result.deleted_count += reply.n,
            }
            errors.extend(reply.take_errors(i));
            wc_error = wc_error.or(reply.write_concern_error);
            if ordered && !errors.is_empty() {
                break;
            }
            i = end;
        }
        if errors.is_empty() && wc_error.is_none() {
            return Ok(result);
        }
        Err(bulk_failure(result, errors, wc_error))
    }
}

impl<T: DeserializeOwned + 'static> Collection<T> {
    /// The first document matching `filter`, or `None`.
    pub fn find_one(&self, filter: Document) -> Result<Option<T>> {
        if self.settings.criteria.is_none() && self.settings.read_concern.is_none() {
            // The hot path: a dedicated operation that decodes only the one document.
            return self.client.execute_timed(
                &mut FindOne::new(&self.db, &self.name, filter),
                self.settings.timeout,
            );
        }
        self.find_one_general(filter)
    }

    /// `find_one` with a read concern or preference: a `find` cursor. Kept out of line: the
    /// hot path's frame stays small, and it is on the stack of every coroutine parked inside
    /// `find_one` (10,000 of them at once in the benchmark: a page more each is 40 MB).
    #[cold]
    #[inline(never)]
    fn find_one_general(&self, filter: Document) -> Result<Option<T>> {
        self.find_one_built(move || (filter, FindOptions::default()))
    }

    /// The first document matching `filter` under `options` (projection, sort, skip, ...;
    /// `limit` and `batch_size` are set to one batch of one).
    pub fn find_one_with(&self, filter: Document, options: FindOptions) -> Result<Option<T>> {
        self.find_one_built(move || (filter, options))
    }

    /// [`find_one_with`](Self::find_one_with) of the filter and options `query` makes, which
    /// it makes on a driver stack: the driver's own queries (GridFS's) keep their options out
    /// of the frames that wait.
    pub(crate) fn find_one_built(
        &self,
        query: impl FnOnce() -> (Document, FindOptions),
    ) -> Result<Option<T>> {
        self.find_built(|| {
            let (filter, options) = query();
            let options = FindOptions {
                limit: Some(-1),
                batch_size: None,
                ..options
            };
            (filter, options)
        })?
        .next()
        .transpose()
    }

    /// Every document matching `filter`, as a cursor.
    pub fn find(&self, filter: Document) -> Result<Cursor<T>> {
        // The default options are made on the driver stack, not in this frame.
        self.find_built(move || (filter, FindOptions::default()))
    }

    /// `find` with options: projection, sort, skip, limit, batch size, hint, ...
    pub fn find_with(&self, filter: Document, options: FindOptions) -> Result<Cursor<T>> {
        self.find_built(move || (filter, options))
    }

    /// [`find_with`](Self::find_with) of the filter and options `query` makes. The command is
    /// built on a driver stack (see `runtime::on_driver_stack`): only the wait for a server
    /// and a connection needs the caller's.
    pub(crate) fn find_built(
        &self,
        query: impl FnOnce() -> (Document, FindOptions),
    ) -> Result<Cursor<T>> {
        let (body, spec, own) = crate::runtime::on_driver_stack(|| {
            let (filter, mut options) = query();
            let own = self.own_settings(
                options.selection_criteria.take().as_ref(),
                options.read_concern.take().as_ref(),
                None,
            );
            let (body, spec) = self.find_command(filter, options);
            (body, spec, own)
        });
        self.with_own(own).cursor("find", body, true, spec)
    }

    /// `find`'s command and what its cursor needs to know.
    fn find_command(&self, filter: Document, options: FindOptions) -> (Document, CursorSpec) {
        let mut body = doc! { "find": &*self.name, "filter": filter };
        let o = &options;
        if let Some(p) = &o.projection {
            body.insert("projection", p.clone());
        }
        if let Some(s) = &o.sort {
            body.insert("sort", s.clone());
        }
        if let Some(s) = o.skip {
            body.insert("skip", s as i64);
        }
        if let Some(l) = o.limit {
            if l < 0 {
                body.insert("singleBatch", true);
            }
            if l != 0 {
                body.insert("limit", l.abs());
            }
        }
        if let Some(b) = o.batch_size {
            // A batch as large as the limit would leave the cursor open for a getMore that
            // can only return nothing; one more lets the server close it (the find spec).
            let b = i64::from(b);
            let b = if o.limit == Some(b) { b + 1 } else { b };
            body.insert("batchSize", b);
        }
        put(&mut body, "hint", o.hint.clone());
        if let Some(t) = o.max_time {
            body.insert("maxTimeMS", t.as_millis() as i64);
        }
        if let Some(c) = &o.comment {
            body.insert("comment", c.clone());
        }
        if let Some(a) = o.allow_disk_use {
            body.insert("allowDiskUse", a);
        }
        put(&mut body, "collation", o.collation.clone());
        put(&mut body, "let", o.let_vars.clone());
        put(&mut body, "rawData", o.raw_data);
        put(&mut body, "max", o.max.clone());
        put(&mut body, "min", o.min.clone());
        put(&mut body, "returnKey", o.return_key);
        put(&mut body, "showRecordId", o.show_record_id);
        put(&mut body, "noCursorTimeout", o.no_cursor_timeout);
        put(&mut body, "allowPartialResults", o.allow_partial_results);
        let cursor_type = o.cursor_type.unwrap_or_default();
        match cursor_type {
            CursorType::NonTailable => {}
            CursorType::Tailable => {
                body.insert("tailable", true);
            }
            CursorType::TailableAwait => {
                body.insert("tailable", true);
                body.insert("awaitData", true);
            }
        }
        let spec = CursorSpec {
            batch_size: o.batch_size,
            limit: o.limit.map(i64::abs),
            cursor_type,
            max_await_time: o.max_await_time,
            get_more_max_time: None,
            comment: o.comment.clone(),
            timeout: None, // set by `cursor`
        };
        (body, spec)
    }

    /// Deletes the first document matching `filter` and returns it.
    pub fn find_one_and_delete(
        &self,
        filter: Document,
        options: FindOneAndDeleteOptions,
    ) -> Result<Option<T>> {
        let (body, own) = crate::runtime::on_driver_stack(|| {
            let mut options = FindAndModifyOptions::from(options);
            let own = self.own_settings(None, None, options.write_concern.take().as_ref());
            let body = self.find_and_modify_command(filter, doc! { "remove": true }, options);
            (body, own)
        });
        self.find_and_modify(body, own)
    }

    /// Updates the first document matching `filter`; returns it before or after.
    pub fn find_one_and_update(
        &self,
        filter: Document,
        update: impl Into<Bson>,
        options: FindOneAndUpdateOptions,
    ) -> Result<Option<T>> {
        let update = update.into();
        let (body, own) = crate::runtime::on_driver_stack(|| -> Result<_> {
            check_update(&update)?;
            let mut options = FindAndModifyOptions::from(options);
            let own = self.own_settings(None, None, options.write_concern.take().as_ref());
            let mut extra = doc! { "update": update };
            if let Some(filters) = options.array_filters.take() {
                extra.insert("arrayFilters", filters);
            }
            Ok((self.find_and_modify_command(filter, extra, options), own))
        })?;
        self.find_and_modify(body, own)
    }

    /// Replaces the first document matching `filter`; returns it before or after.
    pub fn find_one_and_replace(
        &self,
        filter: Document,
        replacement: impl Serialize,
        options: FindOneAndReplaceOptions,
    ) -> Result<Option<T>> {
        let (body, own) = crate::runtime::on_driver_stack(move || -> Result<_> {
            let replacement = to_document(&replacement)?;
            check_replacement(&replacement)?;
            let mut options = FindAndModifyOptions::from(options);
            let own = self.own_settings(None, None, options.write_concern.take().as_ref());
            let change = doc! { "update": replacement };
            Ok((self.find_and_modify_command(filter, change, options), own))
        })?;
        self.find_and_modify(body, own)
    }

    /// Runs a `findAndModify` command (with the operation's own write concern, if any); the
    /// document it returns is decoded on a driver stack, like every reply.
    fn find_and_modify(&self, body: Document, own: Option<Arc<Settings>>) -> Result<Option<T>> {
        self.with_own(own)
            .write("findAndModify", body, Retry::Write, |r| {
                match r.get("value") {
                    Ok(Some(bson::RawBsonRef::Document(d))) => crate::decode::decode(d).map(Some),
                    _ => Ok(None),
                }
            })
    }

    /// The `findAndModify` command: `filter`, the change (`update` or `remove`) and options.
    fn find_and_modify_command(
        &self,
        filter: Document,
        change: Document,
        options: FindAndModifyOptions,
    ) -> Document {
        let remove = change.contains_key("remove");
        let mut body = doc! { "findAndModify": &*self.name, "query": filter };
        body.extend(change);
        if !remove {
            let after = options.return_document == Some(ReturnDocument::After);
            body.insert("new", after);
            if let Some(u) = options.upsert {
                body.insert("upsert", u);
            }
        }
        put(&mut body, "sort", options.sort);
        put(&mut body, "fields", options.projection);
        put(&mut body, "hint", options.hint);
        put(&mut body, "collation", options.collation);
        put(&mut body, "let", options.let_vars);
        put(&mut body, "comment", options.comment);
        put(&mut body, "maxTimeMS", options.max_time.map(millis));
        put(&mut body, "rawData", options.raw_data);
        if !remove {
            put(
                &mut body,
                "bypassDocumentValidation",
                options.bypass_document_validation,
            );
        }
        body
    }
}

/// A one-statement write's reply, its write error or write concern error raised inside the
/// executor (which may retry after a retryable write concern error).
fn single_write_reply(reply: &RawDocument) -> Result<crate::ops::WriteReply> {
    let reply = read_write_reply(reply)?;
    reply.single_result()?;
    Ok(reply)
}

/// True for a model that writes at most one document (retryable).
fn single_statement<T>(m: &WriteModel<T>) -> bool {
    !matches!(
        m,
        WriteModel::UpdateMany { .. } | WriteModel::DeleteMany { .. }
    )
}

/// The command kind of a model: 0 insert, 1 update/replace, 2 delete.
fn model_kind<T>(m: &WriteModel<T>) -> u8 {
    match m {
        WriteModel::InsertOne(_) => 0,
        WriteModel::UpdateOne { .. }
        | WriteModel::UpdateMany { .. }
        | WriteModel::ReplaceOne { .. } => 1,
        WriteModel::DeleteOne { .. } | WriteModel::DeleteMany { .. } => 2,
    }
}

/// A model as its command's statement, and the `_id` of an inserted document.
fn statement<T: Serialize>(m: &WriteModel<T>) -> Result<(Document, Option<Bson>)> {
    Ok(match m {
        WriteModel::InsertOne(doc) => {
            let (d, id) = with_id(to_document(doc)?);
            (d, Some(id))
        }
        WriteModel::UpdateOne {
            filter,
            update,
            options,
        }
        | WriteModel::UpdateMany {
            filter,
            update,
            options,
        } => {
            check_update(update)?;
            check_model_options(options.has_command_fields())?;
            let multi = matches!(m, WriteModel::UpdateMany { .. });
            let options = UpdateOptions {
                upsert: Some(options.upsert.unwrap_or(false)),
                ..options.clone()
            };
            let s = update_statement(filter.clone(), update.clone(), multi, options);
            (s, None)
        }
        WriteModel::ReplaceOne {
            filter,
            replacement,
            options,
        } => {
            let r = to_document(replacement)?;
            check_replacement(&r)?;
            check_model_options(options.has_command_fields())?;
            let options = UpdateOptions {
                upsert: Some(options.upsert.unwrap_or(false)),
                ..options.clone()
            };
            let s = update_statement(filter.clone(), Bson::Document(r), false, options);
            (s, None)
        }
        WriteModel::DeleteOne { filter, options } | WriteModel::DeleteMany { filter, options } => {
            check_model_options(options.has_command_fields())?;
            let limit = if matches!(m, WriteModel::DeleteOne { .. }) {
                1
            } else {
                0
            };
            (delete_statement(filter.clone(), limit, options), None)
        }
    })
}

/// A new ObjectId, made on a driver stack: the first one in a process, and the first on each
/// thread, seed bson's random number generator, which took 40 KiB of stack unoptimised.
pub(crate) fn object_id() -> bson::oid::ObjectId {
    crate::runtime::on_driver_stack(bson::oid::ObjectId::new)
}

/// A document to insert, with its `_id`: its own, or a new ObjectId put first (where the
/// server would put it).
pub(crate) fn with_id(mut document: Document) -> (Document, Bson) {
    if let Some(id) = document.get("_id") {
        let id = id.clone();
        return (document, id);
    }
    let id = Bson::ObjectId(object_id());
    let mut with_id = doc! { "_id": id.clone() };
    with_id.extend(std::mem::take(&mut document));
    (with_id, id)
}

/// An update command's statement: `q`, `u`, `multi` and the statement-level options.
fn update_statement(filter: Document, update: Bson, multi: bool, o: UpdateOptions) -> Document {
    let mut statement = doc! { "q": filter, "u": update, "multi": multi };
    put_update_options(&mut statement, o);
    statement
}

/// An update's statement-level options, wherever its statement lives (an `update` command's
/// `updates`, a `bulkWrite` command's `ops`).
pub(crate) fn put_update_options(statement: &mut Document, o: UpdateOptions) {
    put(statement, "upsert", o.upsert);
    put(statement, "arrayFilters", o.array_filters);
    put(statement, "hint", o.hint);
    put(statement, "collation", o.collation);
    put(statement, "sort", o.sort);
}

/// A delete command's statement: `q`, `limit` (1 or 0 for all) and the statement-level options.
fn delete_statement(filter: Document, limit: i32, o: &DeleteOptions) -> Document {
    let mut statement = doc! { "q": filter, "limit": limit };
    put_delete_options(&mut statement, o);
    statement
}

/// A delete's statement-level options (see [`put_update_options`]).
pub(crate) fn put_delete_options(statement: &mut Document, o: &DeleteOptions) {
    put(statement, "hint", o.hint.clone());
    put(statement, "collation", o.collation.clone());
}

/// A bulk write's models carry statement options only; `let`, `comment`,
/// `bypassDocumentValidation` and the write concern belong to the whole command.
pub(crate) fn check_model_options(has_command_fields: bool) -> Result<()> {
    if has_command_fields {
        return Err(Error::invalid_argument(
            "a bulk write model takes statement options only; set let, comment, \
             bypass_document_validation and raw_data on BulkWriteOptions, and the write \
             concern on the collection",
        ));
    }
    Ok(())
}

/// The `aggregate` command for `target` (a collection name, or 1 for a database).
pub(crate) fn aggregate_body(
    target: Bson,
    pipeline: Vec<Document>,
    options: AggregateOptions,
) -> Document {
    let mut cursor = Document::new();
    // A pipeline that ends in `$out` or `$merge` returns no documents, and a `batchSize: 0`
    // there would ask the server for an empty first batch of nothing: the CRUD spec has
    // drivers leave it out (the server then runs the whole pipeline in the first call).
    if !ends_in_write_stage(&pipeline) {
        put(
            &mut cursor,
            "batchSize",
            options.batch_size.map(|b| b as i32),
        );
    }
    let mut body = doc! { "aggregate": target, "pipeline": pipeline, "cursor": cursor };
    put(&mut body, "allowDiskUse", options.allow_disk_use);
    put(&mut body, "maxTimeMS", options.max_time.map(millis));
    put(&mut body, "comment", options.comment);
    put(&mut body, "hint", options.hint);
    put(&mut body, "collation", options.collation);
    put(&mut body, "let", options.let_vars);
    put(
        &mut body,
        "bypassDocumentValidation",
        options.bypass_document_validation,
    );
    put(&mut body, "rawData", options.raw_data);
    body
}

/// A pipeline whose last stage is `$out` or `$merge` writes, so it must run on the primary.
pub(crate) fn ends_in_write_stage(pipeline: &[Document]) -> bool {
    pipeline
        .last()
        .is_some_and(|stage| stage.contains_key("$out") || stage.contains_key("$merge"))
}

/// Sets `key` when the option has a value; `None` leaves the server's default.
pub(crate) fn put(body: &mut Document, key: &str, value: Option<impl Into<Bson>>) {
    if let Some(v) = value {
        body.insert(key, v.into());
    }
}

/// `maxTimeMS` from a duration.
fn millis(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// A failed `bulk_write`: [`ErrorKind::CollectionBulkWrite`] with every error and what did
/// succeed.
fn bulk_failure(
    partial_result: BulkWriteResult,
    write_errors: Vec<IndexedWriteError>,
    write_concern_error: Option<WriteConcernError>,
) -> Error {
    ErrorKind::CollectionBulkWrite(Box::new(BulkWriteFailure {
        write_errors,
        write_concern_error,
        partial_result,
    }))
    .into()
}

/// `value` as a `Document`, converted on a driver stack (serde recurses as deep as the value).
pub(crate) fn to_document<T: Serialize>(value: &T) -> Result<Document> {
    crate::runtime::on_driver_stack(|| {
        let raw: RawDocumentBuf = bson::serialize_to_raw_document_buf(value).map_err(Error::ser)?;
        crate::decode::to_document(&raw)
    })
}

/// An update is operators (every key starts with `$`) or a pipeline.
pub(crate) fn check_update(update: &Bson) -> Result<()> {
    match update {
        Bson::Document(d) if !d.is_empty() && d.keys().all(|k| k.starts_with('$')) => Ok(()),
        Bson::Array(_) => Ok(()),
        _ => Err(Error::invalid_argument(
            "an update must be a non-empty document of update operators ($set, ...) or a pipeline",
        )),
    }
}

/// A replacement has no update operators.
pub(crate) fn check_replacement(doc: &Document) -> Result<()> {
    match doc.keys().next() {
        Some(k) if k.starts_with('$') => Err(Error::invalid_argument(
            "a replacement document must not contain update operators",
        )),
        _ => Ok(()),
    }
}
