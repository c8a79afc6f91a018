//! Transactions after the Transactions and Convenient Transactions API specs: what the driver
//! sends, in which order, with which fields, its retries and its error labels.
//!
//! No server on these machines has transactions (FerretDB 1.24 ignores `txnNumber` and has no
//! `commitTransaction`; mongo-java-server has neither), so these run against scripted servers
//! (`common::scripted`) that answer as the specs say a replica-set primary and a mongos
//! answer. On FerretDB, which is a standalone, `start_transaction` is refused up front.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::{Document, doc};
use common::mock::{Action, Request};
use common::run_on;
use common::scripted::Primary;
use common::scripted::client;
use may_mongo::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use may_mongo::options::{ReadConcern, TransactionOptions, WriteConcern};
use may_mongo::{Core, ErrorKind};

fn has(r: &Request, key: &str) -> bool {
    r.body.contains_key(key)
}

/// A transient error a server answers an operation of a transaction with.
fn no_such_transaction() -> Action {
    Action::Reply(doc! {
        "ok": 0.0, "code": 251, "codeName": "NoSuchTransaction",
        "errmsg": "Transaction 1 has been aborted", "errorLabels": [TRANSIENT_TRANSACTION_ERROR],
    })
}

both_cores!(a_transaction_s_commands_carry_its_fields, |core| {
    let primary = Primary::start();
    let c = client(&primary.uri(), core);
    let c2 = c.clone();
    let lsid = run_on(core, move || {
        let coll = c2
            .database("db")
            .collection::<Document>("c")
            .with_write_concern(WriteConcern::majority());
        let mut s = c2.start_session().run().unwrap();
        // An operation before the transaction: causal consistency has an operation time.
        coll.insert_one(doc! { "before": 1 })
            .session(&mut s)
            .run()
            .unwrap();
        s.start_transaction()
            .read_concern(ReadConcern::snapshot())
            .write_concern(WriteConcern::majority())
            .max_commit_time(Duration::from_millis(500))
            .run()
            .unwrap();
        coll.insert_one(doc! { "x": 1 })
            .session(&mut s)
            .run()
            .unwrap();
        let mut cursor = coll.find(doc! {}).session(&mut s).run().unwrap();
        while let Some(d) = cursor.next(&mut s) {
            d.unwrap();
        }
        coll.update_one(doc! {}, doc! { "$set": { "x": 2 } })
            .session(&mut s)
            .run()
            .unwrap();
        s.commit_transaction().run().unwrap();
        // The next transaction has the next number.
        s.start_transaction().run().unwrap();
        coll.delete_one(doc! {}).session(&mut s).run().unwrap();
        s.commit_transaction().run().unwrap();
        s.id().clone()
    });
    let cmds = primary.commands();
    let names: Vec<&str> = cmds.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(
        names,
        [
            "insert",
            "insert",
            "find",
            "getMore",
            "update",
            "commitTransaction",
            "delete",
            "commitTransaction"
        ]
    );
    for r in &cmds {
        assert_eq!(r.body.get_document("lsid").unwrap(), &lsid, "{}", r.command);
    }
    // Outside: a retryable write, with its own transaction number and a write concern.
    let outside = &cmds[0];
    assert!(!has(outside, "autocommit") && has(outside, "writeConcern"));
    let first_number = outside.body.get_i64("txnNumber").unwrap();
    // The transaction's first command starts it, with its read concern and afterClusterTime
    // (the session is causally consistent); none carries a write concern.
    let first = &cmds[1];
    assert_eq!(first.body.get_bool("startTransaction").ok(), Some(true));
    let rc = first.body.get_document("readConcern").unwrap();
    assert_eq!(rc.get_str("level").ok(), Some("snapshot"));
    assert!(rc.get_timestamp("afterClusterTime").is_ok(), "{rc}");
    for r in &cmds[1..6] {
        assert_eq!(
            r.body.get_bool("autocommit").ok(),
            Some(false),
            "{}",
            r.command
        );
        assert_eq!(
            r.body.get_i64("txnNumber").ok(),
            Some(first_number + 1),
            "{}",
            r.command
        );
        assert!(!has(r, "writeConcern") || r.command == "commitTransaction");
    }
    for r in &cmds[2..6] {
        assert!(
            !has(r, "startTransaction") && !has(r, "readConcern"),
            "{:?}",
            r.body
        );
    }
    let commit = &cmds[5];
    assert_eq!(commit.body.get_str("$db").ok(), Some("admin"));
    assert_eq!(
        commit
            .body
            .get_document("writeConcern")
            .unwrap()
            .get_str("w")
            .ok(),
        Some("majority")
    );
    assert_eq!(commit.body.get_i64("maxTimeMS").ok(), Some(500));
    // The second transaction: the next number, started by its first command.
    assert_eq!(
        cmds[6].body.get_i64("txnNumber").ok(),
        Some(first_number + 2)
    );
    assert_eq!(cmds[6].body.get_bool("startTransaction").ok(), Some(true));
    assert_eq!(
        cmds[7].body.get_i64("txnNumber").ok(),
        Some(first_number + 2)
    );
    c.shutdown();
});

