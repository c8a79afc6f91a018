//! The Motor technique: an async API whose every call runs the blocking driver elsewhere.
//!
//! Motor 0.1–0.6 made synchronous PyMongo asynchronous without rewriting it. Each call ran
//! PyMongo on a new greenlet. When PyMongo touched its socket, a socket look-alike paused the
//! greenlet and registered the file descriptor with the event loop. When the fd became
//! ready, the loop resumed the greenlet, and when the call returned, its result resolved a
//! Future. Motor 0.7 replaced the greenlets with a thread pool running stock PyMongo: simpler,
//! and in Python faster.
//!
//! This module is both, under one API, chosen by the client's [`Core`]:
//!
//! | | Motor 0.1–0.6 | coroutine core here | Motor 0.7 | threaded core here |
//! |---|---|---|---|---|
//! | a call runs on | a new greenlet | a new may coroutine | a pool thread | a pool thread ([`ThreadPool`]) |
//! | I/O waits by | pausing the greenlet; the event loop watches the fd | parking the coroutine; may's poller watches the fd | blocking the thread | blocking the thread |
//! | the result arrives through | a Future resolved on the event loop | a oneshot channel that wakes the awaiting task | a Future | a oneshot channel |
//!
//! Nothing here knows about tokio. A call returns an [`AsyncOp`], a future that completes when
//! a `futures` oneshot channel is written. Any executor can await it: tokio's multi-thread and
//! current-thread runtimes, `futures::executor::block_on`, and others. The executor's threads
//! never block; the blocking happens on may's workers or on the pool's threads.
//!
//! **Dropping a future early** abandons the result, never the operation. The coroutine or pool
//! thread running it carries on to the end: the write is applied or not, the reply is read
//! whole, and the connection goes back to the pool in a clean state. Only the answer is
//! thrown away. (Cancelling the coroutine instead would unwind it mid-message; the pool would
//! then have to close that connection, which it does correctly, but at the cost of a new
//! connection per abandoned operation.) A cursor stream that is dropped closes its cursor
//! with a background `killCursors`, exactly as the blocking `Cursor`'s `Drop` does.

mod client;
mod collection;
mod cursor;
mod database;
mod thread_pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_channel::oneshot;

pub use client::{AsyncClient, AsyncRequest};
pub use collection::AsyncCollection;
pub use cursor::AsyncCursor;
pub use database::AsyncDatabase;
pub use thread_pool::ThreadPool;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime::Core;

/// Where an async call's blocking work runs.
#[derive(Clone, Debug)]
pub(crate) enum Runner {
    /// A new may coroutine per call.
    Coroutines,
    /// A bounded pool of OS threads, shared by every handle of one client.
    Threads(Arc<ThreadPool>),
}

impl Runner {
    /// The runner for `core`; the threaded core gets a pool of `threads` threads.
    pub(crate) fn new(core: Core, threads: usize) -> Result<Runner> {
        Ok(match core {
            Core::Coroutine => Runner::Coroutines,
            Core::Threaded => Runner::Threads(Arc::new(
                ThreadPool::new(threads).map_err(|e| Error::io("local", e))?,
            )),
        })
    }

    /// Runs `f` on a coroutine or a pool thread; the returned future resolves to its result.
    /// A panic in `f` resolves it to an [`ErrorKind::Panicked`] error.
    pub(crate) fn run<T, F>(&self, f: F) -> AsyncOp<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|panic| Err(panicked(&*panic)));
            // The receiver is gone when the future was dropped: the result is discarded.
            let _ = tx.send(result);
        };
        let spawned = match self {
            Runner::Coroutines => {
                crate::runtime::spawn_coroutine(job).map_err(|e| Error::io("local", e))
            }
            Runner::Threads(pool) => {
                pool.execute(Box::new(job));
                Ok(())
            }
        };
        AsyncOp {
            rx,
            early: spawned.err(),
        }
    }
}

/// Describes a panic payload as an error.
fn panicked(panic: &(dyn std::any::Any + Send)) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_string());
    ErrorKind::Panicked { message }.into()
}

/// The future of one async call: resolves to the blocking call's result.
#[must_use = "an AsyncOp does nothing visible unless awaited (the operation runs anyway)"]
pub struct AsyncOp<T> {
    rx: oneshot::Receiver<Result<T>>,
    /// An error from starting the work (may could not spawn), delivered on first poll.
    early: Option<Error>,
}

impl<T> AsyncOp<T> {
    /// A future that resolves to `error` at once.
    pub(crate) fn failed(error: Error) -> AsyncOp<T> {
        let (_, rx) = oneshot::channel();
        AsyncOp {
            rx,
            early: Some(error),
        }
    }
}

impl<T> Future for AsyncOp<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if let Some(e) = self.early.take() {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.rx).poll(cx) {
            Poll::Ready(Ok(result)) => Poll::Ready(result),
            // The sender was dropped without sending: the job itself was lost (its thread
            // died outside catch_unwind). Never expected, but never a hang either.
            Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(ErrorKind::Internal {
                message: "the task running an async operation ended without a result".into(),
            }
            .into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> std::fmt::Debug for AsyncOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncOp")
    }
}
