//! The async API: code written for the official crate's async `mongodb::Client` under tokio,
//! run on may_mongo's async façade (`may_mongo::motor`) with only its `use` lines changed.
//! Every `.await` there runs the blocking driver in a may coroutine (`core=coroutine`) or on
//! the façade's thread pool (`core=threaded`); tokio's two workers never block.
//!
//! CRUD with options, aggregation, indexes, errors, per-operation concerns and selection
//! criteria, and 100 concurrent tokio tasks on one client.

#[cfg(not(feature = "official"))]
use may_mongo::{
    IndexModel,
    bson::{Bson, Document, doc},
    error::{ErrorKind, Result, WriteFailure},
    motor::{Client, Collection},
    options::{ReadPreference, ReturnDocument, SelectionCriteria, WriteConcern},
};
#[cfg(feature = "official")]
use mongodb::{
    Client, Collection, IndexModel,
    bson::{Bson, Document, doc},
    error::{ErrorKind, Result, WriteFailure},
    options::{ReadPreference, ReturnDocument, SelectionCriteria, WriteConcern},
};

use futures::TryStreamExt;
use may_mongo_porting::{check, check_eq};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    #[serde(rename = "_id")]
    id: i32,
    customer: String,
    total: i32,
    status: String,
}

fn order(id: i32, customer: &str, total: i32) -> Order {
    Order {
        id,
        customer: customer.into(),
        total,
        status: "new".into(),
    }
}

async fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri).await?;
    let db = client.database("porting_async_crud");
    db.drop().await?;
    let orders: Collection<Order> = db.collection("orders");

    // Create: one, then many (lent, as the official examples lend them).
    let first = order(1, "ada", 30);
    check_eq!(
        checks,
        orders.insert_one(&first).await?.inserted_id,
        Bson::Int32(1)
    );
    let more: Vec<Order> = (2..=10)
        .map(|i| order(i, if i % 2 == 0 { "bob" } else { "cy" }, i * 10))
        .collect();
    let inserted = orders.insert_many(&more).ordered(true).await?;
    check_eq!(checks, inserted.inserted_ids.len(), 9);

    // Read: a sorted, limited, projected find as a stream; find_one; counts; distinct.
    let bobs: Vec<Order> = orders
        .find(doc! { "customer": "bob" })
        .sort(doc! { "total": -1 })
        .limit(3)
        .batch_size(2)
        .await?
        .try_collect()
        .await?;
    let totals: Vec<i32> = bobs.iter().map(|o| o.total).collect();
    check_eq!(checks, totals, vec![100, 80, 60]);
    let one = orders.find_one(doc! { "_id": 5 }).await?;
    check_eq!(checks, one.map(|o| o.customer), Some("cy".to_string()));
    check_eq!(
        checks,
        orders
            .count_documents(doc! { "total": { "$gte": 50 } })
            .await?,
        6
    );
    check_eq!(checks, orders.estimated_document_count().await?, 10);
    let mut customers = orders.distinct("customer", doc! {}).await?;
    customers.sort_by_key(|b| b.to_string());
    check_eq!(
        checks,
        customers,
        vec![Bson::from("ada"), Bson::from("bob"), Bson::from("cy")]
    );

    // Update: one with upsert, many, replace, find-and-modify both ways, delete.
    let upserted = orders
        .update_one(
            doc! { "_id": 11 },
            doc! { "$set": { "customer": "dee", "total": 5, "status": "new" } },
        )
        .upsert(true)
        .await?;
    check_eq!(checks, upserted.upserted_id, Some(Bson::Int32(11)));
    let shipped = orders
        .update_many(
            doc! { "customer": "bob" },
            doc! { "$set": { "status": "shipped" } },
        )
        .await?;
    check_eq!(checks, shipped.modified_count, 5);
    let mut replacement = order(3, "cy", 33);
    replacement.status = "replaced".into();
    check_eq!(
        checks,
        orders
            .replace_one(doc! { "_id": 3 }, &replacement)
            .await?
            .matched_count,
        1
    );
    let after = orders
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "total": 1 } })
        .return_document(ReturnDocument::After)
        .await?;
    check_eq!(checks, after.map(|o| o.total), Some(31));
    let gone = orders.find_one_and_delete(doc! { "_id": 11 }).await?;
    check_eq!(checks, gone.map(|o| o.customer), Some("dee".to_string()));
    check_eq!(
        checks,
        orders
            .delete_many(doc! { "status": "shipped" })
            .await?
            .deleted_count,
        5
    );

    // Aggregation, untyped results.
    let sums: Vec<Document> = orders
        .aggregate([
            doc! { "$group": { "_id": "$customer", "sum": { "$sum": "$total" } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .await?
        .try_collect()
        .await?;
    let ada = sums.iter().find(|d| d.get_str("_id").ok() == Some("ada"));
    check_eq!(checks, ada.and_then(|d| d.get_i32("sum").ok()), Some(31));

    // Indexes, and the write error a unique one gives.
    let created = orders
        .create_index(
            IndexModel::builder()
                .keys(doc! { "customer": 1, "total": 1 })
                .build(),
        )
        .await?;
    check_eq!(checks, created.index_name, "customer_1_total_1");
    let names = orders.list_index_names().await?;
    check!(checks, names.contains(&created.index_name), "{names:?}");
    let duplicate = orders.insert_one(order(1, "again", 0)).await.unwrap_err();
    match &*duplicate.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => check_eq!(checks, e.code, 11000),
        other => panic!("expected a duplicate-key write error, got {other:?}"),
    }
    orders.drop_index(created.index_name).await?;
    check_eq!(checks, orders.list_index_names().await?, vec!["_id_"]);

    // Per-operation selection criteria and write concern.
    let nearest = SelectionCriteria::ReadPreference(ReadPreference::Nearest {
        options: Default::default(),
    });
    let seen = orders
        .count_documents(doc! {})
        .selection_criteria(nearest)
        .await?;
    check_eq!(checks, seen, 5);
    orders
        .insert_one(order(20, "eve", 1))
        .write_concern(WriteConcern::majority())
        .await?;

    // Commands and the database's listing.
    let ping = db.run_command(doc! { "ping": 1 }).await?;
    check_eq!(checks, ping.get_f64("ok").ok(), Some(1.0));
    let collections = db.list_collection_names().await?;
    check_eq!(checks, collections, vec!["orders".to_string()]);

    // 100 tokio tasks sharing the client: each writes its order and reads it back.
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let orders = orders.clone();
            tokio::spawn(async move {
                orders.insert_one(order(1000 + i, "task", i)).await?;
                orders.find_one(doc! { "_id": 1000 + i }).await
            })
        })
        .collect();
    let mut found = 0;
    for task in tasks {
        if task.await.expect("task panicked")?.is_some() {
            found += 1;
        }
    }
    check_eq!(checks, found, 100);

    db.drop().await?;
    client.shutdown().await;
    Ok(checks)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let uri = may_mongo_porting::uri();
    let checks = run(&uri).await?;
    println!(
        "async_crud: {checks} checks passed ({})",
        may_mongo_porting::DRIVER
    );
    Ok(())
}
