//! Wire compression, end to end. FerretDB 1.24 does not compress, so a scripted server that
//! advertises compressors plays the server here: it decodes our OP_COMPRESSED requests with
//! the driver's own codec and answers compressed, as MongoDB does. Against the real server,
//! asking for compression must simply change nothing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use bson::{Document, doc};
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use may_mongo::{Client, ClientOptions, Core, ErrorKind};
use may_mongo_protocol::{Compressor, HEADER_LEN, compress_message};

/// A server that accepts the compressors in `accepts`, answers `find` with two documents, and
/// PLAIN authentication with success.
fn compressing_server(accepts: &'static [&'static str]) -> MockServer {
    MockServer::start(move |req: &Request, _| match req.command.as_str() {
        "hello" | "isMaster" => {
            let mut reply = hello_reply();
            // Like mongod: the intersection of what was offered and what it speaks.
            let offered: Vec<String> = req
                .body
                .get_array("compression")
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let agreed: Vec<&str> = offered
                .iter()
                .map(String::as_str)
                .filter(|c| accepts.contains(c))
                .collect();
            if !agreed.is_empty() {
                reply.insert("compression", agreed);
            }
            Action::Reply(reply)
        }
        "saslStart" => Action::Reply(doc! { "ok": 1.0, "conversationId": 1, "done": true }),
        "find" => Action::Reply(doc! {
            "ok": 1.0,
            "cursor": { "id": 0i64, "ns": "db.c", "firstBatch": [
                { "_id": 1, "text": "compressed ".repeat(100) },
                { "_id": 2, "text": "and back" },
            ] },
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    })
}

fn client(server: &MockServer, core: Core, userinfo: &str, query: &str) -> Client {
    server.client(core, userinfo, query, |_| {})
}

/// Pings, inserts and reads back through `client`; returns what `find` returned.
fn crud(client: &Client, core: Core) -> may_mongo::Result<Vec<Document>> {
    let c = client.clone();
    run_on(core, move || {
        let coll = c.database("db").collection::<Document>("c");
        c.database("admin").run_command(doc! { "ping": 1 }).run()?;
        coll.insert_one(doc! { "_id": 3, "text": "x".repeat(500) })
            .run()?;
        coll.find(doc! {}).run()?.collect()
    })
}

both_cores!(each_compressor_is_negotiated_and_used_both_ways, |core| {
    for (name, compressor) in [
        ("snappy", Compressor::Snappy),
        ("zlib", Compressor::Zlib { level: None }),
        ("zstd", Compressor::Zstd),
    ] {
        let server = compressing_server(&["snappy", "zlib", "zstd"]);
        let c = client(&server, core, "", &format!("compressors={name}"));
        let docs = crud(&c, core).unwrap();
        assert_eq!(docs.len(), 2, "{name}");
        assert_eq!(docs[0].get_str("text").unwrap(), "compressed ".repeat(100));
        assert_eq!(docs[1].get_str("text").unwrap(), "and back");

        for hello in server.requests("hello") {
            assert_eq!(hello.compressor, None, "hello is never compressed");
            let offered = hello.body.get_array("compression").unwrap();
            assert_eq!(offered.len(), 1);
            assert_eq!(offered[0].as_str(), Some(name));
        }
        for command in ["ping", "insert", "find"] {
            let seen = server.requests(command);
            assert_eq!(seen.len(), 1, "{name} {command}");
            assert_eq!(
                seen[0].compressor.map(Compressor::id),
                Some(compressor.id()),
                "{name}: {command} travelled compressed"
            );
        }
        assert_eq!(
            server.requests("insert")[0].sequence("documents")[0]
                .get_str("text")
                .unwrap(),
            "x".repeat(500)
        );
    }
});

both_cores!(
    the_first_of_our_compressors_that_the_server_accepts_wins,
    |core| {
        // We prefer snappy, then zstd, then zlib; the server has no snappy.
        let server = compressing_server(&["zlib", "zstd"]);
        let c = client(
            &server,
            core,
            "",
            "compressors=snappy,zstd,zlib&zlibCompressionLevel=9",
        );
        crud(&c, core).unwrap();
        let hello = &server.requests("hello")[0];
        let offered: Vec<&str> = hello
            .body
            .get_array("compression")
            .unwrap()
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        assert_eq!(offered, ["snappy", "zstd", "zlib"]);
        assert_eq!(
            server.requests("ping")[0].compressor,
            Some(Compressor::Zstd)
        );
    }
);

both_cores!(nothing_is_compressed_unless_both_sides_agree, |core| {
    // The server speaks only zlib; we offer only snappy.
    let server = compressing_server(&["zlib"]);
    let c = client(&server, core, "", "compressors=snappy");
    crud(&c, core).unwrap();
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.compressor.is_none())
    );

    // We offer nothing: the handshake does not mention compression.
    let server = compressing_server(&["zlib"]);
    let c = client(&server, core, "", "");
    crud(&c, core).unwrap();
    let hello = &server.requests("hello")[0];
    assert!(!hello.body.contains_key("compression"));
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.compressor.is_none())
    );
});

