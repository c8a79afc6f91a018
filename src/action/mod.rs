//! The API's operations, one type each: what you get back from `coll.find(filter)`,
//! `coll.update_one(filter, update)`, `db.run_command(cmd)`, ... before you call `.run()`.
//!
//! This is the official `mongodb` crate's shape (3.x, its `sync` API): a method on a handle
//! takes the operation's required arguments and returns an *action*; setters on the action
//! add options (`.sort(..)`, `.upsert(true)`, `.selection_criteria(..)`, or every option at
//! once with `.with_options(..)`); `.run()` performs it, blocking-style:
//!
//! ```no_run
//! # use may_mongo::{Client, bson::{doc, Document}};
//! # fn main() -> may_mongo::error::Result<()> {
//! # let coll = Client::with_uri_str("mongodb://127.0.0.1/")?.database("d").collection::<Document>("c");
//! let cursor = coll.find(doc! { "kind": "fruit" }).sort(doc! { "name": 1 }).limit(5).run()?;
//! for fruit in cursor {
//!     println!("{}", fruit?);
//! }
//! # Ok(()) }
//! ```
//!
//! In a may coroutine `.run()` parks the coroutine while it waits for the server; on a plain
//! thread it blocks the thread. Nothing is sent before `.run()`: an action that is dropped
//! unrun does nothing (hence `#[must_use]`).
//!
//! Each module is the one home of its operation: the action type, its setters, and how
//! `.run()` turns it into a command (built from typed fields) and the reply into a result.
//! The handles (`Collection`, `Database`, `Client`, `GridFsBucket`) only construct actions.
//! Every action goes through the one executor (`Client::execute`), which owns server
//! selection, the connection, retries and monitoring.

pub(crate) mod aggregate;
pub(crate) mod bulk_write;
pub(crate) mod client_options;
pub(crate) mod count;
pub(crate) mod create_collection;
pub(crate) mod delete;
pub(crate) mod distinct;
pub(crate) mod drop;
pub(crate) mod find;
pub(crate) mod find_and_modify;
pub(crate) mod gridfs;
pub(crate) mod index;
pub(crate) mod insert;
pub(crate) mod list_collections;
pub(crate) mod list_databases;
pub(crate) mod rename;
pub(crate) mod run_command;
pub(crate) mod search_index;
pub(crate) mod session;
pub(crate) mod transaction;
pub mod update;
pub(crate) mod watch;

pub use aggregate::Aggregate;
pub use bulk_write::BulkWrite;
pub use client_options::ParseConnectionString;
pub use count::{CountDocuments, EstimatedDocumentCount};
pub use create_collection::CreateCollection;
pub use delete::Delete;
pub use distinct::Distinct;
pub use drop::{DropCollection, DropDatabase};
pub use find::{Find, FindOne};
pub use find_and_modify::{FindOneAndDelete, FindOneAndReplace, FindOneAndUpdate};
pub use gridfs::{
    Delete as GridFsDelete, DeleteByName, Drop as GridFsDrop, Find as GridFsFind,
    OpenDownloadStream, OpenDownloadStreamByName, OpenUploadStream, Rename, RenameByName,
};
pub use index::{CreateIndex, CreateIndexes, DropIndex, DropIndexes, ListIndexNames, ListIndexes};
pub use insert::{InsertMany, InsertOne};
pub use list_collections::{ListCollectionNames, ListCollections};
pub use list_databases::{ListDatabaseNames, ListDatabases};
pub use rename::RenameCollection;
pub use run_command::{RunCommand, RunCursorCommand};
pub use search_index::{
    CreateSearchIndex, CreateSearchIndexes, DropSearchIndex, ListSearchIndexes, UpdateSearchIndex,
};
pub use session::StartSession;
pub use transaction::{AbortTransaction, CommitTransaction, StartTransaction};
pub use update::{ReplaceOne, Update};
pub use watch::Watch;

/// A cursor action with no explicit session (the default): `.run()` returns a
/// [`Cursor`](crate::Cursor) that keeps an implicit session for its `getMore`s.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImplicitSession;

/// A cursor action in an explicit session (after `.session(&mut session)`): `.run()`
/// returns a [`SessionCursor`](crate::SessionCursor), iterated with the session.
#[derive(Clone, Debug)]
pub struct ExplicitSession(pub(crate) std::sync::Arc<crate::session::SessionCell>);

/// `.session(&mut session)` for an action that takes no type state: it keeps the session's
/// state (`self.session`) for `.run()`.
macro_rules! session_setter {
    () => {
        /// Runs the operation in `session`, an explicit session (see
        /// [`ClientSession`](crate::ClientSession)).
        pub fn session(mut self, session: &mut crate::client_session::ClientSession) -> Self {
            self.session = Some(session.cell.clone());
            self
        }
    };
}
pub(crate) use session_setter;

/// Setters for an action's options, after the official crate's: one per field of the options
/// struct, each taking the field's type without its `Option` (`into`: any `Into` of it;
/// `iter`: any iterator of its items), plus `with_options` to set them all at once. The
/// action keeps its options in `self.options: Option<$opts>`.
macro_rules! option_setters {
    ($opts:ty { $($name:ident: $how:ident $ty:ty),* $(,)? }) => {
        #[allow(dead_code)]
        fn options(&mut self) -> &mut $opts {
            self.options.get_or_insert_with(<$opts>::default)
        }

        /// Sets every option at once, replacing what earlier setters set.
        pub fn with_options(mut self, value: impl Into<Option<$opts>>) -> Self {
            self.options = value.into();
            self
        }

        $( $crate::action::option_setters!(@one $opts, $name, $how, $ty); )*
    };
    (@one $opts:ty, $name:ident, plain, $ty:ty) => {
        #[doc = concat!("Sets the `", stringify!($name), "` option (see [`", stringify!($opts), "`]).")]
        pub fn $name(mut self, value: $ty) -> Self {
            self.options().$name = Some(value);
            self
        }
    };
    (@one $opts:ty, $name:ident, into, $ty:ty) => {
        #[doc = concat!("Sets the `", stringify!($name), "` option (see [`", stringify!($opts), "`]).")]
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.options().$name = Some(value.into());
            self
        }
    };
    (@one $opts:ty, $name:ident, iter, $ty:ty) => {
        #[doc = concat!("Sets the `", stringify!($name), "` option (see [`", stringify!($opts), "`]).")]
        pub fn $name(mut self, value: impl IntoIterator<Item = $ty>) -> Self {
            self.options().$name = Some(value.into_iter().collect());
            self
        }
    };
}
pub(crate) use option_setters;
