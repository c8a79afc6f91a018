//! Batched writes: `insert_many`'s batches, and reading any write command's reply.
//!
//! A batch is as many documents as fit one message: at most `maxWriteBatchSize` documents
//! (100,000 on the servers of today) and `maxMessageSizeBytes`. Each document is
//! serialised straight into the message's `documents` sequence; the one that would overflow
//! the message is cut back out and starts the next batch.

use bson::{Bson, RawDocument};
use serde::Serialize;

use super::insert::push_with_id;
use super::{Operation, malformed_reply};
use crate::error::{ErrorKind, IndexedWriteError, Result, WriteConcernError, WriteFailure};
use crate::wire::{OpMsgBuilder, WireError};

/// Room left in a message for the body and framing when filling a sequence.
const MESSAGE_SLACK: usize = 16 * 1024;

/// One `insert` batch of `docs[start..]`: sends as many as fit.
pub(crate) struct InsertBatch<'a, T, B> {
    pub(crate) db: &'a str,
    pub(crate) coll: &'a str,
    /// The documents: `T`s, or anything that lends one (`&T`, `Box<T>`, ...).
    pub(crate) docs: &'a [B],
    pub(crate) start: usize,
    pub(crate) ordered: bool,
    /// Further command fields: `writeConcern`, `bypassDocumentValidation`, `comment`.
    pub(crate) extra: &'a bson::Document,
    /// `_id`s of the documents sent, in order (filled by `build`).
    pub(crate) ids: Vec<Bson>,
    pub(crate) _doc: std::marker::PhantomData<fn(&T)>,
}

impl<T, B> Drop for InsertBatch<'_, T, B> {
    /// As for `InsertOne`: `_id`s that are documents are freed on a driver stack.
    fn drop(&mut self) {
        if self
            .ids
            .iter()
            .any(|id| matches!(id, Bson::Document(_) | Bson::Array(_)))
        {
            crate::runtime::drop_on_driver_stack(std::mem::take(&mut self.ids));
        }
    }
}

/// What a write command's reply says.
#[derive(Debug, Default)]
pub(crate) struct WriteReply {
    pub(crate) n: u64,
    pub(crate) n_modified: u64,
    /// `(index in the batch, _id)` of upserted documents.
    pub(crate) upserted: Vec<(usize, Bson)>,
    /// Indexes are within the batch.
    pub(crate) write_errors: Vec<IndexedWriteError>,
    pub(crate) write_concern_error: Option<WriteConcernError>,
}

impl<T: Serialize, B: std::borrow::Borrow<T>> Operation for InsertBatch<'_, T, B> {
    type Output = (Vec<Bson>, WriteReply);
    const NAME: &'static str = "insert";

    fn database(&self) -> &str {
        self.db
    }

    fn retry(&self) -> crate::retry::Retry {
        crate::retry::Retry::Write
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        let mut body = bson::doc! { "insert": self.coll, "ordered": self.ordered };
        body.extend(self.extra.clone());
        super::command::drop_fields_too_new("insert", &mut body, msg.limits());
        body.insert("$db", self.db);
        msg.body(&body)?;
        msg.begin_sequence("documents")?;
        let max = msg.limits().max_message_size.saturating_sub(MESSAGE_SLACK);
        // A retry sends the `_id`s the first attempt generated.
        let previous = std::mem::take(&mut self.ids);
        for doc in &self.docs[self.start..] {
            if self.ids.len() == msg.limits().max_write_batch_size.max(1) {
                break;
            }
            let before = msg.len();
            let id = push_with_id(msg, doc.borrow(), previous.get(self.ids.len()))?;
            if msg.len() > max && !self.ids.is_empty() {
                // Does not fit: it opens the next batch instead.
                let cut = msg.buffer().len() - (msg.len() - before);
                msg.buffer().truncate(cut);
                break;
            }
            self.ids.push(id);
        }
        Ok(())
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<(Vec<Bson>, WriteReply)> {
        Ok((std::mem::take(&mut self.ids), read_write_reply(reply)?))
    }
}

impl WriteReply {
    /// True when the statement at `position` of the batch took effect: it did not fail, and —
    /// in an ordered batch — it did not come after the first failure (the server stops there).
    pub(crate) fn applied(&self, position: usize, ordered: bool) -> bool {
        let failed = self.write_errors.iter().any(|e| e.index == position);
        let first_failure = self.write_errors.iter().map(|e| e.index).min();
        let skipped = ordered && first_failure.is_some_and(|f| position > f);
        !failed && !skipped
    }

    /// A one-statement write's outcome: [`ErrorKind::Write`] with its write error, else with
    /// its write concern error.
    pub(crate) fn single_result(&self) -> Result<()> {
        if let Some(e) = self.write_errors.first() {
            return Err(ErrorKind::Write(WriteFailure::WriteError(e.clone().into())).into());
        }
        if let Some(wce) = &self.write_concern_error {
            return Err(ErrorKind::Write(WriteFailure::WriteConcernError(wce.clone())).into());
        }
        Ok(())
    }

    /// Moves the write errors out, their indexes shifted by `offset` (where the batch starts
    /// in the caller's input).
    pub(crate) fn take_errors(&mut self, offset: usize) -> impl Iterator<Item = IndexedWriteError> {
        std::mem::take(&mut self.write_errors)
            .into_iter()
            .map(move |mut e| {
                e.index += offset;
                e
            })
    }
}

/// Reads `n`, `nModified`, `upserted`, `writeErrors` and `writeConcernError`.
pub(crate) fn read_write_reply(reply: &RawDocument) -> Result<WriteReply> {
    let int = |d: &RawDocument, k: &str| crate::conn::get_int(d, k);
    let mut out = WriteReply {
        n: int(reply, "n").unwrap_or(0) as u64,
        n_modified: int(reply, "nModified").unwrap_or(0) as u64,
        ..WriteReply::default()
    };
    let docs = |key: &str| -> Result<Vec<&RawDocument>> {
        match reply.get_array(key) {
            Ok(a) => a
                .into_iter()
                .map(|v| {
                    v.ok()
                        .and_then(|v| v.as_document())
                        .ok_or_else(|| malformed_reply("write", format!("{key} entry")))
                })
                .collect(),
            Err(_) => Ok(Vec::new()),
        }
    };
    for u in docs("upserted")? {
        let id = u
            .get("_id")
            .ok()
            .flatten()
            .and_then(|v| crate::decode::to_bson(v).ok())
            .unwrap_or(Bson::Null);
        // A negative index would become a huge one: a malformed reply.
        let index = usize::try_from(int(u, "index").unwrap_or(0))
            .map_err(|_| malformed_reply("write", "a negative upserted index"))?;
        out.upserted.push((index, id));
    }
    for e in docs("writeErrors")? {
        out.write_errors.push(IndexedWriteError::from_reply(e));
    }
    if let Ok(wce) = reply.get_document("writeConcernError") {
        // Servers put a write concern error's labels (`RetryableWriteError`) at the top.
        let labels = crate::conn::get_strings(reply, "errorLabels");
        out.write_concern_error = Some(WriteConcernError::from_reply(wce, labels));
    }
    Ok(out)
}
