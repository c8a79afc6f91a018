//! Runs the real FerretDB binary (built on demand by `ferretdb_embed::binary()`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bson::{Bson, Document, doc};
use ferretdb_embed::{Auth, Server, ServerOptions, TlsFiles};
use may_mongo_protocol::{
    HEADER_LEN, Header, Limits, MsgFlags, OpMsg, OpMsgBuilder, next_request_id, to_document,
};

// ---- a raw OP_MSG client over the sans-IO wire codec: this crate must not depend on the driver ----

/// Runs one command (body must carry `$db`) on a fresh connection, returns the reply body.
fn run_command(port: u16, body: Document) -> Document {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let limits = Limits::default();
    let request_id = next_request_id();
    let mut msg = Vec::new();
    let mut builder = OpMsgBuilder::new(&mut msg, MsgFlags::default(), limits);
    builder.body(&body).expect("serialize command");
    builder.finish(request_id, 0).expect("frame command");
    stream.write_all(&msg).expect("send");

    let mut reply = vec![0u8; HEADER_LEN];
    stream.read_exact(&mut reply).expect("read reply header");
    let header = Header::parse(&reply).expect("reply header");
    header.check_reply_to(request_id).expect("reply responseTo");
    reply.resize(header.checked_len(&limits).expect("reply length"), 0);
    stream
        .read_exact(&mut reply[HEADER_LEN..])
        .expect("read reply");
    let reply = OpMsg::parse_message(&reply).expect("parse reply");
    to_document(reply.body).expect("reply body")
}

fn ok(reply: &Document) -> bool {
    match reply.get("ok") {
        Some(Bson::Double(v)) => *v == 1.0,
        Some(Bson::Int32(v)) => *v == 1,
        Some(Bson::Int64(v)) => *v == 1,
        _ => false,
    }
}

fn hello(port: u16) -> Document {
    let reply = run_command(port, doc! { "hello": 1, "$db": "admin" });
    assert!(ok(&reply), "hello failed: {reply}");
    reply
}

fn port_closed(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(1),
    )
    .is_err()
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

fn insert_one(port: u16, db: &str, coll: &str, d: Document) {
    let reply = run_command(port, doc! { "insert": coll, "documents": [d], "$db": db });
    assert!(ok(&reply), "insert failed: {reply}");
    assert_eq!(
        reply.get("n"),
        Some(&Bson::Int32(1)),
        "insert reply: {reply}"
    );
}

fn find_all(port: u16, db: &str, coll: &str) -> Vec<Document> {
    let reply = run_command(port, doc! { "find": coll, "filter": {}, "$db": db });
    assert!(ok(&reply), "find failed: {reply}");
    let cursor = reply.get_document("cursor").expect("cursor");
    cursor
        .get_array("firstBatch")
        .expect("firstBatch")
        .iter()
        .map(|d| d.as_document().expect("document").clone())
        .collect()
}

// ---- tests ----

