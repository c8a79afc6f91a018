//! The first round trips, on both cores, against the real server.

mod common;

use bson::{Document, doc};
use may_mongo::error::WriteFailure;
use may_mongo::{Client, ClientOptions, ErrorKind, ServerType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    #[serde(rename = "_id")]
    id: i64,
    name: String,
    tags: Vec<String>,
}

both_cores!(handshake_and_ping, |core| {
    let client = common::client(core);
    let desc = client.stream_description().unwrap();
    assert!(desc.max_wire_version >= 6, "{desc:?}");
    assert!(desc.max_bson_object_size >= 16 * 1024 * 1024);
    assert!(desc.max_message_size >= desc.max_bson_object_size);
    assert!(matches!(
        desc.server_type,
        ServerType::Standalone | ServerType::RsPrimary
    ));
    // FerretDB reports maxWriteBatchSize 100000 and sessions (30 minutes).
    assert!(desc.max_write_batch_size >= 1000);
    let reply = client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()
        .unwrap();
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0);
    assert_eq!(client.pool_stats().total, 1, "one connection served both");
});

both_cores!(insert_then_find_one_typed, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "roundtrip");
    let items = db.collection::<Item>("items");
    let item = Item {
        id: 7,
        name: "seven".into(),
        tags: vec!["a".into(), "b".into()],
    };
    let r = items.insert_one(&item).run().unwrap();
    assert_eq!(r.inserted_id, bson::Bson::Int64(7));
    assert_eq!(
        items.find_one(doc! { "_id": 7_i64 }).run().unwrap(),
        Some(item)
    );
    assert_eq!(items.find_one(doc! { "_id": 8_i64 }).run().unwrap(), None);
});

both_cores!(insert_without_id_gets_an_object_id, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "genid");
    let coll = db.collection::<Document>("c");
    let r = coll
        .insert_one(doc! { "x": 1, "y": { "z": [1, 2] } })
        .run()
        .unwrap();
    let oid = r.inserted_id.as_object_id().expect("an ObjectId");
    let found = coll.find_one(doc! { "_id": oid }).run().unwrap().unwrap();
    assert_eq!(found.get_i32("x").unwrap(), 1);
    // The driver puts `_id` first, as the server would.
    assert_eq!(found.keys().next().map(String::as_str), Some("_id"));
});

both_cores!(duplicate_id_is_a_typed_write_error, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "dupkey");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).run().unwrap();
    let err = coll.insert_one(doc! { "_id": 1 }).run().unwrap_err();
    assert_eq!(err.code(), Some(11000), "{err}");
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            assert!(w.message.contains("duplicate key"), "{w}");
        }
        other => panic!("expected a write error, got {other:?}"),
    }
    assert!(!err.is_network_error());
    // The message names the operation and the server.
    assert_eq!(err.operation(), Some("insert"));
    let server = client.options().hosts[0].to_string();
    assert_eq!(err.server(), Some(server.as_str()));
    assert!(
        err.to_string()
            .contains(&format!("(in insert on {server})")),
        "{err}"
    );
    // The connection is still good.
    assert!(coll.find_one(doc! { "_id": 1 }).run().unwrap().is_some());
    assert_eq!(client.pool_stats().total, 1);
});

both_cores!(command_error_carries_code_and_name, |core| {
    let client = common::client(core);
    let err = client
        .database("admin")
        .run_command(doc! { "noSuchCommandHere": 1 })
        .run()
        .unwrap_err();
    match &*err.kind {
        ErrorKind::Command(c) => {
            assert_eq!(c.code, 59);
            assert_eq!(c.code_name, "CommandNotFound");
            assert!(c.message.contains("noSuchCommandHere"), "{c}");
        }
        other => panic!("expected a command error, got {other:?}"),
    }
});

