//! Change streams after the Change Streams spec: the `aggregate` they send, how they resume,
//! and that a resume after a primary step-down loses and repeats no event.
//!
//! No server here has change streams (FerretDB 1.24 and mongo-java-server refuse
//! `$changeStream`), so a scripted three-member replica set answers as the spec says: a shared
//! log of change events, each with its resume token `{ _data: "<n>" }`; an `aggregate` with
//! `$changeStream` opens a cursor at the end of the log, or after the token it is given
//! (`resumeAfter` / `startAfter`), or at a cluster time; each `getMore` returns up to two
//! events and the post-batch resume token. Only the primary answers; a member that steps down
//! cuts its connections, as a real one does.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Document, Timestamp, doc, oid::ObjectId};
use common::mock::{Action, MockServer, Request};
use common::scripted::client;
use common::{block_on, run_on};
use may_mongo::change_stream::{ChangeStreamEvent, OperationType};
use may_mongo::{Core, ErrorKind};

#[derive(Default)]
struct Log {
    /// Event `n` is `events[n]`.
    events: Vec<Document>,
    /// Open cursors: id → index of the next event to return, and whether the stream's
    /// pipeline removes `_id` (`$project: { _id: 0 }`).
    cursors: HashMap<i64, (usize, bool)>,
}

struct ReplicaSet {
    members: Vec<MockServer>,
    primary: Arc<AtomicUsize>,
    term: Arc<AtomicUsize>,
    log: Arc<Mutex<Log>>,
}

fn token(n: usize) -> Document {
    doc! { "_data": format!("{n:08}") }
}

/// The `$changeStream` stage of an `aggregate` the server received.
fn stage_of(aggregate: &Request) -> Document {
    aggregate.body.get_array("pipeline").unwrap()[0]
        .as_document()
        .unwrap()
        .get_document("$changeStream")
        .unwrap()
        .clone()
}

fn index_after(token: &Document) -> usize {
    token.get_str("_data").unwrap().parse::<usize>().unwrap() + 1
}

impl ReplicaSet {
    fn start() -> ReplicaSet {
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let primary = Arc::new(AtomicUsize::new(0));
        let term = Arc::new(AtomicUsize::new(1));
        let log: Arc<Mutex<Log>> = Arc::default();
        let next_cursor = Arc::new(AtomicI64::new(100));
        let members = (0..3)
            .map(|me| {
                let (hosts, primary, term, log, next_cursor) = (
                    hosts.clone(),
                    primary.clone(),
                    term.clone(),
                    log.clone(),
                    next_cursor.clone(),
                );
                MockServer::start(move |req, _| {
                    let hosts = hosts.lock().unwrap().clone();
                    script(me, req, &hosts, &primary, &term, &log, &next_cursor)
                })
            })
            .collect::<Vec<_>>();
        *hosts.lock().unwrap() = members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        ReplicaSet {
            members,
            primary,
            term,
            log,
        }
    }

    fn uri(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        format!(
            "mongodb://{}/?replicaSet=rs&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=10000",
            hosts.join(",")
        )
    }

    /// Appends `n` insert events.
    fn write(&self, n: usize) {
        let mut log = self.log.lock().unwrap();
        for _ in 0..n {
            let i = log.events.len();
            log.events.push(doc! {
                "_id": token(i),
                "operationType": "insert",
                "ns": { "db": "db", "coll": "c" },
                "documentKey": { "_id": i as i64 },
                "fullDocument": { "_id": i as i64, "n": i as i64 },
                "clusterTime": Timestamp { time: 1_700_000_000, increment: i as u32 + 1 },
            });
        }
    }

    fn elect(&self, new: usize) {
        self.term.fetch_add(1, Ordering::SeqCst);
        self.primary.store(new, Ordering::SeqCst);
    }

    fn named(&self, command: &str) -> Vec<(usize, Request)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            for r in m.log.lock().unwrap().iter() {
                if r.command == command {
                    out.push((i, r.clone()));
                }
            }
        }
        out
    }
}

