//! TLS against FerretDB's TLS listener, with certificates generated here (rcgen): a CA, a
//! server certificate for 127.0.0.1 and localhost, one for another name, a client
//! certificate, and a second CA nobody trusts. Three FerretDB servers: server-only TLS,
//! TLS that requires a client certificate, and one whose certificate names another host.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bson::{Document, doc};
use common::run_on;
use ferretdb_embed::{Server, ServerOptions, TlsFiles};
use may_mongo::{Client, ClientOptions, Core, ErrorKind};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Writes every certificate and key the tests use, once per test process.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();

        let ca = |cn: &str| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
        };
        let trusted = ca("may_mongo test CA");
        let untrusted = ca("nobody's CA");
        write("ca.pem", trusted.pem());
        write("other-ca.pem", untrusted.pem());

        let leaf =
            |names: &[&str], issuer: &CertifiedIssuer<'_, KeyPair>, file: &str, both: bool| {
                let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                let mut params = CertificateParams::new(names).unwrap();
                params.distinguished_name.push(DnType::CommonName, file);
                let key = KeyPair::generate().unwrap();
                let cert = params.signed_by(&key, issuer).unwrap();
                if both {
                    // One file holding the certificate and its key, as tlsCertificateKeyFile wants.
                    write(&format!("{file}.pem"), cert.pem() + &key.serialize_pem());
                } else {
                    write(&format!("{file}.crt"), cert.pem());
                    write(&format!("{file}.key"), key.serialize_pem());
                }
            };
        leaf(&["127.0.0.1", "localhost"], &trusted, "server", false);
        leaf(&["db.example.invalid"], &trusted, "misnamed", false);
        leaf(&["127.0.0.1", "localhost"], &untrusted, "self-made", false);
        leaf(&["client"], &trusted, "client", true);
        Pki { dir }
    })
}

/// A FerretDB whose TLS listener presents `cert`; with `client_ca`, it requires client
/// certificates signed by it.
fn tls_server(cert: &str, client_ca: bool) -> Server {
    common::init();
    let pki = pki();
    Server::start(&ServerOptions {
        tls: Some(TlsFiles {
            cert: pki.path(&format!("{cert}.crt")).into(),
            key: pki.path(&format!("{cert}.key")).into(),
            ca: client_ca.then(|| pki.path("ca.pem").into()),
        }),
        ..ServerOptions::default()
    })
    .expect("start FerretDB with TLS")
}

/// Server-only TLS with the certificate for 127.0.0.1/localhost.
fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| tls_server("server", false))
}

/// TLS that requires a client certificate.
fn mutual_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| tls_server("server", true))
}

/// A certificate for db.example.invalid, reached as 127.0.0.1.
fn misnamed_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| tls_server("misnamed", false))
}

/// A certificate for the right names, signed by a CA nobody trusts.
fn self_made_server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| tls_server("self-made", false))
}

fn client(core: Core, host: &str, port: u16, query: &str) -> Client {
    let uri = format!("mongodb://{host}:{port}/?serverSelectionTimeoutMS=1500&{query}");
    let mut opts = ClientOptions::parse(&uri).run().unwrap();
    opts.core = core;
    Client::with_options(opts).unwrap()
}

fn ca_query(ca: &str) -> String {
    format!("tls=true&tlsCAFile={}", pki().path(ca))
}

/// Writes and reads back one document.
fn round_trip(client: &Client, core: Core, tag: &str) -> may_mongo::Result<Document> {
    let coll = client
        .database("tls_tests")
        .collection::<Document>(&format!("{tag}_{}", core.name()));
    let tag = tag.to_string();
    run_on(core, move || {
        coll.insert_one(doc! { "tag": &tag }).run()?;
        coll.find_one(doc! { "tag": &tag })
            .run()
            .map(|d| d.expect("the document just written"))
    })
}

/// Asserts that `result` failed because of TLS, with `needle` in the message.
fn assert_tls_failure(result: may_mongo::Result<Document>, needle: &str) {
    let err = result.unwrap_err();
    let text = err.to_string();
    // An operation's error is server selection's, naming the server and its TLS failure
    // (the monitor met it first); a pooled connection's own failure is ErrorKind::Tls.
    assert!(
        matches!(
            &*err.kind,
            ErrorKind::Tls { .. } | ErrorKind::ServerSelection { .. }
        ),
        "{err:?}"
    );
    eprintln!("as expected: {text}");
    assert!(text.contains("TLS error"), "{text}");
    assert!(text.contains(needle), "{text}");
}

both_cores!(a_trusted_ca_works_by_address_and_by_name, |core| {
    let port = server().tls_port().unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let c = client(core, host, port, &ca_query("ca.pem"));
        let d = round_trip(&c, core, "trusted").unwrap();
        assert_eq!(d.get_str("tag").unwrap(), "trusted");
    }
    // The plain port of the same server does not speak TLS. FerretDB reads our ClientHello
    // as the start of a very long message and waits for the rest, so the handshake ends at
    // the connect timeout, and the error says where it was.
    let query = ca_query("ca.pem") + "&connectTimeoutMS=300";
    let c = client(core, "127.0.0.1", server().port(), &query);
    let err = round_trip(&c, core, "plain").unwrap_err();
    eprintln!("as expected: {err}");
    assert!(
        err.to_string().contains("during the TLS handshake"),
        "{err}"
    );
});

