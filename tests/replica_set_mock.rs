//! A scripted three-member replica set, for topology behaviour one real server cannot show:
//! discovery of members missing from the seed list, a step-down, and reads routed by tag sets.
//!
//! Each member is a [`MockServer`] that answers `hello`/`isMaster` from a shared script state
//! (who is primary, the election id), answers `find` with its own name so a test can see who
//! served it, and refuses writes with `NotWritablePrimary` (10107) unless it is the primary —
//! what a real secondary does. No CRUD semantics are being tested here.

mod common;

use common::run_on;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bson::{Document, doc, oid::ObjectId};
use common::mock::{Action, MockServer, Request};
use may_mongo::options::{
    CollectionOptions, FindOneOptions, ReadPreference, ReadPreferenceOptions, SelectionCriteria,
    TagSet,
};
use may_mongo::{Client, ClientOptions, Core, ErrorKind, ServerType, TopologyType};

const TAGS: [&str; 3] = ["ny", "sf", "sf2"];

struct ReplicaSet {
    members: Vec<MockServer>,
    /// Which member is primary now.
    primary: Arc<AtomicUsize>,
    /// Bumped by each election, so electionIds increase.
    term: Arc<AtomicUsize>,
}

impl ReplicaSet {
    /// Three members; member `primary` starts as the primary.
    fn start(primary: usize) -> ReplicaSet {
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let primary = Arc::new(AtomicUsize::new(primary));
        let term = Arc::new(AtomicUsize::new(1));
        let members = (0..3)
            .map(|i| {
                let (hosts, primary, term) = (hosts.clone(), primary.clone(), term.clone());
                MockServer::start(move |req, _| {
                    member_script(i, req, &hosts.lock().unwrap(), &primary, &term)
                })
            })
            .collect::<Vec<_>>();
        *hosts.lock().unwrap() = members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        ReplicaSet {
            members,
            primary,
            term,
        }
    }

    fn host(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members[i].port)
    }

    /// The old primary steps down and `new` is elected.
    fn elect(&self, new: usize) {
        self.term.fetch_add(1, Ordering::SeqCst);
        self.primary.store(new, Ordering::SeqCst);
    }

    /// How many requests named `command` member `i` has seen.
    fn count(&self, i: usize, command: &str) -> usize {
        self.members[i]
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.command == command)
            .count()
    }
}

