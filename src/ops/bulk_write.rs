//! The `bulkWrite` command (MongoDB 8.0+): mixed writes to many collections in one command.
//!
//! Each write travels as one document of the `ops` sequence, whose first field names the kind
//! (`insert`, `update` or `delete`) and, as its value, the write's collection — an index into
//! the `nsInfo` sequence, which lists each namespace the batch uses once. The indexes are the
//! batch's own, so a write is prepared without them ([`PreparedOp`]: everything after the first
//! field, as raw BSON) and gets its index when a batch is built.
//!
//! A batch holds as many writes as fit: at most `maxWriteBatchSize`, and the `ops` and
//! `nsInfo` sequences together at most `maxMessageSizeBytes` less the command body and the
//! spec's 1,000 bytes for framing and fields the executor adds. The reply is a summary
//! (`nInserted`, `nMatched`, ...) and a cursor of per-write results, read by the caller.

use std::collections::HashMap;

use bson::raw::{CStr, cstr};
use bson::{Bson, Document, RawDocument, RawDocumentBuf};

use super::Operation;
use crate::error::Result;
use crate::wire::{OpMsgBuilder, WireError};

/// Room the spec keeps in a `bulkWrite` message for the header and executor-added fields.
const MESSAGE_OVERHEAD: usize = 1000;

/// The kind of one write: the key its `ops` document starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Insert,
    Update,
    Delete,
}

impl OpKind {
    fn key(self) -> &'static CStr {
        match self {
            OpKind::Insert => cstr!("insert"),
            OpKind::Update => cstr!("update"),
            OpKind::Delete => cstr!("delete"),
        }
    }
}

/// One write, ready to send but for its namespace index.
#[derive(Debug)]
pub(crate) struct PreparedOp {
    /// Its namespace (`db.coll`), as an index into the caller's list of namespaces.
    pub(crate) namespace: usize,
    pub(crate) kind: OpKind,
    /// The `ops` document's fields after the first (`document`, or `filter`, `updateMods`, ...).
    pub(crate) fields: RawDocumentBuf,
    /// An insert's `_id` (the document's own, or the one the driver added).
    pub(crate) inserted_id: Option<Bson>,
}

impl PreparedOp {
    /// Prepares a write of `kind` on `namespace` whose `ops` document continues with `fields`.
    pub(crate) fn new(namespace: usize, kind: OpKind, fields: &Document) -> Result<PreparedOp> {
        let fields = RawDocumentBuf::try_from(fields).map_err(crate::error::Error::ser)?;
        Ok(PreparedOp {
            namespace,
            kind,
            fields,
            inserted_id: None,
        })
    }
}

/// One `bulkWrite` command: as many of `ops[start..]` as fit one message.
pub(crate) struct BulkWriteBatch<'a> {
    /// Every namespace the bulk write uses, indexed by [`PreparedOp::namespace`].
    pub(crate) namespaces: &'a [String],
    pub(crate) ops: &'a [PreparedOp],
    pub(crate) start: usize,
    /// `bulkWrite: 1`, `errorsOnly`, `ordered` and the options (`comment`, `let`, ...).
    pub(crate) body: &'a Document,
    /// How many writes the batch holds (set by `build`).
    pub(crate) count: usize,
}

/// Size of `{ ns: <namespace> }`: length, type byte, `ns\0`, string length, the string and
/// its NUL, the closing NUL.
fn ns_info_size(namespace: &str) -> usize {
    4 + 1 + 3 + 4 + namespace.len() + 1 + 1
}

