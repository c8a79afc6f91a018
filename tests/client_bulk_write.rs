//! `Client::bulk_write` (the `bulkWrite` command of MongoDB 8.0+).
//!
//! The embedded FerretDB (7.0's wire version) has no `bulkWrite`, so the real server shows the
//! refusal: an older server gets a typed error and nothing is written. The 8.0 path — batch
//! splitting, namespace lists, the results cursor, merging results and errors across batches —
//! runs against a scripted server that answers `bulkWrite` as the spec describes, with the
//! outcome of each write named by the test (an inserted document carrying `fail: <code>`
//! fails with that code). The spec's own unified tests for the command run through
//! `tests/unified_suites.rs` against any 8.0 server named by `MONGODB_URI`.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bson::{Bson, Document, doc};
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use may_mongo::error::{BulkWriteError, PartialBulkWriteResult};
use may_mongo::{
    Client, ClientBulkWriteOptions, ClientWriteModel, Core, ErrorKind, Namespace, WriteConcern,
    WriteModel,
};
use may_mongo::{SummaryBulkWriteResult, VerboseBulkWriteResult};

/// How the scripted server behaves.
#[derive(Clone, Default)]
struct Script {
    /// `maxWriteBatchSize` and `maxMessageSizeBytes` it advertises (defaults when 0).
    max_write_batch: i32,
    max_message: i32,
    /// Results per cursor batch (all in the first batch when 0).
    page: usize,
    /// The `bulkWrite` command (0-based) that gets a `writeConcernError`.
    wce_on: Option<usize>,
    /// The `bulkWrite` command (0-based) that is answered `ok: 0`.
    fail_on: Option<usize>,
    /// Whether `getMore` is answered `ok: 0`.
    fail_get_more: bool,
}

/// A scripted 8.0 server.
fn scripted(script: Script) -> MockServer {
    let bulk_writes = AtomicUsize::new(0);
    let cursors: Mutex<HashMap<i64, Vec<Document>>> = Mutex::new(HashMap::new());
    MockServer::start(move |req, _| match req.command.as_str() {
        "hello" | "isMaster" => {
            let mut hello = hello_reply();
            hello.insert("maxWireVersion", 25);
            if script.max_write_batch > 0 {
                hello.insert("maxWriteBatchSize", script.max_write_batch);
            }
            if script.max_message > 0 {
                hello.insert("maxMessageSizeBytes", script.max_message);
            }
            Action::Reply(hello)
        }
        "bulkWrite" => {
            let n = bulk_writes.fetch_add(1, Ordering::SeqCst);
            if script.fail_on == Some(n) {
                return Action::Reply(doc! {
                    "ok": 0.0, "code": 8, "codeName": "UnknownError", "errmsg": "scripted failure",
                    "errorLabels": ["ScriptedLabel"],
                });
            }
            let (mut reply, results) = execute(req);
            let page = if script.page == 0 {
                results.len()
            } else {
                script.page
            };
            let first: Vec<Document> = results.iter().take(page).cloned().collect();
            let rest: Vec<Document> = results.into_iter().skip(page).collect();
            let id = if rest.is_empty() {
                0i64
            } else {
                let id = 1000 + n as i64;
                cursors.lock().unwrap().insert(id, rest);
                id
            };
            reply.insert(
                "cursor",
                doc! { "id": id, "firstBatch": first, "ns": "admin.$cmd.bulkWrite" },
            );
            if script.wce_on == Some(n) {
                reply.insert(
                    "writeConcernError",
                    doc! { "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out" },
                );
            }
            Action::Reply(reply)
        }
        "getMore" => {
            if script.fail_get_more {
                return Action::Reply(doc! {
                    "ok": 0.0, "code": 43, "codeName": "CursorNotFound", "errmsg": "gone",
                });
            }
            let id = req.body.get_i64("getMore").unwrap();
            let mut cursors = cursors.lock().unwrap();
            let rest = cursors.remove(&id).unwrap_or_default();
            let page = if script.page == 0 {
                rest.len()
            } else {
                script.page
            };
            let next: Vec<Document> = rest.iter().take(page).cloned().collect();
            let left: Vec<Document> = rest.into_iter().skip(page).collect();
            let id = if left.is_empty() {
                0
            } else {
                cursors.insert(id, left);
                id
            };
            Action::Reply(doc! {
                "ok": 1.0,
                "cursor": { "id": id, "nextBatch": next, "ns": "admin.$cmd.bulkWrite" },
            })
        }
        _ => Action::Reply(doc! { "ok": 1.0 }),
    })
}

