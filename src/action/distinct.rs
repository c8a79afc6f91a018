//! `distinct`: the distinct values of one field.

use bson::{Bson, Document};
use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::collation::Collation;
use crate::collection::Collection;
use crate::crud_types::{DistinctOptions, Hint};
use crate::error::{Error, Result};

use super::{option_setters, session_setter};
use crate::ops::body::{millis, to_body};

impl<T> Collection<T> {
    /// The distinct values of `field_name` among the documents matching `filter`.
    pub fn distinct(&self, field_name: impl AsRef<str>, filter: Document) -> Distinct<'_, T> {
        Distinct {
            session: None,
            coll: self,
            field_name: field_name.as_ref().to_string(),
            filter,
            options: None,
        }
    }
}

/// The distinct values of a field. Made by [`Collection::distinct`].
#[must_use = "nothing is sent until .run()"]
pub struct Distinct<'a, T> {
    pub(crate) coll: &'a Collection<T>,
    pub(crate) field_name: String,
    pub(crate) filter: Document,
    pub(crate) options: Option<DistinctOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl<T> Distinct<'_, T> {
    session_setter!();

    option_setters!(DistinctOptions {
        max_time: plain std::time::Duration,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        read_concern: plain crate::concern::ReadConcern,
        collation: plain crate::collation::Collation,
        hint: plain crate::crud_types::Hint,
        comment: into Bson,
        raw_data: plain bool,
    });

    /// Sends the `distinct` command; the values are decoded without recursion.
    pub fn run(self) -> Result<Vec<Bson>> {
        let options = self.options.unwrap_or_default();
        let coll = self.coll.overridden(
            options.selection_criteria.clone(),
            options.read_concern.clone(),
            None,
            self.session,
        );
        let body = to_body(&DistinctCommand {
            distinct: &coll.name,
            key: &self.field_name,
            query: &self.filter,
            collation: options.collation.as_ref(),
            hint: options.hint.as_ref(),
            max_time: options.max_time,
            comment: options.comment.as_ref(),
            raw_data: options.raw_data,
        })?;
        crate::runtime::drop_on_driver_stack(self.filter);
        coll.read("distinct", body, |r| {
            let values = r
                .get_array("values")
                .map_err(|_| crate::ops::malformed_reply("distinct", "no values"))?;
            values
                .into_iter()
                .map(|v| {
                    v.map_err(|e| Error::protocol("server", e.to_string()))
                        .and_then(crate::decode::to_bson)
                })
                .collect()
        })
    }
}

/// The `distinct` command.
#[skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DistinctCommand<'a> {
    distinct: &'a str,
    key: &'a str,
    query: &'a Document,
    collation: Option<&'a Collation>,
    hint: Option<&'a Hint>,
    #[serde(rename = "maxTimeMS", serialize_with = "millis")]
    max_time: Option<std::time::Duration>,
    comment: Option<&'a Bson>,
    raw_data: Option<bool>,
}
