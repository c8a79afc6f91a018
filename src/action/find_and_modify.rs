//! `find_one_and_delete`, `find_one_and_update` and `find_one_and_replace`: the
//! `findAndModify` command, which changes one document and returns it (before or after).

use std::borrow::Borrow;
use std::time::Duration;

use bson::{Bson, Document, doc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::collection::{Collection, check_replacement, check_update, millis, put, to_document};
use crate::concern::WriteConcern;
use crate::crud_types::{
    Collation, FindOneAndDeleteOptions, FindOneAndReplaceOptions, FindOneAndUpdateOptions, Hint,
    ReturnDocument,
};
use crate::error::Result;
use crate::retry::Retry;

use super::option_setters;
use super::update::UpdateModifications;

impl<T: DeserializeOwned + 'static> Collection<T> {
    /// Deletes the first document matching `filter` and returns it.
    pub fn find_one_and_delete(&self, filter: Document) -> FindOneAndDelete<'_, T> {
        FindOneAndDelete {
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
    coll: &'a Collection<T>,
    filter: Document,
    options: Option<FindOneAndDeleteOptions>,
}

impl<T: DeserializeOwned + 'static> FindOneAndDelete<'_, T> {
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
        let o = self.options.unwrap_or_default();
        let coll = self.coll.overridden(None, None, o.write_concern.clone());
        let filter = self.filter;
        let body = crate::runtime::on_driver_stack(|| {
            let mut body = doc! { "findAndModify": &*coll.name, "query": filter, "remove": true };
            let common = Common {
                sort: o.sort,
                projection: o.projection,
                hint: o.hint,
                collation: o.collation,
                let_vars: o.let_vars,
                comment: o.comment,
                max_time: o.max_time,
                raw_data: o.raw_data,
            };
            common.put_into(&mut body);
            body
        });
        find_and_modify(&coll, body)
    }
}

/// Updates one document and returns it. Made by [`Collection::find_one_and_update`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOneAndUpdate<'a, T> {
    coll: &'a Collection<T>,
    filter: Document,
    update: UpdateModifications,
    options: Option<FindOneAndUpdateOptions>,
}

impl<T: DeserializeOwned + 'static> FindOneAndUpdate<'_, T> {
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
        let o = self.options.unwrap_or_default();
        let coll = self.coll.overridden(None, None, o.write_concern.clone());
        let (filter, update) = (self.filter, Bson::from(self.update));
        let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
            check_update(&update)?;
            let mut body = doc! { "findAndModify": &*coll.name, "query": filter, "update": update };
            put(&mut body, "arrayFilters", o.array_filters);
            body.insert("new", o.return_document == Some(ReturnDocument::After));
            put(&mut body, "upsert", o.upsert);
            put(&mut body, "bypassDocumentValidation", o.bypass_document_validation);
            let common = Common {
                sort: o.sort,
                projection: o.projection,
                hint: o.hint,
                collation: o.collation,
                let_vars: o.let_vars,
                comment: o.comment,
                max_time: o.max_time,
                raw_data: o.raw_data,
            };
            common.put_into(&mut body);
            Ok(body)
        })?;
        find_and_modify(&coll, body)
    }
}

/// Replaces one document and returns it. Made by [`Collection::find_one_and_replace`].
#[must_use = "nothing is sent until .run()"]
pub struct FindOneAndReplace<'a, T, B> {
    coll: &'a Collection<T>,
    filter: Document,
    replacement: B,
    options: Option<FindOneAndReplaceOptions>,
}

impl<T: Serialize + DeserializeOwned + 'static, B: Borrow<T>> FindOneAndReplace<'_, T, B> {
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
        let o = self.options.unwrap_or_default();
        let coll = self.coll.overridden(None, None, o.write_concern.clone());
        let (filter, replacement) = (self.filter, self.replacement);
        let body = crate::runtime::on_driver_stack(|| -> Result<Document> {
            let replacement = to_document(replacement.borrow())?;
            check_replacement(&replacement)?;
            let mut body =
                doc! { "findAndModify": &*coll.name, "query": filter, "update": replacement };
            body.insert("new", o.return_document == Some(ReturnDocument::After));
            put(&mut body, "upsert", o.upsert);
            put(&mut body, "bypassDocumentValidation", o.bypass_document_validation);
            let common = Common {
                sort: o.sort,
                projection: o.projection,
                hint: o.hint,
                collation: o.collation,
                let_vars: o.let_vars,
                comment: o.comment,
                max_time: o.max_time,
                raw_data: o.raw_data,
            };
            common.put_into(&mut body);
            Ok(body)
        })?;
        find_and_modify(&coll, body)
    }
}

/// The options all three share.
struct Common {
    sort: Option<Document>,
    projection: Option<Document>,
    hint: Option<Hint>,
    collation: Option<Collation>,
    let_vars: Option<Document>,
    comment: Option<Bson>,
    max_time: Option<Duration>,
    raw_data: Option<bool>,
}

impl Common {
    fn put_into(self, body: &mut Document) {
        put(body, "sort", self.sort);
        put(body, "fields", self.projection);
        put(body, "hint", self.hint);
        put(body, "collation", self.collation);
        put(body, "let", self.let_vars);
        put(body, "comment", self.comment);
        put(body, "maxTimeMS", self.max_time.map(millis));
        put(body, "rawData", self.raw_data);
    }
}

/// Runs a `findAndModify` command (a retryable write); the document it returns is decoded
/// on a driver stack, like every reply.
fn find_and_modify<T: DeserializeOwned + 'static>(
    coll: &Collection<T>,
    body: Document,
) -> Result<Option<T>> {
    coll.write("findAndModify", body, Retry::Write, |r| match r.get("value") {
        Ok(Some(bson::RawBsonRef::Document(d))) => crate::decode::decode(d).map(Some),
        _ => Ok(None),
    })
}
