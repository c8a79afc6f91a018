//! What is measured (workloads) and who is measured (contenders).

/// Documents an empty-filter find returns in the find-many workload (101 in the first batch,
/// the rest in one `getMore`: the cursor is emptied).
pub const FIND_MANY_DOCS: usize = 200;
/// Small documents per insert_many call.
pub const INSERT_MANY_DOCS: usize = 100;

/// One operation, repeated by every task of a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `find_one({_id: 1})` into a `Document` (the spec's tweet).
    FindOne,
    /// `insert_one` of the spec's small document (~250 bytes), `_id` left to the driver.
    InsertOne,
    /// `find({})` over [`FIND_MANY_DOCS`] tweets, every document decoded, cursor emptied.
    FindMany,
    /// `insert_many` of [`INSERT_MANY_DOCS`] small documents, ordered.
    InsertMany,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::FindOne,
        Workload::InsertOne,
        Workload::FindMany,
        Workload::InsertMany,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::FindOne => "find_one",
            Workload::InsertOne => "insert_one",
            Workload::FindMany => "find_many",
            Workload::InsertMany => "insert_many",
        }
    }

    pub fn describe(self) -> String {
        match self {
            Workload::FindOne => "find_one by `_id` into a `Document` (the spec's tweet)".into(),
            Workload::InsertOne => "insert_one of the spec's small document".into(),
            Workload::FindMany => format!(
                "find many: {FIND_MANY_DOCS} tweets, each decoded into a `Document`, cursor emptied (find + getMore)"
            ),
            Workload::InsertMany => {
                format!("insert_many of {INSERT_MANY_DOCS} small documents, ordered")
            }
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// The collection (in database `bench`) the workload uses.
    pub fn collection(self) -> &'static str {
        match self {
            Workload::FindOne => "coll",
            Workload::FindMany => "tweets",
            Workload::InsertOne | Workload::InsertMany => "inserts",
        }
    }
}

/// A driver, API and concurrency model; or the raw ping-pong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// The same request and reply bytes over std sockets, nothing else: the physical limit.
    PingPong,
    /// The official `mongodb` crate, async, tasks on a 2-worker tokio runtime.
    OfficialAsync,
    /// The official crate's `sync` API, one OS thread per task.
    OfficialSync,
    /// This driver's coroutine core: blocking-style code, one may coroutine per task.
    Coroutine,
    /// This driver's threaded core: blocking code, one OS thread per task.
    Threaded,
    /// This driver's async API (`may_mongo::motor`) on the coroutine core, under tokio.
    AsyncCoroutine,
    /// The async API on the threaded core (a pool of 5 × CPUs threads), under tokio.
    AsyncThreaded,
    /// The coroutine core's `run_command_raw` for the find_one request: the reply is handed
    /// back undecoded (find_one only).
    CoroutineRaw,
}

impl Contender {
    pub const ALL: [Contender; 8] = [
        Contender::PingPong,
        Contender::OfficialAsync,
        Contender::OfficialSync,
        Contender::Coroutine,
        Contender::Threaded,
        Contender::AsyncCoroutine,
        Contender::AsyncThreaded,
        Contender::CoroutineRaw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contender::PingPong => "pingpong",
            Contender::OfficialAsync => "official-async",
            Contender::OfficialSync => "official-sync",
            Contender::Coroutine => "coroutine",
            Contender::Threaded => "threaded",
            Contender::AsyncCoroutine => "async-coroutine",
            Contender::AsyncThreaded => "async-threaded",
            Contender::CoroutineRaw => "coroutine-raw",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Contender::PingPong => "raw loopback ping-pong (std threads)",
            Contender::OfficialAsync => "official mongodb 3.9, async (tokio, 2 workers)",
            Contender::OfficialSync => "official mongodb 3.9, sync API (OS threads)",
            Contender::Coroutine => "may_mongo coroutine core (coroutines)",
            Contender::Threaded => "may_mongo threaded core (OS threads)",
            Contender::AsyncCoroutine => "may_mongo async API, coroutine core (tokio)",
            Contender::AsyncThreaded => "may_mongo async API, threaded core (tokio)",
            Contender::CoroutineRaw => "may_mongo coroutine core, raw reply (no decoding)",
        }
    }

    pub fn parse(s: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Whether the contender runs `workload` at all (the raw-reply variant is find_one only).
    pub fn runs(self, workload: Workload) -> bool {
        self != Contender::CoroutineRaw || workload == Workload::FindOne
    }

    /// Why the contender does not run `workload` at `tasks`, if it does not.
    pub fn skips(self, workload: Workload, tasks: usize) -> Option<&'static str> {
        if self == Contender::PingPong && tasks > 1024 {
            return Some(
                "not run: the ping-pong opens one socket per task, and 10,000 connections at \
                 once overflow the canned server's accept backlog (a trial took over 200 s and \
                 hung in SYN retries); it is the physical limit per connection, measured up to \
                 1,024",
            );
        }
        if self == Contender::AsyncThreaded && workload == Workload::FindMany && tasks > 1024 {
            return Some(
                "not run: a trial peaked at 18 GB RSS — each of the 10,000 futures holds a \
                 decoded batch of 101 tweets handed over by a pool thread — too close to this \
                 machine's 24 GB to run unattended",
            );
        }
        None
    }
}
