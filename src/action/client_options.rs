//! `ClientOptions::parse(uri).run()`: a connection string read into options.

use crate::error::Result;
use crate::options::ClientOptions;
use crate::srv::Resolver;

impl ClientOptions {
    /// Parses a connection string (see [`uri`](crate::uri) for the grammar and the specs it
    /// follows). Options the specs say to ignore with a warning — unknown keys, values of the
    /// wrong type, repeated keys, options this driver recognises but does not act on yet — are
    /// listed in [`warnings`](Self::warnings). Options that would be unsafe to ignore
    /// (credentials, TLS, load balancing, proxies) are refused until the
    /// driver supports them.
    ///
    /// `ClientOptions::parse(uri).run()`, as in the official crate: the parse is an action
    /// because a `mongodb+srv://` string needs DNS queries (which park a coroutine).
    pub fn parse(uri: impl AsRef<str>) -> ParseConnectionString {
        ParseConnectionString::new(uri.as_ref())
    }
}

/// Parses a connection string; for `mongodb+srv://`, looks up the SRV and TXT records.
/// Made by [`ClientOptions::parse`].
#[must_use = "nothing is parsed until .run()"]
pub struct ParseConnectionString {
    pub(crate) uri: String,
    pub(crate) resolver: Option<Resolver>,
}

impl ParseConnectionString {
    pub(crate) fn new(uri: &str) -> Self {
        ParseConnectionString {
            uri: uri.to_string(),
            resolver: None,
        }
    }

    /// The name servers to ask for a `mongodb+srv://` string, rather than those in
    /// `/etc/resolv.conf` (the official crate's `resolver_config`).
    pub fn resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Parses (and resolves).
    pub fn run(self) -> Result<ClientOptions> {
        // On a driver stack: the parser's frames are large in an unoptimised build, and an
        // SRV lookup parks the coroutine there.
        crate::runtime::on_driver_stack(|| match &self.resolver {
            Some(r) => ClientOptions::parse_with_resolver(&self.uri, r),
            None => ClientOptions::parse_now(&self.uri),
        })
    }
}
