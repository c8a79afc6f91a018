//! A scripted replica-set primary that answers as the Driver Sessions, Causal Consistency and
//! Transactions specs say a server answers: it advertises sessions
//! (`logicalSessionTimeoutMinutes`), keeps a logical clock that every write ticks, and puts
//! `$clusterTime` and `operationTime` on every reply. No server on these machines has
//! sessions with a cluster clock (FerretDB 1.24 and mongo-java-server accept `lsid` and
//! ignore it), so the driver's side of those protocols is checked here: what it sends, in which
//! order, with which fields.
//!
//! It answers only the shapes the tests need (`n: 1` for a write, a two-batch cursor for a
//! `find`); CRUD semantics are tested against the real servers.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::{Document, Timestamp, doc};

use super::mock::{Action, MockServer, Request};

/// A one-member replica set (`rs`) whose member is primary.
pub struct Primary {
    pub server: MockServer,
    /// The logical clock: each write ticks it.
    pub clock: Arc<AtomicU32>,
    /// Set: `hello` has no `logicalSessionTimeoutMinutes` (a deployment without sessions).
    pub no_sessions: Arc<AtomicBool>,
    /// Delay before each non-`hello` reply.
    pub delay_ms: Arc<AtomicU32>,
    /// Scripted faults: the next request named `.0` gets `.1()` instead of its answer.
    pub faults: Faults,
}

/// Faults queued for the next requests of a command.
pub type Faults = Arc<Mutex<Vec<(String, Box<dyn Fn() -> Action + Send + Sync>)>>>;

/// What kind of server to play.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The primary of a one-member replica set `rs`.
    Primary,
    /// A mongos (`msg: "isdbgrid"`), which hands out a `recoveryToken` for transactions.
    Mongos,
}

/// The timestamp the clock shows at `tick`.
pub fn ts(tick: u32) -> Timestamp {
    Timestamp {
        time: 1_700_000_000,
        increment: tick,
    }
}

impl Primary {
    pub fn start() -> Primary {
        Primary::start_as(Kind::Primary)
    }

    /// A mongos.
    pub fn mongos() -> Primary {
        Primary::start_as(Kind::Mongos)
    }

    pub fn start_as(kind: Kind) -> Primary {
        let faults: Faults = Arc::default();
        let clock = Arc::new(AtomicU32::new(1));
        let no_sessions = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU32::new(0));
        let me: Arc<std::sync::OnceLock<String>> = Arc::default();
        let server = {
            let (clock, no_sessions, delay_ms, me, faults) = (
                clock.clone(),
                no_sessions.clone(),
                delay_ms.clone(),
                me.clone(),
                faults.clone(),
            );
            MockServer::start(move |req, _| {
                let host = me.get().cloned().unwrap_or_default();
                let fault = {
                    let mut faults = faults.lock().unwrap();
                    let at = faults.iter().position(|(name, _)| *name == req.command);
                    at.map(|i| faults.remove(i).1)
                };
                if let Some(fault) = fault {
                    return fault();
                }
                let reply = answer(req, &host, &clock, no_sessions.load(Ordering::SeqCst), kind);
                match delay_ms.load(Ordering::SeqCst) {
                    0 => reply,
                    _ if is_hello(req) => reply,
                    ms => Action::After(Duration::from_millis(ms as u64), Box::new(reply)),
                }
            })
        };
        me.set(format!("127.0.0.1:{}", server.port)).unwrap();
        Primary {
            server,
            clock,
            no_sessions,
            delay_ms,
            faults,
        }
    }

    /// The next request named `command` gets `action()` instead of its answer.
    pub fn fail_next(&self, command: &str, action: impl Fn() -> Action + Send + Sync + 'static) {
        self.faults
            .lock()
            .unwrap()
            .push((command.to_string(), Box::new(action)));
    }

    /// A URI for a client of `core` that talks to this member as a replica set.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?replicaSet=rs&serverSelectionTimeoutMS=5000",
            self.server.port
        )
    }

    /// Every command but the monitors' (`hello`), in order.
    pub fn commands(&self) -> Vec<Request> {
        self.server
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !is_hello(r))
            .cloned()
            .collect()
    }

    /// The commands named `name`, in order.
    pub fn named(&self, name: &str) -> Vec<Request> {
        self.commands()
            .into_iter()
            .filter(|r| r.command == name)
            .collect()
    }

    /// Forgets the commands seen so far.
    pub fn clear(&self) {
        self.server.log.lock().unwrap().clear();
    }
}

/// A client of `core` for a scripted server's URI.
pub fn client(uri: &str, core: may_mongo::Core) -> may_mongo::Client {
    super::init();
    let mut opts = may_mongo::ClientOptions::parse(uri).run().unwrap();
    opts.core = core;
    may_mongo::Client::with_options(opts).unwrap()
}

fn is_hello(r: &Request) -> bool {
    matches!(r.command.as_str(), "hello" | "isMaster" | "ismaster")
}

fn answer(req: &Request, host: &str, clock: &AtomicU32, no_sessions: bool, kind: Kind) -> Action {
    if is_hello(req) {
        let mut hello = match kind {
            Kind::Primary => doc! {
                "helloOk": true, "isWritablePrimary": true, "setName": "rs", "setVersion": 1,
                "hosts": [host], "primary": host, "me": host,
            },
            Kind::Mongos => doc! { "helloOk": true, "isWritablePrimary": true, "msg": "isdbgrid" },
        };
        hello.extend(doc! {
            "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
            "maxWriteBatchSize": 100_000, "minWireVersion": 0, "maxWireVersion": 21, "ok": 1.0,
        });
        if !no_sessions {
            hello.insert("logicalSessionTimeoutMinutes", 30);
        }
        return Action::Reply(hello);
    }
    let writes = matches!(
        req.command.as_str(),
        "insert" | "update" | "delete" | "findAndModify"
    );
    let tick = if writes {
        clock.fetch_add(1, Ordering::SeqCst) + 1
    } else {
        clock.load(Ordering::SeqCst)
    };
    let mut reply = match req.command.as_str() {
        "insert" | "update" | "delete" => doc! { "n": 1 },
        "find" | "aggregate" => {
            // Two documents now and, unless a single batch was asked for, a cursor with two
            // more for one `getMore`.
            let single = req.body.get_bool("singleBatch").unwrap_or(false)
                || req.body.get_i64("limit").is_ok_and(|l| l < 0)
                || req.body.get_i32("limit").is_ok_and(|l| l < 0);
            let id = if single { 0i64 } else { 42 };
            doc! { "cursor": { "id": id, "ns": "db.c", "firstBatch": [ { "i": 1 }, { "i": 2 } ] } }
        }
        "getMore" => {
            doc! { "cursor": { "id": 0i64, "ns": "db.c", "nextBatch": [ { "i": 3 }, { "i": 4 } ] } }
        }
        "count" => doc! { "n": 4 },
        _ => Document::new(),
    };
    reply.insert("ok", 1.0);
    // A mongos names the shard that can recover a transaction's outcome.
    if kind == Kind::Mongos && req.body.get_bool("autocommit").ok() == Some(false) {
        reply.insert("recoveryToken", doc! { "shard": host, "tick": tick as i64 });
    }
    if !no_sessions {
        reply.insert("operationTime", ts(tick));
        reply.insert(
            "$clusterTime",
            doc! { "clusterTime": ts(tick), "signature": { "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] }, "keyId": 7i64 } },
        );
    }
    Action::Reply(reply)
}
