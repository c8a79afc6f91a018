//! The byte stream under a connection: a may socket or a std socket, TCP or Unix domain.

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
}

/// The same call on whichever socket a stream holds.
macro_rules! each {
    ($stream:expr, $s:ident => $e:expr) => {
        match $stream {
            Stream::May($s) => $e,
            Stream::Std($s) => $e,
            Stream::MayUnix($s) => $e,
            Stream::StdUnix($s) => $e,
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

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
