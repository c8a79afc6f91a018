//! Shared test support: one real server per test run, clients of either core.
//!
//! The server comes from `MONGODB_URI` when set (the README's test command starts one
//! FerretDB for the whole run and sets it); otherwise this process starts its own embedded
//! FerretDB once and shares it among its tests.

#![allow(dead_code)]

pub mod mock;
pub mod scripted;
pub mod spec;

use std::sync::Once;

use may_mongo::{Client, ClientOptions, Core};

/// Process-wide setup: may workers unpinned (tests share the machine).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        may::config().set_worker_pin(false);
    });
}

/// The server's URI.
pub fn uri() -> String {
    init();
    ferretdb_embed::shared_uri()
}

/// Which server the tests talk to, for its known-failures lists: `ferretdb`,
/// `mongo-java-server`, or `other`.
///
/// `$MAY_MONGO_TEST_SERVER` when set (`ferretdb-embed with-server --server KIND` sets it);
/// else `ferretdb` when `MONGODB_URI` is unset (then this process starts FerretDB); else the
/// server is asked (`buildInfo` of FerretDB carries `ferretdbVersion`). `other` — a server
/// named by `MONGODB_URI`, such as a real mongod — has no known failures: every failure counts.
pub fn server_name() -> &'static str {
    static NAME: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        if let Some(kind) = ferretdb_embed::ServerKind::from_env() {
            return kind.name();
        }
        if std::env::var("MONGODB_URI").is_ok_and(|u| !u.is_empty()) {
            let info = client(Core::Threaded)
                .database("admin")
                .run_command(bson::doc! { "buildInfo": 1 })
                .run()
                .expect("buildInfo");
            if info.contains_key("ferretdbVersion") {
                return "ferretdb";
            }
            return "other";
        }
        "ferretdb"
    })
}

/// A client of `core` on the test server.
pub fn client(core: Core) -> Client {
    let mut opts = ClientOptions::parse(uri()).run().expect("test URI parses");
    opts.core = core;
    opts.app_name = Some("may_mongo-tests".into());
    Client::with_options(opts).expect("client")
}

/// A fresh, empty database for one test on one core.
pub fn fresh_db(client: &Client, test: &str) -> may_mongo::Database {
    let db = client.database(&format!("t_{}_{}", test, client.core().name()));
    db.run_command(bson::doc! { "dropDatabase": 1 })
        .run()
        .expect("dropDatabase");
    db
}

/// Declares one test per core: `both_cores!(name, |core| { ... })`.
#[macro_export]
macro_rules! both_cores {
    ($name:ident, |$core:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($core: may_mongo::Core) $body
            #[test]
            fn coroutine_core() {
                run(may_mongo::Core::Coroutine)
            }
            #[test]
            fn threaded_core() {
                run(may_mongo::Core::Threaded)
            }
        }
    };
}

/// Runs `f` the way a user of `core` would: in a coroutine, or on this thread.
pub fn run_on<T: Send + 'static>(core: Core, f: impl FnOnce() -> T + Send + 'static) -> T {
    match core {
        Core::Coroutine => may::go!(f).join().unwrap(),
        Core::Threaded => f(),
    }
}

/// Workers started by [`spawn_workers`]: each sends its result when it returns.
pub struct Workers<R> {
    results: std::sync::mpsc::Receiver<R>,
    count: usize,
}

/// Runs `work(i)` for `i` in `0..n` the way a user of `core` would: each in a coroutine of
/// its own, or on an OS thread of its own (256 KiB of stack).
pub fn spawn_workers<R: Send + 'static>(
    core: Core,
    n: usize,
    work: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Workers<R> {
    let (tx, results) = std::sync::mpsc::channel();
    let work = std::sync::Arc::new(work);
    for i in 0..n {
        let (tx, work) = (tx.clone(), work.clone());
        let job = move || {
            let _ = tx.send(work(i));
        };
        match core {
            Core::Coroutine => {
                may::go!(job);
            }
            Core::Threaded => {
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn(job)
                    .unwrap();
            }
        }
    }
    Workers { results, count: n }
}

impl<R> Workers<R> {
    /// Every worker's result, waiting at most `within` for them all: a worker that has not
    /// reported by then hung, and fails the test.
    pub fn join_all(self, within: std::time::Duration) -> Vec<R> {
        let give_up = std::time::Instant::now() + within;
        (0..self.count)
            .map(|_| {
                let left = give_up.saturating_duration_since(std::time::Instant::now());
                self.results.recv_timeout(left).expect("a worker hung")
            })
            .collect()
    }
}

/// Polls a future to completion on this thread: the driver's futures need no async runtime
/// (the async façade's work runs on may coroutines or its thread pool).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
