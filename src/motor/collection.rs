//! The async collection: every operation of the blocking [`Collection`], as a future.
//!
//! Each method clones the (cheap) blocking handle and its arguments into a job, and the
//! runner runs the blocking method there. Arguments are taken by value, since the job
//! outlives the call.

use bson::{Bson, Document};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{AsyncCursor, AsyncOp, Runner};
use crate::{
    AggregateOptions, BulkWriteOptions, BulkWriteResult, Collection, CountOptions, DeleteOptions,
    DeleteResult, DistinctOptions, EstimatedDocumentCountOptions, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOneOptions, FindOptions, IndexModel,
    InsertManyOptions, InsertManyResult, InsertOneOptions, InsertOneResult, ReadConcern,
    ReadPreference, ReplaceOptions, SearchIndexModel, UpdateOptions, UpdateResult, WriteConcern,
    WriteModel,
};

/// An async handle on a [`Collection<T>`] (no I/O to make one).
#[derive(Debug)]
pub struct AsyncCollection<T> {
    pub(crate) inner: Collection<T>,
    pub(crate) runner: Runner,
}

impl<T> Clone for AsyncCollection<T> {
    fn clone(&self) -> Self {
        AsyncCollection {
            inner: self.inner.clone(),
            runner: self.runner.clone(),
        }
    }
}

/// Clones the blocking collection into a job running `$body` with it as `$c`.
macro_rules! job {
    ($self:ident, |$c:ident| $body:expr) => {{
        let $c = $self.inner.clone();
        $self.runner.run(move || $body)
    }};
}

impl<T> AsyncCollection<T> {
    /// The collection's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// `database.collection`.
    pub fn namespace(&self) -> String {
        self.inner.namespace()
    }

    /// The blocking handle underneath.
    pub fn blocking(&self) -> &Collection<T> {
        &self.inner
    }

    /// The same collection, its documents read as `U`.
    pub fn clone_with_type<U>(&self) -> AsyncCollection<U> {
        AsyncCollection {
            inner: self.inner.clone_with_type(),
            runner: self.runner.clone(),
        }
    }

    /// The same collection with another read preference.
    pub fn with_read_preference(&self, rp: ReadPreference) -> AsyncCollection<T> {
        self.wrap(self.inner.with_read_preference(rp))
    }

    /// The same collection with another read concern.
    pub fn with_read_concern(&self, rc: ReadConcern) -> AsyncCollection<T> {
        self.wrap(self.inner.with_read_concern(rc))
    }

    /// The same collection with another write concern.
    pub fn with_write_concern(&self, wc: WriteConcern) -> AsyncCollection<T> {
        self.wrap(self.inner.with_write_concern(wc))
    }

