//! A runner for MongoDB's unified test format (specifications repository,
//! `source/unified-test-format/`), for the entities, operations and assertions the CRUD suite
//! uses, against a real server.
//!
//! One test goes: check `runOnRequirements` → reset the collections of `initialData` → create
//! the entities (clients that record command events, databases, collections) → run each
//! operation and check its `expectResult` / `expectError` → compare the recorded events with
//! `expectEvents` → compare the collections with `outcome` → switch off fail points and shut
//! the clients down.

pub mod matching;
pub mod operations;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bson::{Bson, Document, doc};
use may_mongo::error::WriteFailure;
use may_mongo::options::{
    CreateCollectionOptions, ReadConcern, ReadPreference, ReadPreferenceOptions, WriteConcern,
};
use may_mongo::{
    Client, ClientOptions, Collection, CommandEvent, Core, Database, ErrorKind, EventHandler,
    ReadMode, TopologyType,
};

use matching::{Saved, matches, matches_root};
use operations::{Args, OpError};

/// What happened to one test.
#[derive(Debug)]
pub enum Outcome {
    Passed,
    /// Not run: its `runOnRequirements` (or `skipReason`) rule it out here.
    Skipped(String),
    Failed(String),
}

/// What the runner knows about the server under test.
pub struct Server {
    pub uri: String,
    pub version: Vec<u32>,
    pub topology: &'static str,
    /// A client without event recording, for set-up and `outcome` checks.
    pub util: Client,
    /// Why tests that set fail points cannot run here (`configureFailPoint` refused, with the
    /// server's error), or `None` when the server has fail points.
    pub no_fail_points: Option<String>,
    /// Why tests whose clients declare a Stable API cannot run here: the server refuses
    /// `hello`, and a driver with a declared API must not fall back to legacy hello (the
    /// spec), so such a client never finds a server. `None` when `hello` works.
    pub no_hello: Option<String>,
    /// Why tests that use a session entity cannot run here: the server reports no
    /// `logicalSessionTimeoutMinutes`, so `start_session` is refused (the spec's rule).
    pub no_sessions: Option<String>,
    /// Why tests that open a change stream cannot run here: the server refuses
    /// `$changeStream` (FerretDB 1.24 and mongo-java-server do).
    pub no_change_streams: Option<String>,
}

impl Server {
    /// Connects and asks the server its version and topology.
    pub fn discover(uri: &str, core: Core) -> Server {
        let util = client_for(uri, core, None).expect("utility client");
        let info = util
            .database("admin")
            .run_command(doc! { "buildInfo": 1 })
            .run()
            .expect("buildInfo");
        let version = info
            .get_str("version")
            .unwrap_or("0")
            .split(['.', '-'])
            .map_while(|p| p.parse().ok())
            .collect();
        let topology = match util.topology().topology_type {
            TopologyType::Single => "single",
            TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary => "replicaset",
            TopologyType::Sharded => "sharded",
            _ => "unknown",
        };
        // Only a server started with test commands enabled has fail points; switching one off
        // is harmless where it exists and tells whether it does.
        let no_fail_points = util
            .database("admin")
            .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .run()
            .err()
            .map(|e| format!("needs configureFailPoint, which this server refuses ({e})"));
        let no_hello = util
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .run()
            .err()
            .map(|e| {
                format!(
                    "needs hello, which a Stable API client must use and this server refuses ({e})"
                )
            });
        let no_sessions = util.start_session().run().err().map(|e| {
            format!("needs sessions, which this server refuses ({e}: no logicalSessionTimeoutMinutes in its hello)")
        });
        let no_change_streams = util
            .database("admin")
            .collection::<Document>("probe")
            .watch()
            .run()
            .err()
            .map(|e| format!("needs change streams, which this server refuses ({e})"));
        Server {
            uri: uri.to_string(),
            version,
            topology,
            util,
            no_fail_points,
            no_hello,
            no_sessions,
            no_change_streams,
        }
    }

    /// Why the requirements rule this server out, or `None` when one of them is met.
    fn unmet(&self, requirements: Option<&Bson>) -> Option<String> {
        let Some(Bson::Array(list)) = requirements else {
            return None;
        };
        let mut reasons = Vec::new();
        for r in list.iter().filter_map(Bson::as_document) {
            match self.unmet_one(r) {
                None => return None,
                Some(why) => reasons.push(why),
            }
        }
        Some(reasons.join(" / "))
    }

    fn unmet_one(&self, r: &Document) -> Option<String> {
        let ours = self.version_string();
        if let Ok(min) = r.get_str("minServerVersion")
            && compare_versions(&self.version, min).is_lt()
        {
            return Some(format!("needs server >= {min} (have {ours})"));
        }
        if let Ok(max) = r.get_str("maxServerVersion")
            && compare_versions(&self.version, max).is_gt()
        {
            return Some(format!("needs server <= {max} (have {ours})"));
        }
        if let Ok(topologies) = r.get_array("topologies") {
            let ok = topologies.iter().any(|t| {
                let t = t.as_str().unwrap_or("");
                t == self.topology || (t == "sharded-replicaset" && self.topology == "sharded")
            });
            if !ok {
                return Some(format!(
                    "needs topology {topologies:?} (have {})",
                    self.topology
                ));
            }
        }
        if r.get_str("serverless").ok() == Some("require") {
            return Some("needs serverless".into());
        }
        if r.get_bool("auth").ok() == Some(true) {
            return Some("needs authentication (the test server runs without)".into());
        }
        if r.get_bool("csfle").ok() == Some(true) {
            return Some("needs client-side encryption".into());
        }
        if r.contains_key("serverParameters") {
            return Some("needs server parameters (not checked by this runner)".into());
        }
        None
    }

