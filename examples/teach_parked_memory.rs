//! Teaching program 6: what a parked coroutine costs in memory. No database needed.
//!
//! A may coroutine's stack is 32 KiB of *address space* by default, but the kernel gives it
//! memory only for the pages it touches. A coroutine that parks after a shallow call touches
//! little more than the top page of its stack, plus may's own bookkeeping: the coroutine's
//! control block, its place in a queue, a timer entry. So the real cost of a parked
//! coroutine is "pages touched", not "stack size".
//!
//! This program measures it the simplest way: resident memory (`VmRSS`, from
//! `/proc/self/status`) before and after 10,000 coroutines are parked, divided by 10,000.
//! It does it twice:
//!
//! 1. each coroutine parks right away, in `may::coroutine::sleep`;
//! 2. each coroutine first calls a function with a 4 KiB local buffer, which touches one more
//!    page of its stack, and parks *inside* that call, as a coroutine parked deep inside a
//!    driver call does (selection, check-out, the pool's wait queue).
//!
//! The difference between the two is close to one page per coroutine (a whole page would be
//! 4 KiB x 10,000 = 39 MiB; it measured 3.4–4.2 KiB each in four runs on this project's
//! machine, 2026-12-06).
//! The driver's own figures (notes/coroutine-costs.md, section 3) moved by about this much
//! when a coroutine waiting in the pool's queue went from touching two pages to one.
//!
//! ```text
//! cargo run --release --example teach_parked_memory
//! ```

use std::time::Duration;

/// A thread-caching allocator, as every program in this repository links (see
/// notes/coroutine-costs.md, section 4), so that these figures are the ones a driver user
/// who follows that advice would see.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TASKS: usize = 10_000;
/// Long enough for every coroutine to be parked when RSS is read.
const PARKED_FOR: Duration = Duration::from_millis(1500);

/// Resident memory of this process, in KiB, as the kernel counts it.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Parks the calling coroutine with a 4 KiB buffer live on its stack. `black_box` keeps the
/// compiler from removing the buffer, and writing every byte makes the kernel map the page.
#[inline(never)]
fn park_one_page_deeper(d: Duration) {
    let mut page = [0u8; 4096];
    for (i, b) in page.iter_mut().enumerate() {
        *b = i as u8;
    }
    std::hint::black_box(&mut page);
    may::coroutine::sleep(d);
    std::hint::black_box(&page);
}

/// Spawns `TASKS` coroutines running `body`, waits until they are all parked, and returns
/// the resident memory they added, in KiB per coroutine.
fn measure(body: fn()) -> f64 {
    let before = rss_kib();
    let (parked_tx, parked_rx) = may::sync::mpsc::channel::<()>();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let parked_tx = parked_tx.clone();
            // SAFETY: the closure uses no thread-local storage.
            unsafe {
                may::coroutine::spawn(move || {
                    // Say "about to park" first: the sleep below is the park.
                    parked_tx.send(()).unwrap();
                    body();
                })
            }
        })
        .collect();
    for _ in 0..TASKS {
        parked_rx.recv().unwrap();
    }
    // Every coroutine has sent, so each is parked or a few instructions from it.
    may::coroutine::sleep(Duration::from_millis(200));
    let during = rss_kib();
    for h in handles {
        h.join().unwrap();
    }
    (during.saturating_sub(before)) as f64 / TASKS as f64
}

fn main() {
    may::config().set_workers(2).set_worker_pin(false);
    let (shallow, deep) = may::go!(move || {
        // Warm up: the first spawns grow may's queues and the allocator's caches once.
        measure(|| may::coroutine::sleep(PARKED_FOR));
        let shallow = measure(|| may::coroutine::sleep(PARKED_FOR));
        let deep = measure(|| park_one_page_deeper(PARKED_FOR));
        (shallow, deep)
    })
    .join()
    .unwrap();

    println!("{TASKS} coroutines, may's default stack of 32 KiB each:");
    println!("  parked in sleep:                    {shallow:>5.1} KiB of RSS each");
    println!("  parked one 4 KiB frame deeper:      {deep:>5.1} KiB of RSS each");
    println!(
        "  difference:                         {:>5.1} KiB each, {:.1} MiB for all {TASKS}",
        deep - shallow,
        (deep - shallow) * TASKS as f64 / 1024.0
    );
    assert!(
        deep > shallow + 2.0,
        "touching one more page of stack should cost close to 4 KiB per coroutine"
    );
}
