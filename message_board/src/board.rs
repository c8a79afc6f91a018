//! The board's data: every message in `messages`, a copy of the newest ones in
//! `front_page`, images in the GridFS bucket `images`. Every method is plain blocking-style
//! driver code; called from a coroutine it parks only that coroutine while the server answers.
//!
//! Why two collections: the front page wants the newest messages, a sort. MongoDB answers
//! that from an index on `posted`; FerretDB 1.24 on SQLite reads and sorts the whole
//! collection for any sorted or filtered `find` (measured: 704 ms for 20,000 documents, 22 ms
//! for 612 messages; only an unsorted, unfiltered `limit` is fast, 5 ms). So the front page
//! reads a collection that never holds many more than it shows, and a trimmer
//! ([`Board::keep_front_page_trimmed`]) deletes the older copies soon after each post.
//! `messages` stays the record: nothing is ever deleted from it.
//!
//! The trimmer is a coroutine with a client of its own. Under 1,000 connections the app's
//! pool has a queue of hundreds of requests, and trims made in the request path either raced
//! each other (every tenth POST: 80% of FerretDB's time went to trims) or, one at a time,
//! waited in that queue while the page grew (mixed load: 168 requests/s, p99 15 s). With a
//! private pool of one connection the trimmer never queues behind requests: 332–415
//! requests/s. notes/message-board.md has the whole story.

use may_mongo::bson::oid::ObjectId;
use may_mongo::bson::{Bson, DateTime, doc};
use may_mongo::gridfs::GridFsDownloadStream;
use may_mongo::{
    Client, Collection, Database, GridFsBucket, GridFsBucketOptions, GridFsUploadOptions,
    IndexModel, Result,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::form::NewMessage;

/// How many of the newest messages `front_page` keeps.
pub const FRONT_PAGE_KEEPS: i64 = 50;

/// Newest first: `_id` breaks ties between messages posted in the same millisecond.
fn newest_first() -> may_mongo::bson::Document {
    doc! { "posted": -1, "_id": -1 }
}

/// One message, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub text: String,
    pub posted: DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Attachment>,
}

/// A message's image: a GridFS file and what to serve it as.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub file_id: ObjectId,
    /// Decided by the image's first bytes when it was posted, never by the client.
    pub content_type: String,
    pub length: i64,
    pub filename: String,
}

/// The board in one database. Cheap to clone: handles share the client's pools.
#[derive(Clone)]
pub struct Board {
    db: Database,
    /// Posts stored through this board and its clones: the trimmer's cue.
    posts: Arc<AtomicU64>,
    messages: Collection<Message>,
    front_page: Collection<Message>,
    images: GridFsBucket,
}

impl Board {
    /// The board stored in database `db_name` (no I/O).
    pub fn new(client: &Client, db_name: &str) -> Board {
        let db = client.database(db_name);
        let mut options = GridFsBucketOptions::default();
        options.bucket_name = Some("images".into());
        let images = db.gridfs_bucket(options);
        Board {
            posts: Arc::new(AtomicU64::new(0)),
            messages: db.collection("messages"),
            front_page: db.collection("front_page"),
            images,
            db,
        }
    }

    /// Creates the indexes the front page's sort would use on a server that sorts by index.
    pub fn create_indexes(&self) -> Result<()> {
        for coll in [&self.messages, &self.front_page] {
            coll.create_index(IndexModel::new(doc! { "posted": -1, "_id": -1 }, None))
                .run()?;
        }
        Ok(())
    }

    /// Drops every message and image.
    pub fn reset(&self) -> Result<()> {
        self.messages.drop().run()?;
        self.front_page.drop().run()?;
        self.images.drop().run()
    }

    /// The newest messages, newest first, at most `limit` (at most
    /// [`FRONT_PAGE_KEEPS`] are kept where this looks). `_id` breaks ties between messages
    /// posted in the same millisecond (one process's ObjectIds increase).
    pub fn newest(&self, limit: i64) -> Result<Vec<Message>> {
        self.front_page
            .find(doc! {})
            .sort(newest_first())
            .limit(limit)
            .run()?
            .collect()
    }

