//! The "ferretdb-owner" thread: every FerretDB child is forked from it.
//!
//! Children are started with `PR_SET_PDEATHSIG = SIGKILL` so that a test process that dies (panic=abort,
//! SIGKILL, a timeout in CI) never leaves a server behind. But Linux sends that signal when the *thread*
//! that forked the child exits, not when the process exits. Cargo's test harness runs every test on its own
//! short-lived thread, so a server forked directly from a test would be killed the moment that test
//! returned, even if a `static` or another thread still owns it (the shared server of
//! [`crate::shared_uri`] is exactly that case). Forking from one dedicated thread that lives as long as the
//! process gives the intended meaning: the server dies with the process, and only then.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

struct Request {
    cmd: Command,
    reply: Sender<io::Result<Child>>,
}

static OWNER: OnceLock<Sender<Request>> = OnceLock::new();

/// Spawns `cmd` from the owner thread, with `PR_SET_PDEATHSIG = SIGKILL` set in the child.
pub(crate) fn spawn(mut cmd: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;

    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe syscalls
    // (prctl, getppid) and builds an io::Error from a raw errno (no allocation).
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then no signal would ever come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }

    let owner = OWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("ferretdb-owner".into())
            .spawn(move || {
                // Never returns while the process lives: `OWNER` holds a sender forever.
                for Request { mut cmd, reply } in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the ferretdb-owner thread");
        tx
    });

    let (reply_tx, reply_rx) = mpsc::channel();
    owner
        .send(Request {
            cmd,
            reply: reply_tx,
        })
        .map_err(|_| io::Error::other("the ferretdb-owner thread is gone"))?;
    reply_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("ferretdb-owner thread did not answer: {e}"),
            )
        })?
}
