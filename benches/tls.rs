//! What TLS costs on loopback: time to a new client's first `ping` (TCP + TLS + MongoDB
//! handshakes), and sequential pings per second on one connection, plain and TLS, on each
//! core. Starts its own FerretDB with a TLS listener and certificates generated here.
//! Run: `cargo bench --bench tls`. Figures are in notes/tls.md.

/// A thread-caching allocator, as the README advises for the coroutine core: with glibc's
/// malloc its workers stall on each other's arena locks (notes/coroutine-costs.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use bson::doc;
use ferretdb_embed::{Server, ServerOptions, TlsFiles};
use may_mongo::{Client, ClientOptions, Core};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const PINGS: usize = 5_000;
const CLIENTS: usize = 30;

fn main() {
    may::config().set_worker_pin(false);
    let dir = std::env::temp_dir().join(format!("may_mongo_tls_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    let server = Server::start(&ServerOptions {
        tls: Some(TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            ca: None,
        }),
        ..ServerOptions::default()
    })
    .expect("start FerretDB with TLS");
    let plain = format!("mongodb://127.0.0.1:{}/", server.port());
    let tls = format!(
        "mongodb://127.0.0.1:{}/?tls=true&tlsCAFile={}",
        server.tls_port().unwrap(),
        dir.join("ca.pem").display()
    );
    println!(
        "| core | transport | first ping of a new client (median of {CLIENTS}) | sequential pings/s (one connection) |"
    );
    println!("|---|---|---|---|");
    for core in [Core::Coroutine, Core::Threaded] {
        for (name, uri) in [("plain", &plain), ("TLS", &tls)] {
            let uri = uri.clone();
            let run = move || {
                let mut firsts = Vec::new();
                for _ in 0..CLIENTS {
                    let mut opts = ClientOptions::parse(&uri).run().unwrap();
                    opts.core = core;
                    let t = Instant::now();
                    let c = Client::with_options(opts).unwrap();
                    c.database("admin")
                        .run_command(doc! { "ping": 1 })
                        .run()
                        .unwrap();
                    firsts.push(t.elapsed());
                }
                firsts.sort();
                let mut opts = ClientOptions::parse(&uri).run().unwrap();
                opts.core = core;
                let c = Client::with_options(opts).unwrap();
                let db = c.database("admin");
                db.run_command(doc! { "ping": 1 }).run().unwrap();
                let t = Instant::now();
                for _ in 0..PINGS {
                    db.run_command(doc! { "ping": 1 }).run().unwrap();
                }
                (
                    firsts[CLIENTS / 2],
                    PINGS as f64 / t.elapsed().as_secs_f64(),
                )
            };
            let (first, rate): (Duration, f64) = match core {
                Core::Coroutine => may::go!(run).join().unwrap(),
                Core::Threaded => run(),
            };
            println!(
                "| {} | {name} | {:.2} ms | {:.0} |",
                core.name(),
                first.as_secs_f64() * 1e3,
                rate
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
