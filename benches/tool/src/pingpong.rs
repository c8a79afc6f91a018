//! The physical limit: the exact bytes of a driver's `find_one` request, written and its
//! reply read back, over plain std sockets, with nothing else. No pool, no encoding, no
//! decoding: what loopback and the server cost, which no driver can beat.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use may_mongo::wire::{HEADER_LEN, Limits, MsgFlags, OpMsgBuilder};

use crate::stats::Sample;

/// The request a driver sends for `find_one({_id: 1})`.
pub fn find_one_request() -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = OpMsgBuilder::new(&mut out, MsgFlags::default(), Limits::default());
    b.body(&bson::doc! {
        "find": "coll", "filter": { "_id": 1 }, "limit": 1, "singleBatch": true, "$db": "bench",
    })
    .unwrap();
    b.finish(1, 0).unwrap();
    out
}

/// `connections` threads, each on its own socket, ping-ponging for `window`.
pub fn run(port: u16, connections: usize, window: Duration) -> Sample {
    let request = Arc::new(find_one_request());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (request, stop) = (request.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                sock.set_nodelay(true).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    sock.write_all(&request).unwrap();
                    sock.read_exact(&mut buf[..HEADER_LEN]).unwrap();
                    let len = i32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
                    sock.read_exact(&mut buf[HEADER_LEN..len]).unwrap();
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    let latencies = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    Sample::new(latencies, started.elapsed())
}
