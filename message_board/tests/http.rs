//! The message board over real HTTP, against a real database server.
//!
//! Every test starts the app ([`http::serve`]) on a port of its own, on a board in a database of
//! its own (`message_board_http_<test>`, reset first), so the tests can run in parallel threads.
//! Requests whose exact bytes matter (malformed heads, bad `Content-Length`, keep-alive and
//! `Connection: close`, large bodies) are written on a raw [`TcpStream`]; the rest go through
//! ureq, configured not to follow redirects so that the `303` itself is seen.
//!
//! Every rejected request is checked three ways: its status, the sentence in its body, and that
//! nothing was stored (`Board::all_messages` unchanged).
//!
//! The server is the usual one: `$MONGODB_URI` (e.g. under `ferretdb-embed with-server`), or an
//! embedded FerretDB started for this process.
//!
//! ```text
//! cargo test -p message_board --test http
//! ```

mod common;

use common::agent;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use may_mongo::bson::oid::ObjectId;
use may_mongo::{Client, ClientOptions};
use message_board::board::FRONT_PAGE_KEEPS;
use message_board::form::{MAX_IMAGE_BYTES, MAX_TEXT_CHARS};
use message_board::{Board, Message, http};

/// How long any single read or write on a socket may take before the test fails.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// The 8 bytes every PNG file starts with (what the app sniffs).
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The multipart boundary, shaped like Chromium's.
const BOUNDARY: &str = "----WebKitFormBoundaryHttpTest7MA4YWxk";

const URLENCODED: &str = "application/x-www-form-urlencoded";

// ---------------------------------------------------------------------------------------------
// The app under test
// ---------------------------------------------------------------------------------------------

/// The database server's URI, with may configured first (as in the app's `main`).
fn uri() -> &'static str {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| {
        may::config().set_worker_pin(false);
        ferretdb_embed::shared_uri()
    })
}

/// One client for every test's board (a pool of 100, shared like the app shares its own).
fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client::with_uri_str(uri()).expect("a client for the database server"))
}

/// The app serving a fresh board.
struct App {
    board: Board,
    addr: SocketAddr,
    base: String,
}

/// Starts the app on `127.0.0.1:0` on an empty board in database `message_board_http_<name>`.
fn app(name: &str) -> App {
    let board = Board::new(client(), &format!("message_board_http_{name}"));
    board.reset().expect("reset the board");
    app_on(board)
}

fn app_on(board: Board) -> App {
    let listening = http::serve(board.clone(), "127.0.0.1:0").expect("start the app");
    let addr = listening.local_addr();
    App {
        board,
        addr,
        base: format!("http://{addr}"),
    }
}

impl App {
    /// Every stored message, in `_id` order.
    fn stored(&self) -> Vec<Message> {
        let mut all = self.board.all_messages().expect("read all messages");
        all.sort_by_key(|m| m.id);
        all
    }

    /// Posts `text` urlencoded and returns the new message's id (from the `Location`).
    fn post_text(&self, text: &str) -> ObjectId {
        let reply = post(self, URLENCODED, format!("text={}", percent_encode(text)));
        assert_eq!(reply.status, 303, "POST text={text:?}: {}", reply.text());
        location_id(&reply)
    }

    /// `POST /compose` that must be refused with `400` and `message`, storing nothing.
    fn assert_rejected(
        &self,
        what: &str,
        content_type: &str,
        body: impl AsRef<[u8]>,
        message: &str,
    ) {
        let before = self.stored();
        let reply = post(self, content_type, body.as_ref());
        assert_rejected_reply(what, &reply, message);
        assert_eq!(
            self.stored(),
            before,
            "{what}: a refused POST stored nothing"
        );
    }
}

