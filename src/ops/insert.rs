//! `insert` of one document, sent as an OP_MSG document sequence.

use bson::raw::cstr;
use bson::{Bson, RawDocument, RawDocumentBuf, oid::ObjectId};
use serde::Serialize;

use super::{Operation, malformed_reply};
use crate::error::{Error, ErrorKind, Result, WriteError};
use crate::wire::{OpMsgBuilder, WireError};

/// The result of `insert_one`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertOneResult {
    /// The `_id` of the inserted document: the document's own, or the one the driver added.
    pub inserted_id: Bson,
}

#[derive(Serialize)]
struct InsertBody<'a> {
    insert: &'a str,
    ordered: bool,
    #[serde(rename = "$db")]
    db: &'a str,
}

pub(crate) struct InsertOne<'a, T> {
    db: &'a str,
    coll: &'a str,
    doc: &'a T,
    inserted_id: Option<Bson>,
}

impl<'a, T: Serialize> InsertOne<'a, T> {
    pub(crate) fn new(db: &'a str, coll: &'a str, doc: &'a T) -> Self {
        InsertOne {
            db,
            coll,
            doc,
            inserted_id: None,
        }
    }
}

impl<T: Serialize> Operation for InsertOne<'_, T> {
    type Output = InsertOneResult;
    const NAME: &'static str = "insert";

    fn database(&self) -> &str {
        self.db
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        msg.body(&InsertBody {
            insert: self.coll,
            ordered: true,
            db: self.db,
        })?;
        msg.begin_sequence("documents")?;
        self.inserted_id = Some(push_with_id(msg, self.doc)?);
        Ok(())
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<InsertOneResult> {
        check_write_errors(reply)?;
        let inserted_id = self
            .inserted_id
            .take()
            .ok_or_else(|| Error::internal("insert reply handled before build"))?;
        Ok(InsertOneResult { inserted_id })
    }
}

/// Serialises `doc` straight into the open sequence, then looks for its `_id` in place; a
/// document without one gets an ObjectId, first, as the server would add it. Returns the `_id`.
pub(crate) fn push_with_id<T: Serialize>(
    msg: &mut OpMsgBuilder<'_>,
    doc: &T,
) -> std::result::Result<Bson, WireError> {
    let range = msg.push(doc)?;
    let written = RawDocument::from_bytes(&msg.buffer()[range.clone()])
        .map_err(|e| WireError::BadDocument(e.to_string()))?;
    if let Ok(Some(id)) = written.get("_id") {
        return Bson::try_from(id).map_err(|e| WireError::BadDocument(e.to_string()));
    }
    let oid = ObjectId::new();
    let mut with_id = RawDocumentBuf::new();
    with_id.append(cstr!("_id"), oid);
    for element in written.iter() {
        let (key, value) = element.map_err(|e| WireError::BadDocument(e.to_string()))?;
        with_id.append(key, value);
    }
    msg.buffer().truncate(range.start);
    msg.push(&with_id)?;
    Ok(Bson::ObjectId(oid))
}

/// Turns the first entry of `writeErrors` into a typed [`WriteError`].
pub(crate) fn check_write_errors(reply: &RawDocument) -> Result<()> {
    let Ok(errors) = reply.get_array("writeErrors") else {
        return Ok(());
    };
    let Some(first) = errors.into_iter().next() else {
        return Ok(());
    };
    let first = first
        .ok()
        .and_then(|e| e.as_document())
        .ok_or_else(|| malformed_reply("insert", "writeErrors entry is not a document"))?;
    let int = |k| crate::conn::get_int(first, k);
    Err(ErrorKind::Write(WriteError {
        index: int("index").unwrap_or(0) as usize,
        code: int("code").unwrap_or(0) as i32,
        message: first
            .get_str("errmsg")
            .unwrap_or("(no message)")
            .to_string(),
    })
    .into())
}
