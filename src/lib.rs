//! may_mongo: a MongoDB driver whose blocking-style calls run inside `may` coroutines.
pub mod error;
pub mod wire;

pub use error::{Error, ErrorKind, Result};
