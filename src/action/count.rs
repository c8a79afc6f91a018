//! `count_documents` (an aggregation that counts exactly) and `estimated_document_count`
//! (the `count` command, from the collection's metadata).

use std::time::Duration;

use bson::{Bson, Document, RawDocument, doc};
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::collection::Collection;
use crate::crud_types::{AggregateOptions, CountOptions, EstimatedDocumentCountOptions};
use crate::error::{Error, Result};

use super::aggregate::aggregate_body;
use super::{option_setters, session_setter};
use crate::ops::body::{millis, to_body};

impl<T> Collection<T> {
    /// Counts the documents matching `filter` exactly (an aggregation: `$match`, then
    /// `$group` with `$sum: 1`).
    pub fn count_documents(&self, filter: Document) -> CountDocuments<'_, T> {
        CountDocuments {
            session: None,
            coll: self,
            filter,
            options: None,
        }
    }

    /// An estimate of the number of documents, from the collection's metadata.
    pub fn estimated_document_count(&self) -> EstimatedDocumentCount<'_, T> {
        EstimatedDocumentCount {
            session: None,
            coll: self,
            options: None,
        }
    }
}

/// Counts the documents matching a filter. Made by [`Collection::count_documents`].
#[must_use = "nothing is sent until .run()"]
pub struct CountDocuments<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) filter: Document,
    pub(crate) options: Option<CountOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> CountDocuments<'_, T> {
    session_setter!();

    option_setters!(CountOptions {
        hint: plain crate::crud_types::Hint,
        limit: plain u64,
        max_time: plain std::time::Duration,
        skip: plain u64,
        collation: plain crate::collation::Collation,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        read_concern: plain crate::concern::ReadConcern,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the counting `aggregate`.
    pub fn run(self) -> Result<u64> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll.overridden(
            options.selection_criteria.clone(),
            options.read_concern.clone(),
            None,
            self.session,
        );
        let mut pipeline = vec![doc! { "$match": self.filter }];
        if let Some(skip) = options.skip {
            pipeline.push(doc! { "$skip": skip as i64 });
        }
        if let Some(limit) = options.limit {
            pipeline.push(doc! { "$limit": limit as i64 });
        }
        pipeline.push(doc! { "$group": { "_id": 1, "n": { "$sum": 1 } } });
        // The aggregate command's own fields, from the count's options.
        let aggregate = AggregateOptions {
            hint: options.hint,
            collation: options.collation,
            max_time: options.max_time,
            comment: options.comment,
            raw_data: options.raw_data,
            ..AggregateOptions::default()
        };
        let body = aggregate_body(Bson::from(&*coll.name), pipeline, &aggregate)?;
        coll.read("aggregate", body, |r| {
            let (_, _, batch) = crate::cursor::read_cursor(r, "firstBatch")?;
            let batch = RawDocument::from_bytes(batch)
                .map_err(|e| Error::protocol("server", e.to_string()))?;
            Ok(batch
                .get_document("0")
                .ok()
                .and_then(|d| crate::conn::get_int(d, "n"))
                .unwrap_or(0) as u64)
        })
    }
}

/// Estimates the number of documents. Made by [`Collection::estimated_document_count`].
#[must_use = "nothing is sent until .run()"]
pub struct EstimatedDocumentCount<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) options: Option<EstimatedDocumentCountOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> EstimatedDocumentCount<'_, T> {
    session_setter!();

    option_setters!(EstimatedDocumentCountOptions {
        max_time: plain std::time::Duration,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        read_concern: plain crate::concern::ReadConcern,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `count` command.
    pub fn run(self) -> Result<u64> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll.overridden(
            options.selection_criteria.clone(),
            options.read_concern.clone(),
            None,
            self.session,
        );
        let body = to_body(&CountCommand {
            count: &coll.name,
            max_time: options.max_time,
            comment: options.comment.as_ref(),
            raw_data: options.raw_data,
        })?;
        coll.read("count", body, |r| {
            Ok(crate::conn::get_int(r, "n").unwrap_or(0) as u64)
        })
    }
}

/// The `count` command, without a query: the collection's metadata count.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CountCommand<'a> {
    count: &'a str,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<Duration>,
    comment: Option<&'a Bson>,
    raw_data: Option<bool>,
}
