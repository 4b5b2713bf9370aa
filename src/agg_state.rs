//! Aggregate states as a real SQL type, `clv_aggregate_state`, kept as a read-write *expanded
//! object* while an aggregate runs (PostgreSQL's expanded-object API, as expanded arrays use).
//!
//! Why not `internal`: Citus partially aggregates a custom aggregate on its workers only when the
//! state has a real type with text input and output (it ships states between nodes as text); an
//! `internal` state makes it copy every input row to the coordinator instead (see docs/citus.md).
//! Why expanded: a plain varlena state would be copied by PostgreSQL on every row. A read-write
//! expanded object whose memory context is a child of the aggregate's context is adopted as is
//! (nodeAgg's `ExecAggTransReparent`, Citus' `HandleTransition`), and a transition that returns
//! its first argument is not copied at all: per row, the only cost over `internal` is reading the
//! 10-byte expanded pointer. When PostgreSQL needs the value flat - a parallel worker sending its
//! partial state, Citus' `worker_partial_agg` calling the output function - it asks the object for
//! its flat form (`encode` below), which is also the type's binary form (`send`/`recv`).
//!
//! Memory: every state of an aggregate is palloc'd in the aggregate's context, right after its
//! group's hash entry (see `alloc_in`), and names one shared, empty marker context as its
//! "owner". PostgreSQL only ever deletes a state's owner when a transition returns a *different*
//! non-null state than it was given; clv_ext's transition and combine functions never do (they
//! return their first argument whenever it is not null), so the marker lives as long as the
//! aggregate's context. One context per state instead would cost a context per customer.
//!
//! Flat form: `[FORMAT = 1][kind][payload]` after the varlena header, `kind` naming the state's
//! Rust type ([`StateKind::KIND`]); the text form is that in hex. Input and receive decode the
//! payload fully, so a value of the type is always a valid state.

use crate::errors::raise_code;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::ffi::c_void;

pub(crate) const FORMAT: u8 = 1;
// A static, not a const: markers are recognised by the address of their name.
static MARKER_NAME: &std::ffi::CStr = c"clv_ext aggregate states";

/// A Rust type that is the state of some clv_ext aggregates.
pub trait StateKind: Sized + 'static {
    /// The tag of its flat form; unique across kinds (see `validate`).
    const KIND: u8;
    /// For messages.
    const NAME: &'static str;
    /// Append the payload. `&mut`: some states sort themselves first.
    fn encode(&mut self, out: &mut Vec<u8>);
    /// Parse a payload; any malformed input raises 22P03, never panics.
    fn decode(bytes: &[u8]) -> Self;
    /// Fold `other` (of the same aggregate) into `self`.
    fn merge(&mut self, other: &mut Self);
    /// The expanded-object methods of this kind (`state_kind!`).
    fn methods() -> &'static pg_sys::ExpandedObjectMethods;
}

/// Implements [`StateKind::methods`]: `state_kind_methods!(TheType);` inside its impl.
macro_rules! state_kind_methods {
    ($t:ty) => {
        fn methods() -> &'static ::pgrx::pg_sys::ExpandedObjectMethods {
            static METHODS: ::pgrx::pg_sys::ExpandedObjectMethods =
                ::pgrx::pg_sys::ExpandedObjectMethods {
                    get_flat_size: Some($crate::agg_state::flat_size::<$t>),
                    flatten_into: Some($crate::agg_state::flatten_into::<$t>),
                };
            &METHODS
        }
    };
}
pub(crate) use state_kind_methods;

/// The header first (the datum points into it), the value right after it: a transition reads
/// the header's pointer and kind and then the value's first fields, which should share as few
/// cache lines as possible (the per-row cost of an aggregate over millions of groups is cache
/// misses). Nothing else: palloc rounds a chunk up to a power of two, and an `rfm` state just
/// fits 256 bytes (see `expanded_size`); flattening encodes twice instead of caching the bytes.
#[repr(C)]
struct Expanded<T> {
    hdr: pg_sys::ExpandedObjectHeader,
    value: T,
}

/// The bytes a state of type `T` occupies (before palloc's rounding up to a power of two).
pub const fn expanded_size<T>() -> usize {
    std::mem::size_of::<Expanded<T>>()
}

fn flat_payload<T: StateKind>(value: &mut T) -> Vec<u8> {
    let mut flat = vec![FORMAT, T::KIND];
    value.encode(&mut flat);
    flat
}

#[pg_guard]
pub unsafe extern "C-unwind" fn flat_size<T: StateKind>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
) -> usize {
    unsafe {
        let e = &mut *(eoh as *mut Expanded<T>);
        pg_sys::VARHDRSZ + flat_payload(&mut e.value).len()
    }
}