    fn version_string(&self) -> String {
        self.version
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Compares a server version with a requirement like `"4.2"` or `"4.3.99"`; missing parts of
/// either count as 0.
fn compare_versions(ours: &[u32], wanted: &str) -> std::cmp::Ordering {
    let wanted: Vec<u32> = wanted.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    for i in 0..ours.len().max(wanted.len()) {
        let a = ours.get(i).copied().unwrap_or(0);
        let b = wanted.get(i).copied().unwrap_or(0);
        if a != b {
            return a.cmp(&b);
        }
    }
    std::cmp::Ordering::Equal
}

/// `uri` with `options` (`key=value`) added to its query string.
fn with_query(uri: &str, options: &[String]) -> String {
    if options.is_empty() {
        return uri.to_string();
    }
    let options = options.join("&");
    if uri.contains('?') {
        return format!("{uri}&{options}");
    }
    // `mongodb://host:port` needs the `/` before its query; `mongodb://host:port/db` has it.
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let slash = if after_scheme.contains('/') { "" } else { "/" };
    format!("{uri}{slash}?{options}")
}

/// Records the command events of one client entity.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<CommandEvent>>,
}

fn client_for(uri: &str, core: Core, recorder: Option<Arc<Recorder>>) -> may_mongo::Result<Client> {
    client_with_api(uri, core, recorder, None)
}

fn client_with_api(
    uri: &str,
    core: Core,
    recorder: Option<Arc<Recorder>>,
    server_api: Option<may_mongo::ServerApi>,
) -> may_mongo::Result<Client> {
    let mut options = ClientOptions::parse(uri).run()?;
    options.core = core;
    options.server_api = server_api;
    options.app_name = Some("may_mongo-unified".into());
    if let Some(r) = recorder {
        options.command_event_handler = Some(EventHandler::callback(move |event| {
            // A short critical section that never yields: fine on a may worker.
            r.events.lock().unwrap().push(event);
        }));
    }
    Client::with_options(options)
}

/// A client entity: the client, its events, and which of them the test looks at.
struct ClientEntity {
    client: Client,
    recorder: Arc<Recorder>,
    observe: Vec<String>,
    ignore_commands: Vec<String>,
    observe_sensitive: bool,
}

enum Entity {
    Client(ClientEntity),
    Bucket(may_mongo::GridFsBucket),
    Cursor(Box<may_mongo::Cursor<Document>>),
    /// An explicit session; `None` once the test has ended it (`endSession`).
    Session(Option<Box<may_mongo::ClientSession>>),
    Database(Database),
    Collection {
        coll: Collection<Document>,
        db: Database,
        unacknowledged: bool,
    },
}

/// One test's entities and the values it saved.
struct Context<'a> {
    server: &'a Server,
    core: Core,
    entities: HashMap<String, Entity>,
    saved: Saved,
    fail_points: Vec<(Client, String)>,
}

/// Runs every test of one file; returns each test's description and outcome.
pub fn run_file(server: &Server, core: Core, file: &Document) -> Vec<(String, Outcome)> {
    let tests = file.get_array("tests").cloned().unwrap_or_default();
    let file_unmet = server.unmet(file.get("runOnRequirements"));
    tests
        .iter()
        .filter_map(Bson::as_document)
        .map(|test| {
            let description = test.get_str("description").unwrap_or("?").to_string();
            let outcome = if let Some(why) = &file_unmet {
                Outcome::Skipped(why.clone())
            } else if let Ok(why) = test.get_str("skipReason") {
                Outcome::Skipped(why.to_string())
            } else if let Some(why) = server.unmet(test.get("runOnRequirements")) {
                Outcome::Skipped(why)
            } else if let (Some(why), true) = (&server.no_fail_points, sets_fail_point(test)) {
                Outcome::Skipped(why.clone())
            } else if let (Some(why), true) = (&server.no_hello, declares_server_api(file, test)) {
                Outcome::Skipped(why.clone())
            } else if let (Some(why), true) = (&server.no_change_streams, opens_change_stream(test))
            {
                Outcome::Skipped(why.clone())
            } else if let (Some(why), true) = (&server.no_sessions, uses_sessions(file, test)) {
                Outcome::Skipped(why.clone())
            } else if let Some(why) = uses_missing_feature(file, test) {
                Outcome::Skipped(why)
            } else {
                match run_test(server, core, file, test) {
                    Ok(()) => Outcome::Passed,
                    Err(e) => Outcome::Failed(e),
                }
            };
            (description, outcome)
        })
        .collect()
}

/// What a test needs that the driver does not offer yet, or `None`. Explicit sessions,
/// transactions and change streams are issue 23's work: until then each test that uses one
/// is skipped, counted and printed with this reason — never run half-way and never hidden.
fn uses_missing_feature(file: &Document, test: &Document) -> Option<String> {
    // Session entities, declared for the file or by the test's own `createEntities`.
    let declared = file
        .get_array("createEntities")
        .into_iter()
        .flatten()
        .chain(
            test.get_array("operations")
                .into_iter()
                .flatten()
                .filter_map(Bson::as_document)
                .filter(|op| op.get_str("name").ok() == Some("createEntities"))
                .filter_map(|op| op.get_document("arguments").ok())
                .filter_map(|a| a.get_array("entities").ok())
                .flatten(),
        );
    for e in declared.filter_map(Bson::as_document) {
        if let Ok(s) = e.get_document("session")
            && let Ok(o) = s.get_document("sessionOptions")
            && o.get_bool("snapshot").ok() == Some(true)
        {
            return Some("needs snapshot sessions, which the driver does not have yet".into());
        }
    }
    fn walk(ops: &bson::Array) -> Option<String> {
        for op in ops.iter().filter_map(Bson::as_document) {
            let name = op.get_str("name").unwrap_or("");
            let args = op.get_document("arguments").ok();
            if name == "withTransaction" {
                return Some(
                    "runs a withTransaction callback, which this runner does not do yet (the driver's and_run is tested in tests/transactions.rs) (issue 23)"
                        .into(),
                );
            }
            if name == "createChangeStream" {
                return Some(
                    "opens a change stream, which this runner does not do yet (the driver's change streams are tested in tests/change_streams.rs) (issue 23)"
                        .into(),
                );
            }
            if let Some(inner) = args.and_then(|a| a.get_array("callback").ok())
                && let Some(why) = walk(inner)
            {
                return Some(why);
            }
        }
        None
    }
    walk(test.get_array("operations").ok()?)
}

/// Whether a test opens a change stream.
fn opens_change_stream(test: &Document) -> bool {
    fn walk(ops: &bson::Array) -> bool {
        ops.iter().filter_map(Bson::as_document).any(|op| {
            op.get_str("name").ok() == Some("createChangeStream")
                || op
                    .get_document("arguments")
                    .and_then(|a| a.get_array("callback"))
                    .is_ok_and(walk)
        })
    }
    test.get_array("operations").is_ok_and(walk)
}

