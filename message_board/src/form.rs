//! Reading and checking the "compose a message" form.
//!
//! This module is sans-IO: the HTTP layer reads the whole (size-bounded) body
//! and hands it over together with the request's `Content-Type` value;
//! [`parse_compose`] returns either a [`NewMessage`] that is safe to store or a
//! [`FormError`] whose `Display` text is a sentence meant for the user (it
//! becomes the body of a 400 response).
//!
//! Two encodings are accepted:
//!
//! * `multipart/form-data` (RFC 7578): what browsers send for a form with a
//!   file input, so it may carry the optional image;
//! * `application/x-www-form-urlencoded`: text only, handy for scripts and
//!   load generators.
//!
//! Everything here treats the body as hostile: all limits are checked while
//! parsing, nothing is decoded lossily, and no input can make it panic.

use std::borrow::Cow;
use std::fmt;

use memchr::memmem;

/// Most characters (Unicode scalar values, after CRLF→LF) a message may have.
///
/// Counted in characters rather than bytes so that the limit a user sees does
/// not depend on which script they write in.
pub const MAX_TEXT_CHARS: usize = 1000;

/// The image types an attachment may be, as its first bytes decide: the only types the board
/// ever serves a file as.
pub const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Largest attachment accepted: 5 MiB.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// Most parts (multipart) or `name=value` pairs (urlencoded) a form may have.
///
/// The form only has two fields; unknown ones are ignored, but a cap keeps a
/// crafted body from making us walk thousands of tiny parts.
pub const MAX_FIELDS: usize = 16;

/// Most characters kept of an attachment's file name.
pub const MAX_FILENAME_CHARS: usize = 200;

/// Headers parsed per multipart part; browsers send two
/// (`Content-Disposition` and, for files, `Content-Type`).
const MAX_PART_HEADERS: usize = 8;

/// Parameters parsed per header value. Real headers carry two or three
/// (`name`, `filename`, `filename*`); the cap keeps the duplicate check cheap.
const MAX_PARAMS: usize = 8;

/// RFC 2046 limits a multipart boundary to 70 characters.
const MAX_BOUNDARY_LEN: usize = 70;

/// A message that passed every check and can be stored as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The text with line breaks normalised to `\n`; otherwise exactly what
    /// the user typed (it is HTML-escaped when shown, not here).
    pub text: String,
    /// The attachment, if the user chose one.
    pub image: Option<Image>,
}

/// An attachment whose type was decided by looking at its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The file exactly as uploaded.
    pub data: Vec<u8>,
    /// One of `image/png`, `image/jpeg`, `image/gif`, `image/webp`: sniffed
    /// from magic bytes, never copied from the client, so the app can serve it
    /// back without letting anyone upload HTML under an image's name.
    pub content_type: &'static str,
    /// The last path component of the client's file name, without control
    /// characters, at most [`MAX_FILENAME_CHARS`] characters; may be empty.
    pub filename: String,
}

/// Why a compose form was refused. `Display` gives a user-facing sentence.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// The `Content-Type` is missing or is neither of the two form encodings.
    UnsupportedContentType,
    /// `multipart/form-data` without a `boundary` parameter, so the parts
    /// cannot be found.
    MissingBoundary,
    /// The body (or a header describing it) does not follow its encoding.
    /// The text says what is wrong, to help whoever wrote the client.
    BadEncoding(&'static str),
    /// More than [`MAX_FIELDS`] parts or fields.
    TooManyFields,
    /// The named field (`text` or `image`) was sent more than once; picking
    /// one silently could store something other than what the user saw.
    DuplicateField(&'static str),
    /// There is no `text` field at all.
    MissingText,
    /// The text is empty or only whitespace.
    EmptyText,
    /// The text has more than [`MAX_TEXT_CHARS`] characters.
    TextTooLong {
        /// How many characters were sent (after CRLF→LF).
        chars: usize,
    },
    /// The attachment is larger than [`MAX_IMAGE_BYTES`].
    ImageTooLarge,
    /// The attachment is not a PNG, JPEG, GIF or WebP image.
    UnsupportedImage,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedContentType => f.write_str(
                "the form must be sent as multipart/form-data or application/x-www-form-urlencoded",
            ),
            Self::MissingBoundary => {
                f.write_str("the multipart/form-data content type has no boundary parameter")
            }
            Self::BadEncoding(reason) => write!(f, "the form could not be read: {reason}"),
            Self::TooManyFields => write!(f, "the form has more than {MAX_FIELDS} fields"),
            Self::DuplicateField(name) => write!(f, "the form has more than one \"{name}\" field"),
            Self::MissingText => f.write_str("the form has no \"text\" field"),
            Self::EmptyText => f.write_str("the message is empty"),
            Self::TextTooLong { chars } => write!(
                f,
                "the message is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed"
            ),
            Self::ImageTooLarge => f.write_str("the attachment is larger than 5 MiB"),
            Self::UnsupportedImage => {
                f.write_str("the attachment must be a PNG, JPEG, GIF or WebP image")
            }
        }
    }
}

