//! Command monitoring events after MongoDB's Command Logging and Monitoring spec: the database
//! and the server's connection id on every event, and the redaction of security-sensitive
//! commands. A scripted server plays MongoDB, so that authentication commands can succeed
//! and fail on demand (the real server's side of these is in `tests/crud.rs`).

mod common;

use std::sync::{Arc, Mutex};

use bson::{Document, doc};
use common::mock::{Action, MockServer, Request, hello_reply};
use common::run_on;
use may_mongo::event::EventHandler;
use may_mongo::event::command::{CommandEvent, CommandFailedEvent, CommandSucceededEvent};
use may_mongo::{Core, ErrorKind};

#[derive(Default)]
struct Events(Mutex<Vec<CommandEvent>>);

/// The server's id for every connection.
const SERVER_CONNECTION_ID: i64 = 4_000_000_042;

fn script(req: &Request, _: i32) -> Action {
    let name = req.command.to_ascii_lowercase();
    let secret_failure = doc! {
        "ok": 0.0, "code": 18, "codeName": "AuthenticationFailed",
        "errmsg": "bad proof for payload secret-in-message", "errorLabels": ["SomeLabel"],
        "echo": "secret-in-reply",
    };
    match name.as_str() {
        "hello" | "ismaster" => {
            let mut reply = hello_reply();
            reply.insert("connectionId", SERVER_CONNECTION_ID);
            if req.body.contains_key("speculativeAuthenticate") {
                reply.insert(
                    "speculativeAuthenticate",
                    doc! { "conversationId": 1, "payload": "secret-speculative-reply" },
                );
            }
            Action::Reply(reply)
        }
        "saslstart" | "saslcontinue" | "getnonce" | "createuser" => {
            if req.body.get_str("payload").ok() == Some("fail") {
                Action::Reply(secret_failure)
            } else {
                Action::Reply(doc! {
                    "ok": 1.0, "conversationId": 1, "done": false, "payload": "secret-reply",
                    "nonce": "secret-nonce",
                })
            }
        }
        "boom" => Action::Reply(doc! {
            "ok": 0.0, "code": 2, "codeName": "BadValue", "errmsg": "boom failed",
        }),
        _ => Action::Reply(doc! { "ok": 1.0 }),
    }
}

fn monitored_client(core: Core) -> (MockServer, may_mongo::Client, Arc<Events>) {
    let server = MockServer::start(script);
    let events = Arc::new(Events::default());
    let handler = events.clone();
    let client = server.client(core, "", "", move |o| {
        o.command_event_handler = Some(EventHandler::callback(move |e| {
            handler.0.lock().unwrap().push(e);
        }));
    });
    (server, client, events)
}

both_cores!(events_name_the_database_and_the_server_connection, |core| {
    let (_server, client, events) = monitored_client(core);
    let boom = run_on(core, move || {
        client
            .database("evdb")
            .run_command(doc! { "ping": 1 })
            .run()
            .unwrap();
        client
            .database("other")
            .run_command(doc! { "boom": 1 })
            .run()
    });
    assert_eq!(boom.unwrap_err().code(), Some(2));
    let events = events.0.lock().unwrap();
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            let kind = match e {
                CommandEvent::Started(_) => "started",
                CommandEvent::Succeeded(_) => "succeeded",
                CommandEvent::Failed(_) => "failed",
                _ => "other",
            };
            (kind, e.command_name(), e.db())
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("started", "ping", "evdb"),
            ("succeeded", "ping", "evdb"),
            ("started", "boom", "other"),
            ("failed", "boom", "other"),
        ]
    );
    for e in events.iter() {
        assert_eq!(
            e.connection().server_id,
            Some(SERVER_CONNECTION_ID),
            "{e:?}"
        );
        match e {
            CommandEvent::Succeeded(CommandSucceededEvent {
                db,
                connection,
                reply,
                ..
            }) => {
                assert_eq!(db, "evdb");
                assert_eq!(connection.server_id, Some(SERVER_CONNECTION_ID));
                assert_eq!(reply, &doc! { "ok": 1.0 });
            }
            CommandEvent::Failed(CommandFailedEvent {
                db,
                connection,
                failure,
                ..
            }) => {
                assert_eq!(db, "other");
                assert_eq!(connection.server_id, Some(SERVER_CONNECTION_ID));
                // Not a sensitive command: the server's error is shown whole.
                let ErrorKind::Command(c) = &*failure.kind else {
                    panic!("{failure:?}")
                };
                assert_eq!(c.message, "boom failed");
                assert!(failure.server_response().is_some());
            }
            _ => {}
        }
    }
});

