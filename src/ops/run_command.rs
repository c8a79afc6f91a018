//! `runCommand`: any command document, as given.

use bson::raw::cstr;
use bson::{Document, RawDocument, RawDocumentBuf};

use super::Operation;
use crate::error::{Error, Result};
use crate::wire::{OpMsgBuilder, WireError};

/// Runs a user's command document against a database, returning the reply as a `Document`.
pub(crate) struct RunCommand {
    body: RawDocumentBuf,
    name: String,
    db: String,
}

impl RunCommand {
    pub(crate) fn new(db: &str, command: &Document) -> Result<RunCommand> {
        if command.is_empty() {
            return Err(Error::invalid_argument(
                "run_command needs a non-empty command document",
            ));
        }
        if command.contains_key("$db") {
            return Err(Error::invalid_argument(
                "the command must not set $db; the database does",
            ));
        }
        // The command's first key names it, so `$db` goes after the user's fields.
        let mut body = RawDocumentBuf::try_from(command).map_err(Error::ser)?;
        body.append(cstr!("$db"), db);
        let name = command.keys().next().cloned().unwrap_or_default();
        Ok(RunCommand {
            body,
            name,
            db: db.to_string(),
        })
    }
}

impl Operation for RunCommand {
    type Output = Document;
    const NAME: &'static str = "runCommand";

    fn command_name(&self) -> &str {
        &self.name
    }

    fn database(&self) -> &str {
        &self.db
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        msg.body(&self.body)
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<Document> {
        crate::decode::to_document(reply)
    }
}

/// Like [`RunCommand`] but returns the reply's bytes undecoded: no recursion, so safe for
/// deeply nested replies on a small coroutine stack.
pub(crate) struct RunCommandRaw(pub(crate) RunCommand);

impl Operation for RunCommandRaw {
    type Output = RawDocumentBuf;
    const NAME: &'static str = "runCommand";

    fn command_name(&self) -> &str {
        self.0.command_name()
    }

    fn database(&self) -> &str {
        self.0.database()
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        self.0.build(msg)
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<RawDocumentBuf> {
        Ok(reply.to_owned())
    }
}