impl std::error::Error for FormError {}

/// Parses and validates a compose form.
///
/// `content_type` is the request's `Content-Type` header value (if any) and
/// `body` the whole request body; the caller bounds its size.
pub fn parse_compose(content_type: Option<&str>, body: &[u8]) -> Result<NewMessage, FormError> {
    let fields = match classify(content_type)? {
        Encoding::Multipart { boundary } => parse_multipart(body, &boundary)?,
        Encoding::UrlEncoded => parse_urlencoded(body)?,
    };
    validate(fields)
}

/// Shorthand: the body does not follow its encoding, for this reason.
fn bad(reason: &'static str) -> FormError {
    FormError::BadEncoding(reason)
}

// ---------------------------------------------------------------------------
// Content-Type and header parameters
// ---------------------------------------------------------------------------

/// The two encodings a compose form may arrive in.
#[derive(Debug, PartialEq, Eq)]
enum Encoding {
    Multipart { boundary: String },
    UrlEncoded,
}

/// Decides the encoding from the `Content-Type` value.
fn classify(content_type: Option<&str>) -> Result<Encoding, FormError> {
    let (media_type, params) = split_media_type(content_type.unwrap_or_default());
    if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        // Its only parameter would be `charset`; HTML forms on our UTF-8 pages
        // always send UTF-8, which is what the decoder insists on anyway.
        return Ok(Encoding::UrlEncoded);
    }
    if !media_type.eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::UnsupportedContentType);
    }
    let params = parse_params(params)?;
    let boundary = param(&params, "boundary").ok_or(FormError::MissingBoundary)?;
    check_boundary(boundary)?;
    Ok(Encoding::Multipart {
        boundary: boundary.to_owned(),
    })
}

/// Splits `type/subtype; params` into the trimmed type and the raw parameters.
/// Also used for `Content-Disposition`, whose shape is the same.
fn split_media_type(value: &str) -> (&str, &str) {
    let (main, params) = value.split_once(';').unwrap_or((value, ""));
    (main.trim(), params)
}

/// Parameters as (lower-cased name, value) pairs.
type Params = Vec<(String, String)>;

/// Looks up a parameter by its lower-case name.
fn param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Parses `; name=value; name2="quoted value"` (the part after the first `;`).
///
/// Names are case-insensitive, so they are lower-cased. A repeated name is
/// refused: two `boundary` or two `name` parameters are ambiguous, and guessing
/// is how parsers in a chain end up disagreeing.
fn parse_params(mut rest: &str) -> Result<Params, FormError> {
    let mut params = Params::new();
    loop {
        // Tolerate empty parameters (`a=1;;b=2`) and a trailing `;`.
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Ok(params);
        }
        let (name, value, after) = parse_one_param(rest)?;
        if params.len() == MAX_PARAMS {
            return Err(bad("a header has too many parameters"));
        }
        if param(&params, &name).is_some() {
            return Err(bad("a header repeats a parameter"));
        }
        params.push((name, value));
        rest = after;
    }
}

/// Parses one `name=value` at the start of `input`; returns the lower-cased
/// name, the value and what follows (starting at the next `;` or empty).
fn parse_one_param(input: &str) -> Result<(String, String, &str), FormError> {
    let name_end = input.find(['=', ';']).unwrap_or(input.len());
    let (name, rest) = input.split_at(name_end);
    let name = name.trim();
    let Some(rest) = rest.strip_prefix('=') else {
        return Err(bad("a header parameter has no value"));
    };
    if name.is_empty() {
        return Err(bad("a header parameter has no name"));
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let (value, after) = match rest.strip_prefix('"') {
        Some(quoted) => parse_quoted(quoted)?,
        None => {
            let end = rest.find(';').unwrap_or(rest.len());
            let (token, after) = rest.split_at(end);
            (token.trim_end().to_owned(), after)
        }
    };
    Ok((name.to_ascii_lowercase(), value, after))
}

/// Reads a quoted string whose opening `"` is already consumed; returns the
/// value and what follows the closing quote (which must be `;` or the end).
///
/// Only `\"` and `\\` are treated as escapes. Browsers do not escape
/// backslashes (they percent-encode quotes instead), so a Windows path such
/// as `C:\photos\cat.png` must keep its backslashes.
fn parse_quoted(input: &str) -> Result<(String, &str), FormError> {
    let mut value = String::new();
    let mut chars = input.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let after = input.get(i + 1..).unwrap_or_default();
                return Ok((value, expect_param_end(after)?));
            }
            '\\' if matches!(input.get(i + 1..i + 2), Some("\"" | "\\")) => {
                // Keep the escaped character, skip the backslash.
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            _ => value.push(c),
        }
    }
    Err(bad("a quoted header parameter is not closed"))
}

