//! Sessions after the Driver Sessions and Causal Consistency specs: what the driver sends.
//!
//! Against a scripted replica-set primary (`common::scripted`) that answers as those specs
//! say a server answers (with a logical clock, `$clusterTime` and `operationTime`), because no
//! server here has them; and, for what a real server can show (that commands in a session are
//! accepted and do what they say), against the test server.

mod common;

use std::time::Duration;

use bson::{Document, Timestamp, doc};
use common::mock::Request;
use common::scripted::client;
use common::scripted::{Primary, ts};
use common::{block_on, run_on};
use may_mongo::options::{ReadConcern, WriteConcern};
use may_mongo::{ClusterTime, Core, ErrorKind};

fn lsid(r: &Request) -> Option<Document> {
    r.body.get_document("lsid").ok().cloned()
}

fn cluster_time_sent(r: &Request) -> Option<Timestamp> {
    r.body
        .get_document("$clusterTime")
        .ok()
        .and_then(|c| c.get_timestamp("clusterTime").ok())
}

fn after_cluster_time(r: &Request) -> Option<Timestamp> {
    r.body
        .get_document("readConcern")
        .ok()
        .and_then(|rc| rc.get_timestamp("afterClusterTime").ok())
}

both_cores!(
    every_command_of_an_explicit_session_carries_its_id,
    |core| {
        let primary = Primary::start();
        let c = client(&primary.uri(), core);
        let id = run_on(core, move || {
            let coll = c.database("db").collection::<Document>("c");
            let mut s = c.start_session().run().unwrap();
            coll.insert_one(doc! { "x": 1 })
                .session(&mut s)
                .run()
                .unwrap();
            coll.update_one(doc! {}, doc! { "$set": { "x": 2 } })
                .session(&mut s)
                .run()
                .unwrap();
            coll.count_documents(doc! {}).session(&mut s).run().unwrap();
            // A cursor in the session: its getMore goes in it too.
            let mut cursor = coll.find(doc! {}).session(&mut s).run().unwrap();
            let mut seen = 0;
            while let Some(d) = cursor.next(&mut s) {
                d.unwrap();
                seen += 1;
            }
            assert_eq!(seen, 4, "two batches of two");
            coll.delete_one(doc! {}).session(&mut s).run().unwrap();
            c.shutdown();
            s.id().clone()
        });
        let commands = primary.commands();
        let names: Vec<&str> = commands.iter().map(|r| r.command.as_str()).collect();
        assert_eq!(
            names,
            ["insert", "update", "aggregate", "find", "getMore", "delete"],
            "{names:?}"
        );
        for r in &commands {
            assert_eq!(lsid(r).as_ref(), Some(&id), "{}: {:?}", r.command, r.body);
        }
        // The retryable writes carry transaction numbers that go up within the session.
        let numbers: Vec<i64> = commands
            .iter()
            .filter_map(|r| r.body.get_i64("txnNumber").ok())
            .collect();
        assert_eq!(numbers, [1, 2, 3], "insert, update, delete");
    }
);

both_cores!(
    implicit_sessions_are_pooled_and_a_cursor_keeps_its_own,
    |core| {
        let primary = Primary::start();
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            coll.insert_one(doc! { "x": 1 }).run().unwrap();
            coll.find_one(doc! {}).run().unwrap();
            // A cursor that stops after its first batch: the getMore never happens, and the
            // killCursors goes in the cursor's session.
            let mut cursor = coll.find(doc! {}).run().unwrap();
            cursor.next().unwrap().unwrap();
            // Meanwhile another operation needs a session: the cursor's is not free.
            coll.count_documents(doc! {}).run().unwrap();
            drop(cursor);
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while primary.named("killCursors").is_empty() {
            assert!(std::time::Instant::now() < deadline, "no killCursors");
            std::thread::sleep(Duration::from_millis(5));
        }
        let by_name = |n: &str| lsid(&primary.named(n)[0]).expect(n);
        // One session served the insert and then the find_one (it went back between them).
        assert_eq!(by_name("insert"), by_name("find").clone());
        let finds = primary.named("find");
        assert_eq!(finds.len(), 2);
        let cursor_session = lsid(&finds[1]).unwrap();
        assert_eq!(
            cursor_session,
            by_name("insert"),
            "LIFO: the freshest session"
        );
        // The count ran while the cursor held that session: it got another.
        assert_ne!(by_name("aggregate"), cursor_session);
        assert_eq!(by_name("killCursors"), cursor_session);
        // The reaper returns the cursor's session to the pool after the kill's reply: until
        // then reads take the other one; then, last in first out, the cursor's.
        let c3 = c.clone();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let c4 = c3.clone();
            run_on(core, move || {
                c4.database("db")
                    .collection::<Document>("c")
                    .find_one(doc! {})
                    .run()
                    .unwrap()
            });
            if lsid(primary.named("find").last().unwrap()).as_ref() == Some(&cursor_session) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the cursor's session never went back to the pool"
            );
        }
        c.shutdown();
        // Both sessions were pooled by then: endSessions names them.
        let ended = primary.named("endSessions");
        assert_eq!(ended.len(), 1, "one endSessions at shutdown");
        let ids = ended[0].body.get_array("endSessions").unwrap();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(lsid(&ended[0]).is_none(), "endSessions runs in no session");
    }
);

