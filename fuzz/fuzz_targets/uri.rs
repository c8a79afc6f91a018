//! The connection-string parser, on any UTF-8 string.
//!
//! `ConnectionString::parse` is sans-IO and is fuzzed on every string. `ClientOptions::parse`
//! resolves `mongodb+srv://` names with DNS queries, so it is fuzzed only on `mongodb://`
//! strings, where it does no I/O (it only types and cross-checks the parsed options).
//!
//! Besides "no panic", two properties are asserted:
//! - what a parse returns is well-formed (at least one host, one for `mongodb+srv://`,
//!   lower-cased option keys);
//! - the password never shows. The same string with the letters of its password changed
//!   (the `%XX` escapes kept, so the password stays exactly as valid or invalid) must give the
//!   same outcome, the same `Debug` text when it parses and the same error message when it
//!   does not: any difference would be the password's text showing through.
#![no_main]

use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use may_mongo::ClientOptions;
use may_mongo::uri::ConnectionString;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ConnectionString::parse(uri);
    if let Ok(cs) = &parsed {
        assert!(!cs.hosts.is_empty());
        if cs.srv {
            assert_eq!(cs.hosts.len(), 1);
        }
        for key in cs.options.keys() {
            assert_eq!(*key, key.to_ascii_lowercase());
        }
    }
    // No DNS: only strings that parsed and are not mongodb+srv://.
    let options = match &parsed {
        Ok(cs) if !cs.srv => Some(ClientOptions::parse(uri).run()),
        _ => None,
    };
    if let Some(Ok(o)) = &options {
        assert_eq!(o.hosts.len(), parsed.as_ref().expect("parsed").hosts.len());
    }

    let Some(range) = password_range(uri) else {
        return;
    };
    let other = format!(
        "{}{}{}",
        &uri[..range.start],
        shift_letters(&uri[range.clone()]),
        &uri[range.end..]
    );
    let reparsed = ConnectionString::parse(&other);
    assert_eq!(outcome(&parsed), outcome(&reparsed), "for {other:?}");
    if let (Ok(a), Ok(b)) = (&parsed, &reparsed) {
        // Equal but for the password itself.
        let mut b = b.clone();
        if let (Some(ca), Some(cb)) = (&a.credential, &mut b.credential) {
            cb.password.clone_from(&ca.password);
        }
        assert_eq!(*a, b);
    }
    if let Some(options) = &options {
        let again = ClientOptions::parse(&other).run();
        assert_eq!(outcome(options), outcome(&again), "for {other:?}");
    }
});

/// What a user can see of a parse: the `Debug` text of the result, or the error message.
fn outcome<T: std::fmt::Debug>(r: &may_mongo::Result<T>) -> Result<String, String> {
    match r {
        Ok(v) => Ok(format!("{v:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Where the parser finds the password: after the first `:` of the user info, which ends at
/// the last `@` before the first `/` or `?`.
fn password_range(uri: &str) -> Option<Range<usize>> {
    let start = ["mongodb://", "mongodb+srv://"]
        .iter()
        .find_map(|s| uri.starts_with(s).then_some(s.len()))?;
    let rest = &uri[start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// `s` with each ASCII letter moved one on (z to a), except the two characters after a `%`,
/// so every escape decodes as before.
fn shift_letters(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut keep = 0;
    for c in s.chars() {
        if keep > 0 {
            keep -= 1;
            out.push(c);
            continue;
        }
        out.push(match c {
            '%' => {
                keep = 2;
                c
            }
            'z' => 'a',
            'Z' => 'A',
            c if c.is_ascii_alphabetic() => (c as u8 + 1) as char,
            c => c,
        });
    }
    out
}
