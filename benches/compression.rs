//! What OP_COMPRESSED costs: each compressor on an `insert` of 1, 10 and 1,000 tweet-like
//! documents, with one reused `Codec` as a connection has. Prints a markdown table (the one in
//! notes/compression.md). Run: `cargo bench --bench compression`.

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use may_mongo_protocol::{Codec, Compressor, Limits, MsgFlags, OpMsgBuilder};

fn insert_message(n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = OpMsgBuilder::new(&mut buf, MsgFlags::default(), Limits::default());
    b.body(&bson::doc! { "insert": "tweets", "$db": "bench" })
        .unwrap();
    b.begin_sequence("documents").unwrap();
    for i in 0..n {
        b.push(&bson::doc! {
            "_id": i as i64,
            "user": format!("user{}", i % 97),
            "text": format!("tweet number {i} about the weather in city {}", i % 13),
            "retweets": (i * 7 % 100) as i32,
            "created": bson::DateTime::from_millis(1_700_000_000_000 + i as i64 * 1000),
        })
        .unwrap();
    }
    b.finish(1, 0).unwrap();
    buf
}

fn main() {
    let compressors = [
        ("snappy", Compressor::Snappy),
        ("zlib (level 6)", Compressor::Zlib { level: None }),
        ("zlib (level 1)", Compressor::Zlib { level: Some(1) }),
        ("zstd", Compressor::Zstd),
    ];
    let mut codec = Codec::new();
    println!("| documents | message | compressor | compressed | compress | decompress |");
    println!("|---|---|---|---|---|---|");
    for n in [1usize, 10, 1000] {
        let message = insert_message(n);
        for (name, c) in compressors {
            let iters = (200_000 / n).max(200);
            let mut packed = Vec::new();
            let t = Instant::now();
            for _ in 0..iters {
                packed.clear();
                codec.compress_message(&message, c, &mut packed).unwrap();
            }
            let compress = t.elapsed().as_secs_f64() / iters as f64;
            let mut unpacked = Vec::new();
            let t = Instant::now();
            for _ in 0..iters {
                codec
                    .decompress_message(&packed, &Limits::default(), &mut unpacked)
                    .unwrap();
            }
            let decompress = t.elapsed().as_secs_f64() / iters as f64;
            assert_eq!(unpacked, message);
            println!(
                "| {n} | {} B | {name} | {} B ({:.0}%) | {:.1} µs | {:.1} µs |",
                message.len(),
                packed.len(),
                100.0 * packed.len() as f64 / message.len() as f64,
                compress * 1e6,
                decompress * 1e6
            );
        }
    }
}
