//! Every options type, as the official driver's `options` module has them: the client's
//! options and connection string (defined here), and, re-exported, the options of every
//! operation, concerns, selection criteria, collations, hints and index options.
//!
//! The options structs of the operations have public fields, `Default`, and
//! `X::builder()...build()` as the official crate derives it:
//!
//! ```
//! use may_mongo::options::{FindOptions, Hint};
//!
//! let options = FindOptions::builder().limit(20).batch_size(5).hint(Hint::Name("a_1".into())).build();
//! assert_eq!(options.limit, Some(20));
//! ```
//!
//! The connection string support is the subset of the Connection String spec the driver
//! uses so far: `mongodb://`, one or more `host[:port]` (IPv6 in brackets), an optional
//! default database, and the options below. Anything else is refused with an error naming
//! it, rather than silently ignored.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{CmapEvent, CommandEvent, EventHandler, SdamEvent};
use crate::runtime::Core;
use crate::topology::ReadMode;
use crate::uri::{ConnectionString, HostSpec, OptionValue};
use bson::Bson;

pub use crate::address::ServerAddress;
pub use crate::change_events::{
    ChangeStreamOptions, FullDocumentBeforeChangeType, FullDocumentType,
};
pub use crate::collation::{
    Collation, CollationAlternate, CollationCaseFirst, CollationMaxVariable, CollationStrength,
};
pub use crate::concern::{Acknowledgment, ReadConcern, ReadConcernLevel, WriteConcern};
pub use crate::crud_types::{
    AggregateOptions, BulkWriteOptions, CollectionOptions, CommitQuorum, CountOptions,
    CreateIndexOptions, CursorType, DeleteOptions, DistinctOptions, DropCollectionOptions,
    DropIndexOptions, EstimatedDocumentCountOptions, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOneOptions, FindOptions, Hint,
    InsertManyOptions, InsertOneOptions, ListIndexesOptions, ReplaceOptions, ReturnDocument,
    UpdateOptions,
};
pub use crate::db_options::{
    ChangeStreamPreAndPostImages, ClusteredIndex, CreateCollectionOptions, DatabaseOptions,
    DropDatabaseOptions, IndexOptionDefaults, ListCollectionsOptions, ListDatabasesOptions,
    RunCommandOptions, RunCursorCommandOptions, TimeseriesGranularity, TimeseriesOptions,
    ValidationAction, ValidationLevel,
};
pub use crate::gridfs_options::{
    GridFsBucketOptions, GridFsDownloadByNameOptions, GridFsFindOneOptions, GridFsFindOptions,
    GridFsUploadOptions,
};
pub use crate::index::{IndexOptions, IndexVersion, Sphere2DIndexVersion, TextIndexVersion};
pub use crate::selection_criteria::{
    HedgedReadOptions, Predicate, ReadPreference, ReadPreferenceOptions, SelectionCriteria, TagSet,
};
pub use crate::session::{SessionOptions, TransactionOptions};
pub use crate::tls::TlsOptions;
pub use crate::uri::Credential;
pub use crate::wire::Compressor;
pub use greenlet_pool::Affinity;

