//! # may_mongo
//!
//! A MongoDB driver whose blocking-style calls run inside [`may`] coroutines and yield to
//! may's scheduler on socket I/O. You write plain sequential code — `coll.find_one(filter)?` —
//! and get coroutine concurrency. The same [`Client`] also works from ordinary OS threads in
//! the same process, and a *threaded core* ([`Core::Threaded`]) runs the same driver on OS
//! threads with std sockets, so the two models can be compared honestly.
//!
//! ```no_run
//! use may_mongo::{Client, bson::doc};
//!
//! # fn main() -> may_mongo::Result<()> {
//! may::config().set_worker_pin(false);
//! let client = Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
//! let coll = client.database("test").collection::<bson::Document>("items");
//! let handles: Vec<_> = (0..100)
//!     .map(|i| {
//!         let coll = coll.clone();
//!         may::go!(move || {
//!             coll.insert_one(doc! { "_id": i })?;
//!             coll.find_one(doc! { "_id": i })
//!         })
//!     })
//!     .collect();
//! for h in handles {
//!     assert!(h.join().unwrap()?.is_some());
//! }
//! # Ok(()) }
//! ```
//!
//! ## Layers, bottom up
//! - [`wire`]: the wire protocol, sans-IO (bytes in, bytes out).
//! - `runtime`: the small seam between the cores (connect, spawn, wait/notify, off-worker lookups).
//! - `conn`: one connection — handshake and request/reply round trip.
//! - [`pool`]: the CMAP connection pool (FIFO hand-off, generations, events).
//! - [`topology`] (sans-IO SDAM rules and server selection), `monitor` (one per server) and
//!   `deployment` (the live topology, a pool per server, selection that waits).
//! - `ops`: one struct per command, `build` + `handle_response`.
//! - [`Client`], [`Database`], [`Collection`]: the blocking API.
//!
//! ## Stack size
//! The driver does its work on stacks of its own (`runtime::on_driver_stack`) and uses the
//! caller's only to wait for a server or a connection and to run the caller's command event
//! handler, so every call works from a coroutine on may's default 32 KiB stack, in an
//! unoptimised build too, at any nesting up to MongoDB's; `user_tests/` proves it from a crate
//! built as users build theirs. Documents nested deeper than [`MAX_DOCUMENT_DEPTH`] are
//! [`ErrorKind::TooDeep`]. Freeing or cloning a deep `Document` recurses, in your code: drop
//! deep results where there is room.

pub mod action;
pub mod concern;
pub mod error;
pub mod event;
pub mod wire;

pub mod pool;

mod address;
mod auth;
mod client;
mod client_bulk_write;
mod collection;
mod conn;
mod crud_types;
mod cursor;
mod database;
mod decode;
mod deployment;
pub mod gridfs;
mod monitor;
pub mod motor;
mod ops;
mod options;
mod results;
mod retry;
mod runtime;
mod session;
pub mod srv;
mod tls;
pub mod topology;
pub mod uri;

pub use auth::Credential;
pub use bson;
pub use client::{Client, RequestGuard};
pub use client_bulk_write::{
    ClientBulkWriteOptions, ClientBulkWriteResult, ClientWriteModel, Namespace, VerboseResults,
};
pub use collection::Collection;
pub use concern::{Acknowledgment, ReadConcern, WriteConcern};
pub use conn::{ServerType, StreamDescription};
pub use crud_types::*;
pub use cursor::{Cursor, CursorType};
pub use action::update::UpdateModifications;
pub use database::Database;
pub use gridfs::{
    GridFsBucket, GridFsBucketOptions, GridFsDownloadByNameOptions, GridFsDownloadStream,
    GridFsError, GridFsFile, GridFsFindOneOptions, GridFsFindOptions, GridFsUploadOptions,
    GridFsUploadStream,
};

/// The blocking API under the official crate's paths (`mongodb::sync::Client` and so on):
/// code written for the official `mongodb::sync` changes only its `use` lines. In this
/// driver the blocking API is the only one (the async façade is [`motor`]), so these are the
/// same types as at the crate's root.
pub mod sync {
    pub use crate::client::Client;
    pub use crate::collection::Collection;
    pub use crate::cursor::Cursor;
    pub use crate::database::Database;
    pub use crate::gridfs::{GridFsBucket, GridFsDownloadStream, GridFsUploadStream};
}

/// Decodes raw BSON into a [`Document`](bson::Document) with stack use that does not grow
/// with nesting (the driver's own decoder; see `notes/crud.md`), on a driver stack; a
/// document nested deeper than [`MAX_DOCUMENT_DEPTH`] is [`ErrorKind::TooDeep`].
pub fn decode_document(raw: &bson::RawDocument) -> Result<bson::Document> {
    runtime::on_driver_stack(|| decode::to_document(raw))
}

/// The deepest document the driver reads or writes (MongoDB's default `maxBSONDepth`).
pub const MAX_DOCUMENT_DEPTH: usize = decode::MAX_DEPTH;
pub use address::ServerAddress;
pub use error::{
    BulkWriteFailure, ClientBulkWriteFailure, CommandError, Error, ErrorKind, Result, WriteError,
};
pub use event::{CmapEvent, CommandEvent, EventHandler, SdamEvent};
pub use ops::InsertOneResult;
pub use options::{
    Affinity, ClientOptions, Handler, ServerApi, ServerApiBuilder, ServerApiVersion,
};
pub use pool::PoolStats;
pub use runtime::Core;
pub use tls::TlsOptions;
pub use topology::{ReadMode, ReadPreference, Topology, TopologyType};
