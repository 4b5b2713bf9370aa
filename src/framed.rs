//! Model types whose stored value can be large (an ML model, the core points of a DBSCAN fit):
//! a 16-byte header (layout version 1, 7 zero bytes, FNV-1a 64 of the JSON) followed by the JSON.
//!
//! A function receiving such a value keeps the datum as it came (`Repr::Datum`) and decodes it
//! through its call site's cache (`fn_extra`): the last few models, keyed by the header. Each row
//! reads only that header (a 16-byte slice of the TOAST value), and not even that when it brings
//! the same TOAST pointer as the row before, so scoring a million customers decodes the model once
//! instead of a million times. `framed_type!` gives a `#[derive(PostgresType)]` struct these
//! conversions; text input and output are the JSON.

use crate::errors::{raise, OrRaise};
use clv_math::ClvError;
use pgrx::prelude::*;
use std::sync::Arc;

pub const HEADER_LEN: usize = 16;

/// A model stored framed: its JSON form and the SQL type name for messages.
pub trait Framed: Sized + 'static {
    const SQL_NAME: &'static str;
    fn to_json(&self) -> String;
    /// Parse (and validate) the JSON form; 22023-class errors for bad text.
    fn from_json(text: &[u8]) -> Result<Self, ClvError>;
}

/// The stored bytes of a model.
pub fn frame<T: Framed>(m: &T) -> Vec<u8> {
    let payload = m.to_json().into_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(1u8);
    out.extend_from_slice(&[0u8; 7]);
    out.extend_from_slice(&clv_math::segment::validation::fnv1a64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The identity of stored bytes, read from the header alone.
pub fn header_id(header: &[u8]) -> Option<[u8; HEADER_LEN]> {
    (header.len() >= HEADER_LEN && header[0] == 1)
        .then(|| header[..HEADER_LEN].try_into().expect("16 bytes"))
}

pub fn unframe<T: Framed>(b: &[u8]) -> Result<T, ClvError> {
    if header_id(b).is_none() {
        return Err(ClvError::Corrupt(format!(
            "not a stored {} (unknown header)",
            T::SQL_NAME
        )));
    }
    T::from_json(&b[HEADER_LEN..]).map_err(|e| ClvError::Corrupt(e.to_string()))
}

/// A model value: decoded (made here) or the datum a function received (decoded on demand).
pub enum Repr<T> {
    Owned(Arc<T>),
    Datum(pg_sys::Datum),
}

impl<T> Clone for Repr<T> {
    fn clone(&self) -> Self {
        match self {
            Repr::Owned(m) => Repr::Owned(m.clone()),
            Repr::Datum(d) => Repr::Datum(*d),
        }
    }
}

unsafe fn datum_bytes(d: pg_sys::Datum) -> Vec<u8> {
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        pgrx::varlena::varlena_to_byte_slice(v).to_vec()
    }
}

impl<T: Framed> Repr<T> {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Repr::Owned(m) => frame(m.as_ref()),
            Repr::Datum(d) => unsafe { datum_bytes(*d) },
        }
    }

    pub fn decoded(&self) -> Arc<T> {
        match self {
            Repr::Owned(m) => m.clone(),
            Repr::Datum(_) => Arc::new(unframe(&self.bytes()).or_raise()),
        }
    }

    /// The decoded model through the call site's cache (`fn_extra`).
    pub fn cached(&self, fcinfo: pg_sys::FunctionCallInfo) -> Arc<T> {
        let Repr::Datum(d) = *self else {
            return self.decoded();
        };
        // The last few models of this call site, most recent first: a join of customers with a
        // table of models alternates between them row by row.
        const SLOTS: usize = 8;
        /// The models, and the TOAST pointer last seen with the header it led to.
        struct Cache<T>(
            Vec<([u8; HEADER_LEN], Arc<T>)>,
            Option<([u8; TOAST_POINTER_LEN], [u8; HEADER_LEN])>,
        );
        unsafe {
            let flinfo = (*fcinfo).flinfo;
            let mut extra = (*flinfo).fn_extra as *mut Cache<T>;
            if extra.is_null() {
                extra = crate::agg_state::alloc_in(
                    (*flinfo).fn_mcxt,
                    Cache::<T>(Vec::with_capacity(SLOTS), None),
                );
                (*flinfo).fn_extra = extra as *mut std::ffi::c_void;
            }
            // A model stored out of line arrives as the same TOAST pointer on every row (a
            // join with a models table, a subquery): a pointer names one immutable value, so
            // it stands for the header without fetching the first chunk through the TOAST
            // index again (that fetch cost more than a gradient-boosting prediction).
            let pointer = toast_pointer(d);
            let id = match (pointer, (*extra).1) {
                (Some(p), Some((q, id))) if p == q => id,
                _ => {
                    let header =
                        pg_sys::pg_detoast_datum_slice(d.cast_mut_ptr(), 0, HEADER_LEN as i32);
                    let id = header_id(pgrx::varlena::varlena_to_byte_slice(header))
                        .unwrap_or_else(|| {
                            raise(ClvError::Corrupt(format!(
                                "not a stored {} (unknown header)",
                                T::SQL_NAME
                            )))
                        });
                    if let Some(p) = pointer {
                        (*extra).1 = Some((p, id));
                    }
                    id
                }
            };
            let cache = &mut (*extra).0;
            if let Some(k) = cache.iter().position(|(i, _)| *i == id) {
                if k > 0 {
                    let hit = cache.remove(k);
                    cache.insert(0, hit);
                }
                return cache[0].1.clone();
            }
            let model = Arc::new(unframe::<T>(&datum_bytes(d)).or_raise());
            cache.truncate(SLOTS - 1);
            cache.insert(0, (id, model.clone()));
            model
        }
    }
}

