//! One FerretDB child process with its own port and data folder.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::binary::read_tail;
use crate::{owner, wire};

/// How long a start or restart may take until the server answers `hello`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval while waiting for `hello`.
const POLL: Duration = Duration::from_millis(50);
/// How long [`Server::stop`] waits after SIGTERM before it sends SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Prefix of every data folder under [`data_root`]: `may_mongo-ferretdb-<pid>-<counter>`.
pub const DATA_DIR_PREFIX: &str = "may_mongo-ferretdb-";

pub(crate) static COUNTER: AtomicU32 = AtomicU32::new(0);

/// SCRAM credentials created at startup (`--setup-*`), with FerretDB's new authentication enabled.
///
/// Without `--test-enable-new-auth` FerretDB (SQLite) only accepts PLAIN and does not check it, so auth
/// tests would prove nothing; with it, SCRAM-SHA-1/256 are checked against this user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub user: String,
    pub password: String,
    /// The database the user is created in (the authentication source).
    pub db: String,
}

/// PEM files for the TLS listener, which runs on a second port ([`Server::tls_port`]) next to the plain one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle. When set, FerretDB *requires* a client certificate signed by it
    /// (`tls.RequireAndVerifyClientCert`); leave it `None` for server-only TLS.
    pub ca: Option<PathBuf>,
}

/// How to start a server; `Default` is a plain standalone server without auth or TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// `--repl-set-name`: `hello` then reports a one-member replica set (`setName`, `hosts`).
    pub repl_set_name: Option<String>,
    /// `--test-enable-new-auth=true --setup-username --setup-password --setup-database`.
    pub auth: Option<Auth>,
    /// `--listen-tls*` on a second free loopback port.
    pub tls: Option<TlsFiles>,
    /// `--test-batch-size` (FerretDB's default 100): in v1.24.2 this is the server's internal batch size,
    /// notably how many documents one insert writes per backend transaction.
    pub batch_size: Option<u32>,
    /// Appended last, verbatim, so they can add any other flag.
    pub extra_args: Vec<String>,
}

