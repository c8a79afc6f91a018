//! `listCollections`: the collections' specifications, or only their names.

use bson::{Bson, Document, doc};
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::cursor::{Cursor, CursorSpec, CursorStart};
use crate::database::Database;
use crate::db_options::ListCollectionsOptions;
use crate::error::Result;
use crate::ops::Command;
use crate::results::CollectionSpecification;
use crate::retry::Retry;

use super::option_setters;
use crate::ops::body::{CursorField, to_body};

impl Database {
    /// The collections' specifications (name, type, options, ...).
    pub fn list_collections(&self) -> ListCollections<'_> {
        ListCollections {
            db: self,
            options: None,
        }
    }

    /// The collections' names (`listCollections` with `nameOnly`).
    pub fn list_collection_names(&self) -> ListCollectionNames<'_> {
        ListCollectionNames(self.list_collections())
    }
}

/// Lists the collections. Made by [`Database::list_collections`].
#[must_use = "nothing is sent until .run()"]
pub struct ListCollections<'a> {
    pub(crate) db: &'a Database,
    pub(crate) options: Option<ListCollectionsOptions>,
}

impl ListCollections<'_> {
    option_setters!(ListCollectionsOptions {
        batch_size: plain u32,
        filter: plain Document,
        authorized_collections: plain bool,
        comment: into Bson,
    });

    /// Sends `listCollections`; each collection comes back as a [`CollectionSpecification`].
    pub fn run(self) -> Result<Cursor<CollectionSpecification>> {
        self.open(false)
    }

    /// The command, sent to the primary as a retryable read.
    pub(crate) fn open<U>(self, name_only: bool) -> Result<Cursor<U>> {
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
        Cursor::open(&self.db.client, op, spec)
    }
}

/// Lists the collections' names. Made by [`Database::list_collection_names`].
#[must_use = "nothing is sent until .run()"]
pub struct ListCollectionNames<'a>(pub(crate) ListCollections<'a>);

impl ListCollectionNames<'_> {
    /// Sets every option at once.
    pub fn with_options(self, value: impl Into<Option<ListCollectionsOptions>>) -> Self {
        ListCollectionNames(self.0.with_options(value))
    }

    /// Only the collections this filter matches (on `name`, `type`, `options`, ...).
    pub fn filter(self, value: Document) -> Self {
        ListCollectionNames(self.0.filter(value))
    }

    /// Sets the `batch_size` option.
    pub fn batch_size(self, value: u32) -> Self {
        ListCollectionNames(self.0.batch_size(value))
    }

    /// Sets the `authorized_collections` option.
    pub fn authorized_collections(self, value: bool) -> Self {
        ListCollectionNames(self.0.authorized_collections(value))
    }

    /// Sets the `comment` option.
    pub fn comment(self, value: impl Into<Bson>) -> Self {
        ListCollectionNames(self.0.comment(value))
    }

    /// Sends `listCollections` with `nameOnly` and reads every name.
    pub fn run(self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for c in self.0.open::<Document>(true)? {
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
