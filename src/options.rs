//! Client options and the connection string.
//!
//! This is the subset of the Connection String spec the driver uses so far: `mongodb://`,
//! one or more `host[:port]` (IPv6 in brackets), an optional default database, and the options
//! below. Anything else is refused with an error naming it, rather than silently ignored.

use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::EventHandler;
use crate::runtime::Core;

pub use greenlet_pool::Affinity;

/// A server's address: host name or IP literal, and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (27017 when the URI names none).
    pub port: u16,
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl ServerAddress {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(s: &str) -> Result<ServerAddress> {
        if s.is_empty() {
            return Err(Error::invalid_uri("empty host"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| Error::invalid_uri(format!("unterminated IPv6 literal in {s:?}")))?;
            let host = &rest[..end];
            let port = match &rest[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    Error::invalid_uri(format!("unexpected text after IPv6 literal in {s:?}"))
                })?),
            };
            (host, port)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            None => 27017,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(Error::invalid_uri(format!(
                        "invalid port {p:?} in {s:?} (must be 1-65535)"
                    )));
                }
                Ok(p) => p,
            },
        };
        if host.is_empty() {
            return Err(Error::invalid_uri(format!("empty host in {s:?}")));
        }
        Ok(ServerAddress {
            host: host.to_string(),
            port,
        })
    }
}

/// Options for a [`Client`](crate::Client). Build from a URI with [`ClientOptions::parse`],
/// then adjust fields in code; code wins over the URI.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Servers to connect to. Until topology discovery lands, operations go to the first.
    pub hosts: Vec<ServerAddress>,
    /// Which core runs I/O and background work.
    pub core: Core,
    /// `appName`: sent in the handshake metadata, visible in server logs.
    pub app_name: Option<String>,
    /// The database named in the URI path, if any.
    pub default_database: Option<String>,
    /// `maxPoolSize`: most connections per server, idle + checked out + connecting (default
    /// 100; 0 means no limit).
    pub max_pool_size: usize,
    /// `minPoolSize`: connections a background task keeps open per server (default 0).
    pub min_pool_size: usize,
    /// `maxConnecting`: most connections being opened at once per server (default 2).
    pub max_connecting: usize,
    /// `maxIdleTimeMS`: idle connections older than this are closed (default: never).
    pub max_idle_time: Option<Duration>,
    /// `connectTimeoutMS`: bounds resolving, connecting and the handshake (default 10 s).
    pub connect_timeout: Duration,
    /// `socketTimeoutMS`: bounds each read and write on an established connection (default:
    /// none).
    pub socket_timeout: Option<Duration>,
    /// `waitQueueTimeoutMS`: how long an operation waits for a pooled connection (default:
    /// none, wait until one is free).
    pub wait_queue_timeout: Option<Duration>,
    /// Which connection an operation uses: any pooled one (default), or one pinned to the
    /// calling coroutine for its whole life (PyMongo's `auto_start_request`).
    pub affinity: Affinity,
    /// Receives CMAP (and, later, SDAM) events.
    pub event_handler: Option<Handler>,
}

/// A shared event handler (a newtype so that options stay `Debug`).
#[derive(Clone)]
pub struct Handler(pub Arc<dyn EventHandler>);

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler(..)")
    }
}

impl<H: EventHandler + 'static> From<Arc<H>> for Handler {
    fn from(h: Arc<H>) -> Handler {
        Handler(h)
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            hosts: vec![ServerAddress {
                host: "localhost".into(),
                port: 27017,
            }],
            core: Core::default(),
            app_name: None,
            default_database: None,
            max_pool_size: 100,
            min_pool_size: 0,
            max_connecting: 2,
            max_idle_time: None,
            connect_timeout: Duration::from_secs(10),
            socket_timeout: None,
            wait_queue_timeout: None,
            affinity: Affinity::PerOperation,
            event_handler: None,
        }
    }
}

