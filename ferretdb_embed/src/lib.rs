//! Real MongoDB-compatible servers for may_mongo's tests and benchmarks: FerretDB v1.24.2 with its SQLite
//! backend, built from the Go module proxy on first use and run as a child process — the default — and
//! mongo-java-server 1.47.0 from Maven Central, the second, independent implementation ([`JavaServer`]).
//!
//! Why FerretDB: no `mongod` can be installed on the project's machines, and the only network is the package
//! registries. FerretDB is a production server written in Go, so the Go module proxy can deliver its source;
//! v1.24.x is the last line with the SQLite backend, which needs no other database process.
//!
//! - [`binary`] finds or builds the `ferretdb` executable (cached under `target/ferretdb/v1.24.2/`).
//! - [`Server`] runs one instance with its own port and data folder; start, stop, kill, restart.
//! - [`JavaServer`] runs one mongo-java-server (in-memory) with its own port.
//! - [`ServerKind`] names the two; `$MAY_MONGO_TEST_SERVER` picks which one [`shared_uri`] starts.
//! - [`shared_uri`] gives every test in a process one server (or `$MONGODB_URI`, when a wrapper such as
//!   `ferretdb-embed with-server` already started one for the whole `cargo test` run).
//!
//! Linux only: children are tied to the life of the test process with `PR_SET_PDEATHSIG`.

mod binary;
mod java;
mod owner;
mod server;
mod wire;

use std::sync::OnceLock;

pub use binary::{binary, cache_dir};
pub use java::{JavaServer, MONGO_JAVA_SERVER_VERSION, java_cache_dir, java_classpath};
pub use server::{
    Auth, DATA_DIR_PREFIX, START_TIMEOUT, STOP_TIMEOUT, Server, ServerOptions, TlsFiles, data_root,
};

/// The Go module that is built.
pub const FERRETDB_MODULE: &str = "github.com/FerretDB/FerretDB";
/// The FerretDB version that is built: the last release line with the SQLite backend.
pub const FERRETDB_VERSION: &str = "v1.24.2";

/// The servers this crate can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// FerretDB v1.24.2 (SQLite): the default.
    FerretDb,
    /// mongo-java-server 1.47.0 (in-memory backend).
    MongoJavaServer,
}

impl ServerKind {
    /// The environment variable that names the test server: `ferretdb` or `mongo-java-server`.
    /// `ferretdb-embed with-server` sets it for the command it runs.
    pub const ENV: &'static str = "MAY_MONGO_TEST_SERVER";

    /// The name used in `$MAY_MONGO_TEST_SERVER`, file names and reports.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::FerretDb => "ferretdb",
            ServerKind::MongoJavaServer => "mongo-java-server",
        }
    }

    /// The kind named `name` (see [`ServerKind::name`]).
    pub fn from_name(name: &str) -> Option<ServerKind> {
        match name {
            "ferretdb" => Some(ServerKind::FerretDb),
            "mongo-java-server" => Some(ServerKind::MongoJavaServer),
            _ => None,
        }
    }

    /// `$MAY_MONGO_TEST_SERVER`, or `None` when unset or empty.
    ///
    /// # Panics
    /// If it names no known server: a typo must not quietly test the wrong server.
    pub fn from_env() -> Option<ServerKind> {
        let name = std::env::var(Self::ENV).ok().filter(|v| !v.is_empty())?;
        Some(Self::from_name(&name).unwrap_or_else(|| {
            panic!(
                "${}={name}: expected ferretdb or mongo-java-server",
                Self::ENV
            )
        }))
    }

    /// The server's name and version, for messages.
    pub fn describe(self) -> String {
        match self {
            ServerKind::FerretDb => format!("FerretDB {FERRETDB_VERSION}"),
            ServerKind::MongoJavaServer => {
                format!("mongo-java-server {MONGO_JAVA_SERVER_VERSION}")
            }
        }
    }
}

/// A started server of either kind, kept alive by whoever holds it.
#[derive(Debug)]
pub enum AnyServer {
    /// A FerretDB process (boxed: it carries its options, the other variant little).
    FerretDb(Box<Server>),
    /// A mongo-java-server process.
    MongoJavaServer(JavaServer),
}