/// Whether a test needs sessions: it uses a session entity (as an operation's object or
/// `session` argument), asserts on the `lsid` of the last commands, or expects an `lsid` in
/// an event.
fn uses_sessions(file: &Document, test: &Document) -> bool {
    let declared: Vec<String> = file
        .get_array("createEntities")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
        .filter_map(|e| e.get_document("session").ok())
        .filter_map(|s| s.get_str("id").ok().map(String::from))
        .collect();
    let ops = test.get_array("operations").cloned().unwrap_or_default();
    let in_ops = ops.iter().filter_map(Bson::as_document).any(|op| {
        let object = op.get_str("object").unwrap_or("");
        declared.iter().any(|d| d == object)
            || op
                .get_document("arguments")
                .is_ok_and(|a| a.contains_key("session"))
            || op.get_str("name").ok() == Some("createEntities")
                && op.get("arguments").is_some_and(|a| has_key(a, "session"))
    });
    let asserts_lsid = ops.iter().filter_map(Bson::as_document).any(|op| {
        op.get_str("name")
            .is_ok_and(|n| n.ends_with("LsidOnLastTwoCommands"))
    });
    in_ops || asserts_lsid || test.get("expectEvents").is_some_and(|e| has_key(e, "lsid"))
}

/// Whether a test calls an entity made from a client that declares a Stable API
/// (`serverApi`): such a client, or a database, collection or bucket made from one.
fn declares_server_api(file: &Document, test: &Document) -> bool {
    let mut tainted: Vec<String> = Vec::new();
    for e in file
        .get_array("createEntities")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
    {
        let Some((kind, spec)) = e.iter().next() else {
            continue;
        };
        let Some(spec) = spec.as_document() else {
            continue;
        };
        let id = spec.get_str("id").unwrap_or_default().to_string();
        let parent = match kind.as_str() {
            "client" => {
                if spec.contains_key("serverApi") {
                    tainted.push(id);
                }
                continue;
            }
            "database" => spec.get_str("client"),
            _ => spec.get_str("database"),
        };
        if parent.is_ok_and(|p| tainted.iter().any(|t| t == p)) {
            tainted.push(id);
        }
    }
    test.get_array("operations")
        .into_iter()
        .flatten()
        .filter_map(Bson::as_document)
        .any(|op| {
            op.get_str("object")
                .is_ok_and(|o| tainted.iter().any(|t| t == o))
                || (op.get_str("name").ok() == Some("createEntities")
                    && op.get("arguments").is_some_and(|a| has_key(a, "serverApi")))
        })
}

/// Whether `key` is a field name anywhere in `v`.
fn has_key(v: &Bson, key: &str) -> bool {
    match v {
        Bson::Document(d) => d.iter().any(|(k, v)| k == key || has_key(v, key)),
        Bson::Array(a) => a.iter().any(|v| has_key(v, key)),
        _ => false,
    }
}

/// Whether a test sets a fail point (`failPoint` or `targetedFailPoint`).
fn sets_fail_point(test: &Document) -> bool {
    test.get_array("operations")
        .into_iter()
        .flatten()
        .any(|op| {
            op.as_document()
                .and_then(|op| op.get_str("name").ok())
                .is_some_and(|n| n == "failPoint" || n == "targetedFailPoint")
        })
}

fn run_test(server: &Server, core: Core, file: &Document, test: &Document) -> Result<(), String> {
    load_initial_data(server, file)?;
    let mut ctx = Context {
        server,
        core,
        entities: HashMap::new(),
        saved: Saved::new(),
        fail_points: Vec::new(),
    };
    let result = (|| {
        for entity in file.get_array("createEntities").into_iter().flatten() {
            ctx.create_entity(entity)?;
        }
        let operations = test.get_array("operations").map_err(|e| e.to_string())?;
        for (i, op) in operations.iter().enumerate() {
            let op = op.as_document().ok_or("operation is not a document")?;
            let name = op.get_str("name").unwrap_or("?");
            ctx.run_operation(op)
                .map_err(|e| format!("operation {i} ({name}): {e}"))?;
        }
        if let Ok(expected) = test.get_array("expectEvents") {
            ctx.check_events(expected)?;
        }
        if let Ok(outcome) = test.get_array("outcome") {
            check_outcome(server, outcome)?;
        }
        Ok(())
    })();
    ctx.tear_down();
    result
}

/// Drops and recreates each collection of `initialData` and inserts its documents, with
/// majority write concern so that every later read sees them.
fn load_initial_data(server: &Server, file: &Document) -> Result<(), String> {
    for data in file.get_array("initialData").into_iter().flatten() {
        let data = data.as_document().ok_or("initialData entry")?;
        let db = server
            .util
            .database(data.get_str("databaseName").map_err(|e| e.to_string())?)
            .with_write_concern(majority());
        let name = data.get_str("collectionName").map_err(|e| e.to_string())?;
        let coll = db.collection::<Document>(name);
        coll.drop()
            .run()
            .map_err(|e| format!("initialData: drop {name}: {e}"))?;
        let create_options = data
            .get_document("createOptions")
            .ok()
            .map(|o| bson::deserialize_from_document::<CreateCollectionOptions>(o.clone()))
            .transpose()
            .map_err(|e| format!("initialData: createOptions of {name}: {e}"))?;
        db.create_collection(name)
            .with_options(create_options)
            .run()
            .map_err(|e| format!("initialData: create {name}: {e}"))?;
        let docs: Vec<Document> = data
            .get_array("documents")
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_document().cloned())
            .collect();
        if !docs.is_empty() {
            coll.insert_many(&docs)
                .run()
                .map_err(|e| format!("initialData: insert into {name}: {e}"))?;
        }
    }
    Ok(())
}

fn majority() -> WriteConcern {
    WriteConcern::majority()
}

/// Each `outcome` collection holds exactly these documents, in `_id` order.
fn check_outcome(server: &Server, outcome: &bson::Array) -> Result<(), String> {
    for data in outcome.iter().filter_map(Bson::as_document) {
        let db = data.get_str("databaseName").map_err(|e| e.to_string())?;
        let name = data.get_str("collectionName").map_err(|e| e.to_string())?;
        let coll = server
            .util
            .database(db)
            .collection::<Document>(name)
            .with_read_concern(ReadConcern::local())
            .with_read_preference(ReadPreference::Primary);
        let options = may_mongo::FindOptions {
            sort: Some(doc! { "_id": 1 }),
            ..Default::default()
        };
        let actual: Vec<Bson> = coll
            .find(doc! {})
            .with_options(options)
            .run()
            .and_then(|c| c.collect::<Result<Vec<Document>, _>>())
            .map_err(|e| format!("outcome: reading {db}.{name}: {e}"))?
            .into_iter()
            .map(Bson::from)
            .collect();
        let expected = Bson::Array(data.get_array("documents").cloned().unwrap_or_default());
        matches(
            &expected,
            Some(&Bson::Array(actual)),
            false,
            &Saved::new(),
            &format!("outcome {db}.{name}"),
        )?;
    }
    Ok(())
}

