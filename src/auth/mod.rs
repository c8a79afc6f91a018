//! Authentication: SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN, run once on each new pooled
//! connection, right after the handshake and before the pool hands it to anyone.
//!
//! A round trip is saved where the server allows: the handshake's `hello` carries
//! `speculativeAuthenticate` (the first SASL message), and a server that supports it answers
//! with its first reply inside the `hello` reply. When the user named no mechanism, `hello`
//! also asks which ones the user has (`saslSupportedMechs: "db.user"`), and SCRAM-SHA-256 is
//! chosen when offered, else SCRAM-SHA-1.
//!
//! The conversation here is written against a `send` function (command in, reply out), so it
//! is the same on both cores and testable without a socket. Monitors' connections never
//! authenticate (the monitoring spec says they must not).
//!
//! Secrets: the password lives only in the [`Credential`] (whose `Debug` hides it) and in the
//! messages derived from it. Errors name the mechanism, the user and the server's message.

mod scram;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};

use crate::error::{Error, ErrorKind, Result};
pub use crate::uri::Credential;
use scram::{Hash, KeyCache, ScramClient};

/// A mechanism this driver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mechanism {
    ScramSha1,
    ScramSha256,
    Plain,
    /// MONGODB-X509: the TLS client certificate is the credential; one `authenticate`
    /// command (or its speculative form in `hello`) tells the server to use it.
    X509,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Plain => "PLAIN",
            Mechanism::X509 => "MONGODB-X509",
        }
    }

    fn from_name(name: &str) -> Result<Mechanism> {
        match name {
            "SCRAM-SHA-1" => Ok(Mechanism::ScramSha1),
            "SCRAM-SHA-256" => Ok(Mechanism::ScramSha256),
            "PLAIN" => Ok(Mechanism::Plain),
            "MONGODB-X509" => Ok(Mechanism::X509),
            other => Err(Error::invalid_argument(format!(
                "authentication mechanism {other} is not supported by this driver \
                 (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN and MONGODB-X509 are)"
            ))),
        }
    }
}

/// A client's credential, checked, with the key cache its connections share.
pub(crate) struct Authenticator {
    user: String,
    password: String,
    /// The database holding the user (`authSource`).
    source: String,
    /// The mechanism the user named; `None`: negotiate.
    mechanism: Option<Mechanism>,
    keys: KeyCache,
    /// Connections authenticated so far (each exactly once, as it opens).
    completed: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Authenticator {
    /// Never prints the password (connection settings, and so the client's internals, hold
    /// an `Authenticator`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("user", &self.user)
            .field("password", &"***")
            .field("source", &self.source)
            .field("mechanism", &self.mechanism)
            .field("completed", &self.completed())
            .finish_non_exhaustive()
    }
}

/// A conversation begun inside `hello` (speculative authentication).
pub(crate) struct Speculative {
    mechanism: Mechanism,
    scram: Option<ScramClient>,
}

