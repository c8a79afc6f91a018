//! The async API (`may_mongo::motor`) against the real server, on both cores, under tokio's
//! multi-thread and current-thread runtimes and under `futures::executor::block_on`.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_tests::{client, client_with};
use bson::{Bson, Document, doc};
use futures::{StreamExt, TryStreamExt};
use may_mongo::motor::Collection;
use may_mongo::{Core, ErrorKind, IndexModel, ReturnDocument, WriteModel};
use serde::{Deserialize, Serialize};

const CORES: [Core; 2] = [Core::Coroutine, Core::Threaded];

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh, empty collection for one test on one core.
fn fresh<T: Send + Sync + 'static>(client: &may_mongo::motor::Client, test: &str) -> Collection<T> {
    let db = client.database(&format!("async_{test}_{}", client.core().name()));
    futures::executor::block_on(db.drop().into_future()).unwrap();
    db.collection(test)
}

#[test]
fn every_operation_family_works() {
    for core in CORES {
        let client = client(core);
        let coll: Collection<Document> = fresh(&client, "families");
        multi_thread(2).block_on(async {
            // Inserts.
            let id = coll.insert_one(doc! { "n": 1, "tag": "a" }).await.unwrap();
            assert!(matches!(id.inserted_id, Bson::ObjectId(_)));
            let docs: Vec<Document> = (2..=10)
                .map(|n| doc! { "n": n, "tag": if n % 2 == 0 { "even" } else { "odd" } })
                .collect();
            assert_eq!(coll.insert_many(docs).await.unwrap().inserted_ids.len(), 9);

            // Reads: find_one, find as a stream (small batches: several getMores), count,
            // distinct, aggregate.
            let one = coll.find_one(doc! { "n": 5 }).await.unwrap().unwrap();
            assert_eq!(one.get_str("tag").unwrap(), "odd");
            let cursor = coll
                .find(doc! {})
                .batch_size(3)
                .sort(doc! { "n": 1 })
                .await
                .unwrap();
            let all: Vec<Document> = cursor.try_collect().await.unwrap();
            let ns: Vec<i32> = all.iter().map(|d| d.get_i32("n").unwrap()).collect();
            assert_eq!(ns, (1..=10).collect::<Vec<_>>());
            assert_eq!(
                coll.count_documents(doc! { "tag": "even" }).await.unwrap(),
                5
            );
            assert_eq!(coll.estimated_document_count().await.unwrap(), 10);
            let mut tags = coll.distinct("tag", doc! {}).await.unwrap();
            tags.sort_by_key(|b| b.to_string());
            assert_eq!(tags.len(), 3);
            let pipeline = vec![
                doc! { "$match": { "tag": "odd" } },
                doc! { "$group": { "_id": null, "total": { "$sum": "$n" } } },
            ];
            let sums: Vec<Document> = coll
                .aggregate(pipeline)
                .await
                .unwrap()
                .collect_all()
                .await
                .unwrap();
            assert_eq!(sums[0].get_i32("total").unwrap(), 3 + 5 + 7 + 9);

            // Updates, replace, find-and-modify, deletes.
            let r = coll
                .update_many(doc! { "tag": "even" }, doc! { "$inc": { "n": 100 } })
                .await
                .unwrap();
            assert_eq!(r.modified_count, 5);
            let r = coll
                .update_one(doc! { "n": 1 }, doc! { "$set": { "first": true } })
                .upsert(false)
                .await
                .unwrap();
            assert_eq!(r.modified_count, 1);
            let r = coll
                .replace_one(doc! { "n": 3 }, doc! { "n": 3, "tag": "replaced" })
                .await
                .unwrap();
            assert_eq!(r.matched_count, 1);
            let before = coll
                .find_one_and_update(doc! { "n": 5 }, doc! { "$set": { "tag": "five" } })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(before.get_str("tag").unwrap(), "odd");
            let gone = coll
                .find_one_and_delete(doc! { "n": 7 })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(gone.get_i32("n").unwrap(), 7);
            let replaced = coll
                .find_one_and_replace(doc! { "n": 9 }, doc! { "n": 9, "tag": "nine" })
                .return_document(ReturnDocument::After)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(replaced.get_str("tag").unwrap(), "nine");
            assert_eq!(
                coll.delete_many(doc! { "n": { "$gt": 100 } })
                    .await
                    .unwrap()
                    .deleted_count,
                5
            );
            assert_eq!(
                coll.delete_one(doc! { "n": 1 })
                    .await
                    .unwrap()
                    .deleted_count,
                1
            );

            // Bulk write, collection-level.
            let models = vec![
                WriteModel::InsertOne(doc! { "n": 20 }),
                WriteModel::DeleteOne {
                    filter: doc! { "n": 3 },
                    options: Default::default(),
                },
            ];
            let r = coll.bulk_write(models).ordered(true).await.unwrap();
            assert_eq!((r.inserted_count, r.deleted_count), (1, 1));

            // Indexes.
            let name = coll
                .create_index(IndexModel::builder().keys(doc! { "tag": 1 }).build())
                .await
                .unwrap()
                .index_name;
            let indexes: Vec<IndexModel> = coll
                .list_indexes()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert!(
                indexes
                    .iter()
                    .any(|i| i.options.as_ref().and_then(|o| o.name.as_deref())
                        == Some(name.as_str()))
            );
            coll.drop_index(name).await.unwrap();

            // Database and client level.
            let db = client.database(&format!("async_families_{}", core.name()));
            assert_eq!(
                db.run_command(doc! { "ping": 1 })
                    .await
                    .unwrap()
                    .get_f64("ok")
                    .unwrap(),
                1.0
            );
            let names = db.list_collection_names().await.unwrap();
            assert!(names.contains(&"families".to_string()), "{names:?}");
            assert!(
                client
                    .list_database_names()
                    .await
                    .unwrap()
                    .contains(&db.name().to_string())
            );
            // FerretDB 1.24 is older than MongoDB 8.0: the client-level bulkWrite says so.
            let err = client
                .bulk_write(vec![
                    coll.client_model(WriteModel::InsertOne(doc! { "x": 1 }))
                        .unwrap(),
                ])
                .await
                .unwrap_err();
            assert!(
                matches!(&*err.kind, ErrorKind::IncompatibleServer { .. }),
                "{err:?}"
            );

            // A request: every call inside uses one connection and reads its own writes.
            let ns = coll.namespace();
            let (db_name, coll_name) = ns
                .split_once('.')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap();
            let seen = client
                .start_request()
                .run(move |c| {
                    let coll = c.database(&db_name).collection::<Document>(&coll_name);
                    coll.insert_one(doc! { "_id": "mine" }).run()?;
                    coll.find_one(doc! { "_id": "mine" }).run()
                })
                .await
                .unwrap();
            assert!(seen.is_some());
            coll.drop().await.unwrap();
        });
        client.blocking().shutdown();
    }
}

