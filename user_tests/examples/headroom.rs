//! How much of may's default 32 KiB coroutine stack is left for the caller's own frames around
//! each driver path, found by trying: the most stack (in whole KiB) a coroutine can have used
//! before the call and still complete it, on documents nested 100 deep. Each try runs in a
//! child process, because may ends the whole process on some stack overflows ("stack overflow
//! detected").
//!
//! ```text
//! cargo run --example headroom              # opt-level 0, as a user's `cargo build`
//! cargo run --release --example headroom
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use user_tests::{Fixture, PATHS};

const LEVELS: usize = 100;

/// Child: one try of path `index` after using `kib` KiB; exits 0 if it completed.
fn child(index: usize, kib: usize) -> ! {
    user_tests::init();
    let client = user_tests::client(may_mongo::Core::Coroutine, 4);
    let fixture = Fixture {
        coll: client.database("headroom").collection("c"),
        db: client.database("headroom"),
        levels: LEVELS,
    };
    // Index `PATHS.len()` is the reference: a coroutine that calls nothing.
    let path = PATHS.get(index).map(|(_, p)| *p);
    let h = may::go!(move || {
        let kept = user_tests::with_stack_used(kib * 1024, move || path.map(|p| p(&fixture)));
        std::mem::forget(kept); // a deep result: not freed on this stack
    });
    let started = Instant::now();
    while !h.is_done() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::process::exit(if h.is_done() && h.join().is_ok() {
        0
    } else {
        3
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 {
        child(args[1].parse().unwrap(), args[2].parse().unwrap());
    }
    user_tests::init();
    let client = user_tests::client(may_mongo::Core::Coroutine, 4);
    Fixture::new(&client, "headroom", LEVELS);
    let me = std::env::current_exe().unwrap();
    let works = |index: usize, kib: usize| {
        Command::new(&me)
            .args([index.to_string(), kib.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let profile = if cfg!(debug_assertions) {
        "debug (opt-level 0)"
    } else {
        "release"
    };
    println!(
        "KiB of may's default 32 KiB stack a coroutine can have used before the call, \
         documents nested {LEVELS} deep ({profile}):\n"
    );
    let names = PATHS.iter().map(|(name, _)| *name);
    for (index, name) in std::iter::once("(no driver call)").chain(names).enumerate() {
        // The reference first: a coroutine that calls nothing (index `PATHS.len()`).
        let index = (index + PATHS.len()) % (PATHS.len() + 1);
        // The largest amount that works, by bisection: works(lo), not works(hi).
        let (mut lo, mut hi) = (0usize, 32usize);
        if !works(index, 0) {
            println!("{name:<28}  fails with nothing used first");
            continue;
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if works(index, mid) {
                lo = mid
            } else {
                hi = mid
            }
        }
        println!("{name:<28}{lo:>4}");
    }
}
