//! Raw BSON into `Document` and `Bson` without recursion, and the depth check over the raw
//! bytes: the sans-IO half of the driver's decoding (the error-typed wrappers and serde
//! decoding are in the driver's `decode` module; see there for why none of this recurses).
//! Here so that the driver's error type, which keeps a server's error reply as a `Document`,
//! can use it without importing anything above it.

use bson::raw::RawIter;
use bson::{Bson, Document, RawBsonRef, RawDocument};

/// Why raw BSON could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not valid BSON.
    #[error("malformed BSON: {0}")]
    Malformed(String),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// The deepest document the driver reads or writes: MongoDB's default `maxBSONDepth` (its
/// parser refuses anything nested deeper; it stores nothing deeper than 100). The top-level
/// document is level 1.
pub const MAX_DEPTH: usize = 200;

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

fn bad(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(e.to_string())
}

fn too_deep() -> DecodeError {
    DecodeError::TooDeep
}

/// `raw` as a `Document`, with constant stack use at any nesting depth (up to [`MAX_DEPTH`]).
pub fn to_document(raw: &RawDocument) -> Result<Document, DecodeError> {
    document_at(raw, 1)
}

/// [`to_document`] for a document found at nesting level `level`.
fn document_at(raw: &RawDocument, level: usize) -> Result<Document, DecodeError> {
    match build(Container::Doc(Document::new()), raw.iter_elements(), level)? {
        Bson::Document(d) => Ok(d),
        _ => unreachable!("the root is a document"),
    }
}

/// One BSON value as a `Bson`, with constant stack use at any nesting depth (up to
/// [`MAX_DEPTH`]).
pub fn to_bson(value: RawBsonRef<'_>) -> Result<Bson, DecodeError> {
    match value {
        RawBsonRef::Document(d) => build(Container::Doc(Document::new()), d.iter_elements(), 1),
        RawBsonRef::Array(a) => build(Container::Arr(Vec::new()), a.iter_elements(), 1),
        scalar => scalar_to_bson(scalar, 0),
    }
}

/// A value that is not a container, found at nesting level `level`. JavaScript code with
/// scope holds a document: its scope is one level deeper, and converted the same way (the
/// one recursion here, bounded by [`MAX_DEPTH`] like the rest).
fn scalar_to_bson(value: RawBsonRef<'_>, level: usize) -> Result<Bson, DecodeError> {
    match value {
        RawBsonRef::JavaScriptCodeWithScope(_) if level >= MAX_DEPTH => Err(too_deep()),
        RawBsonRef::JavaScriptCodeWithScope(c) => Ok(Bson::JavaScriptCodeWithScope(
            bson::JavaScriptCodeWithScope {
                code: c.code.to_string(),
                scope: document_at(c.scope, level + 1)?,
            },
        )),
        other => Bson::try_from(other).map_err(bad),
    }
}

/// Fills `root`, a container at nesting level `level`, from `elements`, descending into
/// nested containers with an explicit stack.
fn build(root: Container, elements: RawIter<'_>, level: usize) -> Result<Bson, DecodeError> {
    let mut stack = vec![Frame {
        iter: elements,
        value: root,
        key: String::new(),
    }];
    loop {
        // The open containers are levels `level` to `depth`.
        let depth = level + stack.len() - 1;
        let top = stack
            .last_mut()
            .expect("the root frame stays until the end");
        match top.iter.next() {
            Some(element) => {
                let element = element.map_err(bad)?;
                // An array's elements are pushed: their keys ("0", "1", ...) are not kept.
                let key = match top.value {
                    Container::Doc(_) => element.key().as_str().to_string(),
                    Container::Arr(_) => String::new(),
                };
                let value = element.value().map_err(bad)?;
                let child = match value {
                    RawBsonRef::Document(d) => {
                        Some((d.iter_elements(), Container::Doc(Document::new())))
                    }
                    RawBsonRef::Array(a) => Some((a.iter_elements(), Container::Arr(Vec::new()))),
                    _ => None,
                };
                match child {
                    Some(_) if depth >= MAX_DEPTH => return Err(too_deep()),
                    Some((iter, value)) => stack.push(Frame { iter, value, key }),
                    None => {
                        let v = scalar_to_bson(value, depth)?;
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
                    None => return Ok(value),
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

/// Fails with [`DecodeError::TooDeep`] if `raw` nests deeper than `max` levels (the top level is
/// 1), walking its bytes without recursion and without decoding anything. Cheap for small
/// documents: each level costs at least 7 bytes of BSON, so a document too short to be that
/// deep is not walked at all.
pub fn check_depth(raw: &RawDocument, max: usize) -> Result<(), DecodeError> {
    // type (1) + empty key (1) + the nested document's length (4) and terminator (1)
    const LEVEL_BYTES: usize = 7;
    if raw.as_bytes().len() <= max.saturating_mul(LEVEL_BYTES) {
        return Ok(());
    }
    let mut stack = vec![raw.iter_elements()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(element) => {
                let value = element.and_then(|e| e.value()).map_err(bad)?;
                let nested = match value {
                    RawBsonRef::Document(d) => Some(d.iter_elements()),
                    RawBsonRef::Array(a) => Some(a.iter_elements()),
                    RawBsonRef::JavaScriptCodeWithScope(c) => Some(c.scope.iter_elements()),
                    _ => None,
                };
                if let Some(iter) = nested {
                    if stack.len() >= max {
                        return Err(too_deep());
                    }
                    stack.push(iter);
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    Ok(())
}
