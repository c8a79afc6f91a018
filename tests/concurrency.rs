//! Many callers on one client: coroutines, OS threads, and both at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bson::{Document, doc};
use may_mongo::{Client, Core};

/// Each task inserts its own document and reads it back; returns how many read back right.
fn insert_and_read(coll: &may_mongo::Collection<Document>, id: i64) -> bool {
    // String ids: FerretDB's SQLite backend pushes string and ObjectId `_id` filters down to
    // SQL, but scans the collection for integer ids.
    let payload = format!("task-{id}");
    coll.insert_one(doc! { "_id": &payload, "payload": &payload })
        .run()
        .unwrap();
    let got = coll.find_one(doc! { "_id": &payload }).run().unwrap();
    got.and_then(|d| d.get_str("payload").ok().map(str::to_string)) == Some(payload)
}

#[test]
fn thousand_coroutines_each_read_their_own_document() {
    let client = common::client(Core::Coroutine);
    let db = common::fresh_db(&client, "thousand_co");
    let coll = db.collection::<Document>("c");
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let coll = coll.clone();
            may::go!(move || insert_and_read(&coll, i))
        })
        .collect();
    let good = handles
        .into_iter()
        .map(|h| h.join().expect("coroutine panicked"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(good, 1000);
    let stats = client.pool_stats();
    assert!(stats.total <= 100, "maxPoolSize respected: {stats:?}");
    assert_eq!(stats.waiters, 0);
    assert_eq!(stats.idle, stats.total, "every connection came back");
    let n = db
        .run_command(doc! { "count": "c" })
        .run()
        .unwrap()
        .get_i32("n")
        .unwrap();
    assert_eq!(n, 1000);
}

#[test]
fn sixty_four_threads_on_the_threaded_core() {
    let client = common::client(Core::Threaded);
    let db = common::fresh_db(&client, "threads64");
    let coll = db.collection::<Document>("c");
    let handles: Vec<_> = (0..64)
        .map(|t| {
            let coll = coll.clone();
            std::thread::spawn(move || {
                (0..10)
                    .filter(|k| insert_and_read(&coll, t * 10 + k))
                    .count()
            })
        })
        .collect();
    let good: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(good, 640);
    let stats = client.pool_stats();
    assert!(stats.total <= 64, "{stats:?}");
    assert_eq!(stats.idle, stats.total);
}

#[test]
fn coroutines_and_threads_share_one_client() {
    let client = common::client(Core::Coroutine);
    let db = common::fresh_db(&client, "mixed");
    let coll = db.collection::<Document>("c");
    let good = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..8 {
        let (coll, good) = (coll.clone(), good.clone());
        threads.push(std::thread::spawn(move || {
            for k in 0..25 {
                if insert_and_read(&coll, 10_000 + t * 100 + k) {
                    good.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let coroutines: Vec<_> = (0..500)
        .map(|i| {
            let (coll, good) = (coll.clone(), good.clone());
            may::go!(move || {
                if insert_and_read(&coll, i) {
                    good.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in coroutines {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(good.load(Ordering::Relaxed), 500 + 8 * 25);
    let stats = client.pool_stats();
    assert_eq!(stats.idle, stats.total);
}

#[test]
fn small_pool_queues_callers_fairly() {
    // 200 coroutines through a pool of 2: everyone waits their turn, nobody is lost.
    let mut opts = may_mongo::ClientOptions::parse(common::uri())
        .run()
        .unwrap();
    opts.max_pool_size = 2;
    let client = Client::with_options(opts).unwrap();
    let db = common::fresh_db(&client, "smallpool");
    let coll = db.collection::<Document>("c");
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let coll = coll.clone();
            may::go!(move || insert_and_read(&coll, i))
        })
        .collect();
    let good = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|b| *b)
        .count();
    assert_eq!(good, 200);
    assert_eq!(client.pool_stats().total, 2);
}

#[test]
fn client_made_inside_a_default_stack_coroutine() {
    // may's default stack (32 KiB) unless the process configured otherwise; this test binary
    // does not change it. See notes/ for the measured stack use.
    let uri = common::uri();
    let h = may::go!(move || {
        let client = Client::with_uri_str(&uri).unwrap();
        let db = client.database("t_default_stack");
        let coll = db.collection::<Document>("c");
        let id = coll
            .insert_one(doc! { "a": { "b": [1, 2, 3] } })
            .run()
            .unwrap()
            .inserted_id;
        let back = coll.find_one(doc! { "_id": id }).run().unwrap().unwrap();
        let ping = db.run_command(doc! { "ping": 1 }).run().unwrap();
        client.shutdown();
        (back.get_document("a").is_ok(), ping.get_f64("ok").unwrap())
    });
    assert_eq!(h.join().expect("no stack overflow"), (true, 1.0));
    assert_eq!(
        may::config().get_stack_size(),
        0x1000,
        "default stack in words"
    );
}
