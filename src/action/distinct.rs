//! `distinct`: the distinct values of one field.

use bson::{Bson, Document, doc};

use crate::collection::{Collection, millis, put};
use crate::crud_types::DistinctOptions;
use crate::error::{Error, Result};

use super::option_setters;

impl<T> Collection<T> {
    /// The distinct values of `field_name` among the documents matching `filter`.
    pub fn distinct(&self, field_name: impl AsRef<str>, filter: Document) -> Distinct<'_, T> {
        Distinct {
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
    coll: &'a Collection<T>,
    field_name: String,
    filter: Document,
    options: Option<DistinctOptions>,
}

impl<T> Distinct<'_, T> {
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
        );
        let mut body =
            doc! { "distinct": &*coll.name, "key": self.field_name, "query": self.filter };
        put(&mut body, "collation", options.collation);
        put(&mut body, "hint", options.hint);
        put(&mut body, "maxTimeMS", options.max_time.map(millis));
        put(&mut body, "comment", options.comment);
        put(&mut body, "rawData", options.raw_data);
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
