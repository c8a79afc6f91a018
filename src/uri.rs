//! Connection strings, after MongoDB's Connection String, URI Options and Auth specs. Sans-IO.
//!
//! ```text
//! mongodb[+srv]://[username[:password]@]host[:port][,host[:port]...][/[database]][?key=value[&key=value...]]
//! ```
//!
//! Parsing is strict where the specs say *invalid* (a bad port, an unescaped `@` in the user
//! name, conflicting TLS options, a mechanism without the credentials it needs) and lenient
//! where they say *warn* (an unknown option, a value of the wrong type, a repeated key): the
//! option is then ignored and a warning recorded, which [`ClientOptions`] hands to the
//! caller's warning hook. Values are validated and typed here, once; option keys are
//! case-insensitive and stored lower-cased.
//!
//! [`ClientOptions`]: crate::ClientOptions

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bson::Document;

use crate::error::{Error, Result};

/// A parsed connection string. Its `Debug` never prints a secret: the credential's password
/// and mechanism property values, and `proxyPassword`, show as `***`.
#[derive(Clone, PartialEq)]
pub struct ConnectionString {
    /// `mongodb+srv://`: the single host is an SRV record name.
    pub srv: bool,
    /// The hosts, in order.
    pub hosts: Vec<HostSpec>,
    /// Credentials, resolved per the auth spec (source and mechanism defaults applied).
    pub credential: Option<Credential>,
    /// The database in the path, percent-decoded.
    pub database: Option<String>,
    /// Valid options, keyed by lower-cased name.
    pub options: BTreeMap<String, OptionValue>,
    /// Why options were ignored, or keys repeated.
    pub warnings: Vec<String>,
}

/// One host of the seed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSpec {
    /// A TCP host; `port` is `None` when the string gave none.
    Tcp {
        /// Host name, IPv4 address, or IPv6 address without brackets.
        host: String,
        /// The port, if given.
        port: Option<u16>,
        /// Which kind of host it is.
        kind: HostKind,
    },
    /// A Unix domain socket path (percent-decoded).
    Unix {
        /// The socket's path.
        path: String,
    },
}

/// The kind of a TCP host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// A dotted IPv4 address.
    Ipv4,
    /// A bracketed IP literal (IPv6).
    IpLiteral,
    /// A name to resolve.
    Hostname,
}

/// Credentials from the string, with the auth spec's defaults applied.
#[derive(Clone, PartialEq)]
pub struct Credential {
    /// The user name.
    pub username: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// The database that holds the user (`authSource`).
    pub source: String,
    /// The mechanism, when one was named.
    pub mechanism: Option<String>,
    /// `authMechanismProperties`, with defaults.
    pub mechanism_properties: Option<Document>,
}

impl std::fmt::Debug for Credential {
    /// Never prints the password, nor the values of the mechanism properties (they can hold
    /// secrets, such as an AWS session token): only their names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties = self
            .mechanism_properties
            .as_ref()
            .map(|p| p.keys().map(|k| format!("{k}: ***")).collect::<Vec<_>>());
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("source", &self.source)
            .field("mechanism", &self.mechanism)
            .field("mechanism_properties", &properties)
            .finish()
    }
}

/// Option names whose values may be secrets (a proxy's password; an AWS session token among
/// the mechanism properties), lower-cased as `ConnectionString::options` keys them.
const SECRET_OPTIONS: &[&str] = &["proxypassword", "authmechanismproperties"];

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: BTreeMap<&str, String> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_OPTIONS.contains(&k.as_str()) {
                    "***".to_string()
                } else {
                    format!("{v:?}")
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("ConnectionString")
            .field("srv", &self.srv)
            .field("hosts", &self.hosts)
            .field("credential", &self.credential)
            .field("database", &self.database)
            .field("options", &options)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// A typed option value.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A string.
    Str(String),
    /// A comma-separated list (`compressors`).
    List(Vec<String>),
    /// `key:value,key:value` (`authMechanismProperties`).
    Doc(Document),
    /// Repeatable `key:value,...` lists (`readPreferenceTags`).
    Docs(Vec<Document>),
}

