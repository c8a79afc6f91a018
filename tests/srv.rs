//! `mongodb+srv://` against a name server on loopback that this test runs: the driver's DNS
//! exchange, the seed list from SRV records, options from the TXT record, and the Initial DNS
//! Seedlist Discovery spec's refusals. No outside DNS is used.
//!
//! The SRV targets are names under `example.test`, which nothing here resolves, so these tests
//! stop at the options: connecting is the topology tests' business.

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use may_mongo::srv::Resolver;
use may_mongo::{ClientOptions, ErrorKind, ServerAddress};
use simple_dns::rdata::{RData, SRV, TXT};
use simple_dns::{CLASS, Name, Packet, QTYPE, ResourceRecord, TYPE};

/// What the fake name server knows: per name, SRV targets and TXT strings.
#[derive(Clone, Default)]
struct Zone {
    srv: HashMap<String, Vec<(String, u16)>>,
    txt: HashMap<String, Vec<String>>,
}

struct NameServer {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    /// The id of each query, in order.
    ids: Arc<std::sync::Mutex<Vec<u16>>>,
    stop: Arc<AtomicBool>,
}

impl NameServer {
    fn start(zone: Zone) -> NameServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (q, s, i) = (queries.clone(), stop.clone(), ids.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let query = Packet::parse(&buf[..n]).unwrap();
                i.lock().unwrap().push(query.id());
                let question = &query.questions[0];
                let name = question.qname.to_string();
                let mut reply = Packet::new_reply(query.id());
                reply.questions.push(question.clone());
                let owner = Name::new_unchecked(&name).into_owned();
                match question.qtype {
                    QTYPE::TYPE(TYPE::SRV) => {
                        for (target, port) in zone.srv.get(&name).into_iter().flatten() {
                            reply.answers.push(ResourceRecord::new(
                                owner.clone(),
                                CLASS::IN,
                                60,
                                RData::SRV(SRV {
                                    priority: 0,
                                    weight: 0,
                                    port: *port,
                                    target: Name::new_unchecked(target).into_owned(),
                                }),
                            ));
                        }
                    }
                    QTYPE::TYPE(TYPE::TXT) => {
                        for text in zone.txt.get(&name).into_iter().flatten() {
                            let txt = TXT::new().with_string(text).unwrap().into_owned();
                            reply.answers.push(ResourceRecord::new(
                                owner.clone(),
                                CLASS::IN,
                                60,
                                RData::TXT(txt),
                            ));
                        }
                    }
                    _ => {}
                }
                sock.send_to(&reply.build_bytes_vec().unwrap(), from)
                    .unwrap();
            }
        });
        NameServer {
            addr,
            queries,
            ids,
            stop,
        }
    }

    fn resolver(&self) -> Resolver {
        Resolver {
            nameservers: vec![self.addr],
            timeout: Duration::from_secs(2),
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn zone() -> Zone {
    let mut z = Zone::default();
    z.srv.insert(
        "_mongodb._tcp.c0.example.test".into(),
        vec![
            ("a.example.test".into(), 27017),
            ("b.example.test".into(), 27018),
            ("c.example.test".into(), 27019),
        ],
    );
    z.txt.insert(
        "c0.example.test".into(),
        vec!["replicaSet=rs0&authSource=admin".into()],
    );
    z.srv.insert(
        "_custom._tcp.c0.example.test".into(),
        vec![("d.example.test".into(), 1234)],
    );
    z.srv.insert(
        "_mongodb._tcp.evil.example.test".into(),
        vec![("a.elsewhere.test".into(), 27017)],
    );
    z.txt.insert(
        "two.example.test".into(),
        vec!["replicaSet=a".into(), "replicaSet=b".into()],
    );
    z.srv.insert(
        "_mongodb._tcp.two.example.test".into(),
        vec![("a.example.test".into(), 1)],
    );
    z.txt
        .insert("bad.example.test".into(), vec!["maxPoolSize=1".into()]);
    z.srv.insert(
        "_mongodb._tcp.bad.example.test".into(),
        vec![("a.example.test".into(), 1)],
    );
    z
}

fn addr(host: &str, port: u16) -> ServerAddress {
    ServerAddress {
        host: host.into(),
        port,
    }
}

#[test]
fn srv_records_become_the_seed_list_and_txt_the_options() {
    let ns = NameServer::start(zone());
    let o = ClientOptions::parse("mongodb+srv://C0.Example.Test/mydb?tls=false")
        .resolver(ns.resolver())
        .run()
        .unwrap();
    assert_eq!(
        o.hosts,
        vec![
            addr("a.example.test", 27017),
            addr("b.example.test", 27018),
            addr("c.example.test", 27019)
        ]
    );
    assert_eq!(o.replica_set.as_deref(), Some("rs0"), "from the TXT record");
    assert_eq!(o.default_database.as_deref(), Some("mydb"));
    assert_eq!(ns.queries.load(Ordering::SeqCst), 2, "one SRV, one TXT");

    // The string's own options win over the TXT record's.
    let o = ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false&replicaSet=mine")
        .resolver(ns.resolver())
        .run()
        .unwrap();
    assert_eq!(o.replica_set.as_deref(), Some("mine"));

    // srvServiceName picks another record; srvMaxHosts keeps a random subset.
    let o = ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false&srvServiceName=custom")
        .resolver(ns.resolver())
        .run()
        .unwrap();
    assert_eq!(o.hosts, vec![addr("d.example.test", 1234)]);
    let o =
        ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false&srvMaxHosts=2&replicaSet=x")
            .resolver(ns.resolver())
            .run();
    // srvMaxHosts cannot be combined with replicaSet (the URI spec).
    assert!(o.is_err());
    let o = ClientOptions::parse("mongodb+srv://two.example.test/?tls=false&srvMaxHosts=1")
        .resolver(ns.resolver())
        .run();
    assert!(o.is_err(), "two TXT records are refused even then");
}

/// A DNS answer is trusted when it echoes the query's id, so the id must not be guessable. It
/// came from a counter with a fixed seed: every process sent the same ids in the same order.
/// This test runs itself twice as a child process and compares the ids each one sent.
#[test]
fn query_ids_are_not_the_same_in_every_process() {
    const CHILD: &str = "MAY_MONGO_SRV_IDS_CHILD";
    const NAME: &str = "query_ids_are_not_the_same_in_every_process";
    if std::env::var_os(CHILD).is_some() {
        let ns = NameServer::start(zone());
        for _ in 0..2 {
            ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false")
                .resolver(ns.resolver())
                .run()
                .unwrap();
        }
        println!("ids={:?}", ns.ids.lock().unwrap());
        return;
    }
    let ids = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "child failed: {stdout}");
        // The harness may print its own words on the same line: take from `ids=` to `]`.
        let from = stdout.find("ids=").expect("the child printed its ids");
        let to = from + stdout[from..].find(']').unwrap();
        stdout[from..=to].to_string()
    };
    let (a, b) = (ids(), ids());
    assert_eq!(a.matches(',').count(), 3, "four queries each: {a}");
    // Four 16-bit ids alike by chance: one in 2^64.
    assert_ne!(a, b, "two processes sent the same DNS query ids");
}

