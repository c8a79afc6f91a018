//! A real MongoDB-compatible server for may_mongo's tests and benchmarks: FerretDB v1.24.2 with its SQLite
//! backend, built from the Go module proxy on first use and run as a child process.
//!
//! Why FerretDB: no `mongod` can be installed on the project's machines, and the only network is the package
//! registries. FerretDB is a production server written in Go, so the Go module proxy can deliver its source;
//! v1.24.x is the last line with the SQLite backend, which needs no other database process.
//!
//! - [`binary`] finds or builds the `ferretdb` executable (cached under `target/ferretdb/v1.24.2/`).
//! - [`Server`] runs one instance with its own port and data folder; start, stop, kill, restart.
//! - [`shared_uri`] gives every test in a process one server (or `$MONGODB_URI`, when a wrapper such as
//!   `ferretdb-embed with-server` already started one for the whole `cargo test` run).
//!
//! Linux only: children are tied to the life of the test process with `PR_SET_PDEATHSIG`.

mod binary;
mod owner;
mod server;
mod wire;

use std::sync::OnceLock;

pub use binary::{binary, cache_dir};
pub use server::{
    Auth, DATA_DIR_PREFIX, START_TIMEOUT, STOP_TIMEOUT, Server, ServerOptions, TlsFiles, data_root,
};

/// The Go module that is built.
pub const FERRETDB_MODULE: &str = "github.com/FerretDB/FerretDB";
/// The FerretDB version that is built: the last release line with the SQLite backend.
pub const FERRETDB_VERSION: &str = "v1.24.2";

static SHARED: OnceLock<Server> = OnceLock::new();

/// The URI of a server shared by the whole process.
///
/// `$MONGODB_URI` when set and non-empty (then nothing is built or started: the caller, e.g.
/// `scripts/test` via `ferretdb-embed with-server`, owns the server). Otherwise the first call starts one
/// default [`Server`], which lives until the process exits: it sits in a `static`, which is never dropped,
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
    let server = Server::start(&ServerOptions::default())?;
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
