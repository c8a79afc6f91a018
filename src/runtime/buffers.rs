//! Byte buffers kept for reuse, so that what one may worker allocates another does not free.
//!
//! With glibc's malloc a coroutine core loses to the threaded core on decode-heavy work, and
//! the profile says why: a worker thread sleeps in `__lll_lock_wait_private` inside `malloc`,
//! and with it every coroutine queued on that worker. Each worker thread has an arena of its
//! own; but a block allocated on one worker and freed on the other goes into the freeing
//! thread's cache, is handed out again there, and every time it is reallocated or overflows
//! that cache it takes its *home* arena's lock — the lock the home worker is taking hundreds
//! of thousands of times a second for its own decoding. Threads never meet this: an operation
//! starts and ends on one thread. A coroutine starts on one worker and, after waiting for the
//! server, ends on whichever worker resumed it; whatever the driver allocated before the wait
//! and frees after it crosses over.
//!
//! So the driver frees nothing it allocated before a wait, where it can help it: the buffers
//! that outlive a wait — a cursor's batch, a command's encoded body — come from here and go
//! back here, and are never freed at all. The caller's own documents are encoded and freed
//! before the wait (see `ops::Command`).

use std::sync::LazyLock;

use crossbeam::queue::ArrayQueue;

/// How many spare buffers are kept, and the largest kept: a spare should not pin megabytes.
const KEPT: usize = 256;
const LARGEST_KEPT: usize = 1 << 20;

static SPARE: LazyLock<ArrayQueue<Vec<u8>>> = LazyLock::new(|| ArrayQueue::new(KEPT));

/// An empty buffer: a spare one when there is one.
pub(crate) fn take() -> Vec<u8> {
    let mut buffer = SPARE.pop().unwrap_or_default();
    buffer.clear();
    buffer
}

/// A buffer holding a copy of `bytes`.
pub(crate) fn copy_of(bytes: &[u8]) -> Vec<u8> {
    let mut buffer = take();
    buffer.extend_from_slice(bytes);
    buffer
}

/// Keeps `buffer` for reuse, unless it is empty, too large, or enough are kept.
pub(crate) fn give(buffer: Vec<u8>) {
    if buffer.capacity() > 0 && buffer.capacity() <= LARGEST_KEPT {
        let _ = SPARE.push(buffer);
    }
}
