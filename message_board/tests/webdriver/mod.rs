//! A small WebDriver client: just enough of the W3C WebDriver protocol to drive a real Chromium.
//!
//! Why WebDriver: the browser test wants to know what a *user's browser* does with the app's pages —
//! that the form really submits as `multipart/form-data` with the file attached, that the 303 redirect
//! is followed, that escaped text renders as text and not as a script, that the `<img>` really
//! decodes. Only a real browser can answer that. WebDriver (<https://www.w3.org/TR/webdriver2/>) is the
//! standard remote-control protocol for browsers, and it is nothing more than JSON over plain HTTP:
//! `chromedriver` listens on a port, each command is one HTTP request
//! (`POST /session/{id}/url {"url": ...}` navigates, `POST /session/{id}/element` finds an element,
//! ...), and every answer is `{"value": ...}` — on failure an HTTP error status with
//! `{"value": {"error": "no such element", "message": "...", ...}}`. So a blocking HTTP client (ureq)
//! and serde_json are all this needs; no WebDriver crate, no async runtime.
//!
//! [`Browser::start`] runs `chromedriver` as a child process on a free loopback port, waits for it to be
//! ready and opens a session, which makes chromedriver launch a headless Chromium with a fresh
//! profile. Dropping the [`Browser`] — also while a failed assertion unwinds — ends the session (which
//! closes Chromium), kills chromedriver and removes the profile folder.

use std::fmt;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

/// Debian's `chromium` package. (A launcher script that sources /etc/chromium.d/ and then execs
/// /usr/lib/chromium/chromium; chromedriver is happy to start it.)
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package, built from the same source as `chromium`: chromedriver refuses
/// a browser whose major version differs from its own, and the shared source package guarantees a match.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// W3C WebDriver names element references with this fixed key (the spec's "web element identifier"):
/// an element travels as `{"element-6066-11e4-a52e-4f735466cecf": "<id>"}`.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Upper bound for one WebDriver HTTP call. Nothing a test does may hang forever; chromedriver's own
/// page-load and script timeouts (set in the session's capabilities below) are shorter, so a slow
/// page surfaces as chromedriver's "timeout" error rather than as this one.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver gets to start answering `GET /status`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong with a WebDriver command.
pub enum Error {
    /// chromedriver could not be reached, or the HTTP exchange failed (refused, timed out, ...).
    Http {
        command: String,
        source: ureq::Error,
    },
    /// chromedriver answered with an error: `error` is the W3C error code ("no such element",
    /// "invalid argument", "timeout", ...), `message` chromedriver's explanation.
    WebDriver {
        command: String,
        status: u16,
        error: String,
        message: String,
    },
    /// The answer was not the JSON shape the protocol promises.
    Protocol { command: String, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Http { command, source } => {
                write!(f, "WebDriver {command}: HTTP error: {source}")
            }
            Error::WebDriver {
                command,
                status,
                error,
                message,
            } => write!(
                f,
                "WebDriver {command}: chromedriver answered {status} {error}: {message}"
            ),
            Error::Protocol { command, message } => {
                write!(f, "WebDriver {command}: unexpected answer: {message}")
            }
        }
    }
}

// `unwrap()`/`expect()` print Debug: make that the readable message, not a struct dump.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message for a machine without the browser. The browser test must fail, not skip, when the
/// browser is missing — a skipped test looks like a passing one in CI — so this says how to fix it.
fn missing_browser(what: &str) -> String {
    format!(
        "{what}: the browser test needs Debian's Chromium and chromedriver \
         ({CHROMIUM} and {CHROMEDRIVER}). Install them with `scripts/install-browser` \
         (or as root: `apt-get install chromium chromium-driver`)."
    )
}

