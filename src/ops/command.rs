//! A command built as a document, with a reply handler: the shape of most CRUD commands.
//!
//! `update`, `delete`, `findAndModify`, `count`, `distinct`, `createIndexes`, ... each differ
//! only in the document sent and in how the reply is read. Rather than a struct per command
//! repeating `build`, this is one [`Operation`] carrying both halves; the functions that make
//! each command live next to the API that uses them. Hot paths with their own shape
//! (`find_one`, `insert_one`, `insert_many`) keep dedicated operations.

use bson::{Document, RawDocument};

use super::Operation;
use crate::error::Result;
use crate::topology::ReadPreference;
use crate::wire::{OpMsgBuilder, WireError};

/// What a command makes of its `ok: 1` reply.
type ReplyHandler<'a, O> = Box<dyn FnMut(&RawDocument) -> Result<O> + 'a>;

/// A command document (with `$db` already in it) and what to make of the reply.
pub(crate) struct Command<'a, O> {
    name: &'static str,
    db: &'a str,
    body: Document,
    read: Option<Option<&'a ReadPreference>>,
    handle: ReplyHandler<'a, O>,
}

impl<'a, O> Command<'a, O> {
    /// A write (or any command for the primary). `body` must start with the command name.
    pub(crate) fn write(
        name: &'static str,
        db: &'a str,
        mut body: Document,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Self {
        body.insert("$db", db);
        Command {
            name,
            db,
            body,
            read: None,
            handle: Box::new(handle),
        }
    }

    /// A read: selected by `read_preference` (else the client's), and carrying it.
    pub(crate) fn read(
        name: &'static str,
        db: &'a str,
        body: Document,
        read_preference: Option<&'a ReadPreference>,
        handle: impl FnMut(&RawDocument) -> Result<O> + 'a,
    ) -> Self {
        let mut c = Command::write(name, db, body, handle);
        c.read = Some(read_preference);
        c
    }
}

impl<O> Operation for Command<'_, O> {
    type Output = O;
    const NAME: &'static str = "command";

    fn command_name(&self) -> &str {
        self.name
    }

    fn database(&self) -> &str {
        self.db
    }

    fn is_read(&self) -> bool {
        self.read.is_some()
    }

    fn read_preference(&self) -> Option<&ReadPreference> {
        self.read.flatten()
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        strip_raw_data(&mut self.body, msg);
        if self.name == "getMore" && msg.limits().max_wire_version < GET_MORE_COMMENT_WIRE_VERSION {
            self.body.remove("comment");
        }
        msg.body(&self.body)
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<O> {
        (self.handle)(reply)
    }
}

/// MongoDB 4.4 (wire version 9) is the first to take a `comment` on `getMore`.
const GET_MORE_COMMENT_WIRE_VERSION: i32 = 9;

/// `rawData` (time-series buckets) exists from MongoDB 8.2; older servers would reject the
/// unknown field, so it is dropped for them, as the CRUD spec asks.
pub(crate) fn strip_raw_data(body: &mut Document, msg: &OpMsgBuilder<'_>) {
    if msg.limits().max_wire_version < crate::wire::RAW_DATA_WIRE_VERSION {
        body.remove("rawData");
    }
}
