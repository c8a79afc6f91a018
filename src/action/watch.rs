//! `watch()`: a change stream on a collection, a database or the whole deployment.

use bson::Document;

use crate::change_stream::{
    ChangeStream, ChangeStreamEvent, ChangeStreamOptions, Opener, SessionChangeStream, Target,
};
use crate::client::Client;
use crate::client_session::ClientSession;
use crate::collection::Collection;
use crate::database::Database;
use crate::error::Result;

use super::{ExplicitSession, ImplicitSession, option_setters};

impl<T> Collection<T> {
    /// Watches this collection's changes; [`run`](Watch::run) opens the stream.
    pub fn watch(&self) -> Watch<'_, T> {
        let settings = &self.settings;
        Watch::new(
            &self.client,
            Target::Collection {
                db: self.db.to_string(),
                coll: self.name.to_string(),
            },
            settings.read_concern.clone(),
            settings.criteria.clone(),
            settings.timeout,
        )
    }
}

impl Database {
    /// Watches the changes to every collection of this database.
    pub fn watch(&self) -> Watch<'_, Document> {
        let settings = &self.settings;
        Watch::new(
            &self.client,
            Target::Database {
                db: self.name().to_string(),
            },
            settings.read_concern.clone(),
            settings.criteria.clone(),
            settings.timeout,
        )
    }
}

impl Client {
    /// Watches the changes to every database of the deployment.
    pub fn watch(&self) -> Watch<'_, Document> {
        Watch::new(
            self,
            Target::Cluster,
            self.options().read_concern.clone(),
            None,
            self.options().timeout,
        )
    }
}

/// Opens a change stream. Made by `watch()` on a [`Collection`], a [`Database`] or the
/// [`Client`].
#[must_use = "nothing is sent until .run()"]
pub struct Watch<'a, T = Document, S = ImplicitSession> {
    pub(crate) client: &'a Client,
    pub(crate) target: Target,
    pub(crate) pipeline: Vec<Document>,
    pub(crate) options: Option<ChangeStreamOptions>,
    pub(crate) read_concern: Option<crate::concern::ReadConcern>,
    pub(crate) criteria: Option<crate::selection_criteria::Criteria>,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) _type: std::marker::PhantomData<fn() -> T>,
    /// [`ImplicitSession`], or the explicit session to run in (`.session(..)`).
    pub(crate) session: S,
}

impl<'a, T> Watch<'a, T> {
    fn new(
        client: &'a Client,
        target: Target,
        read_concern: Option<crate::concern::ReadConcern>,
        criteria: Option<crate::selection_criteria::Criteria>,
        timeout: Option<std::time::Duration>,
    ) -> Self {
        Watch {
            client,
            target,
            pipeline: Vec::new(),
            options: None,
            read_concern,
            criteria,
            timeout,
            _type: std::marker::PhantomData,
            session: ImplicitSession,
        }
    }

    /// Watches in `session`: [`run`](Watch::run) then returns a [`SessionChangeStream`].
    pub fn session(self, session: &mut ClientSession) -> Watch<'a, T, ExplicitSession> {
        Watch {
            client: self.client,
            target: self.target,
            pipeline: self.pipeline,
            options: self.options,
            read_concern: self.read_concern,
            criteria: self.criteria,
            timeout: self.timeout,
            _type: std::marker::PhantomData,
            session: ExplicitSession(session.cell.clone()),
        }
    }
}

impl<T, S> Watch<'_, T, S> {
    /// Stages after `$changeStream` (`$match`, `$project`, ...): they filter and shape the
    /// events (keep `_id`: it is the resume token).
    pub fn pipeline(mut self, pipeline: impl IntoIterator<Item = Document>) -> Self {
        self.pipeline = pipeline.into_iter().collect();
        self
    }

    option_setters!(ChangeStreamOptions {
        full_document: plain crate::change_stream::FullDocumentType,
        full_document_before_change: plain crate::change_stream::FullDocumentBeforeChangeType,
        resume_after: plain crate::change_stream::ResumeToken,
        start_after: plain crate::change_stream::ResumeToken,
        start_at_operation_time: plain bson::Timestamp,
        max_await_time: plain std::time::Duration,
        batch_size: plain u32,
        collation: plain crate::collation::Collation,
        comment: into bson::Bson,
        selection_criteria: plain crate::selection_criteria::SelectionCriteria,
        read_concern: plain crate::concern::ReadConcern,
        show_expanded_events: plain bool,
    });

    fn opener(self, session: Option<std::sync::Arc<crate::session::SessionCell>>) -> Box<Opener> {
        Box::new(Opener {
            client: self.client.clone(),
            target: self.target,
            pipeline: self.pipeline,
            options: self.options.unwrap_or_default(),
            read_concern: self.read_concern,
            criteria: self.criteria,
            timeout: self.timeout,
            session,
        })
    }
}

impl<T> Watch<'_, T> {
    /// Sends the `aggregate` with `$changeStream` and returns the stream.
    pub fn run(self) -> Result<ChangeStream<ChangeStreamEvent<T>>> {
        ChangeStream::open(self.opener(None))
    }
}

impl<T> Watch<'_, T, ExplicitSession> {
    /// Sends the `aggregate` with `$changeStream` in the session; its `getMore`s go in it.
    pub fn run(self) -> Result<SessionChangeStream<ChangeStreamEvent<T>>> {
        let session = self.session.0.clone();
        ChangeStream::open(self.opener(Some(session))).map(SessionChangeStream::new)
    }
}
