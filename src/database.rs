//! A database handle.

use std::borrow::Cow;
use std::sync::Arc;

use crate::client::Client;
use crate::collection::{Collection, Settings};
use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::CollectionOptions;
use crate::db_options::DatabaseOptions;
use crate::selection_criteria::{ReadPreference, SelectionCriteria};

/// A handle to one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) client: Client,
    pub(crate) name: Arc<str>,
    pub(crate) settings: Arc<Settings>,
}

impl Database {
    pub(crate) fn new(client: Client, name: &str) -> Database {
        let o = client.options();
        let settings = Settings {
            session: None,
            selection_criteria: None, // the client's applies
            criteria: None,
            read_concern: o.read_concern.clone(),
            write_concern: o.write_concern.clone(),
            timeout: o.timeout,
        };
        Database {
            client,
            name: name.into(),
            settings: Arc::new(settings),
        }
    }

    /// A handle to database `name` with `options`' selection criteria and concerns where they
    /// are set, the client's elsewhere.
    pub(crate) fn with_options(client: Client, name: &str, options: DatabaseOptions) -> Database {
        let db = Database::new(client, name);
        db.overridden(
            options.selection_criteria,
            options.read_concern,
            options.write_concern,
            None,
        )
        .into_owned()
    }

    /// This database with another read preference for its collections' reads.
    pub fn with_read_preference(&self, rp: ReadPreference) -> Database {
        self.with(|s| s.set_selection_criteria(rp.into()))
    }

    /// Where this database's collections read, unless they or an operation say otherwise:
    /// its own selection criteria or the client's.
    pub fn selection_criteria(&self) -> Option<&SelectionCriteria> {
        self.settings.selection_criteria_or(self.client.options())
    }

    /// This database's read concern (its own or the client's).
    pub fn read_concern(&self) -> Option<&ReadConcern> {
        self.settings.read_concern.as_ref()
    }

    /// This database's write concern (its own or the client's).
    pub fn write_concern(&self) -> Option<&WriteConcern> {
        self.settings.write_concern.as_ref()
    }

    /// This database with another read concern.
    pub fn with_read_concern(&self, rc: ReadConcern) -> Database {
        self.with(|s| s.read_concern = Some(rc))
    }

    /// This database with another write concern.
    pub fn with_write_concern(&self, wc: WriteConcern) -> Database {
        self.with(|s| s.write_concern = Some(wc))
    }

    /// This database (and the collections it hands out) with a limit on each whole operation;
    /// `None` lifts it. A call that runs out gets
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
    pub fn with_timeout(&self, timeout: Option<std::time::Duration>) -> Database {
        self.with(|s| s.timeout = timeout)
    }

    fn with(&self, f: impl FnOnce(&mut Settings)) -> Database {
        let mut settings = (*self.settings).clone();
        f(&mut settings);
        Database {
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client this handle belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A handle to collection `name`, whose documents are `T` (use [`Document`](bson::Document) for untyped
    /// access). No I/O.
    pub fn collection<T>(&self, name: &str) -> Collection<T> {
        Collection::new(
            self.client.clone(),
            self.name.clone(),
            name,
            self.settings.clone(),
        )
    }

    /// A handle to collection `name` with `options`' selection criteria and concerns where
    /// they are set, this database's elsewhere. No I/O.
    pub fn collection_with_options<T>(
        &self,
        name: &str,
        options: CollectionOptions,
    ) -> Collection<T> {
        self.collection(name).with_options(&options)
    }

    /// This database with an operation's own selection criteria, read concern and write
    /// concern in place of the handle's (see `Collection::overridden`).
    pub(crate) fn overridden(
        &self,
        criteria: Option<SelectionCriteria>,
        read_concern: Option<ReadConcern>,
        write_concern: Option<WriteConcern>,
        session: Option<Arc<crate::session::SessionCell>>,
    ) -> Cow<'_, Database> {
        match self.settings.for_operation(
            criteria.as_ref(),
            read_concern.as_ref(),
            write_concern.as_ref(),
            session,
        ) {
            Some(settings) => Cow::Owned(Database {
                settings: Arc::new(settings),
                ..self.clone()
            }),
            None => Cow::Borrowed(self),
        }
    }
}

/// The database handles, made by the client. Here rather than in `client.rs`: the client is
/// below the handles it serves, and does not import them.
impl Client {
    /// A handle to database `name` (no I/O).
    pub fn database(&self, name: &str) -> Database {
        Database::new(self.clone(), name)
    }

    /// A handle to database `name` with `options`' selection criteria and concerns where they
    /// are set, the client's elsewhere (no I/O).
    pub fn database_with_options(&self, name: &str, options: DatabaseOptions) -> Database {
        Database::with_options(self.clone(), name, options)
    }

    /// The database named in the connection string's path, if any.
    pub fn default_database(&self) -> Option<Database> {
        self.options()
            .default_database
            .as_deref()
            .map(|name| self.database(name))
    }
}
