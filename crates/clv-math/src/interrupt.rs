//! Cancellation hook for long loops.
//!
//! The maths knows nothing of PostgreSQL. The SQL layer registers, once per backend in
//! `_PG_init`, a function that runs `CHECK_FOR_INTERRUPTS` ([`set_hook`]); every loop whose trip
//! count depends on an argument or on the data calls [`check`] often enough (see
//! `docs/loops.md`) that `statement_timeout`, `pg_cancel_backend` and `pg_terminate_backend`
//! stop it within a second.
//!
//! The hook lives in a thread-local, so only the thread that set it (the backend's own thread)
//! ever runs it; threads of a pool see no hook, and [`check`] is a no-op there and in plain
//! `cargo test`. A pending interrupt makes the hook unwind (a Rust panic carrying the PostgreSQL
//! error) through the maths to the pgrx boundary: code between two checks must leave nothing
//! half-updated that outlives the call (the maths owns no global state besides this hook).

use std::cell::Cell;

thread_local! {
    static HOOK: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// Register `f` as this thread's interrupt check (replacing any earlier one).
pub fn set_hook(f: fn()) {
    HOOK.with(|h| h.set(Some(f)));
}

/// Remove this thread's interrupt check.
pub fn clear_hook() {
    HOOK.with(|h| h.set(None));
}

/// Run this thread's interrupt check, if one is registered. Cheap (a thread-local read) when
/// none is; may unwind when one is.
#[inline]
pub fn check() {
    if let Some(f) = HOOK.with(|h| h.get()) {
        f();
    }
}

/// Loops of cheap iterations (a few nanoseconds to a microsecond each) check every this many.
pub const EVERY: u32 = 1 << 14;

/// A loop counter that calls [`check`] every [`EVERY`] ticks: one increment and one test per
/// iteration.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ticker(u32);

impl Ticker {
    pub fn new() -> Self {
        Ticker(0)
    }

    /// Count one iteration; every [`EVERY`]-th runs the interrupt check.
    #[inline]
    pub fn tick(&mut self) {
        self.0 = self.0.wrapping_add(1);
        if self.0 & (EVERY - 1) == 0 {
            check();
        }
    }
}

/// `v.sort_by(cmp)` (stable) with an interrupt check every [`EVERY`] comparisons: sorting ten
/// million values takes about a second. Same order as `sort_by`; Rust's sorts are panic-safe, so
/// an interrupt leaves `v` a permutation of itself.
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    let mut t = Ticker::new();
    v.sort_by(|a, b| {
        t.tick();
        cmp(a, b)
    });
}

/// `v.sort_unstable_by(cmp)` with an interrupt check every [`EVERY`] comparisons.
pub fn sort_unstable_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) {
    let mut t = Ticker::new();
    v.sort_unstable_by(|a, b| {
        t.tick();
        cmp(a, b)
    });
}

/// Test helpers: a hook that counts its calls and one that "cancels" (panics) after a number of
/// calls, as `CHECK_FOR_INTERRUPTS` does when `statement_timeout` fires.
#[cfg(test)]
pub(crate) mod testing {
    use std::cell::Cell;

    thread_local! {
        static CALLS: Cell<u64> = const { Cell::new(0) };
        static LIMIT: Cell<u64> = const { Cell::new(u64::MAX) };
        static FIRED: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    }

    /// The panic payload of a cancelled call.
    pub const CANCELLED: &str = "canceling statement due to statement timeout";

    fn hook() {
        let n = CALLS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if n >= LIMIT.with(|l| l.get()) {
            FIRED.with(|f| f.set(Some(std::time::Instant::now())));
            std::panic::panic_any(CANCELLED);
        }
    }

    /// Install the counting hook on this thread; it panics on its `cancel_after`-th call.
    pub fn install(cancel_after: u64) {
        CALLS.with(|c| c.set(0));
        LIMIT.with(|l| l.set(cancel_after));
        super::set_hook(hook);
    }

    /// Calls of the hook since [`install`].
    pub fn calls() -> u64 {
        CALLS.with(|c| c.get())
    }

    /// Run `f` with a hook that cancels on its first call; returns whether `f` was cancelled
    /// (rather than returning) and the time until the interrupt check ran (the unwinding after
    /// it, with a backtrace when RUST_BACKTRACE is set, is not the loop's doing).
    pub fn cancelled_within<R>(f: impl FnOnce() -> R) -> (bool, std::time::Duration) {
        install(1);
        FIRED.with(|f| f.set(None));
        let start = std::time::Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let took = FIRED
            .with(|f| f.get())
            .map_or_else(|| start.elapsed(), |t| t - start);
        super::clear_hook();
        let cancelled = match r {
            Ok(_) => false,
            Err(e) => e.downcast_ref::<&str>() == Some(&CANCELLED),
        };
        (cancelled, took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_is_per_thread_and_ticker_checks_every_n() {
        testing::install(u64::MAX);
        let mut t = Ticker::new();
        for _ in 0..(3 * EVERY + 5) {
            t.tick();
        }
        assert_eq!(testing::calls(), 3);
        // Another thread sees no hook.
        std::thread::spawn(|| {
            assert!(HOOK.with(|h| h.get()).is_none());
            check();
        })
        .join()
        .unwrap();
        check();
        assert_eq!(testing::calls(), 4);
        clear_hook();
        check();
        assert_eq!(testing::calls(), 4);
    }

    #[test]
    fn checked_sorts_sort_and_can_be_cancelled() {
        let mut v: Vec<u64> = (0..100_000u64)
            .map(|i| i.wrapping_mul(2654435761) % 1000)
            .collect();
        let mut w = v.clone();
        sort_by(&mut v, |a, b| a.cmp(b));
        w.sort();
        assert_eq!(v, w);
        v.reverse();
        let (cancelled, _) =
            testing::cancelled_within(|| sort_unstable_by(&mut v, |a, b| a.cmp(b)));
        assert!(cancelled);
        v.sort_unstable();
        assert_eq!(v, w, "still a permutation after the interrupt");
    }
}
