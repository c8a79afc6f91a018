//! Authentication paths FerretDB 1.24 cannot show: speculative authentication (it ignores
//! `speculativeAuthenticate` in `hello`), a server whose SCRAM signature is wrong, and what
//! PLAIN puts on the wire. A scripted server plays the SCRAM server side here, computing the
//! proof and signature as RFC 7677 says, with its own copy of the password.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bson::spec::BinarySubtype;
use bson::{Binary, Document, doc};
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use hmac::{KeyInit, Mac};
use may_mongo::{Client, Core, ErrorKind};
use sha2::Digest;

const PASSWORD: &str = "pencil";

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn bin(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

fn text(doc: &Document, key: &str) -> String {
    String::from_utf8(doc.get_binary_generic(key).unwrap().clone()).unwrap()
}

/// A SCRAM-SHA-256 server for one user whose password is [`PASSWORD`]. It answers the first
/// message inside `hello` (speculatively) and checks the client's proof; with `forge` it
/// signs with the wrong key.
struct ScramServer {
    forge: bool,
    /// Per connection: client-first-bare and server-first, for the AuthMessage.
    conversations: Mutex<HashMap<usize, (String, String)>>,
}

impl ScramServer {
    fn server_first(&self, connection: usize, client_first: &str) -> String {
        let bare = client_first.strip_prefix("n,,").unwrap().to_string();
        let nonce = bare.split(',').find_map(|p| p.strip_prefix("r=")).unwrap();
        let first = format!(
            "r={nonce}SERVER,s={},i=4096",
            B64.encode(b"salt-of-the-earth")
        );
        self.conversations
            .lock()
            .unwrap()
            .insert(connection, (bare, first.clone()));
        first
    }

    /// Checks the client-final's proof; returns the server-final, or `None` if it is wrong.
    fn server_final(&self, connection: usize, client_final: &str) -> Option<String> {
        let (bare, first) = self.conversations.lock().unwrap()[&connection].clone();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            PASSWORD.as_bytes(),
            b"salt-of-the-earth",
            4096,
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = sha2::Sha256::digest(&client_key).to_vec();
        let auth_message = format!("{bare},{first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let recovered: Vec<u8> = B64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if sha2::Sha256::digest(&recovered).to_vec() != stored_key {
            return None;
        }
        let server_key = hmac(
            &salted,
            if self.forge {
                b"Wrong Key"
            } else {
                b"Server Key"
            },
        );
        Some(format!(
            "v={}",
            B64.encode(hmac(&server_key, auth_message.as_bytes()))
        ))
    }

    fn answer(&self, req: &Request) -> Action {
        match req.command.as_str() {
            "hello" | "isMaster" => {
                let mut reply = hello_reply();
                if let Ok(spec) = req.body.get_document("speculativeAuthenticate") {
                    assert_eq!(spec.get_str("mechanism").unwrap(), "SCRAM-SHA-256");
                    let first = self.server_first(req.connection, &text(spec, "payload"));
                    reply.insert(
                        "speculativeAuthenticate",
                        doc! { "conversationId": 1, "done": false, "payload": bin(first.into_bytes()) },
                    );
                }
                Action::Reply(reply)
            }
            "saslContinue" => {
                match self.server_final(req.connection, &text(&req.body, "payload")) {
                    Some(last) => Action::Reply(doc! {
                        "ok": 1.0, "conversationId": 1, "done": true, "payload": bin(last.into_bytes()),
                    }),
                    None => Action::Reply(doc! {
                        "ok": 0.0, "code": 18, "codeName": "AuthenticationFailed",
                        "errmsg": "Authentication failed.",
                    }),
                }
            }
            _ => Action::Reply(doc! { "ok": 1.0 }),
        }
    }
}

fn scram_server(forge: bool) -> MockServer {
    let server = ScramServer {
        forge,
        conversations: Mutex::new(HashMap::new()),
    };
    MockServer::start(move |req, _| server.answer(req))
}

fn client(server: &MockServer, core: Core, userinfo: &str, query: &str) -> Client {
    server.client(core, &format!("{userinfo}@"), query, |_| {})
}

fn ping(client: &Client, core: Core) -> may_mongo::Result<Document> {
    let c = client.clone();
    run_on(core, move || {
        c.database("admin").run_command(doc! { "ping": 1 }).run()
    })
}

both_cores!(speculative_authentication_saves_a_round_trip, |core| {
    let server = scram_server(false);
    let c = client(&server, core, "user:pencil", "authSource=admin");
    ping(&c, core).unwrap();
    assert_eq!(c.authentications(), 1);
    // The conversation began inside hello: no saslStart, one saslContinue, on the pooled
    // connection only. The monitor's hellos carry no credentials.
    assert!(server.requests("saslStart").is_empty());
    let continues = server.requests("saslContinue");
    assert_eq!(continues.len(), 1);
    let hellos = server.requests("hello");
    let speculating: Vec<&Request> = hellos
        .iter()
        .filter(|h| h.body.contains_key("speculativeAuthenticate"))
        .collect();
    assert_eq!(speculating.len(), 1);
    assert_eq!(speculating[0].connection, continues[0].connection);
    assert_eq!(
        speculating[0].body.get_str("saslSupportedMechs").unwrap(),
        "admin.user"
    );
    assert!(hellos.len() > speculating.len(), "the monitor's hello");
    assert_eq!(continues[0].body.get_str("$db").unwrap(), "admin");
});

both_cores!(
    a_wrong_password_and_a_forged_server_signature_are_refused,
    |core| {
        let server = scram_server(false);
        let c = client(&server, core, "user:wrong", "authSource=admin");
        let err = ping(&c, core).unwrap_err();
        assert!(
            matches!(&*err.kind, ErrorKind::Authentication { .. }),
            "{err:?}"
        );
        assert_eq!(c.pool_stats().total, 0);

        // The server accepts our proof but cannot prove it knows the password: we refuse it.
        let server = scram_server(true);
        let c = client(&server, core, "user:pencil", "authSource=admin");
        let err = ping(&c, core).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
        assert!(!err.to_string().contains("pencil"), "{err}");
        assert_eq!(
            c.pool_stats().total,
            0,
            "the connection was closed, not pooled"
        );
        assert!(
            server.requests("ping").is_empty(),
            "nothing ran unauthenticated"
        );
    }
);

both_cores!(plain_sends_user_and_password_in_one_message, |core| {
    let server = MockServer::start(|req, _| match req.command.as_str() {
        "hello" | "isMaster" => {
            // PLAIN was named (no question) and is never speculative.
            assert!(!req.body.contains_key("saslSupportedMechs"));
            assert!(!req.body.contains_key("speculativeAuthenticate"));
            Action::Reply(hello_reply())
        }
        "saslStart" => Action::Reply(doc! { "ok": 1.0, "conversationId": 1, "done": true }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    });
    let c = client(&server, core, "bob:hunter2", "authMechanism=PLAIN");
    ping(&c, core).unwrap();
    let starts = server.requests("saslStart");
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].body.get_str("mechanism").unwrap(), "PLAIN");
    assert_eq!(text(&starts[0].body, "payload"), "\0bob\0hunter2");
    assert_eq!(starts[0].body.get_str("$db").unwrap(), "$external");
});