#[pg_guard]
pub unsafe extern "C-unwind" fn flatten_into<T: StateKind>(
    eoh: *mut pg_sys::ExpandedObjectHeader,
    result: *mut c_void,
    size: usize,
) {
    unsafe {
        let e = &mut *(eoh as *mut Expanded<T>);
        let flat = flat_payload(&mut e.value);
        assert_eq!(size, pg_sys::VARHDRSZ + flat.len(), "flat size changed");
        pgrx::varlena::set_varsize_4b(result as *mut pg_sys::varlena, size as i32);
        std::ptr::copy_nonoverlapping(
            flat.as_ptr(),
            (result as *mut u8).add(pg_sys::VARHDRSZ),
            flat.len(),
        );
    }
}

/// The aggregate's memory context; states must live there to survive between calls.
unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if unsafe { pg_sys::AggCheckCallContext(fcinfo, &mut ctx) } == 0 {
        raise_code(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "a clv_ext aggregate's transition or combine function can only be called by the \
             aggregate (call the aggregate itself, e.g. rfm(...) instead of rfm_trans(...))",
        );
    }
    ctx
}

/// The marker child of `ctx` that owns its states, created on first use. Found by name among
/// the children (not cached in `fn_extra`: Citus calls transitions through a fresh FmgrInfo on
/// every row); an aggregate's context has few children, ours usually first.
unsafe fn marker(ctx: pg_sys::MemoryContext) -> pg_sys::MemoryContext {
    unsafe {
        let mut c = (*ctx).firstchild;
        while !c.is_null() {
            if (*c).name == MARKER_NAME.as_ptr() {
                return c;
            }
            c = (*c).nextchild;
        }
        // Nothing is ever allocated in it: the smallest sizes PostgreSQL allows.
        pg_sys::AllocSetContextCreateInternal(ctx, MARKER_NAME.as_ptr(), 0, 1024, 8192)
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn drop_value<T>(value: *mut c_void) {
    unsafe { std::ptr::drop_in_place(value as *mut T) }
}

/// `value` palloc'd in `ctx`, dropped (its Rust heap memory freed) by a reset callback when the
/// context goes: aggregate states, and per-call-site caches in `fn_extra` (framed.rs).
///
/// Palloc'd, not boxed on the Rust heap, so that a state lands right after its group's hash
/// entry, which PostgreSQL allocates in the same context just before the first transition call:
/// a group's entry and state share pages and often cache lines. For an aggregate over millions
/// of groups, whose per-row cost is cache misses, that decides the speed (see bench/README.md).
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
            (*cb).func = Some(drop_value::<T>);
            (*cb).arg = ptr as *mut c_void;
            pg_sys::MemoryContextRegisterResetCallback(ctx, cb);
        }
        ptr
    }
}

/// A new read-write expanded state in `ctx`, owned (for PostgreSQL) by `owner`.
unsafe fn expanded_in<T: StateKind>(
    ctx: pg_sys::MemoryContext,
    owner: pg_sys::MemoryContext,
    value: T,
) -> pg_sys::Datum {
    unsafe {
        let e = alloc_in(
            ctx,
            Expanded {
                hdr: pg_sys::ExpandedObjectHeader::default(),
                value,
            },
        );
        pg_sys::EOH_init_header(&mut (*e).hdr, T::methods(), owner);
        pg_sys::Datum::from((*e).hdr.eoh_rw_ptr.as_mut_ptr())
    }
}

/// The expanded object a datum points to, if it is one (read-write or read-only pointer).
///
/// # Safety
/// `d` must be a non-null varlena datum.
unsafe fn expanded_header(d: pg_sys::Datum) -> Option<*mut pg_sys::ExpandedObjectHeader> {
    unsafe {
        let p = d.cast_mut_ptr::<u8>();
        // VARATT_IS_EXTERNAL_EXPANDED: a 1-byte external header (0x01 on little-endian) with tag
        // VARTAG_EXPANDED_RO (2) or VARTAG_EXPANDED_RW (3), then the (unaligned) object pointer.
        const { assert!(cfg!(target_endian = "little")) };
        (*p == 0x01 && matches!(*p.add(1), 2 | 3))
            .then(|| std::ptr::read_unaligned(p.add(2) as *const *mut pg_sys::ExpandedObjectHeader))
    }
}

/// A `clv_aggregate_state` argument or result: NULL, an expanded object, or a flat value (from
/// a parallel worker, from Citus, from input).
pub struct State(Option<pg_sys::Datum>);

impl From<Option<pg_sys::Datum>> for State {
    fn from(d: Option<pg_sys::Datum>) -> Self {
        State(d)
    }
}

