//! How much of the caller's stack each driver path uses, at nesting 1, 20, 50 and 100, in this
//! crate's build: opt-level 0 with `cargo run`, like a user's `cargo build`; release with
//! `--release`. Each path runs in a coroutine with a 2 MiB stack, painted below the caller's
//! frame; the figure is the deepest byte the path touched below its caller. (may's own frames
//! at the start of a coroutine come on top: see `headroom.rs`.)
//!
//! ```text
//! cargo run --example stack_report                 # opt-level 0
//! cargo run --release --example stack_report
//! ```
//! `REPORT_DEPTHS=1,100` and `REPORT_ONLY=<path prefix>` narrow it down.

use may_mongo::Core;
use user_tests::{Fixture, Kept, PATHS, client, measure_stack};

const ROOM: usize = 1 << 20;

/// The stack `path` uses below its caller, in bytes.
fn measure(path: user_tests::Path, fixture: &Fixture) -> usize {
    let fixture = fixture.clone();
    // SAFETY: a plain closure with no thread-local state.
    let h = unsafe {
        may::coroutine::Builder::new()
            .stack_size(2 * ROOM / 8)
            .spawn(move || measure_stack(ROOM, || path(&fixture)))
    }
    .unwrap();
    let (kept, used): (Kept, usize) = h.join().unwrap();
    // Deep results are freed on a thread, outside the measurement.
    std::thread::spawn(move || drop(kept)).join().unwrap();
    used
}

fn main() {
    user_tests::init();
    let profile = if cfg!(debug_assertions) {
        "debug (opt-level 0)"
    } else {
        "release"
    };
    let depths: Vec<usize> = match std::env::var("REPORT_DEPTHS") {
        Ok(d) => d.split(',').map(|x| x.parse().unwrap()).collect(),
        Err(_) => vec![1, 20, 50, 100],
    };
    let only = std::env::var("REPORT_ONLY").ok();
    let client = client(Core::Coroutine, 4);
    let fixtures: Vec<Fixture> = depths
        .iter()
        .map(|&levels| Fixture::new(&client, &format!("stack_report_{levels}"), levels))
        .collect();
    println!("stack used on the caller's side, in KiB ({profile}):\n");
    print!("{:<28}", "path \\ nesting");
    for d in &depths {
        print!("{d:>8}");
    }
    println!();
    for (name, path) in PATHS {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        print!("{name:<28}");
        for fixture in &fixtures {
            print!("{:>8.1}", measure(*path, fixture) as f64 / 1024.0);
        }
        println!();
    }
    // Opening a connection on the way: clear the pools, then one find_one.
    client.clear_pools();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (_, find_one) = PATHS[0];
    let opened = measure(find_one, &fixtures[0]);
    println!("{:<28}{:>8.1}", "find_one, opening", opened as f64 / 1024.0);
}