/// The scripted outcome of one `bulkWrite`: an insert of a document with `fail: <code>` fails;
/// every other write succeeds, touching one document (an upsert creates `_id: "up<idx>"`).
/// Ordered commands stop at the first failure; `errorsOnly` keeps only the failures.
fn execute(req: &Request) -> (Document, Vec<Document>) {
    let ordered = req.body.get_bool("ordered").unwrap();
    let errors_only = req.body.get_bool("errorsOnly").unwrap();
    let mut counts: HashMap<&str, i32> = HashMap::new();
    let mut results = Vec::new();
    let mut errors = 0;
    for (idx, op) in req.sequence("ops").iter().enumerate() {
        let idx = idx as i32;
        let kind = op.keys().next().unwrap().as_str();
        let failure = op
            .get_document("document")
            .ok()
            .and_then(|d| d.get_i32("fail").ok());
        if let Some(code) = failure {
            errors += 1;
            results.push(
                doc! { "ok": 0.0, "idx": idx, "code": code, "errmsg": "scripted write error" },
            );
            if ordered {
                break;
            }
            continue;
        }
        let mut result = doc! { "ok": 1.0, "idx": idx, "n": 1 };
        match kind {
            "insert" => *counts.entry("nInserted").or_default() += 1,
            "delete" => *counts.entry("nDeleted").or_default() += 1,
            _ if op.get_bool("upsert").unwrap_or(false) => {
                *counts.entry("nUpserted").or_default() += 1;
                result.insert("nModified", 0);
                result.insert("upserted", doc! { "_id": format!("up{idx}") });
            }
            _ => {
                *counts.entry("nMatched").or_default() += 1;
                *counts.entry("nModified").or_default() += 1;
                result.insert("nModified", 1);
            }
        }
        if !errors_only {
            results.push(result);
        }
    }
    let mut reply = doc! { "ok": 1.0, "nErrors": errors };
    for key in [
        "nInserted",
        "nUpserted",
        "nMatched",
        "nModified",
        "nDeleted",
    ] {
        reply.insert(key, counts.get(key).copied().unwrap_or(0));
    }
    (reply, results)
}

fn client_for(server: &MockServer, core: Core) -> Client {
    server.client(core, "", "", |_| {})
}

fn insert(ns: &str, document: Document) -> ClientWriteModel {
    ClientWriteModel {
        namespace: ns.parse().unwrap(),
        model: WriteModel::InsertOne(document),
    }
}

/// Seven inserts into `a.x`; those at `failing` carry `fail: 11000`.
fn seven_inserts(failing: &[usize]) -> Vec<ClientWriteModel> {
    (0..7)
        .map(|i| {
            let mut d = doc! { "_id": i as i32 };
            if failing.contains(&i) {
                d.insert("fail", 11000);
            }
            insert("a.x", d)
        })
        .collect()
}

fn bulk(
    client: &Client,
    core: Core,
    models: Vec<ClientWriteModel>,
    options: ClientBulkWriteOptions,
) -> may_mongo::Result<may_mongo::ClientBulkWriteResult> {
    let c = client.clone();
    run_on(core, move || {
        c.bulk_write(models).with_options(options).run()
    })
}

fn failure(err: &may_mongo::Error) -> &BulkWriteError {
    match &*err.kind {
        ErrorKind::BulkWrite(f) => f,
        other => panic!("expected a BulkWrite error, got {other:?}"),
    }
}

/// The error that stopped the bulk write: the source of its error.
fn top_level(err: &may_mongo::Error) -> Option<&may_mongo::Error> {
    std::error::Error::source(err)?.downcast_ref()
}

fn summary(p: &PartialBulkWriteResult) -> &SummaryBulkWriteResult {
    match p {
        PartialBulkWriteResult::Summary(s) => s,
        PartialBulkWriteResult::Verbose(v) => &v.summary,
    }
}

fn verbose(p: &PartialBulkWriteResult) -> &VerboseBulkWriteResult {
    match p {
        PartialBulkWriteResult::Verbose(v) => v,
        other => panic!("expected verbose results, got {other:?}"),
    }
}

