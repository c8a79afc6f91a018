//! Authentication against a real FerretDB started with SCRAM enabled
//! (`--test-enable-new-auth=true` and a setup user). This file always starts its own server:
//! the shared test server runs without authentication.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bson::{Document, doc};
use common::run_on;
use ferretdb_embed::{Auth, Server, ServerOptions};
use may_mongo::{Client, ClientOptions, CmapEvent, Core, ErrorKind, EventHandler};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pässword";
const SOURCE: &str = "authdb";

/// One auth-enabled FerretDB for this file's tests.
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        common::init();
        Server::start(&ServerOptions {
            auth: Some(Auth {
                user: USER.into(),
                password: PASSWORD.into(),
                db: SOURCE.into(),
            }),
            ..ServerOptions::default()
        })
        .expect("start FerretDB with authentication")
    })
}

/// A client of `core` with `userinfo` and `query` in its URI.
fn client(
    core: Core,
    userinfo: &str,
    query: &str,
    tweak: impl FnOnce(&mut ClientOptions),
) -> Client {
    let port = server().port();
    let uri = format!("mongodb://{userinfo}@127.0.0.1:{port}/?{query}");
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = core;
    tweak(&mut opts);
    Client::with_options(opts).unwrap()
}

fn userinfo(user: &str, password: &str) -> String {
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('@', "%40")
            .replace(':', "%3A")
    };
    format!("{}:{}", enc(user), enc(password))
}

/// Writes and reads back a document: only an authenticated connection may.
fn round_trip(client: &Client, core: Core, tag: &str) -> may_mongo::Result<Option<Document>> {
    let coll = client
        .database("auth_tests")
        .collection::<Document>(&format!("{tag}_{}", core.name()));
    let tag = tag.to_string();
    run_on(core, move || {
        coll.insert_one(doc! { "tag": &tag }).run()?;
        coll.find_one(doc! { "tag": &tag }).run()
    })
}

both_cores!(the_right_credentials_work_with_each_mechanism, |core| {
    // The premise: this server refuses a client without credentials.
    let port = server().port();
    let mut anonymous = ClientOptions::parse(format!("mongodb://127.0.0.1:{port}/"))
        .run()
        .unwrap();
    anonymous.core = core;
    let anonymous = Client::with_options(anonymous).unwrap();
    let refused = round_trip(&anonymous, core, "anonymous").unwrap_err();
    println!("without credentials: {refused}");
    assert!(
        matches!(&*refused.kind, ErrorKind::Command(_)),
        "{refused:?}"
    );
    for (mechanism, query) in [
        (
            "SCRAM-SHA-256",
            "authSource=authdb&authMechanism=SCRAM-SHA-256",
        ),
        ("SCRAM-SHA-1", "authSource=authdb&authMechanism=SCRAM-SHA-1"),
        ("negotiated", "authSource=authdb"),
    ] {
        let c = client(core, &userinfo(USER, PASSWORD), query, |_| {});
        let found = round_trip(&c, core, "ok").unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        assert!(found.is_some(), "{mechanism}");
        assert!(c.authentications() >= 1, "{mechanism}");
    }
});

both_cores!(plain_completes_its_exchange, |core| {
    // FerretDB with SCRAM enabled refuses PLAIN ("Unsupported authentication mechanism"), and
    // without it accepts PLAIN unchecked: so this shows the exchange completing on the shared
    // server, and `tests/auth_mock.rs` checks what PLAIN sends.
    let uri = common::uri().replacen("mongodb://", "mongodb://alice:pw@", 1);
    let sep = if uri.contains('?') { '&' } else { '?' };
    let mut opts = ClientOptions::parse(format!("{uri}{sep}authMechanism=PLAIN"))
        .run()
        .unwrap();
    opts.core = core;
    let c = Client::with_options(opts).unwrap();
    assert!(round_trip(&c, core, "plain").unwrap().is_some());
    assert!(c.authentications() >= 1);
});

