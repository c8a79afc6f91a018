//! Locating, and on first use building, the `ferretdb` executable.
//!
//! There is no prebuilt FerretDB we may download here: the only network is the package registries. So the
//! binary is built from the Go module proxy, once per target directory, and cached under
//! `<target>/ferretdb/v1.24.2/ferretdb` (kept out of git by `/target` in `.gitignore`).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{FERRETDB_MODULE, FERRETDB_VERSION};

/// How long one `go` step (download or build) may take before it is killed. A fresh build takes about two
/// minutes on the project's two-core machines; this leaves plenty of room for a slow proxy.
const GO_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long to wait for another process that holds the build lock (it is building the same binary).
const LOCK_TIMEOUT: Duration = Duration::from_secs(40 * 60);

/// The `ferretdb` executable to run.
///
/// `$FERRETDB_BIN` wins when set (non-empty), so a machine with its own FerretDB build, or a wrapper that
/// already resolved the binary, skips everything else. Otherwise the cached build in
/// `<workspace target dir>/ferretdb/v1.24.2/ferretdb` is used, and built first if it is missing.
///
/// The build is guarded by an exclusive lock on `<cache dir>/build.lock`: `cargo test` runs several test
/// binaries, possibly at once, and each may call this; the first one builds, the others wait for it and
/// then find the finished binary. The binary is written under a temporary name and renamed into place, so
/// its presence always means a complete build, even if a build was killed half way.
///
/// The build (`GOTOOLCHAIN=local`): `go mod download` the module, copy its source out of the read-only
/// module cache, write `build/version/version.txt` (a generated file that the module lacks; without it the
/// binary panics at start), `go build -buildvcs=false ./cmd/ferretdb`, check `ferretdb --version`. It takes
/// about 2-2.5 minutes with empty Go caches on the project's 2-core machines, seconds with warm ones.
pub fn binary() -> io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("FERRETDB_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "$FERRETDB_BIN is set to {}, which is not a file",
                    bin.display()
                ),
            ));
        }
        return Ok(bin);
    }
    let dir = cache_dir();
    let bin = dir.join("ferretdb");
    if bin.is_file() {
        return Ok(bin);
    }
    fs::create_dir_all(&dir).map_err(|e| step_error(&format!("creating {}", dir.display()), e))?;
    let lock_path = dir.join("build.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| step_error(&format!("opening lock file {}", lock_path.display()), e))?;
    acquire(&lock, &lock_path, &format!("FerretDB {FERRETDB_VERSION}"))?;
    // Someone else may have finished the build while we waited for the lock.
    let result = if bin.is_file() {
        Ok(bin)
    } else {
        build(&dir, &bin).map(|()| bin)
    };
    let _ = lock.unlock();
    result
}

/// `<workspace target dir>/ferretdb/v1.24.2`: `$CARGO_TARGET_DIR` if set, else the `target/` folder next to
/// this crate (the workspace root's), which is where cargo puts everything else.
pub fn cache_dir() -> PathBuf {
    target_dir().join("ferretdb").join(FERRETDB_VERSION)
}

/// `$CARGO_TARGET_DIR` if set, else the workspace's `target/` folder.
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => PathBuf::from(t),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    }
}

/// Takes the exclusive build lock `path`, waiting for another process that is building `what`.
pub(crate) fn acquire(lock: &File, path: &Path, what: &str) -> io::Result<()> {
    let start = Instant::now();
    let mut told = false;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => {
                return Err(step_error(&format!("locking {}", path.display()), e));
            }
        }
        if !told {
            eprintln!("ferretdb-embed: another process is building {what}; waiting for it...");
            told = true;
        }
        if start.elapsed() > LOCK_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "timed out after {} s waiting for the {what} build lock {} (held by another process)",
                    LOCK_TIMEOUT.as_secs(),
                    path.display()
                ),
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

