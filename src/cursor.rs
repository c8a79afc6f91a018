//! Cursors: iterate a query's results, fetching batches with `getMore` as they run out.
//!
//! A [`Cursor<T>`] holds one batch as raw bytes (copied once out of the connection's buffer)
//! and walks it element by element without decoding anything it is not asked for:
//! [`Cursor::current`] lends the current document as a `&RawDocument`, and the `Iterator`
//! impl deserialises each into `T`. When the batch runs out it sends `getMore` to *the server
//! that holds the cursor* (not a freshly selected one).
//!
//! Dropping a cursor the server still holds must free it there (`killCursors`), but a drop
//! must not do I/O: it may run while a coroutine unwinds, or in a coroutine-local destructor
//! where may I/O hangs the worker (may-facts.md, pitfalls 4 and 5). So `Drop` only queues the
//! cursor on a channel, and a background task per client (a coroutine or a thread, per core)
//! sends the `killCursors`.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bson::{RawDocument, doc};
use serde::de::DeserializeOwned;

use crate::client::{Client, Kill, Route};
use crate::client_session::ClientSession;
use crate::deployment::Server;
use crate::error::{Error, Result};
use crate::ops::Command;
use crate::runtime;
use crate::session::{SessionCell, SessionState};

pub use crate::crud_types::CursorType;

/// What a cursor needs besides its first reply.
#[derive(Clone, Debug, Default)]
pub(crate) struct CursorSpec {
    pub(crate) batch_size: Option<u32>,
    pub(crate) limit: Option<i64>,
    pub(crate) cursor_type: CursorType,
    pub(crate) max_await_time: Option<Duration>,
    /// `maxTimeMS` for every `getMore` of a non-awaiting cursor (`run_cursor_command`).
    pub(crate) get_more_max_time: Option<Duration>,
    /// The opening command's `comment`, repeated on each `getMore` (servers 4.4+).
    pub(crate) comment: Option<bson::Bson>,
    /// The limit on the opening command and on each `getMore` (the handle's `timeout`).
    pub(crate) timeout: Option<Duration>,
}

/// The results of a query, fetched a batch at a time. An `Iterator` of `Result<T>`.
///
/// ```no_run
/// # fn main() -> may_mongo::Result<()> {
/// # let client = may_mongo::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
/// let coll = client.database("shop").collection::<bson::Document>("orders");
/// for order in coll.find(bson::doc! { "status": "open" }).batch_size(100).run()? {
///     println!("{}", order?);
/// }
/// # Ok(()) }
/// ```
pub struct Cursor<T> {
    client: Client,
    server: Arc<Server>,
    db: String,
    coll: String,
    id: i64,
    /// The current batch: the reply's `firstBatch`/`nextBatch` array, as BSON bytes.
    batch: Vec<u8>,
    /// Where the next element of `batch` starts.
    offset: usize,
    /// The current document's byte range in `batch`, after a successful `advance`.
    current: Option<std::ops::Range<usize>>,
    spec: CursorSpec,
    returned: i64,
    /// The session the cursor was opened in, which its `getMore`s and `killCursors` use:
    /// the caller's explicit one, or the opening command's implicit one, kept until the
    /// cursor is exhausted or killed and then returned to the pool.
    session: Option<Arc<SessionCell>>,
    /// A change stream's `postBatchResumeToken` from the newest batch (`None` otherwise).
    resume_token: Option<bson::RawDocumentBuf>,
    /// The opening reply's `operationTime`, for a change stream's `startAtOperationTime`.
    operation_time: Option<bson::Timestamp>,
    _t: PhantomData<fn() -> T>,
}

/// What a cursor-opening reply says: the cursor's id and namespace and the first batch, copied
/// out of the connection's buffer once. Read by the command's reply handler, on a driver stack.
pub(crate) struct CursorStart {
    id: i64,
    db: String,
    coll: String,
    batch: Vec<u8>,
    resume_token: Option<bson::RawDocumentBuf>,
    operation_time: Option<bson::Timestamp>,
}