/// Options for a [`Client`](crate::Client). Build from a URI with [`ClientOptions::parse`],
/// then adjust fields in code; code wins over the URI.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The seed list: servers to start discovery from. Monitors find the rest of a replica
    /// set from the members' `hello` replies.
    pub hosts: Vec<ServerAddress>,
    /// `directConnection`: `Some(true)` talks to the one seed only, whatever it is;
    /// `Some(false)` always discovers; `None` (the default) connects directly to a lone seed
    /// unless `replicaSet` is given.
    pub direct_connection: Option<bool>,
    /// `replicaSet`: the set's name. Members of other sets (and standalones) are ignored.
    pub replica_set: Option<String>,
    /// `readPreference`, `readPreferenceTags`, `maxStalenessSeconds`: where reads go
    /// (`None`, the default: the primary).
    pub selection_criteria: Option<SelectionCriteria>,
    /// `serverSelectionTimeoutMS`: how long an operation waits for a suitable server
    /// (default 30 s).
    pub server_selection_timeout: Duration,
    /// `heartbeatFrequencyMS`: how often each server's monitor checks it (default 10 s).
    pub heartbeat_frequency: Duration,
    /// `localThresholdMS`: the latency window's width (default 15 ms).
    pub local_threshold: Duration,
    /// `retryReads` (default true): a read (find, aggregate without `$out`/`$merge`, count,
    /// distinct, the list commands) that fails with a network error or a "not primary" /
    /// "shutting down" error is tried once more, on a server selected afresh.
    pub retry_reads: bool,
    /// `retryWrites` (default true): a single-statement write (insert, update or delete of one
    /// document, findAndModify, `insert_many`'s batches) that fails that way is tried once
    /// more, with the same session id and transaction number so the server applies it at most
    /// once. Needs a replica set or sharded cluster; a standalone server cannot de-duplicate,
    /// so writes to one are not retried (unless nothing was sent: a failed check-out).
    pub retry_writes: bool,
    /// `timeoutMS`: a limit on each whole operation — server selection, the wait for a
    /// connection, the reply and any retry (default: none; each wait has its own option).
    /// When it runs out the call returns [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// and a connection waiting for a reply is closed. A database or collection can set its
    /// own with `with_timeout`.
    pub timeout: Option<Duration>,
    /// `compressors` (with `zlibCompressionLevel`), in order of preference. Each connection
    /// offers them in its handshake and compresses with the first one the server also named;
    /// `hello` and authentication commands always travel uncompressed. Empty (the default):
    /// no compression.
    pub compressors: Vec<crate::wire::Compressor>,
    /// Who to authenticate as: from the URI's user info and `authSource`, `authMechanism`,
    /// `authMechanismProperties`, or set in code. Every pooled connection authenticates with
    /// it before first use. Its `Debug` never shows the password.
    pub credential: Option<crate::Credential>,
    /// `tls`/`ssl` and the `tls*` options: `Some` turns TLS on for every connection, with
    /// certificate and host name verification unless the options relax them. The
    /// configuration (and any file it names) is loaded when the client is created.
    pub tls: Option<crate::TlsOptions>,
    /// Which core runs I/O and background work. This driver's own; in a connection string,
    /// `core=coroutine` (the default) or `core=threaded`, so that code which only passes a
    /// URI to `Client::with_uri_str` can be pointed at either core.
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
    /// Receives the command monitoring events (see [`crate::event`]).
    pub command_event_handler: Option<EventHandler<CommandEvent>>,
    /// Receives the connection pools' CMAP events.
    pub cmap_event_handler: Option<EventHandler<CmapEvent>>,
    /// Receives the SDAM events: topology and server changes, and heartbeats.
    pub sdam_event_handler: Option<EventHandler<SdamEvent>>,
    /// The default write concern (`w`, `wTimeoutMS`, `journal`).
    pub write_concern: Option<WriteConcern>,
    /// The default read concern (`readConcernLevel`).
    pub read_concern: Option<ReadConcern>,
    /// Warnings from parsing the connection string: options ignored, and why.
    pub warnings: Vec<String>,
    /// The Stable API version this client declares (default: none). When set, every
    /// command the client sends carries `apiVersion` (and `apiStrict`,
    /// `apiDeprecationErrors` when those are set, even to the server's default): operations,
    /// `getMore`, authentication, the connection handshake and the monitors' heartbeats
    /// alike, as the Stable API spec requires. The handshake is then `hello` over OP_MSG
    /// only: a server that does not know `hello` is not asked again with the legacy
    /// OP_QUERY `isMaster` (servers that take `apiVersion` all know `hello`); it stays
    /// `Unknown`, and operations fail server selection naming its error.
    ///
    /// Code only: the spec forbids setting it from the connection string, so that copying a
    /// URI cannot change the API an application was written against (`apiVersion` in a URI
    /// is an unknown option, ignored with a warning). [`run_command`](crate::Database::run_command)
    /// does not look inside its command: one that sets these fields itself on a client that
    /// declares a version is sent with them twice, and what the server makes of that is
    /// undefined.
    pub server_api: Option<ServerApi>,
}

