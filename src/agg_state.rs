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
//! group's hash entry; its expanded-object header, which rows never touch (see `Expanded`), and
//! the callback that drops its Rust value go to one child context, the *header store*, which is
//! also the states' "owner" (`header_store`; a flat value decoded for one call is expanded in
//! the current context, which then holds and owns all of it). PostgreSQL only ever deletes a state's owner when
//! a transition returns a *different* non-null state than it was given; clv_ext's transition and
//! combine functions never do (they return their first argument whenever it is not null), so the
//! store lives as long as the aggregate's context. One context per state instead would cost a
//! context per customer.
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
// A static, not a const: header stores are recognised by the address of their name.
static STORE_NAME: &std::ffi::CStr = c"clv_ext aggregate states";

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

/// A state: a copy of its header's read-write pointer, which is the datum the aggregate passes
/// around, then the value. PostgreSQL's 48-byte header lives in a chunk of its own ([`Header`]).
///
/// Why: a transition over millions of groups is bound by cache misses on its state, and a
/// palloc chunk is rounded up to a power of two. With the header in the state's chunk and the
/// datum pointing into it, an `rfm` state had room for only six purchase periods inline within
/// 256 bytes (0.5.0's `internal` state had eight), so most customers of
/// bench/agg_state_bench.sh (10 transactions each) spilled their periods to the heap, and
/// grouped `rfm` ran 13.5% slower. Here a row reads the 16-byte prefix and the value right
/// behind it, never the header, and finds the value at a fixed offset from the datum
/// (`value_of`). PostgreSQL only needs the datum to be a VARTAG_EXPANDED_RW pointer to the
/// header: it reaches the header through that pointer (`DatumGetEOHP`), never by the datum's
/// address. Flattening encodes twice instead of caching the bytes.
#[repr(C)]
struct Expanded<T> {
    /// A copy of the header's `eoh_rw_ptr` (1-byte external header, VARTAG_EXPANDED_RW, the
    /// header's address), then `T::KIND`.
    rw_ptr: [u8; EXPANDED_POINTER_SIZE],
    kind: u8,
    value: T,
}

/// PostgreSQL's expanded-object header of a state, the state it describes, and the callback that
/// drops the state's value (its Rust heap memory) when the header store goes (`header_store`).
#[repr(C)]
struct Header<T> {
    hdr: pg_sys::ExpandedObjectHeader,
    state: *mut Expanded<T>,
    drop: pg_sys::MemoryContextCallback,
}

/// sizeof(varattrib_1b_e) + sizeof(varatt_expanded): the size of an expanded pointer datum.
const EXPANDED_POINTER_SIZE: usize = 2 + std::mem::size_of::<*mut u8>();
const VARTAG_EXPANDED_RO: u8 = 2;
const VARTAG_EXPANDED_RW: u8 = 3;

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
        let e = &mut *from_header::<T>(eoh);
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
        let e = &mut *from_header::<T>(eoh);
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

