//! `find_one_and_delete`, `find_one_and_update` and `find_one_and_replace`: the
//! `findAndModify` command, which changes one document and returns it (before or after).

use std::borrow::Borrow;
use std::time::Duration;

use bson::{Bson, Document, doc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_with::skip_serializing_none;

use crate::collation::Collation;
use crate::collection::{Collection, check_replacement, check_update, put, to_document};
use crate::concern::WriteConcern;
use crate::crud_types::{
    FindAndModifyOptions, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, Hint, ReturnDocument,
};
use crate::error::{Error, Result};
use crate::retry::Retry;

use super::update::UpdateModifications;
use super::{option_setters, session_setter};
use crate::ops::body::millis;

impl<T: DeserializeOwned + 'static> Collection<T> {
    /// Deletes the first document matching `filter` and returns it.
    pub fn find_one_and_delete(&self, filter: Document) -> FindOneAndDelete<'_, T> {
        FindOneAndDelete {
            session: None,
            coll: self,
            filter,
            options: None,
        }
    }

    /// Updates the first document matching `filter`; returns it as it was before (the
    /// default) or after ([`ReturnDocument::After`]).
    pub fn find_one_and_update(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> FindOneAndUpdate<'_, T> {
        FindOneAndUpdate {
            session: None,
            coll: self,
            filter,
            update: update.into(),
            options: None,
        }
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Collection<T> {
    /// Replaces the first document matching `filter`; returns it before or after.
    pub fn find_one_and_replace<B: Borrow<T>>(
        &self,
        filter: Document,
        replacement: B,
    ) -> FindOneAndReplace<'_, T, B> {
        FindOneAndReplace {
            session: None,
            coll: self,
            filter,
            replacement,
            options: None,
        }
    }
}

/// Deletes one document and returns it. Made by [`Collection::find_one_and_delete`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOneAndDelete<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) options: Option<FindOneAndDeleteOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: DeserializeOwned + 'static> FindOneAndDelete<'_, T> {
    session_setter!();

    option_setters!(FindOneAndDeleteOptions {
        max_time: plain Duration,
        projection: plain Document,
        sort: plain Document,
        write_concern: plain WriteConcern,
        collation: plain Collation,
        hint: plain Hint,
        let_vars: plain Document,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `findAndModify` command with `remove: true`.
    pub fn run(self) -> Result<Option<T>> {
        let mut o = FindAndModifyOptions::from(self.options.unwrap_or_default());
        let coll = self
            .coll
            .overridden(None, None, o.write_concern.take(), self.session);
        let filter = self.filter;
        let body = crate::runtime::on_driver_stack(|| {
            command(&coll.name, filter, doc! { "remove": true }, o)
        })?;
        find_and_modify(&coll, body)
    }
}

/// Updates one document and returns it. Made by [`Collection::find_one_and_update`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOneAndUpdate<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) update: UpdateModifications,
    pub(crate) options: Option<FindOneAndUpdateOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: DeserializeOwned + 'static> FindOneAndUpdate<'_, T> {
    session_setter!();

    option_setters!(FindOneAndUpdateOptions {
        array_filters: iter Document,
        bypass_document_validation: plain bool,
        max_time: plain Duration,
        projection: plain Document,
        return_document: plain ReturnDocument,
        sort: plain Document,
        upsert: plain bool,
        write_concern: plain WriteConcern,
        collation: plain Collation,
        hint: plain Hint,
        let_vars: plain Document,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `findAndModify` command with the update.
    pub fn run(self) -> Result<Option<T>> {
        let mut o = FindAndModifyOptions::from(self.options.unwrap_or_default());
        let coll = self
            .coll
            .overridden(None, None, o.write_concern.take(), self.session);
        let (filter, update) = (self.filter, Bson::from(self.update));
        let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
            check_update(&update)?;
            let mut change = doc! { "update": update };
            put(&mut change, "arrayFilters", o.array_filters.take());
            command(&coll.name, filter, change, o)
        })?;
        find_and_modify(&coll, body)
    }
}

/// Replaces one document and returns it. Made by [`Collection::find_one_and_replace`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOneAndReplace<'a, T, B> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) replacement: B,
    pub(crate) options: Option<FindOneAndReplaceOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: Serialize + DeserializeOwned + 'static, B: Borrow<T>> FindOneAndReplace<'_, T, B> {
    session_setter!();

    option_setters!(FindOneAndReplaceOptions {
        bypass_document_validation: plain bool,
        max_time: plain Duration,
        projection: plain Document,
        return_document: plain ReturnDocument,
        sort: plain Document,
        upsert: plain bool,
        write_concern: plain WriteConcern,
        collation: plain Collation,
        hint: plain Hint,
        let_vars: plain Document,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `findAndModify` command with the replacement.
    pub fn run(self) -> Result<Option<T>> {
        let mut o = FindAndModifyOptions::from(self.options.unwrap_or_default());
        let coll = self
            .coll
            .overridden(None, None, o.write_concern.take(), self.session);
        let (filter, replacement) = (self.filter, self.replacement);
        let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
            let replacement = to_document(replacement.borrow())?;
            check_replacement(&replacement)?;
            command(&coll.name, filter, doc! { "update": replacement }, o)
        })?;
        find_and_modify(&coll, body)
    }
}

/// The `findAndModify` command on collection `coll`: `filter`, the change (`update` or
/// `remove`, with `arrayFilters`) and the options, as the three operations share them.
fn command(
    coll: &str,
    filter: Document,
    change: Document,
    o: FindAndModifyOptions,
) -> Result<Document> {
    let remove = change.contains_key("remove");
    let mut body = doc! { "findAndModify": coll, "query": filter };
    body.extend(change);
    let fields = FindAndModifyFields {
        new: (!remove).then_some(o.return_document == Some(ReturnDocument::After)),
        upsert: o.upsert.filter(|_| !remove),
        sort: o.sort,
        fields: o.projection,
        hint: o.hint,
        collation: o.collation,
        let_vars: o.let_vars,
        comment: o.comment,
        max_time: o.max_time,
        raw_data: o.raw_data,
        bypass_document_validation: o.bypass_document_validation.filter(|_| !remove),
    };
    // Already on a driver stack (see the callers): the fields serialize in place.
    body.extend(bson::serialize_to_document(&fields).map_err(Error::ser)?);
    Ok(body)
}

/// `findAndModify`'s fields after the query and the change, under their command names.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FindAndModifyFields {
    new: Option<bool>,
    upsert: Option<bool>,
    sort: Option<Document>,
    fields: Option<Document>,
    hint: Option<Hint>,
    collation: Option<Collation>,
    #[serde(rename = "let")]
    let_vars: Option<Document>,
    comment: Option<Bson>,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    raw_data: Option<bool>,
    bypass_document_validation: Option<bool>,
}

/// Runs a `findAndModify` command (a retryable write); the document it returns is decoded
/// on a driver stack, like every reply.
fn find_and_modify<T: DeserializeOwned + 'static>(
    coll: &Collection<T>,
    body: Document,
) -> Result<Option<T>> {
    coll.write("findAndModify", body, Retry::Write, |r| {
        match r.get("value") {
            Ok(Some(bson::RawBsonRef::Document(d))) => crate::decode::decode(d).map(Some),
            _ => Ok(None),
        }
    })
}
