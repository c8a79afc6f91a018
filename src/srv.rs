//! `mongodb+srv://`: the seed list and some options come from DNS (MongoDB's Initial DNS
//! Seedlist Discovery spec).
//!
//! `mongodb+srv://cluster0.example.com/` asks DNS for the SRV records of
//! `_mongodb._tcp.cluster0.example.com` (each names a host and port: the seed list) and for
//! the TXT record of `cluster0.example.com` (URI options; only `authSource`, `replicaSet` and
//! `loadBalanced` are allowed there). Options in the string itself win over TXT ones, and TLS
//! is on unless the string says `tls=false`.
//!
//! The decisions — the query packets, reading the answers, the spec's checks on them — are
//! sans-IO functions. The exchange with the name server is a few lines of UDP (TCP when the
//! answer is truncated) run on a helper OS thread when the caller is a coroutine, for the same
//! reason as `getaddrinfo`: a blocking call on a may worker stalls every coroutine there.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, TYPE};

use crate::error::{Error, Result};
use crate::runtime::{self, Core};
use crate::uri::{ConnectionString, HostKind, HostSpec, OptionValue};

/// Where SRV and TXT queries go.
#[derive(Clone, Debug)]
pub struct Resolver {
    /// Name servers, tried in order.
    pub nameservers: Vec<SocketAddr>,
    /// Bounds each query.
    pub timeout: Duration,
}

impl Resolver {
    /// The name servers of `/etc/resolv.conf` (or 127.0.0.1 when it names none).
    pub fn system() -> Result<Resolver> {
        let text =
            std::fs::read("/etc/resolv.conf").map_err(|e| Error::io("/etc/resolv.conf", e))?;
        let conf = resolv_conf::Config::parse(&text)
            .map_err(|e| Error::invalid_argument(format!("cannot read /etc/resolv.conf: {e}")))?;
        Ok(Resolver {
            nameservers: conf
                .get_nameservers_or_local()
                .iter()
                .map(|ip| SocketAddr::new(ip.into(), 53))
                .collect(),
            timeout: Duration::from_secs(10),
        })
    }
}

/// Replaces an SRV connection string's host with the hosts DNS names, and merges the TXT
/// record's options in. A non-SRV string is returned as it is.
pub fn resolve_seedlist(
    mut cs: ConnectionString,
    resolver: &Resolver,
    core: Core,
) -> Result<ConnectionString> {
    if !cs.srv {
        return Ok(cs);
    }
    let HostSpec::Tcp { host, .. } = &cs.hosts[0] else {
        return Err(Error::invalid_uri("mongodb+srv:// takes a host name"));
    };
    let host = host.to_ascii_lowercase();
    let service = match cs.options.get("srvservicename") {
        Some(OptionValue::Str(s)) => s.clone(),
        _ => "mongodb".to_string(),
    };
    let srv_name = format!("_{service}._tcp.{host}");
    let r = resolver.clone();
    let name = srv_name.clone();
    let answer = off_worker(core, resolver.timeout, move || {
        exchange(&r, &name, TYPE::SRV)
    })?;
    let mut hosts = srv_hosts(&answer, &host)?;
    if let Some(OptionValue::Int(max)) = cs.options.get("srvmaxhosts")
        && *max > 0
        && hosts.len() > *max as usize
    {
        shuffle(&mut hosts);
        hosts.truncate(*max as usize);
    }
    cs.hosts = hosts
        .into_iter()
        .map(|(host, port)| HostSpec::Tcp {
            host,
            port: Some(port),
            kind: HostKind::Hostname,
        })
        .collect();

    let r = resolver.clone();
    let answer = off_worker(core, resolver.timeout, move || {
        exchange(&r, &host, TYPE::TXT)
    })?;
    if let Some(txt) = txt_options(&answer)? {
        let from_txt = ConnectionString::parse(&format!("mongodb://txt.invalid/?{txt}"))
            .map_err(|e| Error::invalid_uri(format!("in the TXT record of the SRV host: {e}")))?;
        for (key, value) in from_txt.options {
            if !matches!(key.as_str(), "authsource" | "replicaset" | "loadbalanced") {
                return Err(Error::invalid_uri(format!(
                    "the TXT record sets {key}; only authSource, replicaSet and loadBalanced may be set there"
                )));
            }
            cs.options.entry(key).or_insert(value);
        }
    }
    if !cs.options.contains_key("tls") && !cs.options.contains_key("ssl") {
        cs.options.insert("tls".into(), OptionValue::Bool(true));
    }
    Ok(cs)
}

