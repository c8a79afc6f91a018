//! Shared set-up for the async API's tests and examples: the server and a client of either
//! core.

use may_mongo::motor::AsyncClient;
use may_mongo::{Client, ClientOptions, Core};

/// The test server's URI: `MONGODB_URI`, or an embedded FerretDB started once per process.
pub fn uri() -> String {
    may::config().set_worker_pin(false);
    ferretdb_embed::shared_uri()
}

/// An async client of `core` on the test server (no I/O yet).
pub fn client(core: Core) -> AsyncClient {
    client_with(core, |_| {})
}

/// Like [`client`], with the options adjusted first.
pub fn client_with(core: Core, tweak: impl FnOnce(&mut ClientOptions)) -> AsyncClient {
    let mut opts = ClientOptions::parse(&uri()).expect("test URI");
    opts.core = core;
    tweak(&mut opts);
    AsyncClient::new(Client::with_options(opts).expect("client")).expect("async client")
}
