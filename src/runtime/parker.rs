//! Wait / notify for one waiter, in the form each core needs.
//!
//! A waiter (say, a caller queued for a pooled connection) creates a [`Parker`], publishes it
//! where a notifier will find it, and parks. The notifier calls `unpark`. Unparking before the
//! park is fine: the park then returns at once.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::Core;

/// The shortest timeout may's blocker honours (see [`Parker::park`]).
const MIN_MAY_PARK: Duration = Duration::from_millis(1);

/// How a park ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Someone called `unpark`.
    Notified,
    /// The timeout passed first.
    TimedOut,
    /// The coroutine is being cancelled: clean up, then let the unwind continue with
    /// `may::coroutine::trigger_cancel_panic()`.
    Cancelled,
}

/// A one-waiter wait/notify primitive of either core.
///
/// Create it in the context that will park on it: may's blocker decides at construction
/// whether it parks a coroutine or a thread, and a thread-made blocker parked inside a
/// coroutine blocks the whole may worker.
pub(crate) enum Parker {
    /// may's blocker: parks a coroutine, or the thread when called outside one.
    May(may::sync::Blocker),
    /// A plain condvar pair for the threaded core.
    Std { flag: Mutex<bool>, cv: Condvar },
}

impl Parker {
    pub(crate) fn new(core: Core) -> Parker {
        match core {
            // `ignore_cancel`: with may's default, a cancelled coroutine does not return from
            // `park` at all — may panics inside it — so a caller never got `Wake::Cancelled`
            // and could not clean up: a pool waiter cancelled in line stayed in the queue, and
            // the next free connection was granted to it and lost. Ignoring cancellation in
            // the blocker makes `park` return `Cancelled`; every caller cleans up, then
            // continues the unwind with `may::coroutine::trigger_cancel_panic()`.
            Core::Coroutine => Parker::May(may::sync::Blocker::new(true)),
            Core::Threaded => Parker::Std {
                flag: Mutex::new(false),
                cv: Condvar::new(),
            },
        }
    }

    /// Waits until unparked or until `timeout` passes.
    pub(crate) fn park(&self, timeout: Option<Duration>) -> Wake {
        match self {
            // may 0.3.51's blocker never times out when asked to wait less than a
            // millisecond (zero included): the park just hangs until someone unparks. A
            // deadline's last sliver is exactly such a wait, so round it up.
            Parker::May(b) => match b.park(timeout.map(|t| t.max(MIN_MAY_PARK))) {
                Ok(()) => Wake::Notified,
                Err(may::coroutine::ParkError::Timeout) => Wake::TimedOut,
                Err(may::coroutine::ParkError::Canceled) => Wake::Cancelled,
            },
            Parker::Std { flag, cv } => {
                let mut set = flag.lock();
                let deadline = timeout.map(|t| std::time::Instant::now() + t);
                while !*set {
                    match deadline {
                        None => cv.wait(&mut set),
                        Some(d) => {
                            if cv.wait_until(&mut set, d).timed_out() && !*set {
                                return Wake::TimedOut;
                            }
                        }
                    }
                }
                *set = false;
                Wake::Notified
            }
        }
    }

    /// Wakes the waiter (now, or at its next park).
    pub(crate) fn unpark(&self) {
        match self {
            Parker::May(b) => b.unpark(),
            Parker::Std { flag, cv } => {
                *flag.lock() = true;
                cv.notify_one();
            }
        }
    }
}
