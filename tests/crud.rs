//! The CRUD API against the real server, on both cores.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use common::run_on;
use may_mongo::{
    Client, ClientOptions, CommandEvent, Core, ErrorKind, EventHandler, FindOptions, IndexModel,
    ReturnDocument, UpdateOptions, WriteModel, options::FindOneAndUpdateOptions,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Person {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    age: Option<i32>,
    born: DateTime,
    home: Address,
    tags: Vec<String>,
}

/// Records command events, to see what was sent.
#[derive(Default)]
struct Commands(Mutex<Vec<(String, Document)>>);

impl Commands {
    fn count(&self, name: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }
}

fn client_with_events(core: Core) -> (Client, Arc<Commands>) {
    let events = Arc::new(Commands::default());
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.core = core;
    let recorder = events.clone();
    opts.command_event_handler = Some(EventHandler::callback(move |e| {
        if let CommandEvent::Started(e) = e {
            recorder
                .0
                .lock()
                .unwrap()
                .push((e.command_name, Document::new()));
        }
    }));
    (Client::with_options(opts).unwrap(), events)
}

both_cores!(typed_documents_round_trip, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "crud_typed");
    let coll = db.collection::<Person>("people");
    let ada = Person {
        id: ObjectId::new(),
        name: "Ada".into(),
        age: Some(36),
        born: DateTime::from_millis(-4_728_902_400_000),
        home: Address {
            city: "London".into(),
            zip: None,
        },
        tags: vec!["math".into(), "engines".into()],
    };
    let mut bob = ada.clone();
    bob.id = ObjectId::new();
    bob.name = "Bob".into();
    bob.age = None;
    bob.home.zip = Some("N1".into());
    let c = coll.clone();
    let (a, b) = (ada.clone(), bob.clone());
    let got = run_on(core, move || {
        c.insert_many(&[a, b]).run().unwrap();
        let by_name: Vec<Person> = c
            .find(doc! {})
            .with_options(FindOptions {
                sort: Some(doc! { "name": 1 }),
                ..Default::default()
            })
            .run()
            .unwrap()
            .collect::<may_mongo::Result<_>>()
            .unwrap();
        by_name
    });
    assert_eq!(got, vec![ada.clone(), bob]);
    assert_eq!(
        coll.find_one(doc! { "_id": ada.id }).run().unwrap(),
        Some(ada)
    );
});

both_cores!(insert_many_splits_a_quarter_million_documents, |core| {
    let (client, events) = client_with_events(core);
    let db = common::fresh_db(&client, "crud_many");
    let coll = db.collection::<Document>("small");
    let docs: Vec<Document> = (0..250_000).map(|i| doc! { "i": i }).collect();
    let c = coll.clone();
    let started = Instant::now();
    let result = run_on(core, move || c.insert_many(&docs).run().unwrap());
    let took = started.elapsed();
    assert_eq!(result.inserted_ids.len(), 250_000);
    // At most 100,000 documents per command: at least three commands.
    let inserts = events.count("insert");
    assert!(inserts >= 3, "{inserts} insert commands");
    assert_eq!(coll.count_documents(doc! {}).run().unwrap(), 250_000);
    assert_eq!(
        coll.count_documents(doc! { "i": { "$gte": 249_990 } })
            .run()
            .unwrap(),
        10
    );
    eprintln!(
        "insert_many 250,000 ({}): {inserts} commands, {took:?}",
        core.name()
    );
});

both_cores!(
    a_cursor_with_batch_size_7_returns_each_document_once,
    |core| {
        let (client, events) = client_with_events(core);
        let db = common::fresh_db(&client, "crud_cursor");
        let coll = db.collection::<Document>("docs");
        let docs: Vec<Document> = (0..10_000).map(|i| doc! { "_id": i, "v": i * 2 }).collect();
        coll.insert_many(&docs).ordered(false).run().unwrap();
        let c = coll.clone();
        let seen = run_on(core, move || {
            let cursor = c
                .find(doc! {})
                .with_options(FindOptions {
                    batch_size: Some(7),
                    ..Default::default()
                })
                .run()
                .unwrap();
            let mut seen = vec![0u8; 10_000];
            for d in cursor {
                let d = d.unwrap();
                let id = d.get_i32("_id").unwrap();
                assert_eq!(d.get_i32("v").unwrap(), id * 2);
                seen[id as usize] += 1;
            }
            seen
        });
        assert!(seen.iter().all(|n| *n == 1), "every document exactly once");
        // 10,000 / 7 batches: the first from find, the rest from getMore.
        let get_mores = events.count("getMore");
        assert!((1428..=1430).contains(&get_mores), "{get_mores} getMores");

        // A limit caps the results, whatever the batch size.
        let limited: Vec<_> = coll
            .find(doc! {})
            .with_options(FindOptions {
                batch_size: Some(7),
                limit: Some(20),
                sort: Some(doc! { "_id": 1 }),
                ..Default::default()
            })
            .run()
            .unwrap()
            .map(|d| d.unwrap().get_i32("_id").unwrap())
            .collect();
        assert_eq!(limited, (0..20).collect::<Vec<_>>());
    }
);

