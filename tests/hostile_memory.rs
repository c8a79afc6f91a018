//! What a hostile or broken server can make the driver allocate. This file is a test binary of
//! its own because it installs a counting global allocator: the figure under test is the
//! peak of live heap bytes while one call meets the hostile reply.
//!
//! The two cores run as two tests in parallel, so each bound leaves room for the other's
//! ordinary allocations; the faults they guard against cost tens of megabytes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bson::{Document, doc};
use common::mock::{Action, MockServer, hello_reply};
use common::run_on;
use may_mongo_protocol::{HEADER_LEN, Header, OpCode};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns how far the live heap rose above where it stood before.
fn peak_growth(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

both_cores!(a_header_claiming_40_mb_costs_what_arrived, |core| {
    // The reply's header declares 40 MB (under the 48 MB limit, so it is not refused), then
    // 100 bytes come and the server falls silent. The read buffer used to be zero-filled to
    // the declared length before any byte of the body arrived: 40 MB per call for a few
    // bytes' effort.
    let server = MockServer::start(|req, id| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        "find" => {
            let mut bytes = vec![0u8; HEADER_LEN + 100];
            Header {
                length: 40_000_000,
                request_id: 7,
                response_to: id,
                op_code: OpCode::Msg as i32,
            }
            .write(&mut bytes[..HEADER_LEN]);
            Action::Raw(bytes)
        }
        _ => Action::Reply(doc! { "ok": 1.0 }),
    });
    let client = server.client(core, "", "directConnection=true", |o| {
        o.socket_timeout = Some(Duration::from_millis(300));
    });
    let db = client.database("db");
    run_on(core, move || db.run_command(doc! { "ping": 1 }).run()).unwrap();
    let coll = client.database("db").collection::<Document>("c");
    let mut outcome = None;
    let growth = peak_growth(|| outcome = Some(run_on(core, move || coll.find_one(doc! {}).run())));
    let e = outcome.unwrap().unwrap_err();
    assert!(e.is_network_error(), "{e}");
    assert!(
        growth < 8 << 20,
        "the heap grew by {growth} bytes for a reply of which 116 bytes arrived"
    );
});