impl ServerOptions {
    /// The full `ferretdb` argv (without the program name) for a server on `127.0.0.1:port` whose SQLite
    /// files live in `sqlite_dir`. `tls_port` is used only when [`ServerOptions::tls`] is set.
    ///
    /// Fixed flags: SQLite handler; `--state-dir=-` and `--debug-addr=-` so nothing is written outside the
    /// data folder and no second port is opened; telemetry off (no network here, and tests must not report
    /// anywhere); `--log-level=warn` keeps the log small. Every value uses `--flag=value` so a value that
    /// starts with `-` cannot be taken for a flag.
    pub fn args(&self, sqlite_dir: &Path, port: u16, tls_port: Option<u16>) -> Vec<String> {
        let mut args = vec![
            "--handler=sqlite".to_string(),
            format!("--sqlite-url={}", sqlite_url(sqlite_dir)),
            format!("--listen-addr=127.0.0.1:{port}"),
            "--state-dir=-".to_string(),
            "--debug-addr=-".to_string(),
            "--telemetry=disable".to_string(),
            "--log-level=warn".to_string(),
        ];
        if let Some(name) = &self.repl_set_name {
            args.push(format!("--repl-set-name={name}"));
        }
        if let Some(auth) = &self.auth {
            args.push("--test-enable-new-auth=true".to_string());
            args.push(format!("--setup-username={}", auth.user));
            args.push(format!("--setup-password={}", auth.password));
            args.push(format!("--setup-database={}", auth.db));
        }
        if let Some(tls) = &self.tls {
            if let Some(tls_port) = tls_port {
                args.push(format!("--listen-tls=127.0.0.1:{tls_port}"));
            }
            args.push(format!("--listen-tls-cert-file={}", tls.cert.display()));
            args.push(format!("--listen-tls-key-file={}", tls.key.display()));
            if let Some(ca) = &tls.ca {
                args.push(format!("--listen-tls-ca-file={}", ca.display()));
            }
        }
        if let Some(n) = self.batch_size {
            args.push(format!("--test-batch-size={n}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// `file:DIR/` with the few characters that would change the URL's meaning escaped. FerretDB treats the
/// URL's path as a directory, hence the trailing slash.
fn sqlite_url(dir: &Path) -> String {
    let mut url = String::from("file:");
    for c in dir.to_string_lossy().chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            ' ' => url.push_str("%20"),
            c => url.push(c),
        }
    }
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// A running FerretDB (SQLite backend) on `127.0.0.1`, in its own fresh data folder.
///
/// Dropping it stops the process and deletes the data folder. The process is also killed if the process
/// that started it dies, however it dies (see the `owner` module: `PR_SET_PDEATHSIG` from a dedicated
/// thread).
#[derive(Debug)]
pub struct Server {
    opts: ServerOptions,
    binary: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Builds the binary if needed ([`crate::binary`]), picks a free port, creates a fresh data folder,
    /// starts FerretDB and waits (up to [`START_TIMEOUT`]) until it answers `hello` with `ok: 1`.
    ///
    /// The port is picked by binding `127.0.0.1:0` and closing the listener, so another process could grab
    /// it before FerretDB binds it; if FerretDB then fails with "address already in use", a new port is
    /// picked (up to three times).
    pub fn start(opts: &ServerOptions) -> io::Result<Server> {
        let binary = crate::binary()?;
        cleanup_stale_data_dirs();
        let data_dir = data_root().join(format!(
            "{DATA_DIR_PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if data_dir.exists() {
            // Left over by an earlier process with the same pid.
            fs::remove_dir_all(&data_dir)?;
        }
        fs::create_dir_all(data_dir.join("sqlite")).map_err(|e| {
            io::Error::new(e.kind(), format!("creating {}: {e}", data_dir.display()))
        })?;
        let mut server = Server {
            opts: opts.clone(),
            binary,
            port: 0,
            tls_port: None,
            data_dir,
            child: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port()?;
            server.tls_port = if opts.tls.is_some() {
                Some(free_port()?)
            } else {
                None
            };
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(e) if attempt < 3 && e.to_string().contains("address already in use") => {
                    continue;
                }
                // `server` drops here: its data folder is removed.
                Err(e) => return Err(e),
            }
        }
    }

    /// `mongodb://127.0.0.1:PORT/`
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// The plain (non-TLS) port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TLS port on 127.0.0.1, when started with [`ServerOptions::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The FerretDB process id, or `None` while stopped or killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The folder holding this server's files: `sqlite/` (the databases) and `ferretdb.log`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The log file that receives FerretDB's stdout and stderr (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("ferretdb.log")
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// Whether the process is running (started and not yet exited).
    pub fn is_running(&mut self) -> bool {
        child_running(&mut self.child)
    }

    /// Graceful stop: SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. No-op when already stopped.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    /// Abrupt stop: SIGKILL, no graceful shutdown (it only waits, briefly, to reap the process). For crash
    /// tests; [`Server::restart`] brings it back on the same port with the same data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_timeout(&mut child, STOP_TIMEOUT);
        }
    }

    /// Stops the server (gracefully, if it still runs) and starts it again on the same port with the same
    /// data folder, waiting until it answers `hello`. If the port is briefly still taken, it keeps trying
    /// until [`START_TIMEOUT`].
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let mut log = self.open_log()?;
        let _ = writeln!(log, "--- ferretdb-embed: restart ---");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return Ok(()),
                Err(e)
                    if Instant::now() < deadline
                        && e.to_string().contains("address already in use") =>
                {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn open_log(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
    }

    /// Spawns the process (from the owner thread) and waits for `hello`.
    fn launch(&mut self) -> io::Result<()> {
        let log = self.open_log()?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(
            self.opts
                .args(&self.data_dir.join("sqlite"), self.port, self.tls_port),
        )
        .current_dir(&self.data_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        // Its own process group: a Ctrl-C in the terminal reaches the test process (or ferretdb-embed), which
        // then shuts the server down in order, instead of the server dying under a still-running test.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = owner::spawn(cmd).map_err(|e| {
            io::Error::new(e.kind(), format!("starting {}: {e}", self.binary.display()))
        })?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                Err(e)
            }
        }
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let log = self.log_path();
        wait_ready(&mut self.child, "ferretdb", self.port, "hello", &log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.data_dir);
    }
}

