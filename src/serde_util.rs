//! serde helpers for the options and results types: durations as the integer numbers of
//! milliseconds or seconds the server takes, and numbers of whichever BSON type a server
//! replies with.

use std::time::Duration;

use serde::{Deserializer, Serializer, de};

/// A number of any BSON numeric type, read as a non-negative `u64` (a fractional part is
/// dropped).
pub(crate) fn u64_from_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Number;
    impl de::Visitor<'_> for Number {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative number")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("negative number {v}")))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!("not a non-negative number: {v}")))
            }
        }
    }
    d.deserialize_any(Number)
}

/// An optional number of any BSON numeric type, read as a `u64`.
pub(crate) fn option_u64_from_number<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "u64_from_number")] u64);
    Ok(<Option<Wrapped> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

/// A `u64` sent as an `i64` (BSON has no unsigned 64-bit integer).
pub(crate) fn u64_as_i64<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64((*v).min(i64::MAX as u64) as i64)
}

/// An optional `u64` sent as an `i64`.
pub(crate) fn option_u64_as_i64<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => u64_as_i64(v, s),
        None => s.serialize_none(),
    }
}

/// An optional `u32` sent as an `i32`.
pub(crate) fn option_u32_as_i32<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_i32((*v).min(i32::MAX as u32) as i32),
        None => s.serialize_none(),
    }
}

/// `Option<Duration>` as an integer number of milliseconds (`i64`).
pub(crate) mod duration_option_as_int_millis {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_i64(d.as_millis().min(i64::MAX as u128) as i64),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(option_u64_from_number(d)?.map(Duration::from_millis))
    }
}

/// `Option<Duration>` as an integer number of seconds (`i64`).
pub(crate) mod duration_option_as_int_seconds {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_i64(d.as_secs().min(i64::MAX as u64) as i64),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(option_u64_from_number(d)?.map(Duration::from_secs))
    }
}
