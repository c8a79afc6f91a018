//! `Client::bulk_write`: inserts, updates and deletes on many collections in as few round
//! trips as possible, with the `bulkWrite` command of MongoDB 8.0+.
//!
//! [`Collection::bulk_write`](crate::Collection::bulk_write) works on any server by sending one
//! `insert`, `update` or `delete` command per run of like models, all on one collection. The
//! client-level form sends one `bulkWrite` command for the whole mix (or as few as the size
//! limits allow), each write naming its own collection. The way there:
//!
//! 1. *Prepare* every model before any I/O ([`prepare`]): validate it (an update needs `$`
//!    operators, a replacement must have none, options belong where they go), give an insert
//!    its `_id`, and encode the rest of its `ops` document once.
//! 2. *Send* batches ([`BulkWriteBatch`]): each takes as many prepared writes as fit one
//!    message and says how many it took.
//! 3. *Read* each reply: the summary counts, any `writeConcernError`, and the results cursor,
//!    drained with `getMore` — it carries every write error (and, with `verbose_results`,
//!    every write's own result), with indexes relative to its batch.
//! 4. *Stop* early when the spec says so: an ordered bulk write at its first write error; any
//!    bulk write at a top-level error (a network error, an `ok: 0` reply, a failed `getMore`).
//!    Whatever was learnt before such an error travels with it in a [`BulkWriteError`] (the
//!    error being its source), as does every write error and write concern error.

pub use crate::write_results::{ClientBulkWriteResult, VerboseResults};
use std::collections::HashMap;
use std::fmt;

use bson::{Bson, Document, RawDocument, doc};
use serde::Serialize;

use crate::client::{Client, Route};
use crate::collection::{
    Collection, check_model_options, check_replacement, check_update, put, put_delete_options,
    put_update_options, to_document, with_id,
};
use crate::concern::WriteConcern;
use crate::crud_types::{DeleteOptions, DeleteResult, UpdateOptions, UpdateResult, WriteModel};
use crate::cursor::{Cursor, CursorSpec};
use crate::error::{
    BulkWriteError, Error, ErrorKind, IndexedWriteError, Result, WriteConcernError, WriteError,
};
use crate::ops::{BulkWriteBatch, InsertOneResult, OpKind, PreparedOp};

/// A collection's full name: database and collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The database.
    pub db: String,
    /// The collection.
    pub coll: String,
}

impl Namespace {
    /// The namespace `db.coll`.
    pub fn new(db: impl Into<String>, coll: impl Into<String>) -> Namespace {
        Namespace {
            db: db.into(),
            coll: coll.into(),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.coll)
    }
}

impl std::str::FromStr for Namespace {
    type Err = Error;

    /// Reads `db.coll` (the collection name may itself contain dots).
    fn from_str(s: &str) -> Result<Namespace> {
        match s.split_once('.') {
            Some((db, coll)) if !db.is_empty() && !coll.is_empty() => Ok(Namespace::new(db, coll)),
            _ => Err(Error::invalid_argument(format!(
                "{s:?} is not a namespace of the form db.collection"
            ))),
        }
    }
}

/// One write of a client-level bulk write: a model and the collection it goes to.
///
/// Build one from a typed collection with [`Collection::client_model`], or directly:
/// ```
/// use may_mongo::{ClientWriteModel, Namespace, WriteModel, bson::doc};
/// let m = ClientWriteModel {
///     namespace: Namespace::new("shop", "orders"),
///     model: WriteModel::update_one(doc! { "_id": 1 }, doc! { "$set": { "paid": true } }),
/// };
/// ```
#[derive(Clone, Debug)]
pub struct ClientWriteModel {
    /// Where the write goes.
    pub namespace: Namespace,
    /// What it does. Model options are statement options only (`upsert`, `array_filters`,
    /// `hint`, `collation`, `sort`); command options go in [`ClientBulkWriteOptions`].
    pub model: WriteModel<Document>,
}

