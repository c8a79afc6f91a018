//! Connecting over a Unix domain socket: FerretDB listening on one (`--listen-unix`), the
//! socket's path percent-encoded in the connection string, as the Connection String spec says.
//!
//! Starts its own FerretDB (whatever `MONGODB_URI` says): the shared server listens on TCP only.

mod common;

use std::sync::{Mutex, OnceLock};

use bson::{Document, doc};
use ferretdb_embed::{Server, ServerOptions};
use may_mongo::{Client, ClientOptions, ServerAddress, TopologyType};

/// The socket path of a FerretDB started for this test binary.
fn socket_path() -> String {
    static SERVER: OnceLock<(Mutex<Server>, String)> = OnceLock::new();
    common::init();
    let (_, path) = SERVER.get_or_init(|| {
        // Short and unique: socket paths are limited to 107 bytes.
        let path = format!("/tmp/may_mongo-test-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&path);
        let opts = ServerOptions {
            extra_args: vec![format!("--listen-unix={path}")],
            ..ServerOptions::default()
        };
        let server = Server::start(&opts).expect("start FerretDB with --listen-unix");
        (Mutex::new(server), path)
    });
    path.clone()
}

both_cores!(a_unix_socket_serves_operations, |core| {
    let path = socket_path();
    let uri = format!("mongodb://{}/", path.replace('/', "%2F"));
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    assert_eq!(opts.hosts, vec![ServerAddress::unix_socket(&path)]);
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let c = client.clone();
    let got = common::run_on(core, move || {
        let db = c.database(&format!("unix_{}", c.core().name()));
        db.run_command(doc! { "dropDatabase": 1 }).run().unwrap();
        let coll = db.collection::<Document>("items");
        coll.insert_one(doc! { "_id": "u", "over": "unix" })
            .run()
            .unwrap();
        coll.find_one(doc! { "_id": "u" }).run().unwrap()
    });
    assert_eq!(got.unwrap().get_str("over").unwrap(), "unix");
    let t = client.topology();
    assert_eq!(t.topology_type, TopologyType::Single, "{t:#?}");
    assert_eq!(
        t.servers.keys().next().unwrap().to_string(),
        path,
        "the socket's path is the server's address"
    );
});

both_cores!(a_missing_socket_is_a_clear_selection_error, |core| {
    common::init();
    let path = format!("/tmp/may_mongo-nobody-{}.sock", std::process::id());
    let uri = format!(
        "mongodb://{}/?serverSelectionTimeoutMS=300",
        path.replace('/', "%2F")
    );
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = core;
    let client = Client::with_options(opts).unwrap();
    let err = common::run_on(core, move || {
        client
            .database("x")
            .run_command(doc! { "ping": 1 })
            .run()
            .unwrap_err()
    });
    let text = err.to_string();
    assert!(text.contains(&path), "{text}");
    assert!(text.contains("No such file"), "{text}");
});