impl Operation for BulkWriteBatch<'_> {
    /// The whole reply (the caller reads the summary and opens the results cursor), and how
    /// many writes the batch held.
    type Output = (RawDocumentBuf, usize);
    const NAME: &'static str = "bulkWrite";
    const MIN_SERVER: Option<(i32, &'static str)> = Some((25, "MongoDB 8.0"));

    fn database(&self) -> &str {
        "admin"
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        let mut body = self.body.clone();
        super::command::drop_fields_too_new("bulkWrite", &mut body, msg.limits());
        body.insert("$db", "admin");
        let body_start = msg.len();
        msg.body(&body)?;
        let limits = msg.limits();
        let room = limits
            .max_message_size
            .saturating_sub(MESSAGE_OVERHEAD + (msg.len() - body_start));
        // The batch's namespaces, in the order its writes first use them, and their indexes.
        let mut used: Vec<usize> = Vec::new();
        let mut local: HashMap<usize, i32> = HashMap::new();
        // Bytes of `ops` and `nsInfo` entries so far.
        let mut filled = 0;
        msg.begin_sequence("ops")?;
        let mut count = 0;
        for op in &self.ops[self.start..] {
            if count == limits.max_write_batch_size.max(1) {
                break;
            }
            let known = local.get(&op.namespace).copied();
            let index = known.unwrap_or(used.len() as i32);
            let mut doc = RawDocumentBuf::new();
            doc.append(op.kind.key(), index);
            for element in op.fields.iter() {
                let (key, value) = element.map_err(|e| WireError::BadDocument(e.to_string()))?;
                doc.append(key, value);
            }
            let ns_entry = match known {
                Some(_) => 0,
                None => ns_info_size(&self.namespaces[op.namespace]),
            };
            let added = doc.as_bytes().len() + ns_entry;
            if filled + added > room {
                if count == 0 {
                    // Not even one write fits: the spec says fail rather than send nothing.
                    return Err(WireError::MessageTooLarge {
                        size: msg.len() + MESSAGE_OVERHEAD + added,
                        max: limits.max_message_size,
                    });
                }
                break;
            }
            // An `ops` entry may be as large as a command (a maximum-size document inside).
            msg.push_sized(
                &doc,
                limits.max_bson_object_size + crate::wire::COMMAND_OVERHEAD,
            )?;
            filled += added;
            if known.is_none() {
                local.insert(op.namespace, index);
                used.push(op.namespace);
            }
            count += 1;
        }
        msg.begin_sequence("nsInfo")?;
        for ns in used {
            msg.push(&bson::doc! { "ns": &self.namespaces[ns] })?;
        }
        self.count = count;
        Ok(())
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<(RawDocumentBuf, usize)> {
        Ok((reply.to_owned(), self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Limits, MsgFlags, OpMsg};
    use bson::doc;

    fn insert(namespace: usize, n: i32) -> PreparedOp {
        PreparedOp::new(
            namespace,
            OpKind::Insert,
            &doc! { "document": { "_id": n } },
        )
        .unwrap()
    }

    /// Builds one batch of `ops[start..]` under `limits`: its ops and nsInfo documents.
    fn batch(
        ops: &[PreparedOp],
        start: usize,
        limits: Limits,
    ) -> (usize, Vec<Document>, Vec<Document>) {
        let namespaces = ["db.a".to_string(), "db.b".to_string()];
        let body = doc! { "bulkWrite": 1, "errorsOnly": true, "ordered": true };
        let mut op = BulkWriteBatch {
            namespaces: &namespaces,
            ops,
            start,
            body: &body,
            count: 0,
        };
        let mut out = Vec::new();
        let mut msg = OpMsgBuilder::new(&mut out, MsgFlags::default(), limits);
        op.build(&mut msg).unwrap();
        msg.finish(1, 0).unwrap();
        let parsed = OpMsg::parse_message(&out).unwrap();
        let mut seqs = parsed.sequences().map(|s| {
            s.documents()
                .map(|d| Document::try_from(d).unwrap())
                .collect::<Vec<_>>()
        });
        let (ops_docs, ns_docs) = (seqs.next().unwrap(), seqs.next().unwrap());
        (op.count, ops_docs, ns_docs)
    }

    #[test]
    fn namespaces_are_indexed_per_batch() {
        let ops = [insert(1, 0), insert(0, 1), insert(1, 2)];
        let (count, ops_docs, ns_docs) = batch(&ops, 0, Limits::default());
        assert_eq!(count, 3);
        assert_eq!(ns_docs, vec![doc! { "ns": "db.b" }, doc! { "ns": "db.a" }]);
        let indexes: Vec<i32> = ops_docs
            .iter()
            .map(|d| d.get_i32("insert").unwrap())
            .collect();
        assert_eq!(indexes, vec![0, 1, 0]);
        assert_eq!(ops_docs[1], doc! { "insert": 1, "document": { "_id": 1 } });
        // A later batch that uses only `db.a` lists only it, as index 0.
        let (_, ops_docs, ns_docs) = batch(&ops, 1, Limits::default());
        assert_eq!(ns_docs[0], doc! { "ns": "db.a" });
        assert_eq!(ops_docs[0].get_i32("insert").unwrap(), 0);
    }

    #[test]
    fn batches_end_at_the_write_count_and_message_size() {
        let ops: Vec<PreparedOp> = (0..10).map(|n| insert(0, n)).collect();
        let few = Limits {
            max_write_batch_size: 4,
            ..Limits::default()
        };
        assert_eq!(batch(&ops, 0, few).0, 4);
        assert_eq!(batch(&ops, 8, few).0, 2);
        // Each op here is 31 bytes and the namespace entry 18: room for 3 ops is 111 bytes.
        let op_size = {
            let mut d = RawDocumentBuf::new();
            d.append(cstr!("insert"), 0);
            d.append(
                cstr!("document"),
                RawDocumentBuf::try_from(&doc! { "_id": 0 }).unwrap(),
            );
            d.as_bytes().len()
        };
        let body = doc! { "bulkWrite": 1, "errorsOnly": true, "ordered": true, "$db": "admin" };
        let body_size = bson::serialize_to_vec(&body).unwrap().len() + 1; // + section kind
        let small = Limits {
            max_message_size: MESSAGE_OVERHEAD + body_size + 3 * op_size + ns_info_size("db.a"),
            ..Limits::default()
        };
        assert_eq!(batch(&ops, 0, small).0, 3);
        let smaller = Limits {
            max_message_size: small.max_message_size - 1,
            ..small
        };
        assert_eq!(batch(&ops, 0, smaller).0, 2);
    }

    #[test]
    fn a_write_too_large_for_any_message_is_an_error() {
        let ops = [insert(0, 1)];
        let namespaces = ["db.a".to_string()];
        let body = doc! { "bulkWrite": 1 };
        let mut op = BulkWriteBatch {
            namespaces: &namespaces,
            ops: &ops,
            start: 0,
            body: &body,
            count: 0,
        };
        let mut out = Vec::new();
        let limits = Limits {
            max_message_size: 1050,
            ..Limits::default()
        };
        let mut msg = OpMsgBuilder::new(&mut out, MsgFlags::default(), limits);
        assert!(matches!(
            op.build(&mut msg),
            Err(WireError::MessageTooLarge { .. })
        ));
    }
}
