//! A command built as a document, with a reply handler: the shape of most CRUD commands.
//!
//! `update`, `delete`, `findAndModify`, `count`, `distinct`, `createIndexes`, ... each differ
//! only in the document sent and in how the reply is read. Rather than a struct per command
//! repeating `build`, this is one [`Operation`] carrying both halves; the functions that make
//! each command live next to the API that uses them. Hot paths with their own shape
//! (`find_one`, `insert_one`, `insert_many`) keep dedicated operations.

use bson::{Document, RawDocument};

use super::{Encoded, Operation};
use crate::error::Result;
use crate::retry::Retry;
use crate::runtime::on_driver_stack;
use crate::selection_criteria::Criteria;
use crate::wire::{Limits, OpMsgBuilder, WireError};

/// What a command makes of its `ok: 1` reply.
type ReplyHandler<'a, O> = Box<dyn FnMut(&RawDocument) -> Result<O> + 'a>;

/// A command (with `$db`) and what to make of the reply.
///
/// The body is [`Encoded`] when the command is made, and the `Document` it came from — the
/// caller's filter, update or pipeline among its fields — is freed there and then, before any
/// wait.
pub(crate) struct Command<'a, O> {
    name: std::borrow::Cow<'static, str>,
    db: &'a str,
    body: Encoded,
    read: Option<Option<&'a Criteria>>,
    retry: Retry,
    handle: ReplyHandler<'a, O>,
}

impl<'a, O> Command<'a, O> {
    /// A write (or any command for the primary). `body` must start with the command name.
    pub(crate) fn write(
        name: &'static str,
        db: &'a str,
        body: Document,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Self {
        Command {
            name: name.into(),
            db,
            body: on_driver_stack(move || {
                let mut body = body;
                body.insert("$db", db);
                Encoded::new(&body)
            }),
            read: None,
            retry: Retry::No,
            handle: Box::new(handle),
        }
    }

    /// A read: selected by `criteria` (else the client's), and carrying its read preference.
    pub(crate) fn read(
        name: &'static str,
        db: &'a str,
        body: Document,
        criteria: Option<&'a Criteria>,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Self {
        let mut c = Command::write(name, db, body, handle);
        c.read = Some(criteria);
        c.retry = Retry::Read;
        c
    }

    /// Names the command `name` when it is not known until run time (a user's command for
    /// `run_cursor_command`): events and errors carry it.
    pub(crate) fn named(mut self, name: String) -> Self {
        self.name = name.into();
        self
    }

    /// Marks the command retryable as `retry` says (a single-statement write, or a read sent
    /// to the primary such as `listCollections`).
    pub(crate) fn retryable(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
}

impl<O> Operation for Command<'_, O> {
    type Output = O;
    const NAME: &'static str = "command";

    fn command_name(&self) -> &str {
        &self.name
    }

    fn database(&self) -> &str {
        self.db
    }

    fn is_read(&self) -> bool {
        self.read.is_some()
    }

    fn criteria(&self) -> Option<&Criteria> {
        self.read.flatten()
    }

    fn retry(&self) -> Retry {
        self.retry
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        body_for_server(&self.name, self.body.get()?, msg)
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<O> {
        (self.handle)(reply)
    }
}

/// Puts the encoded command `body` in the message, without the fields this server predates
/// (see [`NEWER_FIELDS`]).
pub(crate) fn body_for_server(
    name: &str,
    body: &RawDocument,
    msg: &mut OpMsgBuilder<'_>,
) -> std::result::Result<(), WireError> {
    if NEWER_FIELDS
        .iter()
        .any(|(_, f, _)| body.get(f).is_ok_and(|v| v.is_some()))
    {
        // A field some servers predate (rare): rebuilt without the ones this one does.
        let mut doc =
            crate::decode::to_document(body).map_err(|e| WireError::BadDocument(e.to_string()))?;
        drop_fields_too_new(name, &mut doc, msg.limits());
        return msg.body(&doc);
    }
    msg.body(&body)
}

/// Fields only newer servers accept, with the first wire version that takes each (`""`: on
/// any command). The CRUD spec asks drivers to leave these out for older servers, which would
/// reject an unknown field, rather than fail there.
const NEWER_FIELDS: &[(&str, &str, i32)] = &[
    ("", "rawData", 27), // MongoDB 8.2: work on a time-series collection's buckets
    ("getMore", "comment", 9), // MongoDB 4.4
];

/// True unless `field` of `command` is one the server (by its `maxWireVersion`) predates.
pub(crate) fn server_accepts(command: &str, field: &str, limits: Limits) -> bool {
    NEWER_FIELDS
        .iter()
        .filter(|(c, f, _)| *f == field && (c.is_empty() || *c == command))
        .all(|&(_, _, wire)| limits.max_wire_version >= wire)
}

/// Removes from `body` the fields the server predates.
pub(crate) fn drop_fields_too_new(command: &str, body: &mut Document, limits: Limits) {
    for (_, field, _) in NEWER_FIELDS {
        if body.contains_key(field) && !server_accepts(command, field, limits) {
            body.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn at(wire: i32) -> Limits {
        Limits {
            max_wire_version: wire,
            ..Limits::default()
        }
    }

    #[test]
    fn fields_newer_than_the_server_are_left_out() {
        let body = doc! { "delete": "c", "rawData": true, "comment": "x" };
        let mut old = body.clone();
        drop_fields_too_new("delete", &mut old, at(21));
        assert_eq!(old, doc! { "delete": "c", "comment": "x" });
        let mut new = body.clone();
        drop_fields_too_new("delete", &mut new, at(27));
        assert_eq!(new, body);
        // `comment` is version-bound on getMore only.
        assert!(!server_accepts("getMore", "comment", at(8)));
        assert!(server_accepts("getMore", "comment", at(9)));
        assert!(server_accepts("find", "comment", at(8)));
    }
}
