//! The real server killed (SIGKILL) and restarted under load: the same client recovers by
//! itself, every error it returned on the way is typed, and every insert it acknowledged is
//! there afterwards.
//!
//! Each run starts its own embedded FerretDB (whatever `MONGODB_URI` says: this test must be
//! able to kill its server) on a port that the restart keeps.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use ferretdb_embed::{Server, ServerOptions};
use may_mongo::{Client, ClientOptions, ErrorKind};

const WORKERS: usize = 100;

/// What one operation did, and in which phase it started (0 before the kill, 1 while the
/// server is down, 2 after the restart).
struct Outcome {
    id: String,
    started: usize,
    result: may_mongo::Result<()>,
}

both_cores!(
    the_client_recovers_when_the_server_is_killed_and_restarted,
    |core| {
        common::init();
        let mut server = Server::start(&ServerOptions::default()).expect("start FerretDB");
        let mut opts = ClientOptions::parse(format!(
            "{}?heartbeatFrequencyMS=500&serverSelectionTimeoutMS=20000",
            server.uri()
        ))
        .run()
        .unwrap();
        opts.core = core;
        let client = Client::with_options(opts).unwrap();
        let coll = client
            .database("restart")
            .collection::<Document>(core.name());
        common::run_on(core, {
            let coll = coll.clone();
            move || coll.insert_one(doc! { "_id": "warm-up" }).run().map(|_| ())
        })
        .unwrap();

        let phase = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = common::spawn_workers(core, WORKERS, {
            let (coll, phase, stop) = (coll.clone(), phase.clone(), stop.clone());
            move |i| {
                let mut outcomes = Vec::new();
                let mut j = 0;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("{i}-{j}");
                    j += 1;
                    let started = phase.load(Ordering::SeqCst);
                    // A write, then reading it back.
                    let result = coll
                        .insert_one(doc! { "_id": &id, "i": i as i32 })
                        .run()
                        .and_then(|_| coll.find_one(doc! { "_id": &id }).run())
                        .map(|found| {
                            assert!(found.is_some(), "{id}: acknowledged, then not found")
                        });
                    outcomes.push(Outcome {
                        id,
                        started,
                        result,
                    });
                }
                outcomes
            }
        });
        std::thread::sleep(Duration::from_millis(1500));
        server.kill();
        phase.store(1, Ordering::SeqCst);
        let killed = Instant::now();
        std::thread::sleep(Duration::from_millis(1000));
        server.restart().expect("restart FerretDB");
        phase.store(2, Ordering::SeqCst);
        let restarted = killed.elapsed();
        std::thread::sleep(Duration::from_millis(3000));
        stop.store(true, Ordering::Relaxed);

        // Nothing hangs: every worker reports (its last operation is bounded by selection's 20 s).
        let outcomes: Vec<Outcome> = workers
            .join_all(Duration::from_secs(60))
            .into_iter()
            .flatten()
            .collect();
        let mut by_phase = [[0usize; 2]; 3];
        let mut errors: BTreeMap<&str, usize> = BTreeMap::new();
        let mut acknowledged = Vec::new();
        for o in &outcomes {
            by_phase[o.started][usize::from(o.result.is_err())] += 1;
            match &o.result {
                Ok(()) => acknowledged.push(o.id.clone()),
                Err(e) => {
                    // Typed, and of the kinds a dead server explains.
                    let kind = match &*e.kind {
                        ErrorKind::Io(_) => "Io",
                        ErrorKind::ServerSelection { .. } => "ServerSelection",
                        ErrorKind::ConnectionPoolCleared { .. } => "PoolCleared",
                        _ => panic!("unexpected error: {e}"),
                    };
                    *errors.entry(kind).or_default() += 1;
                }
            }
        }
        println!(
            "{core:?}: server down for {restarted:?}; [ok, failed] by phase (before, down, after): {by_phase:?}; errors by kind: {errors:?}"
        );
        assert!(by_phase[0][0] > 0, "no operation before the kill");
        assert!(
            by_phase[2][0] > 0 && by_phase[2][1] == 0,
            "after the restart every operation succeeds: {by_phase:?}"
        );
        assert!(
            client.pool_stats().generation >= 1,
            "the pool was cleared by the outage"
        );

        // Every acknowledged insert survived the kill, exactly once (`_id` is unique; the count
        // checks each is there).
        let ids: Vec<bson::Bson> = acknowledged.iter().map(|s| s.as_str().into()).collect();
        let n = common::run_on(core, {
            let coll = coll.clone();
            move || coll.count_documents(doc! { "_id": { "$in": ids } }).run()
        })
        .unwrap();
        assert_eq!(n as usize, acknowledged.len());
    }
);
