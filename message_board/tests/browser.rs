//! The message board in a real browser: headless Chromium, remote-controlled over WebDriver.
//!
//! The other tests speak HTTP to the app directly, so they check what the server *says*. This one
//! checks what a user's browser *does* with it: the compose form is filled in and submitted by
//! Chromium itself (so the request is the browser's own `multipart/form-data`, with a real file
//! chosen in the file input), the `303 See Other` is followed by the browser, the posted `<script>`
//! arrives as visible text and does not run, non-ASCII text (accents, CJK, an emoji outside the Basic
//! Multilingual Plane) survives the round trip, and the attached PNG is served so that Chromium
//! actually decodes it. A screenshot of the final page is saved for a human to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver` (run `scripts/install-browser`); the test fails,
//! with that advice, when they are missing. The server is the usual one: `$MONGODB_URI`, or an
//! embedded FerretDB.
//!
//! ```text
//! cargo test -p message_board --test browser -- --nocapture
//! ```

mod common;
mod webdriver;

use std::time::{Duration, Instant};

use message_board::{Board, http};
use serde_json::json;
use webdriver::Browser;

/// What the test posts: markup that would run if the page did not escape it (it sets a global and
/// the title), then accented Latin, CJK, an emoji (U+1F389, outside the BMP: four bytes in UTF-8, a
/// surrogate pair in JavaScript), an em dash and German sharp s.
const TEXT: &str = "<script>document.title='pwned';window.pwned=1</script> héllo 世界 🎉 — Grüße";

/// The attached image's size; Chromium must report this `naturalWidth` once it has decoded it.
const PNG_WIDTH: u32 = 40;
const PNG_HEIGHT: u32 = 30;
/// The name the file input sends (the browser sends the base name of the chosen file).
const PNG_NAME: &str = "message_board_browser_upload.png";

