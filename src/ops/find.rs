//! `find` limited to one document (`find_one`): the command as `find` sends it, and a reply
//! handler that decodes only the first document of the first batch, straight into `T`.

use std::marker::PhantomData;

use bson::RawDocument;
use serde::de::DeserializeOwned;

use super::{Encoded, Operation, body_for_server, malformed_reply};
use crate::error::Result;
use crate::selection_criteria::Criteria;
use crate::wire::{OpMsgBuilder, WireError};

/// `find_one`'s operation. Its command is encoded when it is made ([`Encoded`]), on a driver
/// stack, so the caller's filter and options are freed before any wait.
pub(crate) struct FindOne<'a, T> {
    db: &'a str,
    /// The whole `find` command, `$db` included.
    command: Encoded,
    /// The operation's own selection criteria, or its handle's; `None`: the client's.
    criteria: Option<Criteria>,
    _out: PhantomData<fn() -> T>,
}

impl<'a, T> FindOne<'a, T> {
    pub(crate) fn new(db: &'a str, command: Encoded, criteria: Option<Criteria>) -> Self {
        FindOne {
            db,
            command,
            criteria,
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

    fn criteria(&self) -> Option<&Criteria> {
        self.criteria.as_ref()
    }

    fn retry(&self) -> crate::retry::Retry {
        crate::retry::Retry::Read
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        body_for_server(Self::NAME, self.command.get()?, msg)
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
