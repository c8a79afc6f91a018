//! The operations a unified test calls, each mapped onto the driver's public API, and their
//! results turned into the shapes the spec's `expectResult` describes.
//!
//! Arguments are taken one by one; an argument left over is a runner error naming it, so a
//! test that needs an option the driver lacks fails loudly instead of passing without it.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{Bson, Document, doc};
use may_mongo::ClientSession;
use may_mongo::VerboseResults;
use may_mongo::error::{InsertManyError, PartialBulkWriteResult};
use may_mongo::options::{
    Acknowledgment, AggregateOptions, BulkWriteOptions, Collation, CountOptions,
    CreateCollectionOptions, CursorType, DeleteOptions, DistinctOptions,
    EstimatedDocumentCountOptions, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, FindOneOptions, FindOptions, GridFsUploadOptions, Hint, IndexOptions,
    InsertManyOptions, InsertOneOptions, ReplaceOptions, ReturnDocument, RunCursorCommandOptions,
    UpdateOptions, WriteConcern,
};
use may_mongo::{
    BulkWriteResult, Client, ClientBulkWriteOptions, ClientBulkWriteResult, ClientWriteModel,
    Collection, Cursor, Database, Error, GridFsBucket, IndexModel, SearchIndexModel,
    SearchIndexType, UpdateModifications, WriteModel,
};

/// Why an operation did not return a result.
#[derive(Debug)]
pub enum OpError {
    /// The driver returned an error: what `expectError` describes.
    Driver(Error),
    /// The runner could not carry the operation out (unknown operation or argument, bad
    /// test data): always a test failure.
    Runner(String),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Driver(e)
    }
}

pub type OpResult = Result<Option<Bson>, OpError>;

/// `.run()`, in the operation's explicit session (`s`) when it names one.
macro_rules! run {
    ($s:ident, $action:expr) => {
        match $s.as_deref_mut() {
            Some(session) => $action.session(session).run(),
            None => $action.run(),
        }
    };
}

/// `.run()` and every result of the cursor, in the operation's session when it names one.
macro_rules! run_cursor {
    ($s:ident, $action:expr) => {
        match $s.as_deref_mut() {
            Some(session) => {
                let mut cursor = $action.session(&mut *session).run()?;
                cursor.iter(session).collect::<Result<Vec<_>, _>>()
            }
            None => $action.run()?.collect::<Result<Vec<_>, _>>(),
        }
    };
}

fn runner(msg: impl Into<String>) -> OpError {
    OpError::Runner(msg.into())
}

/// An operation's arguments, consumed as they are used.
pub struct Args {
    op: String,
    rest: Document,
    /// Whether the server under test is a single server (see `single_server_read_preference`).
    pub single_server: bool,
}

impl Args {
    pub fn new(op: &str, arguments: Option<&Document>) -> Args {
        Args {
            op: op.to_string(),
            rest: arguments.cloned().unwrap_or_default(),
            single_server: false,
        }
    }

    pub fn take(&mut self, key: &str) -> Option<Bson> {
        self.rest.remove(key)
    }

    pub fn required(&mut self, key: &str) -> Result<Bson, OpError> {
        self.take(key)
            .ok_or_else(|| runner(format!("{}: missing argument {key}", self.op)))
    }

    pub fn doc(&mut self, key: &str) -> Result<Option<Document>, OpError> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Document(d)) => Ok(Some(d)),
            Some(other) => Err(runner(format!(
                "{}: {key} is not a document: {other}",
                self.op
            ))),
        }
    }

    pub fn required_doc(&mut self, key: &str) -> Result<Document, OpError> {
        self.doc(key)?
            .ok_or_else(|| runner(format!("{}: missing argument {key}", self.op)))
    }

    pub fn docs(&mut self, key: &str) -> Result<Option<Vec<Document>>, OpError> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Bson::Document(d) => Ok(d),
                    other => Err(runner(format!("{}: {key} holds {other}", self.op))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(runner(format!(
                "{}: {key} is not an array: {other}",
                self.op
            ))),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, OpError> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Boolean(b)) => Ok(Some(b)),
            Some(other) => Err(runner(format!(
                "{}: {key} is not a boolean: {other}",
                self.op
            ))),
        }
    }

    pub fn int(&mut self, key: &str) -> Result<Option<i64>, OpError> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Int32(n)) => Ok(Some(n.into())),
            Some(Bson::Int64(n)) => Ok(Some(n)),
            Some(Bson::Double(n)) if n.fract() == 0.0 => Ok(Some(n as i64)),
            Some(other) => Err(runner(format!(
                "{}: {key} is not an integer: {other}",
                self.op
            ))),
        }
    }

    pub fn str(&mut self, key: &str) -> Result<String, OpError> {
        match self.required(key)? {
            Bson::String(s) => Ok(s),
            other => Err(runner(format!(
                "{}: {key} is not a string: {other}",
                self.op
            ))),
        }
    }

    pub fn millis(&mut self, key: &str) -> Result<Option<Duration>, OpError> {
        Ok(self.int(key)?.map(|n| Duration::from_millis(n as u64)))
    }

    /// Fails on any argument nobody took.
    pub fn finish(self) -> Result<(), OpError> {
        match self.rest.keys().next() {
            None => Ok(()),
            Some(k) => Err(runner(format!(
                "{}: argument {k:?} is not supported by this runner",
                self.op
            ))),
        }
    }

    /// Takes every remaining argument (commands whose options pass straight through).
    pub fn take_all(&mut self) -> Document {
        std::mem::take(&mut self.rest)
    }

    /// `hint`: an index name or key pattern.
    pub fn hint(&mut self, key: &str) -> Result<Option<Hint>, OpError> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::String(name)) => Ok(Some(Hint::Name(name))),
            Some(Bson::Document(keys)) => Ok(Some(Hint::Keys(keys))),
            Some(other) => Err(runner(format!("{}: {key} {other}", self.op))),
        }
    }

    /// `collation`, read as the driver's `Collation`.
    pub fn collation(&mut self, key: &str) -> Result<Option<Collation>, OpError> {
        self.doc(key)?.map(|d| typed(key, d)).transpose()
    }
}

