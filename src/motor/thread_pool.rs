//! Motor 0.7's executor: a fixed number of OS threads taking jobs from one queue.
//!
//! The queue is unbounded, so submitting never blocks the async caller. The pool bounds how
//! many blocking calls run at once: a call waits in the queue for a free thread, as it did
//! in Motor 0.7's `ThreadPoolExecutor`. That bound is also how many connections the threaded
//! core's async API can use at once. The threads start with the pool, and they end when the
//! pool is dropped: the queue closes, each thread finishes its current job and exits.

use crossbeam::channel::{Sender, unbounded};

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
