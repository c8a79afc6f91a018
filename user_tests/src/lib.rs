//! What the tests and the stack report share: the server, documents nested to a given depth,
//! a serde type as deep as they are, and running code on may's default coroutine stack with
//! part of it already used, the way a user's own frames use it.

use std::sync::Once;
use std::time::{Duration, Instant};

use bson::{Document, RawDocumentBuf, doc};
use may_mongo::{Client, ClientOptions, Core};
use serde::{Deserialize, Serialize};

/// Process-wide setup: may's workers unpinned (tests share the machine).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        may::config().set_worker_pin(false);
    });
}

/// The server: `MONGODB_URI`, or an embedded FerretDB started once for this process.
pub fn uri() -> String {
    init();
    ferretdb_embed::shared_uri()
}

/// A client of `core` on the test server, with at most `max_pool_size` connections and a
/// 20 s limit on every operation (a hang becomes an error, not a stuck test).
pub fn client(core: Core, max_pool_size: usize) -> Client {
    let mut opts = ClientOptions::parse(uri()).run().expect("URI parses");
    opts.core = core;
    opts.max_pool_size = max_pool_size;
    opts.timeout = Some(Duration::from_secs(20));
    Client::with_options(opts).expect("client")
}

/// `{ d: { d: ... { leaf: true } } }`, `levels` deep (the outermost document is level 1),
/// built from raw bytes inside out and converted by the driver without recursion, so that
/// building it needs no deep stack. Dropping it recurses: drop deep documents on a thread.
pub fn nested(levels: usize) -> Document {
    may_mongo::decode_document(&nested_raw(levels)).expect("nested document")
}

/// [`nested`] as raw BSON.
pub fn nested_raw(levels: usize) -> RawDocumentBuf {
    let mut raw = bson::rawdoc! { "leaf": true };
    for _ in 1..levels {
        let mut outer = RawDocumentBuf::new();
        outer.append(bson::raw::cstr!("d"), raw);
        raw = outer;
    }
    raw
}

/// A user's own recursive type, to decode [`nested`] documents into with serde.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<Box<Node>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<bool>,
}

impl Node {
    /// How many levels deep it goes (itself included).
    pub fn depth(&self) -> usize {
        let mut n = 1;
        let mut cur = self;
        while let Some(next) = &cur.d {
            n += 1;
            cur = next;
        }
        n
    }
}

