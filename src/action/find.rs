//! `find` and `find_one`: the `find` command, its options, and the cursor it opens.

use std::time::Duration;

use bson::{Bson, Document};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_with::skip_serializing_none;

use crate::client::Route;
use crate::client_session::ClientSession;
use crate::collation::Collation;
use crate::collection::Collection;
use crate::crud_types::{CursorType, FindOneOptions, FindOptions, Hint};
use crate::cursor::{Cursor, CursorSpec, SessionCursor};
use crate::error::Result;
use crate::ops::{Encoded, FindOne as FindOneOp};
use crate::selection_criteria::Criteria;

use super::{ExplicitSession, ImplicitSession, option_setters, session_setter};
use crate::ops::body::{millis, to_body};

impl<T> Collection<T> {
    /// Finds the documents matching `filter`; [`run`](Find::run) returns a [`Cursor`].
    pub fn find(&self, filter: Document) -> Find<'_, T> {
        Find {
            session: ImplicitSession,
            coll: self,
            filter,
            options: None,
        }
    }

    /// Finds the first document matching `filter`; [`run`](FindOne::run) returns it, or
    /// `None`.
    pub fn find_one(&self, filter: Document) -> FindOne<'_, T> {
        FindOne {
            session: None,
            coll: self,
            filter,
            options: None,
        }
    }
}

/// Finds the documents matching a filter. Made by [`Collection::find`].
#[must_use = "nothing is sent until .run()"]
pub struct Find<'a, T, S = ImplicitSession> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) options: Option<FindOptions>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a, T> Find<'a, T> {
    /// Runs the query in `session`: [`run`](Find::run) then returns a [`SessionCursor`].
    pub fn session(self, session: &mut ClientSession) -> Find<'a, T, ExplicitSession> {
        Find {
            coll: self.coll,
            filter: self.filter,
            options: self.options,
            session: ExplicitSession(session.cell.clone()),
        }
    }
}

impl<T, S> Find<'_, T, S> {
    option_setters!(FindOptions {
        allow_disk_use: plain bool,
        allow_partial_results: plain bool,
        batch_size: plain u32,
        comment: into bson::Bson,
        cursor_type: plain CursorType,
        hint: plain crate::crud_types::Hint,
        limit: plain i64,
        max: plain Document,
        max_await_time: plain std::time::Duration,
        max_time: plain std::time::Duration,
        min: plain Document,
        no_cursor_timeout: plain bool,
        projection: plain Document,
        read_concern: plain crate::concern::ReadConcern,
        return_key: plain bool,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        show_record_id: plain bool,
        skip: plain u64,
        sort: plain Document,
        collation: plain crate::collation::Collation,
        let_vars: plain Document,
        raw_data: plain bool,
    });
}

impl<T: DeserializeOwned + 'static> Find<'_, T> {
    /// Sends the `find` command; the cursor holds the first batch and fetches the rest.
    pub fn run(self) -> Result<Cursor<T>> {
        let Find {
            coll,
            filter,
            options,
            session: _,
        } = self;
        coll.find_built(move || (filter, options.unwrap_or_default()), None)
    }
}

impl<T: DeserializeOwned + 'static> Find<'_, T, ExplicitSession> {
    /// Sends the `find` command in the session; the cursor fetches the rest in it too.
    pub fn run(self) -> Result<SessionCursor<T>> {
        let Find {
            coll,
            filter,
            options,
            session,
        } = self;
        coll.find_built(
            move || (filter, options.unwrap_or_default()),
            Some(session.0),
        )
        .map(SessionCursor::new)
    }
}

/// Finds the first document matching a filter. Made by [`Collection::find_one`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOne<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) options: Option<FindOneOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> FindOne<'_, T> {
    session_setter!();

    option_setters!(FindOneOptions {
        allow_partial_results: plain bool,
        collation: plain crate::collation::Collation,
        comment: into bson::Bson,
        hint: plain crate::crud_types::Hint,
        max: plain Document,
        max_time: plain std::time::Duration,
        min: plain Document,
        projection: plain Document,
        read_concern: plain crate::concern::ReadConcern,
        return_key: plain bool,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        show_record_id: plain bool,
        skip: plain u64,
        sort: plain Document,
        let_vars: plain Document,
        raw_data: plain bool,
    });
}

impl<T: DeserializeOwned + 'static> FindOne<'_, T> {
    /// Sends a `find` for one document (`limit: 1, singleBatch: true`) and decodes it.
    pub fn run(self) -> Result<Option<T>> {
        // The action is moved into the closure whole: one copy of its options in this frame,
        // which waits (see `find_one_built`).
        let coll = self.coll;
        let session = self.session;
        coll.find_one_built(
            move || {
                let options = self.options.map(FindOptions::from).unwrap_or_default();
                (self.filter, options)
            },
            session,
        )
    }
}