impl CursorStart {
    /// Reads a cursor reply (`cursor: { id, ns, firstBatch }`).
    pub(crate) fn read(reply: &RawDocument) -> Result<CursorStart> {
        let (id, ns, batch) = read_cursor(reply, "firstBatch")?;
        let (db, coll) = ns.split_once('.').unwrap_or((ns, ""));
        Ok(CursorStart {
            id,
            db: db.to_string(),
            coll: coll.to_string(),
            batch: runtime::buffers::copy_of(batch),
            resume_token: post_batch_resume_token(reply),
            operation_time: reply.get_timestamp("operationTime").ok(),
        })
    }
}

impl<T> Cursor<T> {
    /// A cursor on `server` from what its opening reply said.
    pub(crate) fn new(
        client: Client,
        server: Arc<Server>,
        start: CursorStart,
        spec: CursorSpec,
    ) -> Cursor<T> {
        Cursor {
            client,
            server,
            db: start.db,
            coll: start.coll,
            id: start.id,
            batch: start.batch,
            offset: 4,
            current: None,
            spec,
            returned: 0,
            session: None,
            resume_token: start.resume_token,
            operation_time: start.operation_time,
            _t: PhantomData,
        }
    }

    /// Runs a command that opens a cursor (`find`, `aggregate`, `listIndexes`, ...) and opens
    /// it on the server that answered; build `op` with [`CursorStart::read`] as its handler.
    /// In `session` when given (an explicit session), else in an implicit one the cursor keeps.
    pub(crate) fn open(
        client: &Client,
        mut op: Command<'_, CursorStart>,
        spec: CursorSpec,
        session: Option<Arc<SessionCell>>,
    ) -> Result<Cursor<T>> {
        let keep = session.is_none();
        let mut route = Route::selected(spec.timeout).in_session(session);
        route.keep_session = keep;
        let explicit = route.session.clone();
        let executed = client.execute(&mut op, route)?;
        Ok(Cursor::opened(client, executed, spec, explicit))
    }

    /// The cursor an opening command's reply describes, in the session it ran in: the
    /// caller's, or its own implicit one (kept, unless the cursor is already exhausted).
    #[inline(never)]
    fn opened(
        client: &Client,
        executed: crate::client::Executed<CursorStart>,
        spec: CursorSpec,
        explicit: Option<Arc<SessionCell>>,
    ) -> Cursor<T> {
        let mut cursor = Cursor::new(client.clone(), executed.server, executed.output, spec);
        cursor.session = explicit.or_else(|| {
            executed.session.map(|s| {
                Arc::new(SessionCell::new(SessionState {
                    server: Some(s),
                    ..Default::default()
                }))
            })
        });
        if cursor.id == 0 {
            cursor.release_session();
        }
        cursor
    }

    /// Lets go of the cursor's session: an implicit one goes back to the pool (no I/O).
    fn release_session(&mut self) {
        if let Some(s) = self
            .session
            .take()
            .and_then(|cell| cell.take_implicit_server())
        {
            self.client.give_back_session(s);
        }
    }

    /// The session the cursor runs in (for tests and `SessionCursor`).
    pub(crate) fn session(&self) -> Option<&Arc<SessionCell>> {
        self.session.as_ref()
    }

    /// The server's id for this cursor; 0 once the server has closed it.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// A change stream's newest `postBatchResumeToken`.
    pub(crate) fn post_batch_resume_token(&self) -> Option<&bson::RawDocumentBuf> {
        self.resume_token.as_ref()
    }

    /// The opening reply's `operationTime`.
    pub(crate) fn operation_time(&self) -> Option<bson::Timestamp> {
        self.operation_time
    }

    /// The same cursor, its results read as `U`.
    pub fn with_type<U>(mut self) -> Cursor<U> {
        let typed = Cursor {
            client: self.client.clone(),
            server: self.server.clone(),
            db: std::mem::take(&mut self.db),
            coll: std::mem::take(&mut self.coll),
            id: self.id,
            batch: std::mem::take(&mut self.batch),
            offset: self.offset,
            current: self.current.take(),
            spec: std::mem::take(&mut self.spec),
            returned: self.returned,
            session: self.session.take(),
            resume_token: self.resume_token.take(),
            operation_time: self.operation_time,
            _t: PhantomData,
        };
        // What is left is dropped without a kill: the typed cursor owns the server's.
        self.id = 0;
        typed
    }

