//! GridFS: upload through std::io::Write (one chunk and many, with metadata and a chosen id),
//! download through std::io::Read (by id, by name, by revision), find the files, rename,
//! delete, abort an upload, drop the bucket.

use std::io::{Read, Write};

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, GridFsErrorKind, GridFsFileIdentifier, Result},
    options::GridFsBucketOptions,
    sync::{Client, gridfs::FilesCollectionDocument},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, GridFsErrorKind, GridFsFileIdentifier, Result},
    options::GridFsBucketOptions,
    sync::{Client, gridfs::FilesCollectionDocument},
};

use may_mongo_porting::{check, check_eq};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let client = Client::with_uri_str(uri)?;
    let db = client.database("porting_gridfs");
    db.drop().run()?;

    // The default bucket ("fs"): a small file, written in two pieces.
    let bucket = db.gridfs_bucket(None);
    let mut upload = bucket.open_upload_stream("hello.txt").run()?;
    upload.write_all(b"hello, ")?;
    upload.write_all(b"gridfs\n")?;
    upload.close()?;
    let hello_id = upload.id().clone();
    let mut text = String::new();
    bucket
        .open_download_stream(hello_id.clone())
        .run()?
        .read_to_string(&mut text)?;
    check_eq!(checks, text, "hello, gridfs\n");

    // A bucket of its own with small chunks: a file of many chunks, with metadata and an id.
    let options = GridFsBucketOptions::builder()
        .bucket_name("photos".to_string())
        .chunk_size_bytes(1024)
        .build();
    let photos = db.gridfs_bucket(options);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut upload = photos
        .open_upload_stream("cat.jpg")
        .id(Bson::String("cat-1".into()))
        .metadata(doc! { "owner": "ada" })
        .run()?;
    for piece in data.chunks(700) {
        upload.write_all(piece)?;
    }
    upload.flush()?;
    upload.close()?;
    check_eq!(checks, upload.id(), &Bson::String("cat-1".into()));
    let chunks = db.collection::<Document>("photos.chunks");
    check_eq!(
        checks,
        chunks.count_documents(doc! { "files_id": "cat-1" }).run()?,
        5
    );
    let mut back = Vec::new();
    photos
        .open_download_stream(Bson::String("cat-1".into()))
        .run()?
        .read_to_end(&mut back)?;
    check!(checks, back == data, "the download differs from the upload");

    // Revisions of one name: the newest by default, any by number.
    for version in ["v1", "v2", "v3"] {
        let mut upload = photos.open_upload_stream("notes.txt").run()?;
        upload.write_all(version.as_bytes())?;
        upload.close()?;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let read = |revision: Option<i32>| -> Result<String> {
        let mut text = String::new();
        let stream = photos.open_download_stream_by_name("notes.txt");
        let mut stream = match revision {
            Some(r) => stream.revision(r).run()?,
            None => stream.run()?,
        };
        stream.read_to_string(&mut text)?;
        Ok(text)
    };
    check_eq!(checks, read(None)?, "v3");
    check_eq!(checks, read(Some(0))?, "v1");
    check_eq!(checks, read(Some(-2))?, "v2");

    // Finding files.
    let files: Vec<FilesCollectionDocument> = photos
        .find(doc! {})
        .sort(doc! { "uploadDate": 1 })
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, files.len(), 4);
    let cat = &files[0];
    check_eq!(
        checks,
        (cat.id.clone(), cat.length, cat.chunk_size_bytes),
        (Bson::String("cat-1".into()), 5000, 1024)
    );
    check_eq!(checks, cat.filename.as_deref(), Some("cat.jpg"));
    check_eq!(checks, cat.metadata, Some(doc! { "owner": "ada" }));
    let notes = photos
        .find_one(doc! { "filename": "notes.txt" })
        .sort(doc! { "uploadDate": -1 })
        .run()?;
    check_eq!(checks, notes.map(|f| f.length), Some(2));

    // Rename, then delete.
    photos
        .rename(Bson::String("cat-1".into()), "kitten.jpg")
        .run()?;
    let renamed = photos.find_one(doc! { "_id": "cat-1" }).run()?;
    check_eq!(
        checks,
        renamed.and_then(|f| f.filename),
        Some("kitten.jpg".to_string())
    );
    photos.delete(Bson::String("cat-1".into())).run()?;
    check_eq!(
        checks,
        chunks.count_documents(doc! { "files_id": "cat-1" }).run()?,
        0
    );
    let err = photos
        .open_download_stream(Bson::String("cat-1".into()))
        .run()
        .err()
        .expect("deleted");
    match *err.kind {
        ErrorKind::GridFs(GridFsErrorKind::FileNotFound {
            identifier: GridFsFileIdentifier::Id(ref id),
            ..
        }) => {
            check_eq!(checks, id, &Bson::String("cat-1".into()))
        }
        ref other => panic!("expected FileNotFound, got {other:?}"),
    }
    let err = photos
        .delete(Bson::String("cat-1".into()))
        .run()
        .unwrap_err();
    check!(
        checks,
        matches!(
            *err.kind,
            ErrorKind::GridFs(GridFsErrorKind::FileNotFound { .. })
        ),
        "{err}"
    );
    let err = photos
        .open_download_stream_by_name("notes.txt")
        .revision(7)
        .run()
        .err()
        .expect("no revision 7");
    check!(
        checks,
        matches!(
            *err.kind,
            ErrorKind::GridFs(GridFsErrorKind::RevisionNotFound { .. })
        ),
        "{err}"
    );

    // An aborted upload leaves nothing behind.
    let mut upload = photos.open_upload_stream("partial.bin").run()?;
    upload.write_all(&data)?;
    let partial_id = upload.id().clone();
    upload.abort()?;
    check_eq!(
        checks,
        chunks
            .count_documents(doc! { "files_id": partial_id })
            .run()?,
        0
    );
    check_eq!(
        checks,
        photos
            .find(doc! { "filename": "partial.bin" })
            .run()?
            .count(),
        0
    );

    // Drop the bucket: both of its collections go.
    photos.drop().run()?;
    let mut names = db.list_collection_names().run()?;
    names.sort();
    check_eq!(checks, names, ["fs.chunks", "fs.files"]);
    bucket.delete(hello_id).run()?;
    check_eq!(checks, bucket.find(doc! {}).run()?.count(), 0);

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("gridfs", run)
}
