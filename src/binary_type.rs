//! SQL types stored in our own versioned binary layout (not pgrx's default CBOR), so that stored
//! values stay readable across releases and decoding on every row is cheap.

/// Implemented by every value type; `decode` must accept anything `encode` produced by this or an
/// earlier release.
pub trait BinaryForm: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Result<Self, clv_math::ClvError>;
}

/// Implements pgrx's datum conversions for a `#[derive(PostgresType)]` type marked
/// `#[bikeshed_postgres_type_manually_impl_from_into_datum]`, via its [`BinaryForm`].
macro_rules! binary_datum {
    ($t:ty) => {
        impl ::pgrx::datum::IntoDatum for $t {
            fn into_datum(self) -> Option<::pgrx::pg_sys::Datum> {
                let mut bytes = Vec::new();
                $crate::binary_type::BinaryForm::encode(&self, &mut bytes);
                Some(::pgrx::rust_byte_slice_to_bytea(&bytes).into_pg().into())
            }
            fn type_oid() -> ::pgrx::pg_sys::Oid {
                ::pgrx::wrappers::rust_regtypein::<Self>()
            }
        }

        unsafe impl ::pgrx::callconv::BoxRet for $t {
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

        impl ::pgrx::datum::FromDatum for $t {
            unsafe fn from_polymorphic_datum(
                datum: ::pgrx::pg_sys::Datum,
                is_null: bool,
                _typoid: ::pgrx::pg_sys::Oid,
            ) -> Option<Self> {
                if is_null {
                    return None;
                }
                unsafe {
                    let v = ::pgrx::pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
                    let bytes = ::pgrx::varlena::varlena_to_byte_slice(v);
                    Some($crate::errors::OrRaise::or_raise(
                        <$t as $crate::binary_type::BinaryForm>::decode(bytes),
                    ))
                }
            }
        }

        unsafe impl ::pgrx::datum::UnboxDatum for $t {
            type As<'dat>
                = Self
            where
                Self: 'dat;
            unsafe fn unbox<'dat>(datum: ::pgrx::datum::Datum<'dat>) -> Self::As<'dat>
            where
                Self: 'dat,
            {
                unsafe {
                    <Self as ::pgrx::datum::FromDatum>::from_datum(datum.sans_lifetime(), false)
                        .unwrap()
                }
            }
        }

        unsafe impl<'fcx> ::pgrx::callconv::ArgAbi<'fcx> for $t {
            unsafe fn unbox_arg_unchecked(arg: ::pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }
        }
    };
}

pub(crate) use binary_datum;
