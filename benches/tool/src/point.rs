//! One measured point — a contender running a workload with N concurrent tasks for a window —
//! in a child process of its own (`may_mongo_bench point ...`), so that its peak RSS and its
//! connections are its own. The child prints one JSON line; the parent collects them.
//!
//! How a window is timed: every task records, per operation, when it ended and how long it
//! took. The window opens once every task has finished one operation (a warm-up, at most
//! [`WARM_UP_CAP`]): with 10,000 tasks the first calls all start together and take seconds,
//! and a window opened earlier would see none of them end. Only operations that ended inside
//! the window count, so the time spent starting 10,000 threads, warming up or draining the
//! last calls is not charged to anyone.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::Data;
use crate::procfs;
use crate::workload::{Contender, Workload};

/// What the parent asks a child to measure.
pub struct Spec {
    pub contender: Contender,
    pub workload: Workload,
    pub tasks: usize,
    pub window: Duration,
    pub uri: String,
    pub port: u16,
    pub data: Data,
}

/// What the child reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub ops: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Resident memory before the contender built anything (KiB).
    pub base_rss_kib: u64,
    /// Peak resident memory of the whole child (KiB).
    pub peak_rss_kib: u64,
    /// Established connections to the server at the end of the window.
    pub connections: usize,
    /// Set when the point could not be measured; the other fields are then zero.
    pub error: Option<String>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// One task's record: (end of the operation, its latency), both in ns, the end measured
/// from the run's base instant.
pub type Record = Vec<(u64, u64)>;

/// The longest the window waits for every task to finish its first operation.
pub const WARM_UP_CAP: Duration = Duration::from_secs(30);

/// The shared clock, warm-up count and stop flag of one window.
#[derive(Clone)]
pub struct Window {
    base: Instant,
    stop: Arc<AtomicBool>,
    /// Tasks that have finished at least one operation.
    warmed: Arc<AtomicUsize>,
}