/// A Stable API version, as [`ServerApi::version`] declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerApiVersion {
    /// Version 1 (`apiVersion: "1"`), MongoDB 5.0 and newer.
    V1,
}

impl ServerApiVersion {
    /// The version as commands carry it: `"1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerApiVersion::V1 => "1",
        }
    }
}

impl fmt::Display for ServerApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ServerApiVersion {
    type Err = Error;

    /// `"1"`; any other version is refused here, on the client, as the spec asks (a driver
    /// only declares versions it knows how to behave under).
    fn from_str(s: &str) -> Result<ServerApiVersion> {
        match s {
            "1" => Ok(ServerApiVersion::V1),
            other => Err(Error::invalid_argument(format!(
                "unknown Stable API version {other:?} (this driver knows \"1\")"
            ))),
        }
    }
}

/// The Stable API declaration of [`ClientOptions::server_api`]: a version, and whether the
/// server should refuse what is outside it (`strict`) or deprecated in it
/// (`deprecation_errors`). `None` sends nothing for that flag, leaving the server's default
/// (false). Build with [`ServerApi::builder`]:
///
/// ```
/// use may_mongo::{ServerApi, ServerApiVersion};
/// let api = ServerApi::builder().version(ServerApiVersion::V1).strict(true).build();
/// assert_eq!(api.strict, Some(true));
/// assert_eq!(api.deprecation_errors, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ServerApi {
    /// The declared version (`apiVersion`).
    pub version: ServerApiVersion,
    /// `apiStrict`: the server refuses commands, options and aggregation stages that are not
    /// part of the version.
    pub strict: Option<bool>,
    /// `apiDeprecationErrors`: the server refuses what the version deprecates.
    pub deprecation_errors: Option<bool>,
}

impl ServerApi {
    /// A builder; `version` must be given before `build`.
    pub fn builder() -> ServerApiBuilder {
        ServerApiBuilder {
            version: (),
            strict: None,
            deprecation_errors: None,
        }
    }

    /// The fields every command carries: `apiVersion`, then `apiStrict` and
    /// `apiDeprecationErrors` when set.
    pub(crate) fn command_fields(&self) -> bson::Document {
        let mut fields = bson::doc! { "apiVersion": self.version.as_str() };
        if let Some(strict) = self.strict {
            fields.insert("apiStrict", strict);
        }
        if let Some(errors) = self.deprecation_errors {
            fields.insert("apiDeprecationErrors", errors);
        }
        fields
    }
}

/// Builds a [`ServerApi`]. The type parameter records whether `version` was given, so that
/// a declaration without a version does not compile.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServerApiBuilder<V = ()> {
    version: V,
    strict: Option<bool>,
    deprecation_errors: Option<bool>,
}

impl<V> ServerApiBuilder<V> {
    /// The version to declare.
    pub fn version(self, version: ServerApiVersion) -> ServerApiBuilder<ServerApiVersion> {
        ServerApiBuilder {
            version,
            strict: self.strict,
            deprecation_errors: self.deprecation_errors,
        }
    }

    /// `apiStrict` (a `bool`, or `None` to send nothing).
    pub fn strict(mut self, strict: impl Into<Option<bool>>) -> Self {
        self.strict = strict.into();
        self
    }

    /// `apiDeprecationErrors` (a `bool`, or `None` to send nothing).
    pub fn deprecation_errors(mut self, deprecation_errors: impl Into<Option<bool>>) -> Self {
        self.deprecation_errors = deprecation_errors.into();
        self
    }
}

