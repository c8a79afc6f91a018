//! Atlas Search index management: `createSearchIndexes`, `updateSearchIndex`,
//! `dropSearchIndex`, and the `$listSearchIndexes` aggregation stage.
//!
//! Atlas builds search indexes in the background: a create returns once the server has taken
//! the request, and the index is usable when `list_search_indexes` reports it `queryable`. A
//! server without Atlas Search (a plain mongod, FerretDB, ...) answers with an error.
//!
//! Every command here is sent without read or write concern. mongod hands these commands to
//! the Atlas Search process beside it, where a concern means nothing, and they fail when a
//! `readConcern` or `writeConcern` field is present; the Index Management spec says drivers
//! must not send either. So they go through a handle whose settings have none
//! (`Collection::unconcerned`); the read preference and the timeout stay.

use bson::{Document, doc};

use crate::collection::{Collection, put};
use crate::crud_types::{AggregateOptions, SearchIndexModel};
use crate::cursor::Cursor;
use crate::error::Result;
use crate::ops::malformed_reply;
use crate::retry::Retry;

impl<T> Collection<T> {
    /// Creates one Atlas Search (or Vector Search) index; [`run`](CreateSearchIndex::run)
    /// returns its name (the server names an unnamed one `default`).
    pub fn create_search_index(&self, model: SearchIndexModel) -> CreateSearchIndex<'_, T> {
        CreateSearchIndex(CreateSearchIndexes {
            coll: self,
            models: vec![model],
        })
    }

    /// Creates several Atlas Search indexes in one command; [`run`](CreateSearchIndexes::run)
    /// returns their names, in the order the server reports them (`indexesCreated`).
    pub fn create_search_indexes(
        &self,
        models: impl IntoIterator<Item = SearchIndexModel>,
    ) -> CreateSearchIndexes<'_, T> {
        CreateSearchIndexes {
            coll: self,
            models: models.into_iter().collect(),
        }
    }

    /// Replaces the definition of the Atlas Search index called `name` (rebuilt in the
    /// background, like a new one).
    pub fn update_search_index(
        &self,
        name: impl Into<String>,
        definition: Document,
    ) -> UpdateSearchIndex<'_, T> {
        UpdateSearchIndex {
            coll: self,
            name: name.into(),
            definition,
        }
    }

    /// Drops the Atlas Search index called `name`. A missing collection (`NamespaceNotFound`)
    /// is success: the Index Management spec makes the drop idempotent.
    pub fn drop_search_index(&self, name: impl Into<String>) -> DropSearchIndex<'_, T> {
        DropSearchIndex {
            coll: self,
            name: name.into(),
        }
    }

    /// The collection's Atlas Search indexes (or only the one [`name`](ListSearchIndexes::name)
    /// names): an aggregation whose pipeline is `[{ $listSearchIndexes: { name } }]`. Each
    /// document describes one index: `name`, `status`, `queryable`, `latestDefinition`, ...
    pub fn list_search_indexes(&self) -> ListSearchIndexes<'_, T> {
        ListSearchIndexes {
            coll: self,
            name: None,
            options: None,
        }
    }
}

/// Creates one search index. Made by [`Collection::create_search_index`].
#[must_use = "nothing is sent until .run()"]
pub struct CreateSearchIndex<'a, T>(pub(crate) CreateSearchIndexes<'a, T>);

impl<T> CreateSearchIndex<'_, T> {
    /// Sends `createSearchIndexes` with the one index.
    pub fn run(self) -> Result<String> {
        let mut names = self.0.run()?;
        match names.len() {
            1 => Ok(names.remove(0)),
            n => Err(malformed_reply(
                "createSearchIndexes",
                format!("{n} names in indexesCreated for one index"),
            )),
        }
    }
}

/// Creates search indexes. Made by [`Collection::create_search_indexes`].
#[must_use = "nothing is sent until .run()"]
pub struct CreateSearchIndexes<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) models: Vec<SearchIndexModel>,
}

impl<T> CreateSearchIndexes<'_, T> {
    /// Sends `createSearchIndexes` (to the primary, not retried).
    pub fn run(self) -> Result<Vec<String>> {
        let indexes: Vec<Document> = self
            .models
            .into_iter()
            .map(SearchIndexModel::into_command_entry)
            .collect();
        let body = doc! { "createSearchIndexes": &*self.coll.name, "indexes": indexes };
        self.coll
            .unconcerned()
            .write("createSearchIndexes", body, Retry::No, |r| {
                let malformed = |what: &str| malformed_reply("createSearchIndexes", what);
                let created = r
                    .get_array("indexesCreated")
                    .map_err(|_| malformed("no indexesCreated"))?;
                created
                    .into_iter()
                    .map(|entry| {
                        entry
                            .ok()
                            .and_then(|e| e.as_document())
                            .and_then(|e| e.get_str("name").ok())
                            .map(String::from)
                            .ok_or_else(|| malformed("an indexesCreated entry without a name"))
                    })
                    .collect()
            })
    }
}

/// Replaces a search index's definition. Made by [`Collection::update_search_index`].
#[must_use = "nothing is sent until .run()"]
pub struct UpdateSearchIndex<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) name: String,
    pub(crate) definition: Document,
}

impl<T> UpdateSearchIndex<'_, T> {
    /// Sends `updateSearchIndex`.
    pub fn run(self) -> Result<()> {
        let body = doc! {
            "updateSearchIndex": &*self.coll.name,
            "name": self.name,
            "definition": self.definition,
        };
        self.coll
            .unconcerned()
            .write("updateSearchIndex", body, Retry::No, |_| Ok(()))
    }
}

/// Drops a search index. Made by [`Collection::drop_search_index`].
#[must_use = "nothing is sent until .run()"]
pub struct DropSearchIndex<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) name: String,
}

impl<T> DropSearchIndex<'_, T> {
    /// Sends `dropSearchIndex`.
    pub fn run(self) -> Result<()> {
        let body = doc! { "dropSearchIndex": &*self.coll.name, "name": self.name };
        match self
            .coll
            .unconcerned()
            .write("dropSearchIndex", body, Retry::No, |_| Ok(()))
        {
            Err(e) if e.is_ns_not_found() => Ok(()),
            other => other,
        }
    }
}

/// Lists search indexes. Made by [`Collection::list_search_indexes`].
#[must_use = "nothing is sent until .run()"]
pub struct ListSearchIndexes<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) name: Option<String>,
    pub(crate) options: Option<AggregateOptions>,
}

impl<T> ListSearchIndexes<'_, T> {
    /// Only the index called `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The aggregation's options (`batch_size`, `comment`, `max_time`, ...).
    pub fn aggregate_options(mut self, value: AggregateOptions) -> Self {
        self.options = Some(value);
        self
    }

    /// Runs the `$listSearchIndexes` aggregation.
    pub fn run(self) -> Result<Cursor<Document>> {
        let mut stage = Document::new();
        put(&mut stage, "name", self.name);
        self.coll
            .unconcerned()
            .aggregate(vec![doc! { "$listSearchIndexes": stage }])
            .with_options(self.options)
            .run()
    }
}
