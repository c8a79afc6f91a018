//! Shared test support: one real server per test run, clients of either core.
//!
//! The server comes from `MONGODB_URI` when set (the README's test command starts one
//! FerretDB for the whole run and sets it); otherwise this process starts its own embedded
//! FerretDB once and shares it among its tests.

#![allow(dead_code)]

pub mod mock;
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

/// A client of `core` on the test server.
pub fn client(core: Core) -> Client {
    let mut opts = ClientOptions::parse(&uri()).expect("test URI parses");
    opts.core = core;
    opts.app_name = Some("may_mongo-tests".into());
    Client::with_options(opts).expect("client")
}

/// A fresh, empty database for one test on one core.
pub fn fresh_db(client: &Client, test: &str) -> may_mongo::Database {
    let db = client.database(&format!("t_{}_{}", test, client.core().name()));
    db.run_command(bson::doc! { "dropDatabase": 1 })
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
