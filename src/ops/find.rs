//! `find` limited to one document (`find_one`).

use std::marker::PhantomData;

use bson::{Document, RawDocument};

use crate::runtime::on_driver_stack;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Encoded, Operation, malformed_reply};
use crate::error::Result;
use crate::wire::{OpMsgBuilder, WireError};

#[derive(Serialize)]
struct FindOneBody<'a> {
    find: &'a str,
    filter: &'a RawDocument,
    limit: i64,
    #[serde(rename = "singleBatch")]
    single_batch: bool,
    #[serde(rename = "$db")]
    db: &'a str,
}

/// `find_one`'s operation. Like [`Command`](super::Command), it encodes the caller's filter
/// when it is made ([`Encoded`]) and frees the `Document` at once, before any wait.
pub(crate) struct FindOne<'a, T> {
    db: &'a str,
    coll: &'a str,
    filter: Encoded,
    _out: PhantomData<fn() -> T>,
}

impl<'a, T> FindOne<'a, T> {
    pub(crate) fn new(db: &'a str, coll: &'a str, filter: Document) -> Self {
        let filter = on_driver_stack(move || Encoded::new(&filter));
        FindOne {
            db,
            coll,
            filter,
            _out: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + 'static> Operation for FindOne<'_, T> {
    type Output = Option<T>;
    const NAME: &'static str = "find";

    fn database(&self) -> &str {
        self.db
    }

    fn is_read(&self) -> bool {
        true
    }

    fn retry(&self) -> crate::retry::Retry {
        crate::retry::Retry::Read
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        let filter = self.filter.get()?;
        msg.body(&FindOneBody {
            find: self.coll,
            filter,
            limit: 1,
            single_batch: true,
            db: self.db,
        })
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<Option<T>> {
        // Read only the path we need: cursor.firstBatch[0], decoded straight into T.
        let batch = reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .map_err(|e| malformed_reply(Self::NAME, e))?;
        match batch.into_iter().next() {
            None => Ok(None),
            Some(first) => {
                let doc = first.ok().and_then(|d| d.as_document()).ok_or_else(|| {
                    malformed_reply(Self::NAME, "firstBatch entry is not a document")
                })?;
                crate::decode::decode(doc).map(Some)
            }
        }
    }
}
