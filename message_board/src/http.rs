//! A small HTTP/1.1 server on may coroutines: one coroutine per connection, blocking-style
//! reads and writes that park the coroutine (not the worker thread) on the socket.
//!
//! Why not may_minihttp: version 0.1.11 parses at most 16 request headers and closes the
//! connection on a 17th, and headless Chromium 156 sends 18 with a form POST (`sec-ch-ua*`,
//! `Sec-Fetch-*`, ...); it also panics on a malformed `Content-Length`. This server is the
//! part of may_minihttp the board needs, with room for 64 headers, a strict `Content-Length`,
//! bounded bodies and streamed responses.
//!
//! What it does not do: chunked request bodies (`411`), pipelining beyond reading the next
//! request after answering the current one, `Expect: 100-continue` (browsers don't send it),
//! TLS.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use may::net::{TcpListener, TcpStream};
use socket2::{Domain, Socket, Type};

/// Most headers a request may carry (browsers send about 20).
const MAX_HEADERS: usize = 64;
/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A body longer than this but within [`DRAIN_LIMIT`] is read and thrown away before the
/// `400` is sent: a browser that is still uploading when the server closes sees a reset
/// connection instead of the error page.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// An idle keep-alive connection, or a client that stops sending mid-request, is closed
/// after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Stack for each connection's coroutine, in words (may's unit): 64 KiB. Measured with an
/// odd size (may then prints each coroutine's use at exit) over the crate's tests, a 5 MiB
/// upload and the browser's requests among them: at most 2,895 words (22.6 KiB) in release,
/// 2,725 at opt-level 1. That fits may's default 32 KiB with 9 KiB to spare; twice the
/// default leaves room for paths the tests did not take, and costs only address space
/// (pages never touched are never resident).
const CONNECTION_STACK_WORDS: usize = 0x2000;

/// A parsed request. The body has been read whole (the service sets the bound).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response body: bytes in memory, or a reader of known length streamed to the socket
/// (a GridFS download is never held whole in memory).
pub enum Body {
    Bytes(Vec<u8>),
    Stream {
        length: u64,
        reader: Box<dyn Read + Send>,
    },
}

/// A response: a status, headers, a body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    /// A response with `content_type` and `body`.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: Body::Bytes(body.into()),
        }
    }

    /// A plain-text response, e.g. an error message.
    pub fn text(status: u16, message: impl Into<String>) -> Response {
        let mut body = message.into();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// `303 See Other` to `location`: after a POST, the browser GETs `location`.
    pub fn see_other(location: &str) -> Response {
        let mut r = Response::text(303, format!("See {location}"));
        r.headers.push(("Location", location.to_string()));
        r
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What the server calls for each request, in the connection's coroutine: plain
/// blocking-style code that may call the driver.
pub trait Service: Send + Sync + 'static {
    /// Most body bytes a request may carry; a longer one gets `400` with
    /// [`too_large_message`](Service::too_large_message).
    fn max_body(&self) -> u64;
    /// The `400` message for a body over [`max_body`](Service::max_body).
    fn too_large_message(&self, length: u64) -> String;
    /// Answers one request.
    fn call(&self, request: Request) -> Response;
}

/// A running server.
pub struct Listening {
    addr: SocketAddr,
}

impl Listening {
    /// Where it listens (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` and serves `service` on may coroutines until the process exits.
pub fn serve<S: Service>(service: S, addr: &str) -> io::Result<Listening> {
    let listener = bind(addr)?;
    let local = listener.local_addr()?;
    let service = Arc::new(service);
    may::go!(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => spawn_connection(stream, service.clone()),
                // Out of file descriptors, say: the accept loop must survive it.
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    });
    Ok(Listening { addr: local })
}

/// Binds a listening socket. Not `may::net::TcpListener::bind`: that sets `SO_REUSEPORT`,
/// so a second board started on a port already in use would bind too, and the kernel would
/// split the connections between the two (seen: two boards, different databases, one port).
/// Here the second one gets `AddrInUse`.
fn bind(addr: &str) -> io::Result<TcpListener> {
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on"))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // A restarted board can bind while the old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    // Room for a thousand connections arriving at once (wrk opens them all together).
    socket.listen(1024)?;
    let listener: std::net::TcpListener = socket.into();
    // SAFETY: a listening socket this function owns; may takes it over.
    Ok(unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) })
}