both_cores!(
    dropping_a_half_read_cursor_kills_it_in_the_background,
    |core| {
        let (client, events) = client_with_events(core);
        let db = common::fresh_db(&client, "crud_kill");
        let coll = db.collection::<Document>("docs");
        let docs: Vec<Document> = (0..100).map(|i| doc! { "_id": i }).collect();
        coll.insert_many(&docs).run().unwrap();
        let c = coll.clone();
        let (id, drop_took) = run_on(core, move || {
            let mut cursor = c
                .find(doc! {})
                .with_options(FindOptions {
                    batch_size: Some(10),
                    ..Default::default()
                })
                .run()
                .unwrap();
            for _ in 0..15 {
                cursor.next().unwrap().unwrap();
            }
            let id = cursor.id();
            let started = Instant::now();
            drop(cursor);
            (id, started.elapsed())
        });
        assert_ne!(id, 0, "the cursor was still open on the server");
        // The drop only queued it: no round trip on the dropping coroutine or thread.
        assert!(
            drop_took < Duration::from_millis(5),
            "drop took {drop_took:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.count("killCursors") == 0 {
            assert!(Instant::now() < deadline, "no killCursors was sent");
            std::thread::sleep(Duration::from_millis(5));
        }
        // A cursor read to its end needs no killCursors.
        let before = events.count("killCursors");
        assert_eq!(coll.find(doc! {}).run().unwrap().count(), 100);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(events.count("killCursors"), before);
    }
);

both_cores!(find_one_and_update_returns_the_version_asked_for, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "crud_fam");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1, "n": 1 }).run().unwrap();
    let c = coll.clone();
    let (before, after, missing, upserted) = run_on(core, move || {
        let before = c
            .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
            .run()
            .unwrap();
        let after = c
            .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } })
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .run()
            .unwrap();
        let missing = c
            .find_one_and_update(doc! { "_id": 2 }, doc! { "$set": { "n": 9 } })
            .run()
            .unwrap();
        let upserted = c
            .find_one_and_update(doc! { "_id": 3 }, doc! { "$set": { "n": 7 } })
            .with_options(FindOneAndUpdateOptions {
                return_document: Some(ReturnDocument::After),
                upsert: Some(true),
                ..Default::default()
            })
            .run()
            .unwrap();
        (before, after, missing, upserted)
    });
    assert_eq!(before, Some(doc! { "_id": 1, "n": 1 }));
    assert_eq!(after, Some(doc! { "_id": 1, "n": 3 }));
    assert_eq!(missing, None);
    assert_eq!(upserted, Some(doc! { "_id": 3, "n": 7 }));
    let deleted = coll.find_one_and_delete(doc! { "_id": 1 }).run().unwrap();
    assert_eq!(deleted, Some(doc! { "_id": 1, "n": 3 }));
    assert_eq!(coll.find_one(doc! { "_id": 1 }).run().unwrap(), None);
});