both_cores!(
    a_commit_is_retried_once_with_majority_and_then_unknown,
    |core| {
        let primary = Primary::start();
        // The first commit's connection is cut: the retry asks for w: majority, wtimeout 10 s.
        primary.fail_next("commitTransaction", || Action::HangUp);
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        let p = Arc::new(primary);
        let p2 = p.clone();
        let err = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            let mut s = c2.start_session().run().unwrap();
            s.start_transaction().run().unwrap();
            coll.insert_one(doc! { "x": 1 })
                .session(&mut s)
                .run()
                .unwrap();
            s.commit_transaction().run().unwrap();
            // Committing again re-sends the commit (with majority).
            s.commit_transaction().run().unwrap();
            // A commit that fails twice: its outcome is unknown.
            s.start_transaction().run().unwrap();
            coll.insert_one(doc! { "x": 2 })
                .session(&mut s)
                .run()
                .unwrap();
            p2.fail_next("commitTransaction", || Action::HangUp);
            p2.fail_next("commitTransaction", || Action::HangUp);
            s.commit_transaction().run().unwrap_err()
        });
        let commits = p.named("commitTransaction");
        assert_eq!(commits.len(), 5, "1 cut + 1 retry, 1 again, 2 cut");
        let w = |r: &Request| r.body.get_document("writeConcern").ok().cloned();
        // A first attempt has the transaction's write concern (none here); a retry, and a commit
        // sent again, ask for majority.
        assert_eq!(w(&commits[0]), None);
        assert_eq!(w(&commits[3]), None);
        for r in [&commits[1], &commits[2], &commits[4]] {
            let wc = w(r).unwrap();
            assert_eq!(wc.get_str("w").ok(), Some("majority"), "{wc}");
            assert_eq!(
                wc.get_i64("wtimeout")
                    .or(wc.get_i32("wtimeout").map(i64::from))
                    .ok(),
                Some(10_000)
            );
        }
        assert!(
            err.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT),
            "{err:?}"
        );
        assert!(!err.contains_label(TRANSIENT_TRANSACTION_ERROR), "{err:?}");
        c.shutdown();
    }
);

