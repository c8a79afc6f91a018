//! The driver users would otherwise pick: the official `mongodb` crate (3.9), async under
//! tokio (2 workers, like this machine's 2 cores) and its `sync` API on OS threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mongodb::bson::{Document, doc};

use crate::stats::Sample;

fn uri(port: u16) -> String {
    format!("mongodb://127.0.0.1:{port}/?maxPoolSize=100&directConnection=true")
}

/// `tasks` tokio tasks looping `find_one(...).await` for `window`.
pub fn run_async(port: u16, tasks: usize, window: Duration) -> Sample {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(uri(port)).await.unwrap();
        let coll = client.database("bench").collection::<Document>("coll");
        coll.find_one(doc! { "_id": 1 }).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let hs: Vec<_> = (0..tasks)
            .map(|_| {
                let (coll, stop) = (coll.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let d = coll.find_one(doc! { "_id": 1 }).await.unwrap();
                        assert!(d.is_some());
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        tokio::time::sleep(window).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for h in hs {
            all.extend(h.await.unwrap());
        }
        let elapsed = started.elapsed();
        client.shutdown().await;
        Sample::new(all, elapsed)
    })
}

/// `tasks` OS threads looping the `sync` API's `find_one` for `window`.
pub fn run_sync(port: u16, tasks: usize, window: Duration) -> Result<Sample, String> {
    let client = mongodb::sync::Client::with_uri_str(uri(port)).unwrap();
    let coll = client.database("bench").collection::<Document>("coll");
    coll.find_one(doc! { "_id": 1 }).run().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let all = crate::stats::on_threads(tasks, &stop, window, |_| {
        let (coll, stop) = (coll.clone(), stop.clone());
        move || {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let d = coll.find_one(doc! { "_id": 1 }).run().unwrap();
                assert!(d.is_some());
                lat.push(t.elapsed().as_nanos() as u64);
            }
            lat
        }
    })?;
    Ok(Sample::new(all, started.elapsed()))
}