    /// True while the server may still hold more results.
    pub fn is_alive(&self) -> bool {
        self.id != 0
    }

    /// Moves to the next result, fetching a batch if this one is used up. `Ok(false)` at the
    /// end — for a tailable cursor, "nothing new yet": call again later.
    pub fn advance(&mut self) -> Result<bool> {
        loop {
            if self.limit_reached() {
                self.current = None;
                self.forget();
                return Ok(false);
            }
            if let Some(range) = next_element(&self.batch, &mut self.offset)? {
                self.current = Some(range);
                self.returned += 1;
                return Ok(true);
            }
            self.current = None;
            if self.id == 0 {
                self.release_session();
                return Ok(false);
            }
            let empty = self.get_more()?;
            if empty && self.spec.cursor_type != CursorType::NonTailable {
                return Ok(false);
            }
        }
    }

    /// True when the next [`advance`](Self::advance) can be answered from the batch in hand,
    /// without I/O.
    pub fn has_next_in_batch(&self) -> bool {
        !self.limit_reached() && self.batch.get(self.offset).is_some_and(|kind| *kind != 0)
    }

    /// The current result, undecoded (valid after `advance` returned `true`): zero-copy
    /// access to the batch.
    pub fn current(&self) -> &RawDocument {
        let range = self.current.clone().expect("advance() returned true first");
        RawDocument::from_bytes(&self.batch[range]).expect("checked by next_element")
    }

    /// The current result, decoded (on a driver stack: serde recurses as deep as the
    /// document is).
    pub fn deserialize_current(&self) -> Result<T>
    where
        T: DeserializeOwned + 'static,
    {
        self.deserialize_current_as()
    }

    /// The current result, decoded as `U` (a change stream's events).
    pub(crate) fn deserialize_current_as<U: DeserializeOwned + 'static>(&self) -> Result<U> {
        runtime::on_driver_stack(|| crate::decode::decode(self.current()))
    }

    fn limit_reached(&self) -> bool {
        matches!(self.spec.limit, Some(l) if l > 0 && self.returned >= l)
    }

    /// Fetches the next batch; true when it came back empty.
    fn get_more(&mut self) -> Result<bool> {
        let body = runtime::on_driver_stack(|| self.get_more_command());
        let mut next = None;
        // The next batch goes into this batch's buffer: no allocation once it is large enough.
        let mut buffer = std::mem::take(&mut self.batch);
        let mut token = None;
        let mut op = Command::write("getMore", &self.db, body, |reply| {
            let (id, _, batch) = read_cursor(reply, "nextBatch")?;
            buffer.clear();
            buffer.extend_from_slice(batch);
            next = Some(id);
            token = post_batch_resume_token(reply);
            Ok(())
        });
        let route =
            Route::pinned(self.server.clone(), self.spec.timeout).in_session(self.session.clone());
        let result = self.client.execute(&mut op, route).map(|e| e.output);
        drop(op); // it borrows `next` and `buffer`
        if let Err(e) = result {
            // The server's cursor is in an unknown state: don't try to kill it twice.
            self.id = 0;
            self.release_session();
            return Err(e);
        }
        self.id = next.expect("handler ran on success");
        if token.is_some() {
            self.resume_token = token;
        }
        if self.id == 0 {
            self.release_session();
        }
        self.batch = buffer;
        self.offset = 4;
        Ok(self.batch.len() <= 5)
    }

    /// The `getMore` command for the next batch.
    fn get_more_command(&self) -> bson::Document {
        let mut body = doc! { "getMore": self.id, "collection": &self.coll };
        let remaining = self
            .spec
            .limit
            .filter(|l| *l > 0)
            .map(|l| l - self.returned);
        let batch = match (self.spec.batch_size, remaining) {
            (Some(b), Some(r)) => Some((b as i64).min(r)),
            (Some(b), None) => Some(b as i64),
            (None, r) => r,
        };
        if let Some(b) = batch {
            body.insert("batchSize", b);
        }
        if let (CursorType::TailableAwait, Some(t)) =
            (self.spec.cursor_type, self.spec.max_await_time)
        {
            body.insert("maxTimeMS", t.as_millis() as i64);
        } else if let Some(t) = self.spec.get_more_max_time {
            body.insert("maxTimeMS", t.as_millis() as i64);
        }
        if let Some(c) = &self.spec.comment {
            body.insert("comment", c.clone());
        }
        body
    }

    /// Queues a still-open server cursor for `killCursors` (no I/O here).
    fn forget(&mut self) {
        if self.id != 0 {
            self.client.queue_kill(Kill {
                server: self.server.clone(),
                db: std::mem::take(&mut self.db),
                coll: std::mem::take(&mut self.coll),
                id: self.id,
                session: self.session.take(),
            });
            self.id = 0;
        }
        self.release_session();
    }
}