impl Authenticator {
    /// Checks a credential: a mechanism this driver speaks, a user name, a password. (For
    /// MONGODB-X509: no password, and the user name is optional — the server takes it from
    /// the certificate's subject.)
    pub(crate) fn new(credential: Credential) -> Result<Authenticator> {
        let mechanism = credential
            .mechanism
            .as_deref()
            .map(Mechanism::from_name)
            .transpose()?;
        if mechanism == Some(Mechanism::X509) {
            if credential.password.is_some() {
                return Err(Error::invalid_argument("MONGODB-X509 takes no password"));
            }
            return Ok(Authenticator {
                user: credential.username.clone().unwrap_or_default(),
                password: String::new(),
                source: "$external".to_string(),
                mechanism,
                keys: KeyCache::default(),
                completed: Default::default(),
            });
        }
        let user = credential
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::invalid_argument("a credential needs a user name"))?;
        let password = credential
            .password
            .clone()
            .ok_or_else(|| Error::invalid_argument(format!("user {user:?} has no password")))?;
        Ok(Authenticator {
            user,
            password,
            source: credential.source,
            mechanism,
            keys: KeyCache::default(),
            completed: Default::default(),
        })
    }

    /// Adds to the handshake's `hello` what authentication wants there: the mechanism
    /// question, and the first message of a speculative conversation.
    pub(crate) fn prepare_hello(&self, hello: &mut Document) -> Result<Speculative> {
        if self.mechanism == Some(Mechanism::X509) {
            // Speculative: the `authenticate` command itself rides in `hello`.
            let mut speculative = self.x509_command();
            speculative.insert("db", "$external");
            hello.insert("speculativeAuthenticate", speculative);
            return Ok(Speculative {
                mechanism: Mechanism::X509,
                scram: None,
            });
        }
        if self.mechanism.is_none() {
            hello.insert(
                "saslSupportedMechs",
                format!("{}.{}", self.source, self.user),
            );
        }
        // Without a named mechanism, speculate with the default of modern servers. PLAIN is
        // never speculative (the spec's rule): its one message is the password itself, and a
        // server that ignored it would be sent it again.
        let mechanism = self.mechanism.unwrap_or(Mechanism::ScramSha256);
        if mechanism == Mechanism::Plain {
            return Ok(Speculative {
                mechanism,
                scram: None,
            });
        }
        let (start, scram) = self.sasl_start(mechanism)?;
        let mut speculative = start;
        speculative.insert("db", self.source.clone());
        hello.insert("speculativeAuthenticate", speculative);
        Ok(Speculative { mechanism, scram })
    }

    /// How many connections have authenticated with this credential.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Completes authentication after `hello`: from the server's speculative reply when it
    /// gave one, else from the start with the negotiated mechanism. `send` runs one command
    /// (with `$db` set) and returns its reply, `ok: 0` as an error.
    pub(crate) fn authenticate(
        &self,
        speculative: Speculative,
        speculative_reply: Option<Document>,
        offered: &[String],
        send: impl FnMut(Document) -> Result<Document>,
    ) -> Result<()> {
        self.converse(speculative, speculative_reply, offered, send)?;
        self.completed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn converse(
        &self,
        speculative: Speculative,
        speculative_reply: Option<Document>,
        offered: &[String],
        mut send: impl FnMut(Document) -> Result<Document>,
    ) -> Result<()> {
        if speculative.mechanism == Mechanism::X509 {
            // A speculative reply means the server has authenticated the connection already.
            if speculative_reply.is_none() {
                let mut command = self.x509_command();
                command.insert("$db", "$external");
                send(command).map_err(|e| self.failed(Mechanism::X509, e))?;
            }
            return Ok(());
        }
        let (mechanism, mut scram, first_reply) = match speculative_reply {
            Some(reply) => (speculative.mechanism, speculative.scram, reply),
            None => {
                let mechanism = self.mechanism.unwrap_or({
                    if offered.iter().any(|m| m == "SCRAM-SHA-256") {
                        Mechanism::ScramSha256
                    } else {
                        Mechanism::ScramSha1
                    }
                });
                let (mut start, scram) = self.sasl_start(mechanism)?;
                start.insert("$db", self.source.clone());
                let reply = send(start).map_err(|e| self.failed(mechanism, e))?;
                (mechanism, scram, reply)
            }
        };
        let fail = |message: String| self.failed_with(mechanism, message);
        let Some(scram) = scram.as_mut() else {
            // PLAIN: one message, done.
            return match first_reply.get_bool("done") {
                Ok(true) => Ok(()),
                _ => Err(fail("the server did not finish the PLAIN exchange".into())),
            };
        };
        let conversation_id = first_reply
            .get("conversationId")
            .cloned()
            .ok_or_else(|| fail("the server's reply has no conversationId".into()))?;
        let server_first = payload(&first_reply).map_err(&fail)?;
        let client_final = scram
            .client_final(&server_first, &self.scram_password(mechanism)?, &self.keys)
            .map_err(|e| fail(e.to_string()))?;
        let mut reply = send(self.sasl_continue(&conversation_id, client_final))
            .map_err(|e| self.failed(mechanism, e))?;
        scram
            .verify_server_final(&payload(&reply).map_err(&fail)?)
            .map_err(|e| fail(e.to_string()))?;
        // Servers that ignore `skipEmptyExchange` want one more, empty, message.
        if !reply.get_bool("done").unwrap_or(false) {
            reply = send(self.sasl_continue(&conversation_id, Vec::new()))
                .map_err(|e| self.failed(mechanism, e))?;
            if !reply.get_bool("done").unwrap_or(false) {
                return Err(fail("the server did not finish the SCRAM exchange".into()));
            }
        }
        Ok(())
    }

    /// MONGODB-X509's `authenticate` command (without `$db`); the user only when given.
    fn x509_command(&self) -> Document {
        let mut command = bson::doc! { "authenticate": 1, "mechanism": "MONGODB-X509" };
        if !self.user.is_empty() {
            command.insert("user", self.user.clone());
        }
        command
    }

    /// True for MONGODB-X509, whose credential is the TLS client certificate.
    pub(crate) fn uses_client_certificate(&self) -> bool {
        self.mechanism == Some(Mechanism::X509)
    }

    /// The `saslStart` command (without `$db`) and, for SCRAM, the conversation it opens.
    fn sasl_start(&self, mechanism: Mechanism) -> Result<(Document, Option<ScramClient>)> {
        let (payload, scram) = match mechanism {
            Mechanism::X509 => unreachable!("MONGODB-X509 is no SASL conversation"),
            Mechanism::Plain => {
                let message = format!("\0{}\0{}", self.user, self.password);
                (message.into_bytes(), None)
            }
            Mechanism::ScramSha1 | Mechanism::ScramSha256 => {
                let hash = if mechanism == Mechanism::ScramSha1 {
                    Hash::Sha1
                } else {
                    Hash::Sha256
                };
                let nonce = {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 24]>())
                };
                let scram = ScramClient::new(hash, &self.user, &nonce);
                (scram.client_first(), Some(scram))
            }
        };
        let mut start = doc! {
            "saslStart": 1,
            "mechanism": mechanism.name(),
            "payload": binary(payload),
        };
        if scram.is_some() {
            start.insert("options", doc! { "skipEmptyExchange": true });
        }
        Ok((start, scram))
    }

    fn sasl_continue(&self, conversation_id: &Bson, payload: Vec<u8>) -> Document {
        doc! {
            "saslContinue": 1,
            "conversationId": conversation_id.clone(),
            "payload": binary(payload),
            "$db": self.source.clone(),
        }
    }

    /// The password as each SCRAM variant hashes it: SCRAM-SHA-1 (MongoDB's form) uses the
    /// hex MD5 of `user:mongo:password`; SCRAM-SHA-256 the SASLprep'd password (RFC 4013).
    fn scram_password(&self, mechanism: Mechanism) -> Result<Vec<u8>> {
        if mechanism == Mechanism::ScramSha1 {
            use md5::Digest;
            let digest = md5::Md5::digest(format!("{}:mongo:{}", self.user, self.password));
            return Ok(digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes());
        }
        stringprep::saslprep(&self.password)
            .map(|p| p.into_owned().into_bytes())
            .map_err(|_| {
                self.failed_with(
                    mechanism,
                    "the password contains characters SASLprep prohibits".into(),
                )
            })
    }

    /// An authentication error for `mechanism` from a failed command.
    fn failed(&self, mechanism: Mechanism, e: Error) -> Error {
        match &*e.kind {
            // The server refused: say so, naming mechanism and user.
            ErrorKind::Command(c) => self.failed_with(mechanism, c.to_string()),
            // A network error stays one: the pool and SDAM treat it as such.
            _ => e,
        }
    }

    fn failed_with(&self, mechanism: Mechanism, message: String) -> Error {
        ErrorKind::Authentication {
            mechanism: mechanism.name().to_string(),
            user: self.user.clone(),
            auth_source: self.source.clone(),
            message,
        }
        .into()
    }
}

fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// The `payload` of a SASL reply.
fn payload(reply: &Document) -> std::result::Result<Vec<u8>, String> {
    match reply.get("payload") {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        Some(Bson::String(s)) => Ok(s.clone().into_bytes()),
        _ => Err("the server's reply has no payload".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(mechanism: Option<&str>) -> Credential {
        Credential {
            username: Some("user".into()),
            password: Some("pencil".into()),
            source: "admin".into(),
            mechanism: mechanism.map(String::from),
            mechanism_properties: None,
        }
    }

    #[test]
    fn hello_asks_for_mechanisms_only_when_none_was_named() {
        let a = Authenticator::new(credential(None)).unwrap();
        let mut hello = doc! { "hello": 1 };
        let s = a.prepare_hello(&mut hello).unwrap();
        assert_eq!(hello.get_str("saslSupportedMechs").unwrap(), "admin.user");
        let spec = hello.get_document("speculativeAuthenticate").unwrap();
        assert_eq!(spec.get_str("mechanism").unwrap(), "SCRAM-SHA-256");
        assert_eq!(spec.get_str("db").unwrap(), "admin");
        assert_eq!(s.mechanism, Mechanism::ScramSha256);

        let a = Authenticator::new(credential(Some("SCRAM-SHA-1"))).unwrap();
        let mut hello = doc! { "hello": 1 };
        a.prepare_hello(&mut hello).unwrap();
        assert!(!hello.contains_key("saslSupportedMechs"));
        let spec = hello.get_document("speculativeAuthenticate").unwrap();
        assert_eq!(spec.get_str("mechanism").unwrap(), "SCRAM-SHA-1");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let a = Authenticator::new(credential(None)).unwrap();
        let shown = format!("{a:?} {:?}", credential(None));
        assert!(
            shown.contains("user") && !shown.contains("pencil"),
            "{shown}"
        );
    }

    #[test]
    fn bad_credentials_are_refused_up_front() {
        for (c, want) in [
            (credential(Some("GSSAPI")), "GSSAPI"),
            (
                Credential {
                    password: None,
                    ..credential(None)
                },
                "no password",
            ),
            (
                Credential {
                    username: Some(String::new()),
                    ..credential(None)
                },
                "user name",
            ),
        ] {
            let e = Authenticator::new(c).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn negotiation_picks_sha_256_when_offered_and_errors_hide_the_password() {
        let a = Authenticator::new(credential(None)).unwrap();
        let mut hello = doc! {};
        let s = a.prepare_hello(&mut hello).unwrap();
        for (offered, want) in [
            (
                vec!["SCRAM-SHA-1".to_string(), "SCRAM-SHA-256".into()],
                "SCRAM-SHA-256",
            ),
            (vec!["SCRAM-SHA-1".to_string()], "SCRAM-SHA-1"),
            (vec![], "SCRAM-SHA-1"),
        ] {
            let mut sent = Vec::new();
            let err = a
                .authenticate(
                    Speculative {
                        mechanism: s.mechanism,
                        scram: None,
                    },
                    None,
                    &offered,
                    |cmd| {
                        sent.push(cmd);
                        Err(Error::from_command_reply(&bson::rawdoc! {
                            "ok": 0,
                            "code": 18,
                            "codeName": "AuthenticationFailed",
                            "errmsg": "Authentication failed.",
                        }))
                    },
                )
                .unwrap_err();
            assert_eq!(sent[0].get_str("mechanism").unwrap(), want);
            assert_eq!(sent[0].get_str("$db").unwrap(), "admin");
            let text = format!("{err} {err:?}");
            assert!(text.contains(want) && text.contains("user"), "{text}");
            assert!(!text.contains("pencil"), "{text}");
        }
    }

    #[test]
    fn sha_1_uses_mongodbs_password_digest() {
        let a = Authenticator::new(credential(None)).unwrap();
        // hex(md5("user:mongo:pencil")), as MongoDB stores SCRAM-SHA-1 credentials.
        let p = a.scram_password(Mechanism::ScramSha1).unwrap();
        assert_eq!(p, b"1c33006ec1ffd90f9cadcbcc0e118200".to_vec());
        // SASLprep maps a non-ASCII space to a space (RFC 4013's example rules).
        let a = Authenticator::new(Credential {
            password: Some("I\u{00A0}X".into()),
            ..credential(None)
        })
        .unwrap();
        assert_eq!(
            a.scram_password(Mechanism::ScramSha256).unwrap(),
            b"I X".to_vec()
        );
    }
}
