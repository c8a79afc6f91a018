//! Reading the loosely typed fields of a reply: a server may send a count as int32, int64 or
//! a whole double, and a list of labels as an array with anything in it. Sans-IO and
//! bson-only, so every layer of the driver (the error type included) can use it.

use bson::{RawBsonRef, RawDocument};

/// Reads a numeric field whatever BSON number type the server chose for it.
pub fn get_int(doc: &RawDocument, key: &str) -> Option<i64> {
    match doc.get(key).ok()?? {
        RawBsonRef::Int32(v) => Some(v as i64),
        RawBsonRef::Int64(v) => Some(v),
        RawBsonRef::Double(v) if v.fract() == 0.0 => Some(v as i64),
        _ => None,
    }
}

/// Reads an array of strings, skipping anything else; empty when absent.
pub fn get_strings(doc: &RawDocument, key: &str) -> Vec<String> {
    doc.get_array(key)
        .map(|a| {
            a.into_iter()
                .filter_map(|v| v.ok()?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
