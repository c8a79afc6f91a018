//! A server's address: the one type every layer names servers by.
//!
//! It lives on its own, below everything else but the error type, so that the sans-IO rules
//! (`topology/`), the connection, the pool and the events can all name a server without
//! importing the client options, which sit above them.

use std::fmt;

use crate::error::{Error, Result};

/// A server's address: host name or IP literal, and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddress {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (27017 when the URI names none).
    pub port: u16,
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unix_socket() {
            f.write_str(&self.host)
        } else if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl ServerAddress {
    /// A Unix domain socket: `host` is the socket's path (it starts with `/`), `port` is 0.
    pub fn unix_socket(path: &str) -> ServerAddress {
        ServerAddress {
            host: path.to_string(),
            port: 0,
        }
    }

    /// True for a Unix domain socket's address.
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// The same address with the host lower-cased (host names compare case-insensitively;
    /// a socket path does not).
    pub fn lowercase(&self) -> ServerAddress {
        if self.is_unix_socket() {
            return self.clone();
        }
        ServerAddress {
            host: self.host.to_ascii_lowercase(),
            port: self.port,
        }
    }

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