both_cores!(the_newest_cluster_time_is_gossiped_back, |core| {
    let primary = Primary::start();
    let c = client(&primary.uri(), core);
    let c2 = c.clone();
    run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        coll.insert_one(doc! { "x": 1 }).run().unwrap(); // clock 2
        coll.insert_one(doc! { "x": 2 }).run().unwrap(); // clock 3
        coll.find_one(doc! {}).run().unwrap();
        // A session given a newer cluster time (from another client, say) sends that one.
        let mut s = c2.start_session().run().unwrap();
        let newer = ClusterTime {
            cluster_time: ts(100),
            signature: doc! { "keyId": 1i64 },
        };
        s.advance_cluster_time(&newer);
        // Never backwards.
        s.advance_cluster_time(&ClusterTime {
            cluster_time: ts(50),
            signature: Document::new(),
        });
        assert_eq!(s.cluster_time().unwrap().cluster_time, ts(100));
        coll.find_one(doc! {}).session(&mut s).run().unwrap();
    });
    let sent: Vec<Option<Timestamp>> = primary.commands().iter().map(cluster_time_sent).collect();
    // The first command knows only what the monitor's hello... which carries none here, so
    // nothing; then each carries the newest reply's.
    assert_eq!(sent[0], None, "nothing seen before the first reply");
    assert_eq!(sent[1], Some(ts(2)));
    assert_eq!(sent[2], Some(ts(3)));
    assert_eq!(
        sent[3],
        Some(ts(100)),
        "the session's, newer than the client's"
    );
    c.shutdown();
});

both_cores!(
    causally_consistent_reads_wait_for_the_session_s_writes,
    |core| {
        let primary = Primary::start();
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            let mut s = c2.start_session().run().unwrap();
            assert_eq!(s.operation_time(), None);
            // The first read has nothing to wait for.
            coll.find_one(doc! {}).session(&mut s).run().unwrap();
            coll.insert_one(doc! { "x": 1 })
                .session(&mut s)
                .run()
                .unwrap(); // clock 2
            assert_eq!(s.operation_time(), Some(ts(2)));
            // A read with a read concern of its own keeps its level and gains afterClusterTime.
            coll.find_one(doc! {})
                .read_concern(ReadConcern::majority())
                .session(&mut s)
                .run()
                .unwrap();
            coll.count_documents(doc! {}).session(&mut s).run().unwrap();
            // advance_operation_time moves it forward only.
            s.advance_operation_time(ts(40));
            s.advance_operation_time(ts(30));
            coll.find_one(doc! {}).session(&mut s).run().unwrap();
            // Writes never carry afterClusterTime; nor does a session without causal consistency.
            coll.insert_one(doc! { "x": 2 })
                .session(&mut s)
                .run()
                .unwrap();
            let mut plain = c2.start_session().causal_consistency(false).run().unwrap();
            coll.insert_one(doc! { "x": 3 })
                .session(&mut plain)
                .run()
                .unwrap();
            coll.find_one(doc! {}).session(&mut plain).run().unwrap();
        });
        let cmds = primary.commands();
        let after: Vec<(String, Option<Timestamp>)> = cmds
            .iter()
            .map(|r| (r.command.clone(), after_cluster_time(r)))
            .collect();
        assert_eq!(
            after,
            [
                ("find".to_string(), None),
                ("insert".to_string(), None),
                ("find".to_string(), Some(ts(2))),
                ("aggregate".to_string(), Some(ts(2))),
                ("find".to_string(), Some(ts(40))),
                ("insert".to_string(), None),
                ("insert".to_string(), None),
                ("find".to_string(), None),
            ]
        );
        let level = cmds[2]
            .body
            .get_document("readConcern")
            .unwrap()
            .get_str("level")
            .unwrap();
        assert_eq!(level, "majority", "{:?}", cmds[2].body);
        c.shutdown();
    }
);

