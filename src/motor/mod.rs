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
//! The names are the official async crate's: `Client::with_uri_str(uri).await`, then the same
//! handles and actions as the blocking API, awaited instead of `.run()`:
//!
//! ```no_run
//! # async fn demo() -> may_mongo::Result<()> {
//! use may_mongo::bson::{Document, doc};
//! use may_mongo::motor::Client;
//!
//! let client = Client::with_uri_str("mongodb://127.0.0.1/").await?;
//! let coll = client.database("shop").collection::<Document>("fruit");
//! coll.insert_one(doc! { "name": "fig" }).await?;
//! let figs = coll.find(doc! { "name": "fig" }).limit(5).await?.collect_all().await?;
//! # let _ = figs; Ok(()) }
//! ```
//!
//! [`Collection`] and [`Database`] *are* the blocking handles: each action both `.run()`s
//! (blocking-style) and implements `IntoFuture` (here), so one handle serves both styles and
//! no operation is written twice. What differs is the [`Client`] (it is made and shut down
//! with `.await`) and the [`Cursor`], which is a `futures::Stream`.
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

mod actions;
mod change_stream;
mod client;
mod cursor;

pub use change_stream::ChangeStream;
pub use client::{AsyncRequest, Client};
pub use cursor::Cursor;

pub use crate::collection::Collection;
pub use crate::database::Database;
pub use crate::gridfs::GridFsBucket;
pub use crate::runtime::{AsyncOp, Core, MAX_JOB_COROUTINES, ThreadPool};