/// Where the screenshot of the final page goes (cargo's scratch folder for integration tests).
const SCREENSHOT: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/message_board_browser.png");

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn post_a_message_with_an_image_in_a_real_browser() {
    let started = Instant::now();
    let step = |what: &str| println!("[{:>6.2} s] {what}", started.elapsed().as_secs_f64());

    // The app, on a fresh board, on a port of its own.
    may::config().set_worker_pin(false);
    let uri = ferretdb_embed::shared_uri();
    let client = may_mongo::Client::with_uri_str(&uri).expect("client");
    let board = Board::new(&client, "message_board_browser");
    board.reset().expect("reset the board");
    let listening = http::serve(board.clone(), "127.0.0.1:0").expect("start the app");
    let base = format!("http://{}", listening.local_addr());
    step(&format!("app serving at {base} (database server {uri})"));

    // A plain HTTP client for the checks that are not the browser's business.
    let http = common::agent();

    // An older message first, so that "listed first" means something. Posted as the simplest form
    // encoding; the browser below sends multipart.
    let response = http
        .post(format!("{base}/compose"))
        .content_type("application/x-www-form-urlencoded")
        .send("text=older")
        .expect("POST the older message");
    assert_eq!(
        response.status().as_u16(),
        303,
        "POST /compose answers 303 See Other"
    );
    let older_location = header(&response, "location").unwrap_or_default().to_owned();
    let (older_path, older_fragment) = split_fragment(&older_location);
    assert_eq!(
        older_path, "/",
        "POST /compose redirects to / (got {older_location:?})"
    );

    // The image, as a real file: the browser uploads files from disk only.
    let png = gradient_png(PNG_WIDTH, PNG_HEIGHT);
    let png_path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(PNG_NAME);
    std::fs::write(&png_path, &png).expect("write the PNG to upload");

    let browser = Browser::start();
    step("chromedriver and Chromium started");

    // Fill in the form like a user: type the text, choose the file, click the button.
    browser
        .goto(&format!("{base}/compose"))
        .expect("open /compose");
    browser.find("form#compose-form").expect("the compose form");
    // chromedriver 156 types non-BMP characters such as the emoji (older chromedrivers refused them
    // with "ChromeDriver only supports characters in the BMP"; setting the textarea's value with a
    // script was the way around that).
    browser
        .find("#text")
        .and_then(|e| e.send_keys(TEXT))
        .expect("type the text");
    // For a file input, "typing" the absolute path of a file is how WebDriver chooses it.
    let png_path_str = png_path.to_str().expect("the PNG path is UTF-8");
    browser
        .find("#image")
        .and_then(|e| e.send_keys(png_path_str))
        .expect("choose the image");
    let typed = browser.find("#text").and_then(|e| e.property("value"));
    assert_eq!(
        typed.expect("the textarea's value"),
        json!(TEXT),
        "the textarea holds the text"
    );
    browser
        .find("#submit")
        .and_then(|e| e.click())
        .expect("click submit");

    // The click submits the form; the browser follows the 303 to the front page. (The redirect may
    // carry a fragment naming the new message, `/#m-<id>`: still the front page, scrolled to it.)
    let front = format!("{base}/");
    let landed = browser.wait_for(Duration::from_secs(10), "the redirect to /", |b| {
        let url = b.current_url()?;
        Ok((split_fragment(&url).0 == front).then_some(url))
    });
    let landed = landed.unwrap_or_else(|e| {
        let url = browser.current_url().unwrap_or_default();
        let source = browser.source().unwrap_or_default();
        panic!("{e}: the browser is at {url}, showing:\n{source}");
    });
    step(&format!(
        "form submitted; the browser followed the redirect to {landed}"
    ));

    // What was stored, for the page checks below.
    let stored = board.newest(10).expect("newest messages");
    assert_eq!(stored.len(), 2, "two messages stored: {stored:?}");
    let (newest, older) = (&stored[0], &stored[1]);
    assert_eq!(
        newest.text, TEXT,
        "the stored text is exactly what was typed"
    );
    assert_eq!(older.text, "older", "the older message is second");
    assert!(older.image.is_none(), "the older message has no image");
    let attachment = newest
        .image
        .as_ref()
        .expect("the new message has an attachment");
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(
        attachment.length,
        png.len() as i64,
        "the stored length is the PNG's"
    );
    assert_eq!(
        attachment.filename, PNG_NAME,
        "the file name the browser sent"
    );
    // A fragment in a redirect may only point at the message just posted.
    for (fragment, message) in [(split_fragment(&landed).1, newest), (older_fragment, older)] {
        if let Some(fragment) = fragment {
            assert_eq!(
                fragment,
                format!("m-{}", message.id.to_hex()),
                "redirect fragment"
            );
        }
    }

    // The list, newest first.
    let items = browser.find_all("li.message").expect("list items");
    assert_eq!(items.len(), 2, "two messages listed");
    let ids: Vec<_> = items
        .iter()
        .map(|li| {
            li.attribute("data-id")
                .expect("data-id")
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(ids, [newest.id.to_hex(), older.id.to_hex()], "newest first");
    let first_text = items[0].find("p.text").and_then(|p| p.text());
    assert_eq!(
        first_text.expect("first message's text"),
        TEXT,
        "shown as posted"
    );
    let second_text = items[1].find("p.text").and_then(|p| p.text());
    assert_eq!(second_text.expect("second message's text"), "older");

    // Escaped, so inert: the posted <script> must be text in a <p>, never an element. (The app's
    // Content-Security-Policy would stop an injected script from running anyway; the page-source
    // check is the one that proves the escaping itself.)
    let globals = browser
        .execute("return [typeof window.pwned, document.title];", &[])
        .expect("read window.pwned and the title");
    assert_eq!(
        globals[0],
        json!("undefined"),
        "the posted script did not run"
    );
    assert_ne!(
        globals[1],
        json!("pwned"),
        "the posted script did not set the title"
    );
    let source = browser.source().expect("page source");
    assert!(
        source.contains("&lt;script&gt;"),
        "the markup is in the page as escaped text:\n{source}"
    );
    assert!(
        !source.contains("<script>document.title"),
        "no raw <script> from the message in the page:\n{source}"
    );
    let scripts = browser.find_all("script").expect("script elements");
    assert!(
        scripts.is_empty(),
        "the page has no <script> elements at all"
    );

    // The attachment really loads: Chromium fetched and decoded it (naturalWidth is 0 for an image
    // that failed to load or decode). Images load asynchronously, so poll briefly.
    let img = items[0]
        .find("img.attachment")
        .expect("the attachment's <img>");
    let size = browser.wait_for(Duration::from_secs(10), "the image to decode", |b| {
        let size = b.execute(
            "const i = arguments[0]; \
             return i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null;",
            &[img.to_json()],
        )?;
        Ok((!size.is_null()).then_some(size))
    });
    assert_eq!(
        size.expect("the attachment decodes"),
        json!([PNG_WIDTH, PNG_HEIGHT]),
        "Chromium decoded the PNG at its size"
    );
    let src = img
        .attribute("src")
        .expect("src")
        .expect("the <img> has a src");
    assert_eq!(src, format!("/files/{}", attachment.file_id.to_hex()));
    step("message listed first, escaped; attachment decoded by Chromium");

    // The same image over plain HTTP: the very bytes uploaded, with their type.
    let mut response = http
        .get(format!("{base}{src}"))
        .call()
        .expect("GET the attachment");
    assert_eq!(response.status().as_u16(), 200, "GET {src}");
    assert_eq!(header(&response, "content-type"), Some("image/png"));
    let served = response
        .body_mut()
        .read_to_vec()
        .expect("the image's bytes");
    assert!(
        served == png,
        "{src} serves the uploaded bytes ({} of {})",
        served.len(),
        png.len()
    );

    // A screenshot of the final page, for a human.
    let shot = browser.screenshot().expect("screenshot");
    assert!(shot.starts_with(PNG_SIGNATURE), "the screenshot is a PNG");
    std::fs::write(SCREENSHOT, &shot).expect("save the screenshot");
    step(&format!(
        "screenshot ({} bytes) saved to {SCREENSHOT}",
        shot.len()
    ));

    drop(browser);
    let _ = std::fs::remove_file(&png_path);
    step("done");
}

/// `url` split at `#`: what is before, and the fragment (if any).
fn split_fragment(url: &str) -> (&str, Option<&str>) {
    match url.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (url, None),
    }
}

/// A response header as text (`None` if absent or not ASCII).
fn header<'r, B>(response: &'r ureq::http::Response<B>, name: &str) -> Option<&'r str> {
    response.headers().get(name)?.to_str().ok()
}

