//! One small program three ways (this file, `messages_coroutines.rs`, `messages_threads.rs`):
//! 100 writers each post 10 short messages, then the 5 newest are read back.
//!
//! Here: a tokio program using the async API. Each `.await`ed call runs the blocking driver
//! in a may coroutine (`--threaded`: on the async API's thread pool), so the tokio workers
//! never block.
//!
//!     cargo run --release -p async_tests --example messages_tokio [-- --threaded]

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use async_tests::Message;
use bson::doc;
use may_mongo::Core;
use may_mongo::motor::Collection;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> may_mongo::Result<()> {
    let core = if std::env::args().any(|a| a == "--threaded") {
        Core::Threaded
    } else {
        Core::Coroutine
    };
    // Starting the embedded server (when MONGODB_URI is unset) blocks: do it off the runtime.
    let uri = tokio::task::spawn_blocking(async_tests::uri).await.unwrap();
    println!("server: {uri}; async API on the {} core", core.name());
    let client = async_tests::client(core);
    let messages: Collection<Message> = client.database("messages_example").collection("tokio");
    messages.drop().await?;

    let started = Instant::now();
    let writers: Vec<_> = (0..100)
        .map(|w| {
            let messages = messages.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let m = Message::new(w, i);
                    messages.insert_one(m).await?;
                }
                Ok::<_, may_mongo::Error>(())
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task")?;
    }
    let latest = messages
        .find(doc! {})
        .with_options(Message::newest(5))
        .await?
        .collect_all()
        .await?;
    let total = messages.count_documents(doc! {}).await?;
    async_tests::report(total, started.elapsed(), &latest);
    client.shutdown().await;
    Ok(())
}
