//! The operations a unified test calls, each mapped onto the driver's public API, and their
//! results turned into the shapes the spec's `expectResult` describes.
//!
//! Arguments are taken one by one; an argument left over is a runner error naming it, so a
//! test that needs an option the driver lacks fails loudly instead of passing without it.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{Bson, Document, doc};
use may_mongo::{
    Acknowledgment, AggregateOptions, BulkWriteOptions, BulkWriteResult, Client,
    ClientBulkWriteOptions, ClientBulkWriteResult, ClientWriteModel, Collection, CountOptions,
    Database, DeleteOptions, DistinctOptions, Error, EstimatedCountOptions,
    FindOneAndModifyOptions, FindOptions, IndexModel, InsertManyOptions, InsertOneOptions,
    ReturnDocument, UpdateOptions, WriteConcern, WriteModel,
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

fn runner(msg: impl Into<String>) -> OpError {
    OpError::Runner(msg.into())
}

/// An operation's arguments, consumed as they are used.
pub struct Args {
    op: String,
    rest: Document,
}

impl Args {
    pub fn new(op: &str, arguments: Option<&Document>) -> Args {
        Args {
            op: op.to_string(),
            rest: arguments.cloned().unwrap_or_default(),
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

    fn millis(&mut self, key: &str) -> Result<Option<Duration>, OpError> {
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
}

/// Runs a collection operation.
pub fn collection_op(
    coll: &Collection<Document>,
    unacknowledged: bool,
    name: &str,
    mut a: Args,
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
            };
            a.finish()?;
            let r = coll.insert_one_with(document, options)?;
            ack(doc! { "insertedId": r.inserted_id }.into())
        }
        "insertMany" => {
            let documents = a.docs("documents")?.unwrap_or_default();
            let options = InsertManyOptions {
                raw_data: a.bool("rawData")?,
                ordered: a.bool("ordered")?,
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                comment: a.take("comment"),
            };
            a.finish()?;
            let r = coll.insert_many_with(&documents, options)?;
            ack(doc! { "insertedIds": ids(&r.inserted_ids) }.into())
        }
        "deleteOne" | "deleteMany" => {
            let filter = a.required_doc("filter")?;
            let options = delete_options(&mut a)?;
            a.finish()?;
            let r = coll.delete_with(filter, name == "deleteMany", options)?;
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
                ("replaceOne", Bson::Document(d)) => coll.replace_one(filter, d, options)?,
                ("updateOne", u) => coll.update_one(filter, u, options)?,
                ("updateMany", u) => coll.update_many(filter, u, options)?,
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
                Some(
                    coll.find_one_with(filter, options)?
                        .map_or(Bson::Null, Bson::from),
                )
            } else {
                let docs = coll
                    .find_with(filter, options)?
                    .collect::<Result<Vec<Document>, _>>()?;
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
                None => ReturnDocument::Before,
                Some(Bson::String(s)) if s == "Before" => ReturnDocument::Before,
                Some(Bson::String(s)) if s == "After" => ReturnDocument::After,
                Some(other) => return Err(runner(format!("returnDocument {other}"))),
            };
            let options = FindOneAndModifyOptions {
                raw_data: a.bool("rawData")?,
                return_document,
                projection: a.doc("projection")?,
                sort: a.doc("sort")?,
                upsert: a.bool("upsert")?,
                array_filters: a.docs("arrayFilters")?,
                hint: a.take("hint"),
                collation: a.doc("collation")?,
                let_vars: a.doc("let")?,
                comment: a.take("comment"),
                bypass_document_validation: a.bool("bypassDocumentValidation")?,
                max_time: a.millis("maxTimeMS")?,
            };
            a.finish()?;
            let found = match (name, change) {
                ("findOneAndDelete", _) => coll.find_one_and_delete(filter, options)?,
                ("findOneAndUpdate", Some(u)) => coll.find_one_and_update(filter, u, options)?,
                (_, Some(Bson::Document(r))) => coll.find_one_and_replace(filter, r, options)?,
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
                hint: a.take("hint"),
                collation: a.doc("collation")?,
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
            };
            a.finish()?;
            Some(Bson::Int64(coll.count_documents(filter, options)? as i64))
        }
        "estimatedDocumentCount" => {
            let options = EstimatedCountOptions {
                raw_data: a.bool("rawData")?,
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
            };
            a.finish()?;
            Some(Bson::Int64(
                coll.estimated_document_count_with(options)? as i64
            ))
        }
        "distinct" => {
            let field = a.str("fieldName")?;
            let filter = a.doc("filter")?.unwrap_or_default();
            let options = DistinctOptions {
                raw_data: a.bool("rawData")?,
                collation: a.doc("collation")?,
                hint: a.take("hint"),
                max_time: a.millis("maxTimeMS")?,
                comment: a.take("comment"),
            };
            a.finish()?;
            Some(Bson::Array(coll.distinct_with(&field, filter, options)?))
        }
        "aggregate" => {
            let pipeline = a.docs("pipeline")?.unwrap_or_default();
            let options = aggregate_options(&mut a)?;
            a.finish()?;
            let docs = coll
                .aggregate(pipeline, options)?
                .collect::<Result<Vec<_>, _>>()?;
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
            let r = coll.bulk_write_with(models, options)?;
            ack(bulk_result(&r).into())
        }
        "createIndex" => {
            let keys = a.required_doc("keys")?;
            let options = a.take_all();
            let options = (!options.is_empty()).then_some(options);
            Some(Bson::String(
                coll.create_index(IndexModel::new(keys, options))?,
            ))
        }
        "drop" => {
            a.finish()?;
            coll.drop()?;
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

/// Runs a database operation.
pub fn database_op(db: &Database, name: &str, mut a: Args) -> OpResult {
    Ok(match name {
        "createCollection" => {
            let coll = a.str("collection")?;
            let options = a.take_all();
            db.create_collection(&coll, (!options.is_empty()).then_some(options))?;
            None
        }
        "dropCollection" => {
            let coll = a.str("collection")?;
            a.finish()?;
            db.collection::<Document>(&coll).drop()?;
            None
        }
        "modifyCollection" => {
            let coll = a.str("collection")?;
            let mut command = doc! { "collMod": coll };
            command.extend(a.take_all());
            db.run_command(command)?;
            None
        }
        "runCommand" => {
            let command = a.required_doc("command")?;
            let _name = a.take("commandName");
            a.finish()?;
            Some(db.run_command(command)?.into())
        }
        "aggregate" => {
            let pipeline = a.docs("pipeline")?.unwrap_or_default();
            let options = aggregate_options(&mut a)?;
            a.finish()?;
            let docs = db
                .aggregate(pipeline, options)?
                .collect::<Result<Vec<_>, _>>()?;
            Some(Bson::Array(docs.into_iter().map(Bson::from).collect()))
        }
        "listCollectionNames" => {
            a.finish()?;
            let names = db.list_collection_names()?;
            Some(Bson::Array(names.into_iter().map(Bson::from).collect()))
        }
        other => {
            return Err(runner(format!(
                "database operation {other} is not supported"
            )));
        }
    })
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
    let reply = db.run_command(command)?;
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
    client.database("admin").run_command(command)?;
    Ok(name)
}

fn delete_options(a: &mut Args) -> Result<DeleteOptions, OpError> {
    Ok(DeleteOptions {
        raw_data: a.bool("rawData")?,
        hint: a.take("hint"),
        collation: a.doc("collation")?,
        let_vars: a.doc("let")?,
        comment: a.take("comment"),
    })
}

fn update_options(a: &mut Args) -> Result<UpdateOptions, OpError> {
    Ok(UpdateOptions {
        raw_data: a.bool("rawData")?,
        upsert: a.bool("upsert")?,
        array_filters: a.docs("arrayFilters")?,
        hint: a.take("hint"),
        collation: a.doc("collation")?,
        sort: a.doc("sort")?,
        let_vars: a.doc("let")?,
        comment: a.take("comment"),
        bypass_document_validation: a.bool("bypassDocumentValidation")?,
    })
}

fn find_options(a: &mut Args) -> Result<FindOptions, OpError> {
    Ok(FindOptions {
        projection: a.doc("projection")?,
        sort: a.doc("sort")?,
        skip: a.int("skip")?.map(|n| n as u64),
        limit: a.int("limit")?,
        batch_size: a.int("batchSize")?.map(|n| n as u32),
        hint: a.take("hint"),
        max_time: a.millis("maxTimeMS")?,
        comment: a.take("comment"),
        allow_disk_use: a.bool("allowDiskUse")?,
        collation: a.doc("collation")?,
        let_vars: a.doc("let")?,
        raw_data: a.bool("rawData")?,
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
        hint: a.take("hint"),
        collation: a.doc("collation")?,
        let_vars: a.doc("let")?,
        bypass_document_validation: a.bool("bypassDocumentValidation")?,
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
pub fn client_op(client: &Client, name: &str, mut a: Args) -> OpResult {
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
            let r = client.bulk_write(models, options)?;
            Ok(r.acknowledged.then(|| client_bulk_result(&r).into()))
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

/// `{ "0": id, "3": id }`, as the spec writes ids by index.
fn ids(map: &BTreeMap<usize, Bson>) -> Document {
    map.iter()
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
