//! Helpers for hand-written aggregates with `internal` state (pgrx's #[pg_aggregate] generates a
//! wrong deserialize signature for parallel internal-state aggregates, pgrx issue 2351).

use pgrx::prelude::*;
use pgrx::Internal;
use std::ffi::c_void;

/// The aggregate's memory context; states must live there to survive between calls.
unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 {
        error!("clv_ext aggregate support function called outside an aggregate");
    }
    ctx
}

#[pg_guard]
unsafe extern "C-unwind" fn drop_state<T>(state: *mut c_void) {
    unsafe { std::ptr::drop_in_place(state as *mut T) }
}

/// Wrap a fresh state as an `internal` datum owned by the aggregate's memory context.
///
/// The state is palloc'd in that context - not boxed on the Rust heap as pgrx's `Internal::new`
/// does - so it lands right after the group's hash entry, which PostgreSQL allocates in the same
/// context just before the first transition call: a group's entry and state share pages and
/// often cache lines. For an aggregate over millions of groups, whose per-row cost is cache
/// misses, that decides the speed (see bench/README.md). Any Rust heap memory the state owns is
/// freed by a reset callback that drops the state with its context.
pub fn new_state<T>(fcinfo: pg_sys::FunctionCallInfo, value: T) -> Internal {
    unsafe { state_in(aggregate_context(fcinfo), value) }
}

/// A state that lives only as long as the current memory context: what a deserialize function
/// returns. PostgreSQL calls it in the per-input-tuple context and passes the result straight to
/// the combine function, which merges (or copies) it into the group's state; allocating it in the
/// aggregate's context instead would keep every partial state of every worker until the end of the
/// query (three states per customer with two workers).
pub fn new_transient_state<T>(value: T) -> Internal {
    unsafe { state_in(pg_sys::CurrentMemoryContext, value) }
}

unsafe fn state_in<T>(ctx: pg_sys::MemoryContext, value: T) -> Internal {
    unsafe { Internal::from(Some(pg_sys::Datum::from(alloc_in(ctx, value)))) }
}

/// `value` palloc'd in `ctx`, dropped (its Rust heap memory freed) by a reset callback when the
/// context goes: aggregate states, and per-call-site caches in `fn_extra` (framed.rs).
pub(crate) unsafe fn alloc_in<T>(ctx: pg_sys::MemoryContext, value: T) -> *mut T {
    const { assert!(std::mem::align_of::<T>() <= 8, "palloc aligns to 8 bytes") };
    unsafe {
        let ptr = pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<T>().max(1)) as *mut T;
        ptr.write(value);
        if std::mem::needs_drop::<T>() {
            let cb = pg_sys::MemoryContextAlloc(
                ctx,
                std::mem::size_of::<pg_sys::MemoryContextCallback>(),
            ) as *mut pg_sys::MemoryContextCallback;
            (*cb).func = Some(drop_state::<T>);
            (*cb).arg = ptr as *mut c_void;
            pg_sys::MemoryContextRegisterResetCallback(ctx, cb);
        }
        ptr
    }
}

/// The state behind `state`, created with `init` on the first row.
pub fn state_mut<T>(
    state: &mut Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    init: impl FnOnce() -> T,
) -> &mut T {
    if !state.initialized() {
        *state = new_state(fcinfo, init());
    }
    unsafe { state.get_mut::<T>().expect("initialized state") }
}