both_cores!(
    bulk_write_reports_the_failing_model_and_the_partial_result,
    |core| {
        let client = common::client(core);
        let db = common::fresh_db(&client, "crud_bulk");
        let coll = db.collection::<Document>("c");
        coll.insert_one(doc! { "_id": 5 }).run().unwrap();
        let models = vec![
            WriteModel::InsertOne(doc! { "_id": 1 }),
            WriteModel::InsertOne(doc! { "_id": 2 }),
            WriteModel::update_one(doc! { "_id": 1 }, doc! { "$set": { "x": 1 } }),
            WriteModel::InsertOne(doc! { "_id": 5 }), // duplicate key: model 3
            WriteModel::delete_one(doc! { "_id": 2 }),
        ];
        let c = coll.clone();
        let err = run_on(core, move || c.bulk_write(models).run().unwrap_err());
        let ErrorKind::CollectionBulkWrite(failure) = &*err.kind else {
            panic!("{err:?}");
        };
        assert_eq!(failure.write_errors.len(), 1);
        assert_eq!(failure.write_errors[0].index, 3, "{err}");
        assert_eq!(failure.write_errors[0].code, 11000);
        let partial = &failure.partial_result;
        assert_eq!(partial.inserted_count, 2);
        assert_eq!(partial.modified_count, 1);
        assert_eq!(
            partial.deleted_count, 0,
            "ordered: the delete after the failure did not run"
        );
        assert_eq!(
            partial.inserted_ids.keys().copied().collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(coll.count_documents(doc! {}).run().unwrap(), 3);

        // Unordered: everything but the failure runs.
        let models = vec![
            WriteModel::InsertOne(doc! { "_id": 5 }), // fails
            WriteModel::delete_many(doc! { "_id": { "$in": [1, 2] } }),
            WriteModel::replace_one(doc! { "_id": 9 }, doc! { "r": true }).with_upsert(true),
        ];
        let err = coll.bulk_write(models).ordered(false).run().unwrap_err();
        let ErrorKind::CollectionBulkWrite(failure) = &*err.kind else {
            panic!("{err:?}");
        };
        assert_eq!(failure.write_errors[0].index, 0);
        assert_eq!(failure.partial_result.deleted_count, 2);
        assert_eq!(
            failure.partial_result.upserted_ids.get(&2),
            Some(&Bson::Int32(9))
        );
    }
);

both_cores!(updates_deletes_counts_distinct_and_indexes, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "crud_misc");
    let coll = db.collection::<Document>("c");
    let docs: Vec<Document> = (0..10).map(|i| doc! { "_id": i, "k": i % 3 }).collect();
    coll.insert_many(&docs).run().unwrap();
    let c = coll.clone();
    run_on(core, move || {
        let r = c
            .update_many(doc! { "k": 0 }, doc! { "$set": { "z": true } })
            .run()
            .unwrap();
        assert_eq!((r.matched_count, r.modified_count), (4, 4));
        let r = c
            .update_one(doc! { "_id": 100 }, doc! { "$set": { "k": 7 } })
            .with_options(UpdateOptions {
                upsert: Some(true),
                ..Default::default()
            })
            .run()
            .unwrap();
        assert_eq!(r.upserted_id, Some(Bson::Int32(100)));
        let r = c
            .replace_one(doc! { "_id": 1 }, doc! { "k": 1, "replaced": true })
            .run()
            .unwrap();
        assert_eq!(r.modified_count, 1);
        assert!(
            c.update_one(doc! {}, doc! { "k": 1 }).run().is_err(),
            "not operators"
        );
        assert_eq!(
            c.delete_many(doc! { "k": 2 }).run().unwrap().deleted_count,
            3
        );
        assert_eq!(
            c.delete_one(doc! { "k": 1 }).run().unwrap().deleted_count,
            1
        );
        let mut ks = c.distinct("k", doc! {}).run().unwrap();
        ks.sort_by_key(|b| b.as_i32());
        assert_eq!(ks, vec![Bson::Int32(0), Bson::Int32(1), Bson::Int32(7)]);
        assert_eq!(c.estimated_document_count().run().unwrap(), 7);
        let name = c
            .create_index(IndexModel::new(doc! { "k": 1, "_id": -1 }, None))
            .run()
            .unwrap()
            .index_name;
        assert_eq!(name, "k_1__id_-1");
        let names = c.list_index_names().run().unwrap();
        assert!(names.contains(&name), "{names:?}");
        c.drop_index(&name).run().unwrap();
        let groups: Vec<Document> = c
            .aggregate(vec![
                doc! { "$group": { "_id": "$k", "n": { "$sum": 1 } } },
                doc! { "$sort": { "_id": 1 } },
            ])
            .run()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(groups[0], doc! { "_id": 0, "n": 4 });
    });
    assert!(
        db.list_collection_names()
            .run()
            .unwrap()
            .contains(&"c".to_string())
    );
    assert!(
        client
            .list_database_names()
            .run()
            .unwrap()
            .iter()
            .any(|n| n == db.name())
    );
    coll.drop().run().unwrap();
    coll.drop().run().unwrap(); // a missing collection is fine
    assert!(
        !db.list_collection_names()
            .run()
            .unwrap()
            .contains(&"c".to_string())
    );
});