/// A valid `width`×`height` RGB PNG (a colour gradient), built by hand.
///
/// A PNG is an 8-byte signature and then chunks, each `length, type, data, CRC-32(type + data)`:
/// `IHDR` (size and pixel format), `IDAT` (the pixels, zlib-compressed) and `IEND`. The pixels are
/// rows of `filter byte 0` (none) plus RGB triples. zlib allows "stored" deflate blocks, which hold
/// bytes uncompressed, so no compressor is needed: a 2-byte zlib header, blocks of at most 65,535
/// bytes with their length and its complement, then the Adler-32 of the uncompressed bytes.
fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((height * (1 + 3 * width)) as usize);
    for y in 0..height {
        pixels.push(0); // filter type: none
        for x in 0..width {
            let red = (x * 255 / (width - 1).max(1)) as u8;
            let green = (y * 255 / (height - 1).max(1)) as u8;
            pixels.extend([red, green, 0xa0]);
        }
    }

    // zlib: CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (so that CMF·256 + FLG is a multiple of 31).
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = pixels.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        // Block header: BFINAL on the last block, BTYPE 00 = stored; then LEN and NLEN, little-endian.
        zlib.push(u8::from(i == blocks.len() - 1));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend(adler32(&pixels).to_be_bytes());

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), compression 0, filter method 0, no interlace.
    ihdr.extend([8, 2, 0, 0, 0]);

    let mut png = PNG_SIGNATURE.to_vec();
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &zlib[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    png
}

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), bit by bit: slow, and plenty for 4 KiB.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32: two running sums modulo 65,521, the second summing the first.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[test]
fn the_hand_made_png_has_correct_checksums() {
    // Known values: CRC-32("123456789") and Adler-32("Wikipedia").
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    let png = gradient_png(PNG_WIDTH, PNG_HEIGHT);
    assert!(png.starts_with(PNG_SIGNATURE));
    // IEND's CRC is a constant.
    assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
}
