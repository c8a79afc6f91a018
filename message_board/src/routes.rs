//! The board's four routes. Each handler is plain blocking-style code: it calls the driver
//! and returns a response; the connection's coroutine parks while the database answers.

use may_mongo::bson::oid::ObjectId;
use may_mongo::{Error, ErrorKind, GridFsErrorKind};

use crate::board::Board;
use crate::form::{self, MAX_IMAGE_BYTES};
use crate::http::{Body, Request, Response, Service};
use crate::pages;

/// How many messages the front page shows.
pub const PAGE_SIZE: i64 = crate::board::FRONT_PAGE_KEEPS;

/// Room for the text field and the multipart framing around an image of the largest size.
const MAX_BODY: u64 = MAX_IMAGE_BYTES as u64 + 64 * 1024;

/// What every page says about itself: no scripts at all, images from here only, forms post
/// here only. Escaping is what keeps a posted `<script>` inert; this is the second line.
const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
                   form-action 'self'; frame-ancestors 'none'";

impl Service for Board {
    fn max_body(&self) -> u64 {
        MAX_BODY
    }

    fn too_large_message(&self, length: u64) -> String {
        format!(
            "the request carries {length} bytes: the attachment is larger than {} MiB",
            MAX_IMAGE_BYTES / (1024 * 1024)
        )
    }

    fn call(&self, request: Request) -> Response {
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("GET", "/") => self.index_page(),
            ("GET", "/compose") => html(pages::compose()),
            ("POST", "/compose") => self.post_form(&request),
            ("GET", _) if path.starts_with("/files/") => self.serve_file(&path["/files/".len()..]),
            (_, "/") => not_allowed("GET"),
            (_, "/compose") => not_allowed("GET, POST"),
            (_, _) if path.starts_with("/files/") => not_allowed("GET"),
            _ => Response::text(404, format!("no page at {path}")),
        }
    }
}

impl Board {
    fn index_page(&self) -> Response {
        match self.newest(PAGE_SIZE) {
            Ok(messages) => html(pages::index(&messages)),
            Err(e) => database_error("listing messages", &e),
        }
    }

    fn post_form(&self, request: &Request) -> Response {
        let new = match form::parse_compose(request.header("content-type"), &request.body) {
            Ok(new) => new,
            Err(e) => return Response::text(400, e.to_string()),
        };
        match self.post(new) {
            // The fragment takes the author to their message (and names it: the load test
            // checks each one it was told about is stored).
            Ok(message) => Response::see_other(&format!("/#m-{}", message.id.to_hex())),
            Err(e) => database_error("storing a message", &e),
        }
    }

    fn serve_file(&self, id: &str) -> Response {
        // Only ids this board hands out (24 hex digits) name files.
        let Ok(id) = ObjectId::parse_str(id) else {
            return Response::text(404, "no such file");
        };
        let stream = match self.open_image(id) {
            Ok(stream) => stream,
            Err(e)
                if matches!(
                    &*e.kind,
                    ErrorKind::GridFs(GridFsErrorKind::FileNotFound { .. })
                ) =>
            {
                return Response::text(404, "no such file");
            }
            Err(e) => return database_error("opening a file", &e),
        };
        let file = stream.file();
        let content_type = file
            .metadata
            .as_ref()
            .and_then(|m| m.get_str("contentType").ok())
            .filter(|t| form::IMAGE_TYPES.contains(t))
            // A file this board did not store: serve it as bytes, never as something a
            // browser would render as a page.
            .unwrap_or("application/octet-stream")
            .to_string();
        let length = file.length;
        Response {
            status: 200,
            headers: vec![
                ("Content-Type", content_type),
                // A file id never names other bytes: cache it for good.
                (
                    "Cache-Control",
                    "public, max-age=31536000, immutable".into(),
                ),
                ("X-Content-Type-Options", "nosniff".into()),
            ],
            body: Body::Stream {
                length,
                reader: Box::new(stream),
            },
        }
    }
}

fn html(page: String) -> Response {
    Response::new(200, "text/html; charset=utf-8", page)
        .with_header("Content-Security-Policy", CSP)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Cache-Control", "no-store")
}

fn not_allowed(allow: &str) -> Response {
    Response::text(405, "method not allowed").with_header("Allow", allow)
}

/// The user sees that the database failed; the log says how.
fn database_error(doing: &str, e: &Error) -> Response {
    eprintln!("message_board: {doing}: {e}");
    Response::text(500, format!("the database failed while {doing}"))
}
