//! `listDatabases`: the databases' specifications, or only their names.

use bson::{Bson, Document, RawDocument, doc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_with::skip_serializing_none;

use crate::client::{Client, Route};
use crate::db_options::ListDatabasesOptions;
use crate::error::Result;
use crate::ops::{Command, malformed_reply};
use crate::results::DatabaseSpecification;

use super::{option_setters, session_setter};
use crate::ops::body::to_body;

impl Client {
    /// Every database's specification (name, size on disk, empty).
    pub fn list_databases(&self) -> ListDatabases<'_> {
        ListDatabases {
            session: None,
            client: self,
            options: None,
        }
    }

    /// Every database's name (`listDatabases` with `nameOnly`).
    pub fn list_database_names(&self) -> ListDatabaseNames<'_> {
        ListDatabaseNames(self.list_databases())
    }
}

/// Lists the databases. Made by [`Client::list_databases`].
#[must_use = "nothing is sent until .run()"]
pub struct ListDatabases<'a> {
    pub(crate) client: &'a Client,
    pub(crate) options: Option<ListDatabasesOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl ListDatabases<'_> {
    session_setter!();

    option_setters!(ListDatabasesOptions {
        authorized_databases: plain bool,
        filter: plain Document,
        comment: into Bson,
    });

    /// Sends `listDatabases`.
    pub fn run(self) -> Result<Vec<DatabaseSpecification>> {
        self.send(false)
    }

    /// The command, sent to the primary; each entry decoded as `U`.
    fn send<U: DeserializeOwned + 'static>(self, name_only: bool) -> Result<Vec<U>> {
        let options = self.options.unwrap_or_default();
        let body = to_body(&ListDatabasesCommand {
            list_databases: 1,
            filter: options.filter.as_ref(),
            name_only: name_only.then_some(true),
            authorized_databases: options.authorized_databases,
            comment: options.comment.as_ref(),
        })?;
        let mut op = Command::write("listDatabases", "admin", body, |r: &RawDocument| {
            let dbs = r
                .get_array("databases")
                .map_err(|_| malformed_reply("listDatabases", "no databases"))?;
            dbs.into_iter()
                .map(|d| {
                    d.ok()
                        .and_then(|d| d.as_document())
                        .ok_or_else(|| malformed_reply("listDatabases", "entry"))
                        .and_then(crate::decode::decode)
                })
                .collect()
        });
        self.client
            .execute(
                &mut op,
                Route::selected(self.client.options().timeout).in_session(self.session),
            )
            .map(|e| e.output)
    }
}

/// Lists the databases' names. Made by [`Client::list_database_names`].
#[must_use = "nothing is sent until .run()"]
pub struct ListDatabaseNames<'a>(pub(crate) ListDatabases<'a>);

impl ListDatabaseNames<'_> {
    /// Lists in `session`, an explicit session.
    pub fn session(self, session: &mut crate::client_session::ClientSession) -> Self {
        ListDatabaseNames(self.0.session(session))
    }

    /// Only the databases this filter matches.
    pub fn filter(self, value: Document) -> Self {
        ListDatabaseNames(self.0.filter(value))
    }

    /// Sets the `authorized_databases` option.
    pub fn authorized_databases(self, value: bool) -> Self {
        ListDatabaseNames(self.0.authorized_databases(value))
    }

    /// Sets the `comment` option.
    pub fn comment(self, value: impl Into<Bson>) -> Self {
        ListDatabaseNames(self.0.comment(value))
    }

    /// Sends `listDatabases` with `nameOnly`.
    pub fn run(self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Name {
            name: String,
        }
        let names: Vec<Name> = self.0.send(true)?;
        Ok(names.into_iter().map(|n| n.name).collect())
    }
}

/// The `listDatabases` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListDatabasesCommand<'a> {
    list_databases: i32,
    filter: Option<&'a Document>,
    name_only: Option<bool>,
    authorized_databases: Option<bool>,
    comment: Option<&'a Bson>,
}
