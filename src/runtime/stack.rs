//! The driver's own stacks: where its work runs, so that it never needs yours.
//!
//! A may coroutine gets a 32 KiB stack by default, and the driver cannot know how much of it
//! the caller has already used. Measured in a user's crate built the way `cargo build` builds
//! it (opt-level 0, for the driver too), one `find_one` took 28.6 KiB of it, a
//! `find_one_and_update` 84 KiB on a flat document and 560 KiB on one nested 20 deep: serde
//! spends about 25 KiB per nesting level there. A stack overflow in a coroutine unwinds
//! nothing, so whatever the dying frames held — a checked-out connection, a lock — was lost.
//!
//! So the driver does its work on stacks of its own, and uses the caller's stack only to wait
//! (for a server, for a connection in the wait queue) and to run the caller's own callbacks
//! (command event handlers). [`on_driver_stack`] switches the running coroutine (or thread) to
//! one of these stacks, runs a closure there and switches back: no new coroutine, no
//! scheduler round trip, about 30 ns. The coroutine stays the same coroutine: it can park on
//! the driver's stack (a socket read, a TLS handshake) and resume on any worker, because the
//! stack is its own until the closure returns.
//!
//! - **Size**: 8 MiB of address space each, like a main thread's stack, committed only as it
//!   is touched, with an unmapped guard page below. Deep work is bounded before it starts (a
//!   reply nested deeper than [`crate::decode::MAX_DEPTH`] is refused before serde sees it),
//!   so the guard page is never reached by the driver's own work.
//! - **How many**: one per caller inside a driver section at once. Waiting for a server or in
//!   the pool's wait queue happens on the caller's stack, so a driver stack is held across a
//!   park only while its holder has a connection (a reply on its way, a handshake): at most
//!   the connections checked out, plus one per worker thread running. Idle stacks are kept
//!   for reuse, most recently used first (its pages are the ones already committed), up to
//!   [`KEEP`]; beyond that they are unmapped.
//! - **Panics and cancellation** unwind to the switch point, which catches them, switches
//!   back and resumes them on the caller's stack: a cancelled coroutine unwinds through the
//!   driver's frames and its own exactly as it would on one stack.
//! - **Both cores and plain threads** use it: a spawned thread's 2 MiB stack does not hold
//!   serde at 100 levels in an unoptimised build either, and both cores pay the same switch,
//!   which keeps the comparison honest.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;

use parking_lot::Mutex;

/// Usable bytes of each driver stack (address space; pages are committed as touched).
pub(crate) const SIZE: usize = 8 << 20;

/// Idle stacks kept for reuse. More are mapped when more callers are inside the driver at
/// once, and unmapped again when they come back to a full shelf.
pub(crate) const KEEP: usize = 256;

/// One mapped stack: a guard page, then `SIZE` usable bytes.
struct DriverStack {
    /// The start of the mapping (the guard page).
    map: NonNull<u8>,
}

// SAFETY: the mapping is plain memory owned by this value; nothing in it is tied to a thread.
unsafe impl Send for DriverStack {}

/// The page size: the guard page's, and the stacks' alignment (read once).
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 { page as usize } else { 4096 }
    })
}

impl DriverStack {
    /// Maps a stack with a guard page below it.
    fn map() -> std::io::Result<DriverStack> {
        let guard = page_size();
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing; the
        // result is checked before use.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                guard + SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            if libc::mprotect(p, guard, libc::PROT_NONE) != 0 {
                let e = std::io::Error::last_os_error();
                libc::munmap(p, guard + SIZE);
                return Err(e);
            }
            Ok(DriverStack {
                map: NonNull::new_unchecked(p.cast()),
            })
        }
    }

    /// The lowest usable byte (stacks grow down from `base + SIZE`).
    fn base(&self) -> *mut u8 {
        // SAFETY: within the mapping.
        unsafe { self.map.as_ptr().add(page_size()) }
    }
}

impl Drop for DriverStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; no frame lives on it (it is idle).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), page_size() + SIZE);
        }
    }
}

/// Idle stacks, most recently used last. A short lock (a push or a pop), never held across
/// anything that parks.
static SHELF: Mutex<Vec<DriverStack>> = Mutex::new(Vec::new());