impl State {
    /// The value behind the state, `None` while it is NULL. A flat value is decoded into a new
    /// expanded object in the current memory context, which this `State` then points to.
    pub fn get_mut<T: StateKind>(&mut self) -> Option<&mut T> {
        let d = self.0?;
        unsafe {
            let eoh = match expanded_header(d) {
                Some(eoh) => eoh,
                None => {
                    let value = decode_flat::<T>(d);
                    let ctx = pg_sys::CurrentMemoryContext;
                    let d = expanded_in(ctx, ctx, value);
                    self.0 = Some(d);
                    expanded_header(d).expect("just made")
                }
            };
            if !std::ptr::eq((*eoh).eoh_methods, T::methods()) {
                wrong_kind::<T>();
            }
            Some(&mut (*(eoh as *mut Expanded<T>)).value)
        }
    }

    /// Read access; see [`State::get_mut`].
    pub fn get<T: StateKind>(&mut self) -> Option<&T> {
        self.get_mut::<T>().map(|v| &*v)
    }

    /// Return from a V1 function (NULL while the state is not created yet).
    ///
    /// # Safety
    /// `fcinfo` must be the call info PostgreSQL passed.
    pub unsafe fn into_return(self, fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
        match self.0 {
            Some(d) => d,
            None => unsafe {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            },
        }
    }
}

fn wrong_kind<T: StateKind>() -> ! {
    raise_code(
        PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        format!(
            "this clv_aggregate_state is not a {} state (a state of another aggregate)",
            T::NAME
        ),
    )
}

fn corrupt(what: &str) -> ! {
    raise_code(
        PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        format!("corrupt clv_aggregate_state: {what}"),
    )
}

unsafe fn decode_flat<T: StateKind>(d: pg_sys::Datum) -> T {
    let bytes = unsafe { crate::v1::varlena_bytes(d) };
    match bytes {
        [FORMAT, kind, payload @ ..] if *kind == T::KIND => T::decode(payload),
        [FORMAT, ..] => wrong_kind::<T>(),
        _ => corrupt("unknown format"),
    }
}

/// The state behind `state`, created with `init` on the first row (in the aggregate's context).
pub fn state_mut<T: StateKind>(
    state: &mut State,
    fcinfo: pg_sys::FunctionCallInfo,
    init: impl FnOnce() -> T,
) -> &mut T {
    if state.0.is_none() {
        *state = new_state(fcinfo, init());
    }
    state.get_mut::<T>().expect("initialized state")
}

/// Wrap a fresh state as a read-write expanded object owned by the aggregate's context.
pub fn new_state<T: StateKind>(fcinfo: pg_sys::FunctionCallInfo, value: T) -> State {
    unsafe {
        let ctx = aggregate_context(fcinfo);
        State(Some(expanded_in(ctx, marker(ctx), value)))
    }
}

/// The combine function of every clv_ext aggregate: `b` merged into `a` (a copy of `b` when `a`
/// is NULL). Returns `a` itself whenever it is not NULL (see the module docs for why that matters).
///
/// The SQL functions must not be STRICT (their arguments are `Option`s for that): for a strict
/// combine function PostgreSQL (and Citus) start the running state as a flat copy of the first
/// partial state, so every later call would decode the whole running state again - combining
/// 32 partial fit states took 23 s instead of a fraction of a second.
pub fn combine<T: StateKind + Clone>(
    a: Option<State>,
    b: Option<State>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let (mut a, mut b) = (a.unwrap_or(State(None)), b.unwrap_or(State(None)));
    let Some(other) = b.get_mut::<T>() else {
        return a;
    };
    match a.get_mut::<T>() {
        Some(mine) => {
            mine.merge(other);
            a
        }
        None => new_state(fcinfo, other.clone()),
    }
}

// ---- pgrx glue: `State` as an argument and result of #[pg_extern] functions ----

impl pgrx::datum::FromDatum for State {
    unsafe fn from_polymorphic_datum(
        d: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        Some(State((!is_null).then_some(d)))
    }
}

impl pgrx::datum::IntoDatum for State {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::InvalidOid
    }
}

unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for State {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        unsafe {
            arg.unbox_arg_using_from_datum()
                .expect("State handles NULL")
        }
    }
    unsafe fn unbox_nullable_arg(
        arg: pgrx::callconv::Arg<'_, 'fcx>,
    ) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl pgrx::callconv::BoxRet for State {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.0 {
            None => fcinfo.return_null(),
            Some(d) => unsafe { fcinfo.return_raw_datum(d) },
        }
    }
}

pgrx::impl_sql_translatable!(State, "clv_aggregate_state");
