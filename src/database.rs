//! A database handle.

use std::sync::Arc;

use bson::{Bson, Document, RawDocumentBuf};

use crate::client::Client;
use crate::collection::{Collection, Settings, aggregate_body, ends_in_write_stage};
use crate::concern::{ReadConcern, WriteConcern};
use crate::crud_types::{AggregateOptions, CollectionOptions, CursorType};
use crate::cursor::{Cursor, CursorSpec, CursorStart};
use crate::db_options::{DatabaseOptions, RunCursorCommandOptions};
use crate::error::Result;
use crate::ops::{Command, RunCommand, RunCommandRaw};
use crate::retry::Retry;
use crate::selection_criteria::{Criteria, ReadPreference};

/// A handle to one database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    client: Client,
    name: Arc<str>,
    settings: Arc<Settings>,
}

impl Database {
    pub(crate) fn new(client: Client, name: &str) -> Database {
        let o = client.options();
        let settings = Settings {
            criteria: None, // the client's applies
            read_concern: o.read_concern.clone(),
            write_concern: o.write_concern.clone(),
            timeout: o.timeout,
        };
        Database {
            client,
            name: name.into(),
            settings: Arc::new(settings),
        }
    }

    /// A handle to database `name` with `options`' selection criteria and concerns where they
    /// are set, the client's elsewhere.
    pub(crate) fn with_options(client: Client, name: &str, options: DatabaseOptions) -> Database {
        let db = Database::new(client, name);
        match db.settings.for_operation(
            options.selection_criteria.as_ref(),
            options.read_concern.as_ref(),
            options.write_concern.as_ref(),
        ) {
            Some(settings) => Database {
                settings: Arc::new(settings),
                ..db
            },
            None => db,
        }
    }

    /// This database with another read preference for its collections' reads.
    pub fn with_read_preference(&self, rp: ReadPreference) -> Database {
        self.with(|s| s.criteria = Some((&rp).into()))
    }

    /// This database with another read concern.
    pub fn with_read_concern(&self, rc: ReadConcern) -> Database {
        self.with(|s| s.read_concern = Some(rc))
    }

    /// This database with another write concern.
    pub fn with_write_concern(&self, wc: WriteConcern) -> Database {
        self.with(|s| s.write_concern = Some(wc))
    }