/// `doc` read as a `T` of the driver's, which must keep every field: one it does not know is
/// a runner error, rather than an option silently left out.
pub fn typed<T>(what: &str, doc: Document) -> Result<T, OpError>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let value: T =
        bson::deserialize_from_document(doc.clone()).map_err(|e| runner(format!("{what}: {e}")))?;
    let kept = bson::serialize_to_document(&value).map_err(|e| runner(format!("{what}: {e}")))?;
    match doc.keys().find(|k| !kept.contains_key(k.as_str())) {
        None => Ok(value),
        Some(k) => Err(runner(format!(
            "{what}: {k:?} is not supported by the driver"
        ))),
    }
}

/// Runs a collection operation.
pub fn collection_op(
    coll: &Collection<Document>,
    unacknowledged: bool,
    name: &str,
    mut a: Args,
    mut s: Option<&mut ClientSession>,
) -> OpResult {
    // Results of unacknowledged writes are not reported (the spec accepts "unset").
    let ack = |r: Bson| if unacknowledged { None } else { Some(r) };
    let out = match name {
        "insertOne" => {
            let document = a.required_doc("document")?;
            let options = InsertOneOptions {
                raw_data: a.bool("rawData")?,
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                comment: a.take("comment"),
                ..Default::default()
            };
            a.finish()?;
            let r = run!(s, coll.insert_one(document).with_options(options))?;
            ack(doc! { "insertedId": r.inserted_id }.into())
        }
        "insertMany" => {
            let documents = a.docs("documents")?.unwrap_or_default();
            let options = InsertManyOptions {
                raw_data: a.bool("rawData")?,
                ordered: a.bool("ordered")?,
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                comment: a.take("comment"),
                ..Default::default()
            };
            a.finish()?;
            let r = run!(s, coll.insert_many(&documents).with_options(options))?;
            ack(doc! { "insertedIds": ids(&r.inserted_ids) }.into())
        }
        "deleteOne" | "deleteMany" => {
            let filter = a.required_doc("filter")?;
            let options = delete_options(&mut a)?;
            a.finish()?;
            let r = if name == "deleteMany" {
                run!(s, coll.delete_many(filter).with_options(options))?
            } else {
                run!(s, coll.delete_one(filter).with_options(options))?
            };
            ack(doc! { "deletedCount": r.deleted_count as i64 }.into())
        }
        "updateOne" | "updateMany" | "replaceOne" => {
            let filter = a.required_doc("filter")?;
            let change = if name == "replaceOne" {
                a.required("replacement")?
            } else {
                a.required("update")?
            };
            let options = update_options(&mut a)?;
            a.finish()?;
            let r = match (name, change) {
                ("replaceOne", Bson::Document(d)) => {
                    if options.array_filters.is_some() {
                        return Err(runner("replaceOne with arrayFilters"));
                    }
                    let options = ReplaceOptions {
                        bypass_document_validation: options.bypass_document_validation,
                        upsert: options.upsert,
                        collation: options.collation,
                        hint: options.hint,
                        write_concern: options.write_concern,
                        let_vars: options.let_vars,
                        comment: options.comment,
                        sort: options.sort,
                        raw_data: options.raw_data,
                    };
                    run!(s, coll.replace_one(filter, d).with_options(options))?
                }
                ("updateOne", u) => run!(
                    s,
                    coll.update_one(filter, modifications(u)?)
                        .with_options(options)
                )?,
                ("updateMany", u) => run!(
                    s,
                    coll.update_many(filter, modifications(u)?)
                        .with_options(options)
                )?,
                (_, other) => return Err(runner(format!("replacement {other}"))),
            };
            let mut out = doc! {
                "matchedCount": r.matched_count as i64,
                "modifiedCount": r.modified_count as i64,
                "upsertedCount": i64::from(r.upserted_id.is_some()),
            };
            if let Some(id) = r.upserted_id {
                out.insert("upsertedId", id);
            }
            ack(out.into())
        }
        "find" | "findOne" => {
            let filter = a.doc("filter")?.unwrap_or_default();
            let options = find_options(&mut a)?;
            a.finish()?;
            if name == "findOne" {
                if options.limit.is_some() || options.batch_size.is_some() {
                    return Err(runner("findOne with limit or batchSize"));
                }
                let options = FindOneOptions {
                    allow_partial_results: options.allow_partial_results,
                    collation: options.collation,
                    comment: options.comment,
                    hint: options.hint,
                    max: options.max,
                    max_time: options.max_time,
                    min: options.min,
                    projection: options.projection,
                    read_concern: options.read_concern,
                    return_key: options.return_key,
                    selection_criteria: options.selection_criteria,
                    show_record_id: options.show_record_id,
                    skip: options.skip,
                    sort: options.sort,
                    let_vars: options.let_vars,
                    raw_data: options.raw_data,
                };
                Some(
                    run!(s, coll.find_one(filter).with_options(options))?
                        .map_or(Bson::Null, Bson::from),
                )
            } else {
                let docs = run_cursor!(s, coll.find(filter).with_options(options))?;
                Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
            }
        }
        "findOneAndDelete" | "findOneAndUpdate" | "findOneAndReplace" => {
            let filter = a.required_doc("filter")?;
            let change = match name {
                "findOneAndUpdate" => Some(a.required("update")?),
                "findOneAndReplace" => Some(a.required("replacement")?),
                _ => None,
            };
            let return_document = match a.take("returnDocument") {
                None => None,
                Some(Bson::String(s)) if s == "Before" => Some(ReturnDocument::Before),
                Some(Bson::String(s)) if s == "After" => Some(ReturnDocument::After),
                Some(other) => return Err(runner(format!("returnDocument {other}"))),
            };
            // Every option, as findOneAndUpdate takes them; the other two take fewer (an
            // option one of them lacks is refused below, not dropped).
            let options = FindOneAndUpdateOptions {
                raw_data: a.bool("rawData")?,
                return_document,
                projection: a.doc("projection")?,
                sort: a.doc("sort")?,
                upsert: a.bool("upsert")?,
                array_filters: a.docs("arrayFilters")?,
                hint: a.hint("hint")?,
                collation: a.collation("collation")?,
                let_vars: a.doc("let")?,
                comment: a.take("comment"),
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                max_time: a.millis("maxTimeMS")?,
                write_concern: None,
            };
            a.finish()?;
            let o = options;
            let found = match (name, change) {
                ("findOneAndDelete", _) => {
                    if o.return_document.is_some()
                        || o.upsert.is_some()
                        || o.array_filters.is_some()
                        || o.bypass_document_validation.is_some()
                    {
                        return Err(runner("findOneAndDelete with an update's option"));
                    }
                    let options = FindOneAndDeleteOptions {
                        max_time: o.max_time,
                        projection: o.projection,
                        sort: o.sort,
                        write_concern: o.write_concern,
                        collation: o.collation,
                        hint: o.hint,
                        let_vars: o.let_vars,
                        comment: o.comment,
                        raw_data: o.raw_data,
                    };
                    run!(s, coll.find_one_and_delete(filter).with_options(options))?
                }
                ("findOneAndUpdate", Some(u)) => run!(
                    s,
                    coll.find_one_and_update(filter, modifications(u)?)
                        .with_options(o)
                )?,
                (_, Some(Bson::Document(r))) => {
                    if o.array_filters.is_some() {
                        return Err(runner("findOneAndReplace with arrayFilters"));
                    }
                    let options = FindOneAndReplaceOptions {
                        bypass_document_validation: o.bypass_document_validation,
                        max_time: o.max_time,
                        projection: o.projection,
                        return_document: o.return_document,
                        sort: o.sort,
                        upsert: o.upsert,
                        write_concern: o.write_concern,
                        collation: o.collation,
                        hint: o.hint,
                        let_vars: o.let_vars,
                        comment: o.comment,
                        raw_data: o.raw_data,
                    };
                    run!(
                        s,
                        coll.find_one_and_replace(filter, r).with_options(options)
                    )?
                }
                (_, other) => return Err(runner(format!("replacement {other:?}"))),
            };
            ack(found.map_or(Bson::Null, Bson::from))
        }
        "countDocuments" => {
            let filter = a.doc("filter")?.unwrap_or_default();
            let options = CountOptions {
                raw_data: a.bool("rawData")?,
                skip: a.int("skip")?.map(|n| n as u64),
                limit: a.int("limit")?.map(|n| n as u64),
                hint: a.hint("hint")?,
                collation: a.collation("collation")?,
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
                ..Default::default()
            };
            a.finish()?;
            Some(Bson::Int64(
                run!(s, coll.count_documents(filter).with_options(options))? as i64,
            ))
        }
        "estimatedDocumentCount" => {
            let options = EstimatedDocumentCountOptions {
                raw_data: a.bool("rawData")?,
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
                ..Default::default()
            };
            a.finish()?;
            Some(Bson::Int64(
                run!(s, coll.estimated_document_count().with_options(options))? as i64,
            ))
        }
        "distinct" => {
            let field = a.str("fieldName")?;
            let filter = a.doc("filter")?.unwrap_or_default();
            let options = DistinctOptions {
                raw_data: a.bool("rawData")?,
                collation: a.collation("collation")?,
                hint: a.hint("hint")?,
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
                ..Default::default()
            };
            a.finish()?;
            Some(Bson::Array(run!(
                s,
                coll.distinct(&field, filter).with_options(options)
            )?))
        }
        "aggregate" => {
            let pipeline = a.docs("pipeline")?.unwrap_or_default();
            let options = aggregate_options(&mut a)?;
            a.finish()?;
            let docs = run_cursor!(s, coll.aggregate(pipeline).with_options(options))?;
            Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
        }
        "bulkWrite" => {
            let requests = a.required("requests")?;
            let Bson::Array(requests) = requests else {
                return Err(runner("bulkWrite: requests is not an array"));
            };
            let models = requests
                .into_iter()
                .map(|r| write_model(r, false).map(|(_, m)| m))
                .collect::<Result<Vec<_>, _>>()?;
            let options = BulkWriteOptions {
                raw_data: a.bool("rawData")?,
                ordered: a.bool("ordered")?,
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                let_vars: a.doc("let")?,
                comment: a.take("comment"),
            };
            a.finish()?;
            let r = run!(s, coll.bulk_write(models).with_options(options))?;
            ack(bulk_result(&r).into())
        }
        "createSearchIndex" => {
            let model = search_index_model(a.required_doc("model")?)?;
            a.finish()?;
            Some(coll.create_search_index(model).run()?.into())
        }
        "createSearchIndexes" => {
            let models = a
                .docs("models")?
                .unwrap_or_default()
                .into_iter()
                .map(search_index_model)
                .collect::<Result<Vec<_>, _>>()?;
            a.finish()?;
            let names = coll.create_search_indexes(models).run()?;
            Some(Bson::Array(names.into_iter().map(Bson::from).collect()))
        }
        "dropSearchIndex" => {
            let name = a.str("name")?;
            a.finish()?;
            coll.drop_search_index(&name).run()?;
            None
        }
        "updateSearchIndex" => {
            let name = a.str("name")?;
            let definition = a.required_doc("definition")?;
            a.finish()?;
            coll.update_search_index(&name, definition).run()?;
            None
        }
        "listSearchIndexes" => {
            let name = a.take("name").and_then(|n| n.as_str().map(String::from));
            let options = match a.doc("aggregationOptions")? {
                None => AggregateOptions::default(),
                Some(o) => {
                    let mut inner = Args::new("aggregationOptions", Some(&o));
                    let options = aggregate_options(&mut inner)?;
                    inner.finish()?;
                    options
                }
            };
            a.finish()?;
            let mut action = coll.list_search_indexes().aggregate_options(options);
            if let Some(name) = name {
                action = action.name(name);
            }
            let docs = action.run()?.collect::<Result<Vec<_>, _>>()?;
            Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
        }
        "listIndexes" => {
            a.finish()?;
            // The official shape: each index as an IndexModel, here written back as the
            // document the expectations compare against.
            let models = run_cursor!(s, coll.list_indexes())?;
            let docs = models
                .iter()
                .map(|m| bson::serialize_to_document(m).map(Bson::from))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| runner(format!("listIndexes: {e}")))?;
            Some(Bson::Array(docs))
        }
        "listIndexNames" => {
            a.finish()?;
            let names = run!(s, coll.list_index_names())?;
            Some(Bson::Array(names.into_iter().map(Bson::from).collect()))
        }
        "createIndex" => {
            let keys = a.required_doc("keys")?;
            let options = a.take_all();
            let options = (!options.is_empty())
                .then(|| typed::<IndexOptions>("createIndex", options))
                .transpose()?;
            let model = IndexModel::builder().keys(keys).options(options).build();
            Some(Bson::String(run!(s, coll.create_index(model))?.index_name))
        }
        "drop" => {
            a.finish()?;
            run!(s, coll.drop())?;
            None
        }
        other => {
            return Err(runner(format!(
                "collection operation {other} is not supported"
            )));
        }
    };
    Ok(out)
}