    fn wrap(&self, inner: Collection<T>) -> AsyncCollection<T> {
        AsyncCollection {
            inner,
            runner: self.runner.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> AsyncCollection<T> {
    /// Deletes the first document matching `filter`.
    pub fn delete_one(&self, filter: Document) -> AsyncOp<DeleteResult> {
        job!(self, |c| c.delete_one(filter).run())
    }

    /// Deletes every document matching `filter`.
    pub fn delete_many(&self, filter: Document) -> AsyncOp<DeleteResult> {
        job!(self, |c| c.delete_many(filter).run())
    }

    /// `delete_one` or `delete_many` with options.
    pub fn delete_with(
        &self,
        filter: Document,
        many: bool,
        options: DeleteOptions,
    ) -> AsyncOp<DeleteResult> {
        job!(self, |c| if many {
            c.delete_many(filter)
        } else {
            c.delete_one(filter)
        }
        .with_options(options)
        .run())
    }

    /// Updates the first document matching `filter`.
    pub fn update_one(
        &self,
        filter: Document,
        update: impl Into<crate::UpdateModifications>,
        options: UpdateOptions,
    ) -> AsyncOp<UpdateResult> {
        let update = update.into();
        job!(self, |c| c
            .update_one(filter, update)
            .with_options(options)
            .run())
    }

    /// Updates every document matching `filter`.
    pub fn update_many(
        &self,
        filter: Document,
        update: impl Into<crate::UpdateModifications>,
        options: UpdateOptions,
    ) -> AsyncOp<UpdateResult> {
        let update = update.into();
        job!(self, |c| c
            .update_many(filter, update)
            .with_options(options)
            .run())
    }

    /// The count from the collection's metadata.
    pub fn estimated_document_count(&self) -> AsyncOp<u64> {
        job!(self, |c| c.estimated_document_count().run())
    }

    /// The count from the collection's metadata, with options.
    pub fn estimated_document_count_with(
        &self,
        options: EstimatedDocumentCountOptions,
    ) -> AsyncOp<u64> {
        job!(self, |c| c
            .estimated_document_count()
            .with_options(options)
            .run())
    }

    /// Counts the documents matching `filter`.
    pub fn count_documents(&self, filter: Document, options: CountOptions) -> AsyncOp<u64> {
        job!(self, |c| c
            .count_documents(filter)
            .with_options(options)
            .run())
    }

    /// The distinct values of `field` among documents matching `filter`.
    pub fn distinct(&self, field: &str, filter: Document) -> AsyncOp<Vec<Bson>> {
        let field = field.to_string();
        job!(self, |c| c.distinct(&field, filter).run())
    }

    /// `distinct` with options.
    pub fn distinct_with(
        &self,
        field: &str,
        filter: Document,
        options: DistinctOptions,
    ) -> AsyncOp<Vec<Bson>> {
        let field = field.to_string();
        job!(self, |c| c
            .distinct(&field, filter)
            .with_options(options)
            .run())
    }

    /// Runs an aggregation pipeline; results as a stream of documents.
    pub fn aggregate(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> AsyncOp<AsyncCursor<Document>> {
        self.aggregate_as(pipeline, options)
    }

    /// Runs an aggregation pipeline, its results read as `U`.
    pub fn aggregate_as<U: DeserializeOwned + Send + 'static>(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> AsyncOp<AsyncCursor<U>> {
        let runner = self.runner.clone();
        job!(self, |c| c
            .aggregate(pipeline)
            .with_options(options)
            .with_type::<U>()
            .run()
            .map(|cursor| AsyncCursor::new(cursor, runner)))
    }

    /// Creates one index; returns its name.
    pub fn create_index(&self, index: IndexModel) -> AsyncOp<String> {
        job!(self, |c| c.create_index(index).run().map(|r| r.index_name))
    }

    /// Creates several indexes in one command; returns their names.
    pub fn create_indexes(&self, indexes: Vec<IndexModel>) -> AsyncOp<Vec<String>> {
        job!(self, |c| c
            .create_indexes(indexes)
            .run()
            .map(|r| r.index_names))
    }

    /// Drops the index named `name`.
    pub fn drop_index(&self, name: &str) -> AsyncOp<()> {
        let name = name.to_string();
        job!(self, |c| c.drop_index(&name).run())
    }

    /// Drops every index but `_id`'s.
    pub fn drop_indexes(&self) -> AsyncOp<()> {
        job!(self, |c| c.drop_indexes().run())
    }

    /// The collection's indexes, as a stream of their descriptions.
    pub fn list_indexes(&self) -> AsyncOp<AsyncCursor<Document>> {
        let runner = self.runner.clone();
        job!(self, |c| c
            .list_indexes()
            .open::<Document>()
            .map(|cursor| AsyncCursor::new(cursor, runner)))
    }

    /// Creates one Atlas Search index; returns its name (see
    /// [`Collection::create_search_index`]).
    pub fn create_search_index(&self, model: SearchIndexModel) -> AsyncOp<String> {
        job!(self, |c| c.create_search_index(model).run())
    }

    /// Creates several Atlas Search indexes in one command; returns their names.
    pub fn create_search_indexes(
        &self,
        models: impl IntoIterator<Item = SearchIndexModel>,
    ) -> AsyncOp<Vec<String>> {
        let models: Vec<SearchIndexModel> = models.into_iter().collect();
        job!(self, |c| c.create_search_indexes(models).run())
    }

    /// Drops the Atlas Search index called `name` (a missing collection is not an error).
    pub fn drop_search_index(&self, name: &str) -> AsyncOp<()> {
        let name = name.to_string();
        job!(self, |c| c.drop_search_index(&name).run())
    }

    /// Replaces the definition of the Atlas Search index called `name`.
    pub fn update_search_index(&self, name: &str, definition: Document) -> AsyncOp<()> {
        let name = name.to_string();
        job!(self, |c| c.update_search_index(&name, definition).run())
    }

    /// The collection's Atlas Search indexes (or only the one called `name`), as a stream of
    /// their descriptions.
    pub fn list_search_indexes(
        &self,
        name: Option<&str>,
        options: AggregateOptions,
    ) -> AsyncOp<AsyncCursor<Document>> {
        let name = name.map(String::from);
        let runner = self.runner.clone();
        job!(self, |c| c
            .list_search_indexes()
            .aggregate_options(options)
            .name_if(name)
            .run()
            .map(|cursor| AsyncCursor::new(cursor, runner)))
    }

    /// Drops the collection.
    pub fn drop(&self) -> AsyncOp<()> {
        job!(self, |c| c.drop().run())
    }
}

impl<T: Serialize + Send + Sync + 'static> AsyncCollection<T> {
    /// Inserts one document (an `_id` is generated if it has none).
    pub fn insert_one(&self, doc: T) -> AsyncOp<InsertOneResult> {
        job!(self, |c| c.insert_one(&doc).run())
    }

    /// `insert_one` with options.
    pub fn insert_one_with(&self, doc: T, options: InsertOneOptions) -> AsyncOp<InsertOneResult> {
        job!(self, |c| c.insert_one(&doc).with_options(options).run())
    }

    /// Inserts documents in batches, ordered or not.
    pub fn insert_many(&self, docs: Vec<T>, ordered: bool) -> AsyncOp<InsertManyResult> {
        job!(self, |c| c.insert_many(&docs).ordered(ordered).run())
    }

    /// `insert_many` with options.
    pub fn insert_many_with(
        &self,
        docs: Vec<T>,
        options: InsertManyOptions,
    ) -> AsyncOp<InsertManyResult> {
        job!(self, |c| c.insert_many(&docs).with_options(options).run())
    }

    /// Replaces the first document matching `filter`.
    pub fn replace_one(
        &self,
        filter: Document,
        replacement: T,
        options: ReplaceOptions,
    ) -> AsyncOp<UpdateResult> {
        job!(self, |c| c
            .replace_one(filter, &replacement)
            .with_options(options)
            .run())
    }

    /// Mixed writes in one or more batches, ordered or not.
    pub fn bulk_write(
        &self,
        models: Vec<WriteModel<T>>,
        ordered: bool,
    ) -> AsyncOp<BulkWriteResult> {
        job!(self, |c| c.bulk_write(models).ordered(ordered).run())
    }

    /// `bulk_write` with options.
    pub fn bulk_write_with(
        &self,
        models: Vec<WriteModel<T>>,
        options: BulkWriteOptions,
    ) -> AsyncOp<BulkWriteResult> {
        job!(self, |c| c.bulk_write(models).with_options(options).run())
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> AsyncCollection<T> {
    /// The first document matching `filter`.
    pub fn find_one(&self, filter: Document) -> AsyncOp<Option<T>> {
        job!(self, |c| c.find_one(filter).run())
    }

    /// `find_one` with options.
    pub fn find_one_with(&self, filter: Document, options: FindOneOptions) -> AsyncOp<Option<T>> {
        job!(self, |c| c.find_one(filter).with_options(options).run())
    }

    /// The documents matching `filter`, as a stream.
    pub fn find(&self, filter: Document) -> AsyncOp<AsyncCursor<T>> {
        self.find_with(filter, FindOptions::default())
    }

    /// `find` with options.
    pub fn find_with(&self, filter: Document, options: FindOptions) -> AsyncOp<AsyncCursor<T>> {
        let runner = self.runner.clone();
        job!(self, |c| c
            .find(filter)
            .with_options(options)
            .run()
            .map(|cursor| AsyncCursor::new(cursor, runner)))
    }

    /// Deletes the first document matching `filter` and returns it.
    pub fn find_one_and_delete(
        &self,
        filter: Document,
        options: FindOneAndDeleteOptions,
    ) -> AsyncOp<Option<T>> {
        job!(self, |c| c
            .find_one_and_delete(filter)
            .with_options(options)
            .run())
    }

    /// Updates the first document matching `filter` and returns it (before or after).
    pub fn find_one_and_update(
        &self,
        filter: Document,
        update: impl Into<crate::UpdateModifications>,
        options: FindOneAndUpdateOptions,
    ) -> AsyncOp<Option<T>> {
        let update = update.into();
        job!(self, |c| c
            .find_one_and_update(filter, update)
            .with_options(options)
            .run())
    }

    /// Replaces the first document matching `filter` and returns it (before or after).
    pub fn find_one_and_replace(
        &self,
        filter: Document,
        replacement: T,
        options: FindOneAndReplaceOptions,
    ) -> AsyncOp<Option<T>>
    where
        T: Serialize,
    {
        job!(self, |c| c
            .find_one_and_replace(filter, replacement)
            .with_options(options)
            .run())
    }
}