impl AnyServer {
    /// Starts a default server of `kind`.
    pub fn start(kind: ServerKind) -> std::io::Result<AnyServer> {
        Ok(match kind {
            ServerKind::FerretDb => {
                AnyServer::FerretDb(Box::new(Server::start(&ServerOptions::default())?))
            }
            ServerKind::MongoJavaServer => AnyServer::MongoJavaServer(JavaServer::start()?),
        })
    }

    /// `mongodb://127.0.0.1:PORT/`
    pub fn uri(&self) -> String {
        match self {
            AnyServer::FerretDb(s) => s.uri(),
            AnyServer::MongoJavaServer(s) => s.uri(),
        }
    }

    /// The process id, or `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        match self {
            AnyServer::FerretDb(s) => s.pid(),
            AnyServer::MongoJavaServer(s) => s.pid(),
        }
    }

    /// The folder holding its files.
    pub fn data_dir(&self) -> &std::path::Path {
        match self {
            AnyServer::FerretDb(s) => s.data_dir(),
            AnyServer::MongoJavaServer(s) => s.data_dir(),
        }
    }

    /// The log file of the process.
    pub fn log_path(&self) -> std::path::PathBuf {
        match self {
            AnyServer::FerretDb(s) => s.log_path(),
            AnyServer::MongoJavaServer(s) => s.log_path(),
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        match self {
            AnyServer::FerretDb(s) => s.is_running(),
            AnyServer::MongoJavaServer(s) => s.is_running(),
        }
    }

    /// Stops the process.
    pub fn stop(&mut self) {
        match self {
            AnyServer::FerretDb(s) => s.stop(),
            AnyServer::MongoJavaServer(s) => s.stop(),
        }
    }
}

static SHARED: OnceLock<AnyServer> = OnceLock::new();

/// The URI of a server shared by the whole process.
///
/// `$MONGODB_URI` when set and non-empty (then nothing is built or started: the caller, e.g.
/// `scripts/test` via `ferretdb-embed with-server`, owns the server). Otherwise the first call starts one
/// default server of the kind `$MAY_MONGO_TEST_SERVER` names (FerretDB when unset), which lives until the process exits: it sits in a `static`, which is never dropped,
/// so it is killed by `PR_SET_PDEATHSIG` when the process goes away, and an `atexit` hook removes its
/// data folder on a normal exit.
///
/// # Panics
/// If the server cannot be built or started: a test cannot do anything useful without it, and the panic
/// message carries the reason (see [`try_shared_uri`] for the fallible form).
pub fn shared_uri() -> String {
    try_shared_uri()
        .unwrap_or_else(|e| panic!("ferretdb_embed: cannot start the shared FerretDB server: {e}"))
}

/// [`shared_uri`] without the panic.
pub fn try_shared_uri() -> std::io::Result<String> {
    if let Some(uri) = std::env::var("MONGODB_URI").ok().filter(|u| !u.is_empty()) {
        return Ok(uri);
    }
    // Several tests may ask at once; only one server may be started, so serialize the first start.
    static START: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(server) = SHARED.get() {
        return Ok(server.uri());
    }
    let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = SHARED.get() {
        return Ok(server.uri());
    }
    let server = AnyServer::start(ServerKind::from_env().unwrap_or(ServerKind::FerretDb))?;
    let server = SHARED.get_or_init(|| server);
    // SAFETY: registering a plain `extern "C"` function; it only runs at normal process exit.
    unsafe { libc::atexit(cleanup_shared) };
    Ok(server.uri())
}

/// At exit: kill the shared server first (so it cannot recreate files) and remove its data folder.
/// `PR_SET_PDEATHSIG` would kill it anyway a moment later, but by then nobody is left to delete the folder.
extern "C" fn cleanup_shared() {
    if let Some(server) = SHARED.get() {
        if let Some(pid) = server.pid() {
            // SAFETY: plain syscalls on our own child; WNOHANG so exit can never hang here.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                for _ in 0..100 {
                    if libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) != 0 {
                        break;
                    }
                    libc::usleep(20_000);
                }
            }
        }
        let _ = std::fs::remove_dir_all(server.data_dir());
    }
}