/// Keeps whole command events.
#[derive(Default)]
struct Events(Mutex<Vec<CommandEvent>>);

both_cores!(
    command_events_carry_the_command_and_reply_and_hide_secrets,
    |core| {
        let events = Arc::new(Events::default());
        let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
        opts.core = core;
        let recorder = events.clone();
        opts.command_event_handler = Some(EventHandler::callback(move |e| {
            recorder.0.lock().unwrap().push(e);
        }));
        let client = Client::with_options(opts).unwrap();
        let db = common::fresh_db(&client, "crud_events");
        let coll = db.collection::<Document>("c");
        coll.insert_many(&[doc! { "_id": 1 }, doc! { "_id": 2 }])
            .run()
            .unwrap();
        // A SASL command: whatever the server answers, its contents are not shown.
        let _ = db
            .run_command(doc! { "saslStart": 1, "mechanism": "PLAIN", "payload": "secret" })
            .run();
        let events = events.0.lock().unwrap();
        let insert = events
            .iter()
            .find_map(|e| match e {
                CommandEvent::Started(e) if e.command_name == "insert" => Some(e.command.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(insert.get_str("insert").unwrap(), "c");
        assert_eq!(
            insert.get_array("documents").unwrap(),
            &vec![
                Bson::Document(doc! { "_id": 1 }),
                Bson::Document(doc! { "_id": 2 })
            ],
            "the document sequence shown as an array"
        );
        let reply = events
            .iter()
            .find_map(|e| match e {
                CommandEvent::Succeeded(e) if e.command_name == "insert" => Some(e.reply.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(reply.get_i32("n").ok(), Some(2), "{reply}");
        let sasl = events
            .iter()
            .find_map(|e| match e {
                CommandEvent::Started(e) if e.command_name == "saslStart" => {
                    Some(e.command.clone())
                }
                _ => None,
            })
            .unwrap();
        assert!(sasl.is_empty(), "redacted: {sasl}");
        assert!(!format!("{events:?}").contains("secret"));
    }
);

// The official driver's option types, as they go out: an index's options, a hint, a
// collation, an operation's own write and read concern. What a server makes of the less common
// ones (FerretDB has no collation) is not the point: the commands as sent are.
both_cores!(options_go_out_as_the_server_takes_them, |core| {
    use may_mongo::options::{
        Collation, CollationStrength, CountOptions, Hint, IndexOptions, InsertOneOptions,
        ReadConcern, WriteConcern,
    };
    let events = Arc::new(Events::default());
    let mut opts = ClientOptions::parse(common::uri()).run().unwrap();
    opts.core = core;
    let recorder = events.clone();
    opts.command_event_handler = Some(EventHandler::callback(move |e| {
        recorder.0.lock().unwrap().push(e);
    }));
    let client = Client::with_options(opts).unwrap();
    let db = common::fresh_db(&client, "crud_option_shapes");
    let coll = db.collection::<Document>("c");
    run_on(core, move || {
        let index = IndexModel::builder()
            .keys(doc! { "k": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("k_unique".to_string())
                    .build(),
            )
            .build();
        assert_eq!(
            coll.create_index(index).run().unwrap().index_name,
            "k_unique"
        );
        let options = InsertOneOptions::builder()
            .write_concern(WriteConcern::nodes(1))
            .build();
        coll.insert_one(doc! { "k": 1 })
            .with_options(options)
            .run()
            .unwrap();
        let options = FindOptions::builder()
            .hint(Hint::Name("k_unique".into()))
            .build();
        assert_eq!(
            coll.find(doc! {})
                .with_options(options)
                .run()
                .unwrap()
                .count(),
            1
        );
        let options = FindOptions::builder()
            .hint(Hint::Keys(doc! { "k": 1 }))
            .collation(
                Collation::builder()
                    .locale("en")
                    .strength(CollationStrength::Secondary)
                    .build(),
            )
            .build();
        let _ = coll
            .find(doc! {})
            .with_options(options)
            .run()
            .map(|c| c.count());
        let options = CountOptions::builder()
            .read_concern(ReadConcern::local())
            .build();
        let _ = coll.count_documents(doc! {}).with_options(options).run();
    });
    let events = events.0.lock().unwrap();
    let sent = |name: &str| -> Vec<Document> {
        events
            .iter()
            .filter_map(|e| match e {
                CommandEvent::Started(e) if e.command_name == name => Some(e.command.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        sent("createIndexes")[0].get_array("indexes").unwrap(),
        &vec![Bson::Document(
            doc! { "key": { "k": 1 }, "name": "k_unique", "unique": true }
        )]
    );
    assert_eq!(
        sent("insert")[0].get_document("writeConcern").unwrap(),
        &doc! { "w": 1 }
    );
    let finds = sent("find");
    assert_eq!(finds[0].get_str("hint").unwrap(), "k_unique");
    assert_eq!(finds[1].get_document("hint").unwrap(), &doc! { "k": 1 });
    assert_eq!(
        finds[1].get_document("collation").unwrap(),
        &doc! { "locale": "en", "strength": 2 }
    );
    assert_eq!(
        sent("aggregate")[0].get_document("readConcern").unwrap(),
        &doc! { "level": "local" }
    );
});

both_cores!(
    a_document_nested_100_deep_decodes_on_the_default_stack,
    |core| {
        let client = common::client(core);
        let db = common::fresh_db(&client, "crud_nesting");
        let coll = db.collection::<Document>("deep");
        // Built (and inserted) here, on the test's thread: serialising recurses too.
        let mut deep = doc! { "leaf": true };
        for _ in 0..99 {
            deep = doc! { "d": deep };
        }
        coll.insert_one(doc! { "_id": 1, "d": deep }).run().unwrap();
        let c = coll.clone();
        // In a coroutine with may's default stack (nothing in this test binary changes it).
        let depth = may::go!(move || {
            let mut found = 0;
            for d in c.find(doc! {}).run().unwrap() {
                // By reference: cloning a deep Document recurses (bson's Clone), which is
                // the caller's stack to spend, not the driver's.
                let d = d.unwrap();
                let mut cur = &d;
                while let Ok(inner) = cur.get_document("d") {
                    cur = inner;
                    found += 1;
                }
            }
            let one = c.find_one(doc! { "_id": 1 }).run().unwrap().unwrap();
            assert!(one.contains_key("d"));
            found
        })
        .join()
        .expect("no stack overflow");
        assert_eq!(depth, 100);
    }
);

both_cores!(
    a_tailable_await_cursor_sees_documents_inserted_later,
    |core| {
        let client = common::client(core);
        let db = common::fresh_db(&client, "crud_tail");
        db.create_collection("log")
            .capped(true)
            .size(1_000_000)
            .run()
            .unwrap();
        let coll = db.collection::<Document>("log");
        coll.insert_many(&[doc! { "n": 1 }, doc! { "n": 2 }, doc! { "n": 3 }])
            .run()
            .unwrap();
        let writer = coll.clone();
        let c = coll.clone();
        let seen = run_on(core, move || {
            let mut cursor = c
                .find(doc! {})
                .with_options(FindOptions {
                    batch_size: Some(2),
                    cursor_type: Some(may_mongo::CursorType::TailableAwait),
                    max_await_time: Some(Duration::from_millis(200)),
                    ..Default::default()
                })
                .run()
                .unwrap();
            let mut seen = Vec::new();
            // The three that exist, read zero-copy from the raw batch.
            while seen.len() < 3 {
                assert!(cursor.advance().unwrap(), "ran out after {seen:?}");
                seen.push(cursor.current().get_i32("n").unwrap());
            }
            // Nothing new yet: an empty await returns false, and the cursor stays open.
            assert!(!cursor.advance().unwrap());
            assert!(cursor.is_alive());
            writer.insert_one(doc! { "n": 4 }).run().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !cursor.advance().unwrap() {
                assert!(Instant::now() < deadline, "the new document never came");
            }
            seen.push(cursor.deserialize_current().unwrap().get_i32("n").unwrap());
            seen
        });
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }
);

both_cores!(a_bulk_model_refuses_command_level_options, |core| {
    let client = common::client(core);
    let db = common::fresh_db(&client, "crud_model_options");
    let coll = db.collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).run().unwrap();
    // `comment` belongs to the whole bulk write: on one model it would be silently lost.
    let model = WriteModel::UpdateOne {
        filter: doc! { "_id": 1 },
        update: doc! { "$set": { "x": 1 } }.into(),
        options: UpdateOptions {
            comment: Some("mine".into()),
            ..UpdateOptions::default()
        },
    };
    let c = coll.clone();
    let err = run_on(core, move || c.bulk_write(vec![model]).run().unwrap_err());
    assert!(
        matches!(&*err.kind, ErrorKind::InvalidArgument { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("BulkWriteOptions"), "{err}");
    // Nothing was written.
    assert_eq!(
        coll.find_one(doc! { "_id": 1 }).run().unwrap(),
        Some(doc! { "_id": 1 })
    );
    // Where it belongs, the same comment travels with the command.
    let options = may_mongo::BulkWriteOptions {
        comment: Some("mine".into()),
        ..Default::default()
    };
    let r = coll
        .bulk_write(vec![WriteModel::update_one(
            doc! { "_id": 1 },
            doc! { "$set": { "x": 1 } },
        )])
        .with_options(options)
        .run()
        .unwrap();
    assert_eq!(r.modified_count, 1);
});

// Dropping what is not there. MongoDB answers a `drop` of a missing collection with code 26
// (NamespaceNotFound), old servers and mongo-java-server with code 0 and "ns not found",
// FerretDB with ok: 1; the driver reports success for each, as MongoDB's drivers do. A missing
// database drops fine everywhere. A missing index is a real error (IndexNotFound, 27): the
// caller named something that does not exist.
both_cores!(dropping_what_is_not_there, |core| {
    let client = common::client(core);
    run_on(core, move || {
        let db = common::fresh_db(&client, "drop_missing");
        db.collection::<Document>("never_created")
            .drop()
            .run()
            .unwrap();
        client
            .database(&format!("t_never_created_{}", core.name()))
            .drop()
            .run()
            .unwrap();
        let coll = db.collection::<Document>("c");
        coll.insert_one(doc! { "x": 1 }).run().unwrap();
        let e = coll.drop_index("no_such_index").run().unwrap_err();
        assert!(
            matches!(&*e.kind, may_mongo::ErrorKind::Command(c) if c.code == 27),
            "{e:?}"
        );
        assert!(!e.is_ns_not_found());
        coll.drop().run().unwrap();
        coll.drop().run().unwrap();
        assert!(
            !db.list_collection_names()
                .run()
                .unwrap()
                .contains(&"c".to_string())
        );
    });
});

// `rename` (`renameCollection`, sent to admin): the documents follow the new name, a name
// already taken is the server's error unless `drop_target` is set.
both_cores!(
    rename_moves_the_documents_and_respects_drop_target,
    |core| {
        let client = common::client(core);
        let db = common::fresh_db(&client, "crud_rename");
        let (a, b, c) = (
            db.collection::<Document>("a"),
            db.collection::<Document>("b"),
            db.collection::<Document>("c"),
        );
        run_on(core, move || {
            a.insert_many([doc! { "_id": 1 }, doc! { "_id": 2 }])
                .run()
                .unwrap();
            c.insert_one(doc! { "_id": "in c" }).run().unwrap();
            a.rename("b").run().unwrap();
            assert_eq!(b.count_documents(doc! {}).run().unwrap(), 2);
            assert_eq!(a.count_documents(doc! {}).run().unwrap(), 0);
            let taken = b.rename("c").run().unwrap_err();
            assert!(matches!(*taken.kind, ErrorKind::Command(_)), "{taken}");
            assert_eq!(c.count_documents(doc! {}).run().unwrap(), 1, "c untouched");
            match b.rename("c").drop_target(true).run() {
                Ok(()) => {
                    let ids: Vec<Bson> = c.distinct("_id", doc! {}).run().unwrap();
                    assert_eq!(ids.len(), 2, "{ids:?}");
                    assert!(!ids.contains(&Bson::String("in c".into())), "{ids:?}");
                }
                // FerretDB 1.24 has no dropTarget yet: its own NotImplemented, code 238.
                Err(e) if matches!(&*e.kind, ErrorKind::Command(c) if c.code == 238) => {
                    assert_eq!(b.count_documents(doc! {}).run().unwrap(), 2, "b untouched");
                }
                Err(e) => panic!("rename with drop_target: {e}"),
            }
        });
    }
);
