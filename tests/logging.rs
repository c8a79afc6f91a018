//! The driver's `tracing` log: which targets it uses, what a command's entry holds, what it
//! leaves out (a security-sensitive command's body, a document's tail), and that the URI's
//! warnings reach it. A test binary of its own: it installs the process's global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use bson::doc;
use common::mock::{Action, MockServer, hello_reply};
use common::run_on;

/// Everything the subscriber wrote, shared by the tests of this binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log so far, after installing the subscriber on first use: the driver's targets at
/// debug, as `RUST_LOG=may_mongo=debug` would select them.
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        // Documents are cut at 200 characters here (the spec's variable; 1,000 by default).
        // SAFETY: set before any thread of this test binary reads the environment for it.
        unsafe { std::env::set_var("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "200") };
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("may_mongo=debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        captured
    })
}

impl Captured {
    /// The lines that mention `marker`.
    fn lines_with(&self, marker: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| l.contains(marker))
            .map(str::to_string)
            .collect()
    }
}

fn server() -> MockServer {
    MockServer::start(|req, _| match req.command.as_str() {
        "hello" | "isMaster" => Action::Reply(hello_reply()),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    })
}

both_cores!(commands_connections_and_topology_are_logged, |core| {
    let log = log();
    let server = server();
    let marker = format!("marker-{core:?}-{}", server.port);
    let client = server.client(core, "", "appName=logtest&unknownOption=1", |_| {});
    let db = client.database("logdb");
    let m = marker.clone();
    run_on(core, move || {
        db.run_command(doc! { "ping": 1, "note": m.clone() })
            .run()
            .unwrap();
        // A long document: its entry is cut at 200 characters, with "..." after.
        db.run_command(doc! { "ping": 1, "note": m, "long": "x".repeat(5000) })
            .run()
            .unwrap();
        // Security-sensitive: logged without its body.
        db.run_command(doc! { "saslStart": 1, "payload": "secret-payload" })
            .run()
            .unwrap();
    });
    let started = log.lines_with(&marker);
    assert!(
        started.iter().any(|l| l.contains("may_mongo::command")
            && l.contains("Command started")
            && l.contains("command_name=ping")
            && l.contains("database_name=logdb")),
        "{started:#?}"
    );
    let long = started
        .iter()
        .find(|l| l.contains("xxxx"))
        .expect("the long command was logged");
    assert!(long.contains("..."), "{long}");
    assert!(!long.contains(&"x".repeat(300)), "not cut: {long}");

    let port = format!("127.0.0.1:{}", server.port);
    let ours = log.lines_with(&port);
    for (target, message) in [
        ("may_mongo::command", "Command succeeded"),
        ("may_mongo::connection", "ConnectionCheckedOut"),
        ("may_mongo::connection", "ConnectionPoolCreated"),
        ("may_mongo::topology", "Server heartbeat succeeded"),
        ("may_mongo::server_selection", "Server selection succeeded"),
    ] {
        assert!(
            ours.iter()
                .any(|l| l.contains(target) && l.contains(message)),
            "no {message} on {target} for {port}"
        );
    }
    let sasl: Vec<_> = ours
        .iter()
        .filter(|l| l.contains("command_name=saslStart"))
        .collect();
    assert_eq!(sasl.len(), 2, "started and succeeded: {sasl:#?}");
    assert!(
        log.lines_with("secret-payload").is_empty(),
        "a sensitive command's body reached the log"
    );
    // The URI's unknown option is a warning in the log, not a line in a list nobody reads.
    assert!(
        !log.lines_with("unknownoption").is_empty() || !log.lines_with("unknownOption").is_empty(),
        "the URI warning was not logged"
    );
});