/// How an option's value is read.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    /// A whole number at least this large.
    Int(i64),
    /// A whole number in this range.
    Range(i64, i64),
    Str,
    /// One of these strings (compared case-insensitively; stored as given in the table).
    OneOf(&'static [&'static str]),
    /// A comma-separated list; unknown entries warn and are dropped.
    Compressors,
    /// `w`: a number or a tag-set name.
    W,
    Props,
    Tags,
}

/// Every option this driver recognises: canonical name and how to read it.
const OPTIONS: &[(&str, Kind)] = &[
    ("appName", Kind::Str),
    ("authMechanism", Kind::Str),
    ("authMechanismProperties", Kind::Props),
    ("authSource", Kind::Str),
    ("compressors", Kind::Compressors),
    ("connectTimeoutMS", Kind::Int(0)),
    // This driver's own: which core runs the client (see `ClientOptions::core`).
    ("core", Kind::OneOf(&["coroutine", "threaded"])),
    ("directConnection", Kind::Bool),
    ("heartbeatFrequencyMS", Kind::Int(500)),
    ("journal", Kind::Bool),
    ("loadBalanced", Kind::Bool),
    ("localThresholdMS", Kind::Int(0)),
    ("maxConnecting", Kind::Int(1)),
    ("maxIdleTimeMS", Kind::Int(0)),
    ("maxPoolSize", Kind::Int(0)),
    ("maxStalenessSeconds", Kind::Int(-1)),
    ("minPoolSize", Kind::Int(0)),
    ("proxyHost", Kind::Str),
    ("proxyPassword", Kind::Str),
    ("proxyPort", Kind::Int(0)),
    ("proxyUsername", Kind::Str),
    (
        "readConcernLevel",
        Kind::Str, // any level: servers add levels, and the server validates
    ),
    (
        "readPreference",
        Kind::OneOf(&[
            "primary",
            "primaryPreferred",
            "secondary",
            "secondaryPreferred",
            "nearest",
        ]),
    ),
    ("readPreferenceTags", Kind::Tags),
    ("replicaSet", Kind::Str),
    ("retryReads", Kind::Bool),
    ("retryWrites", Kind::Bool),
    (
        "serverMonitoringMode",
        Kind::OneOf(&["auto", "stream", "poll"]),
    ),
    ("serverSelectionTimeoutMS", Kind::Int(0)),
    ("serverSelectionTryOnce", Kind::Bool),
    ("socketTimeoutMS", Kind::Int(0)),
    ("srvMaxHosts", Kind::Int(0)),
    ("srvServiceName", Kind::Str),
    ("ssl", Kind::Bool),
    ("timeoutMS", Kind::Int(0)),
    ("tls", Kind::Bool),
    ("tlsAllowInvalidCertificates", Kind::Bool),
    ("tlsAllowInvalidHostnames", Kind::Bool),
    ("tlsCAFile", Kind::Str),
    ("tlsCertificateKeyFile", Kind::Str),
    ("tlsCertificateKeyFilePassword", Kind::Str),
    ("tlsDisableCertificateRevocationCheck", Kind::Bool),
    ("tlsDisableOCSPEndpointCheck", Kind::Bool),
    ("tlsInsecure", Kind::Bool),
    (
        "uuidRepresentation",
        Kind::OneOf(&[
            "unspecified",
            "standard",
            "csharpLegacy",
            "javaLegacy",
            "pythonLegacy",
        ]),
    ),
    ("w", Kind::W),
    ("waitQueueTimeoutMS", Kind::Int(0)),
    ("wTimeoutMS", Kind::Int(0)),
    ("zlibCompressionLevel", Kind::Range(-1, 9)),
    // Client backpressure options: parsed and validated; this driver does not act on them yet.
    ("maxAdaptiveRetries", Kind::Int(0)),
    ("enableOverloadRetargeting", Kind::Bool),
];

