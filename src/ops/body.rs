//! Command bodies from typed fields.
//!
//! Each action (`src/action/`) describes its command as a struct whose serde names are the command's field
//! names (`maxTimeMS`, `let`, `rawData`, ...), with unset options left out, and this module
//! turns it into the body document. The command's name comes first in the struct, as the
//! server requires, and every field has one type: no hand-written `insert("maxTimeMS", ..)`
//! can misspell a name or send a duration in the wrong unit.
//!
//! Serialization runs on a driver stack (`runtime::on_driver_stack`): the fields can hold the
//! caller's documents (a filter, `let`, a comment), and serde recurses as deep as they go.

use bson::Document;
use serde::Serialize;

use crate::error::{Error, Result};

/// `maxTimeMS` and the like: an optional duration as whole milliseconds (an Int64), for
/// `#[serde(serialize_with = "body::millis")]` on an `Option<Duration>` field.
pub(crate) fn millis<S: serde::Serializer>(
    value: &Option<std::time::Duration>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(d) => s.serialize_i64(d.as_millis().min(i64::MAX as u128) as i64),
        None => s.serialize_none(),
    }
}

/// The fields the write commands (`insert`, `update`, `delete`) share after their
/// statements, under their command names.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WriteCommandFields {
    #[serde(rename = "let")]
    pub(crate) let_vars: Option<Document>,
    pub(crate) comment: Option<bson::Bson>,
    pub(crate) bypass_document_validation: Option<bool>,
    pub(crate) raw_data: Option<bool>,
}

/// A cursor command's `cursor` field.
#[serde_with::skip_serializing_none]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CursorField {
    pub(crate) batch_size: Option<i32>,
}

/// The body a command struct serializes to.
pub(crate) fn to_body(command: &impl Serialize) -> Result<Document> {
    crate::runtime::on_driver_stack(|| bson::serialize_to_document(command)).map_err(Error::ser)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bson::{Bson, doc};

    use super::*;

    #[serde_with::skip_serializing_none]
    #[derive(Serialize)]
    struct Example<'a> {
        example: &'a str,
        #[serde(rename = "maxTimeMS", serialize_with = "millis")]
        max_time: Option<Duration>,
        comment: Option<&'a Bson>,
        #[serde(rename = "let")]
        let_vars: Option<&'a Document>,
    }

    #[test]
    fn unset_fields_are_left_out_and_durations_are_milliseconds() {
        let body = to_body(&Example {
            example: "c",
            max_time: Some(Duration::from_millis(1500)),
            comment: None,
            let_vars: Some(&doc! { "x": 1 }),
        })
        .unwrap();
        assert_eq!(
            body,
            doc! { "example": "c", "maxTimeMS": 1500_i64, "let": { "x": 1 } }
        );
        assert_eq!(body.keys().next().map(String::as_str), Some("example"));
    }
}