impl<T: DeserializeOwned + 'static> Collection<T> {
    /// `find_one`'s one route, for the caller's queries and the driver's own (GridFS's): a
    /// `find` of one batch of one for the filter and options `query` makes, with a reply
    /// handler that decodes only that document. The command is made and encoded on a driver
    /// stack (`query` runs there too), so the frames that wait hold no options: they are on
    /// the stack of every coroutine parked inside `find_one` (10,000 at once in the
    /// benchmark: a page more each is 40 MB).
    pub(crate) fn find_one_built(
        &self,
        query: impl FnOnce() -> (Document, FindOptions),
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<Option<T>> {
        let mut op = crate::runtime::on_driver_stack(|| {
            let (filter, mut o) = query();
            o.limit = Some(-1); // a single batch of one
            o.batch_size = None;
            let criteria = match o.selection_criteria.take() {
                Some(own) => Some(Criteria::from(&own)),
                None => self.settings.criteria.clone(),
            };
            let read_concern = o
                .read_concern
                .take()
                .or_else(|| self.settings.read_concern.clone())
                .map(|rc| rc.to_document());
            let command = find_fields(&self.name, &filter, &o, read_concern, Some(&self.db));
            FindOneOp::new(&self.db, Encoded::new(&command), criteria)
        });
        self.client
            .execute(
                &mut op,
                Route::selected(self.settings.timeout).in_session(session),
            )
            .map(|e| e.output)
    }

    /// A `find` cursor for the filter and options `query` makes. The command is built on a
    /// driver stack (see `runtime::on_driver_stack`): only the wait for a server and a
    /// connection needs the caller's.
    pub(crate) fn find_built(
        &self,
        query: impl FnOnce() -> (Document, FindOptions),
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<Cursor<T>> {
        let (body, spec, coll) = crate::runtime::on_driver_stack(|| -> Result<_> {
            let (filter, options) = query();
            let coll = self.overridden(
                options.selection_criteria.clone(),
                options.read_concern.clone(),
                None,
                session,
            );
            let (body, spec) = find_command(&self.name, filter, options)?;
            Ok((body, spec, coll))
        })?;
        coll.cursor("find", body, true, spec)
    }
}

/// `find`'s command and what its cursor needs to know.
fn find_command(coll: &str, filter: Document, o: FindOptions) -> Result<(Document, CursorSpec)> {
    let body = to_body(&find_fields(coll, &filter, &o, None, None))?;
    let cursor_type = o.cursor_type.unwrap_or(CursorType::NonTailable);
    let spec = CursorSpec {
        batch_size: o.batch_size,
        limit: o.limit.map(i64::abs),
        cursor_type,
        max_await_time: o.max_await_time,
        get_more_max_time: None,
        comment: o.comment,
        timeout: None, // set by `cursor`
    };
    Ok((body, spec))
}

/// The `find` command's fields for `filter` and the options `o`, with a read concern and
/// `$db` when the command is encoded whole (`find_one`'s).
fn find_fields<'a>(
    coll: &'a str,
    filter: &'a Document,
    o: &'a FindOptions,
    read_concern: Option<Document>,
    db: Option<&'a str>,
) -> FindCommand<'a> {
    let cursor_type = o.cursor_type.unwrap_or(CursorType::NonTailable);
    // A batch as large as the limit would leave the cursor open for a getMore that can only
    // return nothing; one more lets the server close it (the find spec).
    let batch_size = o
        .batch_size
        .map(|b| i64::from(b) + i64::from(o.limit == Some(i64::from(b))));
    FindCommand {
        find: coll,
        filter,
        projection: o.projection.as_ref(),
        sort: o.sort.as_ref(),
        skip: o.skip.map(|s| s.min(i64::MAX as u64) as i64),
        // A negative limit is one batch of at most that many (the find spec).
        limit: o.limit.filter(|&l| l != 0).map(i64::abs),
        single_batch: o.limit.filter(|&l| l < 0).map(|_| true),
        batch_size,
        hint: o.hint.as_ref(),
        max_time: o.max_time,
        comment: o.comment.as_ref(),
        allow_disk_use: o.allow_disk_use,
        collation: o.collation.as_ref(),
        let_vars: o.let_vars.as_ref(),
        raw_data: o.raw_data,
        max: o.max.as_ref(),
        min: o.min.as_ref(),
        return_key: o.return_key,
        show_record_id: o.show_record_id,
        no_cursor_timeout: o.no_cursor_timeout,
        allow_partial_results: o.allow_partial_results,
        tailable: (cursor_type != CursorType::NonTailable).then_some(true),
        await_data: (cursor_type == CursorType::TailableAwait).then_some(true),
        read_concern,
        db,
    }
}

/// The `find` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FindCommand<'a> {
    find: &'a str,
    filter: &'a Document,
    projection: Option<&'a Document>,
    sort: Option<&'a Document>,
    skip: Option<i64>,
    limit: Option<i64>,
    single_batch: Option<bool>,
    batch_size: Option<i64>,
    hint: Option<&'a Hint>,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
    allow_disk_use: Option<bool>,
    collation: Option<&'a Collation>,
    #[serde(rename = "let")]
    let_vars: Option<&'a Document>,
    raw_data: Option<bool>,
    max: Option<&'a Document>,
    min: Option<&'a Document>,
    return_key: Option<bool>,
    show_record_id: Option<bool>,
    no_cursor_timeout: Option<bool>,
    allow_partial_results: Option<bool>,
    tailable: Option<bool>,
    await_data: Option<bool>,
    read_concern: Option<Document>,
    #[serde(rename = "$db")]
    db: Option<&'a str>,
}