impl Context<'_> {
    fn create_entity(&mut self, entity: &Bson) -> Result<(), String> {
        let entity = entity.as_document().ok_or("entity")?;
        let (kind, spec) = entity.iter().next().ok_or("empty entity")?;
        let spec = spec.as_document().ok_or("entity spec")?;
        let id = spec.get_str("id").map_err(|e| e.to_string())?.to_string();
        let made = match kind.as_str() {
            "client" => Entity::Client(self.make_client(spec)?),
            "database" => {
                let client = match self.entities.get(spec.get_str("client").unwrap_or("")) {
                    Some(Entity::Client(c)) => c.client.clone(),
                    _ => return Err(format!("database {id}: no such client")),
                };
                let name = spec.get_str("databaseName").map_err(|e| e.to_string())?;
                let mut db = client.database(name);
                if let Ok(o) = spec.get_document("databaseOptions") {
                    (db, _) = with_options(
                        db,
                        o,
                        |d, wc| d.with_write_concern(wc),
                        |d, rc| d.with_read_concern(rc),
                        |d, rp| d.with_read_preference(rp),
                    )?;
                }
                Entity::Database(db)
            }
            "collection" => {
                let db = match self.entities.get(spec.get_str("database").unwrap_or("")) {
                    Some(Entity::Database(d)) => d.clone(),
                    _ => return Err(format!("collection {id}: no such database")),
                };
                let name = spec.get_str("collectionName").map_err(|e| e.to_string())?;
                let mut coll = db.collection::<Document>(name);
                let mut unacknowledged = false;
                if let Ok(o) = spec.get_document("collectionOptions") {
                    (coll, unacknowledged) = with_options(
                        coll,
                        o,
                        |c, wc| c.with_write_concern(wc),
                        |c, rc| c.with_read_concern(rc),
                        |c, rp| c.with_read_preference(rp),
                    )?;
                }
                Entity::Collection {
                    coll,
                    db,
                    unacknowledged,
                }
            }
            "bucket" => {
                let db = match self.entities.get(spec.get_str("database").unwrap_or("")) {
                    Some(Entity::Database(d)) => d.clone(),
                    _ => return Err(format!("bucket {id}: no such database")),
                };
                let mut options = may_mongo::GridFsBucketOptions::default();
                for (k, v) in spec.get_document("bucketOptions").into_iter().flatten() {
                    match k.as_str() {
                        "bucketName" => options.bucket_name = v.as_str().map(String::from),
                        "chunkSizeBytes" => {
                            options.chunk_size_bytes = v
                                .as_i32()
                                .map(|n| n as u32)
                                .or(v.as_i64().map(|n| n as u32))
                        }
                        other => return Err(format!("bucket option {other} is not supported")),
                    }
                }
                Entity::Bucket(db.gridfs_bucket(options))
            }
            "session" => {
                let client = match self.entities.get(spec.get_str("client").unwrap_or("")) {
                    Some(Entity::Client(c)) => c.client.clone(),
                    _ => return Err(format!("session {id}: no such client")),
                };
                let mut start = client.start_session();
                for (k, v) in spec.get_document("sessionOptions").into_iter().flatten() {
                    match (k.as_str(), v) {
                        ("causalConsistency", Bson::Boolean(b)) => {
                            start = start.causal_consistency(*b)
                        }
                        ("defaultTransactionOptions", Bson::Document(d)) => {
                            start = start.default_transaction_options(transaction_options(d)?)
                        }
                        (other, _) => {
                            return Err(format!("session option {other} is not supported"));
                        }
                    }
                }
                if self.server.no_sessions.is_some() {
                    // Declared for the file, unused by this test (one that uses it is skipped).
                    self.entities.insert(id, Entity::Session(None));
                    return Ok(());
                }
                let session = start.run().map_err(|e| format!("session {id}: {e}"))?;
                // `$$sessionLsid` compares against the id the session was made with.
                self.saved.insert(
                    format!("lsid of {id}"),
                    Bson::Document(session.id().clone()),
                );
                Entity::Session(Some(Box::new(session)))
            }
            other => return Err(format!("entity type {other} is not supported")),
        };
        self.entities.insert(id, made);
        Ok(())
    }

    fn make_client(&self, spec: &Document) -> Result<ClientEntity, String> {
        let mut query = Vec::new();
        for (k, v) in spec.get_document("uriOptions").into_iter().flatten() {
            let v = match v {
                Bson::String(s) => s.clone(),
                Bson::Boolean(b) => b.to_string(),
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                other => return Err(format!("uriOptions {k}: {other}")),
            };
            query.push(format!("{k}={v}"));
        }
        let uri = with_query(&self.server.uri, &query);
        for key in spec.keys() {
            if !matches!(
                key.as_str(),
                "id" | "uriOptions"
                    | "serverApi"
                    | "observeEvents"
                    | "ignoreCommandMonitoringEvents"
                    | "useMultipleMongoses"
                    | "observeSensitiveCommands"
            ) {
                return Err(format!(
                    "client option {key} is not supported by this runner"
                ));
            }
        }
        let strings = |k: &str| -> Vec<String> {
            spec.get_array(k)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let server_api = match spec.get_document("serverApi") {
            Err(_) => None,
            Ok(api) => {
                let version: may_mongo::ServerApiVersion = api
                    .get_str("version")
                    .map_err(|e| format!("serverApi.version: {e}"))?
                    .parse()
                    .map_err(|e| format!("serverApi.version: {e}"))?;
                Some(
                    may_mongo::ServerApi::builder()
                        .version(version)
                        .strict(api.get_bool("strict").ok())
                        .deprecation_errors(api.get_bool("deprecationErrors").ok())
                        .build(),
                )
            }
        };
        let recorder = Arc::new(Recorder::default());
        let client = client_with_api(&uri, self.core, Some(recorder.clone()), server_api)
            .map_err(|e| format!("client {uri}: {e}"))?;
        Ok(ClientEntity {
            client,
            recorder,
            observe: strings("observeEvents"),
            ignore_commands: strings("ignoreCommandMonitoringEvents"),
            observe_sensitive: spec.get_bool("observeSensitiveCommands").unwrap_or(false),
        })
    }

    fn run_operation(&mut self, op: &Document) -> Result<(), String> {
        let name = op.get_str("name").map_err(|e| e.to_string())?;
        let object = op.get_str("object").map_err(|e| e.to_string())?;
        let mut args = Args::new(name, op.get_document("arguments").ok());
        args.single_server = self.server.topology == "single";
        if matches!(name, "createCommandCursor" | "createFindCursor") {
            return self.create_cursor(op, name, object, args);
        }
        if let Some(Entity::Cursor(cursor)) = self.entities.get_mut(object) {
            let result = operations::cursor_op(cursor, name, args);
            if name == "close" {
                self.entities.remove(object);
            }
            return self.check_op_result(op, name, result);
        }
        if matches!(
            name,
            "startTransaction" | "commitTransaction" | "abortTransaction"
        ) {
            let result = match self.entities.get_mut(object) {
                Some(Entity::Session(Some(s))) => match name {
                    "startTransaction" => {
                        let options = op
                            .get_document("arguments")
                            .map(transaction_options)
                            .unwrap_or_else(|_| Ok(Default::default()))?;
                        s.start_transaction().with_options(options).run()
                    }
                    "commitTransaction" => s.commit_transaction().run(),
                    _ => s.abort_transaction().run(),
                },
                _ => return Err(format!("{name}: no session {object}")),
            };
            return self.check_op_result(op, name, result.map(|()| None).map_err(OpError::Driver));
        }
        if name == "endSession" {
            // Ending a session returns its server session to the pool (no I/O).
            return match self.entities.get_mut(object) {
                Some(Entity::Session(s)) => {
                    s.take();
                    Ok(())
                }
                _ => Err(format!("endSession: no session {object}")),
            };
        }
        // An operation in an explicit session: the session leaves the entity map for the
        // operation's duration (it is borrowed mutably) and goes back afterwards.
        let session_id = match object {
            "testRunner" => None,
            _ => args
                .take("session")
                .and_then(|s| s.as_str().map(String::from)),
        };
        let mut session = match &session_id {
            None => None,
            Some(id) => match self.entities.get_mut(id) {
                Some(Entity::Session(s)) => {
                    Some(s.take().ok_or_else(|| format!("session {id} was ended"))?)
                }
                _ => return Err(format!("no session {id}")),
            },
        };
        let s = session.as_deref_mut();
        let result = match (object, self.entities.get(object)) {
            ("testRunner", _) => self.test_runner_op(name, args),
            (
                _,
                Some(Entity::Collection {
                    coll,
                    db,
                    unacknowledged,
                }),
            ) => {
                if name == "count" {
                    let raw_data_ok = compare_versions(&self.server.version, "8.2").is_ge();
                    operations::count_command(db, coll.name(), raw_data_ok, args)
                } else {
                    operations::collection_op(coll, *unacknowledged, name, args, s)
                }
            }
            (_, Some(Entity::Database(db))) => operations::database_op(db, name, args, s),
            (_, Some(Entity::Bucket(b))) => operations::bucket_op(b, name, args),
            (_, Some(Entity::Client(c))) => operations::client_op(&c.client, name, args, s),
            (_, Some(Entity::Cursor(_) | Entity::Session(_))) => Err(OpError::Runner(format!(
                "{name} on {object}: not an operation of this entity"
            ))),
            (_, None) => Err(OpError::Runner(format!("no entity {object}"))),
        };
        if let (Some(id), Some(back)) = (&session_id, session)
            && let Some(Entity::Session(slot)) = self.entities.get_mut(id)
        {
            *slot = Some(back);
        }
        // `createCollection` may name the new collection as an entity.
        if name == "createCollection"
            && result.is_ok()
            && let Ok(id) = op.get_str("saveResultAsEntity")
            && let Some(Entity::Database(db)) = self.entities.get(object)
        {
            let coll = op
                .get_document("arguments")
                .and_then(|a| a.get_str("collection"))
                .map_err(|e| e.to_string())?;
            let entity = Entity::Collection {
                coll: db.collection(coll),
                db: db.clone(),
                unacknowledged: false,
            };
            self.entities.insert(id.to_string(), entity);
            return self.check_op_result(op, name, Ok(None));
        }
        self.check_op_result(op, name, result)
    }

    /// `createCommandCursor` / `createFindCursor`: the cursor becomes the entity named by
    /// `saveResultAsEntity`.
    fn create_cursor(
        &mut self,
        op: &Document,
        name: &str,
        object: &str,
        mut args: Args,
    ) -> Result<(), String> {
        let result = match (name, self.entities.get(object)) {
            ("createCommandCursor", Some(Entity::Database(db))) => {
                operations::cursor_command(db, &mut args).and_then(|c| {
                    args.finish()?;
                    Ok(c)
                })
            }
            ("createFindCursor", Some(Entity::Collection { coll, .. })) => {
                operations::find_cursor(coll, args)
            }
            _ => Err(OpError::Runner(format!(
                "{name} on {object}: no such entity"
            ))),
        };
        match (result, op.get_document("expectError")) {
            (Err(OpError::Runner(e)), _) => Err(e),
            (Ok(cursor), Err(_)) => {
                if let Ok(id) = op.get_str("saveResultAsEntity") {
                    self.entities
                        .insert(id.to_string(), Entity::Cursor(Box::new(cursor)));
                }
                Ok(())
            }
            (Ok(_), Ok(_)) => Err("expected an error, got a cursor".into()),
            (Err(OpError::Driver(e)), Ok(expected)) => check_error(expected, &e, &self.saved),
            (Err(OpError::Driver(e)), Err(_)) => Err(format!("unexpected error: {e}")),
        }
    }

    fn check_op_result(
        &mut self,
        op: &Document,
        name: &str,
        result: operations::OpResult,
    ) -> Result<(), String> {
        if op.get_bool("ignoreResultAndError").ok() == Some(true) {
            return match result {
                Err(OpError::Runner(e)) => Err(e),
                _ => Ok(()),
            };
        }
        match (result, op.get_document("expectError")) {
            (Err(OpError::Runner(e)), _) => Err(e),
            (Ok(value), Err(_)) => {
                if let Some(expected) = op.get("expectResult") {
                    check_result(name, expected, value.as_ref(), &self.saved)?;
                }
                if let (Ok(id), Some(v)) = (op.get_str("saveResultAsEntity"), value) {
                    self.saved.insert(id.to_string(), v);
                }
                Ok(())
            }
            (Ok(value), Ok(_)) => Err(format!("expected an error, got {value:?}")),
            (Err(OpError::Driver(e)), Ok(expected)) => check_error(expected, &e, &self.saved),
            (Err(OpError::Driver(e)), Err(_)) => Err(format!("unexpected error: {e}")),
        }
    }

    fn test_runner_op(&mut self, name: &str, mut args: Args) -> operations::OpResult {
        match name {
            "failPoint" => {
                let id = args.take("client");
                let client = match id
                    .as_ref()
                    .and_then(Bson::as_str)
                    .and_then(|i| self.entities.get(i))
                {
                    Some(Entity::Client(c)) => c.client.clone(),
                    _ => return Err(OpError::Runner(format!("failPoint: no client {id:?}"))),
                };
                let fp = operations::configure_fail_point(&client, args)?;
                self.fail_points.push((client, fp));
                Ok(None)
            }
            "assertCollectionExists" | "assertCollectionNotExists" => {
                let db = args.str("databaseName")?;
                let coll = args.str("collectionName")?;
                args.finish()?;
                let names = self
                    .server
                    .util
                    .database(&db)
                    .list_collection_names()
                    .run()?;
                let exists = names.contains(&coll);
                if exists != (name == "assertCollectionExists") {
                    return Err(OpError::Runner(format!(
                        "{name}: {db}.{coll} exists: {exists} (collections: {names:?})"
                    )));
                }
                Ok(None)
            }
            "assertNumberConnectionsCheckedOut" => {
                let client = self.client_arg(&mut args)?;
                let want = args.int("connections")?.unwrap_or(0);
                args.finish()?;
                let got = client.client.pool_stats().checked_out as i64;
                if got != want {
                    return Err(OpError::Runner(format!(
                        "expected {want} connections checked out, found {got}"
                    )));
                }
                Ok(None)
            }
            "assertSameLsidOnLastTwoCommands" | "assertDifferentLsidOnLastTwoCommands" => {
                let client = self.client_arg(&mut args)?;
                args.finish()?;
                let lsids: Vec<Option<Bson>> = client
                    .recorder
                    .events
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|e| client.observes(e))
                    .filter_map(|e| match e {
                        CommandEvent::Started(e) => Some(e.command.get("lsid").cloned()),
                        _ => None,
                    })
                    .collect();
                let [.., a, b] = lsids.as_slice() else {
                    return Err(OpError::Runner(format!("{name}: fewer than two commands")));
                };
                let same = a.is_some() && a == b;
                if same != (name == "assertSameLsidOnLastTwoCommands") {
                    return Err(OpError::Runner(format!("{name}: lsids {a:?} and {b:?}")));
                }
                Ok(None)
            }
            "assertSessionDirty" | "assertSessionNotDirty" => {
                let id = args.str("session")?;
                args.finish()?;
                let dirty = match self.entities.get(&id) {
                    Some(Entity::Session(Some(s))) => s.is_dirty(),
                    _ => return Err(OpError::Runner(format!("{name}: no session {id}"))),
                };
                if dirty != (name == "assertSessionDirty") {
                    return Err(OpError::Runner(format!(
                        "{name}: session {id} is {}dirty",
                        if dirty { "" } else { "not " }
                    )));
                }
                Ok(None)
            }
            "createEntities" => {
                let entities = args.required("entities")?;
                args.finish()?;
                for e in entities.as_array().into_iter().flatten() {
                    self.create_entity(e).map_err(OpError::Runner)?;
                }
                Ok(None)
            }
            other => Err(OpError::Runner(format!(
                "testRunner operation {other} is not supported"
            ))),
        }
    }

    /// The client entity an operation's `client` argument names.
    fn client_arg(&self, args: &mut Args) -> Result<&ClientEntity, OpError> {
        let id = args.str("client")?;
        match self.entities.get(&id) {
            Some(Entity::Client(c)) => Ok(c),
            _ => Err(OpError::Runner(format!("no client {id}"))),
        }
    }

    /// Compares each client's recorded command events with `expectEvents`.
    fn check_events(&self, expected: &bson::Array) -> Result<(), String> {
        for e in expected.iter().filter_map(Bson::as_document) {
            let id = e.get_str("client").map_err(|e| e.to_string())?;
            let Some(Entity::Client(c)) = self.entities.get(id) else {
                return Err(format!("expectEvents: no client {id}"));
            };
            let kind = e.get_str("eventType").unwrap_or("command");
            if kind != "command" {
                return Err(format!("expectEvents: {kind} events are not supported"));
            }
            let want = e.get_array("events").map_err(|e| e.to_string())?;
            let got: Vec<CommandEvent> = c
                .recorder
                .events
                .lock()
                .unwrap()
                .iter()
                .filter(|ev| c.observes(ev))
                .cloned()
                .collect();
            let extra_ok = e.get_bool("ignoreExtraEvents").ok() == Some(true);
            if got.len() < want.len() || (!extra_ok && got.len() != want.len()) {
                return Err(format!(
                    "expectEvents for {id}: expected {} events, got {}: {:?}",
                    want.len(),
                    got.len(),
                    got.iter().map(describe).collect::<Vec<_>>()
                ));
            }
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                let w = w.as_document().ok_or("expected event")?;
                check_event(w, g, &self.saved).map_err(|m| {
                    format!("expectEvents for {id}, event {i} ({}): {m}", describe(g))
                })?;
            }
        }
        Ok(())
    }

    fn tear_down(&mut self) {
        for (client, name) in self.fail_points.drain(..) {
            let _ = client
                .database("admin")
                .run_command(doc! { "configureFailPoint": name, "mode": "off" })
                .run();
        }
        // Sessions first: ended, their server sessions are pooled for `endSessions`.
        self.entities
            .retain(|_, e| !matches!(e, Entity::Session(_)));
        for entity in self.entities.values() {
            if let Entity::Client(c) = entity {
                c.client.shutdown();
            }
        }
    }
}