/// After a quoted value only whitespace may come before the next `;`.
fn expect_param_end(after: &str) -> Result<&str, FormError> {
    let after = after.trim_start_matches([' ', '\t']);
    if after.is_empty() || after.starts_with(';') {
        Ok(after)
    } else {
        Err(bad(
            "a quoted header parameter is followed by stray characters",
        ))
    }
}

/// RFC 2046: 1 to 70 characters from a small set, not ending in a space.
/// Refusing anything else keeps CR, LF and other surprises out of the
/// delimiter we search for.
fn check_boundary(boundary: &str) -> Result<(), FormError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    let valid = !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY_LEN
        && boundary.bytes().all(allowed)
        && !boundary.ends_with(' ');
    if valid {
        Ok(())
    } else {
        Err(bad(
            "the multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? characters",
        ))
    }
}

// ---------------------------------------------------------------------------
// Collected fields (shared by both encodings)
// ---------------------------------------------------------------------------

/// The fields we care about, as found in the body, before validation.
#[derive(Default)]
struct Fields<'a> {
    /// Parts or pairs seen so far, known or not (for [`MAX_FIELDS`]).
    seen: usize,
    text: Option<Cow<'a, str>>,
    image: Option<RawFile<'a>>,
}

/// A file part as sent, before size and type checks.
struct RawFile<'a> {
    data: &'a [u8],
    filename: String,
}

impl<'a> Fields<'a> {
    /// Counts one more part or pair; called before doing any work on it.
    fn count_one(&mut self) -> Result<(), FormError> {
        self.seen += 1;
        if self.seen > MAX_FIELDS {
            return Err(FormError::TooManyFields);
        }
        Ok(())
    }

    fn set_text(&mut self, text: Cow<'a, str>) -> Result<(), FormError> {
        if self.text.is_some() {
            return Err(FormError::DuplicateField("text"));
        }
        self.text = Some(text);
        Ok(())
    }

    fn set_image(&mut self, file: RawFile<'a>) -> Result<(), FormError> {
        if self.image.is_some() {
            return Err(FormError::DuplicateField("image"));
        }
        self.image = Some(file);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// application/x-www-form-urlencoded
// ---------------------------------------------------------------------------

/// Parses `name=value&...`. Only `text` is used: this encoding cannot carry a
/// file, so a field called `image` is just another unknown field.
fn parse_urlencoded(body: &[u8]) -> Result<Fields<'static>, FormError> {
    let mut fields = Fields::default();
    // Empty pairs (`a=1&&b=2`, a trailing `&`) are skipped, as browsers do.
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        fields.count_one()?;
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let name = decode_component(halves.next().unwrap_or_default())?;
        let value = decode_component(halves.next().unwrap_or_default())?;
        if name == "text" {
            fields.set_text(Cow::Owned(value))?;
        }
    }
    Ok(fields)
}

/// Strictly decodes one urlencoded name or value: `+` is a space, `%XX` a
/// byte, and the result must be UTF-8.
///
/// `form_urlencoded::parse` would replace bad bytes with U+FFFD and pass
/// malformed escapes through; storing something other than what was sent
/// hides client bugs, so both are refused instead.
fn decode_component(input: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.next().and_then(|&h| hex_value(h));
                let low = bytes.next().and_then(|&l| hex_value(l));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(bad("a percent escape is not % followed by two hex digits"));
                };
                out.push(high << 4 | low);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad("a field is not valid UTF-8"))
}

/// The value of one hex digit, if it is one.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// multipart/form-data
// ---------------------------------------------------------------------------

/// Parses a multipart body (RFC 7578 on top of RFC 2046).
///
/// Layout: optional preamble, `--boundary`, then for each part `CRLF`,
/// headers, a blank line and the content, each part ending where
/// `CRLF--boundary` begins; the last delimiter is followed by `--`.
fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Fields<'a>, FormError> {
    // Every delimiter but the first is preceded by CRLF, and that CRLF belongs
    // to the delimiter, not to the previous part's content.
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let finder = memmem::Finder::new(&delimiter);
    let mut rest = skip_preamble(body, &delimiter, &finder)?;
    let mut fields = Fields::default();
    while let Some(part) = start_of_part(rest)? {
        fields.count_one()?;
        let (disposition, after_head) = parse_part_head(part)?;
        let end = finder
            .find(after_head)
            .ok_or(bad("the body ends before the closing multipart boundary"))?;
        let (content, next) = after_head.split_at(end);
        add_part(&mut fields, disposition, content)?;
        rest = next.get(delimiter.len()..).unwrap_or_default();
    }
    Ok(fields)
}

/// Returns what follows the first `--boundary`, skipping any preamble (which
/// RFC 2046 says to ignore).
fn skip_preamble<'a>(
    body: &'a [u8],
    delimiter: &[u8],
    finder: &memmem::Finder<'_>,
) -> Result<&'a [u8], FormError> {
    // The first delimiter needs no CRLF before it when it opens the body.
    let dash_boundary = delimiter.get(2..).unwrap_or_default();
    if let Some(rest) = body.strip_prefix(dash_boundary) {
        return Ok(rest);
    }
    let start = finder
        .find(body)
        .ok_or(bad("the body does not contain the multipart boundary"))?;
    Ok(body.get(start + delimiter.len()..).unwrap_or_default())
}

