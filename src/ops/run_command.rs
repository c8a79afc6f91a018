//! `runCommand`: any command document, as given.

use bson::raw::cstr;
use bson::{Document, RawDocument, RawDocumentBuf};

use super::Operation;
use crate::error::{Error, Result};
use crate::wire::{OpMsgBuilder, WireError};

/// Checks a user's command document (`run_command`, `run_cursor_command`) and returns its
/// name, its first key: it must not be empty, and must not set `$db`, which the database
/// handle does.
pub(crate) fn user_command_name(api: &str, command: &Document) -> Result<String> {
    let Some(name) = command.keys().next() else {
        return Err(Error::invalid_argument(format!(
            "{api} needs a non-empty command document"
        )));
    };
    if command.contains_key("$db") {
        return Err(Error::invalid_argument(
            "the command must not set $db; the database does",
        ));
    }
    Ok(name.clone())
}

/// Runs a user's command document against a database, returning the reply as a `Document`.
pub(crate) struct RunCommand {
    body: RawDocumentBuf,
    name: String,
    db: String,
    /// Where to send it: the primary unless the caller says otherwise.
    pub(crate) criteria: Option<crate::selection_criteria::Criteria>,
}

impl RunCommand {
    pub(crate) fn new(db: &str, command: &Document) -> Result<RunCommand> {
        let name = user_command_name("run_command", command)?;
        // The command's first key names it, so `$db` goes after the user's fields.
        let mut body = RawDocumentBuf::try_from(command).map_err(Error::ser)?;
        body.append(cstr!("$db"), db);
        Ok(RunCommand {
            body,
            name,
            db: db.to_string(),
            criteria: None,
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

    /// A command given a read preference is routed as a read (the user's word that it reads).
    fn is_read(&self) -> bool {
        self.criteria.is_some()
    }

    fn criteria(&self) -> Option<&crate::selection_criteria::Criteria> {
        self.criteria.as_ref()
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

    fn is_read(&self) -> bool {
        self.0.is_read()
    }

    fn criteria(&self) -> Option<&crate::selection_criteria::Criteria> {
        self.0.criteria()
    }

    fn build(&mut self, msg: &mut OpMsgBuilder<'_>) -> std::result::Result<(), WireError> {
        self.0.build(msg)
    }

    fn handle_response(&mut self, reply: &RawDocument) -> Result<RawDocumentBuf> {
        Ok(reply.to_owned())
    }
}
