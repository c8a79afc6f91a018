//! Reading raw BSON into `Document`, `Bson` and the caller's own types, within a known depth.
//!
//! bson's own conversions recurse once per nesting level, and so does serde. On may's 32 KiB
//! default coroutine stack, bson's `Document` conversion overflowed at nesting 20 in a release
//! build, and in an unoptimised build (a user's `cargo build`) serde took about 25 KiB per
//! level. MongoDB stores documents nested up to 100 deep. So:
//!
//! - `Document` and `Bson` are built without recursion: the walk keeps its own stack of open
//!   containers on the heap, and its stack use is the same at any depth. Every place the
//!   driver turns a reply into a `Document` or `Bson` (`run_command`, `distinct`, upserted ids,
//!   write errors, command monitoring, `hello`) goes through [`to_document`] or [`to_bson`].
//! - The caller's own types are decoded by serde, which recurses as deep as the type does. The
//!   driver does it on one of its own 8 MiB stacks (`runtime::on_driver_stack`), after
//!   [`check_depth`] has walked the raw bytes (without recursion) to make sure the document is
//!   no deeper than [`MAX_DEPTH`]: 200 levels of serde fit in a driver stack with room to
//!   spare, even unoptimised, and a hostile server cannot make the driver recurse further.
//! - Nothing deeper than [`MAX_DEPTH`] is read at all: [`ErrorKind::TooDeep`].

use std::any::{Any, TypeId};

use bson::{Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};

use crate::wire::DecodeError;
pub(crate) use crate::wire::MAX_DEPTH;

/// The driver's error for a [`DecodeError`]: a malformed reply is a protocol error from the
/// server; one nested too deep is [`ErrorKind::TooDeep`].
fn error(e: DecodeError) -> Error {
    match e {
        DecodeError::Malformed(m) => Error::protocol("server", format!("malformed BSON: {m}")),
        DecodeError::TooDeep => ErrorKind::TooDeep {
            what: "a reply from the server".to_string(),
            max: MAX_DEPTH,
        }
        .into(),
    }
}

/// `raw` as a `Document`, with constant stack use at any nesting depth (up to [`MAX_DEPTH`]).
pub(crate) fn to_document(raw: &RawDocument) -> Result<Document> {
    crate::wire::to_document(raw).map_err(error)
}

/// One BSON value as a `Bson`, with constant stack use at any nesting depth (up to
/// [`MAX_DEPTH`]).
pub(crate) fn to_bson(value: RawBsonRef<'_>) -> Result<Bson> {
    crate::wire::to_bson(value).map_err(error)
}

/// Fails with [`ErrorKind::TooDeep`] if `raw` nests deeper than `max` levels, walking its
/// bytes without recursion (see `wire::check_depth`).
pub(crate) fn check_depth(raw: &RawDocument, max: usize) -> Result<()> {
    crate::wire::check_depth(raw, max).map_err(error)
}

/// Decodes one result: a `Document` without recursion, a `RawDocumentBuf` as a copy, any
/// other type with serde once the depth is known to be within [`MAX_DEPTH`]. Call it on a
/// driver stack: serde recurses.
pub(crate) fn decode<T: DeserializeOwned + 'static>(raw: &RawDocument) -> Result<T> {
    // The value goes through an `Option` seen as `dyn Any`: a downcast with no allocation.
    if TypeId::of::<T>() == TypeId::of::<Document>() {
        let mut value = Some(to_document(raw)?);
        return Ok(take_as::<T>(&mut value));
    }
    if TypeId::of::<T>() == TypeId::of::<RawDocumentBuf>() {
        let mut value = Some(raw.to_owned());
        return Ok(take_as::<T>(&mut value));
    }
    check_depth(raw, MAX_DEPTH)?;
    bson::deserialize_from_slice(raw.as_bytes()).map_err(Error::de)
}

/// `value`'s content as `T`, which it is (the caller compared the type ids).
fn take_as<T: 'static>(value: &mut dyn Any) -> T {
    value
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
        .expect("the caller checked the type")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    /// `levels` documents nested inside one another (the top is level 1), built from the
    /// inside out so that building does not recurse either.
    fn nested(levels: usize) -> RawDocumentBuf {
        let mut raw = bson::rawdoc! { "leaf": true };
        for i in 1..levels {
            let mut outer = RawDocumentBuf::new();
            outer.append(bson::raw::cstr!("n"), i as i64);
            outer.append(bson::raw::cstr!("d"), raw);
            raw = outer;
        }
        raw
    }

    #[test]
    fn matches_bson_s_own_conversion() {
        let d = doc! {
            "a": 1, "b": [1, "two", { "c": [ [], {} ] }], "d": { "e": null, "f": 1.5 },
            "g": bson::oid::ObjectId::new(), "h": bson::DateTime::now(), "i": "x",
            "j": Bson::JavaScriptCodeWithScope(bson::JavaScriptCodeWithScope {
                code: "x".into(), scope: doc! { "s": { "t": 1 } },
            }),
        };
        let raw = RawDocumentBuf::try_from(&d).unwrap();
        assert_eq!(to_document(&raw).unwrap(), d);
        assert_eq!(decode::<Document>(&raw).unwrap(), d);
        assert_eq!(decode::<RawDocumentBuf>(&raw).unwrap(), raw);
        let arr = raw.get("b").unwrap().unwrap();
        assert_eq!(to_bson(arr).unwrap(), d.get("b").unwrap().clone());
        assert_eq!(to_bson(RawBsonRef::Int32(7)).unwrap(), Bson::Int32(7));
    }

    #[test]
    fn depth_up_to_the_limit_and_no_further() {
        // At the limit: read, on a 64 KiB thread (bson's recursive conversion would not fit).
        let ok = nested(MAX_DEPTH);
        let d = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                check_depth(&ok, MAX_DEPTH).unwrap();
                to_document(&ok).unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        let mut cur = &d;
        for _ in 1..MAX_DEPTH {
            cur = cur.get_document("d").unwrap();
        }
        assert!(cur.get_bool("leaf").unwrap());
        std::mem::forget(d); // dropping it recurses 200 deep: not on a 64 KiB thread
        // One more level: refused by every reader, with the typed error.
        let deep = nested(MAX_DEPTH + 1);
        for e in [
            check_depth(&deep, MAX_DEPTH).unwrap_err(),
            to_document(&deep).unwrap_err(),
            to_bson(RawBsonRef::Document(&deep)).unwrap_err(),
            decode::<std::collections::HashMap<String, Bson>>(&deep).unwrap_err(),
        ] {
            assert!(
                matches!(*e.kind, ErrorKind::TooDeep { max: MAX_DEPTH, .. }),
                "{e}"
            );
        }
        // Arrays count as levels too.
        let mut arr = bson::rawdoc! {};
        for _ in 0..MAX_DEPTH {
            let mut outer = RawDocumentBuf::new();
            outer.append(bson::raw::cstr!("a"), bson::RawArrayBuf::from_iter([arr]));
            arr = outer;
        }
        assert!(check_depth(&arr, MAX_DEPTH).is_err());
        assert!(to_document(&arr).is_err());
    }
}