fn spawn_connection<S: Service>(stream: TcpStream, service: Arc<S>) {
    let builder = may::coroutine::Builder::new().stack_size(CONNECTION_STACK_WORDS);
    let spawned = may::go!(builder, move || {
        // A failed read or write just ends the connection: the peer went away.
        let _ = connection(stream, &*service);
    });
    if let Err(e) = spawned {
        eprintln!("cannot spawn a connection coroutine: {e}");
    }
}

/// Serves requests on one connection until the peer closes it, asks to close, or errs.
fn connection<S: Service>(stream: TcpStream, service: &S) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    loop {
        let head = match read_head(&mut reader)? {
            Some(Ok(head)) => head,
            Some(Err(refusal)) => {
                write_response(&mut writer, refusal, false, true)?;
                return Ok(());
            }
            None => return Ok(()),
        };
        let keep_alive = head.keep_alive;
        let length = match body_length(&head) {
            Ok(n) => n,
            Err(refusal) => {
                write_response(&mut writer, refusal, false, true)?;
                return Ok(());
            }
        };
        if length > service.max_body() {
            let refusal = Response::text(400, service.too_large_message(length));
            if length <= DRAIN_LIMIT {
                io::copy(&mut (&mut reader).take(length), &mut io::sink())?;
                write_response(&mut writer, refusal, keep_alive, true)?;
                if keep_alive {
                    continue;
                }
            } else {
                write_response(&mut writer, refusal, false, true)?;
            }
            return Ok(());
        }
        let mut body = vec![0; length as usize];
        reader.read_exact(&mut body)?;
        // HEAD is GET without the body (RFC 9110 §9.3.2): the service sees a GET, and only
        // the head of its answer is sent. Sending the body too would make a keep-alive client
        // read it as the start of the next response.
        let head_only = head.method == "HEAD";
        let request = Request {
            method: if head_only { "GET".into() } else { head.method },
            path: head.path,
            query: head.query,
            headers: head.headers,
            body,
        };
        // A panicking handler answers 500 and the connection lives on: the request was
        // read whole, so the stream is at a request boundary.
        let response = catch_unwind(AssertUnwindSafe(|| service.call(request)))
            .unwrap_or_else(|_| Response::text(500, "internal error"));
        write_response(&mut writer, response, keep_alive, !head_only)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// A request line and headers.
struct Head {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    keep_alive: bool,
}

/// Reads one request head. `None`: the peer closed between requests. `Some(Err)`: a
/// response refusing a malformed head (the connection is then closed).
fn read_head(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Result<Head, Response>>> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read up to and including the next line: a head ends with an empty line.
        let before = buf.len();
        let n = reader
            .by_ref()
            .take((MAX_HEAD_BYTES + 1 - before) as u64)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Ok(Some(Err(Response::text(431, "request head too large"))));
        }
        let line = &buf[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Blank lines before a request are allowed (RFC 9112 §2.2).
                buf.clear();
                continue;
            }
            return Ok(Some(parse_head(&buf)));
        }
    }
}

