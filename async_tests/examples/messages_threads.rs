//! The program of `messages_tokio.rs`, blocking-style on OS threads (the threaded core): plain sequential
//! calls, each thread blocked in the kernel while its call waits for the server.
//!
//!     cargo run --release -p async_tests --example messages_threads

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use async_tests::Message;
use bson::doc;
use may_mongo::{Client, ClientOptions, Collection, Core};

fn main() -> may_mongo::Result<()> {
    let uri = async_tests::uri();
    println!("server: {uri}; blocking API on OS threads");
    let mut options = ClientOptions::parse(&uri).run()?;
    options.core = Core::Threaded;
    let client = Client::with_options(options)?;
    let messages: Collection<Message> = client.database("messages_example").collection("threads");
    messages.drop().run()?;

    let started = Instant::now();
    let writers: Vec<_> = (0..100)
        .map(|w| {
            let messages = messages.clone();
            std::thread::spawn(move || -> may_mongo::Result<()> {
                for i in 0..10 {
                    messages.insert_one(Message::new(w, i)).run()?;
                }
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer thread")?;
    }
    let latest: Vec<Message> = messages
        .find(doc! {})
        .with_options(Message::newest(5))
        .run()?
        .collect::<Result<_, _>>()?;
    let total = messages.count_documents(doc! {}).run()?;
    async_tests::report(total, started.elapsed(), &latest);
    client.shutdown();
    Ok(())
}
