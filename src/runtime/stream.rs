//! The byte stream under a connection: a may socket or a std socket.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
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
}

impl Stream {
    fn std(&self) -> &std::net::TcpStream {
        match self {
            Stream::May(s) => s.inner(),
            Stream::Std(s) => s,
        }
    }

    /// TCP_NODELAY (requests are small and latency-bound) and keepalive (to notice a dead peer
    /// on an idle pooled connection), set through socket2.
    pub(crate) fn configure(&self) -> io::Result<()> {
        let sock = SockRef::from(self.std());
        sock.set_tcp_nodelay(true)?;
        sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(Duration::from_secs(120)))?;
        Ok(())
    }

    /// Bounds every read (`socketTimeoutMS`); `None` waits forever.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::May(s) => s.set_read_timeout(t),
            Stream::Std(s) => s.set_read_timeout(t),
        }
    }

    /// Bounds every write.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::May(s) => s.set_write_timeout(t),
            Stream::Std(s) => s.set_write_timeout(t),
        }
    }

    /// Shuts both directions; used when a connection is discarded.
    pub(crate) fn shutdown(&self) {
        let _ = self.std().shutdown(Shutdown::Both);
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::May(s) => s.read(buf),
            Stream::Std(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::May(s) => s.write(buf),
            Stream::Std(s) => s.write(buf),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::May(s) => s.write_vectored(bufs),
            Stream::Std(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