/// Runs `f` on one of the driver's stacks and returns what it returns; a panic in `f` (a
/// coroutine's cancellation included) continues in the caller once back on its stack.
///
/// If no stack can be mapped (the process is at its memory-map limit, where may itself can
/// no longer start coroutines), `f` runs on the caller's stack, as it did before this module.
pub(crate) fn on_driver_stack<R>(f: impl FnOnce() -> R) -> R {
    // The generic part is as small as can be: the caller's frame holds the closure and one
    // slot for its result; the switch itself is one non-generic function.
    let mut f = Some(f);
    let mut result: Option<R> = None;
    let panic = switch(&mut || {
        let f = f.take().expect("called once");
        result = Some(f());
    });
    if let Some(panic) = panic {
        resume_unwind(panic);
    }
    result.expect("the closure ran")
}

/// Drops `value` on a driver stack if it has anything to drop: a document the caller handed the
/// driver by value frees recursively, as deep as it is.
pub(crate) fn drop_on_driver_stack<V>(value: V) {
    if std::mem::needs_drop::<V>() {
        on_driver_stack(move || drop(value));
    }
}

/// Runs `run` on a driver stack (or in place, if none can be mapped); returns its panic, if it
/// panicked.
#[inline(never)]
fn switch(run: &mut dyn FnMut()) -> Option<Box<dyn std::any::Any + Send>> {
    let popped = SHELF.lock().pop();
    let stack = match popped {
        Some(s) => s,
        None => match DriverStack::map() {
            Ok(s) => s,
            Err(_) => return catch_unwind(AssertUnwindSafe(run)).err(),
        },
    };
    // SAFETY: `base` is page-aligned and `SIZE` a multiple of the page size; the stack is
    // ours alone until we put it back, and the callback never unwinds out of it (the panic
    // is caught inside and resumed after the switch back).
    let panic = unsafe {
        psm::on_stack(stack.base(), SIZE, move || {
            catch_unwind(AssertUnwindSafe(run)).err()
        })
    };
    let mut shelf = SHELF.lock();
    if shelf.len() < KEEP {
        shelf.push(stack);
    } else {
        drop(shelf);
        drop(stack);
    }
    panic
}

/// Idle driver stacks right now (for tests and the notes' figures).
#[cfg(test)]
pub(crate) fn idle() -> usize {
    SHELF.lock().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns about `n` KiB of stack, so that it cannot be done on a 32 KiB one.
    #[inline(never)]
    fn burn(n: usize) -> usize {
        let buf = [1u8; 1024];
        std::hint::black_box(&buf);
        if n == 0 {
            return 0;
        }
        burn(n - 1) + std::hint::black_box(buf[7]) as usize
    }

    #[test]
    fn deep_work_in_a_default_coroutine() {
        may::config().set_worker_pin(false);
        // 1 MiB of frames from a coroutine with may's default 32 KiB stack, parking on the
        // driver stack half-way (the coroutine may resume on the other worker).
        let h = may::go!(|| {
            on_driver_stack(|| {
                let a = burn(500);
                may::coroutine::sleep(std::time::Duration::from_millis(5));
                a + burn(500)
            })
        });
        assert_eq!(h.join().unwrap(), 1000);
        // And on a thread with a small stack.
        let t = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| on_driver_stack(|| burn(1000)))
            .unwrap();
        assert_eq!(t.join().unwrap(), 1000);
    }

    #[test]
    fn a_panic_crosses_back_to_the_caller() {
        may::config().set_worker_pin(false);
        let h = may::go!(|| {
            let caught = catch_unwind(|| on_driver_stack(|| -> usize { panic!("inside") }));
            let message = caught.unwrap_err();
            assert_eq!(message.downcast_ref::<&str>(), Some(&"inside"));
            // The stack went back to the shelf and is usable again.
            on_driver_stack(|| burn(100))
        });
        assert_eq!(h.join().unwrap(), 100);
        assert!(idle() >= 1);
    }

    #[test]
    fn a_cancelled_coroutine_unwinds_through_the_switch() {
        may::config().set_worker_pin(false);
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let inner = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let outer = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (i, o) = (Flag(inner.clone()), Flag(outer.clone()));
        let h = may::go!(move || {
            let _o = o;
            on_driver_stack(move || {
                let _i = i;
                may::coroutine::sleep(std::time::Duration::from_secs(30));
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        // SAFETY: the coroutine holds no thread-local state.
        unsafe { h.coroutine().cancel() };
        assert!(h.join().is_err());
        assert!(inner.load(std::sync::atomic::Ordering::SeqCst));
        assert!(outer.load(std::sync::atomic::Ordering::SeqCst));
    }
}
