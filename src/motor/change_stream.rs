//! A change stream as a `futures::Stream`: each wait for the next event is one job on the
//! runner, which runs the blocking [`crate::change_stream::ChangeStream`]'s `next()` (its
//! `getMore`s park a coroutine, or block a pool thread, while the server waits for a
//! change). The stream moves into the job and comes back with the event.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::runtime::{AsyncOp, Runner};

type Blocking<T> = Box<crate::change_stream::ChangeStream<T>>;

/// Changes as they happen, as a `Stream` of `Result<T>` (made by awaiting `watch()`).
/// Dropping it closes the server cursor in the background; if a wait is in flight, the
/// cursor is closed when the wait ends.
pub struct ChangeStream<T> {
    runner: Runner,
    state: State<T>,
}

enum State<T> {
    Idle(Blocking<T>),
    Waiting(AsyncOp<(Blocking<T>, Option<Result<T>>)>),
    Done,
}

// Nothing is pinned in place: the blocking stream moves into jobs and back.
impl<T> Unpin for ChangeStream<T> {}

impl<T> ChangeStream<T> {
    pub(crate) fn new(stream: crate::change_stream::ChangeStream<T>, runner: Runner) -> Self {
        ChangeStream {
            runner,
            state: State::Idle(Box::new(stream)),
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> Stream for ChangeStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Idle(mut stream) => {
                    this.state = State::Waiting(this.runner.run(move || {
                        let next = stream.next();
                        Ok((stream, next))
                    }));
                }
                State::Waiting(mut op) => match Pin::new(&mut op).poll(cx) {
                    Poll::Pending => {
                        this.state = State::Waiting(op);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Ok((stream, next))) => {
                        if next.is_some() {
                            this.state = State::Idle(stream);
                        }
                        return Poll::Ready(next);
                    }
                },
            }
        }
    }
}

impl<T> std::fmt::Debug for ChangeStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle(s) => format!("idle, {s:?}"),
            State::Waiting(_) => "waiting".to_string(),
            State::Done => "done".to_string(),
        };
        f.debug_struct("motor::ChangeStream")
            .field("state", &state)
            .finish()
    }
}
