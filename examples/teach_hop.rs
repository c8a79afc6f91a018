//! Teaching program 3: Motor's hop on its own — a future completed by a coroutine. No
//! database needed.
//!
//! Motor 0.1–0.6 let Tornado code `yield` a PyMongo call: the call ran in a greenlet, and when
//! it finished, the greenlet resolved a Future the event loop was waiting on. The driver's
//! async façade (`may_mongo::motor`) does the same in Rust, and this program shows the
//! mechanism and nothing else:
//!
//! 1. The async side makes a oneshot channel. Its receiver is the future it will await.
//! 2. The blocking work moves into a new may coroutine, which owns the sender. Here the work
//!    is a blocking-style read from a loopback server that answers after 20 ms.
//! 3. The future is polled, finds nothing, and stores the task's waker in the channel. The
//!    task is now pending, and its thread is free for other tasks.
//! 4. The coroutine finishes and sends. The send wakes the waker, the executor polls the
//!    future again, and it is ready.
//!
//! The executor is a 15-line `block_on`. Any executor (tokio, async-std) works the same way,
//! because nothing here knows which one is polling. The second half times 10,000 hops with
//! no I/O in them: the cost of going from the async side to a coroutine and back.
//!
//! ```text
//! cargo run --release --example teach_hop
//! ```

use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

/// The smallest executor: poll; if pending, sleep the thread until the waker unparks it.
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            println!("    waker: woken from {:?}", std::thread::current().id());
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => {
                println!("    executor: pending; its thread sleeps");
                std::thread::park();
            }
        }
    }
}

/// Runs `work` in a coroutine and returns the future of its result: the hop.
fn hop<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    may::go!(move || {
        let _ = tx.send(work());
    });
    rx
}

fn main() {
    may::config().set_workers(2).set_worker_pin(false);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        conn.write_all(b"pong").unwrap();
    });

    println!(
        "main ({:?}): awaiting a blocking call that runs in a coroutine",
        std::thread::current().id()
    );
    let reply = block_on(async {
        hop(move || {
            println!(
                "    coroutine ({:?}): blocking-style round trip",
                std::thread::current().id()
            );
            let mut s = may::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap(); // parks the coroutine, not a thread
            String::from_utf8_lossy(&buf).into_owned()
        })
        .await
        .unwrap()
    });
    println!("main: got {reply:?}\n");

    // The hop's own cost: a coroutine spawned, run, and its result sent back, 10,000 times.
    const HOPS: u32 = 10_000;
    let started = Instant::now();
    let quiet = |f: oneshot::Receiver<u32>| {
        // A quieter block_on than the one above (no printing) for the timing.
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            match f.as_mut().poll(&mut cx) {
                Poll::Ready(out) => return out.unwrap(),
                Poll::Pending => std::thread::park(),
            }
        }
    };
    let mut sum = 0u64;
    for i in 0..HOPS {
        sum += u64::from(quiet(hop(move || i)));
    }
    assert_eq!(sum, u64::from(HOPS) * u64::from(HOPS - 1) / 2);
    println!(
        "{HOPS} hops one after another: {:.1} µs each (spawn a coroutine, run it, send, wake, poll)",
        started.elapsed().as_secs_f64() * 1e6 / f64::from(HOPS)
    );
}