impl Window {
    pub fn new() -> Window {
        Window {
            base: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            warmed: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn record(&self, rec: &mut Record, started: Instant) {
        if rec.is_empty() {
            self.warmed.fetch_add(1, Ordering::Relaxed);
        }
        let end = self.base.elapsed().as_nanos() as u64;
        rec.push((end, started.elapsed().as_nanos() as u64));
    }

    /// Whether every one of `tasks` has finished an operation.
    fn warm(&self, tasks: usize) -> bool {
        self.warmed.load(Ordering::Relaxed) >= tasks
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs one timed operation and records it.
    #[inline]
    pub fn time<E>(&self, rec: &mut Record, op: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let t = Instant::now();
        op()?;
        self.record(rec, t);
        Ok(())
    }

    /// Runs one timed async operation and records it.
    pub async fn time_async<E>(
        &self,
        rec: &mut Record,
        op: impl Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        let t = Instant::now();
        op.await?;
        self.record(rec, t);
        Ok(())
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Called once every task is started: waits for the warm-up, then out the window, counts
    /// connections to `port`, raises stop. Returns (window start, window end, connections).
    pub fn wait(&self, window: Duration, port: u16, tasks: usize) -> (u64, u64, usize) {
        let warm_up = Instant::now();
        while !self.warm(tasks) && warm_up.elapsed() < WARM_UP_CAP {
            std::thread::sleep(Duration::from_millis(5));
        }
        let from = self.now();
        std::thread::sleep(window);
        let connections = procfs::connections_to(port);
        let to = self.now();
        self.stop.store(true, Ordering::Relaxed);
        (from, to, connections)
    }

    /// The async twin of [`Window::wait`], for tokio.
    pub async fn wait_async(&self, window: Duration, port: u16, tasks: usize) -> (u64, u64, usize) {
        let warm_up = Instant::now();
        while !self.warm(tasks) && warm_up.elapsed() < WARM_UP_CAP {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let from = self.now();
        tokio::time::sleep(window).await;
        let connections = procfs::connections_to(port);
        let to = self.now();
        self.stop.store(true, Ordering::Relaxed);
        (from, to, connections)
    }
}

/// The figures of a finished window: only operations that ended inside `[from, to]` count.
pub fn outcome(records: Vec<Record>, (from, to, connections): (u64, u64, usize)) -> Outcome {
    let mut lat: Vec<u64> = records
        .into_iter()
        .flatten()
        .filter(|&(end, _)| end >= from && end <= to)
        .map(|(_, l)| l)
        .collect();
    lat.sort_unstable();
    let q = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
        }
    };
    Outcome {
        ops: lat.len() as u64,
        seconds: (to - from) as f64 / 1e9,
        p50_us: q(0.5),
        p99_us: q(0.99),
        p999_us: q(0.999),
        connections,
        ..Outcome::default()
    }
}

/// `tasks` OS threads running `body(i)`. If the OS refuses a thread, the ones started are
/// stopped and joined and the refusal is the error: the report says what happened.
pub fn on_threads<F>(w: &Window, spec: &Spec, body: impl Fn(usize) -> F) -> Result<Outcome, String>
where
    F: FnOnce() -> Result<Record, String> + Send + 'static,
{
    let mut handles = Vec::with_capacity(spec.tasks);
    for i in 0..spec.tasks {
        match std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(body(i))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                w.stop.store(true, Ordering::Relaxed);
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(format!(
                    "the OS refused thread {} of {}: {e}",
                    i + 1,
                    spec.tasks
                ));
            }
        }
    }
    let span = w.wait(spec.window, spec.port, spec.tasks);
    let mut records = Vec::with_capacity(spec.tasks);
    for h in handles {
        records.push(h.join().map_err(|_| "a task panicked".to_string())??);
    }
    Ok(outcome(records, span))
}

/// `tasks` may coroutines (default stack) running `body(i)`.
pub fn on_coroutines<F>(
    w: &Window,
    spec: &Spec,
    body: impl Fn(usize) -> F,
) -> Result<Outcome, String>
where
    F: FnOnce() -> Result<Record, String> + Send + 'static,
{
    let handles: Vec<_> = (0..spec.tasks).map(|i| may::go!(body(i))).collect();
    let span = w.wait(spec.window, spec.port, spec.tasks);
    let mut records = Vec::with_capacity(spec.tasks);
    for h in handles {
        records.push(h.join().map_err(|_| "a task panicked".to_string())??);
    }
    Ok(outcome(records, span))
}

/// `tasks` tokio tasks on `rt` running `body(i)`.
pub fn on_tokio<F>(
    rt: &tokio::runtime::Runtime,
    w: &Window,
    spec: &Spec,
    body: impl Fn(usize) -> F,
) -> Result<Outcome, String>
where
    F: Future<Output = Result<Record, String>> + Send + 'static,
{
    rt.block_on(async {
        let handles: Vec<_> = (0..spec.tasks).map(|i| tokio::spawn(body(i))).collect();
        let span = w.wait_async(spec.window, spec.port, spec.tasks).await;
        let mut records = Vec::with_capacity(spec.tasks);
        for h in handles {
            records.push(h.await.map_err(|e| format!("a task failed: {e}"))??);
        }
        Ok(outcome(records, span))
    })
}

/// The tokio runtime of the async contenders: 2 workers, like the machine's 2 cores.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Measures `spec` in this process; the memory figures are filled in here.
pub fn run(spec: &Spec) -> Outcome {
    let base_rss_kib = procfs::status_kib("VmRSS");
    let result = match spec.contender {
        Contender::PingPong => crate::pingpong::run(spec),
        Contender::OfficialAsync => crate::official::run_async(spec),
        Contender::OfficialSync => crate::official::run_sync(spec),
        _ => crate::ours::run(spec),
    };
    let mut outcome = result.unwrap_or_else(|e| Outcome {
        error: Some(e),
        ..Outcome::default()
    });
    outcome.base_rss_kib = base_rss_kib;
    outcome.peak_rss_kib = procfs::status_kib("VmHWM");
    outcome
}
