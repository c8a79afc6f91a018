//! Topology discovery against the real server: FerretDB started with `--repl-set-name=rs0`
//! answers `hello` as the primary of a one-member replica set.
//!
//! These tests start their own FerretDB (with that flag) once per test binary, whatever
//! `MONGODB_URI` says: the shared test server is a standalone.

mod common;

use common::run_on;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use ferretdb_embed::{Server, ServerOptions};
use may_mongo::{
    Client, ClientOptions, Core, ErrorKind, EventHandler, SdamEvent, ServerAddress, ServerType,
    TopologyType,
};

/// The one-member replica set's port (started on first use, stopped at exit).
fn rs0_port() -> u16 {
    static SERVER: OnceLock<Mutex<Server>> = OnceLock::new();
    common::init();
    let server = SERVER.get_or_init(|| {
        let opts = ServerOptions {
            repl_set_name: Some("rs0".into()),
            ..ServerOptions::default()
        };
        Mutex::new(Server::start(&opts).expect("start FerretDB with --repl-set-name=rs0"))
    });
    server.lock().unwrap().port()
}

fn client(uri: &str, core: Core, handler: Option<Arc<Events>>) -> Client {
    let mut opts = ClientOptions::parse(uri).run().unwrap();
    opts.core = core;
    if let Some(h) = handler {
        opts.sdam_event_handler = Some(EventHandler::callback(move |e| {
            h.0.lock().unwrap().push(e);
        }));
    }
    Client::with_options(opts).unwrap()
}

/// Insert then read back one document, on the calling coroutine or thread.
fn round_trip(client: &Client, db: &str) -> Document {
    let c = client.clone();
    let db = db.to_string();
    let core = client.core();
    run_on(core, move || {
        let coll = c.database(&db).collection::<Document>("items");
        c.database(&db)
            .run_command(doc! { "dropDatabase": 1 })
            .run()
            .unwrap();
        coll.insert_one(doc! { "_id": 1, "core": core.name() })
            .run()
            .unwrap();
        coll.find_one(doc! { "_id": 1 }).run().unwrap().unwrap()
    })
}

#[derive(Default)]
struct Events(Mutex<Vec<SdamEvent>>);

both_cores!(replica_set_name_finds_a_one_member_set, |core| {
    let port = rs0_port();
    let events = Arc::new(Events::default());
    let c = client(
        &format!("mongodb://127.0.0.1:{port}/?replicaSet=rs0"),
        core,
        Some(events.clone()),
    );
    let got = round_trip(&c, &format!("topo_rs_{}", core.name()));
    assert_eq!(got.get_str("core").unwrap(), core.name());
    let t = c.topology();
    assert_eq!(
        t.topology_type,
        TopologyType::ReplicaSetWithPrimary,
        "{t:#?}"
    );
    assert_eq!(t.set_name.as_deref(), Some("rs0"));
    let primaries: Vec<_> = t
        .servers
        .iter()
        .filter(|(_, s)| s.server_type == ServerType::RsPrimary)
        .collect();
    assert_eq!(primaries.len(), 1, "{t:#?}");
    // The SDAM events tell the same story: opening, then the seed turning into a primary.
    let events = events.0.lock().unwrap();
    assert!(matches!(events[0], SdamEvent::TopologyOpening(_)));
    assert!(
        events.iter().any(|e| matches!(e,
            SdamEvent::ServerDescriptionChanged(c)
                if c.new_description.server_type == ServerType::RsPrimary)),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SdamEvent::ServerHeartbeatSucceeded(_))),
        "{events:#?}"
    );
});

both_cores!(direct_connection_is_single, |core| {
    let port = rs0_port();
    let c = client(
        &format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        core,
        None,
    );
    round_trip(&c, &format!("topo_direct_{}", core.name()));
    let t = c.topology();
    assert_eq!(t.topology_type, TopologyType::Single, "{t:#?}");
    let server = t.servers.values().next().unwrap();
    assert_eq!(server.server_type, ServerType::RsPrimary, "{t:#?}");
});

both_cores!(one_dead_and_one_live_seed_connects, |core| {
    let port = rs0_port();
    let dead = free_port();
    let events = Arc::new(Events::default());
    let c = client(
        &format!(
            "mongodb://127.0.0.1:{dead},127.0.0.1:{port}/?replicaSet=rs0&serverSelectionTimeoutMS=5000"
        ),
        core,
        Some(events.clone()),
    );
    round_trip(&c, &format!("topo_dead_{}", core.name()));
    let t = c.topology();
    assert_eq!(
        t.topology_type,
        TopologyType::ReplicaSetWithPrimary,
        "{t:#?}"
    );
    // The primary's member list does not name the dead seed, so SDAM dropped it.
    let dead_addr = ServerAddress {
        host: "127.0.0.1".into(),
        port: dead,
    };
    assert!(!t.servers.contains_key(&dead_addr), "{t:#?}");
    assert!(
        events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, SdamEvent::ServerClosed(c) if c.address == dead_addr)),
        "no ServerClosed for the dead seed"
    );
});

both_cores!(
    selection_timeout_is_honoured_and_names_the_servers,
    |core| {
        let (a, b) = (free_port(), free_port());
        let c = client(
            &format!("mongodb://127.0.0.1:{a},127.0.0.1:{b}/?serverSelectionTimeoutMS=500"),
            core,
            None,
        );
        let started = Instant::now();
        let err = run_on(core, move || {
            c.database("x")
                .run_command(doc! { "ping": 1 })
                .run()
                .unwrap_err()
        });
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(450) && waited < Duration::from_secs(5),
            "waited {waited:?}"
        );
        let ErrorKind::ServerSelection { servers, .. } = &*err.kind else {
            panic!("{err:?}");
        };
        assert_eq!(servers.len(), 2, "{err}");
        for (addr, why) in servers {
            assert!(
                why.contains("refused"),
                "{addr}: {why} (whole error: {err})"
            );
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{a}")) && text.contains(&format!("127.0.0.1:{b}"))
        );
    }
);

/// A loopback port nobody listens on (bound a moment ago, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
