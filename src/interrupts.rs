//! Cancellation: `statement_timeout`, `pg_cancel_backend` and `pg_terminate_backend` must stop every
//! clv_ext call within a second, however large its arguments (docs/loops.md lists the loops and
//! how each is bounded).
//!
//! The maths crate knows nothing of PostgreSQL: it calls `clv_math::interrupt::check()` inside its
//! long loops, and `_PG_init` points that hook at `CHECK_FOR_INTERRUPTS`. The hook lives in a
//! thread-local, so only the backend's own thread (which loads the library) ever runs it; threads
//! of a library's pool see no hook. A pending interrupt raises the PostgreSQL error as a Rust
//! panic that unwinds through the maths (`panic = "unwind"`) to the function's pgrx boundary,
//! where it becomes the ERROR again.

use pgrx::prelude::*;

/// `CHECK_FOR_INTERRUPTS` as a plain function: the maths' hook and the fits' `FitOptions::check`.
pub fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    clv_math::interrupt::set_hook(check_for_interrupts);
}

/// Rows of a set-returning function, checking for interrupts before each one.
///
/// In `FROM`, PostgreSQL materializes every row of a set-returning function before a `LIMIT`
/// applies (value-per-call rows are still collected into a tuplestore), so the work a call may do
/// is bounded by each function's documented caps and stopped by these checks; in the select list
/// (`SELECT simulate_transactions(...) LIMIT 10`) rows are produced on demand and `LIMIT` stops
/// the work.
pub fn each_row<I: Iterator>(rows: I) -> impl Iterator<Item = I::Item> {
    rows.inspect(|_| {
        pgrx::check_for_interrupts!();
    })
}
