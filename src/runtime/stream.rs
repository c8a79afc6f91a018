//! The byte stream under a connection: a may socket or a std socket, TCP or Unix domain, and
//! TLS over either TCP socket.
//!
//! TLS is `rustls::StreamOwned` around the same socket: rustls does no I/O of its own, it
//! reads and writes through the socket it is given. A may socket parks the calling coroutine
//! when it would block, so the TLS arm yields to the scheduler exactly as the plain one does,
//! with no thread and no task hop added.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// A connected socket of either core. Both arms are plain `Read + Write`; the may arm parks
/// the calling coroutine instead of the thread when the socket would block.
#[derive(Debug)]
pub enum Stream {
    /// A may socket (coroutine core).
    May(may::net::TcpStream),
    /// A std socket (threaded core).
    Std(std::net::TcpStream),
    /// A may Unix domain socket (coroutine core).
    MayUnix(may::os::unix::net::UnixStream),
    /// A std Unix domain socket (threaded core).
    StdUnix(std::os::unix::net::UnixStream),
    /// TLS over a may socket (coroutine core).
    MayTls(Box<TlsStream<may::net::TcpStream>>),
    /// TLS over a std socket (threaded core).
    StdTls(Box<TlsStream<std::net::TcpStream>>),
}

/// A TLS client session over a socket.
pub type TlsStream<S> = rustls::StreamOwned<rustls::ClientConnection, S>;

/// The same call on whichever socket a stream holds.
macro_rules! each {
    ($stream:expr, $s:ident => $e:expr) => {
        match $stream {
            Stream::May($s) => $e,
            Stream::Std($s) => $e,
            Stream::MayUnix($s) => $e,
            Stream::StdUnix($s) => $e,
            Stream::MayTls($s) => {
                let $s = &$s.sock;
                $e
            }
            Stream::StdTls($s) => {
                let $s = &$s.sock;
                $e
            }
        }
    };
}

impl Stream {
    /// The file descriptor, for socket options and shutdown.
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::May(s) => s.inner().as_fd(),
            Stream::Std(s) => s.as_fd(),
            Stream::MayUnix(s) => s.inner().as_fd(),
            Stream::StdUnix(s) => s.as_fd(),
            Stream::MayTls(s) => s.sock.inner().as_fd(),
            Stream::StdTls(s) => s.sock.as_fd(),
        }
    }

    /// Runs a TLS handshake over this TCP socket and returns the encrypted stream. The
    /// handshake is bounded by the socket's read and write timeouts (set them first). A
    /// failure is an `io::Error` wrapping the `rustls::Error`.
    pub(crate) fn into_tls(
        self,
        config: std::sync::Arc<rustls::ClientConfig>,
        host: &str,
    ) -> io::Result<Stream> {
        let name = crate::tls::server_name(host)?;
        let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        fn handshake<S: Read + Write>(mut s: TlsStream<S>) -> io::Result<TlsStream<S>> {
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).map_err(|e| {
                    // rustls's own errors stay as they are (they become ErrorKind::Tls);
                    // socket errors keep their kind (a timeout stays a timeout) and say when.
                    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                        e
                    } else {
                        io::Error::new(e.kind(), format!("during the TLS handshake: {e}"))
                    }
                })?;
            }
            Ok(s)
        }
        match self {
            Stream::May(sock) => Ok(Stream::MayTls(Box::new(handshake(TlsStream::new(
                conn, sock,
            ))?))),
            Stream::Std(sock) => Ok(Stream::StdTls(Box::new(handshake(TlsStream::new(
                conn, sock,
            ))?))),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS over a Unix domain socket is not supported",
            )),
        }
    }

    /// TCP_NODELAY (requests are small and latency-bound) and keepalive (to notice a dead peer
    /// on an idle pooled connection), set through socket2. Unix sockets need neither.
    pub(crate) fn configure(&self) -> io::Result<()> {
        if matches!(self, Stream::MayUnix(_) | Stream::StdUnix(_)) {
            return Ok(());
        }
        let fd = self.fd();
        let sock = SockRef::from(&fd);
        sock.set_tcp_nodelay(true)?;
        sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(120)))?;
        Ok(())
    }

    /// Bounds every read (`socketTimeoutMS`); `None` waits forever.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_read_timeout(t))
    }

    /// Bounds every write.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        each!(self, s => s.set_write_timeout(t))
    }

    /// Shuts both directions; used when a connection is discarded.
    pub(crate) fn shutdown(&self) {
        let _ = SockRef::from(&self.fd()).shutdown(Shutdown::Both);
    }
}

/// The same call on the stream itself: the socket, or the TLS session over it.
macro_rules! each_io {
    ($stream:expr, $s:ident => $e:expr) => {
        match $stream {
            Stream::May($s) => $e,
            Stream::Std($s) => $e,
            Stream::MayUnix($s) => $e,
            Stream::StdUnix($s) => $e,
            Stream::MayTls($s) => $e,
            Stream::StdTls($s) => $e,
        }
    };
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each_io!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each_io!(self, s => s.write(buf))
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each_io!(self, s => s.write_vectored(bufs))
    }

    /// Sockets have nothing to flush; a TLS session may hold records it could not send yet
    /// (rustls's `write` reports only the plaintext it took in).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::MayTls(s) => s.flush(),
            Stream::StdTls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}
