//! Faults one real server cannot show on demand, on a scripted wire server: the handshake
//! fallback, replies cut short or corrupt, stalls, and an exhausted pool.

mod common;

use common::run_on;

use std::time::{Duration, Instant};

use bson::doc;
use common::mock::{Action, MockServer, hello_reply, op_msg_bytes};
use may_mongo::error::WriteFailure;
use may_mongo::{Client, ClientOptions, Core, ErrorKind};

fn client_for(server: &MockServer, core: Core, tweak: impl FnOnce(&mut ClientOptions)) -> Client {
    server.client(core, "", "", tweak)
}

fn ping(client: &Client) -> may_mongo::Result<bson::Document> {
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .run()
}

/// A script: handshake normally; `ping` number `n` (0-based, over all connections) gets
/// `fault`, every other ping succeeds.
fn faulty_ping(n: usize, fault: fn(i32) -> Action) -> MockServer {
    let pings = std::sync::atomic::AtomicUsize::new(0);
    MockServer::start(move |req, id| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        _ if pings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == n => fault(id),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    })
}

both_cores!(server_without_hello_gets_legacy_is_master, |core| {
    let server = MockServer::start(|req, _| match (req.legacy, req.command.as_str()) {
        (false, "hello") => Action::Reply(doc! {
            "ok": 0.0, "code": 59, "codeName": "CommandNotFound", "errmsg": "no such cmd: hello",
        }),
        (true, "isMaster") => {
            assert!(req.body.get_bool("helloOk").unwrap());
            assert_eq!(
                req.body
                    .get_document("client")
                    .unwrap()
                    .get_document("driver")
                    .unwrap()
                    .get_str("name")
                    .unwrap(),
                "may_mongo"
            );
            let mut reply = hello_reply();
            reply.remove("isWritablePrimary");
            reply.insert("ismaster", true);
            reply.insert("maxWireVersion", 8);
            Action::Reply(reply)
        }
        (false, "ping") => Action::Reply(doc! { "ok": 1.0 }),
        // A monitor's later checks: the legacy name, over OP_MSG.
        (false, "isMaster") => {
            let mut reply = hello_reply();
            reply.remove("isWritablePrimary");
            reply.insert("ismaster", true);
            reply.insert("maxWireVersion", 8);
            Action::Reply(reply)
        }
        other => panic!("unexpected {other:?}"),
    });
    let client = client_for(&server, core, |_| {});
    let reply = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap();
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0);
    assert_eq!(client.stream_description().unwrap().max_wire_version, 8);
    // Every connection — the monitor's and the pooled one — asked `hello` first, then fell
    // back to the legacy OP_QUERY isMaster; the ping went over an OP_MSG connection.
    let log = server.log.lock().unwrap().clone();
    let connections: std::collections::BTreeSet<usize> = log.iter().map(|r| r.connection).collect();
    assert_eq!(connections.len(), 2, "one monitor, one pooled: {log:?}");
    for c in connections {
        let first: Vec<(bool, String)> = log
            .iter()
            .filter(|r| r.connection == c)
            .take(2)
            .map(|r| (r.legacy, r.command.clone()))
            .collect();
        assert_eq!(
            first,
            vec![(false, "hello".into()), (true, "isMaster".into())],
            "connection {c}"
        );
    }
    let pings: Vec<_> = log.iter().filter(|r| r.command == "ping").collect();
    assert_eq!(pings.len(), 1);
    assert!(!pings[0].legacy);
});