impl ClientEntity {
    fn observes(&self, event: &CommandEvent) -> bool {
        let kind = event_kind(event);
        let name = event.command_name();
        // Security-sensitive commands (the monitoring spec's list; `hello` and legacy hello
        // because they may carry `speculativeAuthenticate`) are seen only by a client that
        // asks with `observeSensitiveCommands`; fail points never.
        let sensitive = matches!(
            name.to_ascii_lowercase().as_str(),
            "authenticate"
                | "saslstart"
                | "saslcontinue"
                | "getnonce"
                | "createuser"
                | "updateuser"
                | "copydbgetnonce"
                | "copydbsaslstart"
                | "copydb"
                | "hello"
                | "ismaster"
        );
        self.observe.iter().any(|o| o == kind)
            && !self.ignore_commands.iter().any(|i| i == name)
            && name != "configureFailPoint"
            && (self.observe_sensitive || !sensitive)
    }
}

/// The spec's name for an event's kind.
fn event_kind(e: &CommandEvent) -> &'static str {
    match e {
        CommandEvent::Started(_) => "commandStartedEvent",
        CommandEvent::Succeeded(_) => "commandSucceededEvent",
        CommandEvent::Failed(_) => "commandFailedEvent",
        _ => "unknown event",
    }
}

fn describe(e: &CommandEvent) -> String {
    format!("{} {}", event_kind(e), e.command_name())
}

