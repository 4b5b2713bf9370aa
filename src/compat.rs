//! C symbols of earlier releases, kept so that a database still on an older version's SQL
//! definitions keeps working after the library is replaced, until (and while)
//! `ALTER EXTENSION clv_ext UPDATE` runs: PostgreSQL resolves a C function's symbol by name on
//! every new backend, and `CREATE EXTENSION clv_ext VERSION '0.1.0'` checks the symbols exist.
//! Each is the current implementation under the old name (same SQL signature);
//! sql/clv_ext--0.1.0--0.2.0.sql points the catalog at the current names.

use crate::agg_state_io::clv_aggregate_state_send;
use crate::model_fit::{clv_fit_trans2, clv_fit_trans3};
use crate::scoring::{clv_bgbb, clv_bgnbd, clv_mbgnbd, clv_pareto_nbd};
use crate::v1::function_info_v1;
use pgrx::prelude::*;

macro_rules! alias {
    ($($old:ident, $finfo:ident => $new:ident;)*) => {$(
        function_info_v1!($finfo);
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $old(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            unsafe { $new(fcinfo) }
        }
    )*};
}

// 0.1.0: clv() and the fit aggregates' transition functions were pgrx wrappers.
alias! {
    bgnbd_clv_wrapper, pg_finfo_bgnbd_clv_wrapper => clv_bgnbd;
    pareto_nbd_clv_wrapper, pg_finfo_pareto_nbd_clv_wrapper => clv_pareto_nbd;
    mbgnbd_clv_wrapper, pg_finfo_mbgnbd_clv_wrapper => clv_mbgnbd;
    bgbb_clv_wrapper, pg_finfo_bgbb_clv_wrapper => clv_bgbb;
    bgnbd_fit_trans_wrapper, pg_finfo_bgnbd_fit_trans_wrapper => clv_fit_trans3;
    bgnbd_fit_trans_w_wrapper, pg_finfo_bgnbd_fit_trans_w_wrapper => clv_fit_trans3;
    bgnbd_fit_trans_wp_wrapper, pg_finfo_bgnbd_fit_trans_wp_wrapper => clv_fit_trans3;
    pareto_nbd_fit_trans_wrapper, pg_finfo_pareto_nbd_fit_trans_wrapper => clv_fit_trans3;
    pareto_nbd_fit_trans_w_wrapper, pg_finfo_pareto_nbd_fit_trans_w_wrapper => clv_fit_trans3;
    pareto_nbd_fit_trans_wp_wrapper, pg_finfo_pareto_nbd_fit_trans_wp_wrapper => clv_fit_trans3;
    mbgnbd_fit_trans_wrapper, pg_finfo_mbgnbd_fit_trans_wrapper => clv_fit_trans3;
    mbgnbd_fit_trans_w_wrapper, pg_finfo_mbgnbd_fit_trans_w_wrapper => clv_fit_trans3;
    mbgnbd_fit_trans_wp_wrapper, pg_finfo_mbgnbd_fit_trans_wp_wrapper => clv_fit_trans3;
    bgbb_fit_trans_wrapper, pg_finfo_bgbb_fit_trans_wrapper => clv_fit_trans3;
    bgbb_fit_trans_w_wrapper, pg_finfo_bgbb_fit_trans_w_wrapper => clv_fit_trans3;
    bgbb_fit_trans_wp_wrapper, pg_finfo_bgbb_fit_trans_wp_wrapper => clv_fit_trans3;
    gamma_gamma_fit_trans_wrapper, pg_finfo_gamma_gamma_fit_trans_wrapper => clv_fit_trans2;
    gamma_gamma_fit_trans_w_wrapper, pg_finfo_gamma_gamma_fit_trans_w_wrapper => clv_fit_trans2;
    gamma_gamma_fit_trans_wp_wrapper, pg_finfo_gamma_gamma_fit_trans_wp_wrapper => clv_fit_trans2;
}

/// Releases before 0.6.0 declared every aggregate with an `internal` state and serialize /
/// deserialize functions. Their transition, combine and final symbols still exist (now working
/// on `clv_aggregate_state` values, which an `internal` state can carry just as well); these
/// stand in for the serialize pair until the update re-creates the aggregates: serialize is the
/// state type's send function (its flat form), and deserialize passes that flat form through -
/// the combine function decodes a flat state itself.
unsafe fn deserialize_state(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { crate::v1::arg(fcinfo, 0).expect("strict") }
}

alias! {
    rfm_serialize_wrapper, pg_finfo_rfm_serialize_wrapper => clv_aggregate_state_send;
    rfm_deserialize_wrapper, pg_finfo_rfm_deserialize_wrapper => deserialize_state;
    clv_fit_serialize_wrapper, pg_finfo_clv_fit_serialize_wrapper => clv_aggregate_state_send;
    clv_fit_deserialize_wrapper, pg_finfo_clv_fit_deserialize_wrapper => deserialize_state;
    kmeans_rows_serialize_wrapper, pg_finfo_kmeans_rows_serialize_wrapper => clv_aggregate_state_send;
    kmeans_rows_deserialize_wrapper, pg_finfo_kmeans_rows_deserialize_wrapper => deserialize_state;
    customer_history_serialize_wrapper, pg_finfo_customer_history_serialize_wrapper => clv_aggregate_state_send;
    customer_history_deserialize_wrapper, pg_finfo_customer_history_deserialize_wrapper => deserialize_state;
    metrics_pairs_serialize_wrapper, pg_finfo_metrics_pairs_serialize_wrapper => clv_aggregate_state_send;
    metrics_pairs_deserialize_wrapper, pg_finfo_metrics_pairs_deserialize_wrapper => deserialize_state;
    ml_fit_serialize_wrapper, pg_finfo_ml_fit_serialize_wrapper => clv_aggregate_state_send;
    ml_fit_deserialize_wrapper, pg_finfo_ml_fit_deserialize_wrapper => deserialize_state;
    prediction_errors_serialize_wrapper, pg_finfo_prediction_errors_serialize_wrapper => clv_aggregate_state_send;
    prediction_errors_deserialize_wrapper, pg_finfo_prediction_errors_deserialize_wrapper => deserialize_state;
}
