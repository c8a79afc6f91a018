//! Teaching program 1: how a blocking call becomes a park. No database needed.
//!
//! A coroutine writes to a loopback echo server and reads the echo back with plain
//! blocking-style calls on a `may::net::TcpStream`. The server answers after 50 ms, so the
//! read finds nothing to read. Here is what happens then, and what this program prints:
//!
//! 1. `read` tries the socket, which may opened non-blocking, and gets `EAGAIN`.
//! 2. may registers the socket with the epoll set of the worker thread running the
//!    coroutine. Each may worker thread has one, and polls it between coroutines.
//! 3. The coroutine *yields*. Its registers are saved on its own stack (32 KiB by default),
//!    and the worker thread goes on to run other coroutines. Here that is a "ticker"
//!    coroutine, which prints while the reader is parked.
//! 4. The echo arrives. That worker's epoll wait reports the socket readable, and the
//!    coroutine runs again: it resumes inside `read`, which retries and gets the bytes.
//!
//! A read timeout, or `may::coroutine::sleep`, makes the park carry a timer. may 0.3.51 has
//! one timer thread, and when a timer fires, that thread resumes the coroutine right there
//! (`run_coroutine` in its timer handler) until it parks again. So after a sleep or a
//! timeout the next steps run on the timer thread. Watch the ticker's thread id change after
//! its first sleep. The second half of the program shows a read ending by its timeout.
//!
//! ```text
//! cargo run --example teach_park
//! ```

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Which OS thread is running us, as a short name.
fn thread() -> String {
    format!("{:?}", std::thread::current().id())
}

fn main() {
    may::config().set_workers(2).set_worker_pin(false);
    let t0 = Instant::now();
    let at = move || format!("{:>6.1} ms", t0.elapsed().as_secs_f64() * 1e3);

    // The echo server: a plain OS thread with std sockets, answering 50 ms late.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = conn.write_all(&buf[..n]);
                }
            });
        }
    });

    // A ticker: it shows that the worker threads keep running other coroutines while the
    // reader is parked.
    let ticker = may::go!(move || {
        for i in 0..4 {
            println!("{}  ticker   tick {i} on {}", at(), thread());
            may::coroutine::sleep(Duration::from_millis(20));
        }
    });

    let reader = may::go!(move || {
        let mut s = may::net::TcpStream::connect(addr).unwrap();
        println!("{}  reader   connected, writing, on {}", at(), thread());
        s.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        println!(
            "{}  reader   read: nothing yet -> park (on {})",
            at(),
            thread()
        );
        s.read_exact(&mut buf).unwrap();
        println!(
            "{}  reader   resumed with {:?} on {}",
            at(),
            std::str::from_utf8(&buf).unwrap(),
            thread()
        );

        // The same read with a 20 ms timeout: the park ends by the timer, not the socket.
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s.write_all(b"late").unwrap();
        let started = Instant::now();
        let e = s.read_exact(&mut buf).unwrap_err();
        println!(
            "{}  reader   timed out after {:.0} ms: {:?} (a may timer ended the park)",
            at(),
            started.elapsed().as_secs_f64() * 1e3,
            e.kind()
        );
    });
    reader.join().unwrap();
    ticker.join().unwrap();
    println!(
        "\nOne coroutine blocked twice, in plain blocking-style code, and no worker thread was ever\n\
         blocked: the ticker kept ticking. (The ticker's thread changes after its first sleep:\n\
         may's timer thread runs a coroutine whose timer fired until it parks again.)"
    );
}