both_cores!(
    a_network_error_inside_is_transient_and_abort_ends_it,
    |core| {
        let primary = Primary::start();
        primary.fail_next("insert", || Action::HangUp);
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        let (err, states) = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            let mut s = c2.start_session().run().unwrap();
            s.start_transaction().run().unwrap();
            let err = coll
                .insert_one(doc! { "x": 1 })
                .session(&mut s)
                .run()
                .unwrap_err();
            let mut states = Vec::new();
            // Starting again while one is in progress, committing after abort, aborting twice:
            // each refused.
            states.push(s.start_transaction().run().unwrap_err());
            s.abort_transaction().run().unwrap();
            states.push(s.commit_transaction().run().unwrap_err());
            states.push(s.abort_transaction().run().unwrap_err());
            // A transaction with no operation sends neither commit nor abort.
            s.start_transaction().run().unwrap();
            s.commit_transaction().run().unwrap();
            states.push(s.abort_transaction().run().unwrap_err());
            s.start_transaction().run().unwrap();
            s.abort_transaction().run().unwrap();
            (err, states)
        });
        assert!(err.contains_label(TRANSIENT_TRANSACTION_ERROR), "{err:?}");
        // The insert was not retried inside the transaction.
        assert_eq!(primary.named("insert").len(), 1);
        assert_eq!(primary.named("abortTransaction").len(), 1);
        assert!(primary.named("commitTransaction").is_empty());
        for e in states {
            assert!(matches!(*e.kind, ErrorKind::Transaction { .. }), "{e:?}");
        }
        c.shutdown();
    }
);

both_cores!(
    with_transaction_retries_a_transient_failure_and_an_unknown_commit,
    |core| {
        let primary = Primary::start();
        let c = client(&primary.uri(), core);
        let c2 = c.clone();
        let p = Arc::new(primary);
        let p2 = p.clone();
        let runs = Arc::new(AtomicUsize::new(0));
        let runs2 = runs.clone();
        let value = run_on(core, move || {
            let coll = c2.database("db").collection::<Document>("c");
            let mut s = c2.start_session().run().unwrap();
            // The first run's insert finds its transaction aborted (transient): the driver aborts
            // and runs the callback again. Then the first commit's outcome is unknown (cut): the
            // commit alone is sent again.
            p2.fail_next("insert", no_such_transaction);
            p2.fail_next("commitTransaction", || Action::HangUp);
            p2.fail_next("commitTransaction", || Action::HangUp);
            s.start_transaction()
                .and_run(|s| {
                    runs2.fetch_add(1, Ordering::SeqCst);
                    coll.insert_one(doc! { "x": 1 }).session(&mut *s).run()?;
                    let found = coll.find_one(doc! {}).session(&mut *s).run()?;
                    Ok(found.and_then(|d| d.get_i32("i").ok()))
                })
                .unwrap()
        });
        assert_eq!(value, Some(1), "the callback's value");
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one retry of the callback");
        let names: Vec<String> = p.commands().into_iter().map(|r| r.command).collect();
        assert_eq!(
            names,
            [
                "insert",
                "abortTransaction",
                "insert",
                "find",
                "commitTransaction",
                "commitTransaction",
                "commitTransaction"
            ],
            "{names:?}"
        );
        // The second run is a new transaction.
        let n = |i: usize| p.commands()[i].body.get_i64("txnNumber").unwrap();
        assert_eq!(n(2), n(0) + 1);
        assert_eq!(n(6), n(2));
        c.shutdown();
    }
);

both_cores!(with_transaction_returns_the_callback_s_own_error, |core| {
    let primary = Primary::start();
    let c = client(&primary.uri(), core);
    let c2 = c.clone();
    let err = run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let mut s = c2.start_session().run().unwrap();
        s.start_transaction()
            .and_run(|s| -> may_mongo::Result<()> {
                coll.insert_one(doc! { "x": 1 }).session(&mut *s).run()?;
                Err(may_mongo::error::Error::custom("the callback gives up"))
            })
            .unwrap_err()
    });
    assert!(err.to_string().contains("gives up"), "{err}");
    let names: Vec<String> = primary.commands().into_iter().map(|r| r.command).collect();
    assert_eq!(names, ["insert", "abortTransaction"]);
    c.shutdown();
});

