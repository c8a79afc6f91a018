//! Read preferences, read concerns and write concerns, per operation and as database and
//! collection defaults; creating, listing and dropping collections and databases. On a
//! standalone server every read preference selects the one server: the results are checked,
//! not which server gave them.

use std::time::Duration;

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Document, doc},
    error::{ErrorKind, Result},
    options::{
        Acknowledgment, CollectionOptions, DatabaseOptions, ReadConcern, ReadPreference,
        ReadPreferenceOptions, SelectionCriteria, WriteConcern,
    },
    results::CollectionType,
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Document, doc},
    error::{ErrorKind, Result},
    options::{
        Acknowledgment, CollectionOptions, DatabaseOptions, ReadConcern, ReadPreference,
        ReadPreferenceOptions, SelectionCriteria, WriteConcern,
    },
    results::CollectionType,
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DB: &str = "porting_read_preferences";

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database(DB);
    db.drop().run()?;

    // Collections: create, list as names and as specifications.
    db.create_collection("items").run()?;
    db.create_collection("archive").run()?;
    let mut names = db.list_collection_names().run()?;
    names.sort();
    check_eq!(checks, names, ["archive", "items"]);
    let specs: Vec<_> = db
        .list_collections()
        .filter(doc! { "name": "items" })
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, specs.len(), 1);
    check_eq!(
        checks,
        (specs[0].name.as_str(), &specs[0].collection_type),
        ("items", &CollectionType::Collection)
    );
    check!(
        checks,
        client
            .list_database_names()
            .run()?
            .contains(&DB.to_string())
    );
    let databases = client.list_databases().run()?;
    check!(checks, databases.iter().any(|d| d.name == DB));

    // Defaults for a collection: read from a secondary if there is one, local read concern,
    // majority writes.
    let secondary_preferred =
        SelectionCriteria::ReadPreference(ReadPreference::SecondaryPreferred { options: None });
    let defaults = CollectionOptions::builder()
        .selection_criteria(secondary_preferred.clone())
        .read_concern(ReadConcern::local())
        .write_concern(WriteConcern::majority())
        .build();
    let items: Collection<Document> = db.collection_with_options("items", defaults);
    check_eq!(
        checks,
        items.selection_criteria(),
        Some(&secondary_preferred)
    );
    check_eq!(checks, items.read_concern(), Some(&ReadConcern::local()));
    check_eq!(
        checks,
        items.write_concern().and_then(|w| w.w.clone()),
        Some(Acknowledgment::Majority)
    );
    let docs: Vec<Document> = (1..=6)
        .map(|i| doc! { "_id": i, "kind": if i % 2 == 0 { "even" } else { "odd" } })
        .collect();
    check_eq!(checks, items.insert_many(docs).run()?.inserted_ids.len(), 6);

    // Per operation: each read with its own read preference and read concern.
    let primary = SelectionCriteria::ReadPreference(ReadPreference::Primary);
    let nearest = SelectionCriteria::ReadPreference(ReadPreference::Nearest { options: None });
    let evens: Vec<Document> = items
        .find(doc! { "kind": "even" })
        .sort(doc! { "_id": 1 })
        .selection_criteria(nearest.clone())
        .read_concern(ReadConcern::local())
        .run()?
        .collect::<Result<_>>()?;
    let expected: Vec<Document> = [2, 4, 6].map(|i| doc! { "_id": i, "kind": "even" }).into();
    check_eq!(checks, evens, expected);
    let one = items
        .find_one(doc! { "_id": 3 })
        .selection_criteria(primary.clone())
        .run()?;
    check_eq!(checks, one, Some(doc! { "_id": 3, "kind": "odd" }));
    let n = items
        .count_documents(doc! { "kind": "odd" })
        .selection_criteria(ReadPreference::primary().into())
        .run()?;
    check_eq!(checks, n, 3);
    let staleness = ReadPreferenceOptions::builder()
        .max_staleness(Duration::from_secs(120))
        .build();
    let secondary = SelectionCriteria::ReadPreference(ReadPreference::Secondary {
        options: Some(staleness),
    });
    let kinds = items
        .distinct("kind", doc! {})
        .selection_criteria(secondary)
        .read_concern(ReadConcern::local())
        .run()?;
    check_eq!(checks, kinds.len(), 2);
    let total: Vec<Document> = items
        .aggregate([doc! { "$group": { "_id": null, "n": { "$sum": 1 } } }])
        .selection_criteria(ReadPreference::primary_preferred(None).into())
        .read_concern(ReadConcern::local())
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, total, vec![doc! { "_id": null, "n": 6 }]);
    check_eq!(
        checks,
        items
            .estimated_document_count()
            .selection_criteria(nearest)
            .run()?,
        6
    );

    // Per operation: each write with its own write concern.
    items
        .insert_one(doc! { "_id": 7, "kind": "odd" })
        .write_concern(WriteConcern::majority())
        .run()?;
    let acknowledged = WriteConcern::builder()
        .w(Acknowledgment::Nodes(1))
        .w_timeout(Duration::from_secs(5))
        .build();
    let updated = items
        .update_many(doc! { "kind": "odd" }, doc! { "$set": { "seen": true } })
        .write_concern(acknowledged)
        .run()?;
    check_eq!(checks, updated.modified_count, 4);
    let deleted = items
        .delete_one(doc! { "_id": 7 })
        .write_concern(WriteConcern::nodes(1))
        .run()?;
    check_eq!(checks, deleted.deleted_count, 1);
    let replaced = items
        .replace_one(doc! { "_id": 6 }, doc! { "kind": "six" })
        .write_concern(WriteConcern::majority())
        .run()?;
    check_eq!(checks, replaced.modified_count, 1);

    // Database defaults, inherited by its collections; a command with its own read preference.
    let options = DatabaseOptions::builder()
        .selection_criteria(primary.clone())
        .write_concern(WriteConcern::nodes(1))
        .build();
    let same_db = client.database_with_options(DB, options);
    let archive: Collection<Document> = same_db.collection("archive");
    check_eq!(checks, archive.selection_criteria(), Some(&primary));
    check_eq!(
        checks,
        archive.write_concern(),
        Some(&WriteConcern::nodes(1))
    );
    archive.insert_one(doc! { "_id": "old" }).run()?;
    check_eq!(checks, archive.count_documents(doc! {}).run()?, 1);
    let pong = same_db
        .run_command(doc! { "ping": 1 })
        .selection_criteria(primary)
        .run()?;
    check_eq!(checks, pong.get_f64("ok").ok(), Some(1.0));

    // Drop a collection, then the database.
    archive.drop().run()?;
    check_eq!(checks, db.list_collection_names().run()?, ["items"]);
    let err = db.create_collection("items").run().unwrap_err();
    check!(
        checks,
        matches!(*err.kind, ErrorKind::Command(ref e) if e.code == 48),
        "{err}"
    );
    db.drop().run()?;
    check!(
        checks,
        !client
            .list_database_names()
            .run()?
            .contains(&DB.to_string())
    );
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("read_preferences", run)
}