#[test]
fn a_thousand_concurrent_futures_on_two_tokio_workers() {
    for core in CORES {
        let client = client(core);
        let coll: Collection<Document> = fresh(&client, "thousand");
        let rt = multi_thread(2);
        let started = Instant::now();
        let results = rt.block_on(async {
            let tasks: Vec<_> = (0..1000)
                .map(|i| {
                    let coll = coll.clone();
                    tokio::spawn(async move {
                        coll.insert_one(doc! { "_id": i, "sq": i * i }).await?;
                        coll.find_one(doc! { "_id": i }).await
                    })
                })
                .collect();
            futures::future::join_all(tasks).await
        });
        let mut ok = 0;
        for (i, r) in results.into_iter().enumerate() {
            let d = r.unwrap().unwrap().unwrap();
            assert_eq!(d.get_i32("sq").unwrap(), (i * i) as i32);
            ok += 1;
        }
        assert_eq!(ok, 1000);
        let stats = client.pool_stats();
        eprintln!(
            "{core:?}: 1,000 insert+find pairs in {:?}; {} connections",
            started.elapsed(),
            stats.total
        );
        assert!(stats.total <= 100, "{stats:?}");
        assert_eq!(stats.checked_out, 0);
        client.blocking().shutdown();
    }
}

#[test]
fn a_current_thread_runtime_keeps_running_while_operations_wait() {
    for core in CORES {
        let client = client(core);
        let coll: Collection<Document> = fresh(&client, "ticking");
        let rt = current_thread();
        let (ticks_during, done) = rt.block_on(async {
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let ticker = {
                let (ticks, stop) = (ticks.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        ticks.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            };
            let before = ticks.load(Ordering::Relaxed);
            let ops = (0..100).map(|i| {
                let coll = coll.clone();
                async move {
                    coll.insert_one(doc! { "_id": i }).await?;
                    coll.find_one(doc! { "_id": i }).await
                }
            });
            let results = futures::future::join_all(ops).await;
            let during = ticks.load(Ordering::Relaxed) - before;
            stop.store(true, Ordering::Relaxed);
            ticker.await.unwrap();
            (
                during,
                results
                    .into_iter()
                    .filter(|r| matches!(r, Ok(Some(_))))
                    .count(),
            )
        });
        assert_eq!(done, 100);
        // The runtime has one thread. Had any operation blocked it, the ticker could not
        // have run while the operations were waiting for the server.
        eprintln!("{core:?}: the ticker ran {ticks_during} times while 100 operations waited");
        assert!(ticks_during > 100, "{core:?}: {ticks_during}");
        client.blocking().shutdown();
    }
}

#[test]
fn futures_executor_block_on_works_too() {
    for core in CORES {
        let client = client(core);
        let coll: Collection<Document> = fresh(&client, "block_on");
        let n = futures::executor::block_on(async {
            coll.insert_many((0..50).map(|i| doc! { "i": i }))
                .ordered(false)
                .await
                .unwrap();
            let mut stream = coll.find(doc! {}).batch_size(7).await.unwrap();
            let mut n = 0;
            while let Some(d) = stream.next().await {
                d.unwrap();
                n += 1;
            }
            n
        });
        assert_eq!(n, 50);
        client.blocking().shutdown();
    }
}

#[test]
fn dropping_a_thousand_futures_in_flight_leaves_the_pool_clean() {
    for core in CORES {
        let client = client_with(core, |o| o.max_pool_size = 50);
        let coll: Collection<Document> = fresh(&client, "dropped");
        let rt = multi_thread(2);
        rt.block_on(async {
            // Start 1,000 writes and drop every future at once: most are still waiting for a
            // connection or for the server. (`into_future` starts the work: an action is only
            // a description until then.)
            let futures: Vec<_> = (0..1000)
                .map(|i| coll.insert_one(doc! { "_id": i }).into_future())
                .collect();
            drop(futures);
            // The operations finish in the background. The pool's counters alone cannot say
            // when: on the threaded core, jobs still queued for a pool thread hold no
            // connection and wait for none, so the pool can look idle between two of them.
            // So first every write must land (each `_id` once: a second would be a
            // duplicate-key error), then the pool must settle.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let n = coll.count_documents(doc! {}).await.unwrap();
                assert!(n <= 1000, "{core:?}: {n}");
                if n == 1000 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{core:?}: only {n} of the 1,000 dropped writes landed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            loop {
                let s = client.pool_stats();
                if s.checked_out == 0 && s.connecting == 0 && s.waiters == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{core:?}: pool never settled: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let s = client.pool_stats();
            assert!(s.total <= 50, "{s:?}");
            assert_eq!(
                s.idle, s.total,
                "{core:?}: every connection back and idle: {s:?}"
            );
            // And the client is still usable.
            coll.insert_one(doc! { "_id": "after" }).await.unwrap();
            assert!(
                coll.find_one(doc! { "_id": "after" })
                    .await
                    .unwrap()
                    .is_some()
            );
        });
        client.blocking().shutdown();
    }
}

/// A type whose serialisation panics.
#[derive(Debug, Deserialize)]
struct Explosive;

impl Serialize for Explosive {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this document explodes when serialised")
    }
}

#[test]
fn errors_and_panics_arrive_as_errors() {
    for core in CORES {
        let client = client(core);
        let coll: Collection<Document> = fresh(&client, "errors");
        let rt = multi_thread(2);
        rt.block_on(async {
            coll.insert_one(doc! { "_id": 1 }).await.unwrap();
            let err = coll.insert_one(doc! { "_id": 1 }).await.unwrap_err();
            assert!(matches!(&*err.kind, ErrorKind::Write(_)), "{err:?}");
            let err = client
                .database("admin")
                .run_command(doc! { "noSuchCommand": 1 })
                .await
                .unwrap_err();
            assert!(matches!(&*err.kind, ErrorKind::Command(_)), "{err:?}");

            let explosive: Collection<Explosive> = coll.clone_with_type();
            let err = explosive.insert_one(Explosive).await.unwrap_err();
            assert!(matches!(&*err.kind, ErrorKind::Panicked { .. }), "{err:?}");
            assert!(err.to_string().contains("explodes"), "{err}");
            // The runner survived the panic.
            assert!(coll.find_one(doc! { "_id": 1 }).await.unwrap().is_some());
        });
        client.blocking().shutdown();
    }
}

#[test]
fn a_client_made_from_a_uri_off_the_executor() {
    let uri = async_tests::uri();
    for core in CORES {
        let rt = current_thread();
        let names = rt.block_on(async {
            let uri = format!("{uri}{}core={}", sep(&uri), core.name());
            let client = may_mongo::motor::Client::with_uri_str(&uri).await.unwrap();
            assert_eq!(client.core(), core);
            let names = client.list_database_names().await.unwrap();
            client.shutdown().await;
            names
        });
        assert!(names.iter().all(|n| !n.is_empty()));
        // A malformed URI is an error, delivered through the future.
        let err = rt
            .block_on(may_mongo::motor::Client::with_uri_str("mongodb://"))
            .unwrap_err();
        assert!(
            matches!(&*err.kind, ErrorKind::InvalidArgument { .. }),
            "{err:?}"
        );
    }
}

/// What joins one more option to `uri`: `?` or `&`.
fn sep(uri: &str) -> &'static str {
    match uri.split_once("://").map(|(_, rest)| rest.contains('?')) {
        Some(true) => "&",
        _ if uri.ends_with('/') => "?",
        _ => "/?",
    }
}

