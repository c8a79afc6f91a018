//! Every path that decodes a reply, at nesting 1, 20, 50 and 100, on both cores, each called
//! from a coroutine on may's default 32 KiB stack that has already used half of it — in this
//! crate's build, which is a user's: the driver compiled at opt-level 0. Then the pools are
//! idle again and a call from a plain thread still works.
//!
//! Deep results are returned from the coroutines and dropped here, on the test thread: freeing
//! a 100-deep `Document` recurses, and that part is the caller's code (see the README).

use std::time::Duration;

use bson::{Bson, Document, doc};
use may_mongo::{
    Core, FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOptions, GridFsUploadOptions,
    ReturnDocument, UpdateOptions,
};
use user_tests::{Node, client, depth, in_coroutine, nested, record, wait_idle};

const LIMIT: Duration = Duration::from_secs(60);

fn paths_at(core: Core, levels: usize) {
    let client = client(core, 4);
    let db = client.database(&format!("user_decode_{}_{levels}", core.name()));
    db.run_command(doc! { "dropDatabase": 1 }).run().unwrap();
    let coll = db.collection::<Document>("c");
    // Seeded from a plain thread, so the coroutine paths below start from a known state.
    coll.insert_many(&[record(1, levels), record(2, levels), record(3, levels)])
        .run()
        .unwrap();

    let c = coll.clone();
    let one = in_coroutine(LIMIT, move || {
        c.find_one(doc! { "_id": 1 }).run().unwrap().unwrap()
    });
    assert_eq!(depth(&one), levels, "find_one::<Document>");

    let typed = coll.clone_with_type::<Node>();
    let node = in_coroutine(LIMIT, move || {
        typed.find_one(doc! { "_id": 1 }).run().unwrap().unwrap()
    });
    assert_eq!(node.depth(), levels, "find_one::<Node>");

    let c = coll.clone();
    let all = in_coroutine(LIMIT, move || {
        let options = FindOptions {
            batch_size: Some(1),
            ..Default::default()
        };
        c.find(doc! {})
            .with_options(options)
            .run()
            .unwrap()
            .collect::<may_mongo::Result<Vec<_>>>()
            .unwrap()
    });
    assert_eq!(all.len(), 3, "a cursor over three batches");
    assert!(all.iter().all(|d| depth(d) == levels), "cursor of Document");

    let typed = coll.clone_with_type::<Node>();
    let nodes = in_coroutine(LIMIT, move || {
        typed
            .find(doc! {})
            .run()
            .unwrap()
            .collect::<may_mongo::Result<Vec<_>>>()
            .unwrap()
    });
    assert!(nodes.iter().all(|n| n.depth() == levels), "cursor of Node");

    let c = coll.clone();
    let updated = in_coroutine(LIMIT, move || {
        let options = FindOneAndUpdateOptions::builder()
            .return_document(ReturnDocument::After)
            .build();
        c.find_one_and_update(doc! { "_id": 1 }, doc! { "$set": { "n": 1 } })
            .with_options(options)
            .run()
            .unwrap()
            .unwrap()
    });
    assert_eq!(updated.get_i32("n").unwrap(), 1);
    assert_eq!(depth(&updated), levels.max(1), "find_one_and_update");

    let typed = coll.clone_with_type::<Node>();
    // The replacement is the user's own type too, serialized by the driver (on its stack).
    let replacement: Node = bson::deserialize_from_document(record(2, levels)).unwrap();
    let replaced = in_coroutine(LIMIT, move || {
        let options = FindOneAndReplaceOptions::builder()
            .return_document(ReturnDocument::After)
            .build();
        typed
            .find_one_and_replace(doc! { "_id": 2 }, replacement)
            .with_options(options)
            .run()
            .unwrap()
            .unwrap()
    });
    assert_eq!(replaced.depth(), levels, "find_one_and_replace into Node");

    let c = coll.clone();
    let deleted = in_coroutine(LIMIT, move || {
        c.find_one_and_delete(doc! { "_id": 3 })
            .run()
            .unwrap()
            .unwrap()
    });
    assert_eq!(depth(&deleted), levels, "find_one_and_delete");

    let c = coll.clone();
    let values = in_coroutine(LIMIT, move || c.distinct("d", doc! {}).run().unwrap());
    if levels > 1 {
        assert_eq!(values.len(), 1, "distinct: the two documents left share d");
        match &values[0] {
            Bson::Document(d) => assert_eq!(depth(d), levels - 1, "distinct value"),
            other => panic!("distinct value {other:?}"),
        }
    }

    let c = coll.clone();
    let aggregated = in_coroutine(LIMIT, move || {
        c.aggregate(vec![doc! { "$match": { "_id": 1 } }])
            .run()
            .unwrap()
            .collect::<may_mongo::Result<Vec<_>>>()
            .unwrap()
    });
    assert_eq!(depth(&aggregated[0]), levels, "aggregate");

    let d = db.clone();
    let reply = in_coroutine(LIMIT, move || {
        d.run_command(doc! { "find": "c", "filter": { "_id": 1 } })
            .run()
            .unwrap()
    });
    // cursor.firstBatch.0 wraps the document in three more levels.
    assert_eq!(depth(&reply), levels + 3, "run_command");

    // Writes whose replies carry the caller's values back: an inserted document, an upserted
    // `_id` that is itself the nested document, and a duplicate-key write error about it.
    // The deep values are built and compared here (cloning or freeing them recurses: that is
    // the caller's own code), and moved into and out of the coroutines.
    let id = nested(levels.saturating_sub(1).max(1));
    let (filter, duplicate_doc) = (doc! { "_id": id.clone() }, doc! { "_id": id.clone() });
    let c = coll.clone();
    let inserted = in_coroutine(LIMIT, move || {
        c.insert_one(record(10, levels)).run().unwrap()
    });
    let c = coll.clone();
    let upserted = in_coroutine(LIMIT, move || {
        let options = UpdateOptions {
            upsert: Some(true),
            ..Default::default()
        };
        c.update_one(filter, doc! { "$set": { "u": 1 } })
            .with_options(options)
            .run()
            .unwrap()
            .upserted_id
    });
    let c = coll.clone();
    let (duplicate, duplicate_doc) = in_coroutine(LIMIT, move || {
        let e = c.insert_one(&duplicate_doc).run().unwrap_err();
        (e, duplicate_doc)
    });
    drop(duplicate_doc);
    assert_eq!(inserted.inserted_id, Bson::Int64(10));
    assert_eq!(upserted, Some(Bson::Document(id)), "upserted id");
    assert!(
        matches!(&*duplicate.kind, may_mongo::ErrorKind::Write(may_mongo::error::WriteFailure::WriteError(w))
            if w.code == 11000),
        "duplicate key: {duplicate}"
    );

    // GridFS: a file whose metadata is nested, found and read back by name (each step from a
    // coroutine of its own, as a user's separate calls would be).
    let bucket = db.gridfs_bucket(None);
    let b = bucket.clone();
    in_coroutine(LIMIT, move || {
        let mut options = GridFsUploadOptions::default();
        options.metadata = Some(nested(levels));
        b.upload_from_reader("f", &mut &b"hello"[..], options)
            .unwrap()
    });
    let b = bucket.clone();
    let files = in_coroutine(LIMIT, move || {
        b.find(doc! {})
            .run()
            .unwrap()
            .collect::<may_mongo::Result<Vec<_>>>()
            .unwrap()
    });
    let bytes = in_coroutine(LIMIT, move || {
        let mut bytes = Vec::new();
        let mut stream = bucket.open_download_stream_by_name("f").run().unwrap();
        std::io::Read::read_to_end(&mut stream, &mut bytes).unwrap();
        bytes
    });
    assert_eq!(bytes, b"hello");
    assert_eq!(
        depth(files[0].metadata.as_ref().unwrap()),
        levels,
        "GridFS metadata"
    );

    // The async façade: the blocking call runs in a coroutine of its own (coroutine core) or
    // on its thread pool (threaded core); the future is driven from this thread.
    let asynchronous = may_mongo::motor::Client::from(client.clone());
    let ac = asynchronous.database(db.name()).collection::<Document>("c");
    let (found, values) = futures_executor::block_on(async {
        let found = ac.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
        let values = ac.distinct("d", doc! {}).await.unwrap();
        (found, values)
    });
    assert_eq!(depth(&found), levels, "async find_one");
    assert!(!values.is_empty() || levels == 1);

    // Nothing was left checked out, and a plain thread is served.
    let stats = wait_idle(&client);
    assert_eq!(
        (stats.checked_out, stats.connecting, stats.waiters),
        (0, 0, 0)
    );
    assert!(stats.total <= 4, "{stats:?}");
    let c = coll.clone();
    let from_thread = std::thread::spawn(move || c.count_documents(doc! {}).run())
        .join()
        .unwrap()
        .unwrap();
    assert!(from_thread >= 3);
    db.run_command(doc! { "dropDatabase": 1 }).run().unwrap();
    client.shutdown();
}

macro_rules! depths {
    ($($name:ident: $core:expr, $levels:expr;)*) => {
        $(#[test] fn $name() { paths_at($core, $levels) })*
    };
}

depths! {
    coroutine_core_nesting_1: Core::Coroutine, 1;
    coroutine_core_nesting_20: Core::Coroutine, 20;
    coroutine_core_nesting_50: Core::Coroutine, 50;
    coroutine_core_nesting_100: Core::Coroutine, 100;
    threaded_core_nesting_1: Core::Threaded, 1;
    threaded_core_nesting_20: Core::Threaded, 20;
    threaded_core_nesting_50: Core::Threaded, 50;
    threaded_core_nesting_100: Core::Threaded, 100;
}