impl ClientOptions {
    /// Parses a `mongodb://` connection string.
    pub fn parse(uri: &str) -> Result<ClientOptions> {
        let rest = uri.strip_prefix("mongodb://").ok_or_else(|| {
            Error::invalid_uri(format!(
                "{:?} must start with mongodb:// (mongodb+srv:// comes with topology support)",
                redact(uri)
            ))
        })?;
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(Error::invalid_uri(
                "credentials in the URI are not supported yet (authentication is a later feature)",
            ));
        }
        let hosts = authority
            .split(',')
            .map(ServerAddress::parse)
            .collect::<Result<Vec<_>>>()?;
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let db = path.trim_start_matches('/');
        let mut opts = ClientOptions {
            hosts,
            default_database: (!db.is_empty()).then(|| db.to_string()),
            ..ClientOptions::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                Error::invalid_uri(format!("option {pair:?} has no value (expected key=value)"))
            })?;
            opts.apply(key, value)?;
        }
        Ok(opts)
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<()> {
        let ms = |v: &str| -> Result<Duration> {
            v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                Error::invalid_uri(format!(
                    "option {key} must be a whole number of milliseconds, got {v:?}"
                ))
            })
        };
        match key.to_ascii_lowercase().as_str() {
            "appname" => self.app_name = Some(value.to_string()),
            "maxpoolsize" => {
                self.max_pool_size = value.parse().map_err(|_| {
                    Error::invalid_uri(format!(
                        "option maxPoolSize must be a whole number, got {value:?}"
                    ))
                })?
            }
            "connecttimeoutms" => self.connect_timeout = ms(value)?,
            "sockettimeoutms" => {
                let d = ms(value)?;
                self.socket_timeout = (!d.is_zero()).then_some(d);
            }
            "waitqueuetimeoutms" => {
                let d = ms(value)?;
                self.wait_queue_timeout = (!d.is_zero()).then_some(d);
            }
            // A single host is all this version talks to, so a direct connection is what
            // every client gets.
            "directconnection" => match value {
                "true" | "false" => {}
                _ => {
                    return Err(Error::invalid_uri(format!(
                        "option directConnection must be true or false, got {value:?}"
                    )));
                }
            },
            _ => {
                return Err(Error::invalid_uri(format!(
                    "option {key} is not supported yet (supported: appName, maxPoolSize, minPoolSize, maxConnecting, maxIdleTimeMS, connectTimeoutMS, socketTimeoutMS, waitQueueTimeoutMS, directConnection)"
                )));
            }
        }
        Ok(())
    }
}

/// A URI with any password replaced, for error messages.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &uri[..s], &uri[at + 1..]),
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_hosts_db_and_options() {
        let o = ClientOptions::parse(
            "mongodb://a:1,[::1]:2,b/mydb?appName=tour&maxPoolSize=7&connectTimeoutMS=250&waitQueueTimeoutMS=0",
        )
        .unwrap();
        assert_eq!(o.hosts.len(), 3);
        assert_eq!(o.hosts[1].host, "::1");
        assert_eq!(o.hosts[1].to_string(), "[::1]:2");
        assert_eq!(o.hosts[2].port, 27017);
        assert_eq!(o.default_database.as_deref(), Some("mydb"));
        assert_eq!(o.app_name.as_deref(), Some("tour"));
        assert_eq!(o.max_pool_size, 7);
        assert_eq!(o.connect_timeout, Duration::from_millis(250));
        assert_eq!(o.wait_queue_timeout, None);
    }

    #[test]
    fn bad_uris_name_what_is_wrong() {
        for (uri, needle) in [
            ("http://x", "mongodb://"),
            ("mongodb://", "empty host"),
            ("mongodb://h:0", "invalid port"),
            ("mongodb://h:70000", "invalid port"),
            ("mongodb://[::1", "unterminated"),
            ("mongodb://h/?maxPoolSize=x", "maxPoolSize"),
            ("mongodb://h/?connectTimeoutMS=-1", "connectTimeoutMS"),
            ("mongodb://h/?frobnicate=1", "frobnicate"),
            ("mongodb://h/?appName", "no value"),
            ("mongodb://u:secret@h/", "credentials"),
        ] {
            let e = ClientOptions::parse(uri).unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::InvalidUri { .. }), "{uri}");
            assert!(e.to_string().contains(needle), "{uri}: {e}");
            assert!(
                !e.to_string().contains("secret"),
                "{uri}: password leaked: {e}"
            );
        }
    }
}
