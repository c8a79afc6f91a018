//! A may 0.3.51 heap corruption, reduced to may alone: not part of any test, run by hand.
//!
//! Ten thousand coroutines share a cap of 50 permits. Each takes a permit (parking on may's
//! `Semphore`, or on a may `mpmc` channel of tokens, until one is free), then sleeps 200 µs
//! with `may::coroutine::sleep`, yields, and gives the permit back. About half the processes
//! die in glibc's `malloc(): unaligned tcache chunk detected` (or `fastbin`); gdb puts the
//! abort inside the allocation in may's `Sleep::subscribe`, which is where the damage is
//! noticed, not where it was done. Yielding instead of sleeping, or sleeping without the cap,
//! never failed.
//!
//! A second mode shows a lost wake-up: `none park` has no cap, and each coroutine parks on its
//! own `Blocker` with a 1 ms timeout that nobody unparks early. Some processes never finish:
//! a coroutine whose timer fired before may had stored it to be woken stays parked.
//!
//! ```text
//! cargo run --release -p greenlet_pool --example park_then_sleep -- semphore sleep
//! cargo run --release -p greenlet_pool --example park_then_sleep -- channel sleep
//! cargo run --release -p greenlet_pool --example park_then_sleep -- semphore yield
//! cargo run --release -p greenlet_pool --example park_then_sleep -- none park
//! ```
//!
//! Run it a few dozen times, several at once: one run passes more often than not.

use std::sync::Arc;
use std::time::Duration;

/// The cap: one of may's two ways to park a coroutine until a permit is free, or none.
enum Cap {
    None,
    Semphore(Box<may::sync::Semphore>),
    Channel(may::sync::mpmc::Sender<()>, may::sync::mpmc::Receiver<()>),
}

impl Cap {
    fn new(kind: &str, permits: usize) -> Cap {
        match kind {
            "none" => Cap::None,
            "semphore" => Cap::Semphore(Box::new(may::sync::Semphore::new(permits))),
            "channel" => {
                let (tx, rx) = may::sync::mpmc::channel();
                for _ in 0..permits {
                    tx.send(()).expect("the receiver is alive");
                }
                Cap::Channel(tx, rx)
            }
            other => panic!("cap {other:?}: use semphore, channel or none"),
        }
    }

    fn take(&self) {
        match self {
            Cap::None => {}
            Cap::Semphore(s) => s.wait(),
            Cap::Channel(_, rx) => rx.recv().expect("the sender is alive"),
        }
    }

    fn give(&self) {
        match self {
            Cap::None => {}
            Cap::Semphore(s) => s.post(),
            Cap::Channel(tx, _) => tx.send(()).expect("the receiver is alive"),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "semphore".into());
    let pause = args.next().unwrap_or_else(|| "sleep".into());
    if !["sleep", "yield", "park"].contains(&pause.as_str()) {
        panic!("pause {pause:?}: use sleep, yield or park");
    }
    may::config().set_worker_pin(false);
    for round in 1..=5 {
        let cap = Arc::new(Cap::new(&kind, 50));
        let coroutines: Vec<_> = (0..10_000)
            .map(|_| {
                let (cap, pause) = (cap.clone(), pause.clone());
                may::go!(move || {
                    cap.take();
                    match pause.as_str() {
                        "sleep" => may::coroutine::sleep(Duration::from_micros(200)),
                        "park" => {
                            let timer = may::sync::Blocker::new(true);
                            let _ = timer.park(Some(Duration::from_millis(1)));
                        }
                        _ => {}
                    }
                    may::coroutine::yield_now();
                    cap.give();
                })
            })
            .collect();
        for c in coroutines {
            c.join().expect("the coroutine finished");
        }
        println!("round {round}: 10,000 coroutines ({kind}, {pause}) finished");
    }
}
