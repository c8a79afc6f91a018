//! Teaching program 2: a cancel reaching a parked coroutine, and the connection it held
//! closed. No database needed.
//!
//! A coroutine holds a connection and waits in `read` for a reply that will never come. Its
//! owner cancels it. Here is what happens:
//!
//! 1. `JoinHandle::coroutine().cancel()` sets the coroutine's cancel flag and, because it is
//!    parked, wakes it.
//! 2. The coroutine resumes inside `read`, and may raises a panic there: a *cancel panic*.
//! 3. The panic unwinds the coroutine's stack like any panic: every value on it is dropped,
//!    the connection included. Dropping a socket closes it, so the server sees the end of
//!    the stream.
//! 4. `join()` returns `Err`, and the coroutine is gone.
//!
//! The driver relies on step 3. A connection in the middle of an operation is marked "in
//! flight", and if it is dropped by an unwind it is closed, never put back in the pool: its
//! next bytes would be the reply to a command nobody waits for. (A stack overflow unwinds
//! nothing; the pool takes such a connection back by another route, described in
//! notes/coroutine-costs.md.)
//!
//! One trap, found by this project's soak test: the park must let the caller clean up.
//! may's `Blocker` made the default way panics inside `park`, before the code that parked
//! can take itself off a wait queue. The driver's pool lost connections that way, to
//! waiters that were dead. The driver now makes its blockers with `Blocker::new(true)`:
//! `park` returns `Err(Canceled)`, the pool removes the waiter, and only then does it
//! continue the unwind with `may::coroutine::trigger_cancel_panic()`. The second half of
//! this program shows both kinds of blocker.
//!
//! ```text
//! cargo run --example teach_cancel
//! ```

use std::io::Read;
use std::time::Duration;

fn main() {
    may::config().set_workers(2).set_worker_pin(false);

    // A server that accepts, never answers, and reports when the client hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 16];
        // Blocks until the client closes its end: read returns 0 then.
        let n = conn.read(&mut buf).unwrap_or(0);
        closed_tx.send(n).unwrap();
    });

    /// Says when it is dropped: the unwind passed through the coroutine's frames.
    struct Connection(may::net::TcpStream);
    impl Drop for Connection {
        fn drop(&mut self) {
            println!("  dropped the connection (the unwind reached it)");
        }
    }

    let h = may::go!(move || {
        let mut conn = Connection(may::net::TcpStream::connect(addr).unwrap());
        println!("  coroutine: connected; reading a reply that will not come");
        let mut buf = [0u8; 16];
        let _ = conn.0.read(&mut buf); // parks here
        println!("  coroutine: never printed");
    });
    std::thread::sleep(Duration::from_millis(50));
    println!("main: cancelling the parked coroutine");
    // SAFETY: the coroutine holds nothing that an unwind cannot release.
    unsafe { h.coroutine().cancel() };
    let joined = h.join();
    println!(
        "main: join returned {}",
        if joined.is_err() {
            "Err (cancelled)"
        } else {
            "Ok"
        }
    );
    let n = closed_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    println!("server: read returned {n} bytes: the client closed the connection\n");

    // The two kinds of blocker, cancelled while parked.
    for ignore_cancel in [false, true] {
        let h = may::go!(move || {
            let blocker = may::sync::Blocker::new(ignore_cancel);
            let outcome = blocker.park(None);
            // Reached only when park returns.
            println!("  park returned {outcome:?}: the caller can clean up now");
            if outcome.is_err() {
                may::coroutine::trigger_cancel_panic();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        unsafe { h.coroutine().cancel() };
        let joined = h.join();
        println!(
            "Blocker::new({ignore_cancel}): {}",
            if ignore_cancel {
                "park returned Err(Canceled); the code cleaned up, then unwound"
            } else {
                "park never returned (may panicked inside it): nothing after it ran"
            }
        );
        assert!(joined.is_err());
    }
}