both_cores!(a_credential_set_in_code_works, |core| {
    let c = client(core, "x:y", "", |o| {
        o.credential = Some(may_mongo::Credential {
            username: Some(USER.into()),
            password: Some(PASSWORD.into()),
            source: SOURCE.into(),
            mechanism: None,
            mechanism_properties: None,
        });
    });
    assert!(round_trip(&c, core, "code").unwrap().is_some());
});

both_cores!(
    bad_credentials_fail_fast_with_an_authentication_error,
    |core| {
        for (case, user, password, query) in [
            ("wrong password", USER, "not-it-at-all", "authSource=authdb"),
            ("unknown user", "mallory", PASSWORD, "authSource=authdb"),
            ("wrong authSource", USER, PASSWORD, "authSource=otherdb"),
            (
                "wrong password, SCRAM-SHA-1",
                USER,
                "not-it-at-all",
                "authSource=authdb&authMechanism=SCRAM-SHA-1",
            ),
        ] {
            let c = client(core, &userinfo(user, password), query, |_| {});
            let started = Instant::now();
            let err = round_trip(&c, core, "bad").unwrap_err();
            let took = started.elapsed();
            let ErrorKind::Authentication {
                mechanism,
                user: named,
                ..
            } = &*err.kind
            else {
                panic!("{case}: expected an authentication error, got {err:?}");
            };
            assert!(mechanism.starts_with("SCRAM-SHA-"), "{case}: {mechanism}");
            assert_eq!(named, user, "{case}");
            let shown = format!("{err} / {err:?}");
            assert!(shown.contains(user), "{case}: {shown}");
            assert!(!shown.contains(password), "{case}: password shown: {shown}");
            // Fast: the refusal itself, not a wait for server selection (30 s by default).
            assert!(took < Duration::from_secs(10), "{case}: took {took:?}");
            println!("{case}: {err} ({took:?})");
            // Nothing that skipped authentication is left in the pool.
            assert_eq!(c.pool_stats().idle, 0, "{case}");
            assert_eq!(c.authentications(), 0, "{case}");
        }
    }
);

/// Counts connections made ready (after their handshake and authentication).
#[derive(Default)]
struct Ready(AtomicUsize, AtomicUsize);

impl Ready {
    fn record(&self, event: &CmapEvent) {
        match event {
            CmapEvent::ConnectionCreated(_) => self.0.fetch_add(1, Ordering::SeqCst),
            CmapEvent::ConnectionReady(_) => self.1.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
}

#[test]
fn a_thousand_coroutines_authenticate_each_connection_exactly_once() {
    let events = Arc::new(Ready::default());
    let c = client(
        Core::Coroutine,
        &userinfo(USER, PASSWORD),
        "authSource=authdb",
        |o| {
            let events = events.clone();
            o.cmap_event_handler = Some(EventHandler::callback(move |e| events.record(&e)));
        },
    );
    let coll = c.database("auth_tests").collection::<Document>("thousand");
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let coll = coll.clone();
            may::go!(move || {
                coll.insert_one(doc! { "i": i }).run()?;
                coll.find_one(doc! { "i": i }).run()
            })
        })
        .collect();
    let mut found = 0;
    for h in handles {
        if h.join().unwrap().unwrap().is_some() {
            found += 1;
        }
    }
    assert_eq!(found, 1000);
    let (created, ready) = (
        events.0.load(Ordering::SeqCst),
        events.1.load(Ordering::SeqCst),
    );
    println!(
        "1,000 coroutines: {created} connections created, {ready} ready, {} authentications",
        c.authentications()
    );
    assert!(
        ready > 1,
        "the coroutines ran concurrently on several connections"
    );
    assert_eq!(c.authentications() as usize, ready, "once per connection");
    assert_eq!(created, ready, "no connection was left unauthenticated");
}

#[test]
fn an_unsupported_mechanism_is_refused_at_client_creation() {
    let port = server().port();
    let uri = format!("mongodb://u:p@127.0.0.1:{port}/?authMechanism=GSSAPI");
    let err = Client::with_options(ClientOptions::parse(&uri).run().unwrap()).unwrap_err();
    assert!(err.to_string().contains("GSSAPI"), "{err}");
}
