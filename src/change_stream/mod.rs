//! Change streams after the Change Streams spec: `watch()` on a collection, a database or the
//! whole deployment, read as a blocking iterator that parks the coroutine while it waits.
//!
//! A change stream is an `aggregate` whose first stage is `$changeStream`, read through a
//! tailable, awaiting cursor: each `getMore` waits on the server up to `max_await_time` for a
//! change, so a coroutine iterating a quiet stream is parked in the driver's read most of the
//! time and costs no worker.
//!
//! **Resuming.** The stream remembers a resume token: the `_id` of the newest event it
//! returned, or the batch's `postBatchResumeToken` once a batch is used up. When a `getMore`
//! fails in a way the spec calls resumable (a network error, a "not primary" or "shutting
//! down" error, a lost cursor, or any error the server labels `ResumableChangeStreamError`),
//! the stream kills the old cursor and runs its `aggregate` once more, on a server selected
//! afresh, with `resumeAfter` (or `startAfter`, or `startAtOperationTime` before any token) so
//! that it continues exactly where it was: no event lost, none repeated.

use std::marker::PhantomData;

use bson::{Bson, Document, RawBson, Timestamp, doc};
use serde::de::DeserializeOwned;

pub use crate::change_events::{
    ChangeNamespace, ChangeStreamEvent, ChangeStreamOptions, FullDocumentBeforeChangeType,
    FullDocumentType, OperationType, ResumeToken, TruncatedArray, UpdateDescription,
};

use crate::client::Client;
use crate::cursor::{Cursor, CursorSpec, CursorStart, CursorType};
use crate::error::{Error, Result};
use crate::ops::Command;
use crate::selection_criteria::Criteria;

/// What a change stream watches.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Collection { db: String, coll: String },
    Database { db: String },
    Cluster,
}

/// How to (re)open a change stream: everything its `aggregate` is made of.
#[derive(Clone)]
pub(crate) struct Opener {
    pub(crate) client: Client,
    pub(crate) target: Target,
    pub(crate) pipeline: Vec<Document>,
    pub(crate) options: ChangeStreamOptions,
    /// The handle's read concern and selection criteria, when the options set none.
    pub(crate) read_concern: Option<crate::concern::ReadConcern>,
    pub(crate) criteria: Option<Criteria>,
    pub(crate) timeout: Option<std::time::Duration>,
    /// The explicit session the stream runs in (`watch().session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

/// The errors after which a change stream resumes (the spec's list, for servers that do not
/// label them; newer servers add `ResumableChangeStreamError`).
const RESUMABLE_CODES: &[i32] = &[
    6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
];

fn resumable(e: &Error) -> bool {
    e.is_network_error()
        || e.contains_label("ResumableChangeStreamError")
        || e.code().is_some_and(|c| RESUMABLE_CODES.contains(&c))
}

/// Changes to a collection, a database or the deployment, as they happen. An `Iterator` of
/// `Result<T>` that blocks (parks, in a coroutine) until the next change; see the module's
/// doc for how it resumes after an error.
pub struct ChangeStream<T> {
    /// Boxed: it is large (every option), and a stream moves through frames.
    opener: Box<Opener>,
    cursor: Option<Cursor<Document>>,
    resume_token: Option<ResumeToken>,
    /// Whether any event was returned (a resume then uses `resumeAfter`, not `startAfter`).
    returned_any: bool,
    /// The first `aggregate`'s `operationTime`, for `startAtOperationTime` on a resume before
    /// any token.
    start_time: Option<Timestamp>,
    _t: PhantomData<fn() -> T>,
}

impl<T> ChangeStream<T> {
    /// Opens the stream: runs its `aggregate`.
    pub(crate) fn open(opener: Box<Opener>) -> Result<ChangeStream<T>> {
        let mut stream = ChangeStream {
            resume_token: opener
                .options
                .start_after
                .clone()
                .or_else(|| opener.options.resume_after.clone()),
            opener,
            cursor: None,
            returned_any: false,
            start_time: None,
            _t: PhantomData,
        };
        let cursor = stream.aggregate()?;
        let explicit_start = stream.resume_token.is_some()
            || stream.opener.options.start_at_operation_time.is_some();
        if !explicit_start {
            stream.start_time = cursor.operation_time();
        }
        if !cursor.has_next_in_batch()
            && let Some(token) = cursor.post_batch_resume_token()
        {
            stream.resume_token = Some(ResumeToken(RawBson::Document(token.clone())));
        }
        stream.cursor = Some(cursor);
        Ok(stream)
    }

