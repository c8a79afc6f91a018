//! `run_command` and `run_cursor_command`: a command as the caller wrote it.

use bson::{Bson, Document, RawDocumentBuf};

use crate::client::Route;
use crate::client_session::ClientSession;
use crate::cursor::{Cursor, CursorSpec, CursorStart, CursorType, SessionCursor};
use crate::database::Database;
use crate::error::Result;
use crate::ops::{Command, RunCommand as RunCommandOp, RunCommandRaw};
use crate::options::{RunCommandOptions, RunCursorCommandOptions};
use crate::retry::Retry;
use crate::selection_criteria::{Criteria, SelectionCriteria};

use super::{ExplicitSession, ImplicitSession, option_setters, session_setter};

impl Database {
    /// Runs `command` against this database and returns the server's reply. An `ok: 0` reply
    /// is an [`ErrorKind::Command`](crate::error::ErrorKind) error. The command is sent as
    /// given (with `$db`), to the primary unless a selection criteria says otherwise, never
    /// retried, and inherits no read or write concern from the handle.
    pub fn run_command(&self, command: Document) -> RunCommand<'_> {
        RunCommand {
            session: None,
            db: self,
            command,
            options: None,
        }
    }

    /// Runs a command that opens a cursor (`find`, `aggregate`, `listCollections`, or any other
    /// that answers `cursor: {id, ns, firstBatch}`) and returns the cursor; later batches come
    /// with `getMore`, shaped by the options. A reply without a cursor is an error.
    pub fn run_cursor_command(&self, command: Document) -> RunCursorCommand<'_> {
        RunCursorCommand {
            session: ImplicitSession,
            db: self,
            command,
            options: None,
        }
    }
}

/// Runs a command. Made by [`Database::run_command`].
#[must_use = "nothing is sent until .run()"]
pub struct RunCommand<'a> {
    pub(crate) db: &'a Database,
    pub(crate) command: Document,
    pub(crate) options: Option<RunCommandOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl RunCommand<'_> {
    session_setter!();

    option_setters!(RunCommandOptions {
        selection_criteria: plain SelectionCriteria,
    });

    fn op(self) -> Result<RunCommandOp> {
        let db = self.db;
        let command = self.command;
        // Encoded (and freed) on a driver stack: it recurses as deep as the command is.
        let mut op =
            crate::runtime::on_driver_stack(move || RunCommandOp::new(&db.name, &command))?;
        op.criteria = self
            .options
            .and_then(|o| o.selection_criteria)
            .as_ref()
            .map(Criteria::from);
        Ok(op)
    }

    /// Sends the command; the reply as a document.
    pub fn run(self) -> Result<Document> {
        let db = self.db;
        let session = self.session.clone();
        let mut op = self.op()?;
        db.client
            .execute(
                &mut op,
                Route::selected(db.settings.timeout).in_session(session),
            )
            .map(|e| e.output)
    }

    /// Sends the command; the reply undecoded. Decoding a `Document` is recursive; the raw
    /// form is safe for any nesting on a small coroutine stack. (An addition of this driver.)
    pub fn run_raw(self) -> Result<RawDocumentBuf> {
        let db = self.db;
        let session = self.session.clone();
        let op = self.op()?;
        db.client
            .execute(
                &mut RunCommandRaw(op),
                Route::selected(db.settings.timeout).in_session(session),
            )
            .map(|e| e.output)
    }
}

/// Runs a command that opens a cursor. Made by [`Database::run_cursor_command`].
#[must_use = "nothing is sent until .run()"]
pub struct RunCursorCommand<'a, S = ImplicitSession> {
    pub(crate) db: &'a Database,
    pub(crate) command: Document,
    pub(crate) options: Option<RunCursorCommandOptions>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a> RunCursorCommand<'a> {
    /// Runs in `session`: [`run`](RunCursorCommand::run) then returns a [`SessionCursor`].
    pub fn session(self, session: &mut ClientSession) -> RunCursorCommand<'a, ExplicitSession> {
        RunCursorCommand {
            db: self.db,
            command: self.command,
            options: self.options,
            session: ExplicitSession(session.cell.clone()),
        }
    }

    /// Sends the command and opens its cursor.
    pub fn run(self) -> Result<Cursor<Document>> {
        self.open(None)
    }
}

impl RunCursorCommand<'_, ExplicitSession> {
    /// Sends the command in the session and opens its cursor.
    pub fn run(self) -> Result<SessionCursor<Document>> {
        let session = self.session.0.clone();
        self.open(Some(session)).map(SessionCursor::new)
    }
}

impl<S> RunCursorCommand<'_, S> {
    option_setters!(RunCursorCommandOptions {
        selection_criteria: plain SelectionCriteria,
        cursor_type: plain CursorType,
        batch_size: plain u32,
        max_time: plain std::time::Duration,
        comment: into Bson,
    });

    fn open(
        self,
        session: Option<std::sync::Arc<crate::session::SessionCell>>,
    ) -> Result<Cursor<Document>> {
        let options = self.options.unwrap_or_default();
        let db = self.db;
        let name = crate::ops::user_command_name("run_cursor_command", &self.command)?;
        let criteria = options.selection_criteria.as_ref().map(Criteria::from);
        let op = Command::read(
            "runCursorCommand",
            &db.name,
            self.command,
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
            timeout: db.settings.timeout,
            ..CursorSpec::default()
        };
        Cursor::open(&db.client, op, spec, session)
    }
}