    /// This database (and the collections it hands out) with a limit on each whole operation;
    /// `None` lifts it. A call that runs out gets
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout).
    pub fn with_timeout(&self, timeout: Option<std::time::Duration>) -> Database {
        self.with(|s| s.timeout = timeout)
    }

    fn with(&self, f: impl FnOnce(&mut Settings)) -> Database {
        let mut settings = (*self.settings).clone();
        f(&mut settings);
        Database {
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// Runs a database-level aggregation (e.g. `$currentOp`, `$documents`), results as
    /// documents. Like a collection's, a pipeline ending in `$out` or `$merge` goes to the
    /// primary with the write concern; any other follows the read preference.
    pub fn aggregate(
        &self,
        pipeline: Vec<Document>,
        mut options: AggregateOptions,
    ) -> Result<Cursor<Document>> {
        let writes = ends_in_write_stage(&pipeline);
        let spec = CursorSpec {
            batch_size: options.batch_size,
            max_await_time: options.max_await_time,
            comment: options.comment.clone(),
            timeout: self.settings.timeout,
            ..CursorSpec::default()
        };
        let criteria = options.selection_criteria.take();
        let read_concern = options.read_concern.take();
        let write_concern = options.write_concern.take();
        let own = self.settings.for_operation(
            criteria.as_ref(),
            read_concern.as_ref(),
            write_concern.as_ref(),
        );
        let settings = own.as_ref().unwrap_or(&self.settings);
        let mut body = aggregate_body(Bson::Int32(1), pipeline, options);
        settings.read_concern_into(&mut body);
        let op = if writes {
            if let Some(wc) = settings.write_concern_doc() {
                body.insert("writeConcern", wc);
            }
            Command::write("aggregate", &self.name, body, CursorStart::read)
        } else {
            let criteria = settings.criteria.as_ref();
            Command::read("aggregate", &self.name, body, criteria, CursorStart::read)
        };
        Cursor::open(&self.client, op, spec)
    }

    /// The collections' descriptions (`listCollections`), optionally filtered.
    pub fn list_collections(&self, filter: Option<Document>) -> Result<Cursor<Document>> {
        let mut body = bson::doc! { "listCollections": 1, "cursor": {} };
        if let Some(f) = filter {
            body.insert("filter", f);
        }
        self.cursor("listCollections", body)
    }

    /// The collections' names.
    pub fn list_collection_names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for c in self.list_collections(None)? {
            if let Ok(name) = c?.get_str("name") {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Creates a collection; `options` as the `create` command takes them (`capped`, ...).
    pub fn create_collection(&self, name: &str, options: Option<Document>) -> Result<()> {
        let mut body = bson::doc! { "create": name };
        if let Some(o) = options {
            body.extend(o);
        }
        let mut op = Command::write("create", &self.name, body, |_| Ok(()));
        self.client.execute_timed(&mut op, self.settings.timeout)
    }

    /// Drops the database.
    pub fn drop(&self) -> Result<()> {
        let body = bson::doc! { "dropDatabase": 1 };
        let mut op = Command::write("dropDatabase", &self.name, body, |_| Ok(()));
        self.client.execute_timed(&mut op, self.settings.timeout)
    }

    /// A cursor command sent to the primary (`listCollections`): a retryable read.
    fn cursor(&self, name: &'static str, body: Document) -> Result<Cursor<Document>> {
        let op = Command::write(name, &self.name, body, CursorStart::read).retryable(Retry::Read);
        let spec = CursorSpec {
            timeout: self.settings.timeout,
            ..CursorSpec::default()
        };
        Cursor::open(&self.client, op, spec)
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
        Collection::new(
            self.client.clone(),
            self.name.clone(),
            name,
            self.settings.clone(),
        )
    }

    /// A handle to collection `name` with `options`' selection criteria and concerns where
    /// they are set, this database's elsewhere. No I/O.
    pub fn collection_with_options<T>(
        &self,
        name: &str,
        options: CollectionOptions,
    ) -> Collection<T> {
        self.collection(name).with_options(&options)
    }

    /// Runs `command` against this database and returns the server's reply. An `ok: 0` reply
    /// is an [`ErrorKind::Command`](crate::ErrorKind::Command) error.
    pub fn run_command(&self, command: Document) -> Result<Document> {
        // Encoded (and freed) on a driver stack: it recurses as deep as the command is.
        let mut op =
            crate::runtime::on_driver_stack(move || RunCommand::new(&self.name, &command))?;
        self.client.execute_timed(&mut op, self.settings.timeout)
    }

    /// Runs a command that opens a cursor (`find`, `aggregate`, `listCollections`, or any other
    /// that answers `cursor: {id, ns, firstBatch}`) and returns the cursor; later batches come
    /// with `getMore`, shaped by `options`. A reply without a cursor is an error.
    ///
    /// Like [`run_command`](Self::run_command) it sends the command as given (with `$db`), is
    /// never retried, and inherits no read concern or write concern from this handle; a read
    /// preference applies only when `options` gives one.
    pub fn run_cursor_command(
        &self,
        command: Document,
        options: RunCursorCommandOptions,
    ) -> Result<Cursor<Document>> {
        let name = crate::ops::user_command_name("run_cursor_command", &command)?;
        let criteria = options.selection_criteria.as_ref().map(Criteria::from);
        let op = Command::read(
            "runCursorCommand",
            &self.name,
            command,
            criteria.as_ref(),
            CursorStart::read,
        )
        .named(name)
        .retryable(Retry::No);
        let spec = CursorSpec {
            batch_size: options.batch_size,
            cursor_type: options.cursor_type.unwrap_or(CursorType::NonTailable),
            get_more_max_time: options.max_time,
            comment: options.comment,
            timeout: self.settings.timeout,
            ..CursorSpec::default()
        };
        Cursor::open(&self.client, op, spec)
    }

    /// Like [`run_command`](Self::run_command), but returns the reply undecoded. Decoding a
    /// `Document` is recursive; the raw form is safe for any nesting on a small coroutine stack.
    pub fn run_command_raw(&self, command: Document) -> Result<RawDocumentBuf> {
        let mut op = RunCommandRaw(crate::runtime::on_driver_stack(move || {
            RunCommand::new(&self.name, &command)
        })?);
        self.client.execute_timed(&mut op, self.settings.timeout)
    }
}
