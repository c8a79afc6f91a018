//! A typed collection handle: a thin façade whose methods make actions (see `action/`).
//!
//! Read preference, read concern and write concern are inherited client → database →
//! collection; each level can override them (`with_*`), and so can each operation (its
//! `selection_criteria`, `read_concern` and `write_concern` options). This file keeps what
//! every operation on a collection shares: the settings, and the three ways a command goes
//! out (`read`, `write`, `cursor`).

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;

use bson::{Bson, Document, RawDocument, RawDocumentBuf, doc};
use serde::Serialize;

use crate::client::{Client, Route};
use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::*;
use crate::cursor::{Cursor, CursorSpec, CursorStart};
use crate::error::{
    BulkWriteFailure, Error, ErrorKind, IndexedWriteError, Result, WriteConcernError,
};
use crate::ops::{Command, read_write_reply};
use crate::retry::Retry;
use crate::selection_criteria::{Criteria, ReadPreference, SelectionCriteria};
use crate::session::SessionCell;

/// Selection criteria and concerns, as inherited by a database or collection handle.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    /// Where reads go, as the caller gave it (`None`: the client's read preference).
    pub(crate) selection_criteria: Option<SelectionCriteria>,
    /// The same, in the form server selection takes (made once, when the handle is).
    pub(crate) criteria: Option<Criteria>,
    pub(crate) read_concern: Option<ReadConcern>,
    pub(crate) write_concern: Option<WriteConcern>,
    /// A limit on each whole operation (the client's `timeoutMS` unless overridden).
    pub(crate) timeout: Option<std::time::Duration>,
    /// The explicit session an operation runs in (set per operation by `.session(..)`).
    pub(crate) session: Option<Arc<SessionCell>>,
}

impl Settings {
    /// Where reads go: these settings' selection criteria, else the client's (the handles
    /// leave them unset when they inherit the client's).
    pub(crate) fn selection_criteria_or<'a>(
        &'a self,
        client: &'a crate::options::ClientOptions,
    ) -> Option<&'a SelectionCriteria> {
        self.selection_criteria
            .as_ref()
            .or(client.selection_criteria.as_ref())
    }

    /// Sets where reads go.
    pub(crate) fn set_selection_criteria(&mut self, criteria: SelectionCriteria) {
        self.criteria = Some((&criteria).into());
        self.selection_criteria = Some(criteria);
    }

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
        session: Option<Arc<SessionCell>>,
    ) -> Option<Settings> {
        if criteria.is_none()
            && read_concern.is_none()
            && write_concern.is_none()
            && session.is_none()
        {
            return None;
        }
        let mut settings = self.clone();
        settings.session = session;
        if let Some(c) = criteria {
            settings.set_selection_criteria(c.clone());
        }
        if let Some(rc) = read_concern {
            settings.read_concern = Some(rc.clone());
        }
        if let Some(wc) = write_concern {
            settings.write_concern = Some(wc.clone());
        }
        Some(settings)
    }

    /// Where and how long the executor runs an operation with these settings: a selected
    /// server, within the timeout, in the session if one is set.
    pub(crate) fn route(&self) -> Route {
        Route::selected(self.timeout).in_session(self.session.clone())
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
    pub(crate) client: Client,
    pub(crate) db: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) settings: Arc<Settings>,
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
        self.with_selection_criteria(rp.into())
    }

    /// This collection with other selection criteria for its reads.
    pub(crate) fn with_selection_criteria(&self, criteria: SelectionCriteria) -> Collection<T> {
        self.with(|s| s.set_selection_criteria(criteria))
    }

    /// Where this collection's reads go, unless an operation says otherwise: its own
    /// selection criteria, its database's, or the client's.
    pub fn selection_criteria(&self) -> Option<&SelectionCriteria> {
        self.settings.selection_criteria_or(self.client.options())
    }

    /// This collection's read concern (its own, its database's or the client's).
    pub fn read_concern(&self) -> Option<&ReadConcern> {
        self.settings.read_concern.as_ref()
    }

    /// This collection's write concern (its own, its database's or the client's).
    pub fn write_concern(&self) -> Option<&WriteConcern> {
        self.settings.write_concern.as_ref()
    }

    /// This collection with `options`' selection criteria and concerns, where they are set.
    pub(crate) fn with_options(&self, options: &CollectionOptions) -> Collection<T> {
        self.overridden(
            options.selection_criteria.clone(),
            options.read_concern.clone(),
            options.write_concern.clone(),
            None,
        )
        .into_owned()
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

    /// This collection with an operation's own selection criteria, read concern and write
    /// concern in place of the handle's; the handle itself, borrowed, when the operation sets
    /// none (the common case costs nothing).
    pub(crate) fn overridden(
        &self,
        criteria: Option<SelectionCriteria>,
        read_concern: Option<ReadConcern>,
        write_concern: Option<WriteConcern>,
        session: Option<Arc<SessionCell>>,
    ) -> Cow<'_, Collection<T>> {
        let own = self.settings.for_operation(
            criteria.as_ref(),
            read_concern.as_ref(),
            write_concern.as_ref(),
            session,
        );
        self.with_own(own.map(Arc::new))
    }

    /// This collection with neither read concern nor write concern, for the Atlas Search
    /// index commands (see `action::search_index`). The read preference and the timeout
    /// stay. A `None` concern here sends nothing: the client's and database's defaults were
    /// already resolved into `Settings`.
    pub(crate) fn unconcerned(&self) -> Collection<T> {
        self.with(|s| {
            s.read_concern = None;
            s.write_concern = None;
        })
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
    pub(crate) fn read<'a, O>(
        &'a self,
        name: &'static str,
        mut body: Document,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Result<O> {
        self.settings.read_concern_into(&mut body);
        self.client
            .execute(
                &mut Command::read(
                    name,
                    &self.db,
                    body,
                    self.settings.criteria.as_ref(),
                    handle,
                ),
                self.settings.route(),
            )
            .map(|e| e.output)
    }

    /// A write command on this collection, with its write concern; `retry` says whether it is
    /// a retryable (single-statement) write.
    pub(crate) fn write<'a, O>(
        &'a self,
        name: &'static str,
        mut body: Document,
        retry: Retry,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Result<O> {
        if let Some(wc) = self.settings.write_concern_doc() {
            body.insert("writeConcern", wc);
        }
        self.client
            .execute(
                &mut Command::write(name, &self.db, body, handle).retryable(retry),
                self.settings.route(),
            )
            .map(|e| e.output)
    }

    /// A cursor command (`find`, `aggregate`, `listIndexes`): the first batch arrives with the
    /// reply; the cursor fetches the rest from the same server.
    pub(crate) fn cursor<U>(
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
        Cursor::open(&self.client, op, spec, self.settings.session.clone())
    }
}

