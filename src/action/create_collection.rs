//! `create`: a collection (or view, capped, time-series, clustered collection) made
//! explicitly.

use super::session_setter;
use bson::{Document, doc};

use crate::client::Route;
use crate::database::Database;
use crate::db_options::CreateCollectionOptions;
use crate::error::{Error, Result};
use crate::ops::Command;

impl Database {
    /// Creates the collection `name`; options say what kind.
    pub fn create_collection(&self, name: impl Into<String>) -> CreateCollection<'_> {
        CreateCollection {
            session: None,
            db: self,
            name: name.into(),
            options: None,
        }
    }
}

/// Creates a collection. Made by [`Database::create_collection`].
#[must_use = "nothing is sent until .run()"]
pub struct CreateCollection<'a> {
    pub(crate) db: &'a Database,
    pub(crate) name: String,
    pub(crate) options: Option<CreateCollectionOptions>,
    /// The explicit session to run in (`.session(..)`).
    pub(crate) session: Option<std::sync::Arc<crate::session::SessionCell>>,
}

impl CreateCollection<'_> {
    session_setter!();

    super::option_setters!(CreateCollectionOptions {
        capped: plain bool,
        size: plain u64,
        max: plain u64,
        storage_engine: plain Document,
        validator: plain Document,
        validation_level: plain crate::db_options::ValidationLevel,
        validation_action: plain crate::db_options::ValidationAction,
        view_on: plain String,
        pipeline: iter Document,
        collation: plain crate::collation::Collation,
        write_concern: plain crate::concern::WriteConcern,
        index_option_defaults: plain crate::db_options::IndexOptionDefaults,
        timeseries: plain crate::db_options::TimeseriesOptions,
        expire_after_seconds: plain std::time::Duration,
        change_stream_pre_and_post_images: plain crate::db_options::ChangeStreamPreAndPostImages,
        clustered_index: plain crate::db_options::ClusteredIndex,
        comment: into bson::Bson,
    });

    /// Sends `create`. The options become the command's fields as serde writes them (their
    /// names are the server's), the write concern from the options or the handle.
    pub fn run(self) -> Result<()> {
        let mut options = self.options.unwrap_or_default();
        let db = self
            .db
            .overridden(None, None, options.write_concern.take(), self.session);
        let mut body = doc! { "create": self.name };
        let fields = bson::serialize_to_document(&options).map_err(Error::ser)?;
        body.extend(fields);
        if let Some(wc) = db.settings.write_concern_doc() {
            body.insert("writeConcern", wc);
        }
        let mut op = Command::write("create", &db.name, body, |_| Ok(()));
        db.client
            .execute(&mut op, Route::selected(db.settings.timeout))
            .map(|e| e.output)
    }
}
