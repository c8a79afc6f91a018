//! `delete_one` and `delete_many`: the `delete` command with one statement.

use bson::{Bson, Document, doc};

use crate::collection::{Collection, delete_statement, single_write_reply};
use crate::crud_types::DeleteOptions;
use crate::error::Result;
use crate::results::DeleteResult;
use crate::retry::Retry;

use super::{option_setters, session_setter};
use crate::ops::body::{WriteCommandFields, to_body};

impl<T> Collection<T> {
    /// Deletes the first document matching `query`.
    pub fn delete_one(&self, query: Document) -> Delete<'_, T> {
        Delete {
            session: None,
            coll: self,
            query,
            limit: 1,
            options: None,
        }
    }

    /// Deletes every document matching `query`.
    pub fn delete_many(&self, query: Document) -> Delete<'_, T> {
        Delete {
            session: None,
            coll: self,
            query,
            limit: 0,
            options: None,
        }
    }
}

/// Deletes one or many documents. Made by [`Collection::delete_one`] and
/// [`Collection::delete_many`].
#[must_use = "nothing is sent until .run()"]
pub struct Delete<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) query: Document,
    /// 1: one document; 0: all that match.
    pub(crate) limit: i32,
    pub(crate) options: Option<DeleteOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> Delete<'_, T> {
    session_setter!();

    option_setters!(DeleteOptions {
        collation: plain crate::collation::Collation,
        write_concern: plain crate::concern::WriteConcern,
        hint: plain crate::crud_types::Hint,
        let_vars: plain Document,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `delete` command.
    pub fn run(self) -> Result<DeleteResult> {
        let mut options = self.options.unwrap_or_default();
        let coll = self
            .coll
            .overridden(None, None, options.write_concern.take(), self.session);
        let (query, limit) = (self.query, self.limit);
        // Built on a driver stack: the options and the statement are large frames at
        // opt-level 0.
        let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
            let statement = delete_statement(query, limit, &options)?;
            let mut body = doc! { "delete": &*coll.name, "deletes": [statement], "ordered": true };
            body.extend(to_body(&WriteCommandFields {
                let_vars: options.let_vars,
                comment: options.comment,
                bypass_document_validation: None,
                raw_data: options.raw_data,
            })?);
            Ok(body)
        })?;
        // Deleting one document can be retried; deleting many cannot.
        let retry = if self.limit == 1 {
            Retry::Write
        } else {
            Retry::No
        };
        let reply = coll.write("delete", body, retry, single_write_reply)?;
        Ok(DeleteResult {
            deleted_count: reply.n,
        })
    }
}