fn options(ordered: bool, verbose: bool) -> ClientBulkWriteOptions {
    let mut o = ClientBulkWriteOptions::default();
    o.ordered = Some(ordered);
    o.verbose_results = Some(verbose);
    o
}

both_cores!(
    batches_follow_max_write_batch_size_and_results_merge,
    |core| {
        let server = scripted(Script {
            max_write_batch: 3,
            ..Script::default()
        });
        let client = client_for(&server, core);
        let models = vec![
            insert("a.x", doc! { "v": 0 }),
            insert("b.y", doc! { "_id": "given", "v": 1 }),
            ClientWriteModel {
                namespace: Namespace::new("a", "x"),
                model: WriteModel::update_one(doc! { "v": 0 }, doc! { "$inc": { "v": 1 } }),
            },
            ClientWriteModel {
                namespace: Namespace::new("b", "y"),
                model: WriteModel::update_one(doc! { "v": 9 }, doc! { "$set": { "v": 9 } })
                    .with_upsert(true),
            },
            ClientWriteModel {
                namespace: Namespace::new("c", "z"),
                model: WriteModel::replace_one(doc! { "_id": 1 }, doc! { "w": 1 }),
            },
            ClientWriteModel {
                namespace: Namespace::new("c", "z"),
                model: WriteModel::delete_many(doc! {}),
            },
            insert("a.x", doc! { "v": 6 }),
        ];
        let expected_ns: Vec<String> = models.iter().map(|m| m.namespace.to_string()).collect();
        let result = bulk(&client, core, models, options(true, true)).unwrap();

        let sent = server.requests("bulkWrite");
        let sizes: Vec<usize> = sent.iter().map(|r| r.sequence("ops").len()).collect();
        assert_eq!(sizes, vec![3, 3, 1], "maxWriteBatchSize 3 splits 7 writes");
        let mut inserted = Vec::new();
        for (b, req) in sent.iter().enumerate() {
            assert_eq!(req.body.get_str("$db").unwrap(), "admin");
            assert!(!req.body.get_bool("errorsOnly").unwrap(), "verbose");
            assert!(req.body.get_bool("ordered").unwrap());
            let ns: Vec<String> = req
                .sequence("nsInfo")
                .iter()
                .map(|d| d.get_str("ns").unwrap().to_string())
                .collect();
            let mut unique = ns.clone();
            unique.dedup();
            assert_eq!(ns, unique, "each namespace listed once per batch");
            for (j, op) in req.sequence("ops").iter().enumerate() {
                let (kind, index) = op.iter().next().unwrap();
                let index = index.as_i32().unwrap() as usize;
                assert_eq!(ns[index], expected_ns[b * 3 + j], "op {kind} {b}/{j}");
                if let Ok(d) = op.get_document("document") {
                    assert_eq!(d.keys().next().unwrap(), "_id", "_id comes first");
                    inserted.push(d.get("_id").unwrap().clone());
                }
            }
        }
        // The last batch uses only a.x: its list is just that.
        assert_eq!(sent[2].sequence("nsInfo"), &[doc! { "ns": "a.x" }][..]);
        assert!(!sent[1].sequence("ops")[1].get_bool("multi").unwrap());
        assert!(sent[1].sequence("ops")[2].get_bool("multi").unwrap());

        assert!(result.acknowledged);
        assert_eq!(
            (
                result.inserted_count,
                result.matched_count,
                result.modified_count,
                result.upserted_count,
                result.deleted_count
            ),
            (3, 2, 2, 1, 1)
        );
        let verbose = result.verbose.expect("verbose results were asked for");
        let insert_ids: Vec<(usize, Bson)> = verbose
            .insert_results
            .iter()
            .map(|(i, r)| (*i, r.inserted_id.clone()))
            .collect();
        assert_eq!(
            insert_ids,
            vec![
                (0, inserted[0].clone()),
                (1, Bson::String("given".into())),
                (6, inserted[2].clone())
            ]
        );
        assert!(matches!(inserted[0], Bson::ObjectId(_)));
        assert_eq!(
            verbose.update_results.keys().copied().collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(verbose.update_results[&2].upserted_id, None);
        assert_eq!(
            verbose.update_results[&3].upserted_id,
            Some(Bson::String("up0".into())),
            "the upsert was the first write of the second batch"
        );
        assert_eq!(verbose.delete_results[&5].deleted_count, 1);
    }
);

both_cores!(large_writes_are_split_by_message_size, |core| {
    let server = scripted(Script {
        max_message: 10_000,
        ..Script::default()
    });
    let client = client_for(&server, core);
    let big = "x".repeat(3000);
    let models: Vec<_> = (0..5)
        .map(|i| insert("a.x", doc! { "_id": i, "s": &big }))
        .collect();
    let result = bulk(&client, core, models, options(true, false)).unwrap();
    let sizes: Vec<usize> = server
        .requests("bulkWrite")
        .iter()
        .map(|r| r.sequence("ops").len())
        .collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(result.inserted_count, 5);
    assert_eq!(result.verbose, None, "summary results unless asked");

    // One write too large for any message: an error, and nothing sent.
    let huge = vec![insert("a.x", doc! { "s": "y".repeat(12_000) })];
    let err = bulk(&client, core, huge, options(true, false)).unwrap_err();
    assert!(
        matches!(&*err.kind, ErrorKind::MessageTooLarge { .. }),
        "{err:?}"
    );
    assert_eq!(server.requests("bulkWrite").len(), 3);
});

both_cores!(ordered_stops_at_the_first_write_error, |core| {
    let server = scripted(Script {
        max_write_batch: 3,
        ..Script::default()
    });
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[4]), options(true, false)).unwrap_err();
    let f = failure(&err);
    assert!(top_level(&err).is_none());
    assert!(f.write_concern_errors.is_empty());
    assert_eq!(f.write_errors.keys().copied().collect::<Vec<_>>(), vec![4]);
    assert_eq!(f.write_errors[&4].code, 11000);
    let partial = f.partial_result.as_ref().expect("writes 0..=3 succeeded");
    assert_eq!(summary(partial).inserted_count, 4);
    assert_eq!(err.code(), Some(11000));
    assert_eq!(
        server.requests("bulkWrite").len(),
        2,
        "no batch after the failure"
    );

    // The first write failing: nothing succeeded, so no partial result.
    let err = bulk(&client, core, seven_inserts(&[0]), options(true, false)).unwrap_err();
    assert!(failure(&err).partial_result.is_none());
});

