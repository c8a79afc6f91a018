//! Decoding raw BSON into `Document` without recursion.
//!
//! bson's own conversion recurses once per nesting level; measured on may's 32 KiB default
//! coroutine stack it overflowed at nesting 20 (may-facts.md). MongoDB allows documents nested
//! 100 deep, so a driver that hands coroutines `Document`s must not recurse: this walks the
//! document with an explicit stack on the heap, so its stack use is the same at any depth.
//!
//! It serves every place the driver builds a `Document` from a reply (`run_command`, command
//! monitoring) and results typed as `Document` (cursors, `find_one`). Results typed as the
//! caller's own serde types are decoded by serde, which recurses as deep as the type does.

use std::any::{Any, TypeId};

use bson::raw::RawIter;
use bson::{Bson, Document, RawBsonRef, RawDocument};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A container being filled, and the elements of its raw form still to read.
struct Frame<'a> {
    iter: RawIter<'a>,
    value: Container,
    /// The key this container goes under in its parent (unused for the root and arrays'
    /// elements, which are pushed).
    key: String,
}

enum Container {
    Doc(Document),
    Arr(Vec<Bson>),
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::protocol("server", format!("malformed BSON: {e}"))
}

/// `raw` as a `Document`, with constant stack use at any nesting depth.
pub(crate) fn to_document(raw: &RawDocument) -> Result<Document> {
    let mut stack = vec![Frame {
        iter: raw.iter_elements(),
        value: Container::Doc(Document::new()),
        key: String::new(),
    }];
    loop {
        let top = stack
            .last_mut()
            .expect("the root frame stays until the end");
        match top.iter.next() {
            Some(element) => {
                let element = element.map_err(bad)?;
                let key = element.key().as_str().to_string();
                let value = element.value().map_err(bad)?;
                let child = match value {
                    RawBsonRef::Document(d) => {
                        Some((d.iter_elements(), Container::Doc(Document::new())))
                    }
                    RawBsonRef::Array(a) => Some((a.iter_elements(), Container::Arr(Vec::new()))),
                    _ => None,
                };
                match child {
                    Some((iter, value)) => stack.push(Frame { iter, value, key }),
                    None => {
                        let v = Bson::try_from(value).map_err(bad)?;
                        insert(&mut top.value, key, v);
                    }
                }
            }
            None => {
                let done = stack.pop().expect("non-empty");
                let value = match done.value {
                    Container::Doc(d) => Bson::Document(d),
                    Container::Arr(a) => Bson::Array(a),
                };
                match stack.last_mut() {
                    Some(parent) => insert(&mut parent.value, done.key, value),
                    None => match value {
                        Bson::Document(d) => return Ok(d),
                        _ => unreachable!("the root is a document"),
                    },
                }
            }
        }
    }
}

fn insert(container: &mut Container, key: String, value: Bson) {
    match container {
        Container::Doc(d) => {
            d.insert(key, value);
        }
        Container::Arr(a) => a.push(value),
    }
}

/// Decodes one result: a `Document` without recursion, any other type with serde.
pub(crate) fn decode<T: DeserializeOwned + 'static>(raw: &RawDocument) -> Result<T> {
    if TypeId::of::<T>() == TypeId::of::<Document>() {
        let doc: Box<dyn Any> = Box::new(to_document(raw)?);
        return Ok(*doc.downcast::<T>().expect("T is Document"));
    }
    bson::deserialize_from_slice(raw.as_bytes()).map_err(Error::de)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn matches_bson_s_own_conversion() {
        let d = doc! {
            "a": 1, "b": [1, "two", { "c": [ [], {} ] }], "d": { "e": null, "f": 1.5 },
            "g": bson::oid::ObjectId::new(), "h": bson::DateTime::now(), "i": "x",
        };
        let raw = bson::RawDocumentBuf::try_from(&d).unwrap();
        assert_eq!(to_document(&raw).unwrap(), d);
        assert_eq!(decode::<Document>(&raw).unwrap(), d);
    }

    #[test]
    fn nesting_does_not_grow_the_stack() {
        // Built from the inside out, so building does not recurse either.
        let mut raw = bson::rawdoc! { "leaf": true };
        for i in 0..1_000 {
            let mut outer = bson::RawDocumentBuf::new();
            outer.append(bson::raw::cstr!("n"), i);
            outer.append(bson::raw::cstr!("d"), raw);
            raw = outer;
        }
        // 1,000 levels on a 64 KiB thread: bson's recursive conversion would not fit.
        let d = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || to_document(&raw).unwrap())
            .unwrap()
            .join()
            .unwrap();
        let mut cur = &d;
        for _ in 0..1_000 {
            cur = cur.get_document("d").unwrap();
        }
        assert!(cur.get_bool("leaf").unwrap());
    }
}
