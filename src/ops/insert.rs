//! `insert` of one document, sent as an OP_MSG document sequence.

pub use crate::write_results::InsertOneResult;
use bson::{Bson, Document, RawDocument, oid::ObjectId};
use serde::Serialize;

use super::Operation;
use super::command::server_accepts;
use crate::concern::WriteConcern;
use crate::crud_types::InsertOneOptions;
use crate::error::{Error, Result};
use crate::wire::{OpMsgBuilder, WireError};

/// The command body, serialised straight into the message (no intermediate `Document`).
#[derive(Serialize)]
struct InsertBody<'a> {
    insert: &'a str,
    ordered: bool,
    #[serde(rename = "writeConcern", skip_serializing_if = "Option::is_none")]
    write_concern: Option<&'a Document>,
    #[serde(
        rename = "bypassDocumentValidation",
        skip_serializing_if = "Option::is_none"
    )]
    bypass_document_validation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a Bson>,
    #[serde(rename = "rawData", skip_serializing_if = "Option::is_none")]
    raw_data: Option<bool>,
    #[serde(rename = "$db")]
    db: &'a str,
}

pub(crate) struct InsertOne<'a, T> {
    db: &'a str,
    coll: &'a str,
    doc: &'a T,
    /// The collection's write concern, unless the options have their own.
    handle_write_concern: Option<&'a WriteConcern>,
    options: InsertOneOptions,
    inserted_id: Option<Bson>,
}

impl<'a, T: Serialize> InsertOne<'a, T> {
    pub(crate) fn new(
        db: &'a str,
        coll: &'a str,
        doc: &'a T,
        handle_write_concern: Option<&'a WriteConcern>,
        options: InsertOneOptions,
    ) -> Self {
        InsertOne {
            db,
            coll,
            doc,
            handle_write_concern,
            options,
            inserted_id: None,
        }
    }
}

impl<T> Drop for InsertOne<'_, T> {
    /// The `_id` read back from the caller's document can be a document as deep as theirs:
    /// freed on a driver stack (the operation itself lives in the caller's frame).
    fn drop(&mut self) {
        if let Some(id @ (Bson::Document(_) | Bson::Array(_))) = self.inserted_id.take() {
            crate::runtime::drop_on_driver_stack(id);
        }
    }
}

impl<T: Serialize> Operation for InsertOne<'_, T> {
    type Output = InsertOneResult;
    const NAME: &'static str = "insert";

    fn database(&self) -> &str {
        self.db
    }

    fn retry(&self) -> crate::retry::Retry {
        crate::retry::Retry::Write
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        // Resolved here, on a driver stack, rather than kept in the caller's frame.
        let write_concern = match &self.options.write_concern {
            Some(own) => own.command_field(),
            None => self
                .handle_write_concern
                .and_then(WriteConcern::command_field),
        };
        msg.body(&InsertBody {
            insert: self.coll,
            ordered: true,
            write_concern: write_concern.as_ref(),
            bypass_document_validation: self.options.bypass_document_validation,
            comment: self.options.comment.as_ref(),
            raw_data: self
                .options
                .raw_data
                .filter(|_| server_accepts("insert", "rawData", msg.limits())),
            db: self.db,
        })?;
        msg.begin_sequence("documents")?;
        // A retry sends the `_id` the first attempt generated.
        self.inserted_id = Some(push_with_id(msg, self.doc, self.inserted_id.as_ref())?);
        Ok(())
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<InsertOneResult> {
        // A write error, or a write concern error (the write concern travels with it).
        super::read_write_reply(reply)?.single_result()?;
        let inserted_id = self
            .inserted_id
            .clone()
            .ok_or_else(|| Error::internal("insert reply handled before build"))?;
        Ok(InsertOneResult { inserted_id })
    }
}

/// Serialises `doc` straight into the open sequence, then looks for its `_id` in place; a
/// document without one gets an ObjectId, first, as the server would add it — `reuse` when it
/// is one (the id a retried command generated the first time). Returns the `_id`.
///
/// The `_id` element is spliced into the bytes already written: one move of the document's
/// bytes, where re-encoding the document with the `_id` in front would cost a second
/// serialisation (measured: it halved large-document insert throughput).
pub(crate) fn push_with_id<T: Serialize>(
    msg: &mut OpMsgBuilder<'_>,
    doc: &T,
    reuse: Option<&Bson>,
) -> std::result::Result<Bson, WireError> {
    let range = msg.push(doc)?;
    let written = RawDocument::from_bytes(&msg.buffer()[range.clone()])
        .map_err(|e| WireError::BadDocument(e.to_string()))?;
    if let Ok(Some(id)) = written.get("_id") {
        return crate::decode::to_bson(id).map_err(|e| WireError::BadDocument(e.to_string()));
    }
    let oid = match reuse {
        Some(Bson::ObjectId(oid)) => *oid,
        _ => ObjectId::new(),
    };
    // type byte, "_id\0", the 12 bytes of the ObjectId
    let mut element = [0u8; 17];
    element[0] = 0x07;
    element[1..5].copy_from_slice(b"_id\0");
    element[5..].copy_from_slice(&oid.bytes());
    let new_len = range.len() + element.len();
    let max = msg.limits().max_bson_object_size;
    if new_len > max {
        msg.buffer().truncate(range.start);
        return Err(WireError::DocumentTooLarge { size: new_len, max });
    }
    let buf = msg.buffer();
    let at = range.start + 4;
    buf.splice(at..at, element);
    buf[range.start..at].copy_from_slice(&(new_len as i32).to_le_bytes());
    Ok(Bson::ObjectId(oid))
}
