//! MongoDB's driver benchmark ("DriverBench", the spec's `benchmarking.md`): the BSON,
//! single-document and multi-document micro-benchmarks, scored in MB/s (the task's dataset
//! size over the median iteration time), for both cores and the official crate.
//!
//! Departures from the spec, all for time: each task runs for `--driverbench-seconds` per
//! contender (the spec asks for at least a minute, up to 100 iterations), split over
//! interleaved rounds; the spec's warm-up-free median is kept. The official crate runs async
//! on a 2-worker tokio runtime; the coroutine core runs each iteration in a coroutine (default
//! stack); the threaded core on the calling thread. The bulk inserts' copies of the document
//! are made before timing starts. Decoding uses what each driver does with a reply: this
//! driver's `decode_document`, the official crate's `bson::from_slice`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::Data;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    FlatEncode,
    FlatDecode,
    DeepEncode,
    DeepDecode,
    FullEncode,
    FullDecode,
    RunCommand,
    FindOne,
    SmallInsertOne,
    LargeInsertOne,
    FindMany,
    SmallInsertMany,
    LargeInsertMany,
}

use Task::*;

const TASKS: [Task; 13] = [
    FlatEncode,
    FlatDecode,
    DeepEncode,
    DeepDecode,
    FullEncode,
    FullDecode,
    RunCommand,
    FindOne,
    SmallInsertOne,
    LargeInsertOne,
    FindMany,
    SmallInsertMany,
    LargeInsertMany,
];

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            FlatEncode => "Flat BSON Encoding",
            FlatDecode => "Flat BSON Decoding",
            DeepEncode => "Deep BSON Encoding",
            DeepDecode => "Deep BSON Decoding",
            FullEncode => "Full BSON Encoding",
            FullDecode => "Full BSON Decoding",
            RunCommand => "Run command",
            FindOne => "Find one by ID",
            SmallInsertOne => "Small doc insertOne",
            LargeInsertOne => "Large doc insertOne",
            FindMany => "Find many and empty the cursor",
            SmallInsertMany => "Small doc bulk insert",
            LargeInsertMany => "Large doc bulk insert",
        }
    }

    /// The spec's dataset size in bytes: the source file's size times the operations.
    fn bytes(self, data: &Data) -> f64 {
        let (file, ops) = match self {
            FlatEncode | FlatDecode => ("flat_bson", 10_000),
            DeepEncode | DeepDecode => ("deep_bson", 10_000),
            FullEncode | FullDecode => ("full_bson", 10_000),
            RunCommand => return 130_000.0,
            FindOne | FindMany => ("tweet", 10_000),
            SmallInsertOne | SmallInsertMany => ("small_doc", 10_000),
            LargeInsertOne | LargeInsertMany => ("large_doc", 10),
        };
        data.file_len(file) as f64 * ops as f64
    }

    fn needs_corpus(self) -> Option<Corpus> {
        match self {
            FindOne => Some(Corpus::NumberedTweets),
            FindMany => Some(Corpus::Tweets),
            SmallInsertOne | LargeInsertOne | SmallInsertMany | LargeInsertMany => {
                Some(Corpus::EmptyEachIteration)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Corpus {
    /// 10,000 tweets with `_id` 1..=10,000.
    NumberedTweets,
    /// 10,000 tweets, `_id`s left to the driver.
    Tweets,
    /// Dropped and created again before every iteration.
    EmptyEachIteration,
}

/// One contender's timings of one task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Score {
    pub contender: String,
    /// Iteration times (s), per round.
    pub rounds: Vec<Vec<f64>>,
    pub error: Option<String>,
}

/// One task's scores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: String,
    pub bytes: f64,
    pub scores: Vec<Score>,
    /// The allocator of the process that ran it (`glibc` in reports made before there were
    /// two).
    #[serde(default = "crate::matrix::glibc")]
    pub allocator: String,
}

/// The 50th percentile of `v` by the spec's nearest-rank rule: index `int(N * 50 / 100) - 1`
/// of the sorted times (clamped at 0).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[(v.len() / 2).saturating_sub(1)]
}

impl Score {
    /// The spec's score: MB (10^6 bytes) over the median iteration time.
    pub fn mb_per_s(&self, bytes: f64) -> f64 {
        let mut all: Vec<f64> = self.rounds.iter().flatten().copied().collect();
        let m = median(&mut all);
        if m > 0.0 { bytes / 1e6 / m } else { 0.0 }
    }