impl<T: DeserializeOwned + 'static> Iterator for Cursor<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match self.advance() {
            Ok(true) => Some(self.deserialize_current()),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl<T> Drop for Cursor<T> {
    fn drop(&mut self) {
        self.forget();
        // Kept for the next cursor: allocated before a wait, it would often be freed by
        // another worker (see `runtime::buffers`).
        runtime::buffers::give(std::mem::take(&mut self.batch));
    }
}

impl<T> std::fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("id", &self.id)
            .field("ns", &format_args!("{}.{}", self.db, self.coll))
            .field("server", &self.server.address)
            .finish_non_exhaustive()
    }
}

/// The results of a query run in an explicit session: a [`Cursor`] whose `getMore`s go in
/// that session. As in the official crate, each step takes the session (`next(&mut
/// session)`), so that the caller cannot run another operation in the session while the
/// cursor fetches. Passing a different session than the one the query ran in is an error.
///
/// ```no_run
/// # fn main() -> may_mongo::Result<()> {
/// # let client = may_mongo::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
/// # let coll = client.database("shop").collection::<bson::Document>("orders");
/// let mut session = client.start_session().run()?;
/// let mut cursor = coll.find(bson::doc! {}).session(&mut session).run()?;
/// while let Some(order) = cursor.next(&mut session) {
///     println!("{}", order?);
/// }
/// # Ok(()) }
/// ```
pub struct SessionCursor<T> {
    inner: Cursor<T>,
}

impl<T> SessionCursor<T> {
    pub(crate) fn new(inner: Cursor<T>) -> SessionCursor<T> {
        SessionCursor { inner }
    }

    fn check(&self, session: &ClientSession) -> Result<()> {
        match self.inner.session() {
            Some(cell) if Arc::ptr_eq(cell, &session.cell) => Ok(()),
            // Exhausted: the session was let go; any session may ask for "no more".
            None => Ok(()),
            Some(_) => Err(Error::invalid_argument(
                "a session cursor must be iterated with the session its query ran in",
            )),
        }
    }

    /// Moves to the next result, fetching a batch in `session` if this one is used up.
    pub fn advance(&mut self, session: &mut ClientSession) -> Result<bool> {
        self.check(session)?;
        self.inner.advance()
    }

    /// The current result, undecoded (after `advance` returned `true`).
    pub fn current(&self) -> &RawDocument {
        self.inner.current()
    }

    /// The current result, decoded.
    pub fn deserialize_current(&self) -> Result<T>
    where
        T: DeserializeOwned + 'static,
    {
        self.inner.deserialize_current()
    }

    /// The next result, fetching in `session` when needed; `None` at the end.
    pub fn next(&mut self, session: &mut ClientSession) -> Option<Result<T>>
    where
        T: DeserializeOwned + 'static,
    {
        match self.advance(session) {
            Ok(true) => Some(self.deserialize_current()),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// An iterator over the remaining results, borrowing `session` while it lives.
    pub fn iter<'s>(&'s mut self, session: &'s mut ClientSession) -> SessionCursorIter<'s, T> {
        SessionCursorIter {
            cursor: self,
            session,
        }
    }

    /// The server's id for this cursor; 0 once the server has closed it.
    pub fn id(&self) -> i64 {
        self.inner.id()
    }

    /// The same cursor, its results read as `U`.
    pub fn with_type<U>(self) -> SessionCursor<U> {
        SessionCursor {
            inner: self.inner.with_type(),
        }
    }
}

impl<T> std::fmt::Debug for SessionCursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionCursor").field(&self.inner).finish()
    }
}

