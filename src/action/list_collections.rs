//! `listCollections`: the collections' specifications, or only their names.

use bson::{Bson, Document, doc};
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::client_session::ClientSession;
use crate::cursor::{Cursor, CursorSpec, CursorStart, SessionCursor};
use crate::database::Database;
use crate::db_options::ListCollectionsOptions;
use crate::error::Result;
use crate::ops::Command;
use crate::results::CollectionSpecification;
use crate::retry::Retry;

use super::{ExplicitSession, ImplicitSession, option_setters};
use crate::ops::body::{CursorField, to_body};

impl Database {
    /// The collections' specifications (name, type, options, ...).
    pub fn list_collections(&self) -> ListCollections<'_> {
        ListCollections {
            session: ImplicitSession,
            db: self,
            options: None,
        }
    }

    /// The collections' names (`listCollections` with `nameOnly`).
    pub fn list_collection_names(&self) -> ListCollectionNames<'_> {
        ListCollectionNames(self.list_collections(), None)
    }
}

/// Lists the collections. Made by [`Database::list_collections`].
#[must_use = "nothing is sent until .run()"]
pub struct ListCollections<'a, S = ImplicitSession> {
    pub(crate) db: &'a Database,
    pub(crate) options: Option<ListCollectionsOptions>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a> ListCollections<'a> {
    /// Lists in `session`: [`run`](ListCollections::run) then returns a [`SessionCursor`].
    pub fn session(self, session: &mut ClientSession) -> ListCollections<'a, ExplicitSession> {
        ListCollections {
            db: self.db,
            options: self.options,
            session: ExplicitSession(session.cell.clone()),
        }
    }

    /// Sends `listCollections`; each collection comes back as a [`CollectionSpecification`].
    pub fn run(self) -> Result<Cursor<CollectionSpecification>> {
        self.open(false, None)
    }
}

impl ListCollections<'_, ExplicitSession> {
    /// Sends `listCollections` in the session.
    pub fn run(self) -> Result<SessionCursor<CollectionSpecification>> {
        let session = self.session.0.clone();
        self.open(false, Some(session)).map(SessionCursor::new)
    }
}

impl<S> ListCollections<'_, S> {
    option_setters!(ListCollectionsOptions {
        batch_size: plain u32,
        filter: plain Document,
        authorized_collections: plain bool,
        comment: into Bson,
    });

    /// The command, sent to the primary as a retryable read, in `session` if given.
    pub(crate) fn open<U>(
        self,
        name_only: bool,
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<Cursor<U>> {
        let options = self.options.unwrap_or_default();
        let body = to_body(&ListCollectionsCommand {
            list_collections: 1,
            cursor: CursorField {
                batch_size: options.batch_size.map(|b| b.min(i32::MAX as u32) as i32),
            },
            filter: options.filter.as_ref(),
            name_only: name_only.then_some(true),
            authorized_collections: options.authorized_collections,
            comment: options.comment.as_ref(),
        })?;
        let op = Command::write("listCollections", &self.db.name, body, CursorStart::read)
            .retryable(Retry::Read);
        let spec = CursorSpec {
            batch_size: options.batch_size,
            comment: options.comment,
            timeout: self.db.settings.timeout,
            ..CursorSpec::default()
        };
        Cursor::open(&self.db.client, op, spec, session)
    }
}

/// Lists the collections' names. Made by [`Database::list_collection_names`].
#[must_use = "nothing is sent until .run()"]
pub struct ListCollectionNames<'a>(
    pub(crate) ListCollections<'a>,
    pub(crate) Option<std::sync::Arc<crate::session::SessionCell>>,
);

impl ListCollectionNames<'_> {
    /// Lists in `session`, an explicit session.
    pub fn session(mut self, session: &mut ClientSession) -> Self {
        self.1 = Some(session.cell.clone());
        self
    }

    /// Sets every option at once.
    pub fn with_options(self, value: impl Into<Option<ListCollectionsOptions>>) -> Self {
        ListCollectionNames(self.0.with_options(value), self.1)
    }

    /// Only the collections this filter matches (on `name`, `type`, `options`, ...).
    pub fn filter(self, value: Document) -> Self {
        ListCollectionNames(self.0.filter(value), self.1)
    }

    /// Sets the `batch_size` option.
    pub fn batch_size(self, value: u32) -> Self {
        ListCollectionNames(self.0.batch_size(value), self.1)
    }

    /// Sets the `authorized_collections` option.
    pub fn authorized_collections(self, value: bool) -> Self {
        ListCollectionNames(self.0.authorized_collections(value), self.1)
    }

    /// Sets the `comment` option.
    pub fn comment(self, value: impl Into<Bson>) -> Self {
        ListCollectionNames(self.0.comment(value), self.1)
    }

    /// Sends `listCollections` with `nameOnly` and reads every name.
    pub fn run(self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for c in self.0.open::<Document>(true, self.1)? {
            if let Ok(name) = c?.get_str("name") {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
}

/// The `listCollections` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListCollectionsCommand<'a> {
    list_collections: i32,
    cursor: CursorField,
    filter: Option<&'a Document>,
    name_only: Option<bool>,
    authorized_collections: Option<bool>,
    comment: Option<&'a Bson>,
}