/// Whether the started event of the `n`th command was redacted, and the reply of its
/// succeeded event (`None` if it failed).
fn started_and_reply(events: &[CommandEvent], n: usize) -> (Document, Option<Document>) {
    let command = match &events[2 * n] {
        CommandEvent::Started(e) => e.command.clone(),
        other => panic!("{other:?}"),
    };
    let reply = match &events[2 * n + 1] {
        CommandEvent::Succeeded(e) => Some(e.reply.clone()),
        CommandEvent::Failed(_) => None,
        other => panic!("{other:?}"),
    };
    (command, reply)
}

both_cores!(security_sensitive_commands_are_redacted, |core| {
    let (_server, client, events) = monitored_client(core);
    let errors = run_on(core, move || {
        let db = client.database("admin");
        let commands = [
            doc! { "saslStart": 1, "mechanism": "PLAIN", "payload": "secret-payload" },
            // Names compare case-insensitively.
            doc! { "SASLSTART": 1, "payload": "secret-payload" },
            doc! { "getnonce": 1 },
            doc! { "hello": 1, "speculativeAuthenticate": { "saslStart": 1, "payload": "secret-spec" } },
            doc! { "isMaster": 1, "speculativeAuthenticate": { "saslStart": 1, "payload": "secret-spec" } },
            doc! { "ismaster": 1, "speculativeAuthenticate": { "saslStart": 1, "payload": "secret-spec" } },
            // Failures: only the code, code name and labels are shown.
            doc! { "saslContinue": 1, "payload": "fail", "secret": "secret-payload" },
            doc! { "createUser": "u", "pwd": "secret-pwd", "payload": "fail" },
        ];
        let mut errors = Vec::new();
        for c in commands {
            if let Err(e) = db.run_command(c).run() {
                errors.push(e);
            }
        }
        // Not sensitive: hello without speculative authentication.
        db.run_command(doc! { "hello": 1 }).run().unwrap();
        errors
    });
    // The caller still gets the server's whole error.
    assert_eq!(errors.len(), 2);
    for e in &errors {
        assert!(e.to_string().contains("secret-in-message"), "{e}");
    }
    let events = events.0.lock().unwrap();
    assert_eq!(events.len(), 18, "{events:#?}");
    for n in 0..6 {
        let (command, reply) = started_and_reply(&events, n);
        assert!(command.is_empty(), "command {n} redacted: {command}");
        let reply = reply.expect("succeeded");
        assert!(reply.is_empty(), "reply {n} redacted: {reply}");
    }
    for n in 6..8 {
        let (command, reply) = started_and_reply(&events, n);
        assert!(command.is_empty(), "command {n} redacted: {command}");
        assert!(reply.is_none());
        let CommandEvent::Failed(CommandFailedEvent { failure, .. }) = &events[2 * n + 1] else {
            unreachable!()
        };
        let ErrorKind::Command(c) = &*failure.kind else {
            panic!("{failure:?}")
        };
        assert_eq!(c.code, 18);
        assert_eq!(c.code_name, "AuthenticationFailed");
        assert_eq!(
            failure.labels().iter().collect::<Vec<_>>(),
            ["SomeLabel"],
            "{failure:?}"
        );
        assert!(failure.server_response().is_none(), "{failure:?}");
        assert_eq!(failure.code(), Some(18));
    }
    assert!(
        !format!("{:?}", &events[..16]).contains("secret"),
        "{:#?}",
        &events[..16]
    );
    let (command, reply) = started_and_reply(&events, 8);
    assert_eq!(command.get_i32("hello").ok(), Some(1), "{command}");
    assert_eq!(command.get_str("$db").ok(), Some("admin"));
    let reply = reply.expect("succeeded");
    assert_eq!(
        reply.get_bool("isWritablePrimary").ok(),
        Some(true),
        "{reply}"
    );
});
