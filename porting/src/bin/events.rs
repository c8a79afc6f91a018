//! Monitoring: a client built from parsed options with a command event handler and a
//! connection pool event handler; the commands each operation sends, paired by request id,
//! with their replies and failures; the connections they check out.

use std::sync::{Arc, Mutex};

#[cfg(not(feature = "official"))]
use may_mongo::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, Result},
    event::{EventHandler, cmap::CmapEvent, command::CommandEvent},
    options::ClientOptions,
    sync::{Client, Collection},
};
#[cfg(feature = "official")]
use mongodb::{
    bson::{Bson, Document, doc},
    error::{ErrorKind, Result},
    event::{EventHandler, cmap::CmapEvent, command::CommandEvent},
    options::ClientOptions,
    sync::{Client, Collection},
};

use may_mongo_porting::{check, check_eq};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One command event: what happened ("started", "succeeded", "failed"), to which command,
/// its request id, and the database and command (started), the reply (succeeded) or the error
/// code (failed).
#[derive(Debug, Clone)]
struct Seen {
    what: &'static str,
    name: String,
    request_id: i32,
    db: Option<String>,
    body: Option<Document>,
    code: Option<i32>,
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// The events logged since the last call, after checking that each start is followed by its
/// end with the same request id, and that each command went to this program's database.
fn take(log: &Log<Seen>) -> Vec<Seen> {
    let seen = std::mem::take(&mut *log.lock().unwrap());
    for pair in seen.chunks(2) {
        assert_eq!(pair.len(), 2, "a command without its end: {seen:?}");
        assert_eq!(
            (pair[0].what, &pair[0].name),
            ("started", &pair[1].name),
            "{seen:?}"
        );
        assert_eq!(pair[0].request_id, pair[1].request_id, "{seen:?}");
        assert_eq!(pair[0].db.as_deref(), Some("porting_events"), "{seen:?}");
    }
    seen
}

/// The events as "started insert"-style lines.
fn lines(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| format!("{} {}", s.what, s.name))
        .collect()
}

fn run(uri: &str) -> Result<u32> {
    let mut checks = 0;
    let commands: Log<Seen> = Arc::default();
    let pool: Log<&'static str> = Arc::default();

    let mut options = ClientOptions::parse(uri).run()?;
    options.app_name = Some("porting-events".to_string());
    let log = commands.clone();
    options.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        let seen = match event {
            CommandEvent::Started(e) => {
                let (db, body) = (Some(e.db), Some(e.command));
                Seen {
                    what: "started",
                    name: e.command_name,
                    request_id: e.request_id,
                    db,
                    body,
                    code: None,
                }
            }
            CommandEvent::Succeeded(e) => {
                let body = Some(e.reply);
                Seen {
                    what: "succeeded",
                    name: e.command_name,
                    request_id: e.request_id,
                    db: None,
                    body,
                    code: None,
                }
            }
            CommandEvent::Failed(e) => {
                let code = match *e.failure.kind {
                    ErrorKind::Command(ref c) => Some(c.code),
                    _ => None,
                };
                Seen {
                    what: "failed",
                    name: e.command_name,
                    request_id: e.request_id,
                    db: None,
                    body: None,
                    code,
                }
            }
            _ => return,
        };
        log.lock().unwrap().push(seen);
    }));
    let log = pool.clone();
    options.cmap_event_handler = Some(EventHandler::callback(move |event: CmapEvent| {
        let name = match event {
            CmapEvent::ConnectionCreated(_) => "created",
            CmapEvent::ConnectionCheckedOut(_) => "checked out",
            CmapEvent::ConnectionCheckedIn(_) => "checked in",
            _ => return,
        };
        log.lock().unwrap().push(name);
    }));
    let client = Client::with_options(options)?;
    let db = client.database("porting_events");

    db.drop().run()?;
    check_eq!(
        checks,
        lines(&take(&commands)),
        ["started dropDatabase", "succeeded dropDatabase"]
    );

    // A write: the command as sent, the reply as received.
    let things: Collection<Document> = db.collection("things");
    things.insert_one(doc! { "_id": 1, "name": "one" }).run()?;
    let seen = take(&commands);
    check_eq!(checks, lines(&seen), ["started insert", "succeeded insert"]);
    let command = seen[0].body.as_ref().expect("the command");
    check_eq!(
        checks,
        command.get("insert"),
        Some(&Bson::String("things".into()))
    );
    check_eq!(
        checks,
        command.get_array("documents").map(|d| d.len()).ok(),
        Some(1)
    );
    check_eq!(
        checks,
        seen[1].body.as_ref().and_then(|r| r.get("n")),
        Some(&Bson::Int32(1))
    );

    // Reads: a cursor read in batches of two is a find and its getMores.
    let more: Vec<Document> = (2..=5).map(|i| doc! { "_id": i }).collect();
    things.insert_many(more).run()?;
    check_eq!(
        checks,
        lines(&take(&commands)),
        ["started insert", "succeeded insert"]
    );
    check!(checks, things.find_one(doc! { "_id": 1 }).run()?.is_some());
    check_eq!(
        checks,
        lines(&take(&commands)),
        ["started find", "succeeded find"]
    );
    let all: Vec<Document> = things
        .find(doc! {})
        .batch_size(2)
        .run()?
        .collect::<Result<_>>()?;
    check_eq!(checks, all.len(), 5);
    let expected =
        ["find", "getMore", "getMore"].map(|c| [format!("started {c}"), format!("succeeded {c}")]);
    check_eq!(checks, lines(&take(&commands)), expected.concat());
    check_eq!(
        checks,
        things.count_documents(doc! { "_id": { "$gt": 2 } }).run()?,
        3
    );
    check_eq!(
        checks,
        lines(&take(&commands)),
        ["started aggregate", "succeeded aggregate"]
    );

    // More writes.
    things
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "name": "uno" } })
        .run()?;
    things.delete_many(doc! { "_id": { "$gte": 4 } }).run()?;
    let expected = [
        "started update",
        "succeeded update",
        "started delete",
        "succeeded delete",
    ];
    check_eq!(checks, lines(&take(&commands)), expected);

    // A command that fails is a started event and a failed one, with the server's code.
    let err = db.run_command(doc! { "frobnicate": 1 }).run().unwrap_err();
    check!(checks, matches!(*err.kind, ErrorKind::Command(_)));
    let seen = take(&commands);
    check_eq!(
        checks,
        lines(&seen),
        ["started frobnicate", "failed frobnicate"]
    );
    check_eq!(checks, seen[1].code, Some(59));

    // One operation at a time needs one connection, checked out and in once per command.
    let pool = std::mem::take(&mut *pool.lock().unwrap());
    let count = |name| pool.iter().filter(|&&n| n == name).count();
    check_eq!(checks, count("created"), 1, "{pool:?}");
    check_eq!(checks, count("checked out"), 11, "{pool:?}");
    // The official crate checks a connection back in from a background task, so the last
    // check-in can still be on its way when the last operation has returned.
    let checked_in = count("checked in");
    check!(checks, checked_in == 11 || checked_in == 10, "{pool:?}");

    db.drop().run()?;
    Ok(checks)
}

fn main() -> Result<()> {
    may_mongo_porting::main("events", run)
}