impl<T: Serialize> Collection<T> {
    /// `model` as a write to this collection, for [`Client::bulk_write`]; documents of type
    /// `T` are serialised here.
    pub fn client_model(&self, model: WriteModel<T>) -> Result<ClientWriteModel> {
        let model = match model {
            WriteModel::InsertOne(d) => WriteModel::InsertOne(to_document(&d)?),
            WriteModel::ReplaceOne {
                filter,
                replacement,
                options,
            } => WriteModel::ReplaceOne {
                filter,
                replacement: to_document(&replacement)?,
                options,
            },
            WriteModel::UpdateOne {
                filter,
                update,
                options,
            } => WriteModel::UpdateOne {
                filter,
                update,
                options,
            },
            WriteModel::UpdateMany {
                filter,
                update,
                options,
            } => WriteModel::UpdateMany {
                filter,
                update,
                options,
            },
            WriteModel::DeleteOne { filter, options } => WriteModel::DeleteOne { filter, options },
            WriteModel::DeleteMany { filter, options } => {
                WriteModel::DeleteMany { filter, options }
            }
        };
        Ok(ClientWriteModel {
            namespace: Namespace::new(self.database_name(), self.name()),
            model,
        })
    }
}

/// Options of a client-level bulk write.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientBulkWriteOptions {
    /// Stop at the first failed write (the default, `true`), or carry on past failures.
    pub ordered: Option<bool>,
    /// Skip document validation.
    pub bypass_document_validation: Option<bool>,
    /// Variables for the writes' filters and pipeline updates (`let`).
    pub let_vars: Option<Document>,
    /// A comment for the server's logs and profiler.
    pub comment: Option<Bson>,
    /// The write concern; else the client's.
    pub write_concern: Option<WriteConcern>,
    /// Report each write's own result, not only the totals (`errorsOnly: false`).
    pub verbose_results: Option<bool>,
    /// Work on time-series collections' raw buckets (server 8.2+; not sent to older servers).
    pub raw_data: Option<bool>,
}

impl Client {
    /// Runs `models` — inserts, updates, replacements and deletes on any collections of any
    /// databases — with the `bulkWrite` command (MongoDB 8.0+; older servers give
    /// [`ErrorKind::IncompatibleServer`] and nothing is written).
    ///
    /// A failure is [`ErrorKind::BulkWrite`] with the write errors by index, the write concern
    /// errors and the partial result when a write is known to have succeeded; a top-level
    /// error that stopped the bulk write is the error's source. A top-level error before
    /// anything was learnt is returned as itself. An invalid model is [`ErrorKind::InvalidArgument`], before anything
    /// is sent.
    pub fn bulk_write(
        &self,
        models: impl IntoIterator<Item = ClientWriteModel>,
    ) -> ClientBulkWrite<'_> {
        ClientBulkWrite {
            client: self,
            models: models.into_iter().collect(),
            options: None,
            session: None,
        }
    }

    fn bulk_write_now(
        &self,
        models: Vec<ClientWriteModel>,
        options: ClientBulkWriteOptions,
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<ClientBulkWriteResult> {
        // Validating and encoding the models, and reading each batch's reply, run on a driver
        // stack (see `runtime::on_driver_stack`).
        let (namespaces, ops) = crate::runtime::on_driver_stack(|| prepare(models))?;
        let ordered = options.ordered.unwrap_or(true);
        let verbose = options.verbose_results.unwrap_or(false);
        let write_concern = options
            .write_concern
            .clone()
            .or_else(|| self.options().write_concern.clone());
        let acknowledged = write_concern.as_ref().is_none_or(|wc| wc.is_acknowledged());
        if !acknowledged && ordered {
            return Err(Error::invalid_argument(
                "cannot request unacknowledged write concern and ordered writes: an unacknowledged \
                 (w: 0) bulk write cannot stop at its first failure; set ordered to false",
            ));
        }
        if !acknowledged && verbose {
            return Err(Error::invalid_argument(
                "cannot request unacknowledged write concern and verbose results: the server \
                 reports nothing to an unacknowledged (w: 0) bulk write",
            ));
        }
        let body = command_body(&options, ordered, verbose, write_concern.as_ref());
        let mut run = Run {
            ordered,
            result: ClientBulkWriteResult {
                acknowledged,
                verbose: verbose.then(VerboseResults::default),
                ..ClientBulkWriteResult::default()
            },
            ..Run::default()
        };
        let mut start = 0;
        while start < ops.len() {
            let mut batch = BulkWriteBatch {
                namespaces: &namespaces,
                ops: &ops,
                start,
                body: &body,
                count: 0,
            };
            let ((reply, count), server) = match self
                .execute(
                    &mut batch,
                    Route::selected(self.options().timeout).in_session(session.clone()),
                )
                .map(|e| (e.output, e.server))
            {
                Ok(r) => r,
                Err(e) => return Err(run.fail(e)),
            };
            let batch_ops = &ops[start..start + count];
            // An unacknowledged write's reply says nothing worth reading.
            if acknowledged
                && let Err(e) = crate::runtime::on_driver_stack(|| {
                    run.read_reply(self, server, &reply, start, batch_ops)
                })
            {
                return Err(run.fail(e));
            }
            if ordered && !run.write_errors.is_empty() {
                break;
            }
            start += count;
        }
        run.finish()
    }
}