impl ServerApiBuilder<ServerApiVersion> {
    /// The declaration.
    pub fn build(self) -> ServerApi {
        ServerApi {
            version: self.version,
            strict: self.strict,
            deprecation_errors: self.deprecation_errors,
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            hosts: vec![ServerAddress {
                host: "localhost".into(),
                port: 27017,
            }],
            direct_connection: None,
            replica_set: None,
            selection_criteria: None,
            server_selection_timeout: Duration::from_secs(30),
            heartbeat_frequency: Duration::from_secs(10),
            local_threshold: Duration::from_millis(15),
            retry_reads: true,
            retry_writes: true,
            timeout: None,
            compressors: Vec::new(),
            credential: None,
            tls: None,
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
            command_event_handler: None,
            cmap_event_handler: None,
            sdam_event_handler: None,
            write_concern: None,
            read_concern: None,
            warnings: Vec::new(),
            server_api: None,
        }
    }
}

impl ClientOptions {
    /// The parse itself, with the system's name servers.
    pub(crate) fn parse_now(uri: &str) -> Result<ClientOptions> {
        let cs = ConnectionString::parse(uri)?;
        let cs = if cs.srv {
            crate::srv::resolve_seedlist(cs, &crate::srv::Resolver::system()?, Core::Coroutine)?
        } else {
            cs
        };
        ClientOptions::from_connection_string(cs)
    }

    /// The parse with the name servers `mongodb+srv://` asks given rather than read from
    /// `/etc/resolv.conf`.
    pub(crate) fn parse_with_resolver(
        uri: &str,
        resolver: &crate::srv::Resolver,
    ) -> Result<ClientOptions> {
        let cs =
            crate::srv::resolve_seedlist(ConnectionString::parse(uri)?, resolver, Core::Coroutine)?;
        ClientOptions::from_connection_string(cs)
    }

