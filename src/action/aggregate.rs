//! `aggregate`, on a collection or a database: the `aggregate` command and its cursor.

use std::marker::PhantomData;

use std::time::Duration;

use bson::{Bson, Document};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_with::skip_serializing_none;

use crate::client_session::ClientSession;
use crate::collation::Collation;
use crate::collection::Collection;
use crate::crud_types::{AggregateOptions, Hint};
use crate::cursor::{Cursor, CursorSpec, CursorStart, SessionCursor};
use crate::database::Database;
use crate::error::Result;
use crate::ops::Command;

use super::{ExplicitSession, ImplicitSession, option_setters};
use crate::ops::body::{millis, to_body};

impl<T> Collection<T> {
    /// Runs an aggregation pipeline on this collection; [`run`](Aggregate::run) returns a
    /// cursor of documents, or of `U` after [`with_type`](Aggregate::with_type). A pipeline
    /// ending in `$out` or `$merge` writes: it goes to the primary with the write concern.
    pub fn aggregate(&self, pipeline: impl IntoIterator<Item = Document>) -> Aggregate<'_> {
        Aggregate {
            session: ImplicitSession,
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
            session: ImplicitSession,
            target: Target::Database(self),
            pipeline: pipeline.into_iter().collect(),
            options: None,
            _type: PhantomData,
        }
    }
}

pub(crate) enum Target<'a> {
    Collection(Collection<Document>),
    Database(&'a Database),
}

/// Runs an aggregation. Made by [`Collection::aggregate`] and [`Database::aggregate`].
#[must_use = "nothing is sent until .run()"]
pub struct Aggregate<'a, T = Document, S = ImplicitSession> {
    pub(crate) target: Target<'a>,
    pub(crate) pipeline: Vec<Document>,
    pub(crate) options: Option<AggregateOptions>,
    pub(crate) _type: PhantomData<fn() -> T>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a, T> Aggregate<'a, T> {
    /// Runs the aggregation in `session`: [`run`](Aggregate::run) then returns a
    /// [`SessionCursor`].
    pub fn session(self, session: &mut ClientSession) -> Aggregate<'a, T, ExplicitSession> {
        Aggregate {
            session: ExplicitSession(session.cell.clone()),
            target: self.target,
            pipeline: self.pipeline,
            options: self.options,
            _type: PhantomData,
        }
    }
}

impl<'a, T, S> Aggregate<'a, T, S> {
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
    pub fn with_type<U>(self) -> Aggregate<'a, U, S> {
        Aggregate {
            session: self.session,
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
        let Aggregate {
            target,
            pipeline,
            options,
            ..
        } = self;
        open(target, pipeline, options, None)
    }
}

impl<T: DeserializeOwned + 'static> Aggregate<'_, T, ExplicitSession> {
    /// Sends the `aggregate` command in the session; the cursor fetches the rest in it too.
    pub fn run(self) -> Result<SessionCursor<T>> {
        let Aggregate {
            target,
            pipeline,
            options,
            session,
            ..
        } = self;
        open(target, pipeline, options, Some(session.0)).map(SessionCursor::new)
    }
}

/// Runs the `aggregate` command on its target, in `session` when given.
fn open<T: DeserializeOwned + 'static>(
    target: Target<'_>,
    pipeline: Vec<Document>,
    options: Option<AggregateOptions>,
    session: Option<std::sync::Arc<crate::session::SessionCell>>,
) -> Result<Cursor<T>> {
    {
        let options = options.unwrap_or_default();
        match target {
            Target::Collection(coll) => {
                let coll = coll.overridden(
                    options.selection_criteria.clone(),
                    options.read_concern.clone(),
                    options.write_concern.clone(),
                    session,
                );
                let (body, writes, spec) = crate::runtime::on_driver_stack(|| -> Result<_> {
                    let writes = ends_in_write_stage(&pipeline);
                    let mut body = aggregate_body(Bson::from(&*coll.name), pipeline, &options)?;
                    if writes && let Some(wc) = coll.settings.write_concern_doc() {
                        body.insert("writeConcern", wc);
                    }
                    Ok((body, writes, spec_of(&options)))
                })?;
                coll.cursor("aggregate", body, !writes, spec)
            }
            Target::Database(db) => {
                let db = db.overridden(
                    options.selection_criteria.clone(),
                    options.read_concern.clone(),
                    options.write_concern.clone(),
                    session,
                );
                let writes = ends_in_write_stage(&pipeline);
                let spec = CursorSpec {
                    timeout: db.settings.timeout,
                    ..spec_of(&options)
                };
                let mut body = aggregate_body(Bson::Int32(1), pipeline, &options)?;
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
                Cursor::open(&db.client, op, spec, db.settings.session.clone())
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
) -> Result<Document> {
    // A pipeline that ends in `$out` or `$merge` returns no documents, and a `batchSize: 0`
    // there would ask the server for an empty first batch of nothing: the CRUD spec has
    // drivers leave it out (the server then runs the whole pipeline in the first call).
    let batch_size = options
        .batch_size
        .filter(|_| !ends_in_write_stage(&pipeline))
        .map(|b| b.min(i32::MAX as u32) as i32);
    let body = to_body(&AggregateCommand {
        aggregate: target,
        pipeline: &pipeline,
        cursor: CursorField { batch_size },
        allow_disk_use: options.allow_disk_use,
        max_time: options.max_time,
        comment: options.comment.as_ref(),
        hint: options.hint.as_ref(),
        collation: options.collation.as_ref(),
        let_vars: options.let_vars.as_ref(),
        bypass_document_validation: options.bypass_document_validation,
        raw_data: options.raw_data,
    });
    crate::runtime::drop_on_driver_stack(pipeline);
    body
}

/// The `aggregate` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AggregateCommand<'a> {
    aggregate: Bson,
    pipeline: &'a [Document],
    cursor: CursorField,
    allow_disk_use: Option<bool>,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
    hint: Option<&'a Hint>,
    collation: Option<&'a Collation>,
    #[serde(rename = "let")]
    let_vars: Option<&'a Document>,
    bypass_document_validation: Option<bool>,
    raw_data: Option<bool>,
}

/// An `aggregate`'s `cursor` field.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CursorField {
    batch_size: Option<i32>,
}

/// A pipeline whose last stage is `$out` or `$merge` writes, so it must run on the primary.
pub(crate) fn ends_in_write_stage(pipeline: &[Document]) -> bool {
    pipeline
        .last()
        .is_some_and(|stage| stage.contains_key("$out") || stage.contains_key("$merge"))
}
