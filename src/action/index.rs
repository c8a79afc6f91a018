//! Index management: `createIndexes`, `dropIndexes`, `listIndexes`.

use std::time::Duration;

use bson::{Bson, Document, doc};
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::client_session::ClientSession;
use crate::collection::Collection;
use crate::concern::WriteConcern;
use crate::crud_types::{CommitQuorum, CreateIndexOptions, DropIndexOptions, ListIndexesOptions};
use crate::cursor::{Cursor, CursorSpec, SessionCursor};
use crate::error::Result;
use crate::index::IndexModel;
use crate::results::{CreateIndexResult, CreateIndexesResult};
use crate::retry::Retry;

use super::{ExplicitSession, ImplicitSession, option_setters, session_setter};
use crate::ops::body::{CursorField, millis, to_body};

impl<T> Collection<T> {
    /// Creates one index; [`run`](CreateIndex::run) returns its name.
    pub fn create_index(&self, index: IndexModel) -> CreateIndex<'_, T> {
        CreateIndex {
            session: None,
            coll: self,
            indexes: vec![index],
            options: None,
        }
    }

    /// Creates several indexes in one command.
    pub fn create_indexes(
        &self,
        indexes: impl IntoIterator<Item = IndexModel>,
    ) -> CreateIndexes<'_, T> {
        CreateIndexes(CreateIndex {
            session: None,
            coll: self,
            indexes: indexes.into_iter().collect(),
            options: None,
        })
    }

    /// Drops the index called `name`.
    pub fn drop_index(&self, name: impl AsRef<str>) -> DropIndex<'_, T> {
        DropIndex {
            session: None,
            coll: self,
            name: Some(name.as_ref().to_string()),
            options: None,
        }
    }

    /// Drops every index but `_id`'s.
    pub fn drop_indexes(&self) -> DropIndexes<'_, T> {
        DropIndex {
            session: None,
            coll: self,
            name: None,
            options: None,
        }
    }

    /// The collection's indexes, as [`IndexModel`]s.
    pub fn list_indexes(&self) -> ListIndexes<'_, T> {
        ListIndexes {
            session: ImplicitSession,
            coll: self,
            options: None,
        }
    }

    /// The names of the collection's indexes.
    pub fn list_index_names(&self) -> ListIndexNames<'_, T> {
        ListIndexNames(self.list_indexes(), None)
    }
}

/// Creates an index. Made by [`Collection::create_index`].
#[must_use = "nothing is sent until .run()"]
pub struct CreateIndex<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) indexes: Vec<IndexModel>,
    pub(crate) options: Option<CreateIndexOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

/// Creates several indexes. Made by [`Collection::create_indexes`].
#[must_use = "nothing is sent until .run()"]
pub struct CreateIndexes<'a, T>(pub(crate) CreateIndex<'a, T>);

impl<T> CreateIndex<'_, T> {
    session_setter!();

    option_setters!(CreateIndexOptions {
        commit_quorum: plain crate::crud_types::CommitQuorum,
        max_time: plain Duration,
        write_concern: plain WriteConcern,
        comment: into Bson,
    });

    /// Sends `createIndexes`.
    pub fn run(self) -> Result<CreateIndexResult> {
        let mut names = self.send()?;
        Ok(CreateIndexResult {
            index_name: names.remove(0),
        })
    }

    fn send(self) -> Result<Vec<String>> {
        let options = self.options.unwrap_or_default();
        let coll = self
            .coll
            .overridden(None, None, options.write_concern.clone(), self.session);
        let indexes = self.indexes;
        // The specs are serialized on a driver stack: serde's frames for the index options
        // are large in an unoptimised build.
        let name = &coll.name;
        let (names, body) = crate::runtime::on_driver_stack(move || -> Result<_> {
            let names: Vec<String> = indexes.iter().map(IndexModel::name).collect();
            let specs: Vec<Document> = indexes
                .into_iter()
                .zip(&names)
                .map(|(m, name)| m.into_spec(name))
                .collect::<Result<_>>()?;
            let body = to_body(&CreateIndexesCommand {
                create_indexes: name,
                indexes: &specs,
                commit_quorum: options.commit_quorum.as_ref(),
                max_time: options.max_time,
                comment: options.comment.as_ref(),
            })?;
            Ok((names, body))
        })?;
        coll.write("createIndexes", body, Retry::No, |_| Ok(()))?;
        Ok(names)
    }
}

impl<T> CreateIndexes<'_, T> {
    /// Creates the indexes in `session`, an explicit session.
    pub fn session(self, session: &mut ClientSession) -> Self {
        CreateIndexes(self.0.session(session))
    }

    /// Sets every option at once, replacing what earlier setters set.
    pub fn with_options(self, value: impl Into<Option<CreateIndexOptions>>) -> Self {
        CreateIndexes(self.0.with_options(value))
    }

    /// Sets the `commit_quorum` option.
    pub fn commit_quorum(self, value: crate::crud_types::CommitQuorum) -> Self {
        CreateIndexes(self.0.commit_quorum(value))
    }

    /// Sets the `max_time` option.
    pub fn max_time(self, value: Duration) -> Self {
        CreateIndexes(self.0.max_time(value))
    }

    /// Sets the `write_concern` option.
    pub fn write_concern(self, value: WriteConcern) -> Self {
        CreateIndexes(self.0.write_concern(value))
    }

    /// Sets the `comment` option.
    pub fn comment(self, value: impl Into<Bson>) -> Self {
        CreateIndexes(self.0.comment(value))
    }

    /// Sends `createIndexes`; the result names the indexes in the order given.
    pub fn run(self) -> Result<CreateIndexesResult> {
        Ok(CreateIndexesResult {
            index_names: self.0.send()?,
        })
    }
}

