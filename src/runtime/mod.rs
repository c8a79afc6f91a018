//! The seam between the two cores.
//!
//! Everything above this module — wire protocol, handshake, pool, operations, API — is written
//! once. What differs between running on `may` coroutines and running on OS threads is kept
//! here, and it is deliberately small:
//!
//! | need            | coroutine core                         | threaded core               |
//! |-----------------|----------------------------------------|-----------------------------|
//! | resolve a name  | `getaddrinfo` on a helper OS thread     | `getaddrinfo` in place       |
//! | connect         | `may::net::TcpStream` (yields on I/O)  | `std::net::TcpStream`        |
//! | connect (Unix)  | `may::os::unix::net::UnixStream`       | `std::os::unix::net::UnixStream` |
//! | spawn work      | a may coroutine with a sized stack     | an OS thread                 |
//! | run deep work   | on a driver stack (`on_driver_stack`)   | the same                     |
//! | wait / notify  | `may::sync::Blocker` (timeouts >= 1 ms) | a parking_lot condvar        |
//!
//! The coroutine core's primitives also work from a plain OS thread (they block that thread),
//! which is what lets one client serve coroutines and threads at the same time. The threaded
//! core exists so the two models can be compared honestly: it uses std sockets because, on
//! plain threads, `std::net` is measurably faster than `may::net`.

pub(crate) mod buffers;
mod jobs;
mod parker;
mod resolve;
mod stack;
mod stream;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use jobs::{AsyncOp, MAX_JOB_COROUTINES, ThreadPool};
pub(crate) use jobs::{Runner, panicked};
pub(crate) use parker::{Parker, Wake};
pub(crate) use resolve::{off_worker, resolve};
pub(crate) use stack::{drop_on_driver_stack, on_driver_stack};
pub use stream::Stream;

/// Which core runs a client's I/O and background work. Chosen per client in its options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Core {
    /// `may` coroutines and `may::net` sockets: blocking-style code that yields to may's
    /// scheduler on I/O. The default. Also usable from plain OS threads.
    #[default]
    Coroutine,
    /// OS threads and `std::net` sockets: the same driver, no coroutines. Use it from OS
    /// threads; inside a may coroutine it would block the worker thread.
    Threaded,
}

impl Core {
    /// A short name for reports: `coroutine` or `threaded`.
    pub fn name(self) -> &'static str {
        match self {
            Core::Coroutine => "coroutine",
            Core::Threaded => "threaded",
        }
    }
}

/// Stack size for the driver's own background coroutines (monitors, the pools' maintenance,
/// the cursor reaper), in words as may counts: 1 MiB of address space, committed only as it is
/// touched. They open connections (a TLS handshake with SCRAM took 60 KiB in an unoptimised
/// build) and decode whole `hello` replies, so they get room on purpose.
pub(crate) const BACKGROUND_STACK: usize = 128 * 1024;

/// Connects to the first of `addrs` that accepts within `timeout` each, with TCP_NODELAY and
/// keepalive set. The error of the last address is returned if none accepts.
pub(crate) fn connect(core: Core, addrs: &[SocketAddr], timeout: Duration) -> io::Result<Stream> {
    let mut last = None;
    for addr in addrs {
        let attempt = match core {
            Core::Coroutine => may::net::TcpStream::connect_timeout(addr, timeout).map(Stream::May),
            Core::Threaded => std::net::TcpStream::connect_timeout(addr, timeout).map(Stream::Std),
        };
        match attempt.and_then(|s| s.configure().map(|()| s)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no addresses to try")))
}

/// Connects to a Unix domain socket (a local connect: it succeeds or fails at once).
pub(crate) fn connect_unix(core: Core, path: &str) -> io::Result<Stream> {
    match core {
        Core::Coroutine => may::os::unix::net::UnixStream::connect(path).map(Stream::MayUnix),
        Core::Threaded => std::os::unix::net::UnixStream::connect(path).map(Stream::StdUnix),
    }
}

/// Runs `f` in the background: a coroutine or an OS thread. Detached; `f` reports its own
/// outcome.
pub(crate) fn spawn<F>(core: Core, name: &str, f: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    match core {
        Core::Coroutine => {
            let builder = may::coroutine::Builder::new()
                .name(name.to_string())
                .stack_size(BACKGROUND_STACK);
            // SAFETY: may's spawn is unsafe because a coroutine must not hold thread-local
            // references across yields; `f` is 'static and the driver keeps no thread_local!
            // state on coroutine paths.
            unsafe { builder.spawn(f) }.map(drop)
        }
        Core::Threaded => std::thread::Builder::new()
            .name(name.to_string())
            .spawn(f)
            .map(drop),
    }
}

/// Starts a may coroutine with may's default stack, for a caller's own work (an async call
/// running a blocking driver method: the same stack a user's coroutine would have).
pub(crate) fn spawn_coroutine<F>(f: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    // SAFETY: as in `spawn`.
    unsafe { may::coroutine::Builder::new().spawn(f) }.map(drop)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    /// The seam's spawn, sleep and parker, on both cores: a background task sleeps, then
    /// unparks a waiter; a second waiter times out.
    #[test]
    fn spawn_sleep_and_park_on_both_cores() {
        may::config().set_worker_pin(false);
        for core in [Core::Coroutine, Core::Threaded] {
            let parker = Arc::new(Parker::new(core));
            let p = parker.clone();
            let started = Instant::now();
            spawn(core, "seam-test", move || {
                // A sleep is a park nobody unparks: it times out.
                let nap = Parker::new(core);
                assert_eq!(nap.park(Some(Duration::from_millis(30))), Wake::TimedOut);
                p.unpark();
            })
            .unwrap();
            assert_eq!(
                parker.park(Some(Duration::from_secs(5))),
                Wake::Notified,
                "{core:?}"
            );
            assert!(started.elapsed() >= Duration::from_millis(25), "{core:?}");
            let lonely = Parker::new(core);
            assert_eq!(lonely.park(Some(Duration::from_millis(20))), Wake::TimedOut);
            // An unpark before the park is remembered.
            lonely.unpark();
            assert_eq!(lonely.park(Some(Duration::from_millis(20))), Wake::Notified);
        }
    }

    /// may's blocker hangs forever when parked with a timeout under 1 ms (measured on
    /// 0.3.51); the parker must still time out, in a coroutine and on a thread.
    #[test]
    fn sub_millisecond_and_zero_timeouts_still_time_out() {
        may::config().set_worker_pin(false);
        let check = || {
            for t in [
                Duration::ZERO,
                Duration::from_micros(50),
                Duration::from_micros(900),
            ] {
                let p = Parker::new(Core::Coroutine);
                let started = Instant::now();
                assert_eq!(p.park(Some(t)), Wake::TimedOut, "{t:?}");
                assert!(started.elapsed() < Duration::from_secs(1), "{t:?}");
            }
        };
        may::go!(check).join().unwrap();
        check();
    }
}
