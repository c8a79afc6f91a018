//! `ferretdb-embed`: build FerretDB, or run a command (usually `cargo test`) against one shared server.
//!
//! ```text
//! ferretdb-embed build                   build (if needed) and print the binary's path
//! ferretdb-embed with-server [--server KIND] -- CMD ...
//!                                        run CMD with MONGODB_URI pointing at a fresh server
//! ferretdb-embed serve [--server KIND]   run a server until Ctrl-C / SIGTERM
//! ```
//!
//! KIND is `ferretdb` (the default) or `mongo-java-server`. `with-server` also sets
//! `MAY_MONGO_TEST_SERVER=KIND` for CMD, so that tests know which server's known failures apply.
//!
//! `with-server` is how a whole `cargo test --workspace` run shares one server: every test binary's
//! `ferretdb_embed::shared_uri()` sees `MONGODB_URI` and starts nothing.

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use ferretdb_embed::{AnyServer, ServerKind};

const USAGE: &str = "usage:
  ferretdb-embed build                   build FerretDB (if needed) and print the binary's path
  ferretdb-embed with-server [--server KIND] -- CMD ...
                                         run CMD with MONGODB_URI set to a fresh server
                                         (if MONGODB_URI is already set, just run CMD)
  ferretdb-embed serve [--server KIND]   start a server, print its URI, run until Ctrl-C / SIGTERM
KIND: ferretdb (default) or mongo-java-server";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--server KIND` right after the subcommand.
    let mut kind = ServerKind::FerretDb;
    if args.get(1).is_some_and(|a| a == "--server") {
        match args.get(2).and_then(|k| ServerKind::from_name(k)) {
            Some(k) => kind = k,
            None => {
                eprintln!("ferretdb-embed: --server needs ferretdb or mongo-java-server\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        args.drain(1..3);
    }
    match args.first().map(String::as_str) {
        Some("build") if args.len() == 1 => build(),
        Some("with-server") => {
            let cmd = match args.get(1).map(String::as_str) {
                Some("--") => &args[2..],
                _ => &args[1..],
            };
            if cmd.is_empty() {
                eprintln!("ferretdb-embed: with-server needs a command\n{USAGE}");
                return ExitCode::from(2);
            }
            with_server(kind, cmd)
        }
        Some("serve") if args.len() == 1 => serve(kind),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn build() -> ExitCode {
    match ferretdb_embed::binary() {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferretdb-embed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pid of the command run by `with-server`, for forwarding SIGTERM/SIGHUP to it.
static CHILD_PID: AtomicI32 = AtomicI32::new(0);
/// Set by SIGINT/SIGTERM in `serve`.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

extern "C" fn ignore_signal(_sig: libc::c_int) {}

extern "C" fn request_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs `handler` for `sig`. Caught (not ignored) signals are reset to their default in any program
/// we exec, which is what `with-server` needs.
fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: the handlers only touch atomics and call async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

fn with_server(kind: ServerKind, cmd: &[String]) -> ExitCode {
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);

    // Keep a server reference alive until CMD is done; dropped (stopped, data removed) afterwards.
    let mut server = None;
    if std::env::var("MONGODB_URI").is_ok_and(|u| !u.is_empty()) {
        // Someone else owns the server: environment unchanged.
    } else {
        // FerretDB is built whatever the server: tests that need options of their own (auth,
        // TLS, restarts) start FerretDB servers of their own from this binary.
        let bin = match ferretdb_embed::binary() {
            Ok(bin) => bin,
            Err(e) => {
                eprintln!("ferretdb-embed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let s = match AnyServer::start(kind) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ferretdb-embed: cannot start {}: {e}", kind.describe());
                return ExitCode::FAILURE;
            }
        };
        eprintln!(
            "ferretdb-embed: {} listening on {}",
            kind.describe(),
            s.uri()
        );
        command.env("MONGODB_URI", s.uri());
        command.env(ServerKind::ENV, kind.name());
        // Tests that start servers of their own (other options) then reuse this binary, never rebuild.
        if std::env::var_os("FERRETDB_BIN").is_none_or(|v| v.is_empty()) {
            command.env("FERRETDB_BIN", bin);
        }
        server = Some(s);
    }

    // Ctrl-C reaches CMD (same process group) directly; this process must survive it so that it can stop
    // the server and delete its data after CMD exits. SIGTERM/SIGHUP sent to this process are passed on.
    // A no-op handler rather than SIG_IGN: ignored signals stay ignored across exec, so CMD would inherit
    // an unkillable Ctrl-C; caught signals are reset to their default in CMD.
    catch(libc::SIGINT, ignore_signal);
    catch(libc::SIGQUIT, ignore_signal);
    catch(libc::SIGTERM, forward_signal);
    catch(libc::SIGHUP, forward_signal);

    let code = match command.spawn() {
        Ok(mut child) => {
            CHILD_PID.store(child.id() as i32, Ordering::SeqCst);
            match child.wait() {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    match (status.code(), status.signal()) {
                        (Some(code), _) => code,
                        (None, Some(sig)) => 128 + sig,
                        _ => 1,
                    }
                }
                Err(e) => {
                    eprintln!("ferretdb-embed: waiting for {}: {e}", cmd[0]);
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("ferretdb-embed: cannot run {}: {e}", cmd[0]);
            127
        }
    };
    drop(server);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn serve(kind: ServerKind) -> ExitCode {
    catch(libc::SIGINT, request_stop);
    catch(libc::SIGTERM, request_stop);
    let mut server = match AnyServer::start(kind) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferretdb-embed: cannot start {}: {e}", kind.describe());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "ferretdb-embed: {} listening on {} (data in {}); Ctrl-C to stop",
        kind.describe(),
        server.uri(),
        server.data_dir().display()
    );
    println!("{}", server.uri());
    while !STOP.load(Ordering::SeqCst) {
        if !server.is_running() {
            let log = std::fs::read(server.log_path()).unwrap_or_default();
            let log = String::from_utf8_lossy(&log[log.len().saturating_sub(4000)..]).into_owned();
            eprintln!(
                "ferretdb-embed: {} exited unexpectedly; log tail:\n{log}",
                kind.describe()
            );
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("ferretdb-embed: stopping");
    server.stop();
    ExitCode::SUCCESS
}