    /// The lowest and highest per-round score.
    pub fn range(&self, bytes: f64) -> (f64, f64) {
        let per_round: Vec<f64> = self
            .rounds
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| bytes / 1e6 / median(&mut r.clone()))
            .collect();
        let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per_round.iter().copied().fold(0.0, f64::max);
        (lo, hi)
    }
}

/// A contender's implementation of the tasks.
trait Driver {
    fn name(&self) -> &'static str;
    /// Fills or empties `perftest.corpus` as the task needs.
    fn corpus(&mut self, corpus: Corpus) -> Result<(), String>;
    /// One timed iteration.
    fn iterate(&mut self, task: Task) -> Result<(), String>;
}

/// The documents, as this driver's `bson` 3 types.
struct OurDocs {
    flat: bson::Document,
    deep: bson::Document,
    full: bson::Document,
    flat_bytes: Vec<u8>,
    deep_bytes: Vec<u8>,
    full_bytes: Vec<u8>,
    tweet: bson::Document,
    small: bson::Document,
    large: bson::Document,
    /// The bulk inserts' 10,000 and 10 copies, made before timing starts.
    small_copies: Vec<bson::Document>,
    large_copies: Vec<bson::Document>,
}

struct Ours {
    name: &'static str,
    core: may_mongo::Core,
    client: may_mongo::Client,
    docs: Arc<OurDocs>,
}

fn ours_work(task: Task, db: &may_mongo::Database, docs: &OurDocs) -> Result<(), may_mongo::Error> {
    use bson::{Document, doc};
    let corpus = db.collection::<Document>("corpus");
    let encode = |d: &Document| {
        for _ in 0..10_000 {
            std::hint::black_box(d.to_vec().expect("encode"));
        }
    };
    // The driver's own decoder: what turns every reply into a `Document`.
    let decode = |b: &[u8]| {
        let raw = bson::RawDocument::from_bytes(b).expect("valid BSON");
        for _ in 0..10_000 {
            std::hint::black_box(may_mongo::decode_document(raw).expect("decode"));
        }
    };
    match task {
        FlatEncode => encode(&docs.flat),
        DeepEncode => encode(&docs.deep),
        FullEncode => encode(&docs.full),
        FlatDecode => decode(&docs.flat_bytes),
        DeepDecode => decode(&docs.deep_bytes),
        FullDecode => decode(&docs.full_bytes),
        RunCommand => {
            for _ in 0..10_000 {
                std::hint::black_box(db.run_command(doc! { "hello": true }).run()?);
            }
        }
        FindOne => {
            for i in 1..=10_000 {
                std::hint::black_box(corpus.find_one(doc! { "_id": i }).run()?);
            }
        }
        SmallInsertOne => {
            for _ in 0..10_000 {
                corpus.insert_one(&docs.small).run()?;
            }
        }
        LargeInsertOne => {
            for _ in 0..10 {
                corpus.insert_one(&docs.large).run()?;
            }
        }
        FindMany => {
            for d in corpus.find(doc! {}).run()? {
                std::hint::black_box(d?);
            }
        }
        SmallInsertMany => {
            corpus.insert_many(&docs.small_copies).run()?;
        }
        LargeInsertMany => {
            corpus.insert_many(&docs.large_copies).run()?;
        }
    }
    Ok(())
}

