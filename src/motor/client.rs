//! The async client: the blocking [`crate::Client`], made and shut down with `.await`.

use std::ops::Deref;

use crate::ClientOptions;
use crate::error::{Error, Result};
use crate::runtime::{AsyncOp, Runner};

/// An async client. It derefs to the blocking [`crate::Client`]: `database()`,
/// `list_database_names()`, `bulk_write()`, `pool_stats()` ... are the blocking client's,
/// and every action they return can be awaited.
///
/// Cheap to clone; every clone shares the pools, the monitors and, in the threaded core, one
/// thread pool. Calls run in new coroutines when the client's core is [`Core::Coroutine`](crate::Core::Coroutine),
/// or on a pool of [`ThreadPool::default_size`](crate::motor::ThreadPool::default_size) threads (five per CPU, as in Motor 0.7) when
/// it is [`Core::Threaded`](crate::Core::Threaded).
#[derive(Clone, Debug)]
pub struct Client {
    inner: crate::Client,
}

impl Client {
    /// Parses the connection string off the executor (a `mongodb+srv://` name is resolved
    /// there, and DNS blocks) and makes a client. The URI's `core=threaded` picks the core.
    pub fn with_uri_str(uri: impl AsRef<str>) -> AsyncOp<Client> {
        let uri = uri.as_ref().to_string();
        Runner::Coroutines.run(move || crate::Client::with_uri_str(uri).map(Client::from))
    }

    /// Makes a client from options (no I/O; monitoring starts in the background).
    pub fn with_options(options: ClientOptions) -> Result<Client> {
        crate::Client::with_options(options).map(Client::from)
    }

    /// Wraps `client` with a thread pool of `threads` threads for its async calls, if its core
    /// is [`Core::Threaded`](crate::Core::Threaded) (the coroutine core spawns a coroutine per call and ignores it).
    /// Fails if an async call has already started the client's default pool.
    pub fn with_thread_pool(client: crate::Client, threads: usize) -> Result<Client> {
        let runner = Runner::new(client.core(), threads)?;
        if !client.set_runner(runner) {
            return Err(Error::invalid_argument(
                "the client's async runner is already running (set the thread pool first)",
            ));
        }
        Ok(Client { inner: client })
    }

    /// The blocking client underneath: the same pools, usable from coroutines and threads.
    pub fn blocking(&self) -> &crate::Client {
        &self.inner
    }

    /// Pins one pooled connection for a sequence of async calls, so that they read their own
    /// writes; see [`AsyncRequest`].
    pub fn start_request(&self) -> AsyncRequest {
        AsyncRequest {
            client: self.inner.clone(),
        }
    }

    /// Ends the pooled server sessions (`endSessions`: I/O, so it runs on the runner, never
    /// on the executor's thread), then closes the pools and stops the monitors. Unlike the
    /// official crate's, it does not wait for operations still in flight, which end with an
    /// error if they need a new connection.
    pub async fn shutdown(self) {
        let client = self.inner;
        let done = match client.runner() {
            Ok(runner) => {
                let c = client.clone();
                runner
                    .run(move || {
                        c.shutdown();
                        Ok(())
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        // No runner, or the job was lost: shut down here rather than not at all.
        if done.is_err() {
            client.shutdown();
        }
    }
}

impl From<crate::Client> for Client {
    fn from(inner: crate::Client) -> Client {
        Client { inner }
    }
}

impl Deref for Client {
    type Target = crate::Client;

    fn deref(&self) -> &crate::Client {
        &self.inner
    }
}

/// A request: a run of calls that share one connection and so read their own writes
/// (PyMongo's `start_request`, kept by Motor for the same reason).
///
/// Each async call runs on a coroutine or pool thread of its own, so a pin held by the
/// *caller* would not reach it. Instead the request's calls run through [`run`](Self::run):
/// the closure runs as one blocking job that starts a request on the blocking client, makes
/// every call inside it on the same connection, and ends it.
#[derive(Debug)]
pub struct AsyncRequest {
    client: crate::Client,
}

impl AsyncRequest {
    /// Runs `f` with the blocking client inside one request: every operation `f` makes uses
    /// the same connection.
    pub fn run<T, F>(&self, f: F) -> AsyncOp<T>
    where
        T: Send + 'static,
        F: FnOnce(&crate::Client) -> Result<T> + Send + 'static,
    {
        let c = self.client.clone();
        match self.client.runner() {
            Ok(runner) => runner.run(move || {
                let _request = c.start_request();
                f(&c)
            }),
            Err(e) => AsyncOp::failed(e),
        }
    }
}
