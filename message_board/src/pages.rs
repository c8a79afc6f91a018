//! The board's two HTML pages. Every piece of user text goes through [`escape`]: a message is
//! shown as the characters its author typed, never interpreted as markup.

use std::fmt::Write;

use crate::board::Message;
use crate::form::{IMAGE_TYPES, MAX_IMAGE_BYTES, MAX_TEXT_CHARS};

/// Escapes `text` for an HTML text node or a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}\
li.message{margin:1em 0;padding:.5em 1em;border:1px solid #ccc;border-radius:4px;list-style:none}\
p.text{white-space:pre-wrap;overflow-wrap:anywhere}\
img.attachment{max-width:100%;display:block}time{color:#666;font-size:.85em}\
ol#messages{padding:0}li.message:target{border-color:#36c}textarea{width:100%;height:8em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n"
    )
}

/// `GET /`: the messages, newest first.
pub fn index(messages: &[Message]) -> String {
    let mut body = String::with_capacity(512 + messages.len() * 256);
    body.push_str(
        "<h1>Messages</h1>\n<p><a id=\"compose\" href=\"/compose\">Write a message</a></p>\n\
         <ol id=\"messages\">\n",
    );
    for m in messages {
        let posted = m.posted.try_to_rfc3339_string().unwrap_or_default();
        let _ = write!(
            body,
            "<li class=\"message\" id=\"m-{id}\" data-id=\"{id}\"><time datetime=\"{posted}\">{posted}</time>\
             <p class=\"text\">",
            id = m.id.to_hex()
        );
        push_escaped(&mut body, &m.text);
        body.push_str("</p>");
        if let Some(a) = &m.image {
            let _ = write!(
                body,
                "<img class=\"attachment\" src=\"/files/{}\" alt=\"",
                a.file_id.to_hex()
            );
            push_escaped(&mut body, &a.filename);
            body.push_str("\">");
        }
        body.push_str("</li>\n");
    }
    body.push_str("</ol>\n");
    page("Messages", &body)
}

/// `GET /compose`: the form.
pub fn compose() -> String {
    let body = format!(
        "<h1>Write a message</h1>\n\
         <form id=\"compose-form\" method=\"post\" action=\"/compose\" enctype=\"multipart/form-data\">\n\
         <p><textarea id=\"text\" name=\"text\" maxlength=\"{MAX_TEXT_CHARS}\" required></textarea></p>\n\
         <p><label>Image (optional, PNG, JPEG, GIF or WebP, at most {} MiB): \
         <input id=\"image\" type=\"file\" name=\"image\" accept=\"{}\">\
         </label></p>\n\
         <p><button id=\"submit\" type=\"submit\">Post</button> <a href=\"/\">Cancel</a></p>\n\
         </form>\n",
        MAX_IMAGE_BYTES / (1024 * 1024),
        IMAGE_TYPES.join(",")
    );
    page("Write a message", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Attachment;
    use may_mongo::bson::DateTime;
    use may_mongo::bson::oid::ObjectId;

    #[test]
    fn escapes_markup_and_quotes_and_keeps_other_text() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script> héllo 世界 🎉"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt; héllo 世界 🎉"
        );
    }

    #[test]
    fn the_index_escapes_text_and_file_names() {
        let m = Message {
            id: ObjectId::new(),
            text: "<b>hi</b>".into(),
            posted: DateTime::from_millis(0),
            image: Some(Attachment {
                file_id: ObjectId::new(),
                content_type: "image/png".into(),
                length: 3,
                filename: "\"><script>x</script>.png".into(),
            }),
        };
        let html = index(&[m]);
        assert!(html.contains("<p class=\"text\">&lt;b&gt;hi&lt;/b&gt;</p>"));
        assert!(html.contains("alt=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;.png\""));
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
    }
}