/// Options whose repetition makes the whole string invalid (the proxy spec's rule).
const NO_REPEAT: &[&str] = &["proxyhost", "proxyport", "proxyusername", "proxypassword"];

const MECHANISMS: &[&str] = &[
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "PLAIN",
    "GSSAPI",
    "MONGODB-X509",
    "MONGODB-AWS",
    "MONGODB-OIDC",
];

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid_uri(msg)
}

/// Decodes `%XX` escapes, refusing a `%` not followed by two hex digits.
pub(crate) fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    invalid(format!("{what} has a '%' not followed by two hex digits"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("{what} is not UTF-8 once decoded")))
}

impl ConnectionString {
    /// Parses a connection string. Errors name the part at fault and never contain the
    /// password.
    pub fn parse(uri: &str) -> Result<ConnectionString> {
        let (srv, rest) = if let Some(r) = uri.strip_prefix("mongodb://") {
            (false, r)
        } else if let Some(r) = uri.strip_prefix("mongodb+srv://") {
            (true, r)
        } else {
            return Err(invalid(
                "the connection string must start with mongodb:// or mongodb+srv://",
            ));
        };
        // The host section runs to the first '/' or '?' (the '/' before options is optional).
        let (authority, path_and_query) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], Some(&rest[i + 1..])),
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (userinfo, hosts_part) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(ui) => parse_userinfo(ui)?,
            None => (None, None),
        };
        let hosts = parse_hosts(hosts_part)?;
        if srv {
            if hosts.len() != 1 {
                return Err(invalid("mongodb+srv:// takes exactly one host name"));
            }
            if matches!(hosts[0], HostSpec::Tcp { port: Some(_), .. }) {
                return Err(invalid("mongodb+srv:// host names take no port"));
            }
        }

        let (db, query) = match path_and_query {
            Some(pq) => match pq.split_once('?') {
                Some((d, q)) => (d, q),
                None => (pq, ""),
            },
            None => ("", ""),
        };
        let database = if db.is_empty() {
            None
        } else {
            let db = percent_decode(db, "the database name")?;
            if db.chars().any(|c| "/\\ \"$".contains(c)) {
                return Err(invalid(format!(
                    "database name {db:?} contains one of / \\ space \" $"
                )));
            }
            Some(db)
        };

        let mut cs = ConnectionString {
            srv,
            hosts,
            credential: None,
            database,
            options: BTreeMap::new(),
            warnings: Vec::new(),
        };
        cs.parse_options(query)?;
        cs.validate()?;
        cs.credential =
            resolve_credential(username, password, cs.database.as_deref(), &cs.options)?;
        Ok(cs)
    }

    fn parse_options(&mut self, query: &str) -> Result<()> {
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("option {pair:?} is not key=value")))?;
            let lower = key.to_ascii_lowercase();
            let Some((name, kind)) = OPTIONS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(key))
                .copied()
            else {
                self.warnings.push(format!("unknown option {key} ignored"));
                continue;
            };
            // Pair lists are split on their raw commas first: an escaped comma (%2C) belongs to
            // a value.
            let value = match kind {
                Kind::Props | Kind::Tags => value.to_string(),
                _ => percent_decode(value, name)?,
            };
            if seen.contains(&lower) && !matches!(kind, Kind::Tags) {
                if NO_REPEAT.contains(&lower.as_str()) {
                    return Err(invalid(format!("option {name} is given more than once")));
                }
                self.warnings
                    .push(format!("option {name} is repeated; the last value is used"));
            }
            seen.push(lower.clone());
            match read_value(name, kind, &value, &mut self.warnings)? {
                Some(OptionValue::Docs(mut tags)) => match self.options.get_mut(&lower) {
                    Some(OptionValue::Docs(all)) => all.append(&mut tags),
                    _ => {
                        self.options.insert(lower, OptionValue::Docs(tags));
                    }
                },
                Some(v) => {
                    self.options.insert(lower, v);
                }
                None => {}
            }
        }
        // Deprecated spellings give way to their replacements.
        if self.options.contains_key("wtimeoutms") {
            self.options.remove("wtimeout");
        }
        Ok(())
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.options.get(key) {
            Some(OptionValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// The cross-option rules that make a string invalid.
    fn validate(&self) -> Result<()> {
        let has = |k: &str| self.options.contains_key(k);
        if let (Some(tls), Some(ssl)) = (self.bool("tls"), self.bool("ssl"))
            && tls != ssl
        {
            return Err(invalid("tls and ssl disagree"));
        }
        for (a, b) in [
            ("tlsinsecure", "tlsallowinvalidcertificates"),
            ("tlsinsecure", "tlsallowinvalidhostnames"),
            ("tlsinsecure", "tlsdisablecertificaterevocationcheck"),
            ("tlsinsecure", "tlsdisableocspendpointcheck"),
            (
                "tlsallowinvalidcertificates",
                "tlsdisablecertificaterevocationcheck",
            ),
            ("tlsallowinvalidcertificates", "tlsdisableocspendpointcheck"),
            (
                "tlsdisablecertificaterevocationcheck",
                "tlsdisableocspendpointcheck",
            ),
        ] {
            if has(a) && has(b) {
                return Err(invalid(format!("options {a} and {b} cannot be combined")));
            }
        }
        if self.bool("directconnection") == Some(true) {
            if self.srv {
                return Err(invalid(
                    "directConnection=true cannot be used with mongodb+srv",
                ));
            }
            if self.hosts.len() > 1 {
                return Err(invalid("directConnection=true takes exactly one host"));
            }
        }
        if self.bool("loadbalanced") == Some(true) {
            if self.hosts.len() > 1 {
                return Err(invalid("loadBalanced=true takes exactly one host"));
            }
            if self.bool("directconnection") == Some(true) {
                return Err(invalid(
                    "loadBalanced and directConnection cannot both be true",
                ));
            }
            if has("replicaset") {
                return Err(invalid(
                    "loadBalanced=true cannot be combined with replicaSet",
                ));
            }
        }
        if !self.srv && (has("srvservicename") || has("srvmaxhosts")) {
            return Err(invalid(
                "srvServiceName and srvMaxHosts need mongodb+srv://",
            ));
        }
        if matches!(self.options.get("srvmaxhosts"), Some(OptionValue::Int(n)) if *n > 0)
            && (has("replicaset") || self.bool("loadbalanced") == Some(true))
        {
            return Err(invalid(
                "srvMaxHosts cannot be combined with replicaSet or loadBalanced",
            ));
        }
        if !has("proxyhost") && (has("proxyport") || has("proxyusername") || has("proxypassword")) {
            return Err(invalid("proxy options need proxyHost"));
        }
        if has("proxyusername") != has("proxypassword") {
            return Err(invalid("proxyUsername and proxyPassword go together"));
        }
        Ok(())
    }
}

fn parse_userinfo(ui: &str) -> Result<(Option<String>, Option<String>)> {
    if ui.contains('@') {
        return Err(invalid(
            "the user name or password contains an unescaped '@'",
        ));
    }
    let (user, pass) = match ui.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (ui, None),
    };
    if pass.is_some_and(|p| p.contains(':')) {
        return Err(invalid("the password contains an unescaped ':'"));
    }
    if user.is_empty() {
        return Err(invalid("the user name is empty"));
    }
    let user = percent_decode(user, "the user name")?;
    let pass = pass
        .map(|p| percent_decode(p, "the password"))
        .transpose()?;
    Ok((Some(user), pass))
}