#[test]
fn argv_builder_maps_every_option() {
    let dir = Path::new("/tmp/data dir/sqlite");
    let plain = ServerOptions::default().args(dir, 27017, None);
    assert_eq!(
        plain,
        [
            "--handler=sqlite",
            "--sqlite-url=file:/tmp/data%20dir/sqlite/",
            "--listen-addr=127.0.0.1:27017",
            "--state-dir=-",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=warn",
        ]
    );

    let opts = ServerOptions {
        repl_set_name: Some("rs0".into()),
        auth: Some(Auth {
            user: "u".into(),
            password: "-p w".into(),
            db: "admin".into(),
        }),
        tls: Some(TlsFiles {
            cert: "/c/cert.pem".into(),
            key: "/c/key.pem".into(),
            ca: Some("/c/ca.pem".into()),
        }),
        batch_size: Some(7),
        extra_args: vec!["--log-level=debug".into()],
    };
    let args = opts.args(dir, 1000, Some(1001));
    let mut fixed = plain.clone();
    fixed[2] = "--listen-addr=127.0.0.1:1000".into();
    assert_eq!(args[..7], fixed[..]);
    assert_eq!(
        &args[7..],
        [
            "--repl-set-name=rs0",
            "--test-enable-new-auth=true",
            "--setup-username=u",
            "--setup-password=-p w",
            "--setup-database=admin",
            "--listen-tls=127.0.0.1:1001",
            "--listen-tls-cert-file=/c/cert.pem",
            "--listen-tls-key-file=/c/key.pem",
            "--listen-tls-ca-file=/c/ca.pem",
            "--test-batch-size=7",
            "--log-level=debug",
        ]
    );

    // Server-only TLS: no CA flag (a CA makes FerretDB require client certificates).
    let tls_only = ServerOptions {
        tls: Some(TlsFiles {
            cert: "c".into(),
            key: "k".into(),
            ca: None,
        }),
        ..Default::default()
    };
    let args = tls_only.args(dir, 1, Some(2));
    assert!(args.contains(&"--listen-tls=127.0.0.1:2".to_string()));
    assert!(!args.iter().any(|a| a.starts_with("--listen-tls-ca-file")));
}

#[test]
fn start_answers_hello_and_stop_closes_port() {
    let mut server = Server::start(&ServerOptions::default()).expect("start");
    assert_eq!(
        server.uri(),
        format!("mongodb://127.0.0.1:{}/", server.port())
    );
    assert_eq!(server.tls_port(), None);
    assert!(server.pid().is_some());
    assert!(server.data_dir().is_dir());
    let reply = hello(server.port());
    assert_eq!(
        reply.get_bool("isWritablePrimary").ok(),
        Some(true),
        "{reply}"
    );

    server.stop();
    assert_eq!(server.pid(), None);
    assert!(
        port_closed(server.port()),
        "port {} still open after stop",
        server.port()
    );

    let data_dir = server.data_dir().to_path_buf();
    drop(server);
    assert!(
        !data_dir.exists(),
        "data folder {} not removed",
        data_dir.display()
    );
}

#[test]
fn restart_keeps_data_on_same_port() {
    let mut server = Server::start(&ServerOptions::default()).expect("start");
    let (port, dir, pid) = (server.port(), server.data_dir().to_path_buf(), server.pid());
    insert_one(
        port,
        "embedtest",
        "things",
        doc! { "_id": 1, "name": "kept across restart" },
    );

    server.restart().expect("restart");
    assert_eq!(server.port(), port);
    assert_eq!(server.data_dir(), dir);
    assert_ne!(server.pid(), pid);
    assert_eq!(
        find_all(port, "embedtest", "things"),
        [doc! { "_id": 1, "name": "kept across restart" }]
    );

    // Crash (SIGKILL) and restart: acknowledged writes survive too.
    insert_one(
        port,
        "embedtest",
        "things",
        doc! { "_id": 2, "name": "kept across kill" },
    );
    server.kill();
    assert_eq!(server.pid(), None);
    assert!(
        wait_until(Duration::from_secs(5), || port_closed(port)),
        "port still open after kill"
    );
    server.restart().expect("restart after kill");
    assert_eq!(find_all(port, "embedtest", "things").len(), 2);
}

#[test]
fn two_servers_at_once_get_different_ports() {
    let a = Server::start(&ServerOptions::default()).expect("start a");
    let b = Server::start(&ServerOptions::default()).expect("start b");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    hello(a.port());
    hello(b.port());
    // Separate data: a write on one is not visible on the other.
    insert_one(a.port(), "embedtest", "only_a", doc! { "_id": 1 });
    assert!(find_all(b.port(), "embedtest", "only_a").is_empty());
}

/// The server must outlive the (short-lived) thread that asked for it: PDEATHSIG is tied to the forking
/// thread, which is why every spawn goes through the long-lived owner thread.
#[test]
fn server_survives_the_thread_that_started_it() {
    let server = std::thread::spawn(|| Server::start(&ServerOptions::default()).expect("start"))
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    hello(server.port());
}