fn script(
    me: usize,
    req: &Request,
    hosts: &[String],
    primary: &AtomicUsize,
    term: &AtomicUsize,
    log: &Mutex<Log>,
    next_cursor: &AtomicI64,
) -> Action {
    let is_primary = primary.load(Ordering::SeqCst) == me;
    let host = hosts.get(me).cloned().unwrap_or_default();
    if matches!(req.command.as_str(), "hello" | "isMaster" | "ismaster") {
        let mut election = [0u8; 12];
        election[11] = term.load(Ordering::SeqCst) as u8;
        let mut reply = doc! {
            "helloOk": true, "isWritablePrimary": is_primary, "secondary": !is_primary,
            "setName": "rs", "setVersion": 1, "hosts": hosts.to_vec(), "me": host,
            "logicalSessionTimeoutMinutes": 30,
            "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "minWireVersion": 0, "maxWireVersion": 21, "ok": 1.0,
        };
        if let Some(p) = hosts.get(primary.load(Ordering::SeqCst)) {
            reply.insert("primary", p.clone());
        }
        if is_primary {
            reply.insert("electionId", ObjectId::from_bytes(election));
        }
        return Action::Reply(reply);
    }
    // A member that is no longer primary drops the connections its cursors used.
    if !is_primary {
        return Action::HangUp;
    }
    let mut log = log.lock().unwrap();
    let operation_time = Timestamp {
        time: 1_700_000_000,
        increment: log.events.len() as u32,
    };
    let pbrt = |next: usize| match next {
        0 => doc! { "_data": "start" },
        n => token(n - 1),
    };
    match req.command.as_str() {
        "aggregate" => {
            let stage = stage_of(req);
            let start = if let Ok(t) = stage
                .get_document("resumeAfter")
                .or(stage.get_document("startAfter"))
            {
                if t.get_str("_data").ok() == Some("start") {
                    0
                } else {
                    index_after(t)
                }
            } else if let Ok(at) = stage.get_timestamp("startAtOperationTime") {
                at.increment as usize
            } else {
                log.events.len()
            };
            let hides_id = req.body.get_array("pipeline").unwrap().iter().any(|s| {
                s.as_document()
                    .and_then(|s| s.get_document("$project").ok())
                    .is_some_and(|p| p.get_i32("_id").ok() == Some(0))
            });
            let id = next_cursor.fetch_add(1, Ordering::SeqCst);
            log.cursors.insert(id, (start, hides_id));
            Action::Reply(doc! {
                "cursor": { "id": id, "ns": "db.c", "firstBatch": [], "postBatchResumeToken": pbrt(start) },
                "operationTime": operation_time, "ok": 1.0,
            })
        }
        "getMore" => {
            let id = req.body.get_i64("getMore").unwrap();
            let Some((at, hides_id)) = log.cursors.get(&id).copied() else {
                return Action::Reply(doc! {
                    "ok": 0.0, "code": 43, "codeName": "CursorNotFound", "errmsg": "cursor not found",
                });
            };
            let end = (at + 2).min(log.events.len());
            let mut batch: Vec<Document> = log.events[at..end].to_vec();
            if hides_id {
                for e in &mut batch {
                    e.remove("_id");
                }
            }
            log.cursors.insert(id, (end, hides_id));
            let reply = doc! {
                "cursor": { "id": id, "ns": "db.c", "nextBatch": batch, "postBatchResumeToken": pbrt(end) },
                "operationTime": operation_time, "ok": 1.0,
            };
            // An empty batch after a short wait, as awaitData does (kept short: tests poll).
            if end == at {
                return Action::After(Duration::from_millis(5), Box::new(Action::Reply(reply)));
            }
            Action::Reply(reply)
        }
        "killCursors" => {
            for c in req.body.get_array("cursors").unwrap() {
                log.cursors.remove(&c.as_i64().unwrap());
            }
            Action::Reply(doc! { "ok": 1.0 })
        }
        _ => Action::Reply(doc! { "ok": 1.0 }),
    }
}

