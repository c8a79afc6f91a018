//! A database handle.

use std::sync::Arc;

use bson::{Document, RawDocumentBuf};

use crate::client::Client;
use crate::collection::Collection;
use crate::error::Result;
use crate::ops::{RunCommand, RunCommandRaw};

/// A handle to one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    client: Client,
    name: Arc<str>,
}

impl Database {
    pub(crate) fn new(client: Client, name: &str) -> Database {
        Database {
            client,
            name: name.into(),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client this handle belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A handle to collection `name`, whose documents are `T` (use [`Document`] for untyped
    /// access). No I/O.
    pub fn collection<T>(&self, name: &str) -> Collection<T> {
        Collection::new(self.client.clone(), self.name.clone(), name)
    }

    /// Runs `command` against this database and returns the server's reply. An `ok: 0` reply
    /// is an [`ErrorKind::Command`](crate::ErrorKind::Command) error.
    pub fn run_command(&self, command: Document) -> Result<Document> {
        self.client.execute(RunCommand::new(&self.name, &command)?)
    }

    /// Like [`run_command`](Self::run_command), but returns the reply undecoded. Decoding a
    /// `Document` is recursive; the raw form is safe for any nesting on a small coroutine stack.
    pub fn run_command_raw(&self, command: Document) -> Result<RawDocumentBuf> {
        self.client
            .execute(RunCommandRaw(RunCommand::new(&self.name, &command)?))
    }
}