/// Validates each model and prepares its `ops` document; returns the distinct namespaces and
/// the prepared writes. Nothing is sent until every model has passed.
fn prepare(
    models: impl IntoIterator<Item = ClientWriteModel>,
) -> Result<(Vec<String>, Vec<PreparedOp>)> {
    let mut namespaces: Vec<String> = Vec::new();
    let mut known: HashMap<Namespace, usize> = HashMap::new();
    let mut ops = Vec::new();
    for (i, ClientWriteModel { namespace, model }) in models.into_iter().enumerate() {
        let ns = *known.entry(namespace).or_insert_with_key(|ns| {
            namespaces.push(ns.to_string());
            namespaces.len() - 1
        });
        let op = prepare_one(ns, model).map_err(|e| match &*e.kind {
            ErrorKind::InvalidArgument { message } => {
                Error::invalid_argument(format!("bulk write model {i}: {message}"))
            }
            _ => e,
        })?;
        ops.push(op);
    }
    if ops.is_empty() {
        return Err(Error::invalid_argument(
            "bulk_write needs at least one model",
        ));
    }
    Ok((namespaces, ops))
}

fn prepare_one(namespace: usize, model: WriteModel<Document>) -> Result<PreparedOp> {
    let update = |filter, mods, multi, o: UpdateOptions| -> Result<PreparedOp> {
        check_model_options(o.has_command_fields())?;
        let mut fields = doc! { "filter": filter, "updateMods": mods, "multi": multi };
        put_update_options(&mut fields, o)?;
        PreparedOp::new(namespace, OpKind::Update, &fields)
    };
    let delete = |filter, multi, o: DeleteOptions| -> Result<PreparedOp> {
        check_model_options(o.has_command_fields())?;
        let mut fields = doc! { "filter": filter, "multi": multi };
        put_delete_options(&mut fields, &o)?;
        PreparedOp::new(namespace, OpKind::Delete, &fields)
    };
    match model {
        WriteModel::InsertOne(document) => {
            // The spec: a document without `_id` gets an ObjectId, first.
            let (document, id) = with_id(document);
            let mut op =
                PreparedOp::new(namespace, OpKind::Insert, &doc! { "document": document })?;
            op.inserted_id = Some(id);
            Ok(op)
        }
        WriteModel::UpdateOne {
            filter,
            update: mods,
            options,
        } => {
            check_update(&mods)?;
            update(filter, mods, false, options)
        }
        WriteModel::UpdateMany {
            filter,
            update: mods,
            options,
        } => {
            check_update(&mods)?;
            update(filter, mods, true, options)
        }
        WriteModel::ReplaceOne {
            filter,
            replacement,
            options,
        } => {
            check_replacement(&replacement)?;
            update(filter, Bson::Document(replacement), false, options)
        }
        WriteModel::DeleteOne { filter, options } => delete(filter, false, options),
        WriteModel::DeleteMany { filter, options } => delete(filter, true, options),
    }
}

/// The command body every batch shares.
fn command_body(
    o: &ClientBulkWriteOptions,
    ordered: bool,
    verbose: bool,
    write_concern: Option<&WriteConcern>,
) -> Document {
    let mut body = doc! { "bulkWrite": 1, "errorsOnly": !verbose, "ordered": ordered };
    put(
        &mut body,
        "bypassDocumentValidation",
        o.bypass_document_validation,
    );
    put(&mut body, "comment", o.comment.clone());
    put(&mut body, "let", o.let_vars.clone());
    put(&mut body, "rawData", o.raw_data);
    put(
        &mut body,
        "writeConcern",
        write_concern.and_then(WriteConcern::command_field),
    );
    body
}