/// `listCollections` through the official shape (each a `CollectionSpecification`), written
/// back as the documents the expectations compare against.
fn collection_specs(db: &Database, filter: Option<Document>) -> Result<Bson, OpError> {
    let mut action = db.list_collections();
    if let Some(filter) = filter {
        action = action.filter(filter);
    }
    let specs = action.run()?.collect::<Result<Vec<_>, _>>()?;
    let docs = specs
        .iter()
        .map(|s| bson::serialize_to_document(s).map(Bson::from))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| runner(format!("listCollections: {e}")))?;
    Ok(Bson::Array(docs))
}

/// An update as the tests give it: a document of operators or a pipeline.
fn modifications(u: Bson) -> Result<UpdateModifications, OpError> {
    match u {
        Bson::Document(d) => Ok(d.into()),
        Bson::Array(stages) => stages
            .into_iter()
            .map(|s| match s {
                Bson::Document(d) => Ok(d),
                other => Err(runner(format!("pipeline stage {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(UpdateModifications::from),
        other => Err(runner(format!("update {other}"))),
    }
}

/// Runs a database operation.
pub fn database_op(
    db: &Database,
    name: &str,
    mut a: Args,
    mut s: Option<&mut ClientSession>,
) -> OpResult {
    Ok(match name {
        "createCollection" => {
            let coll = a.str("collection")?;
            let options = a.take_all();
            let options = (!options.is_empty())
                .then(|| typed::<CreateCollectionOptions>("createCollection", options))
                .transpose()?;
            run!(s, db.create_collection(coll).with_options(options))?;
            None
        }
        "dropCollection" => {
            let coll = a.str("collection")?;
            a.finish()?;
            run!(s, db.collection::<Document>(&coll).drop())?;
            None
        }
        "modifyCollection" => {
            let coll = a.str("collection")?;
            let mut command = doc! { "collMod": coll };
            command.extend(a.take_all());
            run!(s, db.run_command(command))?;
            None
        }
        "runCommand" => {
            let command = a.required_doc("command")?;
            let _name = a.take("commandName");
            single_server_read_preference(&mut a)?;
            a.finish()?;
            Some(run!(s, db.run_command(command))?.into())
        }
        "runCursorCommand" => {
            let action = cursor_command_action(db, &mut a)?;
            a.finish()?;
            let docs = run_cursor!(s, action)?;
            Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
        }
        "listCollections" => {
            let filter = a.doc("filter")?;
            // `rawData` reaches only servers that know it (8.2+); the spec says to leave it
            // out below, which the runner does by not sending it.
            let _ = a.bool("rawData")?;
            let _ = a.int("batchSize")?;
            a.finish()?;
            Some(collection_specs(db, filter)?)
        }
        "aggregate" => {
            let pipeline = a.docs("pipeline")?.unwrap_or_default();
            let options = aggregate_options(&mut a)?;
            a.finish()?;
            let docs = run_cursor!(s, db.aggregate(pipeline).with_options(options))?;
            Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
        }
        "listCollectionObjects" => {
            let filter = a.doc("filter")?;
            a.finish()?;
            Some(collection_specs(db, filter)?)
        }
        "listCollectionNames" => {
            a.finish()?;
            let names = run!(s, db.list_collection_names())?;
            Some(Bson::Array(names.into_iter().map(Bson::from).collect()))
        }
        other => {
            return Err(runner(format!(
                "database operation {other} is not supported"
            )));
        }
    })
}

/// `runCursorCommand` and `createCommandCursor`: the command and the options of its getMores.
pub fn cursor_command(db: &Database, a: &mut Args) -> Result<Cursor<Document>, OpError> {
    Ok(cursor_command_action(db, a)?.run()?)
}

/// The `runCursorCommand` action `a` describes, not yet run.
fn cursor_command_action<'a>(
    db: &'a Database,
    a: &mut Args,
) -> Result<may_mongo::action::RunCursorCommand<'a>, OpError> {
    let command = a.required_doc("command")?;
    let _name = a.take("commandName");
    let mut options = RunCursorCommandOptions::default();
    options.batch_size = a.int("batchSize")?.map(|n| n as u32);
    options.max_time = a.millis("maxTimeMS")?;
    options.comment = a.take("comment");
    options.cursor_type = match a.take("cursorType") {
        None => None,
        Some(Bson::String(t)) if t == "tailable" => Some(CursorType::Tailable),
        Some(Bson::String(t)) if t == "tailableAwait" => Some(CursorType::TailableAwait),
        Some(Bson::String(t)) if t == "nonTailable" => Some(CursorType::NonTailable),
        Some(other) => return Err(runner(format!("cursorType {other}"))),
    };
    single_server_read_preference(a)?;
    Ok(db.run_cursor_command(command).with_options(options))
}

/// `run_command` has no per-call read preference yet (the handle's applies). On a single
/// server the spec sends none and any mode selects that server, so a test that passes one
/// behaves as without it there; elsewhere the runner refuses, rather than ignore it.
fn single_server_read_preference(a: &mut Args) -> Result<(), OpError> {
    if a.take("readPreference").is_some() && !a.single_server {
        return Err(runner(
            "readPreference on runCommand is only supported on a single server",
        ));
    }
    Ok(())
}

/// The deprecated `count` command, which this driver offers only through `run_command`
/// (the CRUD spec lets drivers leave it out); the runner sends it that way.
///
/// `rawData` goes only to servers that know it (8.2+), as the driver's own helpers do.
pub fn count_command(db: &Database, coll: &str, raw_data_ok: bool, mut a: Args) -> OpResult {
    let mut command = doc! { "count": coll };
    if let Some(raw) = a.take("rawData").filter(|_| raw_data_ok) {
        command.insert("rawData", raw);
    }
    if let Some(filter) = a.doc("filter")? {
        command.insert("query", filter);
    }
    for key in ["skip", "limit", "hint", "collation", "comment", "maxTimeMS"] {
        if let Some(v) = a.take(key) {
            command.insert(key, v);
        }
    }
    a.finish()?;
    let reply = db.run_command(command).run()?;
    let n = match reply.get("n") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        other => return Err(runner(format!("count reply without n: {other:?}"))),
    };
    Ok(Some(Bson::Int64(n)))
}

/// Runs the `failPoint` test-runner operation: `configureFailPoint` on the named client's
/// `admin` database. Returns the fail point's name, to switch it off after the test.
pub fn configure_fail_point(client: &Client, mut a: Args) -> Result<String, OpError> {
    let _client = a.take("client");
    let command = a.required_doc("failPoint")?;
    a.finish()?;
    let name = command
        .get_str("configureFailPoint")
        .map_err(|_| runner("failPoint without configureFailPoint"))?
        .to_string();
    client.database("admin").run_command(command).run()?;
    Ok(name)
}

fn delete_options(a: &mut Args) -> Result<DeleteOptions, OpError> {
    Ok(DeleteOptions {
        raw_data: a.bool("rawData")?,
        hint: a.hint("hint")?,
        collation: a.collation("collation")?,
        let_vars: a.doc("let")?,
        comment: a.take("comment"),
        write_concern: None,
    })
}

fn update_options(a: &mut Args) -> Result<UpdateOptions, OpError> {
    Ok(UpdateOptions {
        raw_data: a.bool("rawData")?,
        upsert: a.bool("upsert")?,
        array_filters: a.docs("arrayFilters")?,
        hint: a.hint("hint")?,
        collation: a.collation("collation")?,
        sort: a.doc("sort")?,
        let_vars: a.doc("let")?,
        comment: a.take("comment"),
        bypass_document_validation: a.bool("bypassDocumentValidation")?,
        write_concern: None,
    })
}

fn find_options(a: &mut Args) -> Result<FindOptions, OpError> {
    Ok(FindOptions {
        projection: a.doc("projection")?,
        sort: a.doc("sort")?,
        skip: a.int("skip")?.map(|n| n as u64),
        limit: a.int("limit")?,
        batch_size: a.int("batchSize")?.map(|n| n as u32),
        hint: a.hint("hint")?,
        max_time: a.millis("maxTimeMS")?,
        comment: a.take("comment"),
        allow_disk_use: a.bool("allowDiskUse")?,
        collation: a.collation("collation")?,
        let_vars: a.doc("let")?,
        raw_data: a.bool("rawData")?,
        max: a.doc("max")?,
        min: a.doc("min")?,
        return_key: a.bool("returnKey")?,
        show_record_id: a.bool("showRecordId")?,
        no_cursor_timeout: a.bool("noCursorTimeout")?,
        allow_partial_results: a.bool("allowPartialResults")?,
        ..FindOptions::default()
    })
}

fn aggregate_options(a: &mut Args) -> Result<AggregateOptions, OpError> {
    Ok(AggregateOptions {
        raw_data: a.bool("rawData")?,
        batch_size: a.int("batchSize")?.map(|n| n as u32),
        allow_disk_use: a.bool("allowDiskUse")?,
        max_time: a.millis("maxTimeMS")?,
        comment: a.take("comment"),
        hint: a.hint("hint")?,
        collation: a.collation("collation")?,
        let_vars: a.doc("let")?,
        bypass_document_validation: a.bool("bypassDocumentValidation")?,
        ..Default::default()
    })
}

/// One `requests` entry of `bulkWrite`: `{ insertOne: { document } }`, ... A client-level
/// bulk write's models also name their `namespace`, returned first.
fn write_model(
    request: Bson,
    client_level: bool,
) -> Result<(Option<String>, WriteModel<Document>), OpError> {
    let Bson::Document(request) = request else {
        return Err(runner("bulkWrite request is not a document"));
    };
    let Some((kind, Bson::Document(args))) = request.into_iter().next() else {
        return Err(runner("empty bulkWrite request"));
    };
    let mut a = Args::new(&format!("bulkWrite.{kind}"), Some(&args));
    let namespace = if client_level {
        Some(a.str("namespace")?)
    } else {
        None
    };
    let model = match kind.as_str() {
        "insertOne" => WriteModel::InsertOne(a.required_doc("document")?),
        "updateOne" | "updateMany" => {
            let filter = a.required_doc("filter")?;
            let update = a.required("update")?;
            let options = update_options(&mut a)?;
            if kind == "updateOne" {
                WriteModel::UpdateOne {
                    filter,
                    update,
                    options,
                }
            } else {
                WriteModel::UpdateMany {
                    filter,
                    update,
                    options,
                }
            }
        }
        "replaceOne" => WriteModel::ReplaceOne {
            filter: a.required_doc("filter")?,
            replacement: a.required_doc("replacement")?,
            options: update_options(&mut a)?,
        },
        "deleteOne" => WriteModel::DeleteOne {
            filter: a.required_doc("filter")?,
            options: delete_options(&mut a)?,
        },
        "deleteMany" => WriteModel::DeleteMany {
            filter: a.required_doc("filter")?,
            options: delete_options(&mut a)?,
        },
        other => return Err(runner(format!("bulkWrite model {other}"))),
    };
    a.finish()?;
    Ok((namespace, model))
}

/// Runs a client operation.
pub fn client_op(
    client: &Client,
    name: &str,
    mut a: Args,
    mut s: Option<&mut ClientSession>,
) -> OpResult {
    match name {
        "clientBulkWrite" => {
            let Bson::Array(requests) = a.required("models")? else {
                return Err(runner("clientBulkWrite: models is not an array"));
            };
            let models = requests
                .into_iter()
                .map(|r| {
                    let (namespace, model) = write_model(r, true)?;
                    let namespace = namespace.unwrap_or_default().parse()?;
                    Ok(ClientWriteModel { namespace, model })
                })
                .collect::<Result<Vec<_>, OpError>>()?;
            let mut options = ClientBulkWriteOptions::default();
            options.ordered = a.bool("ordered")?;
            options.bypass_document_validation = a.bool("bypassDocumentValidation")?;
            options.let_vars = a.doc("let")?;
            options.comment = a.take("comment");
            options.verbose_results = a.bool("verboseResults")?;
            options.raw_data = a.bool("rawData")?;
            if let Some(wc) = a.doc("writeConcern")? {
                options.write_concern = Some(write_concern(&wc)?);
            }
            a.finish()?;
            let r = run!(s, client.bulk_write(models).with_options(options))?;
            Ok(r.acknowledged.then(|| client_bulk_result(&r).into()))
        }
        "listDatabases" | "listDatabaseObjects" => {
            a.finish()?;
            let specs = run!(s, client.list_databases())?;
            let docs = specs
                .iter()
                .map(|s| bson::serialize_to_document(s).map(Bson::from))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| runner(format!("listDatabases: {e}")))?;
            Ok(Some(Bson::Array(docs)))
        }
        "listDatabaseNames" => {
            a.finish()?;
            let names = run!(s, client.list_database_names())?;
            Ok(Some(Bson::Array(
                names.into_iter().map(Bson::from).collect(),
            )))
        }
        other => Err(runner(format!("client operation {other} is not supported"))),
    }
}

/// A `writeConcern` document of a test as the driver's type.
pub fn write_concern(d: &Document) -> Result<WriteConcern, OpError> {
    let mut concern = WriteConcern::default();
    if let Some(w) = d.get("w") {
        concern.w = Some(WriteConcern::parse_w(w)?);
    }
    if let Ok(j) = d.get_bool("journal") {
        concern.journal = Some(j);
    }
    Ok(concern)
}

/// True for a `w: 0` write concern.
pub fn is_unacknowledged(wc: &WriteConcern) -> bool {
    matches!(wc.w, Some(Acknowledgment::Nodes(0)))
}

/// A client-level bulk write's result as the spec names its fields; the per-write maps only
/// when they were asked for.
pub fn client_bulk_result(r: &ClientBulkWriteResult) -> Document {
    let mut d = doc! {
        "insertedCount": r.inserted_count as i64,
        "upsertedCount": r.upserted_count as i64,
        "matchedCount": r.matched_count as i64,
        "modifiedCount": r.modified_count as i64,
        "deletedCount": r.deleted_count as i64,
    };
    if let Some(v) = &r.verbose {
        let by_index = |i: &usize| i.to_string();
        let inserts: Document = v
            .insert_results
            .iter()
            .map(|(i, r)| {
                (
                    by_index(i),
                    doc! { "insertedId": r.inserted_id.clone() }.into(),
                )
            })
            .collect::<Document>();
        let updates: Document = v
            .update_results
            .iter()
            .map(|(i, r)| {
                let mut u = doc! {
                    "matchedCount": r.matched_count as i64,
                    "modifiedCount": r.modified_count as i64,
                };
                if let Some(id) = &r.upserted_id {
                    u.insert("upsertedId", id.clone());
                }
                (by_index(i), Bson::Document(u))
            })
            .collect();
        let deletes: Document = v
            .delete_results
            .iter()
            .map(|(i, r)| {
                (
                    by_index(i),
                    doc! { "deletedCount": r.deleted_count as i64 }.into(),
                )
            })
            .collect();
        d.insert("insertResults", inserts);
        d.insert("updateResults", updates);
        d.insert("deleteResults", deletes);
    }
    d
}

/// A partly failed client-level bulk write's result, as [`client_bulk_result`] shows it.
pub fn partial_client_bulk_result(p: &PartialBulkWriteResult) -> Document {
    let summary = match p {
        PartialBulkWriteResult::Summary(s) => s,
        PartialBulkWriteResult::Verbose(v) => &v.summary,
    };
    let mut r = ClientBulkWriteResult::default();
    r.acknowledged = true;
    r.inserted_count = summary.inserted_count as u64;
    r.upserted_count = summary.upserted_count as u64;
    r.matched_count = summary.matched_count as u64;
    r.modified_count = summary.modified_count as u64;
    r.deleted_count = summary.deleted_count as u64;
    if let PartialBulkWriteResult::Verbose(v) = p {
        let mut verbose = VerboseResults::default();
        verbose.insert_results = v.insert_results.clone().into_iter().collect();
        verbose.update_results = v.update_results.clone().into_iter().collect();
        verbose.delete_results = v.delete_results.clone().into_iter().collect();
        r.verbose = Some(verbose);
    }
    client_bulk_result(&r)
}

/// What a failed `insert_many` inserted, as [`bulk_result`] shows a bulk write's result.
pub fn insert_many_partial_result(e: &InsertManyError) -> Document {
    let mut r = BulkWriteResult::default();
    r.inserted_count = e.inserted_ids.len() as u64;
    r.inserted_ids = e.inserted_ids.clone().into_iter().collect();
    bulk_result(&r)
}

/// `{ "0": id, "3": id }`, as the spec writes ids by index.
fn ids<'a>(map: impl IntoIterator<Item = (&'a usize, &'a Bson)>) -> Document {
    let sorted: BTreeMap<_, _> = map.into_iter().collect();
    sorted
        .into_iter()
        .map(|(i, id)| (i.to_string(), id.clone()))
        .collect()
}