fn parse_hosts(s: &str) -> Result<Vec<HostSpec>> {
    if s.is_empty() {
        return Err(invalid("no host given"));
    }
    s.split(',').map(parse_host).collect()
}

fn parse_host(s: &str) -> Result<HostSpec> {
    if s.is_empty() {
        return Err(invalid("empty host in the host list"));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| invalid(format!("unterminated IP literal in {s:?}")))?;
        let port = match &rest[end + 1..] {
            "" => None,
            p => Some(parse_port(
                p.strip_prefix(':')
                    .ok_or_else(|| invalid(format!("unexpected text after IP literal in {s:?}")))?,
                s,
            )?),
        };
        return Ok(HostSpec::Tcp {
            host: rest[..end].to_ascii_lowercase(),
            port,
            kind: HostKind::IpLiteral,
        });
    }
    let decoded = percent_decode(s, "a host")?;
    if decoded.contains('/') {
        if !decoded.ends_with(".sock") {
            return Err(invalid(format!(
                "{decoded:?}: a Unix socket path must end in .sock"
            )));
        }
        return Ok(HostSpec::Unix { path: decoded });
    }
    let (host, port) = match decoded.split_once(':') {
        Some((h, p)) => {
            if p.contains(':') {
                return Err(invalid(format!(
                    "{s:?} has more than one ':' (IPv6 addresses go in brackets)"
                )));
            }
            (h, Some(parse_port(p, s)?))
        }
        None => (decoded.as_str(), None),
    };
    if host.is_empty() {
        return Err(invalid(format!("empty host name in {s:?}")));
    }
    let kind = if host.parse::<Ipv4Addr>().is_ok() {
        HostKind::Ipv4
    } else {
        HostKind::Hostname
    };
    Ok(HostSpec::Tcp {
        host: host.to_ascii_lowercase(),
        port,
        kind,
    })
}

