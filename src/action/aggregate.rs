//! `aggregate`, on a collection or a database: the `aggregate` command and its cursor.

use std::marker::PhantomData;

use bson::{Bson, Document, doc};
use serde::de::DeserializeOwned;

use crate::collection::{Collection, millis, put};
use crate::crud_types::AggregateOptions;
use crate::cursor::{Cursor, CursorSpec, CursorStart};
use crate::database::Database;
use crate::error::Result;
use crate::ops::Command;

use super::option_setters;

impl<T> Collection<T> {
    /// Runs an aggregation pipeline on this collection; [`run`](Aggregate::run) returns a
    /// cursor of documents, or of `U` after [`with_type`](Aggregate::with_type). A pipeline
    /// ending in `$out` or `$merge` writes: it goes to the primary with the write concern.
    pub fn aggregate(&self, pipeline: impl IntoIterator<Item = Document>) -> Aggregate<'_> {
        Aggregate {
            target: Target::Collection(self.clone_with_type()),
            pipeline: pipeline.into_iter().collect(),
            options: None,
            _type: PhantomData,
        }
    }
}

impl Database {
    /// Runs a database-level aggregation (`$currentOp`, `$documents`, ...).
    pub fn aggregate(&self, pipeline: impl IntoIterator<Item = Document>) -> Aggregate<'_> {
        Aggregate {
            target: Target::Database(self),
            pipeline: pipeline.into_iter().collect(),
            options: None,
            _type: PhantomData,
        }
    }
}

enum Target<'a> {
    Collection(Collection<Document>),
    Database(&'a Database),
}

/// Runs an aggregation. Made by [`Collection::aggregate`] and [`Database::aggregate`].
#[must_use = "nothing is sent until .run()"]
pub struct Aggregate<'a, T = Document> {
    target: Target<'a>,
    pipeline: Vec<Document>,
    options: Option<AggregateOptions>,
    _type: PhantomData<fn() -> T>,
}

impl<'a, T> Aggregate<'a, T> {
    option_setters!(AggregateOptions {
        allow_disk_use: plain bool,
        batch_size: plain u32,
        bypass_document_validation: plain bool,
        collation: plain crate::collation::Collation,
        comment: into Bson,
        hint: plain crate::crud_types::Hint,
        max_await_time: plain std::time::Duration,
        max_time: plain std::time::Duration,
        read_concern: plain crate::concern::ReadConcern,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        write_concern: plain crate::concern::WriteConcern,
        let_vars: plain Document,
        raw_data: plain bool,
    });

    /// Reads the results as `U` rather than as documents.
    pub fn with_type<U>(self) -> Aggregate<'a, U> {
        Aggregate {
            target: self.target,
            pipeline: self.pipeline,
            options: self.options,
            _type: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Aggregate<'_, T> {
    /// Sends the `aggregate` command; the cursor holds the first batch.
    pub fn run(self) -> Result<Cursor<T>> {
        let options = self.options.unwrap_or_default();
        match self.target {
            Target::Collection(coll) => {
                let coll = coll.overridden(
                    options.selection_criteria.clone(),
                    options.read_concern.clone(),
                    options.write_concern.clone(),
                );
                let pipeline = self.pipeline;
                let (body, writes, spec) = crate::runtime::on_driver_stack(|| {
                    let writes = ends_in_write_stage(&pipeline);
                    let mut body = aggregate_body(Bson::from(&*coll.name), pipeline, &options);
                    if writes && let Some(wc) = coll.settings.write_concern_doc() {
                        body.insert("writeConcern", wc);
                    }
                    (body, writes, spec_of(&options))
                });
                coll.cursor("aggregate", body, !writes, spec)
            }
            Target::Database(db) => {
                let db = db.overridden(
                    options.selection_criteria.clone(),
                    options.read_concern.clone(),
                    options.write_concern.clone(),
                );
                let writes = ends_in_write_stage(&self.pipeline);
                let spec = CursorSpec {
                    timeout: db.settings.timeout,
                    ..spec_of(&options)
                };
                let mut body = aggregate_body(Bson::Int32(1), self.pipeline, &options);
                db.settings.read_concern_into(&mut body);
                let op = if writes {
                    if let Some(wc) = db.settings.write_concern_doc() {
                        body.insert("writeConcern", wc);
                    }
                    Command::write("aggregate", &db.name, body, CursorStart::read)
                } else {
                    let criteria = db.settings.criteria.as_ref();
                    Command::read("aggregate", &db.name, body, criteria, CursorStart::read)
                };
                Cursor::open(&db.client, op, spec)
            }
        }
    }
}

/// What the cursor of an aggregation needs to know for its `getMore`s.
fn spec_of(options: &AggregateOptions) -> CursorSpec {
    CursorSpec {
        batch_size: options.batch_size,
        comment: options.comment.clone(),
        max_await_time: options.max_await_time,
        ..CursorSpec::default()
    }
}

/// The `aggregate` command for `target` (a collection name, or 1 for a database).
pub(crate) fn aggregate_body(
    target: Bson,
    pipeline: Vec<Document>,
    options: &AggregateOptions,
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
    put(&mut body, "comment", options.comment.clone());
    put(&mut body, "hint", options.hint.clone());
    put(&mut body, "collation", options.collation.clone());
    put(&mut body, "let", options.let_vars.clone());
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