/// A bulk write's result as the spec names its fields.
pub fn bulk_result(r: &BulkWriteResult) -> Document {
    doc! {
        "insertedCount": r.inserted_count as i64,
        "matchedCount": r.matched_count as i64,
        "modifiedCount": r.modified_count as i64,
        "deletedCount": r.deleted_count as i64,
        "upsertedCount": r.upserted_count as i64,
        "insertedIds": ids(&r.inserted_ids),
        "upsertedIds": ids(&r.upserted_ids),
    }
}

/// A search index model of a test (`definition`, `name`, `type`) as the driver's type.
fn search_index_model(d: Document) -> Result<SearchIndexModel, OpError> {
    let mut a = Args::new("model", Some(&d));
    let mut model = SearchIndexModel::new(a.required_doc("definition")?);
    model.name = a.take("name").and_then(|n| n.as_str().map(String::from));
    model.index_type = match a.take("type") {
        None => None,
        Some(Bson::String(t)) if t == "search" => Some(SearchIndexType::Search),
        Some(Bson::String(t)) if t == "vectorSearch" => Some(SearchIndexType::VectorSearch),
        Some(other) => return Err(runner(format!("search index type {other}"))),
    };
    a.finish()?;
    Ok(model)
}

/// `{"$$hexBytes": "0a1b"}`, the unified format's way to write bytes, as bytes.
fn hex_bytes(v: &Bson) -> Result<Vec<u8>, OpError> {
    let hex = v
        .as_document()
        .and_then(|d| d.get_str("$$hexBytes").ok())
        .ok_or_else(|| runner(format!("expected {{$$hexBytes: ...}}, got {v}")))?;
    if hex.len() % 2 != 0 {
        return Err(runner(format!("odd-length hex {hex:?}")));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| runner(e.to_string())))
        .collect()
}

