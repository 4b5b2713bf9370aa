//! Text and binary input/output of `clv_aggregate_state` (see agg_state.rs), and the SQL type.
//! Citus ships partial states between nodes through these functions; input and receive decode
//! the payload with its kind's decoder, so a value of the type is always a valid state and a
//! malformed one is refused at the door (22P02 for text, 22P03 for binary).

use crate::agg_state::{StateKind, FORMAT};
use crate::errors::raise_code;
use crate::v1::{arg, function_info_v1, varlena_bytes};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn check<T: StateKind>(payload: &[u8]) {
    let _ = T::decode(payload);
}

/// A kind's tag and validating decoder.
type Kind = (u8, fn(&[u8]));

/// Every state kind.
const KINDS: &[Kind] = &[
    (
        crate::rfm_aggregate::AggState::KIND,
        check::<crate::rfm_aggregate::AggState>,
    ),
    (
        crate::model_fit::FitState::KIND,
        check::<crate::model_fit::FitState>,
    ),
    (
        crate::kmeans_sql::RowsState::KIND,
        check::<crate::kmeans_sql::RowsState>,
    ),
    (
        clv_ml::features::History::KIND,
        check::<clv_ml::features::History>,
    ),
    (
        crate::ml_metrics_sql::Pairs::KIND,
        check::<crate::ml_metrics_sql::Pairs>,
    ),
    (
        crate::ml_sql::FitState::KIND,
        check::<crate::ml_sql::FitState>,
    ),
    (
        crate::validation_sql::Errors::KIND,
        check::<crate::validation_sql::Errors>,
    ),
];

fn validate(bytes: &[u8], code: PgSqlErrorCode) {
    let bad =
        |what: &str| -> ! { raise_code(code, format!("invalid clv_aggregate_state: {what}")) };
    match bytes {
        [FORMAT, kind, payload @ ..] => match KINDS.iter().find(|(k, _)| k == kind) {
            Some((_, check)) => check(payload),
            None => bad(&format!("unknown state kind {kind}")),
        },
        [] => bad("empty"),
        _ => bad("unknown format version"),
    }
}

unsafe fn to_varlena(bytes: &[u8]) -> pg_sys::Datum {
    pgrx::rust_byte_slice_to_bytea(bytes).into_pg().into()
}

function_info_v1!(pg_finfo_clv_aggregate_state_in);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_aggregate_state_in(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let text = std::ffi::CStr::from_ptr(arg(fcinfo, 0).expect("strict").cast_mut_ptr());
        let hex = text.to_bytes();
        let digit = |c: u8| -> u8 {
            (c as char)
                .to_digit(16)
                .map(|d| d as u8)
                .unwrap_or_else(|| {
                    raise_code(
                        PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                        "invalid clv_aggregate_state: expected hexadecimal digits",
                    )
                })
        };
        if !hex.len().is_multiple_of(2) {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                "invalid clv_aggregate_state: odd number of hexadecimal digits",
            );
        }
        let bytes: Vec<u8> = hex
            .chunks_exact(2)
            .map(|p| digit(p[0]) << 4 | digit(p[1]))
            .collect();
        validate(&bytes, PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION);
        to_varlena(&bytes)
    }
}

function_info_v1!(pg_finfo_clv_aggregate_state_out);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_aggregate_state_out(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        // Detoasting an expanded datum flattens it (the object's `flatten_into`).
        let bytes = varlena_bytes(arg(fcinfo, 0).expect("strict"));
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let out = pg_sys::palloc(bytes.len() * 2 + 1) as *mut u8;
        for (i, b) in bytes.iter().enumerate() {
            *out.add(2 * i) = HEX[(b >> 4) as usize];
            *out.add(2 * i + 1) = HEX[(b & 15) as usize];
        }
        *out.add(bytes.len() * 2) = 0;
        pg_sys::Datum::from(out)
    }
}

function_info_v1!(pg_finfo_clv_aggregate_state_recv);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_aggregate_state_recv(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let buf = arg(fcinfo, 0)
            .expect("strict")
            .cast_mut_ptr::<pg_sys::StringInfoData>();
        let len = ((*buf).len - (*buf).cursor) as usize;
        let bytes =
            std::slice::from_raw_parts(((*buf).data as *const u8).add((*buf).cursor as usize), len);
        (*buf).cursor = (*buf).len;
        validate(bytes, PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION);
        to_varlena(bytes)
    }
}

function_info_v1!(pg_finfo_clv_aggregate_state_send);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_aggregate_state_send(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe { to_varlena(varlena_bytes(arg(fcinfo, 0).expect("strict"))) }
}

extension_sql!(
    r#"
CREATE TYPE clv_aggregate_state;
CREATE FUNCTION clv_aggregate_state_in(cstring) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_aggregate_state_in';
CREATE FUNCTION clv_aggregate_state_out(clv_aggregate_state) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_aggregate_state_out';
CREATE FUNCTION clv_aggregate_state_recv(internal) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_aggregate_state_recv';
CREATE FUNCTION clv_aggregate_state_send(clv_aggregate_state) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_aggregate_state_send';
CREATE TYPE clv_aggregate_state (
    INPUT = clv_aggregate_state_in, OUTPUT = clv_aggregate_state_out,
    RECEIVE = clv_aggregate_state_recv, SEND = clv_aggregate_state_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE clv_aggregate_state IS
    'The partial state of a clv_ext aggregate (what Citus workers and parallel workers send): '
    'hexadecimal text of a versioned binary form. Not meant to be read by people.';
"#,
    name = "clv_aggregate_state_type",
    bootstrap
);
