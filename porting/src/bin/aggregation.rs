//! Aggregation: $match/$group/$sort/$project/$unwind/$skip/$limit/$count pipelines, results
//! as documents and as a serde type, options fluent and as a struct, a cursor spanning many
//! batches read both as an iterator and with advance/deserialize_current, and a bad stage.
//!
//! One accumulator per $group: FerretDB 1.24 computes only the first of several.

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Document, doc},
    error::{ErrorKind, Result},
    options::AggregateOptions,
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Document, doc},
    error::{ErrorKind, Result},
    options::AggregateOptions,
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};
use serde::Deserialize;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, PartialEq, Deserialize)]
struct RegionTotal {
    #[serde(rename = "_id")]
    region: String,
    total: i64,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Event {
    n: i32,
}

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database("porting_aggregation");
    db.drop().run()?;
    let sales: Collection<Document> = db.collection("sales");
    sales
        .insert_many([
            doc! { "_id": 1, "region": "north", "product": "apple", "qty": 5, "tags": ["fruit", "red"] },
            doc! { "_id": 2, "region": "north", "product": "pear", "qty": 3, "tags": ["fruit"] },
            doc! { "_id": 3, "region": "south", "product": "apple", "qty": 10, "tags": ["fruit", "red"] },
            doc! { "_id": 4, "region": "south", "product": "plum", "qty": 0, "tags": [] },
            doc! { "_id": 5, "region": "east", "product": "pear", "qty": 7, "tags": ["fruit"] },
            doc! { "_id": 6, "region": "east", "product": "apple", "qty": 1, "tags": ["fruit", "green"] },
            doc! { "_id": 7, "region": "west", "product": "plum", "qty": 4, "tags": ["fruit", "red"] },
        ])
        .run()?;

    // $match, $group, $sort, read as a serde type.
    let pipeline = vec![
        doc! { "$match": { "qty": { "$gt": 0 } } },
        doc! { "$group": { "_id": "$region", "total": { "$sum": "$qty" } } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let totals: Vec<RegionTotal> = sales
        .aggregate(pipeline)
        .with_type::<RegionTotal>()
        .run()?
        .collect::<Result<_>>()?;
    let expected =
        [("east", 8), ("north", 8), ("south", 10), ("west", 4)].map(|(r, total)| RegionTotal {
            region: r.into(),
            total,
        });
    check_eq!(checks, totals, expected);

    // $project, read as documents.
    let cursor = sales
        .aggregate([
            doc! { "$match": { "product": "apple" } },
            doc! { "$sort": { "qty": -1 } },
            doc! { "$project": { "_id": 0, "region": 1, "qty": 1 } },
        ])
        .run()?;
    let mut apples = Vec::new();
    for doc in cursor {
        apples.push(doc?);
    }
    let expected = vec![
        doc! { "region": "south", "qty": 10 },
        doc! { "region": "north", "qty": 5 },
        doc! { "region": "east", "qty": 1 },
    ];
    check_eq!(checks, apples, expected);

    // Counting with an aggregation.
    let counted: Vec<Document> = sales
        .aggregate([
            doc! { "$match": { "product": "apple" } },
            doc! { "$count": "n" },
        ])
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, counted, vec![doc! { "n": 3 }]);
    let none: Vec<Document> = sales
        .aggregate([
            doc! { "$match": { "product": "kiwi" } },
            doc! { "$count": "n" },
        ])
        .run()?
        .collect::<Result<_>>()?;
    check!(checks, none.is_empty());

    // $unwind, then group by tag.
    let by_tag: Vec<Document> = sales
        .aggregate([
            doc! { "$unwind": "$tags" },
            doc! { "$group": { "_id": "$tags", "n": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .run()?
        .collect::<Result<_>>()?;
    let expected = vec![
        doc! { "_id": "fruit", "n": 6 },
        doc! { "_id": "green", "n": 1 },
        doc! { "_id": "red", "n": 3 },
    ];
    check_eq!(checks, by_tag, expected);

    // $skip and $limit.
    let page: Vec<Document> = sales
        .aggregate([
            doc! { "$sort": { "_id": 1 } },
            doc! { "$skip": 2 },
            doc! { "$limit": 3 },
            doc! { "$project": { "_id": 1 } },
        ])
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(
        checks,
        page,
        vec![doc! { "_id": 3 }, doc! { "_id": 4 }, doc! { "_id": 5 }]
    );

    // A cursor over many batches: fluent options, then the same through an options struct.
    let events: Collection<Event> = db.collection("events");
    let docs: Vec<Document> = (0..50).map(|n| doc! { "n": n }).collect();
    db.collection::<Document>("events")
        .insert_many(docs)
        .run()?;
    let pipeline = [
        doc! { "$match": { "n": { "$gte": 10 } } },
        doc! { "$sort": { "n": 1 } },
    ];
    let cursor = events
        .aggregate(pipeline.clone())
        .allow_disk_use(true)
        .batch_size(7)
        .with_type::<Event>()
        .run()?;
    let ns: Vec<i32> = cursor.map(|e| e.map(|e| e.n)).collect::<Result<_>>()?;
    check_eq!(checks, ns, (10..50).collect::<Vec<_>>());
    let options = AggregateOptions::builder()
        .allow_disk_use(true)
        .batch_size(4)
        .build();
    let mut cursor = events
        .aggregate(pipeline)
        .with_options(options)
        .with_type::<Event>()
        .run()?;
    let mut seen = 0;
    while cursor.advance()? {
        let event: Event = cursor.deserialize_current()?;
        assert_eq!(event.n, 10 + seen);
        seen += 1;
    }
    check_eq!(checks, seen, 40);

    // A stage the server does not know (MongoDB's code is 40324, FerretDB 1.24's 40234).
    let err = sales
        .aggregate([doc! { "$noSuchStage": {} }])
        .run()
        .unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => check!(checks, e.message.contains("$noSuchStage"), "{e:?}"),
        ref other => panic!("expected a command error, got {other:?}"),
    }

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("aggregation", run)
}
