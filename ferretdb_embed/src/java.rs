//! mongo-java-server 1.47.0: the second, independent server the tests run against.
//!
//! Why a second server: one implementation hides the driver's assumptions about it. FerretDB
//! answers `hello`, reports wire version 21 and gives every error a code; mongo-java-server
//! (Java, in-memory backend) has no `hello` (only the legacy `isMaster`), reports wire version 8
//! and answers some errors with code 0 and a message only — the driver's legacy-handshake path
//! and its reading of errors are proved against it.
//!
//! It comes from Maven Central: `mvn dependency:copy-dependencies` on `java/pom.xml` fetches the
//! jars, `javac` compiles `java/Launcher.java` (the server's own mains bind localhost:27017
//! only; the launcher binds a free loopback port). Both land, once per target folder, in
//! `<target>/mongo-java-server/1.47.0/`, the same way the FerretDB binary is cached.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::binary::{acquire, run_step, target_dir};
use crate::server::{
    COUNTER, child_running, cleanup_stale_data_dirs, free_port, stop_child, wait_ready,
    wait_timeout,
};
use crate::{DATA_DIR_PREFIX, STOP_TIMEOUT, data_root, owner};

/// The mongo-java-server version fetched from Maven Central (it is also written in `java/pom.xml`).
pub const MONGO_JAVA_SERVER_VERSION: &str = "1.47.0";

const POM: &str = include_str!("../java/pom.xml");
const LAUNCHER: &str = include_str!("../java/Launcher.java");

/// `<workspace target dir>/mongo-java-server/1.47.0`.
pub fn java_cache_dir() -> PathBuf {
    target_dir()
        .join("mongo-java-server")
        .join(MONGO_JAVA_SERVER_VERSION)
}

/// The Java class path that runs the launcher: `<cache>/dist/lib/*:<cache>/dist/classes`.
///
/// On first use it fetches the jars with Maven and compiles the launcher with `javac` (a few
/// seconds with a warm `~/.m2`), under the same kind of lock as the FerretDB build; the `dist`
/// folder is renamed into place only when complete. `$MONGO_JAVA_SERVER_CLASSPATH` wins when set.
pub fn java_classpath() -> io::Result<String> {
    if let Some(cp) = std::env::var("MONGO_JAVA_SERVER_CLASSPATH")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(cp);
    }
    let dir = java_cache_dir();
    let dist = dir.join("dist");
    let classpath = |dist: &Path| {
        format!(
            "{}:{}",
            dist.join("lib").join("*").display(),
            dist.join("classes").display()
        )
    };
    if dist.join("classes").join("Launcher.class").is_file() {
        return Ok(classpath(&dist));
    }
    fs::create_dir_all(&dir)?;
    let lock_path = dir.join("build.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let what = format!("mongo-java-server {MONGO_JAVA_SERVER_VERSION}");
    acquire(&lock, &lock_path, &what)?;
    let result = if dist.join("classes").join("Launcher.class").is_file() {
        Ok(classpath(&dist))
    } else {
        fetch(&dir, &dist).map(|()| classpath(&dist))
    };
    let _ = lock.unlock();
    result
}

fn fetch(dir: &Path, dist: &Path) -> io::Result<()> {
    let started = Instant::now();
    eprintln!(
        "ferretdb-embed: fetching mongo-java-server {MONGO_JAVA_SERVER_VERSION} from Maven Central (first run only)..."
    );
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let work = dir.join(format!("build-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&work)?;
    fs::write(work.join("pom.xml"), POM)?;
    fs::write(work.join("Launcher.java"), LAUNCHER)?;
    let mut mvn = Command::new(std::env::var_os("MVN").unwrap_or_else(|| "mvn".into()));
    mvn.current_dir(&work).args([
        "-q",
        "-B",
        "dependency:copy-dependencies",
        "-DoutputDirectory=lib",
    ]);
    run_step("mvn dependency:copy-dependencies", mvn, &work, "mvn")?;
    let mut javac = Command::new(java_home_tool("javac"));
    javac
        .current_dir(&work)
        .args(["-cp", "lib/*", "-d", "classes", "Launcher.java"]);
    run_step("javac Launcher.java", javac, &work, "javac")?;
    if dist.exists() {
        fs::remove_dir_all(dist)?;
    }
    fs::rename(&work, dist)?;
    eprintln!(
        "ferretdb-embed: mongo-java-server ready in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        dist.display()
    );
    Ok(())
}

/// A running mongo-java-server (in-memory backend) on `127.0.0.1`. Its data lives in the JVM and
/// is gone when it stops; its folder under [`data_root`] holds only the log.
///
/// Dropping it kills the process and deletes the folder; it also dies with the process that
/// started it (`PR_SET_PDEATHSIG`, as for FerretDB).
#[derive(Debug)]
pub struct JavaServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl JavaServer {
    /// Fetches the server if needed, starts it on a free loopback port and waits until it
    /// answers `isMaster` (it has no `hello`).
    pub fn start() -> io::Result<JavaServer> {
        let classpath = java_classpath()?;
        cleanup_stale_data_dirs();
        let dir = data_root().join(format!(
            "{DATA_DIR_PREFIX}{}-{}-java",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        let mut server = JavaServer {
            port: 0,
            dir,
            child: None,
        };
        for attempt in 1.. {
            server.port = free_port()?;
            match server.launch(&classpath) {
                Ok(()) => break,
                Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(server)
    }

    /// `mongodb://127.0.0.1:PORT/`
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JVM's process id, or `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The folder holding the log (`server.log`).
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// The log that receives the JVM's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        child_running(&mut self.child)
    }

    /// Stops the server: SIGTERM (the JVM exits at once: nothing to save), then SIGKILL.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }

    fn launch(&mut self, classpath: &str) -> io::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = Command::new(java_home_tool("java"));
        // A small heap and one compiler thread: the tests store little, and the machines have two
        // cores that the tests need more than the JIT does.
        cmd.args([
            "-Xmx512m",
            "-XX:TieredStopAtLevel=1",
            "-XX:CICompilerCount=1",
            "-cp",
            classpath,
            "Launcher",
            "127.0.0.1",
            &self.port.to_string(),
        ])
        .current_dir(&self.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = owner::spawn(cmd)
            .map_err(|e| io::Error::new(e.kind(), format!("starting java: {e}")))?;
        self.child = Some(child);
        let result = self.wait_ready();
        if result.is_err()
            && let Some(mut child) = self.child.take()
        {
            let _ = child.kill();
            let _ = wait_timeout(&mut child, STOP_TIMEOUT);
        }
        result
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        // No `hello` here: the legacy `isMaster` is what this server knows.
        let log = self.log_path();
        wait_ready(
            &mut self.child,
            "mongo-java-server",
            self.port,
            "isMaster",
            &log,
        )
    }
}

impl Drop for JavaServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `$JAVA_HOME/bin/<tool>` when `JAVA_HOME` is set, else `<tool>` from `PATH` (Java 17 or newer).
fn java_home_tool(tool: &str) -> PathBuf {
    match std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join("bin").join(tool),
        None => PathBuf::from(tool),
    }
}