/// The DNS query for `name` and `kind`, with recursion desired.
pub fn query(id: u16, name: &str, kind: TYPE) -> Result<Vec<u8>> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name).map_err(|e| Error::invalid_uri(format!("{name}: {e}")))?;
    packet.questions.push(Question::new(
        qname,
        QTYPE::TYPE(kind),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet
        .build_bytes_vec()
        .map_err(|e| Error::invalid_uri(format!("{name}: {e}")))
}

/// The SRV answer's hosts, checked the spec's way: there must be at least one, and each must
/// lie in the SRV host's parent domain (or below the SRV host itself when it has fewer than
/// three labels), so a DNS answer cannot point the driver at an unrelated domain.
pub fn srv_hosts(answer: &[u8], srv_host: &str) -> Result<Vec<(String, u16)>> {
    let packet = parse(answer)?;
    let labels: Vec<&str> = srv_host.split('.').collect();
    let domain = if labels.len() >= 3 {
        format!(".{}", labels[1..].join("."))
    } else {
        format!(".{srv_host}")
    };
    let mut hosts = Vec::new();
    for record in &packet.answers {
        if let RData::SRV(srv) = &record.rdata {
            let target = srv
                .target
                .to_string()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            if !target.ends_with(&domain) {
                return Err(Error::invalid_uri(format!(
                    "the SRV record names {target}, which is not in the domain {} of {srv_host}",
                    &domain[1..]
                )));
            }
            hosts.push((target, srv.port));
        }
    }
    if hosts.is_empty() {
        return Err(Error::invalid_uri(format!("no SRV records for {srv_host}")));
    }
    Ok(hosts)
}

/// The TXT answer's option string, if there is a record; two or more records are an error.
pub fn txt_options(answer: &[u8]) -> Result<Option<String>> {
    let packet = parse(answer)?;
    let mut texts = packet.answers.into_iter().filter_map(|r| match r.rdata {
        RData::TXT(txt) => Some(txt),
        _ => None,
    });
    let Some(first) = texts.next() else {
        return Ok(None);
    };
    if texts.next().is_some() {
        return Err(Error::invalid_uri(
            "the SRV host has more than one TXT record",
        ));
    }
    String::try_from(first)
        .map(Some)
        .map_err(|_| Error::invalid_uri("the TXT record is not UTF-8"))
}

fn parse(answer: &[u8]) -> Result<Packet<'_>> {
    let packet = Packet::parse(answer).map_err(|e| Error::dns(format!("bad DNS answer: {e}")))?;
    match packet.rcode() {
        simple_dns::RCODE::NoError | simple_dns::RCODE::NameError => Ok(packet),
        other => Err(Error::dns(format!("DNS answered {other:?}"))),
    }
}