fn assert_rejected_reply(what: &str, reply: &Reply, message: &str) {
    assert_eq!(
        reply.status,
        400,
        "{what}: status (body {:?})",
        reply.text()
    );
    assert!(
        reply.text().contains(message),
        "{what}: the 400's body {:?} contains {message:?}",
        reply.text()
    );
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{what}: the error is plain text"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

/// A response, whichever client read it. Header names are lower case.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The first header called `name` (lower case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn from_ureq(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .expect("read the response body");
    Reply {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

fn get(app: &App, path: &str) -> Reply {
    let response = agent()
        .get(format!("{}{path}", app.base))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    from_ureq(response)
}

fn post(app: &App, content_type: &str, body: impl AsRef<[u8]>) -> Reply {
    let response = agent()
        .post(format!("{}/compose", app.base))
        .content_type(content_type)
        .send(body.as_ref())
        .unwrap_or_else(|e| panic!("POST /compose ({content_type}): {e}"));
    from_ureq(response)
}

/// A raw connection to the app, with bounded reads and writes.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw::connect_with(addr, SOCKET_TIMEOUT)
    }

    fn connect_with(addr: SocketAddr, timeout: Duration) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, timeout).expect("connect to the app");
        stream.set_read_timeout(Some(timeout)).unwrap();
        stream.set_write_timeout(Some(timeout)).unwrap();
        let writer = stream.try_clone().unwrap();
        Raw {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send the request");
        self.writer.flush().unwrap();
    }

    /// Reads one response (the server always sends `Content-Length`).
    fn read_reply(&mut self) -> Reply {
        let mut reply = self.read_reply_head();
        let length: usize = reply
            .header("content-length")
            .expect("every response has a Content-Length")
            .parse()
            .expect("Content-Length is a number");
        reply.body = vec![0; length];
        self.reader
            .read_exact(&mut reply.body)
            .expect("read the response body");
        reply
    }

    /// Reads a response's status line and headers only (the whole response to a `HEAD`).
    fn read_reply_head(&mut self) -> Reply {
        let mut status_line = String::new();
        let n = self
            .reader
            .read_line(&mut status_line)
            .expect("read the status line");
        assert!(n > 0, "the server closed the connection without a response");
        let mut words = status_line.split_whitespace();
        assert_eq!(
            words.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = words
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read a header");
            assert!(n > 0, "the server closed the connection inside a head");
            if line == "\r\n" {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line {line:?}"));
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        Reply {
            status,
            headers,
            body: Vec::new(),
        }
    }

    /// Sends `bytes` and reads one response.
    fn exchange(&mut self, bytes: &[u8]) -> Reply {
        self.send(bytes);
        self.read_reply()
    }

    /// Asserts that the server closes the connection now (end of stream or a reset, within
    /// [`SOCKET_TIMEOUT`]) and sends nothing more.
    fn assert_closed(&mut self, what: &str) {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("{what}: the server sent more bytes after the response"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{what}: the server did not close the connection ({e})"),
        }
    }
}

/// A request's bytes: the request line, `Host`, `headers`, and for a body its `Content-Length`.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `application/x-www-form-urlencoded` encoding of `text` (every byte but letters and digits
/// escaped, so multi-byte characters are sent as their UTF-8 bytes).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A browser-shaped multipart body: the `text` part (if any), then the `image` part (if any).
fn multipart(text: Option<&str>, image: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(text) = text {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{text}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, data)) = image {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; \
                 filename=\"{filename}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A "PNG" of `len` bytes: the signature, then zeros (the app sniffs the signature only).
fn padded_png(len: usize) -> Vec<u8> {
    let mut data = PNG_SIGNATURE.to_vec();
    data.resize(len, 0);
    data
}

/// The message id a `303` names: `Location: /#m-<24 lower-case hex digits>`.
fn location_id(reply: &Reply) -> ObjectId {
    let location = reply.header("location").expect("a 303 has a Location");
    let hex = location
        .strip_prefix("/#m-")
        .unwrap_or_else(|| panic!("Location {location:?} is /#m-<id>"));
    assert!(
        hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "Location {location:?} ends in 24 lower-case hex digits"
    );
    ObjectId::parse_str(hex).expect("the Location names an ObjectId")
}

/// The message ids listed on a front page, in page order.
fn listed_ids(page: &str) -> Vec<ObjectId> {
    page.split("data-id=\"")
        .skip(1)
        .map(|rest| ObjectId::parse_str(&rest[..24]).expect("a data-id is an ObjectId"))
        .collect()
}

/// The front page, checked to be a `200` HTML page.
fn front_page(app: &App) -> String {
    let reply = get(app, "/");
    assert_eq!(reply.status, 200, "GET /: {}", reply.text());
    reply.text()
}

/// Polls `done` every 20 ms until it is true or `limit` has passed; returns whether it became
/// true.
fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 1000 characters of 2, 3 and 4 bytes each in UTF-8.
fn thousand_multibyte_chars() -> String {
    let text = "é".repeat(400) + &"世".repeat(400) + &"🎉".repeat(200);
    assert_eq!(text.chars().count(), MAX_TEXT_CHARS);
    text
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_board_front_page_and_compose_form() {
    let app = app("empty_board");

    let reply = get(&app, "/");
    assert_eq!(reply.status, 200, "GET /");
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "GET / is HTML, not {content_type:?}"
    );
    let csp = reply
        .header("content-security-policy")
        .expect("GET / has a Content-Security-Policy");
    assert!(csp.contains("default-src 'none'"), "CSP {csp:?}");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let page = reply.text();
    assert!(page.contains("<ol id=\"messages\">"), "{page}");
    assert!(
        !page.contains("<li class=\"message\""),
        "an empty board lists no message: {page}"
    );
    assert!(page.contains("href=\"/compose\""), "links to the form");

    let reply = get(&app, "/compose");
    assert_eq!(reply.status, 200, "GET /compose");
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(reply.header("content-security-policy").is_some());
    let form = reply.text();
    for needle in [
        "<form id=\"compose-form\" method=\"post\" action=\"/compose\" \
         enctype=\"multipart/form-data\">",
        "name=\"text\"",
        &format!("maxlength=\"{MAX_TEXT_CHARS}\""),
        "type=\"file\" name=\"image\"",
    ] {
        assert!(form.contains(needle), "the form has {needle:?}: {form}");
    }
    assert!(app.stored().is_empty());
}

#[test]
fn a_post_redirects_to_its_message_which_is_listed_first_and_escaped() {
    let app = app("post_and_list");

    // The exact 303, on the wire.
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request(
        "POST",
        "/compose",
        &[("Content-Type", URLENCODED)],
        b"text=hello",
    ));
    assert_eq!(reply.status, 303, "POST text=hello: {}", reply.text());
    let id = location_id(&reply);
    assert_eq!(reply.text(), format!("See /#m-{}\n", id.to_hex()));

    let stored = app.stored();
    assert_eq!(stored.len(), 1, "one message stored");
    assert_eq!(stored[0].id, id, "the Location names the stored message");
    assert_eq!(stored[0].text, "hello");
    assert_eq!(stored[0].image, None);

    let page = front_page(&app);
    assert_eq!(listed_ids(&page), vec![id]);
    assert!(
        page.contains(&format!(
            "<li class=\"message\" id=\"m-{hex}\" data-id=\"{hex}\">",
            hex = id.to_hex()
        )),
        "{page}"
    );
    assert!(page.contains("<p class=\"text\">hello</p>"), "{page}");

    // Markup is listed as text, first.
    let markup = "<script>alert('x')</script> & \"q\" <b>bold</b>";
    let id = app.post_text(markup);
    let page = front_page(&app);
    assert_eq!(
        listed_ids(&page)[0],
        id,
        "the newest message is listed first"
    );
    assert!(
        page.contains(
            "<p class=\"text\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; \
             &quot;q&quot; &lt;b&gt;bold&lt;/b&gt;</p>"
        ),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no markup gets through: {page}");
    assert!(!page.contains("<b>"), "no markup gets through: {page}");
}

#[test]
fn three_posts_are_listed_newest_first() {
    let app = app("newest_first");
    let first = app.post_text("first");
    let second = app.post_text("second");
    let third = app.post_text("third");
    let page = front_page(&app);
    assert_eq!(listed_ids(&page), vec![third, second, first]);
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at(">third<") < at(">second<") && at(">second<") < at(">first<"));
    assert_eq!(app.stored().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_and_blank_texts_are_rejected() {
    let app = app("blank_text");
    app.post_text("already here");
    let empty = "the message is empty";
    app.assert_rejected("empty text", URLENCODED, "text=", empty);
    app.assert_rejected("whitespace text", URLENCODED, "text=+%20%09%0D%0A", empty);
    app.assert_rejected(
        "multipart whitespace text",
        &multipart_type(),
        multipart(Some(" \r\n\t\u{a0}\u{3000}"), None),
        empty,
    );
    app.assert_rejected(
        "no text field",
        URLENCODED,
        "other=1",
        "the form has no \"text\" field",
    );
}

#[test]
fn text_of_1000_characters_is_accepted_and_1001_rejected() {
    let app = app("text_length");
    let exact = thousand_multibyte_chars();
    let over = exact.clone() + "🎉";
    let message = "the message is 1001 characters long; at most 1000 are allowed";

    app.assert_rejected(
        "1001 characters, urlencoded",
        URLENCODED,
        format!("text={}", percent_encode(&over)),
        message,
    );
    app.assert_rejected(
        "1001 characters, multipart",
        &multipart_type(),
        multipart(Some(&over), None),
        message,
    );

    // Exactly 1000, both ways.
    let id = app.post_text(&exact);
    let reply = post(&app, &multipart_type(), multipart(Some(&exact), None));
    assert_eq!(reply.status, 303, "1000 characters, multipart");
    let id2 = location_id(&reply);
    let stored = app.stored();
    assert_eq!(stored.len(), 2);
    for m in &stored {
        assert!(m.id == id || m.id == id2);
        assert_eq!(m.text, exact, "the text is stored exactly");
    }
    let page = front_page(&app);
    assert!(
        page.contains(&format!("<p class=\"text\">{exact}</p>")),
        "the 1000 characters are listed"
    );
}

#[test]
fn badly_encoded_forms_are_rejected() {
    let app = app("bad_encoding");
    app.post_text("already here");
    app.assert_rejected(
        "bad percent escape",
        URLENCODED,
        "text=%G1",
        "the form could not be read: a percent escape is not % followed by two hex digits",
    );
    app.assert_rejected(
        "invalid UTF-8",
        URLENCODED,
        "text=%FF",
        "the form could not be read: a field is not valid UTF-8",
    );
    app.assert_rejected(
        "text/plain",
        "text/plain",
        "text=hello",
        "the form must be sent as multipart/form-data or application/x-www-form-urlencoded",
    );
    app.assert_rejected(
        "multipart without a boundary",
        "multipart/form-data",
        multipart(Some("hello"), None),
        "the multipart/form-data content type has no boundary parameter",
    );
    let whole = multipart(Some("hello"), None);
    let truncated = &whole[..whole.len() - BOUNDARY.len() - 6];
    app.assert_rejected(
        "truncated multipart body",
        &multipart_type(),
        truncated,
        "the form could not be read: the body ends before the closing multipart boundary",
    );

    // No Content-Type at all (ureq always sends the one it is given: raw socket).
    let before = app.stored();
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request("POST", "/compose", &[], b"text=hello"));
    assert_rejected_reply(
        "no Content-Type",
        &reply,
        "the form must be sent as multipart/form-data or application/x-www-form-urlencoded",
    );
    assert_eq!(app.stored(), before);
}

#[test]
fn attachments_that_are_not_images_or_too_large_are_rejected() {
    let app = app("bad_attachments");
    app.post_text("already here");

    let html = b"<!doctype html><html><body><script>alert(1)</script></body></html>\n";
    app.assert_rejected(
        "HTML named x.png",
        &multipart_type(),
        multipart(Some("look"), Some(("x.png", html))),
        "the attachment must be a PNG, JPEG, GIF or WebP image",
    );

    // One byte over: the body (about 5 MiB + 250 bytes) is within the HTTP layer's bound of
    // 5 MiB + 64 KiB, so the form layer refuses it.
    let body = multipart(
        Some("big"),
        Some(("big.png", &padded_png(MAX_IMAGE_BYTES + 1))),
    );
    app.assert_rejected(
        "image of MAX_IMAGE_BYTES + 1",
        &multipart_type(),
        &body,
        "the attachment is larger than 5 MiB",
    );
}

#[test]
fn a_body_over_the_http_bound_is_drained_refused_and_the_connection_kept() {
    let app = app("over_http_bound");
    app.post_text("already here");
    let before = app.stored();

    // An image 64 KiB + 1 over the limit: the whole body exceeds MAX_BODY, so the HTTP layer
    // answers without handing it to the form parser.
    let body = multipart(
        Some("too big"),
        Some(("huge.png", &padded_png(MAX_IMAGE_BYTES + 64 * 1024 + 1))),
    );
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request(
        "POST",
        "/compose",
        &[("Content-Type", &multipart_type())],
        &body,
    ));
    assert_rejected_reply(
        "body over the HTTP layer's bound",
        &reply,
        &format!(
            "the request carries {} bytes: the attachment is larger than 5 MiB",
            body.len()
        ),
    );
    assert_eq!(
        reply.header("connection"),
        None,
        "the body was drained, so the connection stays open"
    );
    let reply = raw.exchange(&request("GET", "/", &[], b""));
    assert_eq!(reply.status, 200, "the next request on the connection");
    assert_eq!(app.stored(), before, "nothing stored");
}

#[test]
fn an_attachment_of_exactly_5_mib_is_stored_and_served_byte_for_byte() {
    let app = app("largest_image");
    let png = padded_png(MAX_IMAGE_BYTES);
    let reply = post(
        &app,
        &multipart_type(),
        multipart(Some("the largest picture"), Some(("big.png", &png))),
    );
    assert_eq!(reply.status, 303, "{}", reply.text());
    let id = location_id(&reply);

    let stored = app.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    let attachment = stored[0].image.clone().expect("the message has its image");
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(attachment.length, MAX_IMAGE_BYTES as i64);
    assert_eq!(attachment.filename, "big.png");

    let src = format!("/files/{}", attachment.file_id.to_hex());
    let page = front_page(&app);
    assert!(
        page.contains(&format!(
            "<img class=\"attachment\" src=\"{src}\" alt=\"big.png\">"
        )),
        "{page}"
    );

    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request("GET", &src, &[], b""));
    assert_eq!(reply.status, 200, "GET {src}: {}", reply.text());
    assert_eq!(reply.header("content-type"), Some("image/png"));
    assert_eq!(
        reply.header("content-length"),
        Some(MAX_IMAGE_BYTES.to_string().as_str())
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.body.len(), png.len());
    assert!(reply.body == png, "the served bytes are the uploaded ones");
    // A streamed body leaves the connection usable.
    let reply = raw.exchange(&request("GET", "/", &[], b""));
    assert_eq!(reply.status, 200);
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_files_paths_and_methods() {
    let app = app("routes");
    for path in [
        "/files/not-hex",
        "/files/",
        "/files/0123456789abcdef0123456",
        &format!("/files/{}", ObjectId::new().to_hex()),
    ] {
        let reply = get(&app, path);
        assert_eq!(reply.status, 404, "GET {path}");
        assert_eq!(reply.text(), "no such file\n", "GET {path}");
    }

    let reply = get(&app, "/nope");
    assert_eq!(reply.status, 404, "GET /nope");
    assert_eq!(reply.text(), "no page at /nope\n");

    let mut raw = Raw::connect(app.addr);
    for (method, path, allow) in [
        ("DELETE", "/", "GET"),
        ("POST", "/", "GET"),
        ("PUT", "/compose", "GET, POST"),
        ("POST", "/files/0123456789abcdef01234567", "GET"),
    ] {
        let reply = raw.exchange(&request(method, path, &[], b""));
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(reply.text(), "method not allowed\n", "{method} {path}");
    }
    assert!(app.stored().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The HTTP layer
// ---------------------------------------------------------------------------------------------

#[test]
fn a_malformed_content_length_is_refused_and_the_connection_closed() {
    let app = app("bad_length");
    for length in ["12abc", "-1", "", "1 2", "99999999999999999999999"] {
        let mut raw = Raw::connect(app.addr);
        let head = format!(
            "POST /compose HTTP/1.1\r\nHost: x\r\nContent-Type: {URLENCODED}\r\n\
             Content-Length: {length}\r\n\r\ntext=hello12"
        );
        let reply = raw.exchange(head.as_bytes());
        assert_eq!(reply.status, 400, "Content-Length {length:?}");
        let message = if length.len() > 20 {
            "Content-Length is too large"
        } else {
            "Content-Length is not a number"
        };
        assert_eq!(reply.text(), format!("{message}\n"), "{length:?}");
        assert_eq!(reply.header("connection"), Some("close"));
        raw.assert_closed(&format!("Content-Length {length:?}"));
    }

    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(
        b"POST /compose HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\ntext=",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.text(), "more than one Content-Length\n");
    raw.assert_closed("two Content-Lengths");
    assert!(app.stored().is_empty(), "nothing stored");
}

#[test]
fn a_chunked_body_gets_411() {
    let app = app("chunked");
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(
        format!(
            "POST /compose HTTP/1.1\r\nHost: x\r\nContent-Type: {URLENCODED}\r\n\
             Transfer-Encoding: chunked\r\n\r\na\r\ntext=hello\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(reply.status, 411);
    assert_eq!(
        reply.text(),
        "chunked request bodies are not supported: send Content-Length\n"
    );
    assert_eq!(reply.header("connection"), Some("close"));
    raw.assert_closed("chunked");
    assert!(app.stored().is_empty(), "nothing stored");
}

/// A GET of `/` with `Host` and `count - 1` more headers: the ones Chromium sends with a form
/// POST, then fillers.
fn head_with_headers(count: usize) -> Vec<u8> {
    let browser = [
        ("Connection", "keep-alive"),
        ("Cache-Control", "max-age=0"),
        (
            "sec-ch-ua",
            "\"Chromium\";v=\"156\", \"Not.A/Brand\";v=\"99\"",
        ),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("Origin", "http://127.0.0.1"),
        ("Upgrade-Insecure-Requests", "1"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156",
        ),
        ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-User", "?1"),
        ("Sec-Fetch-Dest", "document"),
        ("Referer", "http://127.0.0.1/compose"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Priority", "u=0, i"),
    ];
    let mut headers: Vec<(String, String)> = browser
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut i = 0;
    while headers.len() < count - 1 {
        headers.push((format!("X-Filler-{i}"), format!("value {i}")));
        i += 1;
    }
    headers.truncate(count - 1);
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    request("GET", "/", &pairs, b"")
}

#[test]
fn too_many_headers_get_431_and_a_browser_sized_head_is_fine() {
    let app = app("header_count");
    let count = |raw: &[u8]| {
        String::from_utf8_lossy(raw)
            .split("\r\n")
            .filter(|l| l.contains(": "))
            .count()
    };

    for n in [40, 64] {
        let head = head_with_headers(n);
        assert_eq!(count(&head), n);
        let mut raw = Raw::connect(app.addr);
        let reply = raw.exchange(&head);
        assert_eq!(reply.status, 200, "{n} headers: {}", reply.text());
        assert!(reply.text().contains("<ol id=\"messages\">"));
        // Still open (keep-alive).
        let reply = raw.exchange(&request("GET", "/compose", &[], b""));
        assert_eq!(
            reply.status, 200,
            "after {n} headers, the connection lives on"
        );
    }

    // A browser-shaped POST with 40 headers is stored.
    let mut raw = Raw::connect(app.addr);
    let mut head = String::from_utf8(head_with_headers(38)).unwrap();
    head = head.replacen("GET / ", "POST /compose ", 1);
    let head = head.trim_end_matches("\r\n").to_string()
        + &format!("\r\nContent-Type: {URLENCODED}\r\nContent-Length: 13\r\n\r\ntext=browsery");
    assert_eq!(count(head.as_bytes()), 40);
    let reply = raw.exchange(head.as_bytes());
    assert_eq!(reply.status, 303, "a 40-header POST: {}", reply.text());
    let id = location_id(&reply);
    let stored = app.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id, stored[0].text.as_str()), (id, "browsery"));

    for n in [65, 70] {
        let head = head_with_headers(n);
        assert_eq!(count(&head), n);
        let mut raw = Raw::connect(app.addr);
        let reply = raw.exchange(&head);
        assert_eq!(reply.status, 431, "{n} headers");
        assert_eq!(reply.text(), "too many request headers\n");
        assert_eq!(reply.header("connection"), Some("close"));
        raw.assert_closed(&format!("{n} headers"));
    }

    // A head over 16 KiB.
    let long = "v".repeat(17 * 1024);
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request("GET", "/", &[("X-Long", &long)], b""));
    assert_eq!(reply.status, 431, "a 17 KiB header");
    assert_eq!(reply.text(), "request head too large\n");
    raw.assert_closed("a 17 KiB header");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let app = app("keep_alive");
    let mut raw = Raw::connect(app.addr);

    let reply = raw.exchange(&request("GET", "/", &[], b""));
    assert_eq!(reply.status, 200, "first request");
    assert_eq!(
        reply.header("connection"),
        None,
        "HTTP/1.1 keeps the connection"
    );
    let reply = raw.exchange(&request(
        "POST",
        "/compose",
        &[("Content-Type", URLENCODED)],
        b"text=second+request",
    ));
    assert_eq!(reply.status, 303, "second request: {}", reply.text());
    let id = location_id(&reply);
    let reply = raw.exchange(&request("GET", "/", &[], b""));
    assert_eq!(reply.status, 200, "third request");
    assert_eq!(listed_ids(&reply.text()), vec![id]);

    // Two requests sent at once (pipelined) are answered in order.
    let mut both = request("GET", "/nope", &[], b"");
    both.extend(request("GET", "/compose", &[], b""));
    raw.send(&both);
    let first = raw.read_reply();
    let second = raw.read_reply();
    assert_eq!((first.status, second.status), (404, 200));
    assert!(second.text().contains("compose-form"));

    // A refused form does not end the connection either.
    let reply = raw.exchange(&request(
        "POST",
        "/compose",
        &[("Content-Type", URLENCODED)],
        b"text=",
    ));
    assert_rejected_reply(
        "empty text on a kept connection",
        &reply,
        "the message is empty",
    );
    let reply = raw.exchange(&request("GET", "/", &[], b""));
    assert_eq!(reply.status, 200);
}

#[test]
fn connection_close_and_http_1_0_are_honoured() {
    let app = app("connection_close");

    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request("GET", "/", &[("Connection", "close")], b""));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    raw.assert_closed("Connection: close");

    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(reply.status, 200, "HTTP/1.0");
    assert_eq!(
        reply.header("connection"),
        Some("close"),
        "HTTP/1.0 without keep-alive"
    );
    raw.assert_closed("HTTP/1.0");

    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(reply.status, 200, "HTTP/1.0 keep-alive");
    assert_eq!(reply.header("connection"), None, "HTTP/1.0 with keep-alive");
    let reply = raw.exchange(b"GET /compose HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(reply.status, 200, "the second HTTP/1.0 request");
    assert_eq!(reply.header("connection"), Some("close"));
    raw.assert_closed("HTTP/1.0, second request");

    // A POST that asks to close is stored and then the connection ends.
    let mut raw = Raw::connect(app.addr);
    let reply = raw.exchange(&request(
        "POST",
        "/compose",
        &[("Content-Type", URLENCODED), ("Connection", "close")],
        b"text=bye",
    ));
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("connection"), Some("close"));
    raw.assert_closed("POST with Connection: close");
    assert_eq!(app.stored().len(), 1);
}

/// RFC 9110 §9.3.2: a response to `HEAD` carries no content (and §9.1: a general-purpose
/// server supports `HEAD` wherever it supports `GET`). A body after a HEAD's answer would be
/// read by a keep-alive client as the start of the next response.
#[test]
fn head_is_answered_without_a_body() {
    let app = app("head");
    let mut raw = Raw::connect(app.addr);
    let mut both = request("HEAD", "/", &[], b"");
    both.extend(request("GET", "/nope", &[], b""));
    raw.send(&both);
    let head = raw.read_reply_head();
    // With the bug, this reads the status line "method not allowed\n".
    let next = raw.read_reply();
    assert_eq!(next.status, 404, "the response after HEAD's is GET /nope's");
    assert_eq!(head.status, 200, "HEAD / is answered like GET /");
    assert!(
        head.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

#[test]
fn two_hundred_simultaneous_posts_are_each_stored_once() {
    const POSTS: usize = 200;
    let app = app("concurrent_posts");
    let addr = app.addr;
    let barrier = Arc::new(Barrier::new(POSTS));
    let started = Instant::now();
    let threads: Vec<_> = (0..POSTS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // Each request may wait behind the other 199 for the database.
                let mut raw = Raw::connect_with(addr, Duration::from_secs(60));
                let text = format!("concurrent message {i:03}");
                let bytes = request(
                    "POST",
                    "/compose",
                    &[("Content-Type", URLENCODED), ("Connection", "close")],
                    format!("text={}", percent_encode(&text)).as_bytes(),
                );
                barrier.wait();
                let reply = raw.exchange(&bytes);
                (text, reply)
            })
        })
        .collect();
    let mut posted = Vec::new();
    for thread in threads {
        let (text, reply) = thread.join().expect("a posting thread");
        assert_eq!(reply.status, 303, "{text}: {}", reply.text());
        posted.push((location_id(&reply), text));
    }
    let elapsed = started.elapsed();
    posted.sort();

    let stored: Vec<(ObjectId, String)> =
        app.stored().into_iter().map(|m| (m.id, m.text)).collect();
    assert_eq!(stored.len(), POSTS, "every POST stored exactly once");
    assert_eq!(stored, posted, "the stored messages are the ones answered");
    let mut texts: Vec<&str> = stored.iter().map(|(_, t)| t.as_str()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), POSTS, "each text once");
    println!("{POSTS} simultaneous POSTs answered in {elapsed:?}");
}

