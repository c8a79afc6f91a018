//! The driver users would otherwise pick: the official `mongodb` crate (3.9), async under
//! tokio (2 workers, like this machine's 2 cores) and its `sync` API on OS threads. Its
//! documents are its own `bson` 2 types, read from the same data files.

use std::sync::Arc;

use futures::StreamExt;
use mongodb::bson::{Document, doc};

use crate::ours::{expect_docs, expect_inserted};
use crate::point::{self, Outcome, Record, Spec, Window};
use crate::workload::{INSERT_MANY_DOCS, Workload};

/// `uri` with `opts` (`a=1&b=2`) appended to its query string, starting one if it has none.
pub fn with_options(uri: &str, opts: &str) -> String {
    let after_scheme = uri.split_once("://").map_or("", |p| p.1);
    if uri.contains('?') {
        format!("{uri}&{opts}")
    } else if after_scheme.contains('/') {
        format!("{uri}?{opts}")
    } else {
        format!("{uri}/?{opts}")
    }
}

/// The same pool bound as ours; `directConnection` so that a lone seed is a standalone, as
/// this driver treats it.
fn uri(spec: &Spec) -> String {
    with_options(&spec.uri, "maxPoolSize=100&directConnection=true")
}

fn err(e: mongodb::error::Error) -> String {
    e.to_string()
}

async fn async_op(
    workload: Workload,
    db: &mongodb::Database,
    small: &Document,
    docs: &[Document],
) -> Result<(), String> {
    let coll = db.collection::<Document>(workload.collection());
    match workload {
        Workload::FindOne => {
            coll.find_one(doc! { "_id": 1 })
                .await
                .map_err(err)?
                .ok_or("find_one found nothing")?;
            Ok(())
        }
        Workload::InsertOne => coll.insert_one(small).await.map(drop).map_err(err),
        Workload::FindMany => {
            let mut cursor = coll.find(doc! {}).await.map_err(err)?;
            let mut n = 0;
            while let Some(d) = cursor.next().await {
                d.map_err(err)?;
                n += 1;
            }
            expect_docs(n)
        }
        Workload::InsertMany => {
            let r = coll.insert_many(docs).await.map_err(err)?;
            expect_inserted(r.inserted_ids.len())
        }
    }
}

/// `tasks` tokio tasks looping the workload's operation.
pub fn run_async(spec: &Spec) -> Result<Outcome, String> {
    let rt = point::tokio_runtime();
    let client = rt
        .block_on(mongodb::Client::with_uri_str(uri(spec)))
        .map_err(err)?;
    let db = client.database("bench");
    rt.block_on(async { db.run_command(doc! { "ping": 1 }).await })
        .map_err(err)?;
    // Shared by every task, as in `ours.rs`.
    let small = Arc::new(spec.data.theirs("small_doc"));
    let docs = Arc::new(vec![(*small).clone(); INSERT_MANY_DOCS]);
    let w = Window::new();
    let workload = spec.workload;
    let outcome = point::on_tokio(&rt, &w, spec, |_| {
        let (w, db, small, docs) = (w.clone(), db.clone(), small.clone(), docs.clone());
        async move {
            let mut rec = Record::new();
            while !w.stopped() {
                w.time_async(&mut rec, async_op(workload, &db, &small, &docs))
                    .await?;
            }
            Ok(rec)
        }
    });
    rt.block_on(async { client.shutdown().await });
    outcome
}

/// `tasks` OS threads looping the `sync` API's operation.
pub fn run_sync(spec: &Spec) -> Result<Outcome, String> {
    let client = mongodb::sync::Client::with_uri_str(uri(spec)).map_err(err)?;
    let db = client.database("bench");
    db.run_command(doc! { "ping": 1 }).run().map_err(err)?;
    // Shared by every task, as in `ours.rs`.
    let small = Arc::new(spec.data.theirs("small_doc"));
    let docs = Arc::new(vec![(*small).clone(); INSERT_MANY_DOCS]);
    let w = Window::new();
    let workload = spec.workload;
    point::on_threads(&w, spec, |_| {
        let coll = db.collection::<Document>(workload.collection());
        let (w, small, docs) = (w.clone(), small.clone(), docs.clone());
        move || {
            let mut rec = Record::new();
            while !w.stopped() {
                w.time(&mut rec, || match workload {
                    Workload::FindOne => {
                        coll.find_one(doc! { "_id": 1 })
                            .run()
                            .map_err(err)?
                            .ok_or("find_one found nothing")?;
                        Ok(())
                    }
                    Workload::InsertOne => coll.insert_one(&*small).run().map(drop).map_err(err),
                    Workload::FindMany => {
                        let mut n = 0;
                        for d in coll.find(doc! {}).run().map_err(err)? {
                            d.map_err(err)?;
                            n += 1;
                        }
                        expect_docs(n)
                    }
                    Workload::InsertMany => {
                        let r = coll.insert_many(docs.iter()).run().map_err(err)?;
                        expect_inserted(r.inserted_ids.len())
                    }
                })?;
            }
            Ok(rec)
        }
    })
}
