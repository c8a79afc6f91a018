//! The connection handshake: `hello` with client metadata, and the reply check shared by
//! every command.
//!
//! The first command on a new connection introduces the driver (the `client` document, which
//! servers log and which shows up in `currentOp`) and learns the server's limits. Modern
//! servers (and FerretDB) answer OP_MSG `hello`; a server that does not know `hello` answers
//! CommandNotFound, and we ask again with the legacy OP_QUERY `isMaster`, as drivers did before
//! `hello` existed — unless the client declares a Stable API version
//! ([`ClientOptions::server_api`](crate::ClientOptions::server_api)): then the Stable API spec
//! allows `hello` over OP_MSG only, carrying the API fields like every command.

use bson::{RawBsonRef, RawDocument, doc};

use crate::error::{Error, Result};

pub(crate) use crate::topology::{MAX_WIRE_VERSION, MIN_WIRE_VERSION};
/// `CommandNotFound`: the server does not know `hello`.
pub(crate) const COMMAND_NOT_FOUND: i32 = 59;

/// The `client` metadata document sent once per connection.
pub(crate) fn client_metadata(app_name: Option<&str>, core: crate::Core) -> bson::Document {
    let mut md = doc! {
        "driver": { "name": "may_mongo", "version": env!("CARGO_PKG_VERSION") },
        "os": { "type": std::env::consts::OS, "architecture": std::env::consts::ARCH },
        "platform": format!("Rust; {} core", core.name()),
    };
    if let Some(name) = app_name {
        md.insert("application", doc! { "name": name });
    }
    md
}

/// The `hello` command for OP_MSG, offering `compressors` (in order of preference) if any.
pub(crate) fn hello_command(
    metadata: &bson::Document,
    compressors: &[crate::wire::Compressor],
) -> bson::Document {
    let mut hello = doc! { "hello": 1, "helloOk": true, "client": metadata.clone() };
    if !compressors.is_empty() {
        let names: Vec<&str> = compressors.iter().map(|c| c.name()).collect();
        hello.insert("compression", names);
    }
    hello.insert("$db", "admin");
    hello
}

/// The first of `ours` (the client's preference order) that the server named in its reply.
pub(crate) fn negotiate_compressor(
    ours: &[crate::wire::Compressor],
    theirs: &[String],
) -> Option<crate::wire::Compressor> {
    ours.iter()
        .copied()
        .find(|c| theirs.iter().any(|t| t == c.name()))
}

/// The legacy `isMaster` command for OP_QUERY on `admin.$cmd`.
pub(crate) fn is_master_command(
    metadata: &bson::Document,
    compressors: &[crate::wire::Compressor],
) -> bson::Document {
    let mut hello = hello_command(metadata, compressors);
    hello.remove("hello");
    hello.remove("$db");
    let mut is_master = doc! { "isMaster": 1 };
    is_master.extend(hello);
    is_master
}

/// Turns an `ok: 0` reply into an [`ErrorKind::Command`](crate::error::ErrorKind::Command)
/// error; `ok: 1` passes.
pub(crate) fn check_ok(reply: &RawDocument) -> Result<()> {
    let ok = match reply.get("ok") {
        Ok(Some(RawBsonRef::Double(v))) => v == 1.0,
        Ok(Some(RawBsonRef::Int32(v))) => v == 1,
        Ok(Some(RawBsonRef::Int64(v))) => v == 1,
        Ok(Some(RawBsonRef::Boolean(v))) => v,
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(Error::from_command_reply(reply))
}