both_cores!(unordered_reports_every_error_and_runs_every_batch, |core| {
    let server = scripted(Script {
        max_write_batch: 3,
        ..Script::default()
    });
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[1, 5]), options(false, true)).unwrap_err();
    let f = failure(&err);
    let mut failed: Vec<usize> = f.write_errors.keys().copied().collect();
    failed.sort_unstable();
    assert_eq!(failed, vec![1, 5]);
    let partial = f.partial_result.as_ref().unwrap();
    assert_eq!(summary(partial).inserted_count, 5);
    let mut ok: Vec<usize> = verbose(partial).insert_results.keys().copied().collect();
    ok.sort_unstable();
    assert_eq!(
        ok,
        vec![0, 2, 3, 4, 6],
        "results only for writes that succeeded"
    );
    assert_eq!(server.requests("bulkWrite").len(), 3);
    assert!(
        server
            .requests("bulkWrite")
            .iter()
            .all(|r| !r.body.get_bool("ordered").unwrap())
    );
});

both_cores!(the_results_cursor_is_drained_with_get_more, |core| {
    let server = scripted(Script {
        page: 2,
        ..Script::default()
    });
    let client = client_for(&server, core);
    let result = bulk(&client, core, seven_inserts(&[]), options(true, true)).unwrap();
    assert_eq!(
        result
            .verbose
            .unwrap()
            .insert_results
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    let get_mores = server.requests("getMore");
    assert_eq!(get_mores.len(), 3, "7 results, 2 a batch");
    for g in &get_mores {
        assert_eq!(g.body.get_str("collection").unwrap(), "$cmd.bulkWrite");
        assert_eq!(g.body.get_str("$db").unwrap(), "admin");
    }

    // A failed getMore is a top-level error: it stops the bulk write, and what the first
    // batch said (its summary) comes with it.
    let server = server_with_failing_get_more();
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[]), options(true, true)).unwrap_err();
    let f = failure(&err);
    let top = top_level(&err).expect("the getMore failure");
    assert_eq!(top.code(), Some(43));
    let partial = f.partial_result.as_ref().unwrap();
    assert_eq!(summary(partial).inserted_count, 7);
    assert_eq!(verbose(partial).insert_results.len(), 2);
});

fn server_with_failing_get_more() -> MockServer {
    scripted(Script {
        page: 2,
        fail_get_more: true,
        ..Script::default()
    })
}