/// What a bulk write has learnt so far, across batches.
#[derive(Default)]
struct Run {
    ordered: bool,
    result: ClientBulkWriteResult,
    write_errors: HashMap<usize, WriteError>,
    write_concern_errors: Vec<WriteConcernError>,
    /// True once some write is known to have succeeded (the spec's test for reporting a
    /// partial result).
    any_succeeded: bool,
}

impl Run {
    /// Reads one batch's reply: the summary, the write concern error, and the results cursor
    /// (which it drains, stopping at an ordered bulk write's first write error).
    fn read_reply(
        &mut self,
        client: &Client,
        server: std::sync::Arc<crate::deployment::Server>,
        reply: &RawDocument,
        offset: usize,
        ops: &[PreparedOp],
    ) -> Result<()> {
        let count = |key: &str| crate::conn::get_int(reply, key).unwrap_or(0).max(0) as u64;
        let n_errors = count("nErrors");
        let r = &mut self.result;
        r.inserted_count += count("nInserted");
        r.upserted_count += count("nUpserted");
        r.matched_count += count("nMatched");
        r.modified_count += count("nModified");
        r.deleted_count += count("nDeleted");
        if let Ok(wce) = reply.get_document("writeConcernError") {
            let labels = crate::conn::get_strings(reply, "errorLabels");
            self.write_concern_errors
                .push(WriteConcernError::from_reply(wce, labels));
        }
        if !self.ordered && n_errors < ops.len() as u64 || self.ordered && n_errors == 0 {
            self.any_succeeded = true;
        }
        let start = crate::cursor::CursorStart::read(reply)?;
        let mut cursor: Cursor<Document> =
            Cursor::new(client.clone(), server, start, CursorSpec::default());
        while cursor.advance()? {
            let entry = cursor.current();
            let bad = |what: &str| {
                Error::protocol("server", format!("malformed bulkWrite result: {what}"))
            };
            let idx = crate::conn::get_int(entry, "idx").ok_or_else(|| bad("no idx"))?;
            let op = usize::try_from(idx)
                .ok()
                .and_then(|i| ops.get(i))
                .ok_or_else(|| bad("idx out of range"))?;
            let index = offset + idx as usize;
            let ok = crate::conn::get_int(entry, "ok").ok_or_else(|| bad("no ok"))?;
            if ok != 1 {
                let error = IndexedWriteError::from_reply(entry);
                self.write_errors.insert(index, error.into());
                if self.ordered {
                    if idx > 0 {
                        self.any_succeeded = true;
                    }
                    // The server stopped here too; dropping the cursor kills it if still open.
                    return Ok(());
                }
                continue;
            }
            let Some(verbose) = self.result.verbose.as_mut() else {
                continue;
            };
            let n = crate::conn::get_int(entry, "n").unwrap_or(0).max(0) as u64;
            match op.kind {
                OpKind::Insert => {
                    let inserted_id = op.inserted_id.clone().unwrap_or(Bson::Null);
                    verbose
                        .insert_results
                        .insert(index, InsertOneResult { inserted_id });
                }
                OpKind::Update => {
                    let upserted_id = entry
                        .get_document("upserted")
                        .ok()
                        .and_then(|u| u.get("_id").ok().flatten())
                        .and_then(|id| crate::decode::to_bson(id).ok());
                    let modified = crate::conn::get_int(entry, "nModified").unwrap_or(0);
                    let result = UpdateResult {
                        matched_count: n,
                        modified_count: modified.max(0) as u64,
                        upserted_id,
                    };
                    verbose.update_results.insert(index, result);
                }
                OpKind::Delete => {
                    let result = DeleteResult { deleted_count: n };
                    verbose.delete_results.insert(index, result);
                }
            }
        }
        Ok(())
    }

    /// The error to return for a top-level `error`: itself when nothing was learnt before it,
    /// else wrapped with what was.
    fn fail(self, error: Error) -> Error {
        if self.write_errors.is_empty()
            && self.write_concern_errors.is_empty()
            && !self.any_succeeded
        {
            return error;
        }
        self.into_failure(Some(error))
    }

