//! Indexes: create one with options and several at once, list them as models and as names,
//! rely on a unique index (a duplicate key is a write error with code 11000), drop one, drop
//! all.

#[cfg(not(feature = "official"))]
use may_mongo::{
    IndexModel,
    bson::{Document, doc},
    error::{ErrorKind, Result, WriteFailure},
    options::IndexOptions,
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    IndexModel,
    bson::{Document, doc},
    error::{ErrorKind, Result, WriteFailure},
    options::IndexOptions,
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    email: String,
    city: String,
    age: i32,
}

fn user(email: &str, city: &str, age: i32) -> User {
    User {
        email: email.into(),
        city: city.into(),
        age,
    }
}

fn sorted_names(users: &Collection<User>) -> Result<Vec<String>> {
    let mut names = users.list_index_names().run()?;
    names.sort();
    Ok(names)
}

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database("porting_indexes");
    db.drop().run()?;
    let users: Collection<User> = db.collection("users");
    users
        .insert_one(user("ada@example.com", "London", 36))
        .run()?;

    // One index, named and unique.
    let options = IndexOptions::builder()
        .unique(true)
        .name("email_unique".to_string())
        .build();
    let email = IndexModel::builder()
        .keys(doc! { "email": 1 })
        .options(options)
        .build();
    let created = users.create_index(email).run()?;
    check_eq!(checks, created.index_name, "email_unique");

    // Several at once, named by the driver from their keys.
    let models = [
        IndexModel::builder().keys(doc! { "age": 1 }).build(),
        IndexModel::builder()
            .keys(doc! { "city": 1, "age": -1 })
            .build(),
    ];
    let created = users.create_indexes(models).run()?;
    check_eq!(
        checks,
        created.index_names,
        vec!["age_1".to_string(), "city_1_age_-1".to_string()]
    );
    check_eq!(
        checks,
        sorted_names(&users)?,
        ["_id_", "age_1", "city_1_age_-1", "email_unique"]
    );

    // Listed as models: keys and options as created.
    let mut listed: Vec<IndexModel> = users.list_indexes().run()?.collect::<Result<_>>()?;
    listed.sort_by_key(|m| m.options.as_ref().and_then(|o| o.name.clone()));
    check_eq!(checks, listed.len(), 4);
    let keys: Vec<Document> = listed.iter().map(|m| m.keys.clone()).collect();
    let expected = vec![
        doc! { "_id": 1 },
        doc! { "age": 1 },
        doc! { "city": 1, "age": -1 },
        doc! { "email": 1 },
    ];
    check_eq!(checks, keys, expected);
    let email = listed[3]
        .options
        .as_ref()
        .expect("the email index has options");
    check_eq!(checks, email.name.as_deref(), Some("email_unique"));
    check_eq!(checks, email.unique, Some(true));
    let age = listed[1]
        .options
        .as_ref()
        .expect("every listed index has a name");
    check!(checks, age.unique != Some(true));

    // The unique index at work.
    users
        .insert_one(user("grace@example.com", "Arlington", 85))
        .run()?;
    let err = users
        .insert_one(user("ada@example.com", "Paris", 37))
        .run()
        .unwrap_err();
    match *err.kind {
        ErrorKind::Write(WriteFailure::WriteError(ref e)) => {
            check_eq!(checks, e.code, 11000, "{e:?}")
        }
        ref other => panic!("expected a duplicate-key write error, got {other:?}"),
    }
    check_eq!(checks, users.count_documents(doc! {}).run()?, 2);

    // Queries use the indexes transparently.
    let found = users
        .find_one(doc! { "city": "London", "age": { "$gt": 30 } })
        .run()?;
    check_eq!(checks, found, Some(user("ada@example.com", "London", 36)));

    // Drop one, then all but _id_.
    users.drop_index("age_1").run()?;
    check_eq!(
        checks,
        sorted_names(&users)?,
        ["_id_", "city_1_age_-1", "email_unique"]
    );
    let err = users.drop_index("no_such_index").run().unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => check_eq!(checks, e.code, 27, "{e:?}"),
        ref other => panic!("expected IndexNotFound, got {other:?}"),
    }
    users.drop_indexes().run()?;
    check_eq!(checks, sorted_names(&users)?, ["_id_"]);

    // Without the unique index, the duplicate goes in.
    users
        .insert_one(user("ada@example.com", "Paris", 37))
        .run()?;
    check_eq!(
        checks,
        users
            .count_documents(doc! { "email": "ada@example.com" })
            .run()?,
        2
    );

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("indexes", run)
}
