//! `rename`: the `renameCollection` command, which gives a collection a new name in its
//! database (sent to `admin`, as the server requires).

use super::session_setter;
use bson::Bson;
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::client::Route;
use crate::collection::Collection;
use crate::concern::WriteConcern;
use crate::error::Result;
use crate::ops::Command;
use crate::ops::body::to_body;

impl<T> Collection<T> {
    /// Renames this collection to `to`, in the same database. The handle keeps its old name:
    /// make a new one for the new name. A collection called `to` already there is an error
    /// unless [`drop_target`](RenameCollection::drop_target) is set.
    pub fn rename(&self, to: impl AsRef<str>) -> RenameCollection<'_, T> {
        RenameCollection {
            session: None,
            coll: self,
            to: to.as_ref().to_string(),
            drop_target: None,
            write_concern: None,
            comment: None,
        }
    }
}

/// Renames a collection. Made by [`Collection::rename`].
#[must_use = "nothing is sent until .run()"]
pub struct RenameCollection<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) to: String,
    pub(crate) drop_target: Option<bool>,
    pub(crate) write_concern: Option<WriteConcern>,
    pub(crate) comment: Option<Bson>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> RenameCollection<'_, T> {
    session_setter!();

    /// Drops a collection already called `to` first, instead of failing.
    pub fn drop_target(mut self, value: bool) -> Self {
        self.drop_target = Some(value);
        self
    }

    /// The write concern for this command (else the collection's).
    pub fn write_concern(mut self, value: WriteConcern) -> Self {
        self.write_concern = Some(value);
        self
    }

    /// A comment for logs and `currentOp`.
    pub fn comment(mut self, value: impl Into<Bson>) -> Self {
        self.comment = Some(value.into());
        self
    }

    /// Sends `renameCollection`.
    pub fn run(self) -> Result<()> {
        let coll = self
            .coll
            .overridden(None, None, self.write_concern, self.session);
        let body = to_body(&RenameCommand {
            rename_collection: format!("{}.{}", coll.db, coll.name),
            to: format!("{}.{}", coll.db, self.to),
            drop_target: self.drop_target,
            comment: self.comment.as_ref(),
            write_concern: coll.settings.write_concern_doc(),
        })?;
        let mut op = Command::write("renameCollection", "admin", body, |_| Ok(()));
        coll.client
            .execute(&mut op, Route::selected(coll.settings.timeout))
            .map(|e| e.output)
    }
}

/// The `renameCollection` command: namespaces in full (`db.collection`).
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenameCommand<'a> {
    rename_collection: String,
    to: String,
    drop_target: Option<bool>,
    comment: Option<&'a Bson>,
    write_concern: Option<bson::Document>,
}