both_cores!(
    an_untrusted_ca_fails_unless_invalid_certificates_are_allowed,
    |core| {
        let port = self_made_server().tls_port().unwrap();
        // Trusting only our CA, or only the built-in Mozilla roots: refused either way.
        for query in [ca_query("ca.pem"), "tls=true".to_string()] {
            let c = client(core, "127.0.0.1", port, &query);
            assert_tls_failure(
                round_trip(&c, core, "untrusted"),
                "not signed by a trusted CA",
            );
        }
        // Allowing invalid host names does not excuse an unknown issuer.
        let c = client(
            core,
            "127.0.0.1",
            port,
            &(ca_query("ca.pem") + "&tlsAllowInvalidHostnames=true"),
        );
        assert_tls_failure(
            round_trip(&c, core, "untrusted"),
            "not signed by a trusted CA",
        );
        for relax in ["tlsAllowInvalidCertificates=true", "tlsInsecure=true"] {
            let c = client(core, "127.0.0.1", port, &format!("tls=true&{relax}"));
            round_trip(&c, core, "untrusted").unwrap();
        }
        // Trusting the CA that signed it works too.
        let c = client(core, "127.0.0.1", port, &ca_query("other-ca.pem"));
        round_trip(&c, core, "untrusted").unwrap();
    }
);

both_cores!(
    a_hostname_mismatch_fails_unless_invalid_hostnames_are_allowed,
    |core| {
        let port = misnamed_server().tls_port().unwrap();
        let c = client(core, "127.0.0.1", port, &ca_query("ca.pem"));
        assert_tls_failure(
            round_trip(&c, core, "misnamed"),
            "the certificate does not name \"127.0.0.1\"",
        );
        for relax in [
            "tlsAllowInvalidHostnames=true",
            "tlsAllowInvalidCertificates=true",
            "tlsInsecure=true",
        ] {
            let c = client(
                core,
                "127.0.0.1",
                port,
                &format!("{}&{relax}", ca_query("ca.pem")),
            );
            round_trip(&c, core, "misnamed").unwrap();
        }
    }
);

both_cores!(a_client_certificate_is_sent_when_the_server_asks, |core| {
    let port = mutual_server().tls_port().unwrap();
    let c = client(core, "127.0.0.1", port, &ca_query("ca.pem"));
    let err = round_trip(&c, core, "mutual").unwrap_err();
    eprintln!("as expected: {err}");
    assert!(err.to_string().contains("TLS error"), "{err}");
    let with_cert = format!(
        "{}&tlsCertificateKeyFile={}",
        ca_query("ca.pem"),
        pki().path("client.pem")
    );
    let c = client(core, "127.0.0.1", port, &with_cert);
    round_trip(&c, core, "mutual").unwrap();
});

#[test]
fn bad_files_are_errors_when_the_client_is_made() {
    let pki = pki();
    let not_pem = pki.path("server.key"); // a key, no certificate
    for (query, needle) in [
        (format!("tls=true&tlsCAFile={not_pem}"), "no certificates"),
        (
            format!("tls=true&tlsCertificateKeyFile={}", pki.path("ca.pem")),
            "tlsCertificateKeyFile",
        ),
        (
            "tls=true&tlsCAFile=/nonexistent.pem".to_string(),
            "/nonexistent.pem",
        ),
    ] {
        let opts = ClientOptions::parse(format!("mongodb://127.0.0.1:1/?{query}"))
            .run()
            .unwrap();
        let err = Client::with_options(opts).unwrap_err();
        assert!(
            matches!(&*err.kind, ErrorKind::InvalidTlsConfig { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(needle), "{query}: {err}");
    }
}

/// A listener that accepts connections and never says anything: a TLS handshake with it
/// waits for the server's hello until the connect timeout.
fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for sock in listener.incoming() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (port, accepted)
}

#[test]
fn a_stalled_tls_handshake_parks_its_coroutine_not_the_worker() {
    common::init();
    // More stalled handshakes than may has worker threads (one per CPU): if a TLS read
    // blocked its worker, nothing else could run until they time out.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (silent, accepted) = silent_listener();
    let stalled: Vec<_> = (0..workers * 2)
        .map(|i| {
            may::go!(move || {
                let uri = format!(
                    "mongodb://127.0.0.1:{silent}/?tls=true&tlsInsecure=true&connectTimeoutMS=3000&serverSelectionTimeoutMS=3000&appName=s{i}"
                );
                let c = Client::with_options(ClientOptions::parse(&uri).run().unwrap()).unwrap();
                c.database("admin").run_command(doc! { "ping": 1 }).run()
            })
        })
        .collect();
    // Wait until every stalled client's monitor is inside its handshake.
    while accepted.load(Ordering::SeqCst) < workers * 2 {
        may::coroutine::sleep(Duration::from_millis(5));
    }
    let port = server().tls_port().unwrap();
    let c = client(Core::Coroutine, "127.0.0.1", port, &ca_query("ca.pem"));
    let done = round_trip(&c, Core::Coroutine, "alongside_stalls").unwrap();
    assert_eq!(done.get_str("tag").unwrap(), "alongside_stalls");
    // The real work finished while every stalled handshake was still waiting.
    assert!(stalled.iter().all(|h| !h.is_done()));
    for h in stalled {
        let err = h.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
    }
}
