//! What every porting program shares: where its body runs.
//!
//! A program's body is plain `mongodb::sync` code. Built against may_mongo (the default
//! feature `may`), it runs inside may coroutines on may's default stack, which is the point
//! of may_mongo; built against the official crate (feature `official`), it runs on the
//! calling thread or on OS threads. `main` is the same in both builds:
//!
//! ```ignore
//! fn main() {
//!     let uri = may_mongo_porting::uri();
//!     may_mongo_porting::in_coroutine(move || run(&uri)).unwrap();
//! }
//! ```

#[cfg(all(feature = "may", feature = "official"))]
compile_error!(
    "choose one driver: the default feature `may`, or `official` with --no-default-features"
);

#[cfg(not(any(feature = "may", feature = "official")))]
compile_error!(
    "choose one driver: the default feature `may`, or `official` with --no-default-features"
);

/// The server: `MONGODB_URI`, or a local mongod on the default port.
pub fn uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".to_string())
}

/// A program's `main`: runs `run` against [`uri`] through [`in_coroutine`] and reports its
/// checks as `name: N checks passed (driver)`.
pub fn main<E: Send + 'static>(name: &str, run: fn(&str) -> Result<u32, E>) -> Result<(), E> {
    let uri = uri();
    let checks = in_coroutine(move || run(&uri))?;
    println!("{name}: {checks} checks passed ({DRIVER})");
    Ok(())
}

/// Which driver this build runs: `"may_mongo"` or `"mongodb (official)"`.
pub const DRIVER: &str = if cfg!(feature = "official") {
    "mongodb (official)"
} else {
    "may_mongo"
};

/// Whether the URI asks for may_mongo's threaded core (`core=threaded`, an option of its
/// own). The programs then run as they would with the official crate: on OS threads.
#[cfg(feature = "may")]
fn threaded_core() -> bool {
    uri().to_ascii_lowercase().contains("core=threaded")
}

/// Runs `f` in one may coroutine (may's default stack: nothing is configured) and returns
/// what it returns; a panic in `f` is a panic here. With the threaded core, on the calling
/// thread.
#[cfg(feature = "may")]
pub fn in_coroutine<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    if threaded_core() {
        return f();
    }
    init();
    let handle = may::go!(f);
    match handle.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `f` `n` times at once, each in its own may coroutine (may's default stack), passing
/// each its index, and returns the results in index order; a panic in any is a panic here.
/// With the threaded core, each on its own OS thread.
#[cfg(feature = "may")]
pub fn in_coroutines<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(usize) -> R + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    if threaded_core() {
        return on_threads(n, f);
    }
    init();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            may::go!(move || f(i))
        })
        .collect();
    collect(handles.into_iter().map(|h| h.join()))
}

/// may's workers unpinned: the programs share the machine with other work.
#[cfg(feature = "may")]
fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        may::config().set_worker_pin(false);
    });
}

/// Runs `f` on the calling thread: the official crate's sync API blocks the thread.
#[cfg(not(feature = "may"))]
pub fn in_coroutine<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    f()
}

/// Runs `f` `n` times at once, each on its own OS thread, passing each its index, and returns
/// the results in index order; a panic in any is a panic here.
#[cfg(not(feature = "may"))]
pub fn in_coroutines<R, F>(n: usize, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(usize) -> R + Send + Sync + 'static,
{
    on_threads(n, std::sync::Arc::new(f))
}

/// `f` run `n` times at once, each on its own OS thread.
fn on_threads<R, F>(n: usize, f: std::sync::Arc<F>) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(usize) -> R + Send + Sync + 'static,
{
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(i))
        })
        .collect();
    collect(handles.into_iter().map(|h| h.join()))
}

/// Every result in order, after every task has ended; then the first panic, if any, again.
fn collect<R>(joined: impl Iterator<Item = std::thread::Result<R>>) -> Vec<R> {
    let mut out = Vec::new();
    let mut first_panic = None;
    for r in joined {
        match r {
            Ok(r) => out.push(r),
            Err(panic) => {
                first_panic.get_or_insert(panic);
            }
        }
    }
    if let Some(panic) = first_panic {
        std::panic::resume_unwind(panic);
    }
    out
}

/// `assert_eq!`, counting one more passed check in `$checks` (a `u32` variable).
#[macro_export]
macro_rules! check_eq {
    ($checks:ident, $left:expr, $right:expr $(,)?) => {{
        assert_eq!($left, $right);
        $checks += 1;
    }};
    ($checks:ident, $left:expr, $right:expr, $($arg:tt)+) => {{
        assert_eq!($left, $right, $($arg)+);
        $checks += 1;
    }};
}

/// `assert!`, counting one more passed check in `$checks` (a `u32` variable).
#[macro_export]
macro_rules! check {
    ($checks:ident, $cond:expr $(,)?) => {{
        assert!($cond);
        $checks += 1;
    }};
    ($checks:ident, $cond:expr, $($arg:tt)+) => {{
        assert!($cond, $($arg)+);
        $checks += 1;
    }};
}