/// Waits (up to [`START_TIMEOUT`]) until the server `what` on `127.0.0.1:port` answers
/// `greeting` (`hello`, or `isMaster`) with `ok: 1`. A child that exits meanwhile, or a
/// server that does not answer in time, is an error carrying the tail of its log.
pub(crate) fn wait_ready(
    child: &mut Option<Child>,
    what: &str,
    port: u16,
    greeting: &str,
    log: &Path,
) -> io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let start = Instant::now();
    loop {
        let running = child.as_mut().expect("launch sets the child");
        if let Some(status) = running.try_wait()? {
            *child = None;
            return Err(io::Error::other(format!(
                "{what} on port {port} exited during startup ({status}); log tail ({}):\n{}",
                log.display(),
                read_tail(log, 4000)
            )));
        }
        let last_err = match wire::greet(addr, greeting, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if start.elapsed() > START_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{what} on port {port} did not answer {greeting} within {} s (last error: {last_err}); log tail ({}):\n{}",
                    START_TIMEOUT.as_secs(),
                    log.display(),
                    read_tail(log, 4000)
                ),
            ));
        }
        thread::sleep(POLL);
    }
}

/// Whether the child (if any) is still running.
pub(crate) fn child_running(child: &mut Option<Child>) -> bool {
    match child {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => false,
    }
}

/// Stops the child, if any: SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
pub(crate) fn stop_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take()
        && let Ok(None) = child.try_wait()
    {
        // SAFETY: plain syscall on our own, not yet reaped, child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        if wait_timeout(&mut child, STOP_TIMEOUT).is_none() {
            let _ = child.kill();
            let _ = wait_timeout(&mut child, STOP_TIMEOUT);
        }
    }
}

pub(crate) fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits up to `timeout` for the child to exit; `None` if it is still running.
pub(crate) fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < timeout => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// Removes data folders of processes that no longer exist (killed test runs never ran their `Drop`).
/// Runs once per process.
/// Where data folders go: `$FERRETDB_DATA_ROOT` if set; else `/dev/shm` when it is a
/// writable folder; else `std::env::temp_dir()`.
///
/// Why memory: SQLite syncs every commit to disk. Measured here, sequential `insert_one`s ran
/// ~1,300/s with the data on disk and ~3,300/s on tmpfs; tests and benchmarks are about the
/// driver, not this machine's fsync latency. The data is throwaway either way.
pub fn data_root() -> PathBuf {
    if let Some(root) = std::env::var_os("FERRETDB_DATA_ROOT") {
        return PathBuf::from(root);
    }
    let shm = Path::new("/dev/shm");
    let writable = fs::metadata(shm)
        .map(|m| m.is_dir() && !m.permissions().readonly())
        .unwrap_or(false);
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub(crate) fn cleanup_stale_data_dirs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir(data_root()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DATA_DIR_PREFIX)) else {
                continue;
            };
            let Some(pid) = rest
                .split('-')
                .next()
                .and_then(|p| p.parse::<libc::pid_t>().ok())
            else {
                continue;
            };
            if pid <= 0 || pid as u32 == std::process::id() {
                continue;
            }
            // SAFETY: signal 0 only checks whether the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
            if gone {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_escapes_and_ends_with_slash() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/a b?#%")),
            "file:/tmp/a%20b%3F%23%25/"
        );
        assert_eq!(sqlite_url(Path::new("/tmp/x/")), "file:/tmp/x/");
    }
}