both_cores!(a_sharded_transaction_is_pinned_to_one_mongos, |core| {
    let a = Primary::mongos();
    let b = Primary::mongos();
    let uri = format!(
        "mongodb://127.0.0.1:{},127.0.0.1:{}/?localThresholdMS=1000",
        a.server.port, b.server.port
    );
    let c = client(&uri, core);
    let c2 = c.clone();
    run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let mut s = c2.start_session().run().unwrap();
        for _ in 0..3 {
            s.start_transaction().run().unwrap();
            for i in 0..6 {
                coll.insert_one(doc! { "i": i })
                    .session(&mut s)
                    .run()
                    .unwrap();
            }
            s.commit_transaction().run().unwrap();
        }
    });
    // Each transaction ran whole on one mongos, its commit included, with the recovery token
    // that mongos gave.
    let mut by_txn: std::collections::BTreeMap<i64, Vec<(usize, Request)>> = Default::default();
    for (which, m) in [&a, &b].iter().enumerate() {
        for r in m.commands() {
            if let Ok(n) = r.body.get_i64("txnNumber") {
                by_txn.entry(n).or_default().push((which, r));
            }
        }
    }
    assert_eq!(by_txn.len(), 3);
    for (n, cmds) in &by_txn {
        let servers: std::collections::BTreeSet<usize> = cmds.iter().map(|(w, _)| *w).collect();
        assert_eq!(servers.len(), 1, "transaction {n} ran on one mongos");
        let commit = &cmds
            .iter()
            .find(|(_, r)| r.command == "commitTransaction")
            .unwrap()
            .1;
        // The token names the mongos that gave it (the scripted mongos puts its address in).
        let token = commit.body.get_document("recoveryToken").unwrap();
        let ran_on = [&a, &b][cmds[0].0].server.port;
        assert_eq!(
            token.get_str("shard").ok(),
            Some(format!("127.0.0.1:{ran_on}").as_str()),
            "{token}"
        );
        assert_eq!(cmds.len(), 7);
    }
    c.shutdown();
});

both_cores!(a_session_dropped_mid_transaction_aborts_it, |core| {
    let primary = Primary::start();
    let c = client(&primary.uri(), core);
    let c2 = c.clone();
    run_on(core, move || {
        let coll = c2.database("db").collection::<Document>("c");
        let mut s = c2.start_session().run().unwrap();
        s.start_transaction().run().unwrap();
        coll.insert_one(doc! { "x": 1 })
            .session(&mut s)
            .run()
            .unwrap();
        drop(s);
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while primary.named("abortTransaction").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no abortTransaction");
        std::thread::sleep(Duration::from_millis(5));
    }
    let abort = &primary.named("abortTransaction")[0];
    assert_eq!(
        abort.body.get_i64("txnNumber").ok(),
        primary.named("insert")[0].body.get_i64("txnNumber").ok()
    );
    c.shutdown();
});

both_cores!(a_standalone_refuses_to_start_a_transaction, |core| {
    // The test server (FerretDB is a standalone; so is mongo-java-server).
    let c = common::client(core);
    let c2 = c.clone();
    let err = run_on(core, move || match c2.start_session().run() {
        Ok(mut s) => s.start_transaction().run().unwrap_err(),
        // A server without sessions refuses sooner.
        Err(e) => e,
    });
    assert!(
        matches!(
            *err.kind,
            ErrorKind::Transaction { .. } | ErrorKind::SessionsNotSupported
        ),
        "{err:?}"
    );
    c.shutdown();
});

#[test]
fn transaction_options_come_from_the_session_defaults() {
    let primary = Primary::start();
    let c = client(&primary.uri(), Core::Threaded);
    let coll = c.database("db").collection::<Document>("c");
    let mut s = c
        .start_session()
        .default_transaction_options(
            TransactionOptions::builder()
                .read_concern(ReadConcern::majority())
                .write_concern(WriteConcern::majority())
                .build(),
        )
        .run()
        .unwrap();
    s.start_transaction().run().unwrap();
    coll.insert_one(doc! { "x": 1 })
        .session(&mut s)
        .run()
        .unwrap();
    s.commit_transaction().run().unwrap();
    let cmds = primary.commands();
    assert_eq!(
        cmds[0]
            .body
            .get_document("readConcern")
            .unwrap()
            .get_str("level")
            .ok(),
        Some("majority")
    );
    assert_eq!(
        cmds[1]
            .body
            .get_document("writeConcern")
            .unwrap()
            .get_str("w")
            .ok(),
        Some("majority")
    );
    c.shutdown();
}
