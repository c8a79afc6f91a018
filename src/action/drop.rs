//! `drop` and `dropDatabase`.

use bson::doc;

use crate::client::Route;
use crate::collection::Collection;
use crate::concern::WriteConcern;
use crate::crud_types::DropCollectionOptions;
use crate::database::Database;
use crate::db_options::DropDatabaseOptions;
use crate::error::Result;
use crate::ops::Command;
use crate::retry::Retry;

use super::{option_setters, session_setter};

impl<T> Collection<T> {
    /// Drops the collection: its documents and indexes. A missing collection is not an error
    /// (servers answer "ns not found", code 26 or, on some, code 0: both count as done).
    pub fn drop(&self) -> DropCollection<'_, T> {
        DropCollection {
            session: None,
            coll: self,
            options: None,
        }
    }
}

impl Database {
    /// Drops the database. A missing database is not an error.
    pub fn drop(&self) -> DropDatabase<'_> {
        DropDatabase {
            session: None,
            db: self,
            options: None,
        }
    }
}

/// Drops a collection. Made by [`Collection::drop`].
#[must_use = "nothing is sent until .run()"]
pub struct DropCollection<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) options: Option<DropCollectionOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> DropCollection<'_, T> {
    session_setter!();

    option_setters!(DropCollectionOptions {
        write_concern: plain WriteConcern,
    });

    /// Sends `drop`.
    pub fn run(self) -> Result<()> {
        let options = self.options.unwrap_or_default();
        let coll = self
            .coll
            .overridden(None, None, options.write_concern, self.session);
        match coll.write("drop", doc! { "drop": &*coll.name }, Retry::No, |_| Ok(())) {
            Err(e) if e.is_ns_not_found() => Ok(()),
            other => other,
        }
    }
}

/// Drops a database. Made by [`Database::drop`].
#[must_use = "nothing is sent until .run()"]
pub struct DropDatabase<'a> {
    pub(crate) db: &'a Database,
    pub(crate) options: Option<DropDatabaseOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl DropDatabase<'_> {
    session_setter!();

    option_setters!(DropDatabaseOptions {
        write_concern: plain WriteConcern,
    });

    /// Sends `dropDatabase`.
    pub fn run(self) -> Result<()> {
        let options = self.options.unwrap_or_default();
        let db = self
            .db
            .overridden(None, None, options.write_concern, self.session);
        let mut body = doc! { "dropDatabase": 1 };
        if let Some(wc) = db.settings.write_concern_doc() {
            body.insert("writeConcern", wc);
        }
        let mut op = Command::write("dropDatabase", &db.name, body, |_| Ok(()));
        db.client
            .execute(&mut op, Route::selected(db.settings.timeout))
            .map(|e| e.output)
    }
}
