//! The async client: a blocking [`Client`] and the runner its calls go to.

use super::{AsyncDatabase, AsyncOp, Runner, ThreadPool};
use crate::error::Result;
use crate::{
    Client, ClientBulkWriteOptions, ClientBulkWriteResult, ClientOptions, ClientWriteModel, Core,
    PoolStats,
};

/// An async handle on a [`Client`]. Cheap to clone; every clone shares the client (its pools
/// and monitors) and, in the threaded core, one thread pool.
#[derive(Clone, Debug)]
pub struct AsyncClient {
    pub(crate) inner: Client,
    pub(crate) runner: Runner,
}

impl AsyncClient {
    /// Wraps `client`. Calls run in new coroutines when the client's core is
    /// [`Core::Coroutine`], or on a pool of [`ThreadPool::default_size`] threads (five per
    /// CPU, as in Motor 0.7) when it is [`Core::Threaded`].
    pub fn new(client: Client) -> Result<AsyncClient> {
        AsyncClient::with_threads(client, ThreadPool::default_size())
    }

    /// Like [`new`](Self::new), with `threads` pool threads for the threaded core.
    pub fn with_threads(client: Client, threads: usize) -> Result<AsyncClient> {
        let runner = Runner::new(client.core(), threads)?;
        Ok(AsyncClient {
            inner: client,
            runner,
        })
    }

    /// Parses the connection string off the executor (a `mongodb+srv://` name is resolved
    /// there, and DNS blocks) and makes a client of `core`.
    pub fn with_uri_str(uri: &str, core: Core) -> AsyncOp<AsyncClient> {
        let uri = uri.to_string();
        // The threaded core parses on a one-thread pool that ends with this call.
        let runner = match Runner::new(core, 1) {
            Ok(r) => r,
            Err(e) => return AsyncOp::failed(e),
        };
        runner.run(move || {
            let mut options = ClientOptions::parse(&uri).run()?;
            options.core = core;
            AsyncClient::new(Client::with_options(options)?)
        })
    }

    /// The blocking client underneath: the same pools, usable from coroutines and threads.
    pub fn blocking(&self) -> &Client {
        &self.inner
    }

    /// A database handle (no I/O).
    pub fn database(&self, name: &str) -> AsyncDatabase {
        AsyncDatabase {
            inner: self.inner.database(name),
            runner: self.runner.clone(),
        }
    }

    /// The databases on the server, with their sizes.
    pub fn list_databases(&self) -> AsyncOp<Vec<crate::results::DatabaseSpecification>> {
        let c = self.inner.clone();
        self.runner.run(move || c.list_databases().run())
    }

    /// The names of the databases on the server.
    pub fn list_database_names(&self) -> AsyncOp<Vec<String>> {
        let c = self.inner.clone();
        self.runner.run(move || c.list_database_names().run())
    }

    /// MongoDB 8.0's client-level `bulkWrite`: writes to any number of collections in one
    /// command (see [`Client::bulk_write`]).
    pub fn bulk_write(
        &self,
        models: Vec<ClientWriteModel>,
        options: ClientBulkWriteOptions,
    ) -> AsyncOp<ClientBulkWriteResult> {
        let c = self.inner.clone();
        self.runner
            .run(move || c.bulk_write(models).with_options(options).run())
    }

    /// Pins one pooled connection for a sequence of async calls, so that they read their own
    /// writes; see [`AsyncRequest`].
    pub fn start_request(&self) -> AsyncRequest {
        AsyncRequest {
            client: self.clone(),
        }
    }

    /// Connection counts across every server's pool (no I/O).
    pub fn pool_stats(&self) -> PoolStats {
        self.inner.pool_stats()
    }

    /// Which core the client runs on.
    pub fn core(&self) -> Core {
        self.inner.core()
    }

    /// Closes the pools and stops the monitors.
    pub fn shutdown(&self) {
        self.inner.shutdown()
    }
}

/// A request: a run of async calls that share one connection and so read their own writes
/// (PyMongo's `start_request`, kept by Motor for the same reason).
///
/// Each async call runs on a coroutine or pool thread of its own, so a pin held by the
/// *caller* would not reach it. Instead the request's calls run through [`run`](Self::run):
/// the closure runs as one blocking job that starts a request on the blocking client, makes
/// every call inside it on the same connection, and ends it.
#[derive(Debug)]
pub struct AsyncRequest {
    client: AsyncClient,
}

impl AsyncRequest {
    /// Runs `f` with the blocking client inside one request: every operation `f` makes uses
    /// the same connection.
    pub fn run<T, F>(&self, f: F) -> AsyncOp<T>
    where
        T: Send + 'static,
        F: FnOnce(&Client) -> Result<T> + Send + 'static,
    {
        let c = self.client.inner.clone();
        self.client.runner.run(move || {
            let _request = c.start_request();
            f(&c)
        })
    }
}
