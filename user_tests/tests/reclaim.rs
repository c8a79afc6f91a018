//! A connection is never lost with its coroutine. A coroutine holding a checked-out connection
//! ends in each of the four ways a coroutine can end — it returns, it panics, it is cancelled,
//! its stack overflows (which unwinds nothing) — several times more often than the pool has
//! connections; afterwards the pool's counts are back to idle, the connection came back or was
//! closed as each way requires, and calls from a coroutine and from a plain thread are served.
//!
//! The hook is a command event handler: the driver calls it on the caller's own stack while
//! the connection for the command is checked out (between encoding the command and sending
//! it), which is exactly where user code can run while the driver holds a connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use may_mongo::pool::ConnectionClosedReason;
use may_mongo::{ClientOptions, CmapEvent, CommandEvent, Core, EventHandler};

/// What the handler does to the next `find` it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Ending {
    Return = 1,
    Panic = 2,
    Cancel = 3,
    Overflow = 4,
}

#[derive(Default)]
struct Hook {
    /// The ending to act out on the next `find` (0: none); taken by the first to see it.
    next: AtomicU8,
    /// Set by a handler about to sleep (for the test to cancel it).
    sleeping: AtomicBool,
    /// Connections the pool closed because of an error (a reclaimed connection counts here).
    closed_on_error: AtomicUsize,
}

/// A frame far larger than may's default 32 KiB stack: calling it overflows at once. Its
/// stack probes touch one word per page; if the first of them could fall on the lowest word
/// of the coroutine's stack, may would take the overflow for a full stack and end the whole
/// process, so the call goes through a small frame of padding when the stack pointer sits at
/// the very start of a page.
#[inline(never)]
fn overflow() -> u8 {
    #[inline(never)]
    fn huge() -> u8 {
        let mut frame = std::mem::MaybeUninit::<[u8; 64 * 1024]>::uninit();
        std::hint::black_box(&mut frame);
        1
    }
    #[inline(never)]
    fn padded() -> u8 {
        let pad = [0u8; 256];
        std::hint::black_box(&pad);
        huge()
    }
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    if sp % 4096 < 512 { padded() } else { huge() }
}

impl Hook {
    fn command(&self, event: &CommandEvent) {
        let CommandEvent::Started(e) = event else {
            return;
        };
        if e.command_name != "find" {
            return;
        }
        match self.next.swap(0, Ordering::AcqRel) {
            x if x == Ending::Panic as u8 => panic!("the handler panics"),
            x if x == Ending::Cancel as u8 => {
                self.sleeping.store(true, Ordering::Release);
                may::coroutine::sleep(Duration::from_secs(30));
            }
            x if x == Ending::Overflow as u8 => {
                std::hint::black_box(overflow());
            }
            _ => {}
        }
    }

    fn cmap(&self, event: &CmapEvent) {
        if let CmapEvent::ConnectionClosed(e) = event
            && e.reason == ConnectionClosedReason::Error
        {
            self.closed_on_error.fetch_add(1, Ordering::AcqRel);
        }
    }
}

const MAX_POOL_SIZE: usize = 2;
const TIMES: usize = 2 * MAX_POOL_SIZE + 1;

fn each_ending(core: Core) {
    user_tests::init();
    let hook = Arc::new(Hook::default());
    let mut opts = ClientOptions::parse(user_tests::uri()).run().unwrap();
    opts.core = core;
    opts.max_pool_size = MAX_POOL_SIZE;
    // Any hang becomes an error within this limit instead of a stuck test.
    opts.timeout = Some(Duration::from_secs(20));
    let h = hook.clone();
    opts.command_event_handler = Some(EventHandler::callback(move |e| h.command(&e)));
    let h = hook.clone();
    opts.cmap_event_handler = Some(EventHandler::callback(move |e| h.cmap(&e)));
    let client = may_mongo::Client::with_options(opts).unwrap();
    let coll = client
        .database(&format!("user_reclaim_{}", core.name()))
        .collection::<Document>("c");
    coll.drop().run().unwrap();
    coll.insert_one(doc! { "_id": 1 }).run().unwrap();

    for ending in [
        Ending::Return,
        Ending::Panic,
        Ending::Cancel,
        Ending::Overflow,
    ] {
        for time in 0..TIMES {
            let closed_before = hook.closed_on_error.load(Ordering::Acquire);
            hook.sleeping.store(false, Ordering::Release);
            hook.next.store(ending as u8, Ordering::Release);
            let c = coll.clone();
            let h = may::go!(move || c.find_one(doc! { "_id": 1 }).run().map(|d| d.is_some()));
            if ending == Ending::Cancel {
                let started = Instant::now();
                while !hook.sleeping.load(Ordering::Acquire) {
                    assert!(started.elapsed() < Duration::from_secs(10), "handler ran");
                    std::thread::sleep(Duration::from_millis(1));
                }
                // SAFETY: the coroutine keeps no thread-local state across its park.
                unsafe { h.coroutine().cancel() };
            }
            let joined = h.join();
            match ending {
                Ending::Return => assert!(matches!(joined, Ok(Ok(true)))),
                // A panic, a cancellation and an overflow all end the coroutine with `Err`.
                _ => assert!(joined.is_err(), "{ending:?} #{time} ended the coroutine"),
            }
            let stats = user_tests::wait_idle(&client);
            assert_eq!(
                (stats.checked_out, stats.connecting, stats.waiters),
                (0, 0, 0),
                "{core:?} {ending:?} #{time}: nothing left checked out ({stats:?})"
            );
            assert!(stats.total <= MAX_POOL_SIZE, "{stats:?}");
            // CMAP events are delivered just after the pool's lock is released, so the
            // counts can be idle a moment before the handler has heard of the close.
            let expected = usize::from(ending == Ending::Overflow);
            let settle = Instant::now() + Duration::from_secs(5);
            while hook.closed_on_error.load(Ordering::Acquire) - closed_before < expected
                && Instant::now() < settle
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            let closed = hook.closed_on_error.load(Ordering::Acquire) - closed_before;
            if ending == Ending::Overflow {
                // Its frames were abandoned: the pool took the connection back, closed.
                assert_eq!(closed, 1, "{core:?} overflow #{time}: reclaimed and closed");
            } else {
                // It unwound (or returned) before sending: the connection is reusable.
                assert_eq!(closed, 0, "{core:?} {ending:?} #{time}: kept");
            }
            // Nothing hangs: a coroutine and a plain thread are both served.
            let c = coll.clone();
            let from_coroutine = may::go!(move || c.find_one(doc! { "_id": 1 }).run())
                .join()
                .unwrap();
            assert!(from_coroutine.unwrap().is_some());
            let c = coll.clone();
            let from_thread = std::thread::spawn(move || c.find_one(doc! { "_id": 1 }).run())
                .join()
                .unwrap();
            assert!(from_thread.unwrap().is_some());
        }
    }
    client.shutdown();
}

#[test]
fn coroutine_core() {
    each_ending(Core::Coroutine);
}

#[test]
fn threaded_core() {
    each_ending(Core::Threaded);
}