fn parse_head(buf: &[u8]) -> Result<Head, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Response::text(400, "incomplete request")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::text(431, "too many request headers"));
        }
        Err(e) => return Err(Response::text(400, format!("malformed request: {e}"))),
    }
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(Response::text(400, "malformed request line"));
    };
    let mut pairs = Vec::with_capacity(request.headers.len());
    for h in request.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(Response::text(400, "a header value is not UTF-8"));
        };
        pairs.push((h.name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let connection = pairs
        .iter()
        .find(|(n, _)| n == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told not to.
    let keep_alive = match (version, connection.as_deref()) {
        (_, Some(c)) if c.contains("close") => false,
        (0, Some(c)) => c.contains("keep-alive"),
        (0, None) => false,
        _ => true,
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    Ok(Head {
        method: method.to_string(),
        path,
        query,
        headers: pairs,
        keep_alive,
    })
}

/// The body's length from `Content-Length` (0 without one). A request with
/// `Transfer-Encoding`, or with a `Content-Length` that is not one plain number, is refused:
/// guessing where such a body ends is how request smuggling starts.
fn body_length(head: &Head) -> Result<u64, Response> {
    if head.headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(Response::text(
            411,
            "chunked request bodies are not supported: send Content-Length",
        ));
    }
    let mut lengths = head
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v);
    let Some(first) = lengths.next() else {
        return Ok(0);
    };
    if lengths.next().is_some() {
        return Err(Response::text(400, "more than one Content-Length"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Response::text(400, "Content-Length is not a number"));
    }
    first
        .parse()
        .map_err(|_| Response::text(400, "Content-Length is too large"))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "",
    }
}

/// Writes `response`: its head, and its body when `send_body` (not for a HEAD, whose answer
/// has the `Content-Length` of the body it leaves out; a stream is then dropped unread). A
/// small body goes out in the same `write` as the head: one syscall per response on the hot
/// path.
fn write_response(
    out: &mut TcpStream,
    response: Response,
    keep_alive: bool,
    send_body: bool,
) -> io::Result<()> {
    let length = match &response.body {
        Body::Bytes(b) => b.len() as u64,
        Body::Stream { length, .. } => *length,
    };
    let mut buf = Vec::with_capacity(
        256 + if length < 64 * 1024 {
            length as usize
        } else {
            0
        },
    );
    write!(
        buf,
        "HTTP/1.1 {} {}\r\nContent-Length: {length}\r\n",
        response.status,
        reason(response.status)
    )?;
    for (name, value) in &response.headers {
        write!(buf, "{name}: {value}\r\n")?;
    }
    if !keep_alive {
        buf.extend_from_slice(b"Connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
    match response.body {
        _ if !send_body => out.write_all(&buf),
        Body::Bytes(body) if body.len() < 64 * 1024 => {
            buf.extend_from_slice(&body);
            out.write_all(&buf)
        }
        Body::Bytes(body) => {
            out.write_all(&buf)?;
            out.write_all(&body)
        }
        Body::Stream { length, reader } => {
            out.write_all(&buf)?;
            let sent = io::copy(&mut reader.take(length), out)?;
            if sent < length {
                // The head promised more than the source gave (a GridFS chunk went
                // missing mid-file, say): the only honest signal left is to close.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "response body ended early",
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Head, Response> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn parses_a_browser_shaped_head_with_many_headers() {
        let mut raw = String::from("POST /compose?x=1 HTTP/1.1\r\nHost: a\r\n");
        for i in 0..30 {
            raw.push_str(&format!("X-H{i}: v{i}\r\n"));
        }
        raw.push_str("Content-Length: 12\r\n\r\n");
        let h = head(&raw).ok().unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/compose");
        assert_eq!(h.query.as_deref(), Some("x=1"));
        assert!(h.keep_alive);
        assert_eq!(body_length(&h).ok(), Some(12));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").ok().unwrap().keep_alive);
        let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.ok().unwrap().keep_alive);
        let h = head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(!h.ok().unwrap().keep_alive);
    }

    #[test]
    fn refuses_bad_lengths_and_chunked_bodies() {
        let status = |raw: &str| body_length(&head(raw).ok().unwrap()).err().unwrap().status;
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"), 400);
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
    }

    #[test]
    fn refuses_malformed_heads() {
        assert_eq!(head("GET\r\n\r\n").err().unwrap().status, 400);
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..MAX_HEADERS + 1 {
            raw.push_str(&format!("X-H{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(head(&raw).err().unwrap().status, 431);
    }
}
