//! Measures how much coroutine stack one client life cycle uses: connect, handshake,
//! insert_one, find_one, run_command.
//!
//! may prints a coroutine's stack use (in 8-byte words) when it exits, if its stack size is
//! odd; this example spawns one such coroutine with a generous 2 MiB stack and lets may report.
//! Compare profiles:
//!
//! ```text
//! cargo run --release --example stack_use
//! cargo run --example stack_use                      # this workspace's dev profile (opt-level 1)
//! cargo run --config profile.dev.opt-level=0 --example stack_use
//! ```

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use may_mongo::{Client, bson::doc};

fn main() {
    may::config().set_worker_pin(false);
    let (uri, _server) = match std::env::var("MONGODB_URI") {
        Ok(uri) => (uri, None),
        Err(_) => {
            let server = ferretdb_embed::Server::start(&Default::default()).expect("FerretDB");
            (server.uri(), Some(server))
        }
    };
    // SAFETY: a plain closure with no thread-local state.
    let h = unsafe {
        may::coroutine::Builder::new()
            .name("client-life-cycle".into())
            .stack_size(0x40001)
            .spawn(move || {
                let client = Client::with_uri_str(&uri).unwrap();
                let c = client
                    .database("stack_use")
                    .collection::<bson::Document>("c");
                let r = c.insert_one(doc! { "x": 1 }).run().unwrap();
                c.find_one(doc! { "_id": r.inserted_id })
                    .run()
                    .unwrap()
                    .unwrap();
                client
                    .database("admin")
                    .run_command(doc! { "ping": 1 })
                    .run()
                    .unwrap();
                client.shutdown();
            })
    }
    .unwrap();
    h.join().unwrap();
    // may prints the figure from the worker after join returns; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(200));

    // Reading a document nested 100 deep: the driver's Document decoding (no recursion)
    // against serde's (one frame set per level).
    let mut deep = bson::rawdoc! { "leaf": true };
    for _ in 0..99 {
        let mut outer = bson::RawDocumentBuf::new();
        outer.append(bson::raw::cstr!("d"), deep);
        deep = outer;
    }
    for (name, serde) in [
        ("driver (find_one::<Document>)", false),
        ("serde (bson::deserialize_from_slice)", true),
    ] {
        let raw = deep.clone();
        println!("decoding a document nested 100 deep, {name}:");
        // SAFETY: as above.
        let h = unsafe {
            may::coroutine::Builder::new()
                .stack_size(0x40001)
                .spawn(move || {
                    let d: bson::Document = if serde {
                        bson::deserialize_from_slice(raw.as_bytes()).unwrap()
                    } else {
                        may_mongo::decode_document(&raw).unwrap()
                    };
                    std::mem::forget(d); // dropping a deep Document recurses too: not measured
                })
        }
        .unwrap();
        h.join().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!("(used size is in 8-byte words; may's default stack is 4096 words = 32 KiB)");
}