both_cores!(too_old_server_is_refused, |core| {
    let server = MockServer::start(|_, _| {
        let mut r = hello_reply();
        r.insert("maxWireVersion", 5);
        Action::Reply(r)
    });
    let client = client_for(&server, core, |_| {});
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    // Judged from the monitor's hello, at once: no 30 s wait for a server that never fits.
    assert!(
        matches!(&*err.kind, ErrorKind::IncompatibleServer { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("wire versions"), "{err}");
    assert_eq!(client.pool_stats().total, 0);
});

both_cores!(reply_cut_short_discards_the_connection, |core| {
    let server = faulty_ping(0, |id| {
        let full = op_msg_bytes(id, &doc! { "ok": 1.0, "pad": "x".repeat(100) });
        Action::RawThenClose(full[..full.len() / 2].to_vec())
    });
    let client = client_for(&server, core, |_| {});
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    assert!(err.is_network_error(), "{err}");
    assert!(err.to_string().contains("middle of a reply"), "{err}");
    assert_eq!(
        client.pool_stats().total,
        0,
        "the half-read connection was closed"
    );
    // The pool recovers with a new connection.
    run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap();
    assert_eq!(client.pool_stats().total, 1);
    // The monitor's connection, the half-read one, and its replacement.
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        3
    );
});

both_cores!(hang_up_before_reply_is_a_network_error, |core| {
    let server = faulty_ping(0, |_| Action::HangUp);
    let client = client_for(&server, core, |_| {});
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    assert!(matches!(&*err.kind, ErrorKind::Io(_)), "{err}");
    assert_eq!(client.pool_stats().total, 0);
    run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap();
});

both_cores!(huge_declared_length_is_refused_without_allocating, |core| {
    let server = faulty_ping(0, |id| {
        let mut bytes = op_msg_bytes(id, &doc! { "ok": 1.0 });
        bytes[0..4].copy_from_slice(&i32::MAX.to_le_bytes());
        Action::Raw(bytes)
    });
    let client = client_for(&server, core, |_| {});
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    match &*err.kind {
        ErrorKind::InvalidResponse { message, .. } => {
            assert!(message.contains("exceeds the maximum"), "{message}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert_eq!(client.pool_stats().total, 0);
});

both_cores!(garbage_and_mismatched_replies_are_protocol_errors, |core| {
    // Reply 0: right length, garbage inside. Reply 1: answers another request id.
    let pings = std::sync::atomic::AtomicUsize::new(0);
    let server = MockServer::start(move |req, id| match req.command.as_str() {
        "hello" => Action::Reply(hello_reply()),
        _ => match pings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => {
                let mut bytes = op_msg_bytes(id, &doc! { "ok": 1.0, "s": "abcdefgh" });
                for b in &mut bytes[HEADER_LEN + 4..] {
                    *b = 0xA5;
                }
                Action::Raw(bytes)
            }
            1 => Action::Raw(op_msg_bytes(id + 1000, &doc! { "ok": 1.0 })),
            _ => Action::Reply(doc! { "ok": 1.0 }),
        },
    });
    use may_mongo_protocol::HEADER_LEN;
    let client = client_for(&server, core, |_| {});
    for expected in ["malformed OP_MSG", "answers request"] {
        let err = run_on(core, {
            let c = client.clone();
            move || ping(&c)
        })
        .unwrap_err();
        assert!(
            matches!(&*err.kind, ErrorKind::InvalidResponse { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(expected), "{err}");
        assert_eq!(client.pool_stats().total, 0);
    }
    run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap();
});

both_cores!(stalled_server_times_out_at_socket_timeout, |core| {
    let server = faulty_ping(0, |_| {
        Action::After(
            Duration::from_secs(3),
            Box::new(Action::Reply(doc! { "ok": 1.0 })),
        )
    });
    let client = client_for(&server, core, |o| {
        o.socket_timeout = Some(Duration::from_millis(200))
    });
    let started = Instant::now();
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_network_error(), "{err}");
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        client.pool_stats().total,
        0,
        "the timed-out connection was closed"
    );
});

/// A server that answers `hello` at once and every other command after `delay`.
fn slow_server(delay: Duration) -> MockServer {
    MockServer::start(move |req, _| match req.command.as_str() {
        "hello" => Action::Reply(hello_reply()),
        _ => Action::After(delay, Box::new(Action::Reply(doc! { "ok": 1.0 }))),
    })
}

/// A `ping` on a thread of its own (in a coroutine there on the coroutine core).
fn ping_in_background(
    client: &Client,
    core: Core,
) -> std::thread::JoinHandle<may_mongo::Result<bson::Document>> {
    let c = client.clone();
    std::thread::spawn(move || run_on(core, move || ping(&c)))
}

both_cores!(exhausted_pool_wait_times_out, |core| {
    let server = slow_server(Duration::from_millis(600));
    let client = client_for(&server, core, |o| {
        o.max_pool_size = 1;
        o.wait_queue_timeout = Some(Duration::from_millis(100));
    });
    let slow = ping_in_background(&client, core);
    // Let the slow ping take the only connection.
    while client.pool_stats().total == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let err = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    let waited = started.elapsed();
    match &*err.kind {
        ErrorKind::WaitQueueTimeout { max_pool_size, .. } => assert_eq!(*max_pool_size, 1),
        other => panic!("expected WaitQueueTimeout, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_millis(90) && waited < Duration::from_millis(500),
        "{waited:?}"
    );
    slow.join().unwrap().unwrap();
    let stats = client.pool_stats();
    assert_eq!((stats.total, stats.idle, stats.waiters), (1, 1, 0));
});

both_cores!(shutdown_wakes_waiters, |core| {
    let server = slow_server(Duration::from_millis(400));
    let client = client_for(&server, core, |o| o.max_pool_size = 1);
    let slow = ping_in_background(&client, core);
    while client.pool_stats().total == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let waiter = ping_in_background(&client, core);
    while client.pool_stats().waiters == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    client.shutdown();
    let err = waiter.join().unwrap().unwrap_err();
    assert!(matches!(&*err.kind, ErrorKind::PoolClosed { .. }), "{err}");
    let later = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    assert!(matches!(&*later.kind, ErrorKind::Shutdown), "{later}");
    // The in-flight operation finishes; its connection is then closed, not pooled.
    slow.join().unwrap().unwrap();
    assert_eq!(client.pool_stats().total, 0);
});

/// Records the reasons connections were closed.
#[derive(Default)]
struct Closed(std::sync::Mutex<Vec<may_mongo::pool::ConnectionClosedReason>>);

impl Closed {
    fn handler(me: std::sync::Arc<Closed>) -> may_mongo::EventHandler<may_mongo::CmapEvent> {
        may_mongo::EventHandler::callback(move |e| {
            if let may_mongo::CmapEvent::ConnectionClosed(e) = e {
                me.0.lock().unwrap().push(e.reason);
            }
        })
    }
}

#[test]
fn cancelled_coroutine_mid_read_closes_its_connection() {
    for affinity in [
        may_mongo::Affinity::PerOperation,
        may_mongo::Affinity::PerCoroutine,
    ] {
        // The first ping stalls (the coroutine blocks in the middle of reading its reply);
        // later ones answer at once.
        let server = faulty_ping(0, |_| {
            Action::After(
                Duration::from_secs(5),
                Box::new(Action::Reply(doc! { "ok": 1.0 })),
            )
        });
        let closed = std::sync::Arc::new(Closed::default());
        let client = client_for(&server, Core::Coroutine, |o| {
            o.affinity = affinity;
            o.cmap_event_handler = Some(Closed::handler(closed.clone()));
        });
        let h = {
            let c = client.clone();
            may::go!(move || ping(&c))
        };
        // Wait until the ping has reached the server: the coroutine is now parked in a read.
        let started = Instant::now();
        while !server.commands().iter().any(|(_, c)| c == "ping") {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "ping never arrived"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20));
        // SAFETY: cancelling a coroutine of our own; the driver must unwind cleanly.
        unsafe { h.coroutine().cancel() };
        assert!(h.join().is_err(), "the cancelled coroutine unwound");
        // Coroutine-local values drop just after join returns: let the counts settle.
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.pool_stats().total != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let s = client.pool_stats();
        assert_eq!(
            (s.total, s.checked_out, s.idle, s.waiters),
            (0, 0, 0, 0),
            "{affinity:?}: {s:?}"
        );
        // The event is delivered just after the pool's lock is released.
        while closed.0.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(
            *closed.0.lock().unwrap(),
            vec![may_mongo::pool::ConnectionClosedReason::Error],
            "{affinity:?}: exactly one connection closed, as half-used"
        );
        // The pool is healthy: the next call opens a fresh connection.
        run_on(Core::Coroutine, {
            let c = client.clone();
            move || ping(&c)
        })
        .unwrap();
    }
}

both_cores!(insert_one_reports_a_write_concern_error, |core| {
    // The insert is applied, but the server could not satisfy the write concern: that must
    // reach the caller, not vanish behind the inserted id.
    let server = MockServer::start(|req, _| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        "insert" => Action::Reply(doc! {
            "ok": 1.0, "n": 1,
            "writeConcernError": {
                "code": 64, "codeName": "WriteConcernFailed",
                "errmsg": "waiting for replication timed out",
            },
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    });
    let client = client_for(&server, core, |_| {});
    let coll = client
        .database("db")
        .collection::<bson::Document>("c")
        .with_write_concern(may_mongo::WriteConcern {
            w: Some(may_mongo::Acknowledgment::Nodes(2)),
            ..Default::default()
        });
    let err = run_on(core, move || {
        coll.insert_one(doc! { "_id": 1 }).run().unwrap_err()
    });
    let ErrorKind::Write(WriteFailure::WriteConcernError(wce)) = &*err.kind else {
        panic!("{err:?}");
    };
    assert_eq!(wce.code, 64, "{err}");
    assert_eq!(wce.code_name, "WriteConcernFailed");
    // And the write concern was sent.
    let log = server.log.lock().unwrap();
    let insert = log
        .iter()
        .find(|r| r.command == "insert")
        .expect("insert sent");
    assert_eq!(
        insert.body.get_document("writeConcern").unwrap(),
        &doc! { "w": 2 }
    );
});

both_cores!(
    clear_pools_retires_connections_without_failing_waiters,
    |core| {
        let server = slow_server(Duration::from_millis(400));
        let client = client_for(&server, core, |o| o.max_pool_size = 1);
        // One operation holds the only connection; a second waits in line for it.
        let first = ping_in_background(&client, core);
        while client.pool_stats().total == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = ping_in_background(&client, core);
        while client.pool_stats().waiters == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        client.clear_pools();
        // Neither fails: the in-use connection finishes its operation and is then closed (stale),
        // and the waiter is served by a connection opened afresh.
        first.join().unwrap().unwrap();
        second.join().unwrap().unwrap();
        assert_eq!(client.pool_stats().generation, 1);
        assert_eq!(client.pool_stats().total, 1);
        // The monitor's connection, the retired one, its replacement.
        assert_eq!(
            server.connections.load(std::sync::atomic::Ordering::SeqCst),
            3
        );
    }
);

// A server whose write reply does not add up (`n: 0` with an `upserted` entry, or a
// negative `index`) gets a result or a protocol error, never a panic or a wrapped count.
both_cores!(write_replies_that_do_not_add_up_are_not_trusted, |core| {
    let server = MockServer::start(|req, _| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        "update" if req.body.get_document("let").is_ok() => Action::Reply(doc! {
            "ok": 1.0, "n": 1, "nModified": 0, "upserted": [ { "index": -1, "_id": 7 } ],
        }),
        "update" => Action::Reply(doc! {
            "ok": 1.0, "n": 0, "nModified": 0, "upserted": [ { "index": 0, "_id": 7 } ],
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    });
    let c = client_for(&server, core, |_| {});
    let c2 = c.clone();
    let (counted, negative) = run_on(core, move || {
        let coll = c2.database("db").collection::<bson::Document>("c");
        let model = || may_mongo::WriteModel::UpdateOne {
            filter: doc! {},
            update: doc! { "$set": { "x": 1 } }.into(),
            options: Default::default(),
        };
        let counted = coll.bulk_write([model()]).run().unwrap();
        let negative = coll
            .bulk_write([model()])
            .let_vars(doc! { "v": 1 })
            .run()
            .unwrap_err();
        (counted, negative)
    });
    assert_eq!(counted.matched_count, 0, "{counted:?}");
    assert_eq!(counted.upserted_count, 1);
    assert!(
        matches!(*negative.kind, ErrorKind::InvalidResponse { .. }),
        "{negative:?}"
    );
    c.shutdown();
});

both_cores!(event_handlers_may_call_back_into_the_client, |core| {
    // A CMAP callback that asks for the pool's counts, and an SDAM callback that asks for the
    // topology: both take locks the driver used to hold while calling them, so each call
    // deadlocked (the pool's callback on the first check-out, the deployment's on the first
    // server description). Events are now delivered after the locks are released.
    use may_mongo::event::EventHandler;
    use may_mongo::event::cmap::CmapEvent;
    use may_mongo::event::sdam::SdamEvent;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let server = MockServer::start(|req, _| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    });
    let me: Arc<Mutex<Option<Client>>> = Arc::default();
    let (cmap_calls, sdam_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = client_for(&server, core, |o| {
        let (me1, me2) = (me.clone(), me.clone());
        let calls = cmap_calls.clone();
        o.cmap_event_handler = Some(EventHandler::callback(move |e: CmapEvent| {
            if let CmapEvent::ConnectionCheckedOut(_) = e {
                let client = me1.lock().unwrap().clone();
                if let Some(client) = client {
                    assert!(client.pool_stats().checked_out >= 1);
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
        let calls = sdam_calls.clone();
        o.sdam_event_handler = Some(EventHandler::callback(move |e: SdamEvent| {
            if let SdamEvent::ServerDescriptionChanged(_) = e {
                // The first change may come before the test has stored the client: wait
                // for it (briefly; may's sleep parks a coroutine, or sleeps a thread).
                let mut client = None;
                for _ in 0..200 {
                    client = me2.lock().unwrap().clone();
                    if client.is_some() {
                        break;
                    }
                    may::coroutine::sleep(Duration::from_millis(10));
                }
                if let Some(client) = client {
                    client.topology();
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    });
    *me.lock().unwrap() = Some(client.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let c = client.clone();
        let _ = tx.send(run_on(core, move || ping(&c).map(|_| ping(&c))));
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the operation deadlocked in an event callback");
    outcome.unwrap().unwrap();
    assert!(cmap_calls.load(Ordering::SeqCst) >= 2, "one per check-out");
    assert!(sdam_calls.load(Ordering::SeqCst) >= 1);
    me.lock().unwrap().take(); // the callbacks held the client: let it go
});

both_cores!(a_host_name_that_does_not_resolve_is_a_clear_error, |core| {
    // Resolution fails (the .invalid domain never resolves): selection gives up at its
    // timeout naming the host and the resolver's reason, and nothing hangs.
    let mut opts = ClientOptions::parse(
        "mongodb://no-such-host.invalid:27017/?serverSelectionTimeoutMS=1500&connectTimeoutMS=1000",
    )
    .run()
    .unwrap();
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let started = Instant::now();
    let e = run_on(core, {
        let c = client.clone();
        move || ping(&c)
    })
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&*e.kind, ErrorKind::ServerSelection { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("no-such-host.invalid"), "{e}");
    assert!(
        e.to_string().contains("lookup"),
        "the resolver's reason: {e}"
    );
    eprintln!("{core:?}: {e} (after {:?})", started.elapsed());
});