fn build(dir: &Path, bin: &Path) -> io::Result<()> {
    let started = Instant::now();
    let go = go_command();
    eprintln!(
        "ferretdb-embed: building FerretDB {FERRETDB_VERSION} from the Go module proxy (first run only, ~2-3 min)..."
    );
    // Work folders of earlier failed or killed builds (we hold the lock, so none is in use): their logs
    // were reported when they failed.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("build-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let work = dir.join(format!("build-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&work)
        .map_err(|e| step_error(&format!("creating {}", work.display()), e))?;
    let result = build_in(&go, &work, bin);
    // Leave the work folder behind only on failure, so its logs can be read.
    match &result {
        Ok(()) => {
            let _ = fs::remove_dir_all(&work);
            eprintln!(
                "ferretdb-embed: built {} in {} s",
                bin.display(),
                started.elapsed().as_secs()
            );
        }
        Err(_) => eprintln!(
            "ferretdb-embed: FerretDB build failed; logs in {}",
            work.display()
        ),
    }
    result
}

fn build_in(go: &OsString, work: &Path, bin: &Path) -> io::Result<()> {
    let module = format!("{FERRETDB_MODULE}@{FERRETDB_VERSION}");

    // 1. Fetch the module source into the module cache. `-json` tells us where it landed ("Dir").
    eprintln!("ferretdb-embed: go mod download {module}");
    let mut download = go_cmd(go);
    download
        .args(["mod", "download", "-json", &module])
        .current_dir(work);
    let out = run_step("go mod download", download, work, "download")?;
    let module_dir = json_string_field(&out, "Dir").ok_or_else(|| {
        io::Error::other(format!(
            "go mod download: no \"Dir\" in its output (is {module} on the proxy?): {}",
            tail(&out, 2000)
        ))
    })?;

    // 2. The module cache is read-only, and FerretDB embeds build/version/version.txt, a file generated by
    //    its own build tooling and not part of the module (FerretDB issue 2982): without it the binary panics
    //    at start ("Invalid build/version/version.txt"). So copy the source somewhere writable and create it.
    let src = work.join("src");
    copy_tree(Path::new(&module_dir), &src)
        .map_err(|e| step_error(&format!("copying {module_dir} to {}", src.display()), e))?;
    let version_file = src.join("build").join("version").join("version.txt");
    fs::write(&version_file, format!("{FERRETDB_VERSION}\n"))
        .map_err(|e| step_error(&format!("writing {}", version_file.display()), e))?;

    // 3. Build. `-buildvcs=false`: the copy is not a VCS checkout, and VCS stamping would fail or, inside
    //    our own git work tree, stamp the wrong repository.
    eprintln!(
        "ferretdb-embed: go build ./cmd/ferretdb (downloads its dependencies, then compiles)"
    );
    let tmp_bin = work.join("ferretdb.tmp");
    let mut build = go_cmd(go);
    build
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&tmp_bin)
        .arg("./cmd/ferretdb")
        .current_dir(&src);
    run_step("go build", build, work, "build")?;

    // 4. Sanity check: the version file made it in (the binary would panic at start otherwise).
    let mut check = Command::new(&tmp_bin);
    check.arg("--version");
    let out = run_step("ferretdb --version", check, work, "version")?;
    if !out.contains(FERRETDB_VERSION) {
        return Err(io::Error::other(format!(
            "built ferretdb does not report {FERRETDB_VERSION}: {}",
            tail(&out, 2000)
        )));
    }

    // 5. Publish atomically: same folder tree, same file system, so rename either fully happens or not.
    fs::rename(&tmp_bin, bin).map_err(|e| {
        step_error(
            &format!("renaming {} to {}", tmp_bin.display(), bin.display()),
            e,
        )
    })
}

/// `go` from `$PATH`, else the standard install location (a fresh machine may not have it on `$PATH`).
fn go_command() -> OsString {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("go").is_file() {
                return dir.join("go").into_os_string();
            }
        }
    }
    let standard = Path::new("/usr/local/go/bin/go");
    if standard.is_file() {
        return standard.as_os_str().to_owned();
    }
    OsString::from("go")
}