/// Iterates a [`SessionCursor`] with its session. Made by [`SessionCursor::iter`].
pub struct SessionCursorIter<'s, T> {
    cursor: &'s mut SessionCursor<T>,
    session: &'s mut ClientSession,
}

impl<T: DeserializeOwned + 'static> Iterator for SessionCursorIter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.cursor.next(self.session)
    }
}

/// A change stream reply's `cursor.postBatchResumeToken`.
fn post_batch_resume_token(reply: &RawDocument) -> Option<bson::RawDocumentBuf> {
    let cursor = reply.get_document("cursor").ok()?;
    cursor
        .get_document("postBatchResumeToken")
        .ok()
        .map(|t| t.to_owned())
}

/// `cursor.id`, `cursor.ns` and the batch array's bytes of a cursor reply.
pub(crate) fn read_cursor<'a>(
    reply: &'a RawDocument,
    batch_key: &str,
) -> Result<(i64, &'a str, &'a [u8])> {
    let bad = |what: &str| Error::protocol("server", format!("malformed cursor reply: {what}"));
    let cursor = reply.get_document("cursor").map_err(|_| bad("no cursor"))?;
    let id = match cursor.get("id") {
        Ok(Some(bson::RawBsonRef::Int64(id))) => id,
        Ok(Some(bson::RawBsonRef::Int32(id))) => id as i64,
        _ => return Err(bad("no cursor.id")),
    };
    let ns = cursor.get_str("ns").map_err(|_| bad("no cursor.ns"))?;
    let batch = cursor
        .get_array(batch_key)
        .map_err(|_| bad(&format!("no cursor.{batch_key}")))?;
    Ok((id, ns, batch.as_bytes()))
}

/// The byte range of the next document in a BSON array, advancing `offset` (which starts at
/// 4, past the array's length). `None` at the end.
fn next_element(array: &[u8], offset: &mut usize) -> Result<Option<std::ops::Range<usize>>> {
    let bad = || Error::protocol("server", "malformed batch in a cursor reply");
    let kind = *array.get(*offset).ok_or_else(bad)?;
    if kind == 0 {
        return Ok(None);
    }
    if kind != 0x03 {
        return Err(Error::protocol(
            "server",
            "a cursor batch holds something other than documents",
        ));
    }
    let name_end = array[*offset + 1..]
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(bad)?
        + *offset
        + 1;
    let start = name_end + 1;
    let len_bytes: [u8; 4] = array
        .get(start..start + 4)
        .ok_or_else(bad)?
        .try_into()
        .expect("4 bytes");
    let len = i32::from_le_bytes(len_bytes);
    if len < 5 || start + len as usize > array.len() {
        return Err(bad());
    }
    let range = start..start + len as usize;
    RawDocument::from_bytes(&array[range.clone()]).map_err(|_| bad())?;
    *offset = range.end;
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn walks_a_batch_without_decoding_it() {
        let batch = rawdoc! { "0": { "a": 1 }, "1": { "a": 2 }, "2": {} };
        let bytes = batch.as_bytes();
        let mut offset = 4;
        let mut seen = Vec::new();
        while let Some(r) = next_element(bytes, &mut offset).unwrap() {
            seen.push(
                RawDocument::from_bytes(&bytes[r])
                    .unwrap()
                    .get_i32("a")
                    .ok(),
            );
        }
        assert_eq!(seen, vec![Some(1), Some(2), None]);
        // Truncated or wrongly typed batches are errors, not panics.
        for cut in 5..bytes.len() - 1 {
            let mut offset = 4;
            let mut r = Ok(Some(0..0));
            while let Ok(Some(_)) = r {
                r = next_element(&bytes[..cut], &mut offset);
            }
            assert!(r.is_err() || cut >= bytes.len() - 1, "cut at {cut}");
        }
        let not_docs = rawdoc! { "0": 5 };
        assert!(next_element(not_docs.as_bytes(), &mut 4).is_err());
    }
}
