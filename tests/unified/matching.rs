//! The unified test format's rules for comparing an expected value with an actual one
//! ("Evaluating Matches" in the spec).
//!
//! - Root-level documents (a command in an event, a reply, an operation's result document,
//!   each document a `find` returns) may carry fields the expectation does not name; nested
//!   documents may not.
//! - Numbers compare by value across int32, int64 and double (`1` matches `1.0`).
//! - Arrays must have the same length, compared element by element.
//! - A document whose only key starts with `$$` is a special operator: `$$exists`, `$$type`,
//!   `$$unsetOrMatches`, `$$matchesEntity`, `$$matchesHexBytes`, `$$lte`,
//!   `$$matchAsDocument`, `$$matchAsRoot`, `$$sessionLsid`.

use std::collections::HashMap;

use bson::{Bson, Document};

/// Values the test saved as entities (`saveResultAsEntity`), for `$$matchesEntity`.
pub type Saved = HashMap<String, Bson>;

/// Checks `actual` (absent: `None`) against `expected`. The error names the path and both
/// values.
pub fn matches(
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    saved: &Saved,
    path: &str,
) -> Result<(), String> {
    if let Some((op, arg)) = special_operator(expected) {
        return operator(op, arg, actual, root, saved, path);
    }
    let Some(actual) = actual else {
        return Err(format!("{path}: expected {expected}, found nothing"));
    };
    match (expected, actual) {
        (Bson::Document(e), Bson::Document(a)) => {
            for (key, value) in e {
                let p = format!("{path}.{key}");
                matches(value, a.get(key), false, saved, &p)?;
            }
            if !root && let Some(extra) = a.keys().find(|k| !e.contains_key(k.as_str())) {
                return Err(format!(
                    "{path}: unexpected field {extra:?} in nested document {a}"
                ));
            }
            Ok(())
        }
        (Bson::Array(e), Bson::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} elements, found {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (e, a)) in e.iter().zip(a).enumerate() {
                matches(e, Some(a), false, saved, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (e, a) => match (number(e), number(a)) {
            (Some(x), Some(y)) if x == y => Ok(()),
            (Some(_), _) | (_, Some(_)) => Err(format!("{path}: expected {e}, found {a}")),
            _ if e == a => Ok(()),
            _ => Err(format!("{path}: expected {e}, found {a}")),
        },
    }
}

/// `{ "$$name": argument }`, when `value` is one.
pub fn special_operator(value: &Bson) -> Option<(&str, &Bson)> {
    let Bson::Document(d) = value else {
        return None;
    };
    if d.len() != 1 {
        return None;
    }
    let (k, v) = d.iter().next()?;
    k.starts_with("$$").then_some((k.as_str(), v))
}

fn operator(
    op: &str,
    arg: &Bson,
    actual: Option<&Bson>,
    root: bool,
    saved: &Saved,
    path: &str,
) -> Result<(), String> {
    match op {
        "$$exists" => {
            let want = arg.as_bool().ok_or("$$exists takes a boolean")?;
            if want == actual.is_some() {
                Ok(())
            } else if want {
                Err(format!("{path}: expected to exist"))
            } else {
                Err(format!("{path}: expected not to exist, found {:?}", actual))
            }
        }
        "$$type" => {
            let names: Vec<&str> = match arg {
                Bson::String(s) => vec![s.as_str()],
                Bson::Array(a) => a.iter().filter_map(Bson::as_str).collect(),
                _ => return Err("$$type takes a string or an array of strings".into()),
            };
            let Some(actual) = actual else {
                return Err(format!(
                    "{path}: expected a value of type {names:?}, found nothing"
                ));
            };
            if names.iter().any(|n| type_name(actual) == *n) {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected type {names:?}, found {} ({actual})",
                    type_name(actual)
                ))
            }
        }
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(_) => matches(arg, actual, root, saved, path),
        },
        "$$matchesEntity" => {
            let id = arg.as_str().ok_or("$$matchesEntity takes an entity id")?;
            let entity = saved
                .get(id)
                .ok_or_else(|| format!("{path}: no saved entity {id:?}"))?;
            matches(entity, actual, root, saved, path)
        }
        "$$sessionLsid" => {
            let id = arg.as_str().ok_or("$$sessionLsid takes a session id")?;
            let lsid = saved
                .get(&format!("lsid of {id}"))
                .ok_or_else(|| format!("{path}: no session {id:?}"))?;
            matches(lsid, actual, root, saved, path)
        }
        "$$matchesHexBytes" => {
            let hex = arg.as_str().ok_or("$$matchesHexBytes takes a string")?;
            match actual {
                Some(Bson::Binary(b)) if to_hex(&b.bytes).eq_ignore_ascii_case(hex) => Ok(()),
                other => Err(format!("{path}: expected bytes {hex}, found {other:?}")),
            }
        }
        "$$lte" => match (number(arg), actual.and_then(number)) {
            (Some(max), Some(a)) if a <= max => Ok(()),
            _ => Err(format!(
                "{path}: expected a number <= {arg}, found {actual:?}"
            )),
        },
        "$$matchAsDocument" => {
            let Some(Bson::String(json)) = actual else {
                return Err(format!("{path}: expected a JSON string, found {actual:?}"));
            };
            let value: serde_json::Value =
                serde_json::from_str(json).map_err(|e| format!("{path}: {e}"))?;
            let doc = Bson::try_from(value).map_err(|e| format!("{path}: {e}"))?;
            matches(arg, Some(&doc), false, saved, path)
        }
        "$$matchAsRoot" => matches(arg, actual, true, saved, path),
        other => Err(format!("{path}: unsupported special operator {other}")),
    }
}

