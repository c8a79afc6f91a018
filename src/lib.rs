//! # may_mongo
//!
//! A MongoDB driver whose blocking-style calls run inside [`may`] coroutines and yield to
//! may's scheduler on socket I/O. You write plain sequential code — `coll.find_one(filter).run()?`,
//! the official `mongodb` crate's sync API —
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
//!             coll.insert_one(doc! { "_id": i }).run()?;
//!             coll.find_one(doc! { "_id": i }).run()
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
//! - `wire`: the wire protocol, sans-IO (bytes in, bytes out) — the [`may_mongo_protocol`]
//!   crate, which the compiler keeps free of I/O and of everything above it.
//! - `runtime`: the small seam between the cores (connect, spawn, wait/notify, off-worker lookups).
//! - `conn`: one connection — handshake and request/reply round trip.
//! - [`pool`]: the CMAP connection pool (FIFO hand-off, generations, events).
//! - [`topology`] (sans-IO SDAM rules and server selection), `monitor` (one per server) and
//!   `deployment` (the live topology, a pool per server, selection that waits).
//! - `ops`: the wire-level operations the executor runs (`build` + `handle_response`).
//! - [`action`]: the API's operations, one module each, as the official crate has them: a
//!   handle's method makes an action, setters add options, `.run()` sends it.
//! - [`Client`], [`Database`], [`Collection`]: the handles, which only make actions.
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
/// The wire codec is a crate of its own (`protocol/`); the driver reaches it as `crate::wire`.
/// Not public: nothing a user calls takes or returns its types but [`Compressor`] (re-exported
/// below). Tests, fuzz targets and benchmarks that speak the protocol themselves depend on
/// `may_mongo_protocol` directly.
use may_mongo_protocol as wire;

/// The connection pool (CMAP). Public for the CMAP spec runner (`tests/cmap_spec.rs`), which
/// drives a pool directly; hidden from the documentation because it is not API: a user sees
/// pools through [`PoolStats`] and the CMAP events.
#[doc(hidden)]
pub mod pool;

mod address;
mod auth;
mod change_events;
pub mod change_stream;
mod client;
mod client_bulk_write;
mod client_session;
mod collation;
mod collection;
mod conn;
mod crud_types;
mod cursor;
mod database;
mod db_options;
mod decode;
mod deployment;
pub mod gridfs;
mod gridfs_options;
mod index;
mod monitor;
pub mod motor;
mod ops;
pub mod options;
mod random;
pub mod results;
mod retry;
mod runtime;
mod selection_criteria;
mod serde_util;
mod session;
pub mod srv;
mod tls;
/// The sans-IO SDAM rules and server selection. Public for the SDAM and server-selection spec
/// runners, which drive them directly; hidden from the documentation because it is not API:
/// what a user sees ([`Topology`], [`ServerInfo`], [`TopologyType`], ...) is re-exported at
/// the crate's root.
#[doc(hidden)]
pub mod topology;
pub mod uri;
mod write_results;

pub use action::update::UpdateModifications;
pub use auth::Credential;
pub use bson;
pub use client::{Client, RequestGuard};
pub use client_bulk_write::{
    ClientBulkWriteOptions, ClientBulkWriteResult, ClientWriteModel, Namespace, VerboseResults,
};
pub use client_session::ClientSession;
pub use collection::Collection;
pub use concern::{Acknowledgment, ReadConcern, WriteConcern};
pub use conn::{ServerType, StreamDescription};
pub use crud_types::*;
pub use cursor::{Cursor, CursorType};
pub use database::Database;
pub use db_options::RunCursorCommandOptions;
pub use gridfs::{
    FilesCollectionDocument, GridFsBucket, GridFsBucketOptions, GridFsDownloadStream,
    GridFsErrorKind, GridFsFileIdentifier, GridFsUploadOptions, GridFsUploadStream,
};
pub use session::ClusterTime;

/// The blocking API under the official crate's paths (`mongodb::sync::Client` and so on):
/// code written for the official `mongodb::sync` changes only its `use` lines. In this
/// driver the blocking API is the only one (the async façade is [`motor`]), so these are the
/// same types as at the crate's root.
pub mod sync {
    pub use crate::client::Client;
    pub use crate::client_session::ClientSession;
    pub use crate::collection::Collection;
    pub use crate::cursor::Cursor;
    pub use crate::database::Database;
    pub use crate::gridfs::{GridFsBucket, GridFsDownloadStream, GridFsUploadStream};

    /// GridFS, under the official crate's path (`mongodb::sync::gridfs`).
    pub mod gridfs {
        pub use crate::gridfs::{
            FilesCollectionDocument, GridFsBucket, GridFsDownloadStream, GridFsUploadStream,
        };
    }
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
pub use error::{BulkWriteFailure, CommandError, Error, ErrorKind, Result, WriteError};
pub use event::{CmapEvent, CommandEvent, EventHandler, SdamEvent};
pub use index::IndexModel;
pub use ops::InsertOneResult;
pub use options::{Affinity, ClientOptions, ServerApi, ServerApiBuilder, ServerApiVersion};
pub use pool::PoolStats;
pub use results::{SummaryBulkWriteResult, VerboseBulkWriteResult};
pub use runtime::Core;
pub use selection_criteria::{ReadPreference, SelectionCriteria};
pub use tls::TlsOptions;
pub use topology::{ReadMode, ServerInfo, Topology, TopologyType};
/// The wire compressors [`ClientOptions::compressors`] lists (the `compressors` URI option).
pub use wire::Compressor;