    /// Deletes from the front page all but the [`FRONT_PAGE_KEEPS`] newest messages; returns
    /// how many it deleted. Messages posted meanwhile are newer than the cut, so they stay.
    pub fn trim_front_page(&self) -> Result<u64> {
        let oldest_kept = self
            .front_page
            .find_one(doc! {})
            .sort(newest_first())
            .skip(FRONT_PAGE_KEEPS as u64 - 1)
            .run()?;
        let Some(oldest_kept) = oldest_kept else {
            return Ok(0);
        };
        let older = doc! { "$or": [
            { "posted": { "$lt": oldest_kept.posted } },
            { "posted": oldest_kept.posted, "_id": { "$lt": oldest_kept.id } },
        ] };
        Ok(self.front_page.delete_many(older).run()?.deleted_count)
    }

    /// Trims the front page, in a coroutine of its own for as long as the process lives,
    /// within `period` of any post through this board or its clones. The trims go through
    /// `maintenance`, a client no request uses (see the module notes). A failed trim is
    /// logged and tried again: meanwhile the page only gets longer.
    pub fn keep_front_page_trimmed(&self, maintenance: &Client, period: std::time::Duration) {
        let trimmer = Board {
            posts: self.posts.clone(),
            ..Board::new(maintenance, self.db.name())
        };
        may::go!(move || {
            let mut trimmed_at = 0;
            loop {
                may::coroutine::sleep(period);
                // An idle board costs the server nothing.
                let posts = trimmer.posts.load(Ordering::Relaxed);
                if posts == trimmed_at {
                    continue;
                }
                match trimmer.trim_front_page() {
                    Ok(_) => trimmed_at = posts,
                    Err(e) => eprintln!("message_board: trimming the front page: {e}"),
                }
            }
        });
    }

    /// Stores `new`: the image first, then the message that points at it, so a listed
    /// message never names a missing file. If the message cannot be stored, the image is
    /// deleted again (best effort: a failure there leaves an orphan file, never a broken
    /// message).
    pub fn post(&self, new: NewMessage) -> Result<Message> {
        let image = match new.image {
            Some(image) => {
                let mut options = GridFsUploadOptions::default();
                options.metadata = Some(doc! { "contentType": image.content_type });
                let id = self.images.upload_from_reader(
                    &image.filename,
                    &mut image.data.as_slice(),
                    options,
                )?;
                let Bson::ObjectId(file_id) = id else {
                    unreachable!("upload_from_reader ids are ObjectIds");
                };
                Some(Attachment {
                    file_id,
                    content_type: image.content_type.to_string(),
                    length: image.data.len() as i64,
                    filename: image.filename,
                })
            }
            None => None,
        };
        let message = Message {
            id: ObjectId::new(),
            text: new.text,
            posted: DateTime::now(),
            image,
        };
        if let Err(e) = self.messages.insert_one(&message).run() {
            if let Some(a) = &message.image {
                let _ = self.images.delete(Bson::ObjectId(a.file_id)).run();
            }
            return Err(e);
        }
        // The message is stored. If its front-page copy fails, the caller hears of it (a 500)
        // although the record is kept: the author may post it again, but nothing is lost.
        self.front_page.insert_one(&message).run()?;
        self.posts.fetch_add(1, Ordering::Relaxed);
        Ok(message)
    }

    /// Opens image `file_id` for streaming.
    pub fn open_image(&self, file_id: ObjectId) -> Result<GridFsDownloadStream> {
        self.images
            .open_download_stream(Bson::ObjectId(file_id))
            .run()
    }

    /// Every message ever posted, in no particular order (a full read: for audits and tests).
    pub fn all_messages(&self) -> Result<Vec<Message>> {
        self.messages.find(doc! {}).run()?.collect()
    }
}
