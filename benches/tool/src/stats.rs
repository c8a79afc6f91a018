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
