//! The Stable API (`ClientOptions::server_api`), after MongoDB's Stable API spec: what goes on
//! the wire, shown by a scripted server, and what the test server makes of it.

mod common;

use std::time::Duration;

use bson::{Document, doc};
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use may_mongo::{Core, ErrorKind, ServerApi, ServerApiVersion};

/// A server that knows `hello`, opens a cursor for `find` (one document per batch) and
/// answers everything else `ok: 1`.
fn script(req: &Request, _: i32) -> Action {
    match req.command.as_str() {
        "hello" | "isMaster" => {
            let mut reply = hello_reply();
            reply.insert("connectionId", 7);
            Action::Reply(reply)
        }
        "find" => Action::Reply(doc! {
            "cursor": { "id": 99_i64, "ns": "db.c", "firstBatch": [{ "_id": 1 }] }, "ok": 1.0,
        }),
        "getMore" => Action::Reply(doc! {
            "cursor": { "id": 0_i64, "ns": "db.c", "nextBatch": [{ "_id": 2 }] }, "ok": 1.0,
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    }
}

/// The Stable API fields of a command, as sent.
fn api_fields(body: &Document) -> Document {
    body.iter()
        .filter(|(k, _)| k.starts_with("api"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs a `find` that needs a `getMore`, and a `ping`, with `api` declared; returns the server.
fn exercise(core: Core, api: Option<ServerApi>) -> MockServer {
    let server = MockServer::start(script);
    let client = server.client(core, "", "heartbeatFrequencyMS=500", |o| {
        o.server_api = api;
    });
    let docs = run_on(core, move || {
        let db = client.database("db");
        db.run_command(doc! { "ping": 1 }).run().unwrap();
        let docs: Vec<Document> = db
            .collection::<Document>("c")
            .find(doc! {})
            .run()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // Long enough for the monitor's first heartbeat after its handshake.
        std::thread::sleep(Duration::from_millis(800));
        docs
    });
    assert_eq!(docs, vec![doc! { "_id": 1 }, doc! { "_id": 2 }]);
    server
}

both_cores!(every_command_carries_the_declared_api, |core| {
    let api = ServerApi::builder()
        .version(ServerApiVersion::V1)
        .strict(true)
        .deprecation_errors(false)
        .build();
    let server = exercise(core, Some(api));
    let expected = doc! { "apiVersion": "1", "apiStrict": true, "apiDeprecationErrors": false };
    let log = server.log.lock().unwrap().clone();
    for name in ["ping", "find", "getMore"] {
        assert!(log.iter().any(|r| r.command == name), "no {name} sent");
    }
    for req in &log {
        assert!(!req.legacy, "OP_QUERY sent: {:?}", req.body);
        assert_eq!(
            api_fields(&req.body),
            expected,
            "{} on connection {} (request {})",
            req.command,
            req.connection,
            req.index
        );
    }
    // The handshake of every connection (the monitor's and the pool's) is `hello` over
    // OP_MSG, never legacy hello; so is the monitor's heartbeat after it.
    let hellos: Vec<&Request> = log.iter().filter(|r| r.index == 0).collect();
    assert!(hellos.len() >= 2, "a monitor and a pooled connection");
    for h in &hellos {
        assert_eq!(h.command, "hello");
        assert!(
            h.body.contains_key("client"),
            "handshake metadata: {:?}",
            h.body
        );
    }
    assert!(
        log.iter().any(|r| r.command == "hello" && r.index > 0),
        "a heartbeat on the monitor's connection"
    );
});

both_cores!(only_the_flags_given_are_sent, |core| {
    let api = ServerApi::builder().version(ServerApiVersion::V1).build();
    let server = exercise(core, Some(api));
    for req in server.log.lock().unwrap().iter() {
        assert_eq!(
            api_fields(&req.body),
            doc! { "apiVersion": "1" },
            "{}",
            req.command
        );
    }
});

both_cores!(nothing_is_sent_without_a_declared_api, |core| {
    let server = exercise(core, None);
    for req in server.log.lock().unwrap().iter() {
        assert!(api_fields(&req.body).is_empty(), "{:?}", req.body);
    }
});

both_cores!(no_legacy_hello_when_an_api_is_declared, |core| {
    // A server without `hello`: without a declared API the driver asks again with legacy
    // hello over OP_QUERY; with one it must not, and the server stays Unknown.
    let server = MockServer::start(|req, _| {
        if req.legacy {
            return Action::Reply(hello_reply());
        }
        Action::Reply(doc! {
            "ok": 0.0, "code": 59, "codeName": "CommandNotFound", "errmsg": "no such command",
        })
    });
    let api = ServerApi::builder().version(ServerApiVersion::V1).build();
    let client = server.client(core, "", "serverSelectionTimeoutMS=700", |o| {
        o.server_api = Some(api);
    });
    let outcome = run_on(core, move || {
        client.database("db").run_command(doc! { "ping": 1 }).run()
    });
    let e = outcome.expect_err("no server can be selected");
    assert!(matches!(&*e.kind, ErrorKind::ServerSelection { .. }), "{e}");
    let log = server.log.lock().unwrap().clone();
    assert!(!log.is_empty());
    for req in &log {
        assert!(!req.legacy, "legacy hello sent");
        assert_eq!(req.command, "hello");
        assert_eq!(req.body.get_str("apiVersion").ok(), Some("1"));
    }
});

#[test]
fn versions_are_checked_on_the_client() {
    assert_eq!(
        "1".parse::<ServerApiVersion>().unwrap(),
        ServerApiVersion::V1
    );
    assert_eq!(ServerApiVersion::V1.to_string(), "1");
    let e = "2".parse::<ServerApiVersion>().unwrap_err();
    assert!(matches!(&*e.kind, ErrorKind::InvalidArgument { .. }), "{e}");
    // The spec forbids declaring an API version in the connection string.
    let opts = may_mongo::ClientOptions::parse("mongodb://h/?apiVersion=1")
        .run()
        .unwrap();
    assert!(opts.server_api.is_none());
    assert!(
        !opts.warnings.is_empty(),
        "apiVersion in a URI is ignored with a warning"
    );
}

/// Commands carrying the Stable API fields work against the test server. (FerretDB 1.24.2
/// accepts the fields without checking them: it also answers `apiVersion: "2"`, and
/// `buildInfo` under `apiStrict`, which MongoDB 5.0+ refuses. So this shows only that the
/// fields do no harm there.)
#[test]
fn real_server_with_declared_api() {
    let mut opts = may_mongo::ClientOptions::parse(common::uri())
        .run()
        .unwrap();
    opts.core = Core::Threaded;
    // A server without `hello` (mongo-java-server) is never selected under a declared API:
    // fail in seconds there, not in thirty per call.
    opts.server_selection_timeout = std::time::Duration::from_secs(3);
    opts.server_api = Some(
        ServerApi::builder()
            .version(ServerApiVersion::V1)
            .strict(true)
            .deprecation_errors(true)
            .build(),
    );
    let client = may_mongo::Client::with_options(opts).unwrap();
    let db = client.database("t_stable_api");
    let ping = db.run_command(doc! { "ping": 1 }).run();
    eprintln!("ping with apiVersion: {ping:?}");
    let coll = db.collection::<Document>("c");
    if ping.is_ok() {
        coll.drop().run().unwrap();
    }
    let insert = coll.insert_one(doc! { "_id": 1 }).run();
    eprintln!("insert with apiVersion: {insert:?}");
    let found = coll.find_one(doc! { "_id": 1 }).run();
    eprintln!("find with apiVersion: {found:?}");
    ping.unwrap();
    insert.unwrap();
    assert_eq!(found.unwrap(), Some(doc! { "_id": 1 }));
}
