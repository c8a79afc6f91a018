//! One connection to one server: connect, handshake, and request/reply round trips.

pub(crate) mod connection;
mod description;
pub(crate) mod handshake;

pub(crate) use crate::wire::{get_int, get_strings};
pub(crate) use connection::Connection;
pub use description::{ServerType, StreamDescription};
pub(crate) use handshake::{check_ok, client_metadata as handshake_metadata};
