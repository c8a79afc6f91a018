//! Name resolution that never blocks a may worker.
//!
//! `getaddrinfo` is a blocking libc call with no non-blocking form. may's own
//! `TcpStream::connect` calls it on the worker thread, stalling every coroutine scheduled there
//! for as long as DNS takes. Here, a coroutine hands the lookup to a short-lived OS thread and
//! parks on a may channel until the answer (or the timeout) arrives. IP literals skip the
//! lookup entirely, and plain threads resolve in place.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::Core;

/// Resolves `host:port` to every address it names, in resolver order.
pub(crate) fn resolve(
    core: Core,
    host: &str,
    port: u16,
    timeout: Duration,
) -> io::Result<Vec<SocketAddr>> {
    // Literal addresses (IPv6 may come bracketed from a URI).
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = {
        let host = host.to_string();
        move || -> io::Result<Vec<SocketAddr>> {
            Ok((host.as_str(), port).to_socket_addrs()?.collect())
        }
    };
    let addrs = off_worker(core, timeout, lookup).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "resolving {host} took longer than {} ms",
                timeout.as_millis()
            ),
        ),
        _ => e,
    })?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolved to no addresses"),
        ));
    }
    Ok(addrs)
}

/// Runs a blocking call (`getaddrinfo`, a DNS exchange) where it cannot stall a may worker:
/// from a coroutine of the coroutine core, on a short-lived OS thread while the coroutine
/// parks on a may channel for at most `timeout`; from a plain thread, in place.
pub(crate) fn off_worker<T: Send + 'static>(
    core: Core,
    timeout: Duration,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    if core == Core::Coroutine && may::coroutine::is_coroutine() {
        let (tx, rx) = may::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("may_mongo-resolve".into())
            .spawn(move || {
                let _ = tx.send(f());
            })?;
        rx.recv_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "lookup timed out"))?
    } else {
        f()
    }
}