#[test]
fn early_exit_reports_the_log() {
    let opts = ServerOptions {
        extra_args: vec!["--no-such-flag".into()],
        ..Default::default()
    };
    let err = Server::start(&opts).expect_err("an unknown flag must make ferretdb exit");
    let msg = err.to_string();
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(msg.contains("no-such-flag"), "log tail missing from: {msg}");
}

#[test]
fn repl_set_name_is_reported_by_hello() {
    let server = Server::start(&ServerOptions {
        repl_set_name: Some("rs0".into()),
        ..Default::default()
    })
    .expect("start");
    let reply = hello(server.port());
    assert_eq!(reply.get_str("setName").ok(), Some("rs0"), "{reply}");
}

#[test]
fn shared_uri_is_stable_and_answers() {
    let uri = ferretdb_embed::shared_uri();
    assert_eq!(ferretdb_embed::shared_uri(), uri);
    assert!(uri.starts_with("mongodb://"), "{uri}");
    // Only a plain single-host URI (ours, or a simple $MONGODB_URI) is probed.
    let host = uri["mongodb://".len()..]
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    if let Some(port) = host
        .strip_prefix("127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        hello(port);
    }
}

/// The server dies with the process that owns it, even on SIGKILL (no Drop, no atexit).
#[test]
fn server_dies_with_its_owner_process() {
    let mut owner = Command::new(env!("CARGO_BIN_EXE_ferretdb-embed"))
        .arg("serve")
        .env_remove("MONGODB_URI")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferretdb-embed serve");
    let stdout = owner.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("serve printed no URI");
    let port: u16 = line
        .trim()
        .strip_prefix("mongodb://127.0.0.1:")
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("unexpected serve output {line:?}"));
    hello(port);

    let owner_pid = owner.id();
    owner.kill().unwrap(); // SIGKILL
    owner.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || port_closed(port)),
        "FerretDB on port {port} outlived its owner"
    );
    // Nobody ran the owner's cleanup; remove its data folder ourselves.
    let prefix = format!("{}{owner_pid}-", ferretdb_embed::DATA_DIR_PREFIX);
    for entry in std::fs::read_dir(ferretdb_embed::data_root())
        .unwrap()
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[test]
fn with_server_sets_uri_and_passes_exit_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferretdb-embed"))
        .args([
            "with-server",
            "--",
            "sh",
            "-c",
            "echo \"$MONGODB_URI\"; grep SigIgn /proc/self/status; exit 3",
        ])
        .env_remove("MONGODB_URI")
        .output()
        .expect("run with-server");
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let uri = lines.next().unwrap_or_default().trim().to_string();
    // The command must not inherit an ignored SIGINT: Ctrl-C must still stop `cargo test`.
    let ignored = lines
        .next()
        .and_then(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
    const SIGINT: u32 = 2; // Linux
    assert_eq!(
        ignored & (1 << (SIGINT - 1)),
        0,
        "SIGINT is ignored in the command"
    );
    assert!(uri.starts_with("mongodb://127.0.0.1:"), "stdout: {uri:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "ferretdb-embed: FerretDB v1.24.2 listening on {uri}"
        )),
        "stderr: {stderr}"
    );
    // The server is gone once the command is done.
    let port: u16 = uri["mongodb://127.0.0.1:".len()..]
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert!(port_closed(port));

    // An existing MONGODB_URI is passed through untouched and nothing is started.
    let out = Command::new(env!("CARGO_BIN_EXE_ferretdb-embed"))
        .args(["with-server", "--", "sh", "-c", "echo \"$MONGODB_URI\""])
        .env("MONGODB_URI", "mongodb://example.invalid:1/")
        .output()
        .expect("run with-server");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mongodb://example.invalid:1/"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("listening"));
}