    /// Options from a parsed connection string whose SRV name (if any) is already resolved.
    fn from_connection_string(cs: ConnectionString) -> Result<ClientOptions> {
        let mut opts = ClientOptions {
            default_database: cs.database.clone(),
            warnings: cs.warnings.clone(),
            ..ClientOptions::default()
        };
        let unsupported = |what: &str| {
            Err(Error::invalid_uri(format!(
                "{what} is not supported by this driver yet"
            )))
        };
        opts.credential = cs.credential.clone();
        opts.hosts = Vec::with_capacity(cs.hosts.len());
        for h in &cs.hosts {
            match h {
                HostSpec::Tcp { host, port, .. } => opts.hosts.push(ServerAddress {
                    host: host.clone(),
                    port: port.unwrap_or(27017),
                }),
                HostSpec::Unix { path } => opts.hosts.push(ServerAddress::unix_socket(path)),
            }
        }
        let ms = |v: i64| Duration::from_millis(v as u64);
        let mut tls = TlsOptions::default();
        // The read preference's parts, put together once all are read.
        let mut read_mode = None;
        let mut tag_sets: Option<Vec<TagSet>> = None;
        let mut max_staleness = None;
        for (key, value) in &cs.options {
            match (key.as_str(), value) {
                ("appname", OptionValue::Str(s)) => opts.app_name = Some(s.clone()),
                ("core", OptionValue::Str(s)) => {
                    opts.core = if s.eq_ignore_ascii_case("threaded") {
                        Core::Threaded
                    } else {
                        Core::Coroutine
                    };
                }
                ("maxpoolsize", OptionValue::Int(n)) => opts.max_pool_size = *n as usize,
                ("minpoolsize", OptionValue::Int(n)) => opts.min_pool_size = *n as usize,
                ("maxconnecting", OptionValue::Int(n)) => opts.max_connecting = *n as usize,
                ("maxidletimems", OptionValue::Int(n)) => {
                    opts.max_idle_time = (*n > 0).then(|| ms(*n));
                }
                ("connecttimeoutms", OptionValue::Int(n)) => {
                    // 0 means "no timeout"; a day stands in for it.
                    opts.connect_timeout = if *n == 0 {
                        Duration::from_secs(86_400)
                    } else {
                        ms(*n)
                    };
                }
                ("sockettimeoutms", OptionValue::Int(n)) => {
                    opts.socket_timeout = (*n > 0).then(|| ms(*n));
                }
                ("timeoutms", OptionValue::Int(n)) => {
                    opts.timeout = (*n > 0).then(|| ms(*n));
                }
                ("waitqueuetimeoutms", OptionValue::Int(n)) => {
                    opts.wait_queue_timeout = (*n > 0).then(|| ms(*n));
                }
                ("directconnection", OptionValue::Bool(b)) => opts.direct_connection = Some(*b),
                ("replicaset", OptionValue::Str(s)) => opts.replica_set = Some(s.clone()),
                ("serverselectiontimeoutms", OptionValue::Int(n)) => {
                    opts.server_selection_timeout = ms(*n);
                }
                ("heartbeatfrequencyms", OptionValue::Int(n)) => opts.heartbeat_frequency = ms(*n),
                ("localthresholdms", OptionValue::Int(n)) => opts.local_threshold = ms(*n),
                ("retryreads", OptionValue::Bool(b)) => opts.retry_reads = *b,
                ("retrywrites", OptionValue::Bool(b)) => opts.retry_writes = *b,
                ("compressors", OptionValue::List(l)) => {
                    // The URI parser kept only names we know.
                    opts.compressors = l.iter().filter_map(|c| Compressor::from_name(c)).collect();
                }
                // Applied below, whichever of the two options came first.
                ("zlibcompressionlevel", OptionValue::Int(_)) => {}
                ("readpreference", OptionValue::Str(mode)) => {
                    read_mode =
                        Some(ReadMode::from_name(mode).expect("the URI parser checked the mode"));
                }
                ("readpreferencetags", OptionValue::Docs(sets)) => {
                    tag_sets = Some(
                        sets.iter()
                            .map(|d| {
                                d.iter()
                                    .map(|(k, v)| {
                                        (k.clone(), v.as_str().unwrap_or_default().into())
                                    })
                                    .collect()
                            })
                            .collect(),
                    );
                }
                ("maxstalenessseconds", OptionValue::Int(n)) => {
                    max_staleness = (*n >= 0).then(|| Duration::from_secs(*n as u64));
                }
                // Multi-threaded drivers ignore it (the spec says so): monitors run in the
                // background and selection waits for them.
                ("serverselectiontryonce", OptionValue::Bool(_)) => opts.warnings.push(
                    "option serverSelectionTryOnce is ignored by this multi-threaded driver".into(),
                ),
                ("w", v) => {
                    let w = match v {
                        OptionValue::Int(n) => Bson::Int64(*n),
                        OptionValue::Str(s) => Bson::String(s.clone()),
                        _ => continue,
                    };
                    opts.write_concern.get_or_insert_default().w = Some(WriteConcern::parse_w(&w)?);
                }
                ("wtimeoutms", OptionValue::Int(n)) => {
                    opts.write_concern.get_or_insert_default().w_timeout = Some(ms(*n));
                }
                ("journal", OptionValue::Bool(j)) => {
                    opts.write_concern.get_or_insert_default().journal = Some(*j);
                }
                ("readconcernlevel", OptionValue::Str(level)) => {
                    opts.read_concern = Some(ReadConcern::custom(level));
                }
                ("tls" | "ssl", OptionValue::Bool(_)) => {} // below, with the tls* options
                ("tlscafile", OptionValue::Str(path)) => tls.ca_file = Some(path.into()),
                ("tlscertificatekeyfile", OptionValue::Str(path)) => {
                    tls.cert_key_file = Some(path.into());
                }
                ("tlsallowinvalidcertificates", OptionValue::Bool(b)) => {
                    tls.allow_invalid_certificates |= *b;
                }
                ("tlsallowinvalidhostnames", OptionValue::Bool(b)) => {
                    tls.allow_invalid_hostnames |= *b;
                }
                ("tlsinsecure", OptionValue::Bool(b)) => {
                    tls.allow_invalid_certificates |= *b;
                    tls.allow_invalid_hostnames |= *b;
                }
                ("tlscertificatekeyfilepassword", _) => {
                    return unsupported("tlsCertificateKeyFilePassword (an encrypted client key)");
                }
                // No revocation or OCSP checks are made, so there is nothing to disable.
                (
                    "tlsdisablecertificaterevocationcheck" | "tlsdisableocspendpointcheck",
                    OptionValue::Bool(_),
                ) => {}
                // Used while resolving the SRV name.
                ("srvservicename" | "srvmaxhosts", _) if cs.srv => {}
                // Read into the credential by the connection string's parser. (They were
                // reported as "not used" too, unnoticed until the warnings reached the log.)
                ("authmechanism" | "authsource" | "authmechanismproperties", _) => {}
                ("loadbalanced", OptionValue::Bool(true)) => return unsupported("loadBalanced"),
                ("proxyhost", _) => return unsupported("a SOCKS5 proxy"),
                (k, _) => opts.warnings.push(format!(
                    "option {k} is recognised but not used by this driver yet"
                )),
            }
        }
        // TLS is on when the string says so; for mongodb+srv:// unless it says otherwise; and
        // when any tls* option is given, as PyMongo does. Those options used to be ignored
        // with a warning nobody printed, so `tlsCAFile=...` alone connected in plaintext (and
        // PLAIN then sent the password in clear). `tls=false` with tls* options contradicts
        // itself: refused.
        let tls_given = tls != TlsOptions::default();
        let tls_on = match cs.options.get("tls").or(cs.options.get("ssl")) {
            Some(OptionValue::Bool(false)) if tls_given => {
                return Err(Error::invalid_argument(
                    "tls=false contradicts the tls* options given with it (tlsCAFile, \
                     tlsCertificateKeyFile, tlsAllowInvalid*, tlsInsecure): remove one or \
                     the other",
                ));
            }
            Some(OptionValue::Bool(b)) => *b,
            _ => cs.srv || tls_given,
        };
        if tls_on {
            opts.tls = Some(tls);
        }
        if let Some(OptionValue::Int(level)) = cs.options.get("zlibcompressionlevel") {
            for c in &mut opts.compressors {
                if let Compressor::Zlib { level: l } = c {
                    // -1 is "zlib's default".
                    *l = u32::try_from(*level).ok();
                }
            }
        }
        let has_tags = tag_sets.iter().flatten().any(|t| !t.is_empty());
        if read_mode.unwrap_or_default() == ReadMode::Primary
            && (has_tags || max_staleness.is_some())
        {
            return Err(Error::invalid_uri(
                "readPreference=primary cannot have readPreferenceTags or maxStalenessSeconds",
            ));
        }
        if let Some(mode) = read_mode {
            let mut rp = ReadPreference::from_mode(mode);
            if let Some(sets) = tag_sets.filter(|_| mode != ReadMode::Primary) {
                rp = rp.with_tags(sets)?;
            }
            if let Some(max) = max_staleness {
                rp = rp.with_max_staleness(max)?;
            }
            opts.selection_criteria = Some(rp.into());
        }
        if let Some(wc) = &opts.write_concern {
            wc.validate()
                .map_err(|e| Error::invalid_uri(e.to_string()))?;
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn parses_hosts_db_and_options() {
        let o = ClientOptions::parse(
            "mongodb://a:1,[::1]:2,b/mydb?appName=tour&maxPoolSize=7&connectTimeoutMS=250&waitQueueTimeoutMS=0&minPoolSize=2&maxConnecting=3&maxIdleTimeMS=900",
        ).run()
        .unwrap();
        assert_eq!(o.hosts.len(), 3);
        assert_eq!(o.hosts[1].host, "::1");
        assert_eq!(o.hosts[1].to_string(), "[::1]:2");
        assert_eq!(o.hosts[2].port, 27017);
        assert_eq!(o.default_database.as_deref(), Some("mydb"));
        assert_eq!(o.app_name.as_deref(), Some("tour"));
        assert_eq!(
            (o.max_pool_size, o.min_pool_size, o.max_connecting),
            (7, 2, 3)
        );
        assert_eq!(o.connect_timeout, Duration::from_millis(250));
        assert_eq!(o.max_idle_time, Some(Duration::from_millis(900)));
        assert_eq!(o.wait_queue_timeout, None);
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn bad_structure_is_an_error_naming_the_part() {
        for (uri, needle) in [
            ("http://x", "mongodb://"),
            ("mongodb://", "no host"),
            ("mongodb://h:0", "invalid port"),
            ("mongodb://h:70000", "invalid port"),
            ("mongodb://[::1", "unterminated"),
            ("mongodb://h/?appName", "key=value"),
            (
                "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=secret",
                "tlsCertificateKeyFilePassword",
            ),
        ] {
            let e = ClientOptions::parse(uri).run().unwrap_err();
            assert!(
                matches!(*e.kind, ErrorKind::InvalidArgument { .. }),
                "{uri}"
            );
            assert!(e.to_string().contains(needle), "{uri}: {e}");
            assert!(
                !e.to_string().contains("secret"),
                "{uri}: password leaked: {e}"
            );
        }
    }

    #[test]
    fn zlib_level_applies_whichever_option_comes_first() {
        for uri in [
            "mongodb://h/?zlibCompressionLevel=9&compressors=zstd,zlib",
            "mongodb://h/?compressors=zstd,zlib&zlibCompressionLevel=9",
        ] {
            let o = ClientOptions::parse(uri).run().unwrap();
            assert_eq!(
                o.compressors,
                [Compressor::Zstd, Compressor::Zlib { level: Some(9) }]
            );
        }
        // -1 is zlib's default; an unknown compressor is dropped with a warning.
        let o = ClientOptions::parse("mongodb://h/?compressors=lz4,zlib&zlibCompressionLevel=-1")
            .run()
            .unwrap();
        assert_eq!(o.compressors, [Compressor::Zlib { level: None }]);
        assert!(
            o.warnings.iter().any(|w| w.contains("lz4")),
            "{:?}",
            o.warnings
        );
    }

    #[test]
    fn tls_options_from_the_uri() {
        let o = ClientOptions::parse("mongodb://h/").run().unwrap();
        assert_eq!(o.tls, None);
        let o = ClientOptions::parse(
            "mongodb://h/?tls=true&tlsCAFile=/ca.pem&tlsCertificateKeyFile=/me.pem&tlsAllowInvalidHostnames=true",
        ).run()
        .unwrap();
        assert_eq!(
            o.tls,
            Some(TlsOptions {
                ca_file: Some("/ca.pem".into()),
                cert_key_file: Some("/me.pem".into()),
                allow_invalid_certificates: false,
                allow_invalid_hostnames: true,
            })
        );
        let o = ClientOptions::parse("mongodb://h/?ssl=true&tlsInsecure=true")
            .run()
            .unwrap();
        let tls = o.tls.unwrap();
        assert!(tls.allow_invalid_certificates && tls.allow_invalid_hostnames);
        // tls* options turn TLS on (they were ignored: plaintext, with a warning nobody
        // read); with tls=false they are refused.
        let o = ClientOptions::parse("mongodb://h/?tlsCAFile=/ca.pem")
            .run()
            .unwrap();
        assert_eq!(
            o.tls.and_then(|t| t.ca_file),
            Some("/ca.pem".into()),
            "tlsCAFile alone means TLS"
        );
        let o = ClientOptions::parse("mongodb://h/?tlsAllowInvalidCertificates=true")
            .run()
            .unwrap();
        assert!(o.tls.is_some_and(|t| t.allow_invalid_certificates));
        // The credential's options are used, not "recognised but not used".
        let o =
            ClientOptions::parse("mongodb://u:p@h/?authSource=admin&authMechanism=SCRAM-SHA-256")
                .run()
                .unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        let e = ClientOptions::parse("mongodb://h/?tls=false&tlsCertificateKeyFile=/me.pem")
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("tls=false contradicts"), "{e}");
        // A missing CA file is an error when the client is made, naming the file.
        let o = ClientOptions::parse("mongodb://h/?tls=true&tlsCAFile=/nonexistent/ca.pem")
            .run()
            .unwrap();
        let e = crate::Client::with_options(o).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn topology_options_from_the_uri() {
        let o = ClientOptions::parse(
            "mongodb://a,b/?replicaSet=rs0&readPreference=secondary&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=&maxStalenessSeconds=120&serverSelectionTimeoutMS=500&heartbeatFrequencyMS=700&localThresholdMS=3&retryWrites=false&compressors=zstd,snappy",
        ).run()
        .unwrap();
        assert_eq!(o.replica_set.as_deref(), Some("rs0"));
        assert_eq!(o.direct_connection, None);
        let tags = |pairs: &[(&str, &str)]| -> TagSet {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            o.selection_criteria,
            Some(SelectionCriteria::ReadPreference(
                ReadPreference::Secondary {
                    options: Some(
                        ReadPreferenceOptions::builder()
                            .tag_sets(vec![tags(&[("dc", "ny"), ("rack", "1")]), tags(&[])])
                            .max_staleness(Duration::from_secs(120))
                            .build()
                    )
                }
            ))
        );
        assert_eq!(o.server_selection_timeout, Duration::from_millis(500));
        assert_eq!(o.heartbeat_frequency, Duration::from_millis(700));
        assert_eq!(o.local_threshold, Duration::from_millis(3));
        assert!(!o.retry_writes && o.retry_reads);
        assert_eq!(o.compressors, [Compressor::Zstd, Compressor::Snappy]);
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);

        let e = ClientOptions::parse("mongodb://a/?readPreferenceTags=dc:ny")
            .run()
            .unwrap_err();
        assert!(e.to_string().contains("readPreference=primary"), "{e}");
        // An unknown mode is a warning (the URI options spec), and the default stays.
        let o = ClientOptions::parse("mongodb://a/?readPreference=sideways")
            .run()
            .unwrap();
        assert_eq!(o.selection_criteria, None);
        assert!(
            o.warnings.join(" ").contains("readPreference"),
            "{:?}",
            o.warnings
        );
    }

    #[test]
    fn bad_values_and_unknown_keys_are_warnings() {
        let o = ClientOptions::parse(
            "mongodb://h/?maxPoolSize=x&connectTimeoutMS=-1&frobnicate=1&serverSelectionTryOnce=true",
        ).run()
        .unwrap();
        assert_eq!(o.max_pool_size, 100, "the bad value was ignored");
        let all = o.warnings.join("\n");
        for needle in [
            "maxPoolSize",
            "connectTimeoutMS",
            "frobnicate",
            "serverSelectionTryOnce",
        ] {
            assert!(all.contains(needle), "no warning about {needle}: {all}");
        }
    }

    #[test]
    fn the_core_can_be_chosen_in_the_connection_string() {
        let core = |uri: &str| ClientOptions::parse(uri).run().unwrap();
        assert_eq!(core("mongodb://h/").core, Core::Coroutine);
        assert_eq!(core("mongodb://h/?core=threaded").core, Core::Threaded);
        assert_eq!(core("mongodb://h/?CORE=Threaded").core, Core::Threaded);
        assert_eq!(core("mongodb://h/?core=coroutine").core, Core::Coroutine);
        let unknown = core("mongodb://h/?core=fibers");
        assert_eq!(unknown.core, Core::Coroutine, "an unknown core is ignored");
        assert!(
            unknown.warnings.join("\n").contains("core"),
            "and warned about"
        );
    }
}
