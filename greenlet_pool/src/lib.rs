//! Connection pool with per-coroutine affinity (filled in by a later issue).