/// How many levels deep a document goes (itself included), counted without recursion.
pub fn depth(doc: &Document) -> usize {
    let mut deepest = 1;
    let mut todo: Vec<(&bson::Bson, usize)> = doc.values().map(|v| (v, 2)).collect();
    while let Some((v, level)) = todo.pop() {
        match v {
            bson::Bson::Document(d) => {
                deepest = deepest.max(level);
                todo.extend(d.values().map(|v| (v, level + 1)));
            }
            bson::Bson::Array(a) => {
                deepest = deepest.max(level);
                todo.extend(a.iter().map(|v| (v, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// A document whose `d` field is nested so that the whole document is `levels` deep.
pub fn record(id: i64, levels: usize) -> Document {
    let mut d = doc! { "_id": id };
    if levels > 1 {
        d.insert("d", nested(levels - 1));
    }
    d
}

/// Bytes of its own stack a user's code has used when it calls the driver, in these tests: a
/// quarter of may's default 32 KiB. (Unoptimised, may's own frames take about 8 KiB of it
/// before a coroutine's closure runs; `examples/headroom.rs` finds, path by path, how much
/// more there is.)
pub const USER_FRAMES: usize = 8 * 1024;

/// Uses about `bytes` of the current stack, then runs `f` from there.
#[inline(never)]
pub fn with_stack_used<R>(bytes: usize, f: impl FnOnce() -> R) -> R {
    // One kilobyte per frame: a large array would make the compiler probe past the guard
    // page in one go, and this must stay an ordinary depth.
    #[inline(never)]
    fn down<R>(left: usize, f: &mut Option<impl FnOnce() -> R>) -> R {
        let mut frame = [0u8; 1000];
        std::hint::black_box(&mut frame);
        if left <= 1024 {
            return (f.take().expect("called once"))();
        }
        let r = down(left - 1024, f);
        std::hint::black_box(&frame);
        r
    }
    down(bytes, &mut Some(f))
}

/// Runs `f` in a new coroutine on may's default stack, from [`USER_FRAMES`] deep, and returns
/// its result (so that deep results are dropped by the caller, on a thread's stack). Panics
/// if the coroutine did not finish within `limit`, and with the coroutine's panic if it
/// died (a stack overflow is may's `StackErr`). may ends the whole process on some overflows
/// (`stack overflow detected`), leaving no panic message: `USER_TESTS_TRACE=1` prints each
/// call site before its coroutine starts.
#[track_caller]
pub fn in_coroutine<R: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    init();
    if std::env::var_os("USER_TESTS_TRACE").is_some() {
        eprintln!("in_coroutine at {}", std::panic::Location::caller());
    }
    let h = may::go!(move || with_stack_used(USER_FRAMES, f));
    let started = Instant::now();
    while !h.is_done() {
        assert!(
            started.elapsed() < limit,
            "the coroutine did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let at = std::panic::Location::caller();
    match h.join() {
        Ok(r) => r,
        Err(panic) => match panic.downcast_ref::<String>() {
            Some(message) => panic!("the coroutine called at {at} panicked: {message}"),
            None => match panic.downcast_ref::<&str>() {
                Some(message) => panic!("the coroutine called at {at} panicked: {message}"),
                // may's stack overflow (generator's `StackErr`) or cancellation.
                None => panic!("the coroutine called at {at} died (a stack overflow?)"),
            },
        },
    }
}

/// Waits (up to 10 s) until every pool of `client` has no connection checked out or being
/// opened and no caller waiting; returns the final counts. may drops a dead coroutine's
/// locals just after `join()` returns, so the counts settle a moment after.
pub fn wait_idle(client: &Client) -> may_mongo::PoolStats {
    let started = Instant::now();
    loop {
        let s = client.pool_stats();
        if (s.checked_out == 0 && s.connecting == 0 && s.waiters == 0)
            || started.elapsed() > Duration::from_secs(10)
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` and returns how many bytes of the current stack it used, by painting the stack
/// below the current frame with a pattern first and finding, afterwards, the lowest word `f`
/// overwrote (the same sentinel trick may uses). Call it on a stack with at least `room`
/// bytes free below the caller: a coroutine spawned with a large stack, or a thread.
pub fn measure_stack<R>(room: usize, f: impl FnOnce() -> R) -> (R, usize) {
    const PAINT: u64 = 0x5A5A_5A5A_A5A5_A5A5;
    #[inline(never)]
    fn here() -> usize {
        let marker = 0u8;
        std::hint::black_box(&marker) as *const u8 as usize
    }
    #[inline(never)]
    fn paint(from: usize, words: usize) {
        // SAFETY: the words lie below every live frame of this stack (the caller guarantees
        // the room), where nothing lives yet.
        unsafe {
            let base = (from as *mut u64).sub(words);
            for i in 0..words {
                std::ptr::write_volatile(base.add(i), PAINT);
            }
        }
    }
    let top = here() & !7;
    // Leave this function's own callees (paint, f's entry) a little room above the paint.
    let start = top - 512;
    let words = (room - 1024) / 8;
    paint(start, words);
    let r = f();
    // SAFETY: as above; the region is still this stack's.
    let lowest = unsafe {
        let base = (start as *const u64).sub(words);
        (0..words)
            .find(|&i| std::ptr::read_volatile(base.add(i)) != PAINT)
            .map_or(start, |i| base.add(i) as usize)
    };
    if std::env::var_os("MEASURE_STACK_PRINT").is_some() {
        println!("lowest byte written: {lowest:#x}");
    }
    (r, top - lowest)
}

/// What a measured path works on: a collection of [`record`]s nested `levels` deep, its
/// database, and a GridFS file `f` whose metadata is nested as deep.
#[derive(Clone)]
pub struct Fixture {
    pub coll: may_mongo::Collection<Document>,
    pub db: may_mongo::Database,
    pub levels: usize,
}

impl Fixture {
    /// Fresh database `name` on `client`, seeded.
    pub fn new(client: &Client, name: &str, levels: usize) -> Fixture {
        let db = client.database(name);
        db.run_command(doc! { "dropDatabase": 1 }).run().unwrap();
        let coll = db.collection::<Document>("c");
        coll.insert_many(&[record(1, levels), record(2, levels)])
            .run()
            .unwrap();
        let mut options = may_mongo::GridFsUploadOptions::default();
        options.metadata = Some(nested(levels));
        db.gridfs_bucket(None)
            .upload_from_reader("f", &mut &b"hello"[..], options)
            .unwrap();
        Fixture { coll, db, levels }
    }
}

/// What a path returns, handed back whole so that deep documents are freed by the caller of
/// the measurement (on a thread), not inside it.
pub type Kept = Box<dyn std::any::Any + Send>;

/// One driver path, as a user would call it.
pub type Path = fn(&Fixture) -> Kept;

/// The paths the stack report and the headroom search measure, each a function of its own so
/// that its frames are its alone.
pub const PATHS: &[(&str, Path)] = &[
    ("find_one (Document)", |f| {
        Box::new(f.coll.find_one(doc! { "_id": 1 }).run().unwrap())
    }),
    ("find_one (Node)", |f| {
        let typed = f.coll.clone_with_type::<Node>();
        Box::new(typed.find_one(doc! { "_id": 1 }).run().unwrap())
    }),
    ("find + iterate", |f| {
        let all: Vec<_> = f
            .coll
            .find(doc! {})
            .run()
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Box::new(all)
    }),
    ("iterate, a getMore each", |f| {
        let options = may_mongo::FindOptions {
            batch_size: Some(1),
            ..Default::default()
        };
        let cursor = f.coll.find(doc! {}).with_options(options).run().unwrap();
        Box::new(cursor.map(Result::unwrap).collect::<Vec<_>>())
    }),
    ("find_one_and_update", |f| {
        let update = doc! { "$inc": { "n": 1 } };
        Box::new(
            f.coll
                .find_one_and_update(doc! { "_id": 1 }, update)
                .run()
                .unwrap(),
        )
    }),
    ("distinct", |f| {
        Box::new(f.coll.distinct("d", doc! {}).run().unwrap())
    }),
    ("insert_one", |f| {
        Box::new(f.coll.insert_one(doc! { "x": 1 }).run().unwrap())
    }),
    ("aggregate", |f| {
        let pipeline = vec![doc! { "$match": {} }];
        let cursor = f.coll.aggregate(pipeline).run().unwrap();
        Box::new(cursor.map(Result::unwrap).collect::<Vec<_>>())
    }),
    ("run_command (find)", |f| {
        let command = doc! { "find": "c", "filter": { "_id": 1 } };
        Box::new(f.db.run_command(command).run().unwrap())
    }),
    ("GridFS upload", |f| {
        let bucket = f.db.gridfs_bucket(None);
        let mut options = may_mongo::GridFsUploadOptions::default();
        options.metadata = Some(doc! { "a": 1 });
        Box::new(
            bucket
                .upload_from_reader("g", &mut &b"x"[..], options)
                .unwrap(),
        )
    }),
    ("GridFS find + iterate", |f| {
        let bucket = f.db.gridfs_bucket(None);
        let files = bucket.find(doc! {}).run().unwrap();
        Box::new(files.map(Result::unwrap).collect::<Vec<_>>())
    }),
    ("GridFS download by name", |f| {
        let bucket = f.db.gridfs_bucket(None);
        let mut stream = bucket.open_download_stream_by_name("f").run().unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut bytes).unwrap();
        Box::new((bytes, stream))
    }),
    ("(your code) drop a Document", |f| {
        // Built by the driver's decoder (no recursion), freed here: the caller's cost.
        let d = nested(f.levels);
        drop(d);
        Box::new(())
    }),
];