fn check_event(expected: &Document, actual: &CommandEvent, saved: &Saved) -> Result<(), String> {
    let (kind, fields) = expected.iter().next().ok_or("empty expected event")?;
    let fields = fields.as_document().ok_or("expected event fields")?;
    let actual_kind = event_kind(actual);
    let name = actual.command_name();
    let database = Some(actual.db());
    let body = match actual {
        CommandEvent::Started(e) => Some(&e.command),
        CommandEvent::Succeeded(e) => Some(&e.reply),
        _ => None,
    };
    if kind != actual_kind {
        return Err(format!("expected {kind}, got {actual_kind}"));
    }
    for (k, v) in fields {
        match k.as_str() {
            "commandName" => {
                if v.as_str() != Some(name) {
                    return Err(format!("expected command {v}, got {name}"));
                }
            }
            "databaseName" => {
                if v.as_str() != database {
                    return Err(format!("expected database {v}, got {database:?}"));
                }
            }
            "hasServerConnectionId" => {
                let has = actual.connection().server_id.is_some();
                if v.as_bool() != Some(has) {
                    return Err(format!("expected hasServerConnectionId {v}, got {has}"));
                }
            }
            // No load balancer here: no event carries a service id.
            "hasServiceId" => {
                if v.as_bool() != Some(false) {
                    return Err(format!("expected hasServiceId {v}, got false"));
                }
            }
            "command" | "reply" => {
                let body = body.ok_or("no body")?;
                matches_root(v, body, saved).map_err(|m| format!("{k}{m}"))?;
            }
            other => {
                return Err(format!(
                    "event field {other} is not supported by this runner"
                ));
            }
        }
    }
    Ok(())
}