#[test]
fn srv_max_hosts_keeps_a_random_subset() {
    let mut z = zone();
    z.txt.clear(); // srvMaxHosts may not meet replicaSet, even from TXT
    let ns = NameServer::start(z);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let o = ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false&srvMaxHosts=2")
            .resolver(ns.resolver())
            .run()
            .unwrap();
        assert_eq!(o.hosts.len(), 2);
        seen.extend(o.hosts);
    }
    assert_eq!(
        seen.len(),
        3,
        "every host was picked at some point: {seen:?}"
    );
}

#[test]
fn the_specs_refusals_are_clear_errors() {
    let ns = NameServer::start(zone());
    let r = ns.resolver();
    let cases = [
        (
            "mongodb+srv://evil.example.test/?tls=false",
            "not in the domain",
        ),
        (
            "mongodb+srv://two.example.test/?tls=false",
            "more than one TXT",
        ),
        (
            "mongodb+srv://bad.example.test/?tls=false",
            "only authSource, replicaSet and loadBalanced",
        ),
        (
            "mongodb+srv://nothing.example.test/?tls=false",
            "no SRV records",
        ),
    ];
    for (uri, needle) in cases {
        let e = ClientOptions::parse(uri)
            .resolver(r.clone())
            .run()
            .unwrap_err();
        assert!(e.to_string().contains(needle), "{uri}: {e}");
    }
}

#[test]
fn tls_is_on_for_srv_unless_the_string_turns_it_off() {
    let ns = NameServer::start(zone());
    let r = ns.resolver();
    let o = ClientOptions::parse("mongodb+srv://c0.example.test/")
        .resolver(r.clone())
        .run()
        .unwrap();
    assert_eq!(o.tls, Some(may_mongo::TlsOptions::default()));
    let o = ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false")
        .resolver(r.clone())
        .run()
        .unwrap();
    assert_eq!(o.tls, None);
}

#[test]
fn a_silent_name_server_is_a_timeout_not_a_hang() {
    // Bound, never answering.
    let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = Resolver {
        nameservers: vec![quiet.local_addr().unwrap()],
        timeout: Duration::from_millis(200),
    };
    let started = std::time::Instant::now();
    let e = ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false")
        .resolver(r.clone())
        .run()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(&*e.kind, ErrorKind::DnsResolve { .. }), "{e:?}");
}

#[test]
fn a_lookup_from_a_coroutine_works() {
    common::init();
    let ns = NameServer::start(zone());
    let r = ns.resolver();
    let o = may::go!(move || {
        ClientOptions::parse("mongodb+srv://c0.example.test/?tls=false")
            .resolver(r.clone())
            .run()
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(o.hosts.len(), 3);
}
