//! Motor's introductory message board, rebuilt on may_mongo: messages in MongoDB, their
//! images in GridFS, served by a small HTTP/1.1 server on may coroutines.
//!
//! The layers, each in its own module:
//! - [`http`]: connections, one coroutine each; requests in, responses out;
//! - [`routes`]: the four routes, as plain blocking-style handlers;
//! - [`form`]: the compose form's parsing and validation (sans-IO);
//! - [`board`]: the data, through the driver;
//! - [`pages`]: HTML, with every user string escaped.

pub mod board;
pub mod form;
pub mod http;
pub mod pages;
pub mod routes;

pub use board::{Attachment, Board, Message};