/// Drops one index, or all but `_id`'s. Made by [`Collection::drop_index`] and
/// [`Collection::drop_indexes`].
#[must_use = "nothing is sent until .run()"]
pub struct DropIndex<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    /// `None`: every index (`"*"`).
    pub(crate) name: Option<String>,
    pub(crate) options: Option<DropIndexOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

/// The same action as [`DropIndex`], for every index.
pub type DropIndexes<'a, T> = DropIndex<'a, T>;

impl<T> DropIndex<'_, T> {
    session_setter!();

    option_setters!(DropIndexOptions {
        max_time: plain Duration,
        write_concern: plain WriteConcern,
        comment: into Bson,
    });

    /// Sends `dropIndexes`.
    pub fn run(self) -> Result<()> {
        let options = self.options.unwrap_or_default();
        let coll = self
            .coll
            .overridden(None, None, options.write_concern.clone(), self.session);
        let index = self.name.unwrap_or_else(|| "*".to_string());
        let body = to_body(&DropIndexesCommand {
            drop_indexes: &coll.name,
            index: &index,
            max_time: options.max_time,
            comment: options.comment.as_ref(),
        })?;
        coll.write("dropIndexes", body, Retry::No, |_| Ok(()))
    }
}

/// Lists the indexes. Made by [`Collection::list_indexes`].
#[must_use = "nothing is sent until .run()"]
pub struct ListIndexes<'a, T, S = ImplicitSession> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) options: Option<ListIndexesOptions>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a, T> ListIndexes<'a, T> {
    /// Lists in `session`: [`run`](ListIndexes::run) then returns a [`SessionCursor`].
    pub fn session(self, session: &mut ClientSession) -> ListIndexes<'a, T, ExplicitSession> {
        ListIndexes {
            coll: self.coll,
            options: self.options,
            session: ExplicitSession(session.cell.clone()),
        }
    }

    /// Sends `listIndexes`; each index comes back as an [`IndexModel`].
    pub fn run(self) -> Result<Cursor<IndexModel>> {
        self.open(None)
    }
}

impl<T> ListIndexes<'_, T, ExplicitSession> {
    /// Sends `listIndexes` in the session.
    pub fn run(self) -> Result<SessionCursor<IndexModel>> {
        let session = self.session.0.clone();
        self.open(Some(session)).map(SessionCursor::new)
    }
}

impl<T, S> ListIndexes<'_, T, S> {
    option_setters!(ListIndexesOptions {
        max_time: plain Duration,
        batch_size: plain u32,
        comment: into Bson,
    });

    pub(crate) fn open<U>(
        self,
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<Cursor<U>> {
        let options = self.options.unwrap_or_default();
        let body = to_body(&ListIndexesCommand {
            list_indexes: &self.coll.name,
            cursor: CursorField {
                batch_size: options.batch_size.map(|b| b.min(i32::MAX as u32) as i32),
            },
            max_time: options.max_time,
            comment: options.comment.as_ref(),
        })?;
        let spec = CursorSpec {
            batch_size: options.batch_size,
            comment: options.comment,
            ..CursorSpec::default()
        };
        self.coll
            .overridden(None, None, None, session)
            .cursor("listIndexes", body, false, spec)
    }
}

/// Lists the indexes' names. Made by [`Collection::list_index_names`].
#[must_use = "nothing is sent until .run()"]
pub struct ListIndexNames<'a, T>(
    pub(crate) ListIndexes<'a, T>,
    pub(crate) Option<std::sync::Arc<crate::session::SessionCell>>,
);

impl<T> ListIndexNames<'_, T> {
    /// Lists in `session`, an explicit session.
    pub fn session(mut self, session: &mut ClientSession) -> Self {
        self.1 = Some(session.cell.clone());
        self
    }

    /// Sets the `max_time` option.
    pub fn max_time(self, value: Duration) -> Self {
        ListIndexNames(self.0.max_time(value), self.1)
    }

    /// Sets the `batch_size` option.
    pub fn batch_size(self, value: u32) -> Self {
        ListIndexNames(self.0.batch_size(value), self.1)
    }

    /// Sets the `comment` option.
    pub fn comment(self, value: impl Into<Bson>) -> Self {
        ListIndexNames(self.0.comment(value), self.1)
    }

    /// Sends `listIndexes` and reads every name.
    pub fn run(self) -> Result<Vec<String>> {
        let cursor = self.0.open::<Document>(self.1)?;
        let mut names = Vec::new();
        for index in cursor {
            if let Ok(name) = index?.get_str("name") {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
}

/// The `createIndexes` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateIndexesCommand<'a> {
    create_indexes: &'a str,
    indexes: &'a [Document],
    commit_quorum: Option<&'a CommitQuorum>,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
}

/// The `dropIndexes` command (`index: "*"` drops all but `_id`'s).
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DropIndexesCommand<'a> {
    drop_indexes: &'a str,
    index: &'a str,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
}

/// The `listIndexes` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListIndexesCommand<'a> {
    list_indexes: &'a str,
    cursor: CursorField,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
}
