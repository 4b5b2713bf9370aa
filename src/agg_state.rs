//! Helpers for hand-written aggregates with `internal` state (pgrx's #[pg_aggregate] generates a
//! wrong deserialize signature for parallel internal-state aggregates, pgrx issue 2351).

use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts};

/// The aggregate's memory context; states must live there to survive between calls.
unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 {
        error!("clv_ext aggregate support function called outside an aggregate");
    }
    ctx
}

/// Wrap a fresh state as an `internal` datum owned by the aggregate's memory context (dropped, and
/// its Rust heap memory freed, when that context is reset).
pub fn new_state<T>(fcinfo: pg_sys::FunctionCallInfo, value: T) -> Internal {
    unsafe { PgMemoryContexts::For(aggregate_context(fcinfo)).switch_to(|_| Internal::new(value)) }
}

/// The state behind `state`, created with `init` on the first row.
pub fn state_mut<T>(state: &mut Internal, fcinfo: pg_sys::FunctionCallInfo, init: impl FnOnce() -> T) -> &mut T {
    if !state.initialized() {
        *state = new_state(fcinfo, init());
    }
    unsafe { state.get_mut::<T>().expect("initialized state") }
}