fn member_script(
    me: usize,
    req: &Request,
    hosts: &[String],
    primary: &AtomicUsize,
    term: &AtomicUsize,
) -> Action {
    let is_primary = primary.load(Ordering::SeqCst) == me;
    match req.command.as_str() {
        "hello" | "isMaster" | "ismaster" => {
            let mut election = [0u8; 12];
            election[11] = term.load(Ordering::SeqCst) as u8;
            let mut reply = doc! {
                "helloOk": true,
                "isWritablePrimary": is_primary,
                "secondary": !is_primary,
                "setName": "rs",
                "setVersion": 1,
                "hosts": hosts.to_vec(),
                "me": hosts.get(me).cloned().unwrap_or_default(),
                "tags": { "dc": TAGS[me] },
                "maxBsonObjectSize": 16 * 1024 * 1024,
                "maxMessageSizeBytes": 48_000_000,
                "maxWriteBatchSize": 100_000,
                "minWireVersion": 0,
                "maxWireVersion": 21,
                "ok": 1.0,
            };
            if let Some(p) = hosts.get(primary.load(Ordering::SeqCst)) {
                reply.insert("primary", p.clone());
            }
            if is_primary {
                reply.insert("electionId", ObjectId::from_bytes(election));
            }
            Action::Reply(reply)
        }
        "insert" if !is_primary => Action::Reply(doc! {
            "ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary", "errmsg": "not primary",
        }),
        "insert" => Action::Reply(doc! { "ok": 1.0, "n": 1 }),
        "find" => Action::Reply(doc! {
            "ok": 1.0,
            "cursor": { "id": 0i64, "ns": "db.c", "firstBatch": [ { "member": me as i32 } ] },
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    }
}

fn client(uri: &str, core: Core) -> Client {
    common::init();
    let mut opts = ClientOptions::parse(uri).run().unwrap();
    opts.core = core;
    Client::with_options(opts).unwrap()
}

fn insert(c: &Client, n: i32) -> may_mongo::Result<()> {
    let c = c.clone();
    run_on(c.core(), move || {
        c.database("db")
            .collection::<Document>("c")
            .insert_one(doc! { "n": n })
            .run()
            .map(drop)
    })
}

fn who_reads(c: &Client) -> i32 {
    let c = c.clone();
    run_on(c.core(), move || {
        c.database("db")
            .collection::<Document>("c")
            .find_one(doc! {})
            .run()
            .unwrap()
            .unwrap()
            .get_i32("member")
            .unwrap()
    })
}

/// The `$readPreference` of each `find` a server received (`None` where there was none).
fn read_preferences_sent(server: &MockServer) -> Vec<Option<Document>> {
    server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.command == "find")
        .map(|r| r.body.get_document("$readPreference").ok().cloned())
        .collect()
}

both_cores!(members_missing_from_the_seed_list_are_discovered, |core| {
    let rs = ReplicaSet::start(1);
    // Seed with member 0 only: a secondary.
    let c = client(&format!("mongodb://{}/?replicaSet=rs", rs.host(0)), core);
    insert(&c, 1).unwrap();
    let t = c.topology();
    assert_eq!(
        t.topology_type,
        TopologyType::ReplicaSetWithPrimary,
        "{t:#?}"
    );
    assert_eq!(t.servers.len(), 3, "all three members known: {t:#?}");
    assert_eq!(rs.count(1, "insert"), 1, "the write went to the primary");
    assert_eq!(rs.count(0, "insert") + rs.count(2, "insert"), 0);
    // Every member got a monitor: each answers a check soon (the write needed only the
    // primary's, so the others may still be connecting).
    let deadline = Instant::now() + Duration::from_secs(5);
    for i in 0..3 {
        while rs.count(i, "hello") + rs.count(i, "isMaster") == 0 {
            assert!(Instant::now() < deadline, "member {i} was never checked");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
});

both_cores!(after_a_step_down_writes_go_to_the_new_primary, |core| {
    let rs = ReplicaSet::start(0);
    let c = client(
        &format!(
            "mongodb://{},{},{}/?replicaSet=rs&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000",
            rs.host(0),
            rs.host(1),
            rs.host(2)
        ),
        core,
    );
    insert(&c, 1).unwrap();
    assert_eq!(rs.count(0, "insert"), 1);

    rs.elect(2);
    // Writes go on; the first may reach the old primary before any monitor has seen the
    // election, and gets NotWritablePrimary — which marks it Unknown and asks for a check.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused = 0;
    loop {
        match insert(&c, 2) {
            Ok(()) if rs.count(2, "insert") > 0 => break,
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(10107), "{e}");
                refused += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "writes never reached the new primary"
        );
    }
    assert!(
        refused <= 1,
        "the not-primary error was learnt from: {refused} refusals"
    );
    let t = c.topology();
    let primary = &t.servers[&may_mongo::ServerAddress::parse(&rs.host(2)).unwrap()];
    assert_eq!(primary.server_type, ServerType::RsPrimary, "{t:#?}");
    let old = &t.servers[&may_mongo::ServerAddress::parse(&rs.host(0)).unwrap()];
    assert_ne!(old.server_type, ServerType::RsPrimary, "{t:#?}");
    // And they keep going there.
    let before = rs.count(2, "insert");
    for n in 0..5 {
        insert(&c, 10 + n).unwrap();
    }
    assert_eq!(rs.count(2, "insert"), before + 5);
});

both_cores!(secondary_reads_honour_tag_sets, |core| {
    let rs = ReplicaSet::start(0);
    let seeds = format!("{},{},{}", rs.host(0), rs.host(1), rs.host(2));
    // First tag set matches nobody, the second matches member 1 only.
    let c = client(
        &format!(
            "mongodb://{seeds}/?replicaSet=rs&readPreference=secondary&readPreferenceTags=dc:mars&readPreferenceTags=dc:sf"
        ),
        core,
    );
    assert!(matches!(
        c.options().selection_criteria,
        Some(SelectionCriteria::ReadPreference(
            ReadPreference::Secondary { options: Some(_) }
        ))
    ));
    for _ in 0..20 {
        assert_eq!(who_reads(&c), 1);
    }
    // The read preference travelled with each find, for the member to honour.
    let finds: Vec<Document> = read_preferences_sent(&rs.members[1])
        .into_iter()
        .map(|rp| rp.expect("every find carried it"))
        .collect();
    assert_eq!(finds.len(), 20);
    assert_eq!(
        finds[0],
        doc! { "mode": "secondary", "tags": [ { "dc": "mars" }, { "dc": "sf" } ] }
    );

    // Without tags, secondary reads spread over both secondaries (power of two choices in
    // the latency window) and never reach the primary.
    let c = client(
        &format!("mongodb://{seeds}/?replicaSet=rs&readPreference=secondary&localThresholdMS=1000"),
        core,
    );
    // Selection takes the first suitable server it can; wait until the monitors know both
    // secondaries, so the spread is a choice between them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c
        .topology()
        .servers
        .values()
        .filter(|s| s.server_type == ServerType::RsSecondary)
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:#?}", c.topology());
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen = [0; 3];
    for _ in 0..60 {
        seen[who_reads(&c) as usize] += 1;
    }
    assert_eq!(seen[0], 0, "the primary served a secondary read: {seen:?}");
    assert!(seen[1] > 0 && seen[2] > 0, "{seen:?}");

    // A tag set nobody has: no suitable server, a clear error after the timeout.
    let c = client(
        &format!(
            "mongodb://{seeds}/?replicaSet=rs&readPreference=secondary&readPreferenceTags=dc:mars&serverSelectionTimeoutMS=300"
        ),
        core,
    );
    let err = run_on(core, move || {
        c.database("db")
            .collection::<Document>("c")
            .find_one(doc! {})
            .run()
            .unwrap_err()
    });
    assert!(
        matches!(&*err.kind, ErrorKind::ServerSelection { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("RSSecondary"), "{err}");
});

both_cores!(
    mongos_routers_form_a_sharded_topology_and_get_the_read_preference,
    |core| {
        // Two mongos routers: `msg: isdbgrid` in hello. Finds answer with the router's number.
        let routers: Vec<MockServer> = (0..2)
            .map(|me| {
                MockServer::start(move |req, _| match req.command.as_str() {
                    "hello" | "isMaster" => Action::Reply(doc! {
                        "isWritablePrimary": true, "msg": "isdbgrid", "helloOk": true,
                        "minWireVersion": 0, "maxWireVersion": 21, "ok": 1.0,
                    }),
                    "find" => Action::Reply(doc! {
                        "ok": 1.0,
                        "cursor": { "id": 0i64, "ns": "db.c", "firstBatch": [ { "member": me } ] },
                    }),
                    _ => Action::Reply(doc! { "ok": 1.0, "n": 1 }),
                })
            })
            .collect();
        let seeds = format!(
            "127.0.0.1:{},127.0.0.1:{}",
            routers[0].port, routers[1].port
        );
        let finds = read_preferences_sent;

        // The default (primary) read preference is not sent to mongos.
        let c = client(&format!("mongodb://{seeds}/?localThresholdMS=1000"), core);
        for _ in 0..20 {
            who_reads(&c);
        }
        assert_eq!(c.topology().topology_type, TopologyType::Sharded);
        let sent: Vec<_> = routers.iter().flat_map(finds).collect();
        assert_eq!(sent.len(), 20);
        assert!(sent.iter().all(Option::is_none), "{sent:?}");

        // Any other mode is, for the router to apply to the shards.
        let c = client(
            &format!("mongodb://{seeds}/?readPreference=nearest&readPreferenceTags=dc:ny"),
            core,
        );
        who_reads(&c);
        let sent: Vec<_> = routers.iter().flat_map(finds).flatten().collect();
        assert_eq!(
            sent,
            vec![doc! { "mode": "nearest", "tags": [ { "dc": "ny" } ] }]
        );
    }
);

both_cores!(
    a_direct_connection_reads_from_a_secondary_with_primary_preferred,
    |core| {
        let rs = ReplicaSet::start(0);
        // Member 2 is a secondary; a direct connection talks to it and to nobody else.
        let c = client(
            &format!("mongodb://{}/?directConnection=true", rs.host(2)),
            core,
        );
        assert_eq!(who_reads(&c), 2);
        assert_eq!(c.topology().topology_type, TopologyType::Single);
        assert_eq!(
            c.topology().servers.len(),
            1,
            "no discovery on a direct connection"
        );
        let sent: Vec<Option<Document>> = read_preferences_sent(&rs.members[2]);
        // The default read preference is primary; sent as primaryPreferred so a secondary answers.
        assert_eq!(sent, vec![Some(doc! { "mode": "primaryPreferred" })]);
        assert_eq!(rs.count(0, "find") + rs.count(1, "find"), 0);
    }
);

both_cores!(
    predicates_per_operation_criteria_and_handle_options_route_reads,
    |core| {
        let rs = ReplicaSet::start(0);
        let seeds = format!("{},{},{}", rs.host(0), rs.host(1), rs.host(2));
        // A client whose reads go where a predicate says: the member tagged sf2 (member 2).
        common::init();
        let mut opts = ClientOptions::parse(format!("mongodb://{seeds}/?replicaSet=rs"))
            .run()
            .unwrap();
        opts.core = core;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let asked = seen.clone();
        opts.selection_criteria = Some(SelectionCriteria::Predicate(Arc::new(move |s| {
            asked.lock().unwrap().push(s.server_type());
            s.tags().and_then(|t| t.get("dc")).map(String::as_str) == Some("sf2")
        })));
        let c = Client::with_options(opts).unwrap();
        for _ in 0..5 {
            assert_eq!(who_reads(&c), 2);
        }
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .all(|t| matches!(t, ServerType::RsPrimary | ServerType::RsSecondary)),
            "the predicate saw only data-bearing members"
        );
        // To a replica set member, a predicate's read goes as primaryPreferred.
        assert!(
            read_preferences_sent(&rs.members[2])
                .iter()
                .all(|rp| rp.as_ref() == Some(&doc! { "mode": "primaryPreferred" }))
        );
        // Writes are not the predicate's business: they go to the primary.
        insert(&c, 1).unwrap();
        assert_eq!(rs.count(0, "insert"), 1);

        // A client reading from the primary; one find with its own read preference.
        let c = client(&format!("mongodb://{seeds}/?replicaSet=rs"), core);
        assert_eq!(who_reads(&c), 0);
        let sf = ReadPreferenceOptions::builder()
            .tag_sets(vec![TagSet::from([("dc".to_string(), "sf".to_string())])])
            .build();
        let options = FindOneOptions::builder()
            .selection_criteria(SelectionCriteria::from(ReadPreference::secondary(sf)))
            .build();
        let coll = c.database("db").collection::<Document>("c");
        let member = run_on(core, move || {
            coll.find_one(doc! {})
                .with_options(options)
                .run()
                .unwrap()
                .unwrap()
        });
        assert_eq!(member.get_i32("member").unwrap(), 1);
        assert_eq!(
            read_preferences_sent(&rs.members[1]).pop().flatten(),
            Some(doc! { "mode": "secondary", "tags": [ { "dc": "sf" } ] })
        );
        // A collection handle with its own criteria, from CollectionOptions.
        let nearest_sf2 = ReadPreference::nearest(
            ReadPreferenceOptions::builder()
                .tag_sets(vec![TagSet::from([("dc".to_string(), "sf2".to_string())])])
                .build(),
        );
        let coll = c.database("db").collection_with_options::<Document>(
            "c",
            CollectionOptions::builder()
                .selection_criteria(SelectionCriteria::from(nearest_sf2))
                .build(),
        );
        let member = run_on(core, move || coll.find_one(doc! {}).run().unwrap().unwrap());
        assert_eq!(member.get_i32("member").unwrap(), 2);
        // The client's default is unchanged.
        assert_eq!(who_reads(&c), 0);
    }
);

both_cores!(
    a_hello_naming_thousands_of_members_is_not_believed,
    |core| {
        // Each member a hello names gets a monitor; a reply naming 5,000 made 5,000 (on the
        // coroutine core, each a coroutine on a 1 MiB stack). More than MongoDB's 50 is refused.
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let server = MockServer::start({
            let hosts = hosts.clone();
            move |req, _| match req.command.as_str() {
                "hello" | "isMaster" => {
                    let mut listed = hosts.lock().unwrap().clone();
                    listed.extend((0..5000).map(|i| format!("h{i}.example.invalid:27017")));
                    Action::Reply(doc! {
                        "isWritablePrimary": true, "setName": "rs", "setVersion": 1,
                        "hosts": listed, "me": hosts.lock().unwrap()[0].clone(),
                        "primary": hosts.lock().unwrap()[0].clone(),
                        "minWireVersion": 0, "maxWireVersion": 21, "ok": 1.0,
                    })
                }
                _ => Action::Reply(doc! { "ok": 1.0 }),
            }
        });
        let me = format!("127.0.0.1:{}", server.port);
        *hosts.lock().unwrap() = vec![me.clone()];
        let c = client(
            &format!("mongodb://{me}/?replicaSet=rs&serverSelectionTimeoutMS=300"),
            core,
        );
        let e = run_on(core, {
            let c = c.clone();
            move || c.database("admin").run_command(doc! { "ping": 1 }).run()
        })
        .unwrap_err();
        assert!(e.to_string().contains("names 5001 members"), "{e}");
        let t = c.topology();
        assert_eq!(t.servers.len(), 1, "no member was added");
    }
);