both_cores!(write_concern_errors_do_not_stop_the_bulk_write, |core| {
    let server = scripted(Script {
        max_write_batch: 3,
        wce_on: Some(0),
        ..Script::default()
    });
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[]), options(true, false)).unwrap_err();
    let f = failure(&err);
    assert_eq!(f.write_concern_errors.len(), 1);
    assert_eq!(f.write_concern_errors[0].code, 64);
    assert!(f.write_errors.is_empty());
    assert_eq!(
        summary(f.partial_result.as_ref().unwrap()).inserted_count,
        7
    );
    assert_eq!(server.requests("bulkWrite").len(), 3);
    assert!(err.to_string().contains("write concern"), "{err}");
});

both_cores!(a_command_error_stops_and_keeps_what_was_learnt, |core| {
    let server = scripted(Script {
        max_write_batch: 3,
        fail_on: Some(1),
        ..Script::default()
    });
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[]), options(false, false)).unwrap_err();
    let f = failure(&err);
    let top = top_level(&err).unwrap();
    assert!(matches!(*top.kind, ErrorKind::Command(_)), "{top:?}");
    assert_eq!(err.code(), Some(8));
    assert!(err.contains_label("ScriptedLabel"), "{err:?}");
    assert_eq!(
        summary(f.partial_result.as_ref().unwrap()).inserted_count,
        3
    );
    assert_eq!(
        server.requests("bulkWrite").len(),
        2,
        "even unordered stops at a top-level error"
    );

    // Failing on the first command: nothing was learnt, so the error is itself.
    let server = scripted(Script {
        fail_on: Some(0),
        ..Script::default()
    });
    let client = client_for(&server, core);
    let err = bulk(&client, core, seven_inserts(&[]), options(true, false)).unwrap_err();
    assert!(matches!(&*err.kind, ErrorKind::Command(_)), "{err:?}");
    assert_eq!(err.operation(), Some("bulkWrite"));
});

both_cores!(unacknowledged_bulk_writes, |core| {
    let server = scripted(Script::default());
    let client = client_for(&server, core);
    let w0 = WriteConcern {
        w: Some(may_mongo::Acknowledgment::Nodes(0)),
        ..WriteConcern::default()
    };
    let mut o = options(true, false);
    o.write_concern = Some(w0.clone());
    let err = bulk(&client, core, seven_inserts(&[]), o).unwrap_err();
    assert!(
        matches!(&*err.kind, ErrorKind::InvalidArgument { .. }),
        "{err:?}"
    );
    assert!(server.requests("bulkWrite").is_empty());

    let mut o = options(false, false);
    o.write_concern = Some(w0);
    let result = bulk(&client, core, seven_inserts(&[]), o).unwrap();
    assert!(!result.acknowledged);
    let sent = server.requests("bulkWrite");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body.get_document("writeConcern").unwrap(),
        &doc! { "w": 0 }
    );
});

both_cores!(an_older_server_refuses_before_anything_is_written, |core| {
    // The embedded FerretDB speaks MongoDB 7.0's wire version: no bulkWrite command.
    let client = common::client(core);
    let db = common::fresh_db(&client, "client_bulk_write_old");
    let coll = db.collection::<Document>("c");
    let models = vec![
        coll.client_model(WriteModel::InsertOne(doc! { "_id": 1 }))
            .unwrap(),
    ];
    let c = client.clone();
    let err = run_on(core, move || c.bulk_write(models).run()).unwrap_err();
    assert!(
        matches!(&*err.kind, ErrorKind::IncompatibleServer { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("MongoDB 8.0"), "{err}");
    let count = run_on(core, move || coll.count_documents(doc! {}).run());
    assert_eq!(count.unwrap(), 0);
});

#[test]
fn typed_collections_make_models_for_their_namespace() {
    #[derive(serde::Serialize)]
    struct Order {
        item: String,
    }
    common::init();
    let client = Client::with_uri_str("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=1").unwrap();
    let coll = client.database("shop").collection::<Order>("orders");
    let m = coll
        .client_model(WriteModel::InsertOne(Order { item: "tea".into() }))
        .unwrap();
    assert_eq!(m.namespace, Namespace::new("shop", "orders"));
    assert!(matches!(m.model, WriteModel::InsertOne(d) if d == doc! { "item": "tea" }));
}
