//! `start_session`: an explicit session (see `ClientSession`).

use crate::client::Client;
use crate::client_session::ClientSession;
use crate::error::Result;
use crate::session::SessionOptions;

use super::option_setters;

impl Client {
    /// Starts an explicit session; [`run`](StartSession::run) returns it. Waits, as a server
    /// selection does, until the deployment says whether it supports sessions.
    pub fn start_session(&self) -> StartSession<'_> {
        StartSession {
            client: self,
            options: None,
        }
    }
}

/// Starts a session. Made by [`Client::start_session`].
#[must_use = "nothing happens until .run()"]
pub struct StartSession<'a> {
    pub(crate) client: &'a Client,
    pub(crate) options: Option<SessionOptions>,
}

impl StartSession<'_> {
    option_setters!(SessionOptions {
        causal_consistency: plain bool,
        default_transaction_options: plain crate::session::TransactionOptions,
    });

    /// Starts the session: [`ErrorKind::SessionsNotSupported`](crate::ErrorKind) if the
    /// deployment has none.
    pub fn run(self) -> Result<ClientSession> {
        ClientSession::start(self.client, self.options)
    }
}