/// Looks at what follows a delimiter: `--` closes the body (`None`; any
/// epilogue is ignored), otherwise optional spaces and a CRLF start a part.
fn start_of_part(after_delimiter: &[u8]) -> Result<Option<&[u8]>, FormError> {
    if after_delimiter.starts_with(b"--") {
        return Ok(None);
    }
    // RFC 2046 allows "transport padding" (spaces, tabs) before the CRLF.
    let padding = after_delimiter
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = after_delimiter.get(padding..).unwrap_or_default();
    match rest.strip_prefix(b"\r\n") {
        Some(part) => Ok(Some(part)),
        None if rest.is_empty() => Err(bad("the body ends before the closing multipart boundary")),
        None => Err(bad("a multipart boundary is not followed by a line break")),
    }
}

/// What a part's `Content-Disposition` says about it.
#[derive(Debug, PartialEq, Eq)]
struct Disposition {
    name: String,
    filename: Option<String>,
}

/// Parses a part's headers; returns its disposition and the bytes after the
/// blank line that ends them.
fn parse_part_head(part: &[u8]) -> Result<(Disposition, &[u8]), FormError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let (head_len, headers) = match httparse::parse_headers(part, &mut storage) {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) => {
            return Err(bad("a part's headers are not ended by a blank line"));
        }
        Err(httparse::Error::TooManyHeaders) => return Err(bad("a part has too many headers")),
        Err(_) => return Err(bad("a part's headers are malformed")),
    };
    let mut dispositions = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-disposition"));
    let value = dispositions
        .next()
        .ok_or(bad("a part has no Content-Disposition header"))?
        .value;
    if dispositions.next().is_some() {
        return Err(bad("a part has more than one Content-Disposition header"));
    }
    let disposition = parse_disposition(value)?;
    Ok((disposition, part.get(head_len..).unwrap_or_default()))
}

/// Parses `form-data; name="..."; filename="..."`.
fn parse_disposition(value: &[u8]) -> Result<Disposition, FormError> {
    // Browsers send file names as raw UTF-8.
    let value = std::str::from_utf8(value)
        .map_err(|_| bad("a part's Content-Disposition header is not valid UTF-8"))?;
    let (kind, params) = split_media_type(value);
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err(bad("a part's Content-Disposition is not form-data"));
    }
    let params = parse_params(params)?;
    let name = match param(&params, "name") {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => return Err(bad("a part has no name")),
    };
    let filename = param(&params, "filename").map(str::to_owned);
    Ok(Disposition { name, filename })
}

/// Files a part under its field; parts of unknown fields are ignored.
fn add_part<'a>(
    fields: &mut Fields<'a>,
    disposition: Disposition,
    content: &'a [u8],
) -> Result<(), FormError> {
    match disposition.name.as_str() {
        "text" => {
            let text = std::str::from_utf8(content)
                .map_err(|_| bad("the text field is not valid UTF-8"))?;
            fields.set_text(Cow::Borrowed(text))
        }
        "image" => fields.set_image(RawFile {
            data: content,
            filename: disposition.filename.unwrap_or_default(),
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Turns parsed fields into a message, applying the content rules.
fn validate(fields: Fields<'_>) -> Result<NewMessage, FormError> {
    let text = validate_text(fields.text.ok_or(FormError::MissingText)?)?;
    let image = match fields.image {
        Some(file) => validate_image(file)?,
        None => None,
    };
    Ok(NewMessage { text, image })
}

/// Normalises line breaks and checks emptiness and length.
fn validate_text(text: Cow<'_, str>) -> Result<String, FormError> {
    let text = normalize_newlines(text);
    if text.trim().is_empty() {
        return Err(FormError::EmptyText);
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(FormError::TextTooLong { chars });
    }
    Ok(text)
}

/// CRLF and lone CR become LF. Browsers send textarea line breaks as CRLF;
/// normalising makes the character count match what the user sees and keeps
/// stored text uniform whatever the client.
fn normalize_newlines(text: Cow<'_, str>) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.into_owned()
    }
}

/// Checks an attachment; `Ok(None)` when no file was chosen.
fn validate_image(file: RawFile<'_>) -> Result<Option<Image>, FormError> {
    // Browsers send an empty, nameless file part when the file input is left
    // empty. (An empty file that has a name was chosen, and fails sniffing.)
    if file.data.is_empty() && file.filename.is_empty() {
        return Ok(None);
    }
    if file.data.len() > MAX_IMAGE_BYTES {
        return Err(FormError::ImageTooLarge);
    }
    let content_type = sniff_image_type(file.data).ok_or(FormError::UnsupportedImage)?;
    Ok(Some(Image {
        data: file.data.to_vec(),
        content_type,
        filename: clean_filename(&file.filename),
    }))
}

/// The image type according to the file's magic bytes.
///
/// The client's `Content-Type` is ignored on purpose: if we served back
/// whatever type the client claimed, anyone could upload an HTML page.
fn sniff_image_type(data: &[u8]) -> Option<&'static str> {
    let [png, jpeg, gif, webp] = IMAGE_TYPES;
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(png)
    } else if data.starts_with(b"\xFF\xD8\xFF") {
        Some(jpeg)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(gif)
    } else if data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP".as_slice()) {
        Some(webp)
    } else {
        None
    }
}

