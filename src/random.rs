//! The driver's shared random source, for choices that need to be spread, not secret: the
//! power of two choices in server selection, shuffling SRV hosts for
//! `srvMaxHosts`. (SCRAM's nonces, session ids and DNS query
//! ids, which must not be guessable, come from `rand`.) A leaf: it imports nothing, so the layers
//! that use it need not import each other.

use std::sync::atomic::{AtomicU64, Ordering};

/// A random index below `n`. A shared splitmix64 counter: no thread-local (coroutines migrate
/// between threads), one atomic add per draw.
pub(crate) fn random_below(n: usize) -> usize {
    static STATE: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);
    let mut z = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % n as u64) as usize
}
