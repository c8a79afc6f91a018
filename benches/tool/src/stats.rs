//! Latency samples and the figures drawn from them.

use std::time::Duration;

/// Every operation's latency (ns) over one measured window.
pub struct Sample {
    latencies: Vec<u64>,
    elapsed: Duration,
}

impl Sample {
    pub fn new(mut latencies: Vec<u64>, elapsed: Duration) -> Sample {
        latencies.sort_unstable();
        Sample { latencies, elapsed }
    }

    pub fn ops_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0.0–1.0), in microseconds.
    pub fn quantile_us(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }
}

/// Starts `tasks` OS threads running `body(i)`, lets them run for `window`, raises `stop`,
/// and gathers their latencies. If the OS refuses a thread, the ones started are stopped
/// and joined, and the refusal is the error: the report says what happened instead of
/// failing the run.
pub fn on_threads<F>(
    tasks: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    window: Duration,
    body: impl Fn(usize) -> F,
) -> Result<Vec<u64>, String>
where
    F: FnOnce() -> Vec<u64> + Send + 'static,
{
    use std::sync::atomic::Ordering;
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        match std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(body(i))
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(format!("the OS refused thread {i} of {tasks}: {e}"));
            }
        }
    }
    std::thread::sleep(window);
    stop.store(true, Ordering::Relaxed);
    Ok(handles
        .into_iter()
        .flat_map(|h| h.join().expect("a benchmark thread panicked"))
        .collect())
}
