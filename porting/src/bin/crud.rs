//! CRUD on a typed (serde) collection: every single-collection read and write an application
//! makes, with options given both through the fluent setters and as an options struct.

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Bson, Document, doc},
    error::Result,
    options::{FindOneOptions, FindOptions, ReturnDocument, UpdateOptions},
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Bson, Document, doc},
    error::Result,
    options::{FindOneOptions, FindOptions, ReturnDocument, UpdateOptions},
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Book {
    #[serde(rename = "_id")]
    id: i32,
    title: String,
    author: String,
    year: i32,
    copies: i32,
    tags: Vec<String>,
}

fn book(id: i32, title: &str, author: &str, year: i32, copies: i32, tags: &[&str]) -> Book {
    let tags = tags.iter().map(|t| t.to_string()).collect();
    Book {
        id,
        title: title.into(),
        author: author.into(),
        year,
        copies,
        tags,
    }
}

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database("porting_crud");
    db.drop().run()?;
    let books: Collection<Book> = db.collection("books");

    // Create.
    let dune = book(1, "Dune", "Herbert", 1965, 3, &["scifi"]);
    let inserted = books.insert_one(&dune).run()?;
    check_eq!(checks, inserted.inserted_id, Bson::Int32(1));
    let more = vec![
        book(2, "Emma", "Austen", 1815, 2, &["classic", "romance"]),
        book(3, "Persuasion", "Austen", 1817, 1, &["classic"]),
        book(4, "Neuromancer", "Gibson", 1984, 4, &["scifi", "cyberpunk"]),
        book(5, "Foundation", "Asimov", 1951, 5, &["scifi"]),
        book(6, "I, Robot", "Asimov", 1950, 2, &["scifi"]),
        book(7, "Ulysses", "Joyce", 1922, 1, &["classic"]),
        book(8, "Beloved", "Morrison", 1987, 3, &[]),
        book(9, "Middlemarch", "Eliot", 1871, 2, &["classic"]),
        book(10, "Hyperion", "Simmons", 1989, 2, &["scifi"]),
    ];
    let inserted = books.insert_many(&more).ordered(false).run()?;
    check_eq!(checks, inserted.inserted_ids.len(), 9);
    check_eq!(checks, inserted.inserted_ids[&3], Bson::Int32(5));
    check_eq!(checks, books.count_documents(doc! {}).run()?, 10);
    check_eq!(checks, books.estimated_document_count().run()?, 10);

    // Read: fluent options, a projection read through an untyped view of the collection.
    let raw: Collection<Document> = db.collection("books");
    let cursor = raw
        .find(doc! { "year": { "$gte": 1950 } })
        .sort(doc! { "year": 1 })
        .skip(1)
        .limit(3)
        .projection(doc! { "_id": 0, "title": 1, "year": 1 })
        .run()?;
    let mut page = Vec::new();
    for doc in cursor {
        let doc = doc?;
        page.push(doc);
    }
    let expected = vec![
        doc! { "title": "Foundation", "year": 1951 },
        doc! { "title": "Dune", "year": 1965 },
        doc! { "title": "Neuromancer", "year": 1984 },
    ];
    check_eq!(checks, page, expected);

    // Read: an options struct, typed results.
    let options = FindOptions::builder()
        .sort(doc! { "year": -1 })
        .limit(2)
        .build();
    let newest_scifi: Vec<Book> = books
        .find(doc! { "tags": "scifi" })
        .with_options(options)
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, newest_scifi, vec![more[8].clone(), more[2].clone()]);
    check_eq!(
        checks,
        books.find_one(doc! { "_id": 3 }).run()?,
        Some(more[1].clone())
    );
    check_eq!(checks, books.find_one(doc! { "_id": 404 }).run()?, None);
    let newest = FindOneOptions::builder().sort(doc! { "year": -1 }).build();
    let found = books.find_one(doc! {}).with_options(newest).run()?;
    check_eq!(checks, found.map(|b| b.title), Some("Hyperion".to_string()));
    let second = books
        .find_one(doc! {})
        .sort(doc! { "year": -1 })
        .skip(1)
        .run()?;
    check_eq!(checks, second.map(|b| b.title), Some("Beloved".to_string()));
    let mut authors = books.distinct("author", doc! {}).run()?;
    authors.sort_by_key(|a| a.to_string());
    let expected: Vec<Bson> = [
        "Asimov", "Austen", "Eliot", "Gibson", "Herbert", "Joyce", "Morrison", "Simmons",
    ]
    .into_iter()
    .map(Bson::from)
    .collect();
    check_eq!(checks, authors, expected);

    // Update.
    let updated = books
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "copies": 2 } })
        .run()?;
    check_eq!(
        checks,
        (updated.matched_count, updated.modified_count),
        (1, 1)
    );
    let no_upsert = UpdateOptions::builder().upsert(false).build();
    let updated = books
        .update_many(
            doc! { "author": "Austen" },
            doc! { "$inc": { "copies": 10 } },
        )
        .with_options(no_upsert)
        .run()?;
    check_eq!(
        checks,
        (updated.matched_count, updated.modified_count),
        (2, 2)
    );
    let kindred = doc! { "$set": { "title": "Kindred", "author": "Butler", "year": 1979, "copies": 1, "tags": ["scifi"] } };
    let upserted = books
        .update_one(doc! { "_id": 11 }, kindred.clone())
        .upsert(true)
        .run()?;
    check_eq!(checks, upserted.matched_count, 0);
    check_eq!(checks, upserted.upserted_id, Some(Bson::Int32(11)));
    let again = books
        .update_one(doc! { "_id": 11 }, kindred)
        .upsert(true)
        .run()?;
    check_eq!(checks, (again.matched_count, again.upserted_id), (1, None));
    let middlemarch = book(
        9,
        "Middlemarch",
        "Eliot",
        1871,
        7,
        &["classic", "victorian"],
    );
    let replaced = books.replace_one(doc! { "_id": 9 }, &middlemarch).run()?;
    check_eq!(
        checks,
        (replaced.matched_count, replaced.modified_count),
        (1, 1)
    );
    check_eq!(
        checks,
        books.find_one(doc! { "_id": 9 }).run()?,
        Some(middlemarch)
    );
    check_eq!(
        checks,
        books.find_one(doc! { "_id": 2 }).run()?.map(|b| b.copies),
        Some(12)
    );

    // Find-and-modify.
    let after = books
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "copies": -1 } })
        .return_document(ReturnDocument::After)
        .run()?;
    check_eq!(checks, after.map(|b| b.copies), Some(4));
    let before = books
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "copies": 1 } })
        .run()?;
    check_eq!(checks, before.map(|b| b.copies), Some(4));
    let neuromancer = book(4, "Neuromancer", "Gibson", 1984, 9, &["scifi", "cyberpunk"]);
    let old = books
        .find_one_and_replace(doc! { "_id": 4 }, &neuromancer)
        .return_document(ReturnDocument::Before)
        .run()?;
    check_eq!(checks, old, Some(more[2].clone()));
    let oldest_asimov = books
        .find_one_and_delete(doc! { "author": "Asimov" })
        .sort(doc! { "year": 1 })
        .run()?;
    check_eq!(checks, oldest_asimov, Some(more[4].clone()));
    check_eq!(
        checks,
        books.find_one_and_delete(doc! { "_id": 404 }).run()?,
        None
    );

    // Delete.
    check_eq!(
        checks,
        books.delete_one(doc! { "_id": 7 }).run()?.deleted_count,
        1
    );
    check_eq!(
        checks,
        books.delete_one(doc! { "_id": 404 }).run()?.deleted_count,
        0
    );
    check_eq!(
        checks,
        books
            .delete_many(doc! { "tags": "classic" })
            .run()?
            .deleted_count,
        3
    );
    check_eq!(checks, books.count_documents(doc! {}).run()?, 6);
    check_eq!(
        checks,
        books.count_documents(doc! { "tags": "scifi" }).run()?,
        5
    );
    check_eq!(
        checks,
        books
            .count_documents(doc! { "tags": "scifi" })
            .limit(3)
            .run()?,
        3
    );
    check_eq!(checks, books.estimated_document_count().run()?, 6);
    let left: Vec<i32> = books
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .run()?
        .map(|b| b.map(|b| b.id))
        .collect::<Result<_>>()?;
    check_eq!(checks, left, vec![1, 4, 5, 8, 10, 11]);
    check!(
        checks,
        db.list_collection_names()
            .run()?
            .contains(&"books".to_string())
    );

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("crud", run)
}
