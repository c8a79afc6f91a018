//! This driver's contenders: the coroutine core (one may coroutine per task), the threaded
//! core (one OS thread per task), and the async API over each core under tokio.

use std::sync::Arc;

use bson::{Document, doc};
use futures::StreamExt;
use may_mongo::{Client, ClientOptions, Core, Database};

use crate::point::{self, Outcome, Record, Spec, Window};
use crate::workload::{Contender, FIND_MANY_DOCS, INSERT_MANY_DOCS, Workload};

fn client(spec: &Spec, core: Core) -> Result<Client, String> {
    let mut o = ClientOptions::parse(&spec.uri).run().map_err(|e| e.to_string())?;
    o.core = core;
    o.max_pool_size = 100;
    Client::with_options(o).map_err(|e| e.to_string())
}

fn err(e: may_mongo::Error) -> String {
    e.to_string()
}

/// One blocking operation of `workload`, ready to repeat.
type BlockingOp = Box<dyn FnMut() -> Result<(), String> + Send>;

/// The documents every task inserts: built once and shared, so that 10,000 tasks do not hold
/// 10,000 copies of the benchmark's own input (a trial's insert_many peaked at 3.1 GB that way).
#[derive(Clone)]
struct Inputs {
    small: Arc<Document>,
    many: Arc<Vec<Document>>,
}

impl Inputs {
    fn new(spec: &Spec) -> Inputs {
        let small = spec.data.ours("small_doc");
        Inputs {
            many: Arc::new(vec![small.clone(); INSERT_MANY_DOCS]),
            small: Arc::new(small),
        }
    }
}

fn blocking_op(spec: &Spec, db: &Database, raw: bool, inputs: &Inputs) -> BlockingOp {
    let coll = db.collection::<Document>(spec.workload.collection());
    match spec.workload {
        Workload::FindOne if raw => {
            let db = db.clone();
            Box::new(move || {
                let reply = db
                    .run_command(doc! {
                        "find": "coll", "filter": { "_id": 1 }, "limit": 1, "singleBatch": true,
                    }).run_raw()
                    .map_err(err)?;
                if reply.as_bytes().len() < 100 {
                    return Err("the find reply is too short to hold the tweet".into());
                }
                Ok(())
            })
        }
        Workload::FindOne => Box::new(move || {
            coll.find_one(doc! { "_id": 1 }).run()
                .map_err(err)?
                .ok_or("find_one found nothing")?;
            Ok(())
        }),
        Workload::InsertOne => {
            let small = inputs.small.clone();
            Box::new(move || coll.insert_one(&*small).run().map(drop).map_err(err))
        }
        Workload::FindMany => Box::new(move || {
            let mut n = 0;
            for d in coll.find(doc! {}).run().map_err(err)? {
                d.map_err(err)?;
                n += 1;
            }
            expect_docs(n)
        }),
        Workload::InsertMany => {
            let docs = inputs.many.clone();
            Box::new(move || {
                let r = coll.insert_many(docs.iter()).run().map_err(err)?;
                expect_inserted(r.inserted_ids.len())
            })
        }
    }
}

pub fn expect_docs(n: usize) -> Result<(), String> {
    if n == FIND_MANY_DOCS {
        Ok(())
    } else {
        Err(format!(
            "find many returned {n} documents, not {FIND_MANY_DOCS}"
        ))
    }
}

pub fn expect_inserted(n: usize) -> Result<(), String> {
    if n == INSERT_MANY_DOCS {
        Ok(())
    } else {
        Err(format!(
            "insert_many reported {n} ids, not {INSERT_MANY_DOCS}"
        ))
    }
}

fn blocking_loop(w: Window, mut op: BlockingOp) -> impl FnOnce() -> Result<Record, String> {
    move || {
        let mut rec = Record::new();
        while !w.stopped() {
            w.time(&mut rec, &mut op)?;
        }
        Ok(rec)
    }
}

/// One async operation of `workload` through `may_mongo::motor`.
async fn async_op(workload: Workload, db: &Database, small: &Document) -> Result<(), String> {
    let coll = db.collection::<Document>(workload.collection());
    match workload {
        Workload::FindOne => {
            coll.find_one(doc! { "_id": 1 })
                .await
                .map_err(err)?
                .ok_or("find_one found nothing")?;
            Ok(())
        }
        Workload::InsertOne => coll.insert_one(small.clone()).await.map(drop).map_err(err),
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
            let docs = vec![small.clone(); INSERT_MANY_DOCS];
            let r = coll.insert_many(docs).await.map_err(err)?;
            expect_inserted(r.inserted_ids.len())
        }
    }
}

pub fn run(spec: &Spec) -> Result<Outcome, String> {
    let core = match spec.contender {
        Contender::Threaded | Contender::AsyncThreaded => Core::Threaded,
        _ => Core::Coroutine,
    };
    let client = client(spec, core)?;
    let db = client.database("bench");
    // Connect and handshake before the window opens.
    db.run_command(doc! { "ping": 1 }).run().map_err(err)?;
    let inputs = Inputs::new(spec);
    let w = Window::new();
    let outcome = match spec.contender {
        Contender::Coroutine | Contender::CoroutineRaw => {
            let raw = spec.contender == Contender::CoroutineRaw;
            point::on_coroutines(&w, spec, |_| {
                blocking_loop(w.clone(), blocking_op(spec, &db, raw, &inputs))
            })
        }
        Contender::Threaded => point::on_threads(&w, spec, |_| {
            blocking_loop(w.clone(), blocking_op(spec, &db, false, &inputs))
        }),
        Contender::AsyncCoroutine | Contender::AsyncThreaded => {
            let rt = point::tokio_runtime();
            let client = may_mongo::motor::Client::from(client.clone());
            let small = inputs.small.clone();
            let workload = spec.workload;
            point::on_tokio(&rt, &w, spec, |_| {
                let (w, db, small) = (w.clone(), client.database("bench"), small.clone());
                async move {
                    let mut rec = Record::new();
                    while !w.stopped() {
                        w.time_async(&mut rec, async_op(workload, &db, &small))
                            .await?;
                    }
                    Ok(rec)
                }
            })
        }
        other => unreachable!("{other:?} is not this driver"),
    };
    client.shutdown();
    outcome
}