both_cores!(oversized_document_is_refused_before_sending, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "oversize");
    let coll = db.collection::<Document>("c");
    let max = client.stream_description().unwrap().max_bson_object_size;
    let big = doc! { "_id": 1, "blob": "x".repeat(max) };
    let err = coll.insert_one(&big).run().unwrap_err();
    match &*err.kind {
        ErrorKind::DocumentTooLarge { size, max: m } => {
            assert_eq!(*m, max);
            assert!(*size > max);
        }
        other => panic!("expected DocumentTooLarge, got {other:?}"),
    }
    // Nothing reached the server, and the connection was not disturbed: still pooled, still
    // usable.
    assert_eq!(client.pool_stats().total, 1);
    assert_eq!(client.pool_stats().idle, 1);
    assert_eq!(coll.find_one(doc! { "_id": 1 }).run().unwrap(), None);
    // Just under the limit is accepted by the driver (the server decides the rest).
    let fits = doc! { "_id": 2, "blob": "x".repeat(1024 * 1024) };
    coll.insert_one(&fits).run().unwrap();
    assert!(coll.find_one(doc! { "_id": 2 }).run().unwrap().is_some());
});

both_cores!(connection_refused_names_the_address, |core| {
    common::init();
    // A port that was free a moment ago: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = ClientOptions::parse(format!(
        "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500"
    ))
    .run()
    .unwrap();
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let started = std::time::Instant::now();
    let err = client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()
        .unwrap_err();
    let waited = started.elapsed();
    // The monitor found nobody listening; selection gave up after serverSelectionTimeoutMS,
    // naming the server and why it was unsuitable.
    assert!(
        matches!(&*err.kind, ErrorKind::ServerSelection { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(
        waited >= std::time::Duration::from_millis(450)
            && waited < std::time::Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(
        client.pool_stats().total,
        0,
        "no pooled connection was opened"
    );
});

both_cores!(hostname_is_resolved_off_the_worker, |core| {
    let uri = common::uri().replace("127.0.0.1", "localhost");
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let run = move || {
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .run()
            .map(|_| ())
    };
    match core {
        may_mongo::Core::Coroutine => may::go!(run).join().unwrap().unwrap(),
        may_mongo::Core::Threaded => run().unwrap(),
    }
});

both_cores!(shutdown_stops_further_operations, |core| {
    let client = common::client(core);
    let db = client.database("admin");
    db.run_command(doc! { "ping": 1 }).run().unwrap();
    let clone = client.clone();
    client.shutdown();
    assert_eq!(client.pool_stats().total, 0);
    let err = clone
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()
        .unwrap_err();
    assert!(matches!(&*err.kind, ErrorKind::Shutdown), "{err}");
});

#[test]
fn default_database_comes_from_the_uri_path() {
    let uri = format!(
        "{}mydb",
        common::uri().trim_end_matches('/').to_string() + "/"
    );
    let client = Client::with_uri_str(&uri).unwrap();
    assert_eq!(client.default_database().unwrap().name(), "mydb");
}

/// Records command events.
#[derive(Default)]
struct Commands(std::sync::Mutex<Vec<may_mongo::CommandEvent>>);

both_cores!(command_events_name_the_command_and_connection, |core| {
    let events = std::sync::Arc::new(Commands::default());
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.core = core;
    let recorder = events.clone();
    opts.command_event_handler = Some(may_mongo::EventHandler::callback(move |e| {
        recorder.0.lock().unwrap().push(e);
    }));
    let client = Client::with_options(opts).unwrap();
    let db = client.database(&format!("t_cmdevents_{}", core.name()));
    db.run_command(doc! { "ping": 1 }).run().unwrap();
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "x": 1 }).run().unwrap();
    coll.find_one(doc! {}).run().unwrap();
    db.run_command(doc! { "noSuchCommandHere": 1 })
        .run()
        .unwrap_err();
    let seen: Vec<(String, String)> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            let kind = match e {
                may_mongo::CommandEvent::Started(e) => {
                    assert_eq!(e.db, db.name());
                    "started"
                }
                may_mongo::CommandEvent::Succeeded(_) => "succeeded",
                may_mongo::CommandEvent::Failed(e) => {
                    assert_eq!(e.failure.code(), Some(59));
                    "failed"
                }
                _ => "other",
            };
            assert_eq!(e.connection().id, 1, "one connection served all");
            (e.command_name().to_string(), kind.to_string())
        })
        .collect();
    let expect = [
        ("ping", "started"),
        ("ping", "succeeded"),
        ("insert", "started"),
        ("insert", "succeeded"),
        ("find", "started"),
        ("find", "succeeded"),
        ("noSuchCommandHere", "started"),
        ("noSuchCommandHere", "failed"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(seen, expect);
});