fn parse_port(p: &str, host: &str) -> Result<u16> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 && p.chars().all(|c| c.is_ascii_digit()) => Ok(port),
        _ => Err(invalid(format!(
            "invalid port {p:?} in {host:?} (must be 1-65535)"
        ))),
    }
}

/// Reads a raw `key:value,key:value`, percent-decoding each key and value. A decoded value
/// that holds a comma is kept, with a warning (it is easily a mistake).
fn read_pairs(raw: &str, name: &str, warnings: &mut Vec<String>) -> Result<Option<Document>> {
    let mut doc = Document::new();
    for item in raw.split(',').filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once(':') else {
            return Ok(None);
        };
        let (k, v) = (percent_decode(k, name)?, percent_decode(v, name)?);
        if v.contains(',') {
            warnings.push(format!("option {name}: the value of {k} contains a comma"));
        }
        doc.insert(k, v);
    }
    Ok(Some(doc))
}

/// Reads one option's value. `Ok(None)` means "ignored, with a warning".
fn read_value(
    name: &str,
    kind: Kind,
    value: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<OptionValue>> {
    let mut warn = |why: String| {
        warnings.push(format!("option {name} ignored: {why}"));
        Ok(None)
    };
    match kind {
        Kind::Bool => match value {
            "true" => Ok(Some(OptionValue::Bool(true))),
            "false" => Ok(Some(OptionValue::Bool(false))),
            _ => warn(format!("{value:?} is not true or false")),
        },
        Kind::Int(min) => match value.parse::<i64>() {
            Ok(n) if n >= min => Ok(Some(OptionValue::Int(n))),
            Ok(n) => warn(format!("{n} is below the minimum of {min}")),
            Err(_) => warn(format!("{value:?} is not a whole number")),
        },
        Kind::Range(min, max) => match value.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(OptionValue::Int(n))),
            Ok(n) => warn(format!("{n} is outside {min}..={max}")),
            Err(_) => warn(format!("{value:?} is not a whole number")),
        },
        Kind::Str => {
            if value.is_empty() && name == "authSource" {
                return Err(invalid("authSource must not be empty"));
            }
            Ok(Some(OptionValue::Str(value.to_string())))
        }
        Kind::OneOf(choices) => match choices.iter().find(|c| c.eq_ignore_ascii_case(value)) {
            Some(c) => Ok(Some(OptionValue::Str((*c).to_string()))),
            None => warn(format!("{value:?} is not one of {}", choices.join(", "))),
        },
        Kind::Compressors => {
            let mut known = Vec::new();
            for c in value.split(',') {
                if ["snappy", "zlib", "zstd"].contains(&c) {
                    known.push(c.to_string());
                } else {
                    warnings.push(format!("compressor {c:?} is not supported and is ignored"));
                }
            }
            Ok((!known.is_empty()).then_some(OptionValue::List(known)))
        }
        // A negative w is not a wrong type but a wrong concern: the concern spec calls it
        // invalid.
        Kind::W => match value.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Some(OptionValue::Int(n))),
            Ok(n) => Err(invalid(format!(
                "w={n}: a write concern cannot be negative"
            ))),
            Err(_) => Ok(Some(OptionValue::Str(value.to_string()))),
        },
        Kind::Props | Kind::Tags => match read_pairs(value, name, warnings)? {
            Some(doc) if matches!(kind, Kind::Props) => Ok(Some(OptionValue::Doc(doc))),
            Some(doc) => Ok(Some(OptionValue::Docs(vec![doc]))),
            None => {
                warnings.push(format!(
                    "option {name} ignored: {value:?} is not key:value,..."
                ));
                Ok(None)
            }
        },
    }
}

