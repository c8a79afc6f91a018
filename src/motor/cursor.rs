//! A cursor as a `futures::Stream`: one hop to the runner per *batch*, not per document.
//!
//! The blocking [`crate::Cursor`] moves into the job that fetches: the job advances it once (a
//! `getMore` if the batch in hand is used up), decodes every document the batch still holds,
//! and hands the cursor back with them. The stream then yields those documents without
//! leaving the executor's thread until they run out.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::runtime::{AsyncOp, Runner};

/// What one fetch brought back: the cursor, the documents decoded, and an error that ended
/// the fetch part-way (after the documents before it).
type Fetched<T> = (Box<crate::Cursor<T>>, Vec<T>, Option<Error>);

/// The results of a `find`, `aggregate`, `listCollections` or `listIndexes`, as a stream of
/// `Result<T>`. Dropping it closes the server cursor in the background, as dropping a
/// blocking [`crate::Cursor`] does; if a fetch is in flight, the cursor is closed when it finishes.
pub struct Cursor<T> {
    runner: Runner,
    ready: VecDeque<T>,
    /// An error to report once `ready` is empty.
    error: Option<Error>,
    state: State<T>,
}

enum State<T> {
    /// Holding the cursor; nothing in flight.
    Idle(Box<crate::Cursor<T>>),
    /// The cursor is away, fetching.
    Fetching(AsyncOp<Fetched<T>>),
    /// Exhausted, or failed: the stream has ended.
    Done,
}

// Nothing in a Cursor is ever pinned in place (documents are moved out of the queue,
// the cursor moves into jobs and back), so it may move even when `T` may not.
impl<T> Unpin for Cursor<T> {}

impl<T> Cursor<T> {
    pub(crate) fn new(cursor: crate::Cursor<T>, runner: Runner) -> Cursor<T> {
        Cursor {
            runner,
            ready: VecDeque::new(),
            error: None,
            state: State::Idle(Box::new(cursor)),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Cursor<T> {
    /// Collects every remaining result into a `Vec` (the first error ends it).
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            out.push(item?);
        }
        Ok(out)
    }
}

/// Advances `cursor` once and decodes what the batch in hand still holds.
fn fetch<T: DeserializeOwned + 'static>(mut cursor: Box<crate::Cursor<T>>) -> Fetched<T> {
    let mut items = Vec::new();
    let mut step = || -> Result<()> {
        if !cursor.advance()? {
            return Ok(());
        }
        items.push(cursor.deserialize_current()?);
        while cursor.has_next_in_batch() {
            cursor.advance()?;
            items.push(cursor.deserialize_current()?);
        }
        Ok(())
    };
    let error = step().err();
    (cursor, items, error)
}

impl<T: DeserializeOwned + Send + 'static> Stream for Cursor<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if let Some(e) = this.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(cursor) => {
                    this.state = State::Fetching(this.runner.run(move || Ok(fetch(cursor))));
                }
                State::Fetching(mut op) => match Pin::new(&mut op).poll(cx) {
                    Poll::Pending => {
                        this.state = State::Fetching(op);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok((cursor, items, error))) => {
                        let fetched_nothing = items.is_empty();
                        this.ready.extend(items);
                        if let Some(e) = error {
                            // The documents before the error first; then the error, which
                            // ends the stream (the cursor is dropped: a background kill).
                            this.error = Some(e);
                            continue;
                        }
                        // An empty fetch from a cursor the server has closed is the end. A
                        // tailable cursor that is still open just had nothing new: fetch again.
                        if fetched_nothing && !cursor.is_alive() {
                            return Poll::Ready(None);
                        }
                        this.state = State::Idle(cursor);
                    }
                },
            }
        }
    }
}

impl<T> std::fmt::Debug for Cursor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle(c) => format!("idle, {c:?}"),
            State::Fetching(_) => "fetching".to_string(),
            State::Done => "done".to_string(),
        };
        f.debug_struct("motor::Cursor")
            .field("ready", &self.ready.len())
            .field("state", &state)
            .finish()
    }
}