    /// The outcome once every batch has run (or an ordered one stopped at a write error).
    fn finish(self) -> Result<ClientBulkWriteResult> {
        if self.write_errors.is_empty() && self.write_concern_errors.is_empty() {
            return Ok(self.result);
        }
        Err(self.into_failure(None))
    }

    fn into_failure(self, error: Option<Error>) -> Error {
        let failure: Error = ErrorKind::BulkWrite(BulkWriteError {
            write_errors: self.write_errors,
            write_concern_errors: self.write_concern_errors,
            partial_result: self.any_succeeded.then(|| self.result.into()),
        })
        .into();
        match error {
            Some(e) => failure.with_source(e),
            None => failure,
        }
    }
}

/// A client-level bulk write. Made by [`Client::bulk_write`].
#[must_use = "nothing is sent until .run()"]
pub struct ClientBulkWrite<'a> {
    pub(crate) client: &'a Client,
    pub(crate) models: Vec<ClientWriteModel>,
    pub(crate) options: Option<ClientBulkWriteOptions>,
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl ClientBulkWrite<'_> {
    crate::action::session_setter!();

    crate::action::option_setters!(ClientBulkWriteOptions {
        ordered: plain bool,
        bypass_document_validation: plain bool,
        let_vars: plain Document,
        comment: into Bson,
        write_concern: plain WriteConcern,
        verbose_results: plain bool,
        raw_data: plain bool,
    });

    /// Sends the `bulkWrite` commands.
    pub fn run(self) -> Result<ClientBulkWriteResult> {
        self.client
            .bulk_write_now(self.models, self.options.unwrap_or_default(), self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(m: WriteModel<Document>) -> ClientWriteModel {
        ClientWriteModel {
            namespace: Namespace::new("db", "c"),
            model: m,
        }
    }

    #[test]
    fn models_are_checked_before_anything_is_sent() {
        let bad = [
            model(WriteModel::update_one(doc! {}, doc! { "x": 1 })),
            model(WriteModel::update_many(doc! {}, doc! {})),
            model(WriteModel::replace_one(
                doc! {},
                doc! { "$set": { "x": 1 } },
            )),
            model(WriteModel::UpdateOne {
                filter: doc! {},
                update: doc! { "$set": { "x": 1 } }.into(),
                options: UpdateOptions {
                    comment: Some("per-model comment".into()),
                    ..UpdateOptions::default()
                },
            }),
        ];
        for m in bad {
            let err = prepare([model(WriteModel::delete_one(doc! {})), m]).unwrap_err();
            assert!(
                matches!(*err.kind, ErrorKind::InvalidArgument { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("model 1"), "{err}");
        }
        assert!(prepare([]).is_err());
    }

    #[test]
    fn namespaces_are_listed_once_and_inserts_get_an_id_first() {
        let models = [
            ClientWriteModel {
                namespace: Namespace::new("a", "x"),
                model: WriteModel::InsertOne(doc! { "v": 1 }),
            },
            ClientWriteModel {
                namespace: Namespace::new("b", "y.z"),
                model: WriteModel::delete_many(doc! {}),
            },
            ClientWriteModel {
                namespace: Namespace::new("a", "x"),
                model: WriteModel::InsertOne(doc! { "v": 2, "_id": 7 }),
            },
        ];
        let (namespaces, ops) = prepare(models).unwrap();
        assert_eq!(namespaces, vec!["a.x", "b.y.z"]);
        assert_eq!(
            ops.iter().map(|o| o.namespace).collect::<Vec<_>>(),
            vec![0, 1, 0]
        );
        let first = ops[0].fields.get_document("document").unwrap();
        let id = first.get_object_id("_id").unwrap();
        assert_eq!(ops[0].inserted_id, Some(Bson::ObjectId(id)));
        assert_eq!(first.iter().next().unwrap().unwrap().0.as_str(), "_id");
        assert_eq!(ops[2].inserted_id, Some(Bson::Int32(7)));
        assert_eq!(
            "b.y.z".parse::<Namespace>().unwrap(),
            Namespace::new("b", "y.z")
        );
        assert!("nodot".parse::<Namespace>().is_err());
    }
}
