//! Overload: more outstanding async calls than may can have coroutines. A test binary of its
//! own, as it makes tens of thousands of coroutines.

mod common;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use common::block_on;
use common::mock::{Action, MockServer, hello_reply};
use may_mongo::Core;

#[test]
fn more_async_calls_than_may_can_have_coroutines_wait_their_turn() {
    // 33,000 async calls outstanding at once on the coroutine core: past the ~32,700
    // coroutines may can keep under the default vm.max_map_count. A coroutine per call made
    // the last few hundred fail to spawn (or abort the process); now at most
    // MAX_JOB_COROUTINES run and the rest queue. The server holds every reply until all
    // calls have been made, so all are outstanding together.
    const CALLS: usize = 33_000;
    let gate = Arc::new(AtomicBool::new(false));
    let server = MockServer::start({
        let gate = gate.clone();
        move |req, _| match req.command.as_str() {
            "hello" | "isMaster" => Action::Reply(hello_reply()),
            _ => {
                while !gate.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Action::Reply(doc! {
                    "ok": 1.0,
                    "cursor": { "id": 0i64, "ns": "db.c", "firstBatch": [ { "_id": 1 } ] },
                })
            }
        }
    });
    let client = server.client(
        Core::Coroutine,
        "",
        "maxPoolSize=20&waitQueueTimeoutMS=0",
        |_| {},
    );
    let coll = client.database("db").collection::<Document>("c");
    let started = Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|_| coll.find_one(doc! {}).into_future())
        .collect();
    let submitted = started.elapsed();
    gate.store(true, Ordering::SeqCst);
    let mut found = 0;
    for call in calls {
        if block_on(call).expect("every call completes").is_some() {
            found += 1;
        }
    }
    assert_eq!(found, CALLS);
    eprintln!(
        "{CALLS} async calls: submitted in {submitted:?}, all answered after {:?}",
        started.elapsed()
    );
}