both_cores!(the_aggregate_carries_the_stage_and_its_options, |core| {
    let rs = ReplicaSet::start();
    let c = client(&rs.uri(), core);
    let c2 = c.clone();
    run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let stream = coll
            .watch()
            .pipeline([doc! { "$match": { "operationType": "insert" } }])
            .full_document(may_mongo::options::FullDocumentType::UpdateLookup)
            .batch_size(2)
            .max_await_time(Duration::from_millis(250))
            .run()
            .unwrap();
        assert!(stream.is_alive());
        // A database-wide and a deployment-wide stream.
        c2.database("db").watch().run().unwrap();
        c2.watch().run().unwrap();
    });
    let aggregates = rs.named("aggregate");
    assert_eq!(aggregates.len(), 3);
    let body = &aggregates[0].1.body;
    assert_eq!(body.get_str("aggregate").ok(), Some("c"));
    let pipeline = body.get_array("pipeline").unwrap();
    let stage = stage_of(&aggregates[0].1);
    assert_eq!(stage.get_str("fullDocument").ok(), Some("updateLookup"));
    assert_eq!(
        pipeline[1]
            .as_document()
            .unwrap()
            .get_document("$match")
            .unwrap(),
        &doc! { "operationType": "insert" }
    );
    assert_eq!(
        body.get_document("cursor")
            .unwrap()
            .get_i32("batchSize")
            .ok(),
        Some(2)
    );
    assert_eq!(aggregates[1].1.body.get_i32("aggregate").ok(), Some(1));
    let cluster = &aggregates[2].1.body;
    assert_eq!(cluster.get_str("$db").ok(), Some("admin"));
    let stage = stage_of(&aggregates[2].1);
    assert_eq!(stage.get_bool("allChangesForCluster").ok(), Some(true));
    c.shutdown();
});

both_cores!(
    events_arrive_in_order_and_getmores_wait_on_the_server,
    |core| {
        let rs = ReplicaSet::start();
        let c = client(&rs.uri(), core);
        let c2 = c.clone();
        let rs = Arc::new(rs);
        let writer = {
            let rs = rs.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    std::thread::sleep(Duration::from_millis(20));
                    rs.write(2);
                }
            })
        };
        let seen = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            let stream = coll
                .watch()
                .max_await_time(Duration::from_millis(100))
                .run()
                .unwrap();
            stream
                .take(10)
                .map(|e| {
                    let e: ChangeStreamEvent<Document> = e.unwrap();
                    assert_eq!(e.operation_type, OperationType::Insert);
                    e.full_document.unwrap().get_i64("n").unwrap()
                })
                .collect::<Vec<_>>()
        });
        writer.join().unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<i64>>());
        // Each getMore asked the server to wait up to max_await_time.
        for (_, r) in rs.named("getMore") {
            assert_eq!(r.body.get_i64("maxTimeMS").ok(), Some(100), "{:?}", r.body);
        }
        c.shutdown();
    }
);

both_cores!(
    a_step_down_resumes_without_losing_or_repeating_an_event,
    |core| {
        let rs = Arc::new(ReplicaSet::start());
        rs.write(3);
        let c = client(&rs.uri(), core);
        let c2 = c.clone();
        let rs2 = rs.clone();
        let (seen, token) = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            // From the start of the log (the scripted server counts cluster time in events).
            let mut stream = coll
                .watch()
                .start_at_operation_time(Timestamp {
                    time: 1_700_000_000,
                    increment: 0,
                })
                .run()
                .unwrap();
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            while seen.len() < 12 {
                assert!(
                    Instant::now() < deadline,
                    "only {} events: {seen:?}",
                    seen.len()
                );
                if let Some(e) = stream.next_if_any().unwrap() {
                    let n = e.full_document.unwrap().get_i64("n").unwrap();
                    seen.push(n);
                    // After the fourth event the primary steps down; more writes land on the
                    // new primary's shared log meanwhile.
                    if n == 3 {
                        rs2.elect(1);
                    }
                    if n == 1 || n == 3 || n == 6 {
                        rs2.write(3);
                    }
                }
            }
            (seen, stream.resume_token())
        });
        assert_eq!(
            seen,
            (0..12).collect::<Vec<i64>>(),
            "no event lost or repeated"
        );
        // The stream resumed on the new primary with the last token it had returned.
        let aggregates = rs.named("aggregate");
        assert!(aggregates.len() >= 2, "{}", aggregates.len());
        let (member, resumed) = aggregates.last().unwrap();
        assert_eq!(*member, 1, "the resumed aggregate went to the new primary");
        let stage = stage_of(resumed);
        let after = stage.get_document("resumeAfter").unwrap();
        assert_eq!(index_after(after), 4, "resumed after event 3: {stage}");
        assert!(token.is_some());
        c.shutdown();
    }
);

