//! Bulk inserts that partly fail, and every kind of error an application matches on: the
//! server's write errors and command errors, the driver's own argument checks, a document
//! that does not fit its type, a bad connection string, and a server that is not there.

use std::time::{Duration, Instant};

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, InsertManyError, RETRYABLE_WRITE_ERROR, Result, WriteFailure},
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, InsertManyError, RETRYABLE_WRITE_ERROR, Result, WriteFailure},
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};
use serde::Deserialize;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Deserialize)]
struct Counter {
    #[allow(dead_code)]
    value: i32,
}

/// The indexes and codes of an insert_many's write errors.
fn write_errors(kind: &ErrorKind) -> Vec<(usize, i32)> {
    match kind {
        ErrorKind::InsertMany(InsertManyError {
            write_errors: Some(errors),
            write_concern_error: None,
            ..
        }) => errors.iter().map(|e| (e.index, e.code)).collect(),
        other => panic!("expected an insert_many error, got {other:?}"),
    }
}

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database("porting_bulk_and_errors");
    db.drop().run()?;
    let items: Collection<Document> = db.collection("items");

    // Unordered: every document but the duplicates goes in, and each duplicate is reported.
    let batch = [1, 2, 2, 3, 1, 4].map(|id| doc! { "_id": id });
    let err = items.insert_many(batch).ordered(false).run().unwrap_err();
    check_eq!(
        checks,
        write_errors(&err.kind),
        vec![(2, 11000), (4, 11000)]
    );
    check!(
        checks,
        !err.contains_label(RETRYABLE_WRITE_ERROR),
        "a duplicate key is not retryable"
    );
    check_eq!(checks, items.count_documents(doc! {}).run()?, 4);

    // Ordered (the default): the insert stops at the first duplicate.
    let batch = [10, 11, 1, 12].map(|id| doc! { "_id": id });
    let err = items.insert_many(batch).run().unwrap_err();
    check_eq!(checks, write_errors(&err.kind), vec![(2, 11000)]);
    let ids: Vec<Bson> = items.distinct("_id", doc! {}).run()?;
    check_eq!(checks, ids.len(), 6);
    check!(
        checks,
        !ids.contains(&Bson::Int32(12)),
        "nothing after the duplicate went in"
    );

    // A single duplicate is a write error, not an insert_many error.
    let err = items.insert_one(doc! { "_id": 3 }).run().unwrap_err();
    match *err.kind {
        ErrorKind::Write(WriteFailure::WriteError(ref e)) => {
            check_eq!(checks, e.code, 11000, "{e:?}")
        }
        ref other => panic!("expected a write error, got {other:?}"),
    }

    // The server rejects an update operator it does not know: a write error (FailedToParse).
    let err = items
        .update_one(doc! { "_id": 1 }, doc! { "$frobnicate": { "a": 1 } })
        .run()
        .unwrap_err();
    match *err.kind {
        ErrorKind::Write(WriteFailure::WriteError(ref e)) => check_eq!(checks, e.code, 9, "{e:?}"),
        ref other => panic!("expected a write error, got {other:?}"),
    }

    // The driver itself rejects an update without operators, before sending it.
    let err = items
        .update_one(doc! { "_id": 1 }, doc! { "a": 1 })
        .run()
        .unwrap_err();
    check!(
        checks,
        matches!(*err.kind, ErrorKind::InvalidArgument { .. }),
        "{err}"
    );

    // Command errors: an unknown command, an unknown query operator, an existing collection.
    let err = db.run_command(doc! { "frobnicate": 1 }).run().unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => {
            check_eq!(
                checks,
                (e.code, e.code_name.as_str()),
                (59, "CommandNotFound"),
                "{e:?}"
            )
        }
        ref other => panic!("expected a command error, got {other:?}"),
    }
    let err = items.find(doc! { "$frobnicate": 1 }).run().unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => check_eq!(checks, e.code, 2, "{e:?}"),
        ref other => panic!("expected a command error, got {other:?}"),
    }
    let err = db.create_collection("items").run().unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => check_eq!(checks, e.code, 48, "{e:?}"),
        ref other => panic!("expected NamespaceExists, got {other:?}"),
    }
    let pong = db.run_command(doc! { "ping": 1 }).run()?;
    check_eq!(checks, pong.get("ok").and_then(Bson::as_f64), Some(1.0));

    // A stored document that does not fit the type it is read as.
    items
        .insert_one(doc! { "_id": "counter", "value": "not a number" })
        .run()?;
    let counters: Collection<Counter> = db.collection("items");
    let err = counters
        .find_one(doc! { "_id": "counter" })
        .run()
        .unwrap_err();
    check!(checks, matches!(*err.kind, ErrorKind::Bson(_)), "{err}");

    // Bad connection strings.
    for bad in [
        "mongo://127.0.0.1",
        "mongodb://127.0.0.1:notaport/",
        "mongodb://127.0.0.1/?tls=true&ssl=false",
    ] {
        let err = Client::with_uri_str(bad).map(|_| ()).unwrap_err();
        check!(
            checks,
            matches!(*err.kind, ErrorKind::InvalidArgument { .. }),
            "{bad}: {err}"
        );
    }

    // No server: the client is created, the first operation times out selecting a server.
    let dead = Client::with_uri_str("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")?;
    let started = Instant::now();
    let err = dead
        .database("nowhere")
        .collection::<Document>("c")
        .insert_one(doc! {})
        .run()
        .unwrap_err();
    let waited = started.elapsed();
    check!(
        checks,
        matches!(*err.kind, ErrorKind::ServerSelection { .. }),
        "{err}"
    );
    check!(
        checks,
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    check!(checks, !err.contains_label(RETRYABLE_WRITE_ERROR));

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("bulk_and_errors", run)
}
