//! `update_one`, `update_many` and `replace_one`: the `update` command with one statement.

use std::borrow::Borrow;

use bson::{Bson, Document, doc};
use serde::Serialize;

use crate::collection::{
    Collection, check_replacement, check_update, single_write_reply, to_document, update_statement,
};
use crate::crud_types::{ReplaceOptions, UpdateOptions};
use crate::error::Result;
use crate::results::UpdateResult;
use crate::retry::Retry;

use super::{option_setters, session_setter};
use crate::ops::body::{WriteCommandFields, to_body};

/// What an update changes: update operators (`{ "$set": { .. } }`) or an aggregation
/// pipeline. A `Document` or a `Vec<Document>` converts into it.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateModifications {
    /// Update operators.
    Document(Document),
    /// An aggregation pipeline (MongoDB 4.2 and later).
    Pipeline(Vec<Document>),
}

impl From<Document> for UpdateModifications {
    fn from(d: Document) -> Self {
        UpdateModifications::Document(d)
    }
}

impl From<Vec<Document>> for UpdateModifications {
    fn from(p: Vec<Document>) -> Self {
        UpdateModifications::Pipeline(p)
    }
}

impl From<UpdateModifications> for Bson {
    fn from(u: UpdateModifications) -> Bson {
        match u {
            UpdateModifications::Document(d) => Bson::Document(d),
            UpdateModifications::Pipeline(p) => {
                Bson::Array(p.into_iter().map(Bson::from).collect())
            }
        }
    }
}

impl<T> Collection<T> {
    /// Updates the first document matching `query` with update operators or a pipeline.
    pub fn update_one(
        &self,
        query: Document,
        update: impl Into<UpdateModifications>,
    ) -> Update<'_, T> {
        self.update_action(query, update.into(), false)
    }

    /// Updates every document matching `query`.
    pub fn update_many(
        &self,
        query: Document,
        update: impl Into<UpdateModifications>,
    ) -> Update<'_, T> {
        self.update_action(query, update.into(), true)
    }

    fn update_action(
        &self,
        query: Document,
        update: UpdateModifications,
        multi: bool,
    ) -> Update<'_, T> {
        Update {
            session: None,
            coll: self,
            query,
            update,
            multi,
            options: None,
        }
    }
}

impl<T: Serialize> Collection<T> {
    /// Replaces the first document matching `query` with `replacement`.
    pub fn replace_one<B: Borrow<T>>(
        &self,
        query: Document,
        replacement: B,
    ) -> ReplaceOne<'_, T, B> {
        ReplaceOne {
            session: None,
            coll: self,
            query,
            replacement,
            options: None,
        }
    }
}

/// Updates one or many documents. Made by [`Collection::update_one`] and
/// [`Collection::update_many`].
#[must_use = "nothing is sent until .run()"]
pub struct Update<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) query: Document,
    pub(crate) update: UpdateModifications,
    pub(crate) multi: bool,
    pub(crate) options: Option<UpdateOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> Update<'_, T> {
    session_setter!();

    option_setters!(UpdateOptions {
        array_filters: iter Document,
        bypass_document_validation: plain bool,
        upsert: plain bool,
        collation: plain crate::collation::Collation,
        hint: plain crate::crud_types::Hint,
        write_concern: plain crate::concern::WriteConcern,
        let_vars: plain Document,
        comment: into Bson,
        sort: plain Document,
        raw_data: plain bool,
    });

    /// Sends the `update` command.
    pub fn run(self) -> Result<UpdateResult> {
        let update = Bson::from(self.update);
        check_update(&update)?;
        run_update(
            self.coll,
            self.query,
            update,
            self.multi,
            self.options.unwrap_or_default(),
            self.session,
        )
    }
}

/// Replaces one document. Made by [`Collection::replace_one`].
#[must_use = "nothing is sent until .run()"]
pub struct ReplaceOne<'a, T, B> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) query: Document,
    pub(crate) replacement: B,
    pub(crate) options: Option<ReplaceOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: Serialize, B: Borrow<T>> ReplaceOne<'_, T, B> {
    session_setter!();

    option_setters!(ReplaceOptions {
        bypass_document_validation: plain bool,
        upsert: plain bool,
        collation: plain crate::collation::Collation,
        hint: plain crate::crud_types::Hint,
        write_concern: plain crate::concern::WriteConcern,
        let_vars: plain Document,
        comment: into Bson,
        sort: plain Document,
        raw_data: plain bool,
    });

    /// Sends the `update` command with the replacement.
    pub fn run(self) -> Result<UpdateResult> {
        let replacement = self.replacement;
        let replacement = crate::runtime::on_driver_stack(move || -> Result<Document> {
            let replacement = to_document(replacement.borrow())?;
            check_replacement(&replacement)?;
            Ok(replacement)
        })?;
        let options = UpdateOptions::from(self.options.unwrap_or_default());
        run_update(
            self.coll,
            self.query,
            Bson::Document(replacement),
            false,
            options,
            self.session,
        )
    }
}

/// The `update` command with one statement, and its result.
fn run_update<T>(
    coll: &Collection<T>,
    filter: Document,
    update: Bson,
    multi: bool,
    mut options: UpdateOptions,
    session: Option<std::sync::Arc<crate::session::SessionCell>>,
) -> Result<UpdateResult> {
    let coll = coll.overridden(None, None, options.write_concern.take(), session);
    // Built on a driver stack: the options and the statement are large frames at opt-level 0.
    let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
        let mut body = doc! { "update": &*coll.name, "ordered": true };
        // Command-level fields move to the body; the rest go into the statement.
        body.extend(to_body(&WriteCommandFields {
            let_vars: options.let_vars.take(),
            comment: options.comment.take(),
            bypass_document_validation: options.bypass_document_validation,
            raw_data: options.raw_data,
        })?);
        body.insert(
            "updates",
            [update_statement(filter, update, multi, options)?],
        );
        Ok(body)
    })?;
    let retry = if multi { Retry::No } else { Retry::Write };
    let reply = coll.write("update", body, retry, single_write_reply)?;
    let upserted_id = reply.upserted.into_iter().next().map(|(_, id)| id);
    Ok(UpdateResult {
        matched_count: reply.n.saturating_sub(u64::from(upserted_id.is_some())),
        modified_count: reply.n_modified,
        upserted_id,
    })
}