/// One question to the first name server that answers: UDP, then TCP if the answer was
/// truncated.
fn exchange(resolver: &Resolver, name: &str, kind: TYPE) -> io::Result<Vec<u8>> {
    // An unpredictable id: an answer must echo it, so a guessable one would invite forged
    // answers. Not the shared `random_below` counter: its seed is fixed, so every process
    // would send the same ids. (This runs off the workers, on a thread: `rand`'s per-thread
    // generator, seeded from the OS, is safe here.)
    let id: u16 = rand::random();
    let q = query(id, name, kind).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no name servers configured");
    for ns in &resolver.nameservers {
        match udp(ns, &q, id, resolver.timeout).and_then(|answer| {
            let truncated = Packet::parse(&answer)
                .map(|p| p.has_flags(PacketFlag::TRUNCATION))
                .unwrap_or(false);
            if truncated {
                tcp(ns, &q, resolver.timeout)
            } else {
                Ok(answer)
            }
        }) {
            Ok(answer) => return Ok(answer),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn udp(ns: &SocketAddr, q: &[u8], id: u16, timeout: Duration) -> io::Result<Vec<u8>> {
    let bind: SocketAddr = if ns.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
        .parse()
        .expect("literal");
    let sock = UdpSocket::bind(bind)?;
    sock.connect(ns)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.send(q)?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf)?;
        // Ignore stray datagrams that do not answer our question.
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn tcp(ns: &SocketAddr, q: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(ns, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut msg = (q.len() as u16).to_be_bytes().to_vec();
    msg.extend_from_slice(q);
    s.write_all(&msg)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut answer = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut answer)?;
    Ok(answer)
}

/// Runs a blocking lookup where it cannot stall a may worker.
fn off_worker<T: Send + 'static>(
    core: Core,
    timeout: Duration,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    runtime::off_worker(core, timeout, f).map_err(|e| Error::dns(e.to_string()))
}

/// Fisher–Yates with the driver's shared random source (for `srvMaxHosts`).
fn shuffle<T>(v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, crate::random::random_below(i + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::ResourceRecord;
    use simple_dns::rdata::{SRV, TXT};

    fn answer(records: Vec<RData<'static>>, name: &'static str) -> Vec<u8> {
        let mut p = Packet::new_reply(1);
        for r in records {
            p.answers.push(ResourceRecord::new(
                Name::new_unchecked(name),
                CLASS::IN,
                60,
                r,
            ));
        }
        p.build_bytes_vec().unwrap()
    }

    fn srv(target: &'static str, port: u16) -> RData<'static> {
        RData::SRV(SRV {
            priority: 0,
            weight: 0,
            port,
            target: Name::new_unchecked(target),
        })
    }

    #[test]
    fn srv_hosts_must_share_the_parent_domain() {
        let a = answer(
            vec![srv("a.example.com", 27017), srv("B.Example.com", 27018)],
            "_mongodb._tcp.c0.example.com",
        );
        assert_eq!(
            srv_hosts(&a, "c0.example.com").unwrap(),
            vec![
                ("a.example.com".into(), 27017),
                ("b.example.com".into(), 27018)
            ]
        );
        let evil = answer(vec![srv("a.evil.org", 1)], "_mongodb._tcp.c0.example.com");
        let e = srv_hosts(&evil, "c0.example.com").unwrap_err();
        assert!(
            e.to_string().contains("not in the domain example.com"),
            "{e}"
        );
        // A two-label SRV name: hosts must lie below it.
        let two = answer(vec![srv("x.example.com", 1)], "_mongodb._tcp.example.com");
        assert!(srv_hosts(&two, "example.com").is_ok());
        let same = answer(vec![srv("example.com", 1)], "_mongodb._tcp.example.com");
        assert!(srv_hosts(&same, "example.com").is_err());
        let none = answer(vec![], "_mongodb._tcp.c0.example.com");
        assert!(
            srv_hosts(&none, "c0.example.com")
                .unwrap_err()
                .to_string()
                .contains("no SRV")
        );
        assert!(srv_hosts(b"\x00\x01garbage", "c0.example.com").is_err());
    }

    #[test]
    fn one_txt_record_at_most() {
        let txt = |s: &'static str| RData::TXT(TXT::new().with_string(s).unwrap());
        let one = answer(
            vec![txt("replicaSet=rs0&authSource=admin")],
            "c0.example.com",
        );
        assert_eq!(
            txt_options(&one).unwrap().as_deref(),
            Some("replicaSet=rs0&authSource=admin")
        );
        assert_eq!(
            txt_options(&answer(vec![], "c0.example.com")).unwrap(),
            None
        );
        let two = answer(vec![txt("a=1"), txt("b=2")], "c0.example.com");
        assert!(txt_options(&two).is_err());
    }
}