/// `expectResult`: for `find` and `aggregate` each returned document is a root-level
/// document, as is the result document of the other operations.
fn check_result(
    op: &str,
    expected: &Bson,
    actual: Option<&Bson>,
    saved: &Saved,
) -> Result<(), String> {
    let root_elements = matches!(op, "find" | "aggregate");
    match (expected, actual) {
        (Bson::Array(e), Some(Bson::Array(a))) if root_elements => {
            if e.len() != a.len() {
                return Err(format!(
                    "expected {} documents, got {}: {a:?}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                matching::matches(e, Some(a), true, saved, &format!("result[{i}]"))?;
            }
            Ok(())
        }
        _ => matching::matches(expected, actual, true, saved, "result"),
    }
}

/// `expectError`: what kind of error, its message, code, labels, partial result, response.
/// The error that stopped a client-level bulk write (the source of its error).
fn cause(e: &may_mongo::Error) -> Option<&may_mongo::Error> {
    std::error::Error::source(e)?.downcast_ref()
}

/// True for errors the driver raised without the server's say (bad arguments and the like).
fn is_client_error(e: &may_mongo::Error) -> bool {
    match &*e.kind {
        ErrorKind::Command(_)
        | ErrorKind::Write(_)
        | ErrorKind::InsertMany(_)
        | ErrorKind::CollectionBulkWrite(_)
        | ErrorKind::Io(_)
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::WaitQueueTimeout { .. } => false,
        ErrorKind::BulkWrite(_) => cause(e).is_some_and(is_client_error),
        _ => true,
    }
}

fn check_error(expected: &Document, e: &may_mongo::Error, saved: &Saved) -> Result<(), String> {
    let client_error = is_client_error(e);
    // The error that stopped a client-level bulk write speaks for it (code name, response).
    let top = match &*e.kind {
        ErrorKind::BulkWrite(_) => cause(e).unwrap_or(e),
        _ => e,
    };
    for (k, v) in expected {
        let fail = |what: String| Err(format!("{what}; the error was: {e}"));
        match k.as_str() {
            "isError" => {}
            "isClientError" => {
                if v.as_bool() != Some(client_error) {
                    return fail(format!("expected isClientError {v}"));
                }
            }
            "errorContains" => {
                let want = v.as_str().unwrap_or("").to_lowercase();
                if !e.to_string().to_lowercase().contains(&want) {
                    return fail(format!("expected the message to contain {v}"));
                }
            }
            "errorCode" => {
                let want = v.as_i32().or_else(|| v.as_i64().map(|n| n as i32));
                if e.code() != want {
                    return fail(format!("expected code {v}, got {:?}", e.code()));
                }
            }
            "errorCodeName" => {
                let got = match &*top.kind {
                    ErrorKind::Command(c) => c.code_name.as_str(),
                    ErrorKind::Write(WriteFailure::WriteConcernError(c)) => c.code_name.as_str(),
                    _ => "",
                };
                if v.as_str() != Some(got) {
                    return fail(format!("expected code name {v}, got {got:?}"));
                }
            }
            "errorLabelsContain" | "errorLabelsOmit" => {
                let want_present = k == "errorLabelsContain";
                for label in v.as_array().into_iter().flatten().filter_map(Bson::as_str) {
                    if e.contains_label(label) != want_present {
                        return fail(format!("{k} {label}: labels are {:?}", e.labels()));
                    }
                }
            }
            "expectResult" => {
                let partial = match &*e.kind {
                    ErrorKind::InsertMany(f) => Some(operations::insert_many_partial_result(f)),
                    ErrorKind::CollectionBulkWrite(f) => {
                        Some(operations::bulk_result(&f.partial_result))
                    }
                    ErrorKind::BulkWrite(f) => f
                        .partial_result
                        .as_ref()
                        .map(operations::partial_client_bulk_result),
                    _ => None,
                };
                let partial = partial.map(Bson::Document);
                matching::matches(v, partial.as_ref(), true, saved, "partial result")?;
            }
            "writeErrors" => {
                let ErrorKind::BulkWrite(f) = &*e.kind else {
                    return fail("expected write errors by index, the error has none".into());
                };
                let want = v.as_document().ok_or("writeErrors is not a document")?;
                let mut got: Vec<usize> = f.write_errors.keys().copied().collect();
                got.sort_unstable();
                let mut wanted: Vec<usize> = want.keys().filter_map(|k| k.parse().ok()).collect();
                wanted.sort_unstable();
                if wanted != got {
                    return fail(format!("expected write errors at {wanted:?}, got {got:?}"));
                }
                for (index, w) in want {
                    let actual = &f.write_errors[&index.parse::<usize>().unwrap_or(usize::MAX)];
                    let mut d = doc! { "code": actual.code, "message": &actual.message };
                    if let Some(details) = &actual.details {
                        d.insert("details", details.clone());
                    }
                    matches_root(w, &d, saved).map_err(|m| format!("writeErrors.{index}{m}"))?;
                }
            }
            "writeConcernErrors" => {
                let ErrorKind::BulkWrite(f) = &*e.kind else {
                    return fail("expected write concern errors, the error has none".into());
                };
                let want = v.as_array().ok_or("writeConcernErrors is not an array")?;
                if want.len() != f.write_concern_errors.len() {
                    return fail(format!(
                        "expected {} write concern errors, got {}",
                        want.len(),
                        f.write_concern_errors.len()
                    ));
                }
                for (i, (w, actual)) in want.iter().zip(&f.write_concern_errors).enumerate() {
                    let d = doc! { "code": actual.code, "message": &actual.message };
                    matches_root(w, &d, saved).map_err(|m| format!("writeConcernErrors.{i}{m}"))?;
                }
            }
            "errorResponse" => {
                let response = match &*top.kind {
                    ErrorKind::Command(_) => top
                        .server_response()
                        .and_then(|r| Document::try_from(r.as_ref()).ok()),
                    ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
                        let mut d = doc! { "code": w.code, "errmsg": &w.message };
                        if !w.code_name.is_empty() {
                            d.insert("codeName", &w.code_name);
                        }
                        if let Some(info) = &w.details {
                            d.insert("errInfo", info.clone());
                        }
                        Some(d)
                    }
                    ErrorKind::Write(WriteFailure::WriteError(w)) => {
                        let mut d = doc! { "code": w.code, "errmsg": &w.message };
                        if let Some(info) = &w.details {
                            d.insert("errInfo", info.clone());
                        }
                        Some(d)
                    }
                    _ => None,
                };
                let Some(response) = response else {
                    return fail("expected a server response, the error has none".into());
                };
                matches_root(v, &response, saved).map_err(|m| format!("errorResponse{m}"))?;
            }
            other => return fail(format!("expectError field {other} is not supported")),
        }
    }
    Ok(())
}

/// Applies `writeConcern`, `readConcern` and `readPreference` options to a database or
/// collection; also says whether the write concern is unacknowledged (`w: 0`).
/// A transaction's options as the test files give them.
fn transaction_options(d: &Document) -> Result<may_mongo::options::TransactionOptions, String> {
    let mut d = d.clone();
    let max_commit = d.remove("maxCommitTimeMS");
    let (mut options, _) = with_options(
        may_mongo::options::TransactionOptions::default(),
        &d,
        |o, wc| {
            let mut o = o.clone();
            o.write_concern = Some(wc);
            o
        },
        |o, rc| {
            let mut o = o.clone();
            o.read_concern = Some(rc);
            o
        },
        |o, rp| {
            let mut o = o.clone();
            o.selection_criteria = Some(rp.into());
            o
        },
    )?;
    options.max_commit_time = max_commit
        .and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)))
        .map(|ms| std::time::Duration::from_millis(ms as u64));
    Ok(options)
}

