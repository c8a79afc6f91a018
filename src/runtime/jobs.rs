//! Jobs run off the caller: the machinery under the async façade (the `motor` module).
//!
//! An async call hands a blocking job to a [`Runner`] and gets back an [`AsyncOp`], a future
//! that completes when a `futures` oneshot channel is written. The runner is the client's
//! core in another form: may coroutines for the coroutine core (at most
//! [`MAX_JOB_COROUTINES`] in the process; jobs beyond wait in a queue), a bounded
//! [`ThreadPool`] of OS threads (Motor 0.7's executor) for the threaded core. Nothing here
//! knows about any async executor; any of them can await an `AsyncOp`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crossbeam::queue::SegQueue;

use crossbeam::channel::{Sender, unbounded};
use futures_channel::oneshot;

use super::Core;
use crate::error::{Error, ErrorKind, Result};

/// Where an async call's blocking work runs.
#[derive(Clone, Debug)]
pub(crate) enum Runner {
    /// May coroutines, at most [`MAX_JOB_COROUTINES`] at once in the process.
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
            Runner::Coroutines => JOB_COROUTINES
                .submit(Box::new(job))
                .map_err(|e| Error::io("local", e)),
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

/// The most coroutines running async calls at once, in the whole process. may can keep about
/// 32,700 coroutines alive under Linux's default `vm.max_map_count` (each stack is two
/// mappings), and past that it cannot make another: a coroutine per call, unbounded, meant
/// that the 32,701st outstanding call failed — or, where may panics, aborted the process.
/// Calls beyond this bound wait in a queue (a boxed closure each, no stack) for a coroutine
/// to finish its call, as calls beyond the thread pool's size wait on the threaded core. Half
/// the limit leaves the other half to the application's own coroutines and the driver's
/// monitors and pool tasks.
pub const MAX_JOB_COROUTINES: usize = 16_384;

static JOB_COROUTINES: JobCoroutines = JobCoroutines {
    live: AtomicUsize::new(0),
    queue: SegQueue::new(),
};

/// The coroutine core's runner: jobs queue, and at most [`MAX_JOB_COROUTINES`] coroutines
/// take them, each running jobs until the queue is empty.
struct JobCoroutines {
    /// Coroutines started and not yet finished.
    live: AtomicUsize,
    queue: SegQueue<Job>,
}

impl JobCoroutines {
    /// Queues `job` and starts a coroutine for it if there is room; otherwise a running
    /// coroutine takes it when its own job is done.
    fn submit(&'static self, job: Job) -> std::io::Result<()> {
        self.queue.push(job);
        if !self.claim() {
            return Ok(());
        }
        super::spawn_coroutine(move || self.work()).inspect_err(|_| {
            self.live.fetch_sub(1, Ordering::SeqCst);
            if self.live.load(Ordering::SeqCst) == 0 {
                // No coroutine will ever take the queued jobs: drop them, which resolves
                // each one's future to an error (its sender is gone) instead of a hang.
                while self.queue.pop().is_some() {}
            }
        })
    }

    /// Counts one more coroutine, if below the bound.
    fn claim(&self) -> bool {
        let mut n = self.live.load(Ordering::SeqCst);
        while n < MAX_JOB_COROUTINES {
            match self
                .live
                .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    fn work(&self) {
        loop {
            while let Some(job) = self.queue.pop() {
                job();
            }
            self.live.fetch_sub(1, Ordering::SeqCst);
            // A job queued after the last look, by a caller who then found no room (we still
            // counted), would wait for the next call: look once more, and stay if we can.
            if self.queue.is_empty() || !self.claim() {
                return;
            }
        }
    }
}

/// Describes a panic payload as an error.
pub(crate) fn panicked(panic: &(dyn std::any::Any + Send)) -> Error {
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

// Motor 0.7's executor: a fixed number of OS threads taking jobs from one queue.
//
// The queue is unbounded, so submitting never blocks the async caller. The pool bounds how
// many blocking calls run at once: a call waits in the queue for a free thread, as it did in
// Motor 0.7's `ThreadPoolExecutor`. That bound is also how many connections the threaded
// core's async API can use at once. The threads start with the pool, and they end when the
// pool is dropped: the queue closes, each thread finishes its current job and exits.

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool of OS threads running blocking driver calls.
#[derive(Debug)]
pub struct ThreadPool {
    queue: Sender<Job>,
    threads: usize,
}

impl ThreadPool {
    /// Motor 0.7's default size: five threads per CPU.
    pub fn default_size() -> usize {
        5 * std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Starts `threads` threads (at least one).
    pub fn new(threads: usize) -> std::io::Result<ThreadPool> {
        let threads = threads.max(1);
        let (queue, jobs) = unbounded::<Job>();
        for i in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("may_mongo-motor-{i}"))
                .spawn(move || {
                    // Ends when every sender is gone (the pool was dropped).
                    for job in jobs {
                        job();
                    }
                })?;
        }
        Ok(ThreadPool { queue, threads })
    }

    /// How many threads run jobs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `job`; a free thread runs it.
    pub(crate) fn execute(&self, job: Job) {
        // Only fails if every thread has exited, which happens only after the pool (and so
        // this sender) is gone.
        let _ = self.queue.send(job);
    }
}
