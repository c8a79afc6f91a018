//! The async database handle.

use bson::{Document, RawDocumentBuf};

use super::{AsyncCollection, AsyncCursor, AsyncOp, Runner};
use crate::{AggregateOptions, Database};

/// An async handle on a [`Database`] (no I/O to make one).
#[derive(Clone, Debug)]
pub struct AsyncDatabase {
    pub(crate) inner: Database,
    pub(crate) runner: Runner,
}

impl AsyncDatabase {
    /// The database's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// A collection handle whose documents are `T`.
    pub fn collection<T>(&self, name: &str) -> AsyncCollection<T> {
        AsyncCollection {
            inner: self.inner.collection(name),
            runner: self.runner.clone(),
        }
    }

    /// Runs a command and returns its reply (`ok: 0` is an error).
    pub fn run_command(&self, command: Document) -> AsyncOp<Document> {
        let db = self.inner.clone();
        self.runner.run(move || db.run_command(command).run())
    }

    /// Runs a command and returns its reply undecoded.
    pub fn run_command_raw(&self, command: Document) -> AsyncOp<RawDocumentBuf> {
        let db = self.inner.clone();
        self.runner.run(move || db.run_command(command).run_raw())
    }

    /// A database-level aggregation (`$currentOp`, `$documents`, ...).
    pub fn aggregate(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> AsyncOp<AsyncCursor<Document>> {
        let (db, runner) = (self.inner.clone(), self.runner.clone());
        self.runner.run(move || {
            db.aggregate(pipeline)
                .with_options(options)
                .run()
                .map(|c| AsyncCursor::new(c, runner))
        })
    }

    /// The collections in this database, as a stream of their descriptions.
    pub fn list_collections(&self, filter: Option<Document>) -> AsyncOp<AsyncCursor<Document>> {
        let (db, runner) = (self.inner.clone(), self.runner.clone());
        self.runner.run(move || {
            db.list_collections()
                .with_options(crate::options::ListCollectionsOptions {
                    filter,
                    ..Default::default()
                })
                .open::<Document>(false)
                .map(|c| AsyncCursor::new(c, runner))
        })
    }

    /// The names of the collections in this database.
    pub fn list_collection_names(&self) -> AsyncOp<Vec<String>> {
        let db = self.inner.clone();
        self.runner.run(move || db.list_collection_names().run())
    }

    /// Creates a collection, with options (`capped`, a validator, ...) or without (`None`).
    pub fn create_collection(
        &self,
        name: &str,
        options: impl Into<Option<crate::options::CreateCollectionOptions>>,
    ) -> AsyncOp<()> {
        let options = options.into();
        let (db, name) = (self.inner.clone(), name.to_string());
        self.runner
            .run(move || db.create_collection(name).with_options(options).run())
    }

    /// Drops the database.
    pub fn drop(&self) -> AsyncOp<()> {
        let db = self.inner.clone();
        self.runner.run(move || db.drop().run())
    }
}
