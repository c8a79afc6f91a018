//! Many tasks at once on one shared client: 64 tasks (may coroutines on may_mongo, threads on
//! the official crate) each run a customer's whole CRUD workflow on a shared collection and
//! upsert its own counter; then the totals are checked. (Not one counter shared by all tasks:
//! FerretDB 1.24 loses concurrent $inc updates to one document.)

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Document, doc},
    error::Result,
    options::ReturnDocument,
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Document, doc},
    error::Result,
    options::ReturnDocument,
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TASKS: usize = 64;
const DB: &str = "porting_concurrent";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    customer: String,
    line: i32,
    amount: i64,
    status: String,
}

/// The client every task shares, and an empty database.
fn setup(uri: &str) -> Result<Client> {
    let client = Client::with_uri_str(uri)?;
    client.database(DB).drop().run()?;
    Ok(client)
}

/// One customer's orders: created, read, updated, summed, one shipped, one cancelled.
fn task(client: &Client, i: usize) -> Result<u32> {
    let mut checks = 0;
    let db = client.database(DB);
    let orders: Collection<Order> = db.collection("orders");
    let customer = format!("customer-{i}");
    let placed: Vec<Order> = (1..=5)
        .map(|line| Order {
            customer: customer.clone(),
            line,
            amount: 10 * line as i64 + i as i64,
            status: "new".into(),
        })
        .collect();
    check_eq!(
        checks,
        orders.insert_many(&placed).run()?.inserted_ids.len(),
        5
    );

    let mine: Vec<Order> = orders
        .find(doc! { "customer": &customer })
        .sort(doc! { "line": 1 })
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, mine, placed);

    let raised = orders
        .update_many(
            doc! { "customer": &customer },
            doc! { "$inc": { "amount": 1 } },
        )
        .run()?;
    check_eq!(checks, raised.modified_count, 5);
    let sum: Vec<Document> = orders
        .aggregate([
            doc! { "$match": { "customer": &customer } },
            doc! { "$group": { "_id": "$customer", "total": { "$sum": "$amount" } } },
        ])
        .run()?
        .collect::<Result<_>>()?;
    let total = 150 + 5 * i as i64 + 5;
    check_eq!(checks, sum, vec![doc! { "_id": &customer, "total": total }]);

    let shipped = orders
        .find_one_and_update(
            doc! { "customer": &customer, "line": 2 },
            doc! { "$set": { "status": "shipped" } },
        )
        .return_document(ReturnDocument::After)
        .run()?;
    check_eq!(
        checks,
        shipped.map(|o| o.status),
        Some("shipped".to_string())
    );
    check_eq!(
        checks,
        orders
            .delete_one(doc! { "customer": &customer, "line": 5 })
            .run()?
            .deleted_count,
        1
    );
    check_eq!(
        checks,
        orders
            .count_documents(doc! { "customer": &customer })
            .run()?,
        4
    );

    let counters = db.collection::<Document>("counters");
    for n in 1..=3 {
        let bumped = counters
            .update_one(doc! { "_id": &customer }, doc! { "$inc": { "n": 1 } })
            .upsert(true)
            .run()?;
        check_eq!(
            checks,
            (bumped.matched_count, bumped.upserted_id.is_some()),
            if n == 1 { (0, true) } else { (1, false) }
        );
    }
    Ok(checks)
}

/// What all the tasks did together.
fn totals(client: &Client) -> Result<u32> {
    let mut checks = 0;
    let db = client.database(DB);
    let orders = db.collection::<Order>("orders");
    check_eq!(
        checks,
        orders.count_documents(doc! {}).run()?,
        4 * TASKS as u64
    );
    check_eq!(
        checks,
        orders.count_documents(doc! { "status": "shipped" }).run()?,
        TASKS as u64
    );
    check_eq!(
        checks,
        orders.distinct("customer", doc! {}).run()?.len(),
        TASKS
    );
    let counters = db.collection::<Document>("counters");
    check_eq!(
        checks,
        counters.count_documents(doc! { "n": 3 }).run()?,
        TASKS as u64
    );
    let one = counters.find_one(doc! { "_id": "customer-7" }).run()?;
    check!(
        checks,
        one == Some(doc! { "_id": "customer-7", "n": 3 }),
        "{one:?}"
    );
    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    let uri = may_mongo_porting::uri();
    let client = may_mongo_porting::in_coroutine(move || setup(&uri))?;
    let shared = client.clone();
    let per_task = may_mongo_porting::in_coroutines(TASKS, move |i| task(&shared, i));
    let mut checks = 0;
    for result in per_task {
        checks += result?;
    }
    checks += may_mongo_porting::in_coroutine(move || totals(&client))?;
    println!(
        "concurrent: {checks} checks passed in {TASKS} tasks ({})",
        may_mongo_porting::DRIVER
    );
    Ok(())
}