fn go_cmd(go: &OsString) -> Command {
    let mut cmd = Command::new(go);
    // GOTOOLCHAIN=local: go.mod may name a newer toolchain, and Go would try to download it, which cannot
    // work here (toolchains are not on the module proxy path we can reach). The installed Go (>= 1.24) builds
    // FerretDB v1.24.2 fine.
    // GOWORK=off: a go.work in some parent folder must not pull our copy into a foreign workspace.
    // Checksums: sum.golang.org is not reachable directly here, but Go asks the proxy's
    // /sumdb/sum.golang.org/ endpoint first, and proxy.golang.org serves it, so the default GOSUMDB works and
    // no GONOSUMDB/GOSUMDB=off is needed (verified with an empty GOMODCACHE and GOCACHE).
    cmd.env("GOTOOLCHAIN", "local").env("GOWORK", "off");
    cmd
}

/// Runs one step with stdout/stderr in `<work>/<name>.out|.err`, killing it after [`GO_STEP_TIMEOUT`].
/// Returns its stdout; on failure, an error naming the step with the tail of its stderr.
pub(crate) fn run_step(
    step: &str,
    mut cmd: Command,
    work: &Path,
    name: &str,
) -> io::Result<String> {
    use std::os::unix::process::CommandExt;
    let out_path = work.join(format!("{name}.out"));
    let err_path = work.join(format!("{name}.err"));
    let out = File::create(&out_path)?;
    let err = File::create(&err_path)?;
    // Own process group, so a timeout kills go and the compilers it started.
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| step_error(&format!("{step}: starting {:?}", cmd.get_program()), e))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > GO_STEP_TIMEOUT {
            // SAFETY: plain syscall; the negative pid names the process group we created above.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{step} timed out after {} s; stderr tail:\n{}",
                    GO_STEP_TIMEOUT.as_secs(),
                    read_tail(&err_path, 4000)
                ),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        return Err(io::Error::other(format!(
            "{step} failed ({status}); stderr tail:\n{}{}",
            read_tail(&err_path, 4000),
            if stdout.is_empty() {
                String::new()
            } else {
                format!("\nstdout tail:\n{}", tail(&stdout, 2000))
            }
        )));
    }
    Ok(stdout)
}

fn step_error(step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{step}: {e}"))
}

/// The last `max` bytes of a file (lossy UTF-8), for error messages.
pub(crate) fn read_tail(path: &Path, max: usize) -> String {
    let mut buf = Vec::new();
    match File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(_) => tail(&String::from_utf8_lossy(&buf), max),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

pub(crate) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

/// Recursive copy that makes everything owner-writable (module cache files are read-only).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644))?;
        }
        // The Go module cache holds no symlinks (zips cannot carry them); nothing else to copy.
    }
    Ok(())
}

/// The string value of `"field": "..."` in `go mod download -json` output. Go's JSON encoder writes one
/// field per line with standard escapes; a tiny decoder avoids a JSON dependency for one field.
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":");
    let rest = &json[json.find(&key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c), // \" \\ \/
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dir_from_go_mod_download_json() {
        let json = "{\n\t\"Path\": \"github.com/FerretDB/FerretDB\",\n\t\"Dir\": \"/root/go/pkg/mod/github.com/!ferret!d!b/!ferret!d!b@v1.24.2\",\n\t\"Sum\": \"h1:x\"\n}\n";
        assert_eq!(
            json_string_field(json, "Dir").as_deref(),
            Some("/root/go/pkg/mod/github.com/!ferret!d!b/!ferret!d!b@v1.24.2")
        );
        assert_eq!(
            json_string_field("{\"Dir\": \"a\\\"b\\\\c\\u0041\"}", "Dir").as_deref(),
            Some("a\"b\\cA")
        );
        assert_eq!(json_string_field("{\"Error\": \"x\"}", "Dir"), None);
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("ééé", 3), "...é");
    }
}