/// A one-statement write's reply, its write error or write concern error raised inside the
/// executor (which may retry after a retryable write concern error).
pub(crate) fn single_write_reply(reply: &RawDocument) -> Result<crate::ops::WriteReply> {
    let reply = read_write_reply(reply)?;
    reply.single_result()?;
    Ok(reply)
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
pub(crate) fn update_statement(
    filter: Document,
    update: Bson,
    multi: bool,
    o: UpdateOptions,
) -> Result<Document> {
    let mut statement = doc! { "q": filter, "u": update, "multi": multi };
    put_update_options(&mut statement, o)?;
    Ok(statement)
}

/// An update's statement-level options, wherever its statement lives (an `update` command's
/// `updates`, a `bulkWrite` command's `ops`).
pub(crate) fn put_update_options(statement: &mut Document, o: UpdateOptions) -> Result<()> {
    let fields = crate::ops::body::to_body(&UpdateStatementOptions {
        upsert: o.upsert,
        array_filters: o.array_filters.as_deref(),
        hint: o.hint.as_ref(),
        collation: o.collation.as_ref(),
        sort: o.sort.as_ref(),
    })?;
    statement.extend(fields);
    Ok(())
}

/// A delete command's statement: `q`, `limit` (1 or 0 for all) and the statement-level options.
pub(crate) fn delete_statement(
    filter: Document,
    limit: i32,
    o: &DeleteOptions,
) -> Result<Document> {
    let mut statement = doc! { "q": filter, "limit": limit };
    put_delete_options(&mut statement, o)?;
    Ok(statement)
}

/// A delete's statement-level options (see [`put_update_options`]).
pub(crate) fn put_delete_options(statement: &mut Document, o: &DeleteOptions) -> Result<()> {
    let fields = crate::ops::body::to_body(&DeleteStatementOptions {
        hint: o.hint.as_ref(),
        collation: o.collation.as_ref(),
    })?;
    statement.extend(fields);
    Ok(())
}

/// The options an update statement carries, under their command names.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStatementOptions<'a> {
    upsert: Option<bool>,
    array_filters: Option<&'a [Document]>,
    hint: Option<&'a Hint>,
    collation: Option<&'a crate::collation::Collation>,
    sort: Option<&'a Document>,
}

/// The options a delete statement carries, under their command names.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
struct DeleteStatementOptions<'a> {
    hint: Option<&'a Hint>,
    collation: Option<&'a crate::collation::Collation>,
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

/// Sets `key` when the option has a value; `None` leaves the server's default.
pub(crate) fn put(body: &mut Document, key: &str, value: Option<impl Into<Bson>>) {
    if let Some(v) = value {
        body.insert(key, v.into());
    }
}

/// A failed `bulk_write`: [`ErrorKind::CollectionBulkWrite`] with every error and what did
/// succeed.
pub(crate) fn bulk_failure(
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