both_cores!(
    a_resume_before_any_event_uses_the_start_time_or_start_after,
    |core| {
        let rs = Arc::new(ReplicaSet::start());
        rs.write(2);
        let c = client(&rs.uri(), core);
        let c2 = c.clone();
        let rs2 = rs.clone();
        run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            // No token yet (opened at the end of the log; its first batch is empty, but the
            // post-batch token counts): the resume goes after that token.
            let mut stream = coll.watch().run().unwrap();
            assert!(stream.resume_token().is_some());
            rs2.elect(2);
            assert!(stream.next_if_any().unwrap().is_none());
            rs2.write(1);
            let deadline = Instant::now() + Duration::from_secs(10);
            let e = loop {
                if let Some(e) = stream.next_if_any().unwrap() {
                    break e;
                }
                assert!(Instant::now() < deadline, "no event after the resume");
            };
            assert_eq!(e.full_document.unwrap().get_i64("n").ok(), Some(2));
        });
        let aggregates = rs.named("aggregate");
        let (_, resumed) = aggregates.last().unwrap();
        let stage = stage_of(resumed);
        assert_eq!(
            stage.get_document("resumeAfter").ok(),
            Some(&token(1)),
            "{stage}"
        );
        c.shutdown();
    }
);

both_cores!(an_event_without_its_resume_token_ends_the_stream, |core| {
    let rs = ReplicaSet::start();
    rs.write(1);
    let c = client(&rs.uri(), core);
    let c2 = c.clone();
    let (err, alive) = run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let mut stream = coll
            .watch()
            .pipeline([doc! { "$project": { "_id": 0 } }])
            .start_at_operation_time(Timestamp {
                time: 1_700_000_000,
                increment: 0,
            })
            .run()
            .unwrap();
        let err = loop {
            match stream.next_if_any() {
                Ok(None) => continue,
                Ok(Some(e)) => panic!("an event without _id was returned: {e:?}"),
                Err(e) => break e,
            }
        };
        (err, stream.is_alive())
    });
    assert!(err.to_string().contains("resume token"), "{err}");
    assert!(!alive, "the stream stops");
    c.shutdown();
});

both_cores!(
    the_test_server_refuses_change_streams_with_its_own_error,
    |core| {
        let c = common::client(core);
        let c2 = c.clone();
        let err = run_on(core, move || {
            c2.database("t_change_streams")
                .collection::<Document>("c")
                .watch()
                .run()
                .unwrap_err()
        });
        assert!(
            matches!(*err.kind, ErrorKind::Command(_)),
            "a command error from the server: {err:?}"
        );
        c.shutdown();
    }
);

/// The async façade: `watch()` awaited gives a `futures::Stream` whose waits run on the
/// runner (here polled by a plain thread, no async runtime at all).
#[test]
fn the_async_facade_streams_the_same_events() {
    let rs = Arc::new(ReplicaSet::start());
    let c = may_mongo::motor::Client::from(client(&rs.uri(), Core::Coroutine));
    let coll = c.database("db").collection::<Document>("c");
    let mut stream = block_on(std::future::IntoFuture::into_future(
        coll.watch().max_await_time(Duration::from_millis(50)),
    ))
    .unwrap();
    let writer = {
        let rs = rs.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            rs.write(4);
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let next = block_on(std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        }));
        let event = next.expect("the stream goes on").unwrap();
        seen.push(event.full_document.unwrap().get_i64("n").unwrap());
    }
    writer.join().unwrap();
    assert_eq!(seen, [0, 1, 2, 3]);
    c.blocking().shutdown();
}

both_cores!(a_stream_in_a_session_sends_its_commands_in_it, |core| {
    let rs = Arc::new(ReplicaSet::start());
    let c = client(&rs.uri(), core);
    let c2 = c.clone();
    let rs2 = rs.clone();
    let (lsid, err) = run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let mut s = c2.start_session().run().unwrap();
        let mut other = c2.start_session().run().unwrap();
        let mut stream = coll
            .watch()
            .max_await_time(Duration::from_millis(50))
            .session(&mut s)
            .run()
            .unwrap();
        rs2.write(1);
        let event = stream.next(&mut s).unwrap().unwrap();
        assert_eq!(event.full_document.unwrap().get_i64("n").ok(), Some(0));
        let err = stream.next_if_any(&mut other).unwrap_err();
        (s.id().clone(), err)
    });
    assert!(
        err.to_string().contains("the session it was opened in"),
        "{err}"
    );
    let sent: Vec<(String, Option<Document>)> = rs
        .named("aggregate")
        .into_iter()
        .chain(rs.named("getMore"))
        .map(|(_, r)| (r.command.clone(), r.body.get_document("lsid").ok().cloned()))
        .collect();
    assert!(sent.len() >= 2, "{sent:?}");
    for (command, l) in sent {
        assert_eq!(l.as_ref(), Some(&lsid), "{command}");
    }
    c.shutdown();
});
