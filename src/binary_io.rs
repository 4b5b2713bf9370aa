//! Binary send/receive for every clv_ext type, so `COPY ... (FORMAT binary)`, binary-protocol
//! clients (asyncpg, JDBC or psycopg in binary mode) and Citus, which moves values between nodes
//! in binary, can carry them.
//!
//! The wire form of a value is exactly its stored form ([`BinaryForm`]), which is already
//! versioned: `rfm_summary` starts with a layout version byte, the model types are JSON with a
//! `"version"` field. So a value sent by one release is received by any later one, and a value
//! from a newer release is refused with SQLSTATE 22P03 (invalid_binary_representation), as on
//! disk. `receive` validates everything it reads (a client may send any bytes): a value that
//! would not decode from disk is refused the same way.
//!
//! pgrx's `#[derive(PostgresType)]` declares input/output functions only; the send/receive pair
//! is attached with `ALTER TYPE ... SET (SEND = ..., RECEIVE = ...)` (PostgreSQL 13+).

use crate::binary_type::BinaryForm;
use crate::cluster_sql::{cluster_model, pca_model};
use crate::errors::OrRaise;
use crate::kmeans_sql::kmeans_model;
use crate::ml_sql::ml_model;
use crate::models::{bgbb_model, bgnbd_model, gamma_gamma_model, mbgnbd_model, pareto_nbd_model};
use crate::rfm_summary::rfm_summary;
use pgrx::prelude::*;
use pgrx::Internal;

/// The bytes a value travels as.
pub fn send<T: BinaryForm>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Reads the whole rest of the message buffer PostgreSQL passes to a receive function.
///
/// # Safety
/// `buf` must be the `StringInfo` PostgreSQL passed as the receive function's first argument.
pub unsafe fn receive<T: BinaryForm>(buf: Internal) -> T {
    let Some(datum) = buf.unwrap() else {
        crate::errors::raise_code(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "no message buffer",
        )
    };
    let si = unsafe { &mut *datum.cast_mut_ptr::<pg_sys::StringInfoData>() };
    let rest = (si.len - si.cursor).max(0) as usize;
    let bytes = if rest == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(si.data.add(si.cursor as usize) as *const u8, rest) }
    };
    let value = T::decode(bytes).or_raise();
    si.cursor = si.len;
    value
}

/// `<type>_send(<type>) RETURNS bytea` and `<type>_recv(internal) RETURNS <type>`.
macro_rules! binary_io {
    ($t:ty, $send:ident, $recv:ident) => {
        /// Binary output: the value's versioned stored form.
        #[pg_extern(immutable, strict, parallel_safe)]
        fn $send(value: $t) -> Vec<u8> {
            send(&value)
        }

        /// Binary input: validates the bytes as a stored value would be (SQLSTATE 22P03).
        #[pg_extern(immutable, strict, parallel_safe)]
        fn $recv(buf: Internal) -> $t {
            unsafe { receive(buf) }
        }
    };
}

binary_io!(rfm_summary, rfm_summary_send, rfm_summary_recv);
binary_io!(bgnbd_model, bgnbd_model_send, bgnbd_model_recv);
binary_io!(
    pareto_nbd_model,
    pareto_nbd_model_send,
    pareto_nbd_model_recv
);
binary_io!(mbgnbd_model, mbgnbd_model_send, mbgnbd_model_recv);
binary_io!(bgbb_model, bgbb_model_send, bgbb_model_recv);
binary_io!(
    gamma_gamma_model,
    gamma_gamma_model_send,
    gamma_gamma_model_recv
);
binary_io!(kmeans_model, kmeans_model_send, kmeans_model_recv);
binary_io!(ml_model, ml_model_send, ml_model_recv);
binary_io!(cluster_model, cluster_model_send, cluster_model_recv);
binary_io!(pca_model, pca_model_send, pca_model_recv);

extension_sql!(
    r#"
ALTER TYPE rfm_summary SET (SEND = rfm_summary_send, RECEIVE = rfm_summary_recv);
ALTER TYPE bgnbd_model SET (SEND = bgnbd_model_send, RECEIVE = bgnbd_model_recv);
ALTER TYPE pareto_nbd_model SET (SEND = pareto_nbd_model_send, RECEIVE = pareto_nbd_model_recv);
ALTER TYPE mbgnbd_model SET (SEND = mbgnbd_model_send, RECEIVE = mbgnbd_model_recv);
ALTER TYPE bgbb_model SET (SEND = bgbb_model_send, RECEIVE = bgbb_model_recv);
ALTER TYPE gamma_gamma_model SET (SEND = gamma_gamma_model_send, RECEIVE = gamma_gamma_model_recv);
ALTER TYPE kmeans_model SET (SEND = kmeans_model_send, RECEIVE = kmeans_model_recv);
ALTER TYPE ml_model SET (SEND = ml_model_send, RECEIVE = ml_model_recv);
ALTER TYPE cluster_model SET (SEND = cluster_model_send, RECEIVE = cluster_model_recv);
ALTER TYPE pca_model SET (SEND = pca_model_send, RECEIVE = pca_model_recv);
"#,
    name = "binary_io",
    requires = [
        rfm_summary_send,
        rfm_summary_recv,
        bgnbd_model_send,
        bgnbd_model_recv,
        pareto_nbd_model_send,
        pareto_nbd_model_recv,
        mbgnbd_model_send,
        mbgnbd_model_recv,
        bgbb_model_send,
        bgbb_model_recv,
        gamma_gamma_model_send,
        gamma_gamma_model_recv,
        kmeans_model_send,
        kmeans_model_recv,
        ml_model_send,
        ml_model_recv,
        cluster_model_send,
        cluster_model_recv,
        pca_model_send,
        pca_model_recv
    ]
);
