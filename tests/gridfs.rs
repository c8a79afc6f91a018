//! GridFS against the real server, on both cores: a 20 MB file with a non-default chunk size
//! round-trips byte for byte; revisions by name; missing files and chunks are clear errors;
//! deleting removes files and chunks; the indexes appear on first write.

mod common;

use std::io::{Read, Write};

use bson::{Bson, Document, doc};
use common::run_on;
use may_mongo::{
    Core, ErrorKind, GridFsBucket, GridFsBucketOptions, GridFsErrorKind, GridFsFileIdentifier,
    GridFsUploadOptions,
};

fn bucket(core: Core, test: &str, chunk_size: Option<u32>) -> GridFsBucket {
    let client = common::client(core);
    let db = common::fresh_db(&client, test);
    let mut options = GridFsBucketOptions::default();
    options.chunk_size_bytes = chunk_size;
    db.gridfs_bucket(options)
}

/// Deterministic bytes that do not repeat with any chunk-sized period.
fn content(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn gridfs_error(e: &may_mongo::Error) -> &GridFsErrorKind {
    match &*e.kind {
        ErrorKind::GridFs(g) => g,
        other => panic!("expected a GridFS error, got {other:?}"),
    }
}

both_cores!(a_20_mb_file_round_trips_byte_for_byte, |core| {
    const CHUNK: u32 = 300 * 1024; // not the default 255 KiB
    let bucket = bucket(core, "gridfs_20mb", Some(CHUNK));
    let data = content(20 * 1024 * 1024 + 123);
    let (id, read_back, file, chunks) = run_on(core, {
        let (bucket, data) = (bucket.clone(), data.clone());
        move || {
            // Uneven writes, so chunks are filled across write calls.
            let mut up = bucket.open_upload_stream("big.bin").run().unwrap();
            for piece in data.chunks(77_777) {
                up.write_all(piece).unwrap();
            }
            let id = up.finish().unwrap();
            let mut down = bucket.open_download_stream(id.clone()).run().unwrap();
            let file = down.file().clone();
            let mut read_back = Vec::new();
            down.read_to_end(&mut read_back).unwrap();
            let chunks = bucket
                .chunks()
                .count_documents(doc! { "files_id": id.clone() })
                .run()
                .unwrap();
            (id, read_back, file, chunks)
        }
    });
    assert_eq!(read_back.len(), data.len());
    assert!(read_back == data, "the bytes differ");
    assert_eq!(file.id, id);
    assert_eq!(file.length, data.len() as u64);
    assert_eq!(file.chunk_size_bytes, CHUNK);
    assert_eq!(file.filename.as_deref(), Some("big.bin"));
    assert_eq!(chunks, (data.len() as u64).div_ceil(u64::from(CHUNK)));

    // The spec's indexes were created on the first write.
    let keys = |c: &may_mongo::Collection<Document>| -> Vec<Document> {
        c.list_indexes()
            .run()
            .unwrap()
            .map(|i| i.unwrap().keys)
            .collect()
    };
    for (coll, key) in [
        (bucket.files(), doc! { "filename": 1, "uploadDate": 1 }),
        (bucket.chunks(), doc! { "files_id": 1, "n": 1 }),
    ] {
        let keys = keys(coll);
        assert!(keys.contains(&key), "{keys:?}");
    }
});

both_cores!(revisions_are_downloaded_by_name, |core| {
    let bucket = bucket(core, "gridfs_revisions", None);
    run_on(core, move || {
        for v in 0..3 {
            let source = format!("version {v}").into_bytes();
            bucket
                .upload_from_reader(
                    "notes.txt",
                    &mut &source[..],
                    GridFsUploadOptions::default(),
                )
                .unwrap();
            // uploadDate has millisecond resolution: keep the revisions apart. (may's sleep
            // parks a coroutine and falls back to the thread's sleep outside one.)
            may::coroutine::sleep(std::time::Duration::from_millis(5));
        }
        let read = |revision: i32| -> Result<String, may_mongo::Error> {
            let mut s = String::new();
            bucket
                .open_download_stream_by_name("notes.txt")
                .revision(revision)
                .run()?
                .read_to_string(&mut s)
                .unwrap();
            Ok(s)
        };
        for (revision, expected) in [
            (0, "version 0"),
            (1, "version 1"),
            (2, "version 2"),
            (-1, "version 2"),
            (-2, "version 1"),
            (-3, "version 0"),
        ] {
            assert_eq!(read(revision).unwrap(), expected, "revision {revision}");
        }
        for revision in [3, -4] {
            let e = read(revision).unwrap_err();
            assert!(
                matches!(
                    gridfs_error(&e),
                    GridFsErrorKind::RevisionNotFound { filename, revision: r, .. }
                        if filename == "notes.txt" && *r == revision
                ),
                "{e}"
            );
        }
        let e = bucket
            .open_download_stream_by_name("nobody.txt")
            .revision(-1)
            .run()
            .err()
            .expect("no such file");
        assert!(
            matches!(gridfs_error(&e), GridFsErrorKind::RevisionNotFound { .. }),
            "{e}"
        );
    });
});

both_cores!(missing_files_and_chunks_are_clear_errors, |core| {
    let bucket = bucket(core, "gridfs_missing", Some(1000));
    run_on(core, move || {
        // No such file.
        let nobody = Bson::ObjectId(bson::oid::ObjectId::new());
        let e = bucket
            .open_download_stream(nobody.clone())
            .run()
            .err()
            .expect("missing");
        assert!(
            matches!(
                gridfs_error(&e),
                GridFsErrorKind::FileNotFound {
                    identifier: GridFsFileIdentifier::Id(id),
                    ..
                } if *id == nobody
            ),
            "{e}"
        );
        let e = bucket.delete(nobody.clone()).run().unwrap_err();
        assert!(matches!(
            gridfs_error(&e),
            GridFsErrorKind::FileNotFound { .. }
        ));
        let e = bucket.rename(nobody.clone(), "x").run().unwrap_err();
        assert!(matches!(
            gridfs_error(&e),
            GridFsErrorKind::FileNotFound { .. }
        ));

        // Three chunks; the middle one removed behind GridFS's back.
        let data = content(2500);
        let id = bucket
            .upload_from_reader("holey", &mut &data[..], GridFsUploadOptions::default())
            .unwrap();
        bucket
            .chunks()
            .delete_one(doc! { "files_id": id.clone(), "n": 1 })
            .run()
            .unwrap();
        let mut down = bucket.open_download_stream(id.clone()).run().unwrap();
        let mut out = Vec::new();
        let e = down.read_to_end(&mut out).unwrap_err();
        let e = may_mongo::gridfs::io_error_to_driver(e);
        assert!(
            matches!(
                gridfs_error(&e),
                GridFsErrorKind::MissingChunk { n: 1, id: file, .. } if *file == id.to_string()
            ),
            "{e}"
        );
        assert_eq!(
            out,
            &data[..1000],
            "the bytes before the hole were delivered"
        );

        // A chunk of the wrong size.
        let id = bucket
            .upload_from_reader("short", &mut &data[..], GridFsUploadOptions::default())
            .unwrap();
        bucket
            .chunks()
            .update_one(
                doc! { "files_id": id.clone(), "n": 0 },
                doc! { "$set": { "data": bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] } } },
            )
            .run()
            .unwrap();
        let e = may_mongo::gridfs::io_error_to_driver(
            bucket
                .open_download_stream(id.clone())
                .run()
                .unwrap()
                .read_to_end(&mut Vec::new())
                .unwrap_err(),
        );
        assert!(
            matches!(
                gridfs_error(&e),
                GridFsErrorKind::WrongSizeChunk {
                    n: 0,
                    expected_size: 1000,
                    actual_size: 3,
                    ..
                }
            ),
            "{e}"
        );

        // A files document claiming 2^32 one-byte chunks: more than a chunk number (an
        // int32) can count. The count was cast to u32 and wrapped to 0, so the download
        // quietly returned an empty file.
        let huge = Bson::ObjectId(bson::oid::ObjectId::new());
        bucket
            .files()
            .insert_one(doc! {
                "_id": huge.clone(), "length": 1i64 << 32, "chunkSize": 1,
                "uploadDate": bson::DateTime::now(), "filename": "huge",
            })
            .run()
            .unwrap();
        let e = bucket
            .open_download_stream(huge)
            .run()
            .err()
            .expect("a count no chunk number can reach is refused");
        assert!(
            matches!(gridfs_error(&e), GridFsErrorKind::BadFilesDocument { .. }),
            "{e}"
        );
    });
});

