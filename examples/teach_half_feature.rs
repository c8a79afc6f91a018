//! Teaching program 5: PyMongo's "half feature" beside the whole feature, run side by side.
//! No database needed.
//!
//! PyMongo 2.x's `use_greenlets` gave each greenlet its own socket, and took the socket back
//! when the greenlet died. But the socket I/O was not green: a greenlet waiting for a reply
//! blocked the whole OS thread, so the other greenlets waited too. Its author called it half
//! a feature. This program builds both halves with may:
//!
//! - **Half**: each coroutine has its own connection, but a `std::net::TcpStream`. A read
//!   blocks the worker *thread*, and every coroutine queued on that worker waits with it.
//! - **Whole**: the same code over `may::net::TcpStream`. A read parks only its coroutine,
//!   and the worker runs the others.
//!
//! The server answers each request after 5 ms, as a real server with some work to do
//! would. 200 coroutines make 10 round trips each on 2 worker threads. With the whole
//! feature all the 5 ms waits can overlap: the floor is 10 × 5 ms, and what the run takes
//! beyond that is connecting and scheduling. With half of it, at most 2 waits (one per
//! worker) overlap, and the run cannot take less than 200 × 10 × 5 ms / 2 = 5 s.
//!
//! ```text
//! cargo run --release --example teach_half_feature
//! ```

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const COROUTINES: usize = 200;
const ROUND_TRIPS: usize = 10;
const SERVER_DELAY: Duration = Duration::from_millis(5);

/// A server that answers each 8-byte request with the same 8 bytes, 5 ms later: one OS
/// thread per connection, so it can serve every coroutine's connection at once.
fn start_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8];
                while conn.read_exact(&mut buf).is_ok() {
                    std::thread::sleep(SERVER_DELAY);
                    if conn.write_all(&buf).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One coroutine's work: its own connection, `ROUND_TRIPS` blocking round trips.
fn work<S: Read + Write>(mut conn: S) {
    let mut buf = [0u8; 8];
    for i in 0..ROUND_TRIPS as u64 {
        conn.write_all(&i.to_le_bytes()).unwrap();
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(u64::from_le_bytes(buf), i);
    }
}

fn run(name: &str, addr: SocketAddr, green: bool) -> Duration {
    let started = Instant::now();
    let handles: Vec<_> = (0..COROUTINES)
        .map(|_| {
            may::go!(move || {
                if green {
                    work(may::net::TcpStream::connect(addr).unwrap());
                } else {
                    work(std::net::TcpStream::connect(addr).unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let took = started.elapsed();
    println!(
        "{name:5}: {COROUTINES} coroutines x {ROUND_TRIPS} round trips of {} ms in {:>6.0} ms ({:.0} round trips/s)",
        SERVER_DELAY.as_millis(),
        took.as_secs_f64() * 1e3,
        (COROUTINES * ROUND_TRIPS) as f64 / took.as_secs_f64()
    );
    took
}

fn main() {
    may::config().set_workers(2).set_worker_pin(false);
    let addr = start_server();
    let whole = run("whole", addr, true);
    let half = run("half", addr, false);
    println!(
        "\nSame code, same per-coroutine connections: the green sockets ran {:.0}x faster.\n\
         The floor is {} ms (10 waits of 5 ms, all overlapping); half the feature lets only\n\
         as many waits overlap as there are worker threads (2), so it needs about {} ms.",
        half.as_secs_f64() / whole.as_secs_f64(),
        ROUND_TRIPS as u128 * SERVER_DELAY.as_millis(),
        (COROUTINES * ROUND_TRIPS) as u128 * SERVER_DELAY.as_millis() / 2
    );
}