both_cores!(an_unacknowledged_write_gets_no_implicit_session, |core| {
    let primary = Primary::start();
    let c = client(&primary.uri(), core);
    let c2 = c.clone();
    run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        coll.insert_one(doc! { "x": 1 })
            .write_concern(
                WriteConcern::builder()
                    .w(may_mongo::Acknowledgment::Nodes(0))
                    .build(),
            )
            .run()
            .unwrap();
        coll.insert_one(doc! { "x": 2 }).run().unwrap();
    });
    let inserts = primary.named("insert");
    assert!(lsid(&inserts[0]).is_none(), "{:?}", inserts[0].body);
    assert!(lsid(&inserts[1]).is_some());
    c.shutdown();
});

both_cores!(
    without_sessions_no_lsid_is_sent_and_explicit_ones_are_refused,
    |core| {
        let primary = Primary::start();
        primary
            .no_sessions
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        let err = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            coll.insert_one(doc! { "x": 1 }).run().unwrap();
            coll.find_one(doc! {}).run().unwrap();
            c2.start_session().run().unwrap_err()
        });
        assert!(
            matches!(*err.kind, ErrorKind::SessionsNotSupported),
            "{err:?}"
        );
        for r in primary.commands() {
            assert!(lsid(&r).is_none(), "{}: {:?}", r.command, r.body);
        }
        c.shutdown();
        assert!(primary.named("endSessions").is_empty());
    }
);

/// The async façade runs each call elsewhere, so two calls can reach one session at once:
/// the second is refused rather than interleaved.
#[test]
fn a_session_serves_one_operation_at_a_time() {
    let primary = Primary::start();
    primary
        .delay_ms
        .store(300, std::sync::atomic::Ordering::SeqCst);
    let c = may_mongo::motor::Client::from(client(&primary.uri(), Core::Coroutine));
    let coll = c.database("db").collection::<Document>("c");
    let mut s = c.start_session().run().unwrap();
    use std::future::IntoFuture;
    let first = coll.find_one(doc! {}).session(&mut s).into_future();
    std::thread::sleep(Duration::from_millis(100));
    let second = coll.find_one(doc! {}).session(&mut s).into_future();
    let second = block_on(second);
    let err = second.unwrap_err();
    assert!(
        matches!(*err.kind, ErrorKind::InvalidArgument { .. })
            && err.to_string().contains("in use"),
        "{err:?}"
    );
    assert!(block_on(first).is_ok());
    // Once the first is done, the session serves again.
    let third = coll.find_one(doc! {}).session(&mut s).into_future();
    assert!(block_on(third).is_ok());
    c.blocking().shutdown();
}

both_cores!(a_real_server_takes_commands_in_a_session, |core| {
    let c = common::client(core);
    let db = common::fresh_db(&c, "sessions");
    let c2 = c.clone();
    let n = run_on(core, move || {
        let coll = db.collection::<Document>("c");
        let mut s = c2.start_session().run().unwrap();
        coll.insert_many((0..5).map(|i| doc! { "i": i }))
            .session(&mut s)
            .run()
            .unwrap();
        coll.update_many(doc! {}, doc! { "$inc": { "i": 10 } })
            .session(&mut s)
            .run()
            .unwrap();
        let mut cursor = coll
            .find(doc! {})
            .batch_size(2)
            .session(&mut s)
            .run()
            .unwrap();
        let all: Vec<Document> = cursor.iter(&mut s).map(|d| d.unwrap()).collect();
        assert!(all.iter().all(|d| d.get_i32("i").unwrap() >= 10));
        let names = db.list_collection_names().session(&mut s).run().unwrap();
        assert_eq!(names, ["c"]);
        coll.count_documents(doc! {}).session(&mut s).run().unwrap()
    });
    assert_eq!(n, 5);
    c.shutdown();
});