/// `varatt_external`: raw size, external size and method, value OID, TOAST relation OID.
const TOAST_POINTER_LEN: usize = 16;

/// The bytes of an on-disk TOAST pointer, which identify the stored value; None for any other
/// datum (inline, compressed inline, in memory).
unsafe fn toast_pointer(d: pg_sys::Datum) -> Option<[u8; TOAST_POINTER_LEN]> {
    unsafe {
        let v = d.cast_mut_ptr::<pg_sys::varlena>();
        if !pgrx::varlena::varatt_is_1b_e(v)
            || pgrx::varlena::vartag_external(v) as u32 != pg_sys::vartag_external::VARTAG_ONDISK
        {
            return None;
        }
        let data = pgrx::varlena::vardata_1b_e(v) as *const u8;
        Some(std::ptr::read_unaligned(
            data as *const [u8; TOAST_POINTER_LEN],
        ))
    }
}

/// The SQL type `$name` over the framed model `$model` (see the module documentation).
macro_rules! framed_type {
    ($name:ident, $model:ty) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, ::pgrx::PostgresType)]
        #[inoutfuncs]
        #[bikeshed_postgres_type_manually_impl_from_into_datum]
        pub struct $name(pub $crate::framed::Repr<$model>);

        impl $name {
            pub fn owned(m: $model) -> Self {
                $name($crate::framed::Repr::Owned(::std::sync::Arc::new(m)))
            }
            pub fn decoded(&self) -> ::std::sync::Arc<$model> {
                self.0.decoded()
            }
            pub fn cached(
                &self,
                fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
            ) -> ::std::sync::Arc<$model> {
                self.0.cached(fcinfo)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, stringify!($name))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.bytes() == other.0.bytes()
            }
        }

        impl $crate::binary_type::BinaryForm for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0.bytes());
            }
            fn decode(bytes: &[u8]) -> Result<Self, ::clv_math::ClvError> {
                Ok($name::owned($crate::framed::unframe(bytes)?))
            }
        }

        impl ::pgrx::datum::IntoDatum for $name {
            fn into_datum(self) -> Option<::pgrx::pg_sys::Datum> {
                match self.0 {
                    $crate::framed::Repr::Datum(d) => Some(d),
                    $crate::framed::Repr::Owned(m) => Some(
                        ::pgrx::rust_byte_slice_to_bytea(&$crate::framed::frame(m.as_ref()))
                            .into_pg()
                            .into(),
                    ),
                }
            }
            fn type_oid() -> ::pgrx::pg_sys::Oid {
                ::pgrx::wrappers::rust_regtypein::<Self>()
            }
        }

        unsafe impl ::pgrx::callconv::BoxRet for $name {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut ::pgrx::callconv::FcInfo<'fcx>,
            ) -> ::pgrx::datum::Datum<'fcx> {
                match ::pgrx::datum::IntoDatum::into_datum(self) {
                    None => fcinfo.return_null(),
                    Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
                }
            }
        }

        impl ::pgrx::datum::FromDatum for $name {
            unsafe fn from_polymorphic_datum(
                datum: ::pgrx::pg_sys::Datum,
                is_null: bool,
                _typoid: ::pgrx::pg_sys::Oid,
            ) -> Option<Self> {
                (!is_null).then_some($name($crate::framed::Repr::Datum(datum)))
            }
        }

        unsafe impl ::pgrx::datum::UnboxDatum for $name {
            type As<'dat>
                = Self
            where
                Self: 'dat;
            unsafe fn unbox<'dat>(datum: ::pgrx::datum::Datum<'dat>) -> Self::As<'dat>
            where
                Self: 'dat,
            {
                $name($crate::framed::Repr::Datum(datum.sans_lifetime()))
            }
        }

        unsafe impl<'fcx> ::pgrx::callconv::ArgAbi<'fcx> for $name {
            unsafe fn unbox_arg_unchecked(arg: ::pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }
        }

        impl ::pgrx::InOutFuncs for $name {
            fn input(input: &::std::ffi::CStr) -> Self {
                match <$model as $crate::framed::Framed>::from_json(input.to_bytes()) {
                    Ok(m) => $name::owned(m),
                    Err(e) => $crate::errors::raise_code(
                        ::pgrx::PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                        e.to_string(),
                    ),
                }
            }
            fn output(&self, buffer: &mut ::pgrx::StringInfo) {
                buffer.push_str(&<$model as $crate::framed::Framed>::to_json(
                    &self.decoded(),
                ));
            }
        }
    };
}
pub(crate) use framed_type;
