//! The round-trip-time average the Server Selection spec prescribes: an exponentially weighted
//! moving average with weight 0.2 on each new sample, so one slow heartbeat does not make a
//! server look distant, while a lasting change shows within a few heartbeats.

use std::time::Duration;

/// A server's average round-trip time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundTripTime {
    average: Option<Duration>,
}

impl RoundTripTime {
    /// Weight of a new sample.
    pub const ALPHA: f64 = 0.2;

    /// Folds in a new sample and returns the new average. The first sample is the average.
    pub fn add_sample(&mut self, sample: Duration) -> Duration {
        let new = match self.average {
            None => sample,
            Some(old) => old.mul_f64(1.0 - Self::ALPHA) + sample.mul_f64(Self::ALPHA),
        };
        self.average = Some(new);
        new
    }

    /// The average so far, if any sample came in.
    pub fn average(&self) -> Option<Duration> {
        self.average
    }

    /// Starts from a known average (e.g. restored state, or a spec test's input).
    pub fn with_average(average: Option<Duration>) -> RoundTripTime {
        RoundTripTime { average }
    }
}
