//! How much of the caller's stack each driver path uses, at nesting 1, 20, 50 and 100, in
//! this crate's build (opt-level 0 with `cargo run`, like a user's `cargo build`; release with
//! `--release`). Each path runs in a coroutine with a 2 MiB stack painted below the caller's
//! frame; the figure is the deepest byte the path touched, from the coroutine's point of
//! view: what it needs of may's default 32 KiB.
//!
//! ```text
//! cargo run --example stack_report                 # opt-level 0
//! cargo run --release --example stack_report
//! ```

use std::time::Duration;

use bson::{Document, doc};
use may_mongo::{Core, FindOneAndModifyOptions, GridFsBucketOptions, GridFsUploadOptions};
use user_tests::{Node, client, measure_stack, nested, record};

const ROOM: usize = 1 << 20;

fn measure<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> usize {
    // SAFETY: a plain closure with no thread-local state.
    let h = unsafe {
        may::coroutine::Builder::new()
            .stack_size(2 * ROOM / 8)
            .spawn(move || {
                let (r, used) = measure_stack(ROOM, f);
                // Deep results are freed outside the measurement.
                (r, used)
            })
    }
    .unwrap();
    let (r, used) = h.join().unwrap();
    std::thread::spawn(move || drop(r)).join().unwrap();
    used
}

fn main() {
    user_tests::init();
    let profile = if cfg!(debug_assertions) {
        "debug (opt-level 0)"
    } else {
        "release"
    };
    println!("stack used on the caller's side, in KiB ({profile}):\n");
    print!("{:<34}", "path");
    let depths = [1usize, 20, 50, 100];
    for d in depths {
        print!("{:>10}", format!("nest {d}"));
    }
    println!();
    type Path = (&'static str, fn(may_mongo::Collection<Document>) -> usize);
    let paths: Vec<Path> = vec![
        ("find_one (Document)", |c| {
            measure(move || c.find_one(doc! { "_id": 1 }).unwrap())
        }),
        ("find_one (Node)", |c| {
            let c = c.clone_with_type::<Node>();
            measure(move || c.find_one(doc! { "_id": 1 }).unwrap())
        }),
        ("find + iterate (Document)", |c| {
            measure(move || {
                let mut cursor = c.find(doc! {}).unwrap();
                let mut n = 0;
                while let Some(d) = cursor.next() {
                    n += d.unwrap().len();
                }
                n
            })
        }),
        ("find_one_and_update", |c| {
            measure(move || {
                let o = FindOneAndModifyOptions::default();
                c.find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "n": 1 } }, o)
                    .unwrap()
            })
        }),
        ("distinct", |c| {
            measure(move || c.distinct("d", doc! {}).unwrap())
        }),
        ("insert_one", |c| {
            let d = record(100 + rand_id(), 1);
            measure(move || c.insert_one(d).unwrap())
        }),
        ("aggregate", |c| {
            measure(move || {
                let mut cursor = c
                    .aggregate(vec![doc! { "$match": {} }], Default::default())
                    .unwrap();
                let mut n = 0;
                while let Some(d) = cursor.next() {
                    n += d.unwrap().len();
                }
                n
            })
        }),
        ("run_command (find)", |c| {
            let db = c.database_name().to_string();
            let client = CLIENT.get().unwrap().clone();
            measure(move || {
                client
                    .database(&db)
                    .run_command(doc! { "find": "c", "filter": { "_id": 1 } })
                    .unwrap()
            })
        }),
        ("GridFS upload", |c| {
            let client = CLIENT.get().unwrap().clone();
            let db = c.database_name().to_string();
            measure(move || {
                let bucket = client
                    .database(&db)
                    .gridfs_bucket(GridFsBucketOptions::default());
                let mut o = GridFsUploadOptions::default();
                o.metadata = Some(doc! { "a": 1 });
                bucket.upload_from_reader("f", &mut &b"x"[..], o).unwrap()
            })
        }),
        ("GridFS find + iterate", |c| {
            let client = CLIENT.get().unwrap().clone();
            let db = c.database_name().to_string();
            measure(move || {
                let bucket = client
                    .database(&db)
                    .gridfs_bucket(GridFsBucketOptions::default());
                let mut cursor = bucket.find(doc! {}, Default::default()).unwrap();
                let mut n = 0;
                while let Some(f) = cursor.next() {
                    n += f.unwrap().length;
                }
                n
            })
        }),
        ("GridFS download by name", |c| {
            let client = CLIENT.get().unwrap().clone();
            let db = c.database_name().to_string();
            measure(move || {
                let bucket = client
                    .database(&db)
                    .gridfs_bucket(GridFsBucketOptions::default());
                let mut s = bucket.open_download_stream_by_name("f", -1).unwrap();
                let mut buf = [0u8; 64];
                std::io::Read::read(&mut s, &mut buf).unwrap()
            })
        }),
    ];
    for core in [Core::Coroutine] {
        let client = client(core, 4);
        let _ = CLIENT.set(client.clone());
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); paths.len()];
        for levels in depths {
            let db = client.database(&format!("stack_report_{levels}"));
            db.run_command(doc! { "dropDatabase": 1 }).unwrap();
            let coll = db.collection::<Document>("c");
            coll.insert_many(&[record(1, levels), record(2, levels)], true)
                .unwrap();
            // Open the connections first: opening is measured on its own below.
            coll.find_one(doc! {}).unwrap();
            for (i, (_, f)) in paths.iter().enumerate() {
                rows[i].push(f(coll.clone()));
            }
            std::thread::spawn(move || {
                let _ = nested(1);
            })
            .join()
            .unwrap();
        }
        for (i, (name, _)) in paths.iter().enumerate() {
            print!("{name:<34}");
            for used in &rows[i] {
                print!("{:>10.1}", *used as f64 / 1024.0);
            }
            println!();
        }
        client.clear_pools();
        std::thread::sleep(Duration::from_millis(200));
        let c = client
            .database("stack_report_1")
            .collection::<Document>("c");
        let opened = measure(move || c.find_one(doc! { "_id": 1 }).unwrap());
        println!(
            "{:<34}{:>10.1}",
            "find_one opening a connection",
            opened as f64 / 1024.0
        );
    }
}

static CLIENT: std::sync::OnceLock<may_mongo::Client> = std::sync::OnceLock::new();

fn rand_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