both_cores!(authentication_commands_travel_uncompressed, |core| {
    let server = compressing_server(&["zstd"]);
    let c = client(
        &server,
        core,
        "bob:hunter2@",
        "authMechanism=PLAIN&compressors=zstd",
    );
    crud(&c, core).unwrap();
    let starts = server.requests("saslStart");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].compressor, None, "saslStart is never compressed");
    // The same connection compresses what follows.
    let ping = &server.requests("ping")[0];
    assert_eq!(ping.connection, starts[0].connection);
    assert_eq!(ping.compressor, Some(Compressor::Zstd));
});

both_cores!(
    a_corrupt_compressed_reply_is_an_error_and_its_connection_is_closed,
    |core| {
        let corrupted = AtomicBool::new(false);
        let server =
            MockServer::start(
                move |req: &Request, request_id| match req.command.as_str() {
                    "hello" | "isMaster" => {
                        let mut reply = hello_reply();
                        reply.insert("compression", ["zlib"]);
                        Action::Reply(reply)
                    }
                    // The first ping gets zlib data with its bytes scrambled.
                    "ping" if !corrupted.swap(true, Ordering::SeqCst) => {
                        let plain = common::mock::op_msg_bytes(request_id, &doc! { "ok": 1.0 });
                        let mut bytes = Vec::new();
                        compress_message(&plain, Compressor::Zlib { level: None }, &mut bytes)
                            .unwrap();
                        for b in &mut bytes[HEADER_LEN + 9..] {
                            *b = b.wrapping_mul(31).wrapping_add(7);
                        }
                        Action::Raw(bytes)
                    }
                    _ => Action::Reply(doc! { "ok": 1.0 }),
                },
            );
        let c = client(&server, core, "", "compressors=zlib");
        let ping = |c: &Client| {
            let c = c.clone();
            run_on(core, move || {
                c.database("admin").run_command(doc! { "ping": 1 }).run()
            })
        };
        let err = ping(&c).unwrap_err();
        assert!(
            matches!(&*err.kind, ErrorKind::InvalidResponse { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("corrupt zlib data"), "{err}");
        assert_eq!(c.pool_stats().total, 0, "the connection was closed");
        // A new connection, and compressed replies that are whole, work.
        assert_eq!(ping(&c).unwrap().get_f64("ok").unwrap(), 1.0);
        assert_eq!(c.pool_stats().total, 1);
        let pings = server.requests("ping");
        assert_ne!(pings[0].connection, pings[1].connection);
        assert!(pings.iter().all(|p| p.compressor.is_some()));
    }
);

both_cores!(
    asking_the_real_server_for_compression_changes_nothing,
    |core| {
        // FerretDB 1.24 names no compressors in its reply, so none is used.
        let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
        opts.core = core;
        opts.compressors = vec![Compressor::Zstd, Compressor::Snappy];
        let c = Client::with_options(opts).unwrap();
        let db = common::fresh_db(&c, "compression_real");
        let coll = db.collection::<Document>("c");
        let n = run_on(core, move || {
            coll.insert_one(doc! { "x": 1 }).run().unwrap();
            coll.count_documents(doc! {}).run().unwrap()
        });
        assert_eq!(n, 1);
    }
);