    /// The `aggregate` that (re)opens the stream where it is. The command is made on a
    /// driver stack (documents built at opt-level 0 take many frames); only the wait for a
    /// server and a connection uses the caller's.
    fn aggregate(&self) -> Result<Cursor<Document>> {
        let (db, body, own, spec) = crate::runtime::on_driver_stack(|| self.aggregate_command())?;
        let criteria = own.as_ref().or(self.opener.criteria.as_ref());
        let op = Command::read("aggregate", &db, body, criteria, CursorStart::read);
        Cursor::open(&self.opener.client, op, spec, self.opener.session.clone())
    }

    /// The `aggregate` command: its database, body, own selection criteria and cursor spec.
    fn aggregate_command(&self) -> Result<(String, Document, Option<Criteria>, CursorSpec)> {
        let o = &self.opener.options;
        let mut stage = Document::new();
        if let Some(f) = &o.full_document {
            stage.insert("fullDocument", f.name());
        }
        if let Some(f) = &o.full_document_before_change {
            stage.insert("fullDocumentBeforeChange", f.name());
        }
        match &self.resume_token {
            Some(token) => {
                let key = if o.start_after.is_some() && !self.returned_any {
                    "startAfter"
                } else {
                    "resumeAfter"
                };
                stage.insert(key, Bson::try_from(token.0.clone()).map_err(Error::de)?);
            }
            None => {
                if let Some(t) = o.start_at_operation_time.or(self.start_time) {
                    stage.insert("startAtOperationTime", t);
                }
            }
        }
        if let Some(show) = o.show_expanded_events {
            stage.insert("showExpandedEvents", show);
        }
        let (db, target) = match &self.opener.target {
            Target::Collection { db, coll } => (db.as_str(), Bson::from(coll.as_str())),
            Target::Database { db } => (db.as_str(), Bson::Int32(1)),
            Target::Cluster => {
                stage.insert("allChangesForCluster", true);
                ("admin", Bson::Int32(1))
            }
        };
        let mut pipeline = vec![doc! { "$changeStream": stage }];
        pipeline.extend(self.opener.pipeline.iter().cloned());
        let mut cursor = doc! {};
        if let Some(b) = o.batch_size {
            cursor.insert("batchSize", b.min(i32::MAX as u32) as i32);
        }
        let mut body = doc! { "aggregate": target, "pipeline": pipeline, "cursor": cursor };
        if let Some(c) = &o.collation {
            body.insert(
                "collation",
                bson::serialize_to_document(c).map_err(Error::ser)?,
            );
        }
        if let Some(c) = &o.comment {
            body.insert("comment", c.clone());
        }
        if let Some(rc) = o
            .read_concern
            .as_ref()
            .or(self.opener.read_concern.as_ref())
        {
            body.insert("readConcern", rc.to_document());
        }
        let own = o.selection_criteria.as_ref().map(Criteria::from);
        let spec = CursorSpec {
            batch_size: o.batch_size,
            cursor_type: CursorType::TailableAwait,
            max_await_time: o.max_await_time,
            comment: o.comment.clone(),
            timeout: self.opener.timeout,
            ..CursorSpec::default()
        };
        Ok((db.to_string(), body, own, spec))
    }

    /// The token to resume after the newest event returned (or the newest batch).
    pub fn resume_token(&self) -> Option<ResumeToken> {
        self.resume_token.clone()
    }

    /// True while the stream can return more events (false after an `invalidate`, or an
    /// error it could not resume after).
    pub fn is_alive(&self) -> bool {
        self.cursor.as_ref().is_some_and(|c| c.is_alive())
    }