#[test]
fn the_trimmer_keeps_the_newest_50_on_the_front_page() {
    const POSTS: usize = 80;
    let board = Board::new(client(), "message_board_http_trimmer");
    board.reset().expect("reset the board");
    let mut options = ClientOptions::parse(uri()).run().expect("parse the URI");
    options.max_pool_size = 1;
    options.app_name = Some("message_board-http-test-trimmer".into());
    let maintenance = Client::with_options(options).expect("the trimmer's client");
    board.keep_front_page_trimmed(&maintenance, Duration::from_millis(20));
    let app = app_on(board);

    let ids: Vec<ObjectId> = (0..POSTS)
        .map(|i| app.post_text(&format!("message {i:02}")))
        .collect();
    let keeps = FRONT_PAGE_KEEPS as usize;
    let expected: Vec<ObjectId> = ids.iter().rev().take(keeps).copied().collect();

    let mut front = Vec::new();
    let trimmed = poll(Duration::from_secs(10), || {
        front = app.board.newest(1000).expect("read the front page");
        front.len() <= keeps
    });
    assert!(
        trimmed,
        "within 10 s the front page holds at most {keeps} messages (it holds {})",
        front.len()
    );
    let front_ids: Vec<ObjectId> = front.iter().map(|m| m.id).collect();
    assert_eq!(front_ids, expected, "the {keeps} newest, newest first");
    assert_eq!(front[0].text, format!("message {:02}", POSTS - 1));

    let page = front_page(&app);
    assert_eq!(listed_ids(&page), expected, "GET / lists the same");

    let mut all: Vec<ObjectId> = app.stored().into_iter().map(|m| m.id).collect();
    let mut posted = ids.clone();
    all.sort();
    posted.sort();
    assert_eq!(all, posted, "every message is kept in the record");
}

/// may's own `TcpListener::bind` sets `SO_REUSEPORT`, which let a second board bind a port
/// already in use and take half its connections. The board binds without it.
#[test]
fn a_second_board_on_a_port_in_use_is_refused() {
    let app = app("port_in_use");
    let second = http::serve(app.board.clone(), &app.addr.to_string());
    let err = second
        .err()
        .expect("a second bind on the same port must fail");
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    // The first one still answers.
    let reply = agent().get(format!("{}/", app.base)).call().expect("GET /");
    assert_eq!(reply.status(), 200);
}