both_cores!(deleting_removes_files_and_chunks, |core| {
    let bucket = bucket(core, "gridfs_delete", Some(4096));
    run_on(core, move || {
        let data = content(10_000);
        let keep = bucket
            .upload_from_reader("keep", &mut &data[..], Default::default())
            .unwrap();
        let gone = bucket
            .upload_from_reader("gone", &mut &data[..], Default::default())
            .unwrap();
        let count =
            |c: &may_mongo::Collection<Document>, f: Document| c.count_documents(f).run().unwrap();
        assert_eq!(count(bucket.chunks(), doc! { "files_id": gone.clone() }), 3);
        bucket.delete(gone.clone()).run().unwrap();
        assert_eq!(count(bucket.files(), doc! { "_id": gone.clone() }), 0);
        assert_eq!(count(bucket.chunks(), doc! { "files_id": gone.clone() }), 0);
        // The other file is untouched.
        assert_eq!(count(bucket.chunks(), doc! { "files_id": keep.clone() }), 3);
        let mut all = Vec::new();
        bucket.download_to_writer(&keep, &mut all).unwrap();
        assert_eq!(all, data);

        // Rename, find, an aborted upload, and drop.
        bucket.rename(keep.clone(), "kept").run().unwrap();
        let found: Vec<_> = bucket
            .find(doc! { "filename": "kept" })
            .run()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, keep);
        assert_eq!(found[0].length, 10_000);
        let mut up = bucket.open_upload_stream("aborted").run().unwrap();
        up.write_all(&content(9000)).unwrap();
        let aborted = up.id().clone();
        assert_eq!(
            count(bucket.chunks(), doc! { "files_id": aborted.clone() }),
            2
        );
        up.abort().unwrap();
        assert_eq!(count(bucket.chunks(), doc! { "files_id": aborted }), 0);
        bucket.drop().run().unwrap();
        assert_eq!(count(bucket.files(), doc! {}), 0);
        assert_eq!(count(bucket.chunks(), doc! {}), 0);
    });
});

both_cores!(an_empty_file_has_no_chunks_and_reads_as_empty, |core| {
    let bucket = bucket(core, "gridfs_empty", None);
    run_on(core, move || {
        let id = bucket
            .open_upload_stream("empty")
            .run()
            .unwrap()
            .finish()
            .unwrap();
        let mut down = bucket.open_download_stream(id.clone()).run().unwrap();
        assert_eq!(down.file().length, 0);
        let mut out = Vec::new();
        assert_eq!(down.read_to_end(&mut out).unwrap(), 0);
        assert_eq!(
            bucket
                .chunks()
                .count_documents(doc! { "files_id": id })
                .run()
                .unwrap(),
            0
        );
    });
});