/// Keeps the last path component (old browsers on Windows send
/// `C:\Users\...\cat.png`), drops control characters (the name ends up in
/// headers and logs) and caps the length.
fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    last.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real 1×1 PNG. Its bytes contain CRLF, which must not confuse the
    /// multipart parser.
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\
\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\
\r\n-\xb4\x00\x00\x00\x00IEND\xaeB`\x82";

    /// The boundary shape Chromium uses.
    const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    fn chromium_content_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    /// Builds a multipart body from (headers, content) parts, the way a
    /// browser lays it out.
    fn multipart(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (headers, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    fn text_part(text: &str) -> (&'static str, &[u8]) {
        (
            "Content-Disposition: form-data; name=\"text\"",
            text.as_bytes(),
        )
    }

    /// Parses a Chromium-shaped multipart body.
    fn parse_parts(parts: &[(&str, &[u8])]) -> Result<NewMessage, FormError> {
        parse_compose(Some(&chromium_content_type()), &multipart(BOUNDARY, parts))
    }

    fn parse_text(text: &str) -> Result<NewMessage, FormError> {
        parse_parts(&[text_part(text)])
    }

    fn parse_image(filename: &str, data: &[u8]) -> Result<NewMessage, FormError> {
        let headers = format!(
            "Content-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\n\
             Content-Type: image/png"
        );
        parse_parts(&[text_part("hi"), (&headers, data)])
    }

    fn urlencoded(body: &str) -> Result<NewMessage, FormError> {
        parse_compose(Some("application/x-www-form-urlencoded"), body.as_bytes())
    }

    fn is_bad_encoding(result: Result<NewMessage, FormError>) -> bool {
        matches!(result, Err(FormError::BadEncoding(_)))
    }

    // --- happy paths ------------------------------------------------------

    #[test]
    fn chromium_body_with_script_unicode_and_png() {
        let text = "<script>alert(1)</script>\r\nhéllo 世界 🎉";
        let body = multipart(
            BOUNDARY,
            &[
                text_part(text),
                (
                    "Content-Disposition: form-data; name=\"image\"; filename=\"dot.png\"\r\n\
                     Content-Type: image/png",
                    PNG,
                ),
            ],
        );
        let message = parse_compose(Some(&chromium_content_type()), &body).unwrap();
        // Stored verbatim (escaping is the renderer's job), CRLF normalised.
        assert_eq!(message.text, "<script>alert(1)</script>\nhéllo 世界 🎉");
        let image = message.image.unwrap();
        assert_eq!(image.data, PNG);
        assert_eq!(image.content_type, "image/png");
        assert_eq!(image.filename, "dot.png");
    }

    #[test]
    fn empty_file_part_means_no_image() {
        let message = parse_parts(&[
            text_part("no picture"),
            (
                "Content-Disposition: form-data; name=\"image\"; filename=\"\"\r\n\
                 Content-Type: application/octet-stream",
                b"",
            ),
        ])
        .unwrap();
        assert_eq!(message.text, "no picture");
        assert_eq!(message.image, None);
    }

    #[test]
    fn empty_file_with_a_name_is_not_an_image() {
        assert_eq!(
            parse_image("empty.png", b""),
            Err(FormError::UnsupportedImage)
        );
    }

    #[test]
    fn every_sniffed_image_type() {
        let webp = b"RIFF\x24\x00\x00\x00WEBPVP8 ";
        let cases: [(&[u8], &str); 5] = [
            (PNG, "image/png"),
            (b"\xFF\xD8\xFF\xE0\x00\x10JFIF", "image/jpeg"),
            (b"GIF87a\x01\x00", "image/gif"),
            (b"GIF89a\x01\x00", "image/gif"),
            (webp, "image/webp"),
        ];
        for (data, expected) in cases {
            let image = parse_image("x", data).unwrap().image.unwrap();
            assert_eq!(image.content_type, expected);
        }
    }

    #[test]
    fn text_after_image_and_unknown_fields_ignored() {
        let message = parse_parts(&[
            ("Content-Disposition: form-data; name=\"csrf\"", b"\xff\xfe"),
            (
                "Content-Disposition: form-data; name=\"image\"; filename=\"a.gif\"",
                b"GIF89a",
            ),
            text_part("last"),
        ])
        .unwrap();
        assert_eq!(message.text, "last");
        assert_eq!(message.image.unwrap().content_type, "image/gif");
    }

    #[test]
    fn quoted_boundary_and_case_insensitive_names() {
        // RFC 2046's own example boundary contains a space, so it must be quoted.
        let boundary = "simple boundary";
        let body = multipart(boundary, &[text_part("quoted")]);
        let content_type = "Multipart/Form-Data; charset=utf-8; BOUNDARY=\"simple boundary\"";
        assert_eq!(
            parse_compose(Some(content_type), &body).unwrap().text,
            "quoted"
        );
    }

    #[test]
    fn preamble_epilogue_and_transport_padding() {
        let mut body = b"This is a preamble.\r\n".to_vec();
        body.extend_from_slice(b"--xyz  \r\nContent-Disposition: form-data; name=text\r\n\r\n");
        body.extend_from_slice(b"padded\r\n--xyz--\r\nThis is an epilogue.");
        let message = parse_compose(Some("multipart/form-data; boundary=xyz"), &body).unwrap();
        assert_eq!(message.text, "padded");
    }

    #[test]
    fn crlf_and_lone_cr_become_lf() {
        let message = parse_text("a\r\nb\rc\nd\r\n\r\ne").unwrap();
        assert_eq!(message.text, "a\nb\nc\nd\n\ne");
        assert_eq!(urlencoded("text=x%0D%0Ay%0Dz").unwrap().text, "x\ny\nz");
    }

    #[test]
    fn surrounding_whitespace_is_kept() {
        assert_eq!(parse_text("  hi \n").unwrap().text, "  hi \n");
    }

    #[test]
    fn filename_keeps_last_component_only() {
        let name = |raw: &str| parse_image(raw, PNG).unwrap().image.unwrap().filename;
        assert_eq!(name(r"C:\Users\me\Pictures\cat.png"), "cat.png");
        assert_eq!(name("../../etc/passwd.png"), "passwd.png");
        assert_eq!(name(r#"say \"cheese\".png"#), "say \"cheese\".png");
        assert_eq!(name(""), "");
        assert_eq!(name(&"é".repeat(300)).chars().count(), MAX_FILENAME_CHARS);
    }

    #[test]
    fn filename_may_be_absent() {
        let message = parse_parts(&[
            text_part("hi"),
            ("Content-Disposition: form-data; name=\"image\"", PNG),
        ])
        .unwrap();
        assert_eq!(message.image.unwrap().filename, "");
    }

    // --- urlencoded -------------------------------------------------------

    #[test]
    fn urlencoded_plus_and_percent() {
        let message = urlencoded("other=1&text=h%C3%A9llo+w%6Frld%21+%F0%9F%8E%89&&").unwrap();
        assert_eq!(message.text, "héllo world! 🎉");
        assert_eq!(message.image, None);
    }

    #[test]
    fn urlencoded_charset_parameter_is_accepted() {
        let content_type = "Application/X-WWW-Form-Urlencoded; charset=UTF-8";
        let message = parse_compose(Some(content_type), b"text=ok").unwrap();
        assert_eq!(message.text, "ok");
    }

    #[test]
    fn urlencoded_rejects_invalid_utf8() {
        assert!(is_bad_encoding(urlencoded("text=%FF")));
        assert!(is_bad_encoding(urlencoded("text=%C3")));
        // Raw bytes are checked just like decoded ones.
        let result = parse_compose(Some("application/x-www-form-urlencoded"), b"text=\xff");
        assert!(is_bad_encoding(result));
    }

    #[test]
    fn urlencoded_rejects_bad_escapes() {
        for body in ["text=%G1", "text=abc%", "text=%4", "text=%%41", "te%xt=a"] {
            assert!(is_bad_encoding(urlencoded(body)), "{body}");
        }
    }

    #[test]
    fn urlencoded_image_field_is_just_unknown() {
        assert_eq!(urlencoded("image=x&text=hi").unwrap().image, None);
    }

    // --- every error variant ----------------------------------------------

    #[test]
    fn unsupported_content_types() {
        for content_type in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/json"),
            Some("multipart/mixed; boundary=abc"),
        ] {
            assert_eq!(
                parse_compose(content_type, b"text=hi"),
                Err(FormError::UnsupportedContentType),
                "{content_type:?}"
            );
        }
    }

    #[test]
    fn missing_boundary() {
        for content_type in ["multipart/form-data", "multipart/form-data; charset=utf-8"] {
            let body = multipart(BOUNDARY, &[text_part("hi")]);
            assert_eq!(
                parse_compose(Some(content_type), &body),
                Err(FormError::MissingBoundary)
            );
        }
    }

    #[test]
    fn invalid_boundaries() {
        let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
        for content_type in [
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"abc",
            "multipart/form-data; boundary=\"a\r\nb\"",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary",
            long.as_str(),
        ] {
            let result = parse_compose(Some(content_type), b"--a\r\n");
            assert!(is_bad_encoding(result), "{content_type:?}");
        }
    }

    #[test]
    fn body_without_the_boundary() {
        let body = multipart("other", &[text_part("hi")]);
        assert_eq!(
            parse_compose(Some(&chromium_content_type()), &body),
            Err(bad("the body does not contain the multipart boundary"))
        );
    }

    #[test]
    fn truncated_body_without_closing_boundary() {
        let body = multipart(BOUNDARY, &[text_part("hi")]);
        let cut = body.len() - BOUNDARY.len() - 6;
        let result = parse_compose(Some(&chromium_content_type()), &body[..cut]);
        assert_eq!(
            result,
            Err(bad("the body ends before the closing multipart boundary"))
        );
    }

    #[test]
    fn malformed_parts() {
        let cases: [&[u8]; 8] = [
            // Header block never ends.
            b"--b\r\nContent-Disposition: form-data; name=text\r\n",
            // No Content-Disposition.
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--",
            // Not form-data.
            b"--b\r\nContent-Disposition: attachment; name=text\r\n\r\nhi\r\n--b--",
            // No name / empty name.
            b"--b\r\nContent-Disposition: form-data\r\n\r\nhi\r\n--b--",
            b"--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nhi\r\n--b--",
            // Garbage after the delimiter.
            b"--bX\r\nContent-Disposition: form-data; name=text\r\n\r\nhi\r\n--b--",
            // Text that is not UTF-8.
            b"--b\r\nContent-Disposition: form-data; name=text\r\n\r\n\xff\r\n--b--",
            // Two Content-Disposition headers.
            b"--b\r\nContent-Disposition: form-data; name=text\r\n\
              Content-Disposition: form-data; name=image\r\n\r\nhi\r\n--b--",
        ];
        for body in cases {
            let result = parse_compose(Some("multipart/form-data; boundary=b"), body);
            assert!(
                is_bad_encoding(result),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn too_many_part_headers() {
        let headers = "Content-Disposition: form-data; name=\"text\"".to_owned()
            + &"\r\nX-Filler: 1".repeat(MAX_PART_HEADERS);
        let result = parse_parts(&[(&headers, b"hi")]);
        assert_eq!(result, Err(bad("a part has too many headers")));
    }

    #[test]
    fn too_many_parts() {
        let filler = (
            "Content-Disposition: form-data; name=\"x\"",
            b"1".as_slice(),
        );
        let mut parts = vec![text_part("hi")];
        parts.extend(std::iter::repeat_n(filler, MAX_FIELDS - 1));
        assert!(parse_parts(&parts).is_ok(), "exactly {MAX_FIELDS} is fine");
        parts.push(filler);
        assert_eq!(parse_parts(&parts), Err(FormError::TooManyFields));
    }

    #[test]
    fn too_many_urlencoded_fields() {
        let ok = format!("text=hi{}", "&x=1".repeat(MAX_FIELDS - 1));
        assert!(urlencoded(&ok).is_ok());
        assert_eq!(urlencoded(&(ok + "&x=1")), Err(FormError::TooManyFields));
    }

    #[test]
    fn duplicate_fields() {
        assert_eq!(
            parse_parts(&[text_part("a"), text_part("b")]),
            Err(FormError::DuplicateField("text"))
        );
        assert_eq!(
            urlencoded("text=a&text=b"),
            Err(FormError::DuplicateField("text"))
        );
        let image = (
            "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"",
            PNG,
        );
        assert_eq!(
            parse_parts(&[text_part("a"), image, image]),
            Err(FormError::DuplicateField("image"))
        );
    }

    #[test]
    fn missing_text() {
        assert_eq!(urlencoded("other=1"), Err(FormError::MissingText));
        assert_eq!(urlencoded(""), Err(FormError::MissingText));
        let image = ("Content-Disposition: form-data; name=\"image\"", PNG);
        assert_eq!(parse_parts(&[image]), Err(FormError::MissingText));
    }

    #[test]
    fn empty_or_blank_text() {
        for text in ["", " ", "\r\n\t ", "\u{a0}\u{3000}"] {
            assert_eq!(parse_text(text), Err(FormError::EmptyText), "{text:?}");
        }
        assert_eq!(urlencoded("text=+%20"), Err(FormError::EmptyText));
    }

    #[test]
    fn text_limit_counts_characters_not_bytes() {
        // 1000 characters, 2 + 3 + 4 bytes each: far more than 1000 bytes.
        let exact = "é".repeat(400) + &"世".repeat(400) + &"🎉".repeat(200);
        assert_eq!(exact.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(parse_text(&exact).unwrap().text, exact);
        let over = exact + "🎉";
        assert_eq!(
            parse_text(&over),
            Err(FormError::TextTooLong { chars: 1001 })
        );
    }

    #[test]
    fn text_limit_counts_crlf_as_one() {
        let text = "x".repeat(MAX_TEXT_CHARS - 1) + "\r\n";
        assert_eq!(
            parse_text(&text).unwrap().text.chars().count(),
            MAX_TEXT_CHARS
        );
    }

    #[test]
    fn image_size_limit() {
        let mut data = PNG.to_vec();
        data.resize(MAX_IMAGE_BYTES, 0);
        assert_eq!(
            parse_image("big.png", &data)
                .unwrap()
                .image
                .unwrap()
                .data
                .len(),
            MAX_IMAGE_BYTES
        );
        data.push(0);
        assert_eq!(parse_image("big.png", &data), Err(FormError::ImageTooLarge));
    }

    #[test]
    fn non_image_attachment() {
        // Claims to be a PNG in both name and Content-Type; the bytes say HTML.
        let html = b"<html><script>alert(1)</script></html>";
        assert_eq!(
            parse_image("cat.png", html),
            Err(FormError::UnsupportedImage)
        );
        assert_eq!(
            parse_image("x.webp", b"RIFF\0\0\0\0WEB"),
            Err(FormError::UnsupportedImage)
        );
    }

    #[test]
    fn error_messages_are_sentences() {
        let cases = [
            (
                FormError::UnsupportedContentType,
                "the form must be sent as multipart/form-data or application/x-www-form-urlencoded",
            ),
            (
                FormError::MissingBoundary,
                "the multipart/form-data content type has no boundary parameter",
            ),
            (
                FormError::BadEncoding("a part has no name"),
                "the form could not be read: a part has no name",
            ),
            (FormError::TooManyFields, "the form has more than 16 fields"),
            (
                FormError::DuplicateField("text"),
                "the form has more than one \"text\" field",
            ),
            (FormError::MissingText, "the form has no \"text\" field"),
            (FormError::EmptyText, "the message is empty"),
            (
                FormError::TextTooLong { chars: 1001 },
                "the message is 1001 characters long; at most 1000 are allowed",
            ),
            (
                FormError::ImageTooLarge,
                "the attachment is larger than 5 MiB",
            ),
            (
                FormError::UnsupportedImage,
                "the attachment must be a PNG, JPEG, GIF or WebP image",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn param_parsing() {
        let params = parse_params(r#" Name="a\"b;c"; FILENAME = "C:\x\y.png" ;; n=tok "#).unwrap();
        assert_eq!(param(&params, "name"), Some("a\"b;c"));
        assert_eq!(param(&params, "filename"), Some(r"C:\x\y.png"));
        assert_eq!(param(&params, "n"), Some("tok"));
        assert!(parse_params(r#"name="a"junk"#).is_err());
        assert!(parse_params("=a").is_err());
        assert!(
            parse_params("a=1; A=2").is_err(),
            "names are case-insensitive"
        );
        let many: String = (0..=MAX_PARAMS).map(|i| format!("; p{i}=1")).collect();
        assert!(parse_params(&many).is_err());
    }

    // --- robustness -------------------------------------------------------

    /// xorshift64: a tiny deterministic generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Whatever comes back, an accepted message must obey the rules.
    fn check_invariants(result: Result<NewMessage, FormError>) {
        if let Ok(message) = result {
            assert!(!message.text.trim().is_empty());
            assert!(!message.text.contains('\r'));
            assert!(message.text.chars().count() <= MAX_TEXT_CHARS);
            if let Some(image) = message.image {
                assert!(image.data.len() <= MAX_IMAGE_BYTES);
                assert!(sniff_image_type(&image.data).is_some());
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let body = multipart(
            BOUNDARY,
            &[
                text_part("héllo\r\n世界"),
                (
                    "Content-Disposition: form-data; name=\"image\"; filename=\"a\\\"b.png\"",
                    PNG,
                ),
            ],
        );
        let content_types = [
            chromium_content_type(),
            "application/x-www-form-urlencoded".to_owned(),
        ];
        let splices: [&[u8]; 8] = [
            b"\r\n",
            b"--",
            b"\"",
            b"\\",
            b"%",
            b"\r\n\r\n",
            BOUNDARY.as_bytes(),
            b"\xff",
        ];
        for content_type in &content_types {
            // Every prefix and every suffix.
            for cut in 0..=body.len() {
                check_invariants(parse_compose(Some(content_type), &body[..cut]));
                check_invariants(parse_compose(Some(content_type), &body[cut..]));
            }
            // Random edits: overwrite, delete, insert a tricky fragment.
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            for _ in 0..3000 {
                let mut mutated = body.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(mutated.len() + 1);
                    match rng.below(3) {
                        0 if at < mutated.len() => mutated[at] = rng.next() as u8,
                        1 if at < mutated.len() => {
                            mutated.remove(at);
                        }
                        _ => {
                            let splice = splices[rng.below(splices.len())];
                            mutated.splice(at..at, splice.iter().copied());
                        }
                    }
                }
                check_invariants(parse_compose(Some(content_type), &mutated));
            }
        }
        // Random content types, including broken parameter syntax.
        let mut rng = Rng(42);
        let alphabet = b"multipart/form-data; boundary=\"\\ \t;=ab";
        for _ in 0..3000 {
            let len = rng.below(48);
            let content_type: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())] as char)
                .collect();
            check_invariants(parse_compose(Some(&content_type), &body));
        }
    }
}