impl Driver for Ours {
    fn name(&self) -> &'static str {
        self.name
    }

    fn corpus(&mut self, corpus: Corpus) -> Result<(), String> {
        let db = self.client.database("perftest");
        let coll = db.collection::<bson::Document>("corpus");
        coll.drop().run().map_err(|e| e.to_string())?;
        match corpus {
            Corpus::EmptyEachIteration => db.create_collection("corpus").run(),
            Corpus::NumberedTweets => {
                let docs: Vec<_> = (1..=10_000)
                    .map(|i| {
                        let mut t = self.docs.tweet.clone();
                        t.insert("_id", i);
                        t
                    })
                    .collect();
                coll.insert_many(&docs).run().map(drop)
            }
            Corpus::Tweets => coll
                .insert_many(&vec![self.docs.tweet.clone(); 10_000]).run()
                .map(drop),
        }
        .map_err(|e| e.to_string())
    }

    fn iterate(&mut self, task: Task) -> Result<(), String> {
        let db = self.client.database("perftest");
        match self.core {
            may_mongo::Core::Threaded => ours_work(task, &db, &self.docs),
            may_mongo::Core::Coroutine => {
                let docs = self.docs.clone();
                may::go!(move || ours_work(task, &db, &docs))
                    .join()
                    .map_err(|_| "the coroutine panicked".to_string())?
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// The documents, as the official driver's `bson` 2 types.
struct TheirDocs {
    flat: mongodb::bson::Document,
    deep: mongodb::bson::Document,
    full: mongodb::bson::Document,
    flat_bytes: Vec<u8>,
    deep_bytes: Vec<u8>,
    full_bytes: Vec<u8>,
    tweet: mongodb::bson::Document,
    small: mongodb::bson::Document,
    large: mongodb::bson::Document,
    small_copies: Vec<mongodb::bson::Document>,
    large_copies: Vec<mongodb::bson::Document>,
}

struct Official {
    rt: tokio::runtime::Runtime,
    client: mongodb::Client,
    docs: TheirDocs,
}

async fn official_work(
    task: Task,
    db: &mongodb::Database,
    docs: &TheirDocs,
) -> Result<(), mongodb::error::Error> {
    use futures::StreamExt;
    use mongodb::bson::{Document, doc};
    let corpus = db.collection::<Document>("corpus");
    let encode = |d: &Document| {
        for _ in 0..10_000 {
            let mut v = Vec::new();
            d.to_writer(&mut v).expect("encode");
            std::hint::black_box(v);
        }
    };
    // What the official driver's cursors do with each document: serde from the raw bytes.
    let decode = |b: &[u8]| {
        for _ in 0..10_000 {
            std::hint::black_box(mongodb::bson::from_slice::<Document>(b).expect("decode"));
        }
    };
    match task {
        FlatEncode => encode(&docs.flat),
        DeepEncode => encode(&docs.deep),
        FullEncode => encode(&docs.full),
        FlatDecode => decode(&docs.flat_bytes),
        DeepDecode => decode(&docs.deep_bytes),
        FullDecode => decode(&docs.full_bytes),
        RunCommand => {
            for _ in 0..10_000 {
                std::hint::black_box(db.run_command(doc! { "hello": true }).await?);
            }
        }
        FindOne => {
            for i in 1..=10_000 {
                std::hint::black_box(corpus.find_one(doc! { "_id": i }).await?);
            }
        }
        SmallInsertOne => {
            for _ in 0..10_000 {
                corpus.insert_one(&docs.small).await?;
            }
        }
        LargeInsertOne => {
            for _ in 0..10 {
                corpus.insert_one(&docs.large).await?;
            }
        }
        FindMany => {
            let mut cursor = corpus.find(doc! {}).await?;
            while let Some(d) = cursor.next().await {
                std::hint::black_box(d?);
            }
        }
        SmallInsertMany => {
            corpus.insert_many(&docs.small_copies).await?;
        }
        LargeInsertMany => {
            corpus.insert_many(&docs.large_copies).await?;
        }
    }
    Ok(())
}

impl Driver for Official {
    fn name(&self) -> &'static str {
        "official-async"
    }

    fn corpus(&mut self, corpus: Corpus) -> Result<(), String> {
        let db = self.client.database("perftest");
        let docs = &self.docs;
        self.rt
            .block_on(async {
                let coll = db.collection::<mongodb::bson::Document>("corpus");
                coll.drop().await?;
                match corpus {
                    Corpus::EmptyEachIteration => db.create_collection("corpus").await,
                    Corpus::NumberedTweets => {
                        let docs: Vec<_> = (1..=10_000)
                            .map(|i| {
                                let mut t = docs.tweet.clone();
                                t.insert("_id", i);
                                t
                            })
                            .collect();
                        coll.insert_many(docs).await.map(drop)
                    }
                    Corpus::Tweets => coll
                        .insert_many(vec![docs.tweet.clone(); 10_000])
                        .await
                        .map(drop),
                }
            })
            .map_err(|e| e.to_string())
    }

    fn iterate(&mut self, task: Task) -> Result<(), String> {
        let db = self.client.database("perftest");
        self.rt
            .block_on(official_work(task, &db, &self.docs))
            .map_err(|e| e.to_string())
    }
}

fn ours(uri: &str, data: &Data, core: may_mongo::Core) -> Result<Ours, String> {
    let mut o = may_mongo::ClientOptions::parse(uri).run().map_err(|e| e.to_string())?;
    o.core = core;
    let client = may_mongo::Client::with_options(o).map_err(|e| e.to_string())?;
    let bytes = |d: &bson::Document| d.to_vec().expect("encode");
    let (flat, deep, full) = (
        data.ours("flat_bson"),
        data.ours("deep_bson"),
        data.ours("full_bson"),
    );
    Ok(Ours {
        name: match core {
            may_mongo::Core::Coroutine => "coroutine",
            may_mongo::Core::Threaded => "threaded",
        },
        core,
        client,
        docs: Arc::new(OurDocs {
            flat_bytes: bytes(&flat),
            deep_bytes: bytes(&deep),
            full_bytes: bytes(&full),
            flat,
            deep,
            full,
            tweet: data.ours("tweet"),
            small: data.ours("small_doc"),
            large: data.ours("large_doc"),
            small_copies: vec![data.ours("small_doc"); 10_000],
            large_copies: vec![data.ours("large_doc"); 10],
        }),
    })
}

fn official(uri: &str, data: &Data) -> Result<Official, String> {
    let rt = crate::point::tokio_runtime();
    let uri = crate::official::with_options(uri, "directConnection=true");
    let client = rt
        .block_on(mongodb::Client::with_uri_str(&uri))
        .map_err(|e| e.to_string())?;
    let bytes = |d: &mongodb::bson::Document| {
        let mut v = Vec::new();
        d.to_writer(&mut v).expect("encode");
        v
    };
    let (flat, deep, full) = (
        data.theirs("flat_bson"),
        data.theirs("deep_bson"),
        data.theirs("full_bson"),
    );
    Ok(Official {
        rt,
        client,
        docs: TheirDocs {
            flat_bytes: bytes(&flat),
            deep_bytes: bytes(&deep),
            full_bytes: bytes(&full),
            flat,
            deep,
            full,
            tweet: data.theirs("tweet"),
            small: data.theirs("small_doc"),
            large: data.theirs("large_doc"),
            small_copies: vec![data.theirs("small_doc"); 10_000],
            large_copies: vec![data.theirs("large_doc"); 10],
        },
    })
}

/// Runs every task for every contender, `per_task` each, in `rounds` interleaved rounds.
/// `only`, if given, names the tasks to run (by the spec's names).
pub fn run(
    uri: &str,
    data: &Data,
    per_task: Duration,
    rounds: usize,
    only: Option<&[String]>,
) -> Result<Vec<TaskResult>, String> {
    let tasks: Vec<Task> = TASKS
        .into_iter()
        .filter(|t| only.is_none_or(|o| o.iter().any(|n| n.eq_ignore_ascii_case(t.name()))))
        .collect();
    let mut drivers: Vec<Box<dyn Driver>> = vec![
        Box::new(official(uri, data)?),
        Box::new(ours(uri, data, may_mongo::Core::Coroutine)?),
        Box::new(ours(uri, data, may_mongo::Core::Threaded)?),
    ];
    let mut results: Vec<TaskResult> = tasks
        .iter()
        .map(|t| TaskResult {
            task: t.name().into(),
            bytes: t.bytes(data),
            scores: drivers
                .iter()
                .map(|d| Score {
                    contender: d.name().into(),
                    rounds: Vec::new(),
                    error: None,
                })
                .collect(),
            allocator: crate::matrix::glibc(),
        })
        .collect();
    // The spec caps a task at 100 iterations; spread that over the rounds.
    let max_per_round = 100usize.div_ceil(rounds);
    let slot = per_task.div_f64(rounds as f64);
    for round in 0..rounds {
        for (ti, &task) in tasks.iter().enumerate() {
            for (di, driver) in drivers.iter_mut().enumerate() {
                let score = &mut results[ti].scores[di];
                if score.error.is_some() {
                    continue;
                }
                let mut times = Vec::new();
                let started = Instant::now();
                let outcome = (|| -> Result<(), String> {
                    let corpus = task.needs_corpus();
                    if let Some(c) = corpus.filter(|&c| c != Corpus::EmptyEachIteration) {
                        driver.corpus(c)?;
                    }
                    while times.is_empty()
                        || (started.elapsed() < slot && times.len() < max_per_round)
                    {
                        if corpus == Some(Corpus::EmptyEachIteration) {
                            driver.corpus(Corpus::EmptyEachIteration)?;
                        }
                        let t = Instant::now();
                        driver.iterate(task)?;
                        times.push(t.elapsed().as_secs_f64());
                    }
                    Ok(())
                })();
                let bytes = results[ti].bytes;
                let score = &mut results[ti].scores[di];
                match outcome {
                    Ok(()) => {
                        score.rounds.push(times);
                        eprintln!(
                            "DriverBench round {}/{rounds} {:<31} {:<15} {:>9.2} MB/s",
                            round + 1,
                            task.name(),
                            driver.name(),
                            score.mb_per_s(bytes)
                        );
                    }
                    Err(e) => {
                        eprintln!("DriverBench {} {}: {e}", task.name(), driver.name());
                        score.error = Some(e);
                    }
                }
            }
        }
    }
    Ok(results)
}