/// Applies the auth spec's rules: defaults for source and mechanism properties, and the
/// combinations each mechanism refuses.
fn resolve_credential(
    username: Option<String>,
    password: Option<String>,
    database: Option<&str>,
    options: &BTreeMap<String, OptionValue>,
) -> Result<Option<Credential>> {
    let text = |k: &str| match options.get(k) {
        Some(OptionValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let mechanism = text("authmechanism");
    let source = text("authsource");
    let mut props = match options.get("authmechanismproperties") {
        Some(OptionValue::Doc(d)) => Some(d.clone()),
        _ => None,
    };
    if username.is_none() && mechanism.is_none() {
        return Ok(None);
    }
    let Some(mech) = mechanism.as_deref() else {
        // No mechanism: negotiated later (SCRAM); source is authSource, the path, or admin.
        return Ok(Some(Credential {
            username,
            password,
            source: source
                .or(database.map(str::to_string))
                .unwrap_or_else(|| "admin".into()),
            mechanism: None,
            mechanism_properties: props,
        }));
    };
    let mech = MECHANISMS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(mech))
        .ok_or_else(|| invalid(format!("unknown authMechanism {mech}")))?;
    let external = |source: &Option<String>| -> Result<String> {
        match source.as_deref() {
            None | Some("$external") => Ok("$external".into()),
            Some(other) => Err(invalid(format!(
                "{mech} users live in $external, not {other}"
            ))),
        }
    };
    let source = match *mech {
        "SCRAM-SHA-1" | "SCRAM-SHA-256" => {
            if username.is_none() {
                return Err(invalid(format!("{mech} needs a user name")));
            }
            source
                .or(database.map(str::to_string))
                .unwrap_or_else(|| "admin".into())
        }
        "PLAIN" => {
            if username.is_none() {
                return Err(invalid("PLAIN needs a user name"));
            }
            source
                .or(database.map(str::to_string))
                .unwrap_or_else(|| "$external".into())
        }
        "GSSAPI" => {
            if username.is_none() {
                return Err(invalid("GSSAPI needs a user name"));
            }
            let mut p = props.take().unwrap_or_default();
            if !p.contains_key("SERVICE_NAME") {
                p.insert("SERVICE_NAME", "mongodb");
            }
            if let Ok(v) = p.get_str("CANONICALIZE_HOST_NAME") {
                let v = v.to_ascii_lowercase();
                match v.as_str() {
                    "true" | "false" => {
                        p.insert("CANONICALIZE_HOST_NAME", v == "true");
                    }
                    "none" | "forward" | "forwardandreverse" => {}
                    _ => {
                        return Err(invalid(format!(
                            "CANONICALIZE_HOST_NAME {v:?} is not valid"
                        )));
                    }
                }
            }
            props = Some(p);
            external(&source)?
        }
        "MONGODB-X509" => {
            if password.is_some() {
                return Err(invalid("MONGODB-X509 takes no password"));
            }
            external(&source)?
        }
        "MONGODB-AWS" => {
            if username.is_some() != password.is_some() {
                return Err(invalid(
                    "MONGODB-AWS needs both a user name and a password, or neither",
                ));
            }
            if username.is_none()
                && props
                    .as_ref()
                    .is_some_and(|p| p.contains_key("AWS_SESSION_TOKEN"))
            {
                return Err(invalid("AWS_SESSION_TOKEN needs a user name and password"));
            }
            external(&source)?
        }
        "MONGODB-OIDC" => {
            if password.is_some() {
                return Err(invalid("MONGODB-OIDC takes no password"));
            }
            let p = props.clone().unwrap_or_default();
            for key in p.keys() {
                if !["ENVIRONMENT", "TOKEN_RESOURCE", "ALLOWED_HOSTS"].contains(&key.as_str()) {
                    return Err(invalid(format!("unsupported MONGODB-OIDC property {key}")));
                }
            }
            match p.get_str("ENVIRONMENT").ok() {
                Some("test") | Some("k8s") => {
                    if username.is_some() {
                        return Err(invalid("this MONGODB-OIDC environment takes no user name"));
                    }
                }
                Some("azure") => {
                    if !p.contains_key("TOKEN_RESOURCE") {
                        return Err(invalid("MONGODB-OIDC on azure needs TOKEN_RESOURCE"));
                    }
                }
                Some("gcp") => {
                    if !p.contains_key("TOKEN_RESOURCE") {
                        return Err(invalid("MONGODB-OIDC on gcp needs TOKEN_RESOURCE"));
                    }
                    if username.is_some() {
                        return Err(invalid("MONGODB-OIDC on gcp takes no user name"));
                    }
                }
                Some(other) => {
                    return Err(invalid(format!("unknown MONGODB-OIDC ENVIRONMENT {other}")));
                }
                None => return Err(invalid("MONGODB-OIDC needs an ENVIRONMENT property")),
            }
            external(&source)?
        }
        _ => unreachable!("listed above"),
    };
    Ok(Some(Credential {
        username,
        password,
        source,
        mechanism: Some((*mech).to_string()),
        mechanism_properties: props,
    }))
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let cs = ConnectionString::parse(
            "mongodb://u:pw-SECRET@h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok-SECRET&proxyHost=p&proxyUsername=pu&proxyPassword=proxy-SECRET",
        );
        let shown = match &cs {
            Ok(cs) => format!("{cs:?}"),
            // Refused outright (the proxy options) is fine too, if the error shows no secret.
            Err(e) => format!("{e:?} {e}"),
        };
        for secret in ["pw-SECRET", "tok-SECRET", "proxy-SECRET"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        let credential = Credential {
            username: Some("u".into()),
            password: Some("pw-SECRET".into()),
            source: "admin".into(),
            mechanism: Some("MONGODB-AWS".into()),
            mechanism_properties: Some(bson::doc! { "AWS_SESSION_TOKEN": "tok-SECRET" }),
        };
        let shown = format!("{credential:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("AWS_SESSION_TOKEN"), "{shown}");
    }

    #[test]
    fn the_proxy_password_option_is_redacted() {
        let mut cs = ConnectionString::parse("mongodb://h/").unwrap();
        cs.options.insert(
            "proxypassword".into(),
            OptionValue::Str("proxy-SECRET".into()),
        );
        assert!(!format!("{cs:?}").contains("proxy-SECRET"));
    }
}