/// Runs a GridFS bucket operation (the GridFS spec's unified tests).
pub fn bucket_op(bucket: &GridFsBucket, name: &str, mut a: Args) -> OpResult {
    let bytes = |b: Vec<u8>| {
        Some(Bson::Binary(bson::Binary {
            subtype: bson::spec::BinarySubtype::Generic,
            bytes: b,
        }))
    };
    Ok(match name {
        "download" => {
            let id = a.required("id")?;
            a.finish()?;
            let mut out = Vec::new();
            bucket.download_to_writer(&id, &mut out)?;
            bytes(out)
        }
        "downloadByName" => {
            let filename = a.str("filename")?;
            let revision = a.int("revision")?.unwrap_or(-1) as i32;
            a.finish()?;
            let mut stream = bucket
                .open_download_stream_by_name(&filename)
                .revision(revision)
                .run()?;
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut stream, &mut out)
                .map_err(may_mongo::gridfs::io_error_to_driver)?;
            bytes(out)
        }
        "upload" => {
            let filename = a.str("filename")?;
            let source = hex_bytes(&a.required("source")?)?;
            let mut options = GridFsUploadOptions::default();
            options.chunk_size_bytes = a.int("chunkSizeBytes")?.map(|n| n as u32);
            options.metadata = a.doc("metadata")?;
            // MD5 is gone from the GridFS spec; a driver without it ignores `disableMD5`.
            let _ = a.bool("disableMD5")?;
            a.finish()?;
            Some(bucket.upload_from_reader(&filename, &mut source.as_slice(), options)?)
        }
        "delete" => {
            let id = a.required("id")?;
            a.finish()?;
            bucket.delete(id).run()?;
            None
        }
        "deleteByName" => {
            let filename = a.str("filename")?;
            a.finish()?;
            bucket.delete_by_name(&filename).run()?;
            None
        }
        "rename" => {
            let id = a.required("id")?;
            let new_filename = a.str("newFilename")?;
            a.finish()?;
            bucket.rename(id, &new_filename).run()?;
            None
        }
        "renameByName" => {
            let filename = a.str("filename")?;
            let new_filename = a.str("newFilename")?;
            a.finish()?;
            bucket.rename_by_name(&filename, &new_filename).run()?;
            None
        }
        "drop" => {
            a.finish()?;
            bucket.drop().run()?;
            None
        }
        other => return Err(runner(format!("bucket operation {other} is not supported"))),
    })
}

/// `createFindCursor`: a `find` whose cursor the test iterates itself.
pub fn find_cursor(coll: &Collection<Document>, mut a: Args) -> Result<Cursor<Document>, OpError> {
    let filter = a.doc("filter")?.unwrap_or_default();
    let options = find_options(&mut a)?;
    a.finish()?;
    Ok(coll.find(filter).with_options(options).run()?)
}

/// Operations on a cursor entity.
pub fn cursor_op(cursor: &mut Cursor<Document>, name: &str, a: Args) -> OpResult {
    a.finish()?;
    match name {
        // A tailable cursor may come back empty-handed and still be open: ask again, as the
        // spec's runner does, while the server keeps it.
        "iterateUntilDocumentOrError" => loop {
            if cursor.advance()? {
                return Ok(Some(cursor.deserialize_current()?.into()));
            }
            if !cursor.is_alive() {
                return Err(runner(
                    "iterateUntilDocumentOrError: the cursor is exhausted",
                ));
            }
        },
        "iterateOnce" => {
            cursor.advance()?;
            Ok(None)
        }
        "close" => Ok(None),
        other => Err(runner(format!("cursor operation {other} is not supported"))),
    }
}
