//! `insert_one` and `insert_many`: the `insert` command, split into as many batches as the
//! server's limits require.

use std::borrow::Borrow;

use bson::Bson;
use serde::Serialize;

use crate::client::Route;
use crate::collection::{Collection, put};
use crate::crud_types::{InsertManyOptions, InsertOneOptions};
use crate::error::{Error, ErrorKind, InsertManyError, Result};
use crate::ops::{InsertBatch, InsertOne as InsertOneOp};
use crate::results::{InsertManyResult, InsertOneResult};

use super::{option_setters, session_setter};
use crate::ops::body::{WriteCommandFields, to_body};

impl<T: Serialize> Collection<T> {
    /// Inserts one document. If it has no `_id`, the driver adds an ObjectId and returns it.
    /// A document over the server's `maxBsonObjectSize` is refused before anything is sent.
    pub fn insert_one<B: Borrow<T>>(&self, doc: B) -> InsertOne<'_, T, B> {
        InsertOne {
            session: None,
            coll: self,
            doc,
            options: None,
        }
    }

    /// Inserts many documents, in as few commands as the server's limits allow (each a
    /// document sequence of at most `maxWriteBatchSize` documents and
    /// `maxMessageSizeBytes`). Ordered (the default) stops at the first failure; unordered
    /// goes on. Failures come back as [`ErrorKind::InsertMany`](crate::error::ErrorKind)
    /// with each failed document's index and what was inserted.
    pub fn insert_many<B: Borrow<T>>(
        &self,
        docs: impl IntoIterator<Item = B>,
    ) -> InsertMany<'_, T, B> {
        InsertMany {
            session: None,
            coll: self,
            docs: docs.into_iter().collect(),
            options: None,
        }
    }
}

/// Inserts one document. Made by [`Collection::insert_one`].
#[must_use = "nothing is sent until .run()"]
pub struct InsertOne<'a, T, B> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) doc: B,
    pub(crate) options: Option<InsertOneOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: Serialize, B: Borrow<T>> InsertOne<'_, T, B> {
    session_setter!();

    option_setters!(InsertOneOptions {
        bypass_document_validation: plain bool,
        write_concern: plain crate::concern::WriteConcern,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `insert` command.
    pub fn run(self) -> Result<InsertOneResult> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll;
        // The operation's own write concern, if any, wins over the handle's inside the op:
        // no copy of the handle on this hot path.
        let inserted = coll
            .client
            .execute(
                &mut InsertOneOp::new(
                    &coll.db,
                    &coll.name,
                    self.doc.borrow(),
                    coll.settings.write_concern.as_ref(),
                    options,
                ),
                Route::selected(coll.settings.timeout).in_session(self.session),
            )
            .map(|e| e.output);
        crate::runtime::drop_on_driver_stack(self.doc);
        inserted
    }
}

/// Inserts many documents. Made by [`Collection::insert_many`].
#[must_use = "nothing is sent until .run()"]
pub struct InsertMany<'a, T, B> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) docs: Vec<B>,
    pub(crate) options: Option<InsertManyOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: Serialize, B: Borrow<T>> InsertMany<'_, T, B> {
    session_setter!();

    option_setters!(InsertManyOptions {
        bypass_document_validation: plain bool,
        ordered: plain bool,
        write_concern: plain crate::concern::WriteConcern,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `insert` commands, batch after batch.
    pub fn run(self) -> Result<InsertManyResult> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll;
        let docs = &self.docs[..];
        let ordered = options.ordered.unwrap_or(true);
        let mut extra = to_body(&WriteCommandFields {
            let_vars: None,
            comment: options.comment,
            bypass_document_validation: options.bypass_document_validation,
            raw_data: options.raw_data,
        })?;
        let write_concern = match &options.write_concern {
            Some(wc) => wc.command_field(),
            None => coll.settings.write_concern_doc(),
        };
        put(&mut extra, "writeConcern", write_concern);
        if docs.is_empty() {
            return Err(Error::invalid_argument(
                "insert_many needs at least one document",
            ));
        }
        let mut result = InsertManyResult::default();
        let mut errors = Vec::new();
        let mut wc_error = None;
        let mut start = 0;
        while start < docs.len() {
            let mut batch = InsertBatch {
                db: &coll.db,
                coll: &coll.name,
                docs,
                start,
                ordered,
                extra: &extra,
                ids: Vec::new(),
                _doc: std::marker::PhantomData::<fn(&T)>,
            };
            let (ids, mut reply) = coll
                .client
                .execute(
                    &mut batch,
                    Route::selected(coll.settings.timeout).in_session(self.session.clone()),
                )
                .map(|e| e.output)?;
            let sent = ids.len();
            for (i, id) in ids.into_iter().enumerate() {
                if reply.applied(i, ordered) {
                    result.inserted_ids.insert(start + i, id);
                }
            }
            errors.extend(reply.take_errors(start));
            wc_error = wc_error.or(reply.write_concern_error);
            if ordered && !errors.is_empty() {
                break;
            }
            start += sent;
        }
        if errors.is_empty() && wc_error.is_none() {
            return Ok(result);
        }
        Err(ErrorKind::InsertMany(InsertManyError {
            write_errors: (!errors.is_empty()).then_some(errors),
            write_concern_error: wc_error,
            inserted_ids: result.inserted_ids.into_iter().collect(),
        })
        .into())
    }
}
