//! Plain V1 C functions: the per-row hot paths (the `rfm` and fit transitions, `clv`) and the
//! window functions, which read their arguments' datums directly instead of through pgrx's
//! argument conversions. Declared in SQL by hand (`LANGUAGE c ... AS 'MODULE_PATHNAME', 'symbol'`).

use pgrx::prelude::*;

/// Declare the V1 calling convention of an exported C function (PG_FUNCTION_INFO_V1).
macro_rules! function_info_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
            const V1: ::pgrx::pg_sys::Pg_finfo_record =
                ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

pub(crate) use function_info_v1;

/// Argument `i`, `None` when NULL.
///
/// # Safety
/// `fcinfo` must be the call info PostgreSQL passed, with more than `i` arguments.
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<pg_sys::Datum> {
    let a = unsafe { (*fcinfo).args.as_slice((*fcinfo).nargs as usize) }[i];
    (!a.isnull).then_some(a.value)
}

/// A `double precision` argument (passed by value), `None` when NULL.
///
/// # Safety
/// As [`arg`], and argument `i` must be of type double precision.
pub unsafe fn arg_f64(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<f64> {
    unsafe { arg(fcinfo, i) }.map(|d| f64::from_bits(d.value() as u64))
}

/// The bytes of a varlena datum (text, bytea, our types), detoasted if needed.
///
/// # Safety
/// `d` must be a varlena datum that outlives the returned slice.
pub unsafe fn varlena_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        pgrx::varlena::varlena_to_byte_slice(pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr()))
    }
}
