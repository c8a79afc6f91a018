//! A typed collection handle.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::sync::Arc;

use bson::Document;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::Result;
use crate::ops::{FindOne, InsertOne, InsertOneResult};

/// A handle to one collection whose documents are `T`: any `Serialize` type for writes, any
/// `DeserializeOwned` type for reads, or [`Document`] for untyped use. Cheap to clone.
pub struct Collection<T> {
    client: Client,
    db: Arc<str>,
    name: Arc<str>,
    _doc: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            client: self.client.clone(),
            db: self.db.clone(),
            name: self.name.clone(),
            _doc: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Collection({}.{})", self.db, self.name)
    }
}

impl<T> Collection<T> {
    pub(crate) fn new(client: Client, db: Arc<str>, name: &str) -> Self {
        Collection {
            client,
            db,
            name: name.into(),
            _doc: PhantomData,
        }
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `database.collection`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// The same collection, read and written as `U`.
    pub fn clone_with_type<U>(&self) -> Collection<U> {
        Collection {
            client: self.client.clone(),
            db: self.db.clone(),
            name: self.name.clone(),
            _doc: PhantomData,
        }
    }
}

impl<T: Serialize> Collection<T> {
    /// Inserts one document. If it has no `_id`, the driver adds an ObjectId and returns it.
    /// A document over the server's `maxBsonObjectSize` is refused before anything is sent.
    pub fn insert_one(&self, doc: impl Borrow<T>) -> Result<InsertOneResult> {
        self.client
            .execute(InsertOne::new(&self.db, &self.name, doc.borrow()))
    }
}

impl<T: DeserializeOwned> Collection<T> {
    /// The first document matching `filter`, or `None`.
    pub fn find_one(&self, filter: Document) -> Result<Option<T>> {
        self.client
            .execute(FindOne::new(&self.db, &self.name, &filter))
    }
}
