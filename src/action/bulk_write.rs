//! The collection-level `bulk_write` (an addition of this driver: the official crate 3.x has
//! only the client-level one, which needs MongoDB 8's `bulkWrite` command): a mix of inserts,
//! updates, replaces and deletes sent as `insert`, `update` and `delete` commands, one per run
//! of models of one kind.

use bson::{Bson, Document, doc};
use serde::Serialize;

use crate::collection::{
    Collection, bulk_failure, check_model_options, check_replacement, check_update,
    delete_statement, to_document, update_statement, with_id,
};
use crate::crud_types::{BulkWriteOptions, UpdateOptions, WriteModel};
use crate::error::{Error, IndexedWriteError, Result};
use crate::ops::read_write_reply;
use crate::results::BulkWriteResult;
use crate::retry::Retry;

use super::{option_setters, session_setter};
use crate::ops::body::{WriteCommandFields, to_body};

impl<T: Serialize> Collection<T> {
    /// Runs a mix of inserts, updates, replaces and deletes, in order (the default) or not.
    /// Consecutive models of one kind travel in one command. A failure is
    /// [`ErrorKind::BulkWrite`](crate::error::ErrorKind), each error carrying its model's
    /// index, with the partial result.
    pub fn bulk_write(&self, models: impl IntoIterator<Item = WriteModel<T>>) -> BulkWrite<'_, T> {
        BulkWrite {
            session: None,
            coll: self,
            models: models.into_iter().collect(),
            options: None,
        }
    }
}

/// A collection-level bulk write. Made by [`Collection::bulk_write`].
#[must_use = "nothing is sent until .run()"]
pub struct BulkWrite<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) models: Vec<WriteModel<T>>,
    pub(crate) options: Option<BulkWriteOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T: Serialize> BulkWrite<'_, T> {
    session_setter!();

    option_setters!(BulkWriteOptions {
        ordered: plain bool,
        bypass_document_validation: plain bool,
        let_vars: plain Document,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the commands, run after run.
    pub fn run(self) -> Result<BulkWriteResult> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll.overridden(None, None, None, self.session);
        let models = self.models;
        let ordered = options.ordered.unwrap_or(true);
        if models.is_empty() {
            return Err(Error::invalid_argument(
                "bulk_write needs at least one model",
            ));
        }
        let mut result = BulkWriteResult::default();
        let mut errors: Vec<IndexedWriteError> = Vec::new();
        let mut wc_error = None;
        let mut i = 0;
        while i < models.len() {
            // A run of models going into one command.
            let kind = model_kind(&models[i]);
            let end = models[i..]
                .iter()
                .position(|m| model_kind(m) != kind)
                .map_or(models.len(), |p| i + p);
            let run = &models[i..end];
            let (statements, ids): (Vec<Document>, Vec<Option<Bson>>) = run
                .iter()
                .map(statement)
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            let (name, key) = match kind {
                0 => ("insert", "documents"),
                1 => ("update", "updates"),
                _ => ("delete", "deletes"),
            };
            let mut body = doc! { name: &*coll.name, "ordered": ordered };
            // `bypassDocumentValidation` is not a delete's; `let` is not an insert's.
            body.extend(to_body(&WriteCommandFields {
                let_vars: options.let_vars.clone().filter(|_| kind != 0),
                comment: options.comment.clone(),
                bypass_document_validation: options
                    .bypass_document_validation
                    .filter(|_| kind != 2),
                raw_data: options.raw_data,
            })?);
            body.insert(key, statements);
            // A run of inserts, or of updates and deletes of one document each, is retryable.
            let retry = if run.iter().all(single_statement) {
                Retry::Write
            } else {
                Retry::No
            };
            let mut reply = coll.write(name, body, retry, read_write_reply)?;
            match kind {
                0 => {
                    for (j, id) in ids.into_iter().enumerate() {
                        if reply.applied(j, ordered) {
                            result.inserted_ids.insert(i + j, id.unwrap_or(Bson::Null));
                        }
                    }
                    result.inserted_count += reply.n;
                }
                1 => {
                    // A server's numbers are not trusted to add up: `n: 0` with an `upserted`
                    // entry must not underflow (a panic in a debug build, a wrap in release).
                    result.matched_count += reply.n.saturating_sub(reply.upserted.len() as u64);
                    result.modified_count += reply.n_modified;
                    result.upserted_count += reply.upserted.len() as u64;
                    for (j, id) in std::mem::take(&mut reply.upserted) {
                        result.upserted_ids.insert(i + j, id);
                    }
                }
                _ => result.deleted_count += reply.n,
            }
            errors.extend(reply.take_errors(i));
            wc_error = wc_error.or(reply.write_concern_error);
            if ordered && !errors.is_empty() {
                break;
            }
            i = end;
        }
        if errors.is_empty() && wc_error.is_none() {
            return Ok(result);
        }
        Err(bulk_failure(result, errors, wc_error))
    }
}

/// True for a model that writes at most one document (retryable).
fn single_statement<T>(m: &WriteModel<T>) -> bool {
    !matches!(
        m,
        WriteModel::UpdateMany { .. } | WriteModel::DeleteMany { .. }
    )
}

/// The command kind of a model: 0 insert, 1 update/replace, 2 delete.
fn model_kind<T>(m: &WriteModel<T>) -> u8 {
    match m {
        WriteModel::InsertOne(_) => 0,
        WriteModel::UpdateOne { .. }
        | WriteModel::UpdateMany { .. }
        | WriteModel::ReplaceOne { .. } => 1,
        WriteModel::DeleteOne { .. } | WriteModel::DeleteMany { .. } => 2,
    }
}

/// A model as its command's statement, and the `_id` of an inserted document.
fn statement<T: Serialize>(m: &WriteModel<T>) -> Result<(Document, Option<Bson>)> {
    Ok(match m {
        WriteModel::InsertOne(doc) => {
            let (d, id) = with_id(to_document(doc)?);
            (d, Some(id))
        }
        WriteModel::UpdateOne {
            filter,
            update,
            options,
        }
        | WriteModel::UpdateMany {
            filter,
            update,
            options,
        } => {
            check_update(update)?;
            check_model_options(options.has_command_fields())?;
            let multi = matches!(m, WriteModel::UpdateMany { .. });
            let options = UpdateOptions {
                upsert: Some(options.upsert.unwrap_or(false)),
                ..options.clone()
            };
            let s = update_statement(filter.clone(), update.clone(), multi, options)?;
            (s, None)
        }
        WriteModel::ReplaceOne {
            filter,
            replacement,
            options,
        } => {
            let r = to_document(replacement)?;
            check_replacement(&r)?;
            check_model_options(options.has_command_fields())?;
            let options = UpdateOptions {
                upsert: Some(options.upsert.unwrap_or(false)),
                ..options.clone()
            };
            let s = update_statement(filter.clone(), Bson::Document(r), false, options)?;
            (s, None)
        }
        WriteModel::DeleteOne { filter, options } | WriteModel::DeleteMany { filter, options } => {
            check_model_options(options.has_command_fields())?;
            let limit = if matches!(m, WriteModel::DeleteOne { .. }) {
                1
            } else {
                0
            };
            (delete_statement(filter.clone(), limit, options)?, None)
        }
    })
}