/// Counts the commands the client starts, by name.
#[derive(Default)]
struct Commands(std::sync::Mutex<Vec<String>>);

impl Commands {
    fn handler(me: Arc<Commands>) -> may_mongo::EventHandler<may_mongo::CommandEvent> {
        may_mongo::EventHandler::callback(move |event| {
            if let may_mongo::CommandEvent::Started(e) = event {
                me.0.lock().unwrap().push(e.command_name);
            }
        })
    }

    fn count(&self, name: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|n| *n == name).count()
    }
}

#[test]
fn dropping_a_stream_part_way_closes_its_cursor() {
    for core in CORES {
        let commands = Arc::new(Commands::default());
        let handler = commands.clone();
        let client = client_with(core, move |o| {
            o.command_event_handler = Some(Commands::handler(handler))
        });
        let coll: Collection<Document> = fresh(&client, "dropped_stream");
        multi_thread(2).block_on(async {
            coll.insert_many((0..20).map(|i| doc! { "i": i }))
                .await
                .unwrap();
            // Read to the end: no killCursors is needed.
            let all: Vec<Document> = coll
                .find(doc! {})
                .batch_size(5)
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(all.len(), 20);
            assert_eq!(commands.count("killCursors"), 0);
            // Read one document and drop the stream: the server cursor is still open.
            let mut stream = coll.find(doc! {}).batch_size(5).await.unwrap();
            stream.next().await.unwrap().unwrap();
            drop(stream);
            let deadline = Instant::now() + Duration::from_secs(10);
            while commands.count("killCursors") == 0 {
                assert!(
                    Instant::now() < deadline,
                    "{core:?}: no killCursors was sent"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 20);
        });
        client.blocking().shutdown();
    }
}