/// A number's value, for comparisons across int32, int64 and double.
fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

/// The `$type` alias of a value, as `$$type` names it.
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shorthand for matching one document at the root.
pub fn matches_root(expected: &Bson, actual: &Document, saved: &Saved) -> Result<(), String> {
    matches(
        expected,
        Some(&Bson::Document(actual.clone())),
        true,
        saved,
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn check(expected: Document, actual: Document, root: bool) -> Result<(), String> {
        let actual = Bson::Document(actual);
        matches(&expected.into(), Some(&actual), root, &Saved::new(), "")
    }

    #[test]
    fn the_spec_rules() {
        // Extra fields: allowed at the root only.
        assert!(check(doc! { "x": 1 }, doc! { "x": 1, "y": 1 }, true).is_ok());
        assert!(check(doc! { "x": 1, "y": 1 }, doc! { "x": 1 }, true).is_err());
        assert!(
            check(
                doc! { "a": { "x": 1 } },
                doc! { "a": { "x": 1, "y": 1 } },
                true
            )
            .is_err()
        );
        // Numbers by value; key order free.
        assert!(check(doc! { "n": 1, "m": 2 }, doc! { "m": 2.0, "n": 1_i64 }, true).is_ok());
        assert!(check(doc! { "n": 1 }, doc! { "n": 1.5 }, true).is_err());
        assert!(check(doc! { "n": 1 }, doc! { "n": "1" }, true).is_err());
        // Arrays: same length.
        assert!(check(doc! { "a": [1, 2] }, doc! { "a": [1, 2, 3] }, true).is_err());
        // Operators.
        let e = doc! { "a": { "$$exists": false }, "b": { "$$type": ["int", "long"] } };
        assert!(check(e.clone(), doc! { "b": 3_i64 }, false).is_ok());
        assert!(check(e.clone(), doc! { "a": 1, "b": 3 }, true).is_err());
        assert!(check(e, doc! { "b": "3" }, false).is_err());
        let e = doc! { "r": { "$$unsetOrMatches": { "n": 1 } } };
        assert!(check(e.clone(), doc! {}, false).is_ok());
        assert!(check(e.clone(), doc! { "r": { "n": 1 } }, false).is_ok());
        assert!(check(e, doc! { "r": { "n": 2 } }, false).is_err());
        assert!(check(doc! { "t": { "$$lte": 5 } }, doc! { "t": 5 }, true).is_ok());
        assert!(check(doc! { "t": { "$$lte": 5 } }, doc! { "t": 6 }, true).is_err());
    }
}