    /// The same stream, its events read as `D`.
    pub fn with_type<D>(self) -> ChangeStream<D> {
        ChangeStream {
            opener: self.opener,
            cursor: self.cursor,
            resume_token: self.resume_token,
            returned_any: self.returned_any,
            start_time: self.start_time,
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> ChangeStream<T> {
    /// The next event if the server has one now: one `getMore` (which waits on the server up
    /// to `max_await_time`) when the batch in hand is used up; `None` if none came.
    pub fn next_if_any(&mut self) -> Result<Option<T>> {
        let mut resumed = false;
        loop {
            let Some(cursor) = self.cursor.as_mut() else {
                return Ok(None);
            };
            match cursor.advance() {
                Ok(true) => {
                    let token = match cursor.current().get("_id") {
                        Ok(Some(id)) => RawBson::from(id),
                        _ => {
                            self.cursor = None;
                            return Err(Error::invalid_argument(
                                "a change stream event has no _id (resume token): the stream \
                                 cannot resume after it, so it stops (a pipeline must not \
                                 remove _id)",
                            ));
                        }
                    };
                    // At the end of a batch the post-batch token is as new and may be newer.
                    self.resume_token = Some(match cursor.post_batch_resume_token() {
                        Some(pbrt) if !cursor.has_next_in_batch() => {
                            ResumeToken(RawBson::Document(pbrt.clone()))
                        }
                        _ => ResumeToken(token),
                    });
                    self.returned_any = true;
                    return cursor.deserialize_current_as::<T>().map(Some);
                }
                Ok(false) => {
                    if let Some(pbrt) = cursor.post_batch_resume_token() {
                        self.resume_token = Some(ResumeToken(RawBson::Document(pbrt.clone())));
                    }
                    return Ok(None);
                }
                Err(e) if resumable(&e) && !resumed => {
                    // Once per error: the old cursor is killed in the background (dropped),
                    // and the aggregate runs again on a server selected afresh.
                    resumed = true;
                    self.cursor = None;
                    self.cursor = Some(self.aggregate()?);
                }
                Err(e) => {
                    self.cursor = None;
                    return Err(e);
                }
            }
        }
    }
}

impl<T: DeserializeOwned + 'static> Iterator for ChangeStream<T> {
    type Item = Result<T>;

    /// The next event, waiting for it as long as it takes (each `getMore` waits on the
    /// server; in a coroutine, the coroutine is parked meanwhile). `None` once the stream is
    /// closed (after an `invalidate`).
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            match self.next_if_any() {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) if self.cursor.is_none() || !self.is_alive() => return None,
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A change stream opened in an explicit session (`watch().session(&mut s)`): each step
/// takes the session, as the official crate's `SessionChangeStream` does, and must be the
/// session it was opened in.
pub struct SessionChangeStream<T> {
    inner: ChangeStream<T>,
}

impl<T> SessionChangeStream<T> {
    pub(crate) fn new(inner: ChangeStream<T>) -> SessionChangeStream<T> {
        SessionChangeStream { inner }
    }

    fn check(&self, session: &crate::client_session::ClientSession) -> Result<()> {
        match &self.inner.opener.session {
            Some(cell) if std::sync::Arc::ptr_eq(cell, &session.cell) => Ok(()),
            _ => Err(Error::invalid_argument(
                "a session change stream must be iterated with the session it was opened in",
            )),
        }
    }

    /// The token to resume after the newest event returned.
    pub fn resume_token(&self) -> Option<ResumeToken> {
        self.inner.resume_token()
    }

    /// True while the stream can return more events.
    pub fn is_alive(&self) -> bool {
        self.inner.is_alive()
    }
}

impl<T: DeserializeOwned + 'static> SessionChangeStream<T> {
    /// The next event, waiting for it; `None` once the stream is closed.
    pub fn next(
        &mut self,
        session: &mut crate::client_session::ClientSession,
    ) -> Result<Option<T>> {
        self.check(session)?;
        self.inner.next().transpose()
    }

    /// The next event if the server has one now (one `getMore` at most).
    pub fn next_if_any(
        &mut self,
        session: &mut crate::client_session::ClientSession,
    ) -> Result<Option<T>> {
        self.check(session)?;
        self.inner.next_if_any()
    }
}

impl<T> std::fmt::Debug for SessionChangeStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionChangeStream")
            .field(&self.inner)
            .finish()
    }
}

impl<T> std::fmt::Debug for ChangeStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("target", &self.opener.target)
            .field("cursor", &self.cursor)
            .field("resume_token", &self.resume_token)
            .finish()
    }
}
