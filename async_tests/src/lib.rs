//! Shared set-up for the async API's tests and examples: the server and a client of either
//! core.

use may_mongo::{ClientOptions, Core};

/// The test server's URI: `MONGODB_URI`, or an embedded FerretDB started once per process.
pub fn uri() -> String {
    may::config().set_worker_pin(false);
    ferretdb_embed::shared_uri()
}

/// An async client of `core` on the test server (no I/O yet).
pub fn client(core: Core) -> may_mongo::motor::Client {
    client_with(core, |_| {})
}

/// Like [`client`], with the options adjusted first.
pub fn client_with(core: Core, tweak: impl FnOnce(&mut ClientOptions)) -> may_mongo::motor::Client {
    let mut opts = ClientOptions::parse(uri()).run().expect("test URI");
    opts.core = core;
    tweak(&mut opts);
    may_mongo::motor::Client::with_options(opts).expect("client")
}

/// The message the three example programs post (`examples/messages_*.rs`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub text: String,
    /// When it was posted.
    pub posted: bson::DateTime,
}

impl Message {
    /// Message `i` of writer `w`, posted now.
    pub fn new(w: usize, i: usize) -> Message {
        Message {
            author: format!("writer{w}"),
            text: format!("message {i} from writer {w}"),
            posted: bson::DateTime::now(),
        }
    }

    /// Newest first; `_id` breaks ties within one millisecond.
    pub fn newest(n: i64) -> may_mongo::FindOptions {
        may_mongo::FindOptions {
            sort: Some(bson::doc! { "posted": -1, "_id": -1 }),
            limit: Some(n),
            ..Default::default()
        }
    }
}

/// Prints what every example prints at the end.
pub fn report(total: u64, elapsed: std::time::Duration, latest: &[Message]) {
    println!("{total} messages posted in {elapsed:?}; newest:");
    for m in latest {
        println!("  {}: {}", m.author, m.text);
    }
}