/// A running chromedriver with one open session, i.e. one headless Chromium.
pub struct Browser {
    agent: ureq::Agent,
    /// `http://127.0.0.1:<port>`
    driver_url: String,
    /// `None` until the session is open, and again once it is deleted.
    session: Option<String>,
    driver: Child,
    /// Holds Chromium's profile (`--user-data-dir`) and chromedriver's log; removed on drop.
    dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver and opens a session (which launches Chromium).
    ///
    /// # Panics
    /// If Chromium or chromedriver is not installed (the message says how to install them), or if
    /// chromedriver does not start or cannot open a session (the message carries its error and log).
    pub fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(binary).exists() {
                panic!("{}", missing_browser(&format!("{binary} not found")));
            }
        }

        // A folder of our own, for the profile and the log.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "message_board-webdriver-{}-{nanos}",
            std::process::id()
        ));
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", profile.display()));

        // A free port: bind port 0, read what the kernel chose, release it for chromedriver. (Another
        // process could take it in between; on a test machine that is rare enough, and would show as
        // chromedriver failing to start, with its log in the panic message.)
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("cannot find a free loopback port");

        // chromedriver writes a banner to stdout and errors to stderr; keep both in a file so the
        // test's output stays clean and a failed start can quote them.
        let log_path = dir.join("chromedriver.log");
        let log = File::create(&log_path).expect("cannot create the chromedriver log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}",
                    missing_browser(&format!("cannot run {CHROMEDRIVER}: {e}"))
                )
            });

        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                // chromedriver's error statuses carry a JSON body we want to read, not a bare error.
                .http_status_as_error(false)
                .timeout_global(Some(COMMAND_TIMEOUT))
                // Never send loopback traffic to an $http_proxy from the environment.
                .proxy(None)
                .build(),
        );
        // From here on `Drop` cleans up, also if one of the steps below panics.
        let mut browser = Browser {
            agent,
            driver_url: format!("http://127.0.0.1:{port}"),
            session: None,
            driver,
            dir,
        };
        browser.wait_until_ready(&log_path);
        browser.open_session(&profile);
        browser
    }

    /// Polls `GET /status` until chromedriver says `ready`, at most [`START_TIMEOUT`].
    fn wait_until_ready(&mut self, log_path: &Path) {
        let deadline = Instant::now() + START_TIMEOUT;
        let last = loop {
            let last = match self.agent.get(format!("{}/status", self.driver_url)).call() {
                Ok(mut response) => match response.body_mut().read_json::<Value>() {
                    Ok(status) if status["value"]["ready"] == json!(true) => return,
                    Ok(status) => format!("not ready: {status}"),
                    Err(e) => format!("unreadable /status answer: {e}"),
                },
                Err(e) => format!("GET /status: {e}"),
            };
            if let Ok(Some(exit)) = self.driver.try_wait() {
                break format!("chromedriver exited ({exit})");
            }
            if Instant::now() >= deadline {
                break format!("not ready after {START_TIMEOUT:?} ({last})");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        panic!(
            "{CHROMEDRIVER} on {}: {last}; its output:\n{log}",
            self.driver_url
        );
    }

    /// `POST /session`: chromedriver launches Chromium with these capabilities.
    fn open_session(&mut self, profile: &Path) {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    // Fail fast instead of WebDriver's default 300 s page-load timeout; both stay
                    // below COMMAND_TIMEOUT so chromedriver reports them, with its message.
                    "timeouts": { "pageLoad": 20_000, "script": 10_000, "implicit": 0 },
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            // No window and no display server needed (the "new" headless mode,
                            // which is the full browser, not a separate stripped-down one).
                            "--headless",
                            // Chromium's sandbox needs user namespaces, which containers and root
                            // usually lack; without this flag it refuses to start as root.
                            "--no-sandbox",
                            // No GPU in CI; render in software.
                            "--disable-gpu",
                            // Plain HTTP only: no QUIC attempts to anywhere.
                            "--disable-quic",
                            // No welcome tab or first-run dialogs in the fresh profile.
                            "--no-first-run",
                            // The test machine may have no internet access (and the test should not
                            // depend on it): no safe-browsing lists, no variations, no update checks,
                            // no component downloads, no account sync.
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            // Containers often give /dev/shm only 64 MiB, which crashes renderers;
                            // use the temp directory for shared memory instead.
                            "--disable-dev-shm-usage",
                            // A fixed viewport, so screenshots are comparable between runs.
                            "--window-size=1000,1200",
                            // A fresh, private profile: no state shared with other runs or users.
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                },
            },
        });
        let value = self
            .call("POST", "/session", Some(capabilities))
            .unwrap_or_else(|e| panic!("cannot start Chromium: {e}"));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /session: no sessionId in {value}"));
        self.session = Some(id.to_owned());
    }

    /// One raw WebDriver call: `path` is relative to the driver (`/session`, `/status`); answers the
    /// `value` member of the reply, or chromedriver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let command = format!("{method} {path}");
        let url = format!("{}{path}", self.driver_url);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            // Every POST carries a JSON body, `{}` when the command has no parameters.
            ("POST", body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
            _ => unreachable!("unsupported method {method}"),
        };
        let mut response = sent.map_err(|source| Error::Http {
            command: command.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let reply: Value = response
            .body_mut()
            .with_config()
            // Screenshots come back as base64 inside the JSON; allow for big ones.
            .limit(64 * 1024 * 1024)
            .read_json()
            .map_err(|e| Error::Protocol {
                command: command.clone(),
                message: format!("status {status}, body is not JSON: {e}"),
            })?;
        let mut reply = match reply {
            Value::Object(map) => map,
            other => {
                return Err(Error::Protocol {
                    command,
                    message: format!("status {status}, not an object: {other}"),
                });
            }
        };
        let value = reply.remove("value").unwrap_or(Value::Null);
        if status >= 400 {
            let text = |key: &str| value[key].as_str().unwrap_or("").to_owned();
            return Err(Error::WebDriver {
                command,
                status,
                error: text("error"),
                message: text("message"),
            });
        }
        Ok(value)
    }

    /// A command on the open session: `path` is relative to `/session/{id}`.
    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let id = self.session.as_deref().expect("session is open");
        self.call(method, &format!("/session/{id}{path}"), body)
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.session_call("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// The address of the current page.
    pub fn current_url(&self) -> Result<String> {
        let value = self.session_call("GET", "/url", None)?;
        as_string("GET /url", value)
    }

    /// The page's current DOM, serialized as HTML.
    pub fn source(&self) -> Result<String> {
        let value = self.session_call("GET", "/source", None)?;
        as_string("GET /source", value)
    }

    /// The first element matching the CSS selector; error "no such element" if there is none.
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let value = self.session_call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        self.element(&format!("find {css:?}"), &value)
    }

    /// All elements matching the CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>> {
        let value = self.session_call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        let command = format!("find all {css:?}");
        match value {
            Value::Array(items) => items.iter().map(|v| self.element(&command, v)).collect(),
            other => Err(Error::Protocol {
                command,
                message: format!("not an array: {other}"),
            }),
        }
    }

    /// Runs `script` as the body of a function (so it must `return` its result) with `args` as
    /// `arguments`; answers the returned value. Elements can be passed as `element.to_json()`.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value> {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let value = self.session_call("GET", "/screenshot", None)?;
        let encoded = as_string("GET /screenshot", value)?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| Error::Protocol {
                command: "GET /screenshot".into(),
                message: format!("not base64: {e}"),
            })
    }

    /// Polls `probe` every 50 ms until it answers `Some`, for at most `timeout`; `what` names the
    /// awaited condition in the error. An `Err` from the probe ends the wait at once.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut(&Browser) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = probe(self)? {
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Err(Error::Protocol {
                    command: format!("wait for {what}"),
                    message: format!("still not true after {timeout:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the session, which closes Chromium. Also done on drop; this form reports errors.
    pub fn quit(&mut self) -> Result<()> {
        match self.session.take() {
            Some(id) => self
                .call("DELETE", &format!("/session/{id}"), None)
                .map(drop),
            None => Ok(()),
        }
    }

    fn element(&self, command: &str, value: &Value) -> Result<Element<'_>> {
        match value[ELEMENT_KEY].as_str() {
            Some(id) => Ok(Element {
                browser: self,
                id: id.to_owned(),
            }),
            None => Err(Error::Protocol {
                command: command.to_owned(),
                message: format!("no element reference in {value}"),
            }),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session first lets chromedriver shut Chromium down properly (killing only
        // chromedriver could leave the browser processes behind). Errors are ignored: this may run
        // while a panic unwinds, and a second panic would abort the process.
        let _ = self.quit();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A reference to an element on the current page (stale once the page changes).
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    /// The element as a script argument for [`Browser::execute`].
    pub fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// The first descendant matching the CSS selector.
    pub fn find(&self, css: &str) -> Result<Element<'_>> {
        let value = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        )?;
        self.browser.element(&format!("find {css:?}"), &value)
    }

    /// Types `text` into the element as key presses. For `<input type=file>` the text is instead the
    /// absolute path of the file to choose (newline-separated paths for several files).
    pub fn send_keys(&self, text: &str) -> Result<()> {
        self.call("POST", "/value", Some(json!({ "text": text })))
            .map(drop)
    }

    /// Clicks the element's centre (scrolling it into view first), like a user would.
    pub fn click(&self) -> Result<()> {
        self.call("POST", "/click", None).map(drop)
    }

    /// The element's rendered text (what a user sees: CSS-hidden text excluded, whitespace as
    /// rendered).
    pub fn text(&self) -> Result<String> {
        let value = self.call("GET", "/text", None)?;
        as_string("GET /element/text", value)
    }

    /// An attribute of the element (`None` if absent).
    pub fn attribute(&self, name: &str) -> Result<Option<String>> {
        let value = self.call("GET", &format!("/attribute/{name}"), None)?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// A DOM property of the element (e.g. `value`, `naturalWidth`).
    pub fn property(&self, name: &str) -> Result<Value> {
        self.call("GET", &format!("/property/{name}"), None)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.browser
            .session_call(method, &format!("/element/{}{path}", self.id), body)
    }
}

fn as_string(command: &str, value: Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(Error::Protocol {
            command: command.to_owned(),
            message: format!("expected a string, got {other}"),
        }),
    }
}