fn with_options<H>(
    mut handle: H,
    options: &Document,
    wc: impl Fn(&H, WriteConcern) -> H,
    rc: impl Fn(&H, ReadConcern) -> H,
    rp: impl Fn(&H, ReadPreference) -> H,
) -> Result<(H, bool), String> {
    let mut unacknowledged = false;
    for (k, v) in options {
        let d = v
            .as_document()
            .ok_or_else(|| format!("{k} is not a document"))?;
        handle = match k.as_str() {
            "writeConcern" => {
                let concern = operations::write_concern(d).map_err(|e| format!("{e:?}"))?;
                unacknowledged = operations::is_unacknowledged(&concern);
                wc(&handle, concern)
            }
            // No level: the server's default, as if none were given.
            "readConcern" => match d.get_str("level") {
                Ok(level) => rc(&handle, ReadConcern::custom(level)),
                Err(_) => handle,
            },
            "readPreference" => {
                let mode = d.get_str("mode").map_err(|e| e.to_string())?;
                let mut options = ReadPreferenceOptions::default();
                if let Some(s) = d.get("maxStalenessSeconds") {
                    let secs = s.as_i32().map(i64::from).or(s.as_i64()).unwrap_or(0);
                    options.max_staleness = Some(std::time::Duration::from_secs(secs as u64));
                }
                let options = (options != ReadPreferenceOptions::default()).then_some(options);
                let pref = match ReadMode::from_name(mode) {
                    Some(ReadMode::Primary) if options.is_none() => ReadPreference::Primary,
                    Some(ReadMode::Secondary) => ReadPreference::secondary(options),
                    Some(ReadMode::PrimaryPreferred) => ReadPreference::primary_preferred(options),
                    Some(ReadMode::SecondaryPreferred) => {
                        ReadPreference::secondary_preferred(options)
                    }
                    Some(ReadMode::Nearest) => ReadPreference::nearest(options),
                    _ => return Err(format!("read preference {d}")),
                };
                rp(&handle, pref)
            }
            other => return Err(format!("option {other} is not supported by this runner")),
        };
    }
    Ok((handle, unacknowledged))
}