/// The child of `ctx` that holds its states' headers and drop callbacks and owns the states (for
/// PostgreSQL), created on first use. Found by name among the children (not cached in
/// `fn_extra`: Citus calls transitions through a fresh FmgrInfo on every row); an aggregate's
/// context has few children, ours usually first.
///
/// Why a child: the states stay packed in `ctx` (a row touches only its state, so the fewer
/// pages they span the fewer TLB misses), and the callbacks live exactly as long as the values
/// they drop: resetting or deleting `ctx` deletes its children first, running their callbacks
/// while the states in `ctx` are still intact.
unsafe fn header_store(ctx: pg_sys::MemoryContext) -> pg_sys::MemoryContext {
    unsafe {
        let mut c = (*ctx).firstchild;
        while !c.is_null() {
            if (*c).name == STORE_NAME.as_ptr() {
                return c;
            }
            c = (*c).nextchild;
        }
        // ALLOCSET_DEFAULT_SIZES: 128 bytes per state, a million states per query.
        pg_sys::AllocSetContextCreateInternal(
            ctx,
            STORE_NAME.as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        )
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn drop_value<T>(value: *mut c_void) {
    unsafe { std::ptr::drop_in_place(value as *mut T) }
}

/// `value` palloc'd in `ctx`, dropped (its Rust heap memory freed) by a reset callback when the
/// context goes: per-call-site caches in `fn_extra` (framed.rs). (Aggregate states are palloc'd
/// the same way, with their callbacks elsewhere: `expanded_in`.)
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

/// The state whose header is `eoh` (a header of kind `T`).
unsafe fn from_header<T>(eoh: *mut pg_sys::ExpandedObjectHeader) -> *mut Expanded<T> {
    unsafe { (*(eoh as *mut Header<T>)).state }
}

/// A new read-write expanded state in `ctx`, its header and drop callback in `store`, which owns
/// it: `ctx`'s header store for an aggregate's states, `ctx` itself for a flat value decoded for
/// one call (no child context to create and delete per input row, e.g. in a parallel leader's
/// combine; a context's callbacks run before its memory is freed, so one context can hold both).
unsafe fn expanded_in<T: StateKind>(
    ctx: pg_sys::MemoryContext,
    store: pg_sys::MemoryContext,
    value: T,
) -> pg_sys::Datum {
    const {
        assert!(
            std::mem::offset_of!(Expanded<T>, value) == 16,
            "value_of's offset"
        )
    };
    const {
        assert!(
            std::mem::align_of::<Expanded<T>>() <= 8,
            "palloc aligns to 8 bytes"
        )
    };
    unsafe {
        let e =
            pg_sys::MemoryContextAlloc(ctx, std::mem::size_of::<Expanded<T>>()) as *mut Expanded<T>;
        e.write(Expanded {
            rw_ptr: [0; EXPANDED_POINTER_SIZE],
            kind: T::KIND,
            value,
        });
        let h =
            pg_sys::MemoryContextAlloc(store, std::mem::size_of::<Header<T>>()) as *mut Header<T>;
        h.write(Header {
            hdr: pg_sys::ExpandedObjectHeader::default(),
            state: e,
            drop: pg_sys::MemoryContextCallback {
                func: Some(drop_value::<Expanded<T>>),
                arg: e as *mut c_void,
                next: std::ptr::null_mut(),
            },
        });
        if std::mem::needs_drop::<T>() {
            pg_sys::MemoryContextRegisterResetCallback(store, &mut (*h).drop);
        }
        // In place: the header's pointers hold its own address.
        pg_sys::EOH_init_header(&mut (*h).hdr, T::methods(), store);
        (*e).rw_ptr = std::mem::transmute::<
            [std::ffi::c_char; EXPANDED_POINTER_SIZE],
            [u8; EXPANDED_POINTER_SIZE],
        >((*h).hdr.eoh_rw_ptr);
        debug_assert_eq!((*e).rw_ptr[1], VARTAG_EXPANDED_RW);
        pg_sys::Datum::from((*e).rw_ptr.as_mut_ptr())
    }
}

/// The value of kind `T` a datum points to if it is an expanded object: `None` for a flat value,
/// an error for a state of another kind.
///
/// # Safety
/// `d` must be a non-null `clv_aggregate_state` datum.
#[inline]
unsafe fn value_of<T: StateKind>(d: pg_sys::Datum) -> Option<*mut T> {
    unsafe {
        let p = d.cast_mut_ptr::<u8>();
        // VARATT_IS_EXTERNAL_EXPANDED: a 1-byte external header (0x01 on little-endian), the tag,
        // then the (unaligned) header pointer.
        const { assert!(cfg!(target_endian = "little")) };
        if *p != 0x01 || !matches!(*p.add(1), VARTAG_EXPANDED_RO | VARTAG_EXPANDED_RW) {
            return None;
        }
        let eoh = std::ptr::read_unaligned(p.add(2) as *const *mut pg_sys::ExpandedObjectHeader);
        let own_rw = (eoh as *mut u8).add(std::mem::offset_of!(
            pg_sys::ExpandedObjectHeader,
            eoh_rw_ptr
        ));
        let own_ro = (eoh as *mut u8).add(std::mem::offset_of!(
            pg_sys::ExpandedObjectHeader,
            eoh_ro_ptr
        ));
        if p == own_rw || p == own_ro {
            // PostgreSQL passed the header's own pointer (a final function gets the read-only
            // one): the header knows the kind and the state.
            if !std::ptr::eq((*eoh).eoh_methods, T::methods()) {
                wrong_kind::<T>();
            }
            return Some(&raw mut (*from_header::<T>(eoh)).value);
        }
        // The per-row case: a state's own prefix, the value 16 bytes behind it.
        if *p.add(EXPANDED_POINTER_SIZE) != T::KIND {
            wrong_kind::<T>();
        }
        Some(&raw mut (*(p as *mut Expanded<T>)).value)
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
    #[inline]
    pub fn get_mut<T: StateKind>(&mut self) -> Option<&mut T> {
        let d = self.0?;
        unsafe {
            let value = match value_of::<T>(d) {
                Some(v) => v,
                None => self.expand::<T>(d),
            };
            Some(&mut *value)
        }
    }

    /// A flat value decoded into a new expanded object in the current memory context, which
    /// this `State` then points to (out of line: not the per-row path).
    #[cold]
    #[inline(never)]
    unsafe fn expand<T: StateKind>(&mut self, flat: pg_sys::Datum) -> *mut T {
        unsafe {
            let ctx = pg_sys::CurrentMemoryContext;
            let d = expanded_in(ctx, ctx, decode_flat::<T>(flat));
            self.0 = Some(d);
            value_of::<T>(d).expect("just made")
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
#[inline]
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
        State(Some(expanded_in(ctx, header_store(ctx), value)))
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
