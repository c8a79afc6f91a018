//! MONGODB-X509 on a scripted server behind TLS that requires a client certificate. FerretDB's
//! TLS listener takes client certificates, but FerretDB v1.24.2 has no `authenticate` command
//! ("no such command: 'authenticate'", code 59), so it cannot show X.509 authentication.
//!
//! What the scripted server checks is the protocol: the `authenticate` command (speculative
//! inside `hello`, or on its own after it) on `$external`, with the user name only when one
//! was given; the certificate itself is checked by the TLS handshake, here as on a real
//! server.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bson::doc;
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use may_mongo::{ClientOptions, Core, ErrorKind};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    dir: std::path::PathBuf,
    config: Arc<rustls::ServerConfig>,
}

/// A CA, the server's certificate for 127.0.0.1, and a client certificate and key in one
/// PEM file (as `tlsCertificateKeyFile` wants); a server config requiring client
/// certificates signed by the CA.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("x509-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "x509 test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "app");
        let client = params.signed_by(&client_key, &ca).unwrap();
        std::fs::write(
            dir.join("client.pem"),
            client.pem() + &client_key.serialize_pem(),
        )
        .unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(server.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        Pki {
            dir,
            config: Arc::new(config),
        }
    })
}

/// A server that authenticates X.509 speculatively when `speculative`, else only through
/// the `authenticate` command; `refuse` answers that command with an error.
fn server(speculative: bool, refuse: bool) -> MockServer {
    MockServer::start_tls(pki().config.clone(), move |req: &Request, _| {
        match req.command.as_str() {
            "hello" | "isMaster" => {
                let mut reply = hello_reply();
                if speculative && req.body.contains_key("speculativeAuthenticate") {
                    reply.insert(
                        "speculativeAuthenticate",
                        doc! { "dbname": "$external", "user": "CN=app" },
                    );
                }
                Action::Reply(reply)
            }
            "authenticate" if refuse => Action::Reply(doc! {
                "ok": 0.0, "code": 18, "codeName": "AuthenticationFailed",
                "errmsg": "no user CN=app in $external",
            }),
            "authenticate" => {
                Action::Reply(doc! { "ok": 1.0, "dbname": "$external", "user": "CN=app" })
            }
            _ => Action::Reply(doc! { "ok": 1.0 }),
        }
    })
}

fn client(server: &MockServer, core: Core, userinfo: &str) -> may_mongo::Client {
    let pki = pki();
    let uri = format!(
        "mongodb://{userinfo}127.0.0.1:{}/?authMechanism=MONGODB-X509&tlsCAFile={}&tlsCertificateKeyFile={}&serverSelectionTimeoutMS=2000",
        server.port,
        pki.dir.join("ca.pem").display(),
        pki.dir.join("client.pem").display(),
    );
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = core;
    may_mongo::Client::with_options(opts).unwrap()
}

fn ping(client: &may_mongo::Client, core: Core) -> may_mongo::Result<bson::Document> {
    let db = client.database("admin");
    run_on(core, move || db.run_command(doc! { "ping": 1 }).run())
}

/// The speculative `authenticate` in the pooled connection's `hello` (monitors never
/// authenticate).
fn speculative_sent(server: &MockServer) -> Vec<bson::Document> {
    server
        .requests("hello")
        .iter()
        .filter_map(|r| r.body.get_document("speculativeAuthenticate").ok().cloned())
        .collect()
}

both_cores!(x509_authenticates_speculatively_inside_hello, |core| {
    let server = server(true, false);
    let client = client(&server, core, "");
    ping(&client, core).unwrap();
    assert_eq!(
        speculative_sent(&server),
        vec![doc! { "authenticate": 1, "mechanism": "MONGODB-X509", "db": "$external" }],
        "no user name given: the server takes it from the certificate"
    );
    assert!(server.requests("authenticate").is_empty(), "done in hello");
    assert_eq!(client.authentications(), 1);
});

both_cores!(
    x509_sends_authenticate_when_the_server_does_not_speculate,
    |core| {
        let server = server(false, false);
        // A user name given in the URI is sent as is.
        let client = client(&server, core, "CN%3Dapp@");
        ping(&client, core).unwrap();
        let sent = server.requests("authenticate");
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].body,
            doc! { "authenticate": 1, "mechanism": "MONGODB-X509", "user": "CN=app", "$db": "$external" }
        );
        assert_eq!(client.authentications(), 1);
    }
);

both_cores!(x509_refused_is_an_authentication_error, |core| {
    let server = server(false, true);
    let client = client(&server, core, "");
    let e = ping(&client, core).unwrap_err();
    match &*e.kind {
        ErrorKind::Authentication { mechanism, .. } => assert_eq!(mechanism, "MONGODB-X509"),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("AuthenticationFailed"), "{e}");
});

#[test]
fn x509_needs_a_client_certificate() {
    let e = ClientOptions::parse("mongodb://127.0.0.1:1/?authMechanism=MONGODB-X509&tls=true")
        .run()
        .and_then(may_mongo::Client::with_options)
        .unwrap_err();
    assert!(e.to_string().contains("tlsCertificateKeyFile"), "{e}");
    let e = ClientOptions::parse("mongodb://u:p@127.0.0.1:1/?authMechanism=MONGODB-X509")
        .run()
        .and_then(may_mongo::Client::with_options)
        .unwrap_err();
    assert!(e.to_string().contains("no password"), "{e}");
}
