//! Customer features and holdout labels for the ML models, from a transactions table in one pass:
//! `customer_features`, `holdout_spend`, `holdout_purchases` and `churned_in_holdout` share one
//! transition function, so PostgreSQL keeps one state per customer for all of them when they are
//! called with the same arguments in one query (shared transition state, PostgreSQL 10+).
//! Definitions: docs/ml.md; the maths: `clv_ml::features`.

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use clv_ml::features::{History, FEATURE_NAMES};
use pgrx::datum::Date;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn day(d: Date, what: &str) -> i32 {
    if d.is_infinity() || d.is_neg_infinity() {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} must be a finite date"),
        )
    }
    d.to_pg_epoch_days()
}

impl StateKind for History {
    const KIND: u8 = 4;
    const NAME: &'static str = "customer features";
    fn encode(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&History::encode(self));
    }
    fn decode(bytes: &[u8]) -> Self {
        History::decode(bytes).or_raise()
    }
    fn merge(&mut self, other: &mut Self) {
        History::merge(self, other).or_raise()
    }
    state_kind_methods!(History);
}

/// A row with a NULL day or amount is skipped; NULL window ends are an error.
fn add(
    mut state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    ts: Option<Date>,
    amount: Option<f64>,
    calibration_end: Option<Date>,
    holdout_end: Option<Date>,
) -> State {
    let (Some(c), Some(h)) = (calibration_end, holdout_end) else {
        raise_code(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "calibration_end and holdout_end must not be NULL",
        )
    };
    let s = state_mut(&mut state, fcinfo, History::default);
    s.set_window(day(c, "calibration_end"), day(h, "holdout_end"))
        .or_raise();
    if let (Some(ts), Some(a)) = (ts, amount) {
        // -infinity is before every window, +infinity after: neither is a purchase day we can
        // measure a duration to.
        s.push(day(ts, "the transaction date"), a).or_raise();
    }
    state
}

#[pg_extern(immutable, parallel_safe, name = "customer_history_trans")]
fn customer_history_trans(
    state: State,
    ts: Option<Date>,
    amount: Option<f64>,
    calibration_end: Option<Date>,
    holdout_end: Option<Date>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add(state, fcinfo, ts, amount, calibration_end, holdout_end)
}

/// Features only: the holdout window is empty.
#[pg_extern(immutable, parallel_safe, name = "customer_history_trans")]
fn customer_history_trans_c(
    state: State,
    ts: Option<Date>,
    amount: Option<f64>,
    calibration_end: Option<Date>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add(state, fcinfo, ts, amount, calibration_end, calibration_end)
}

#[pg_extern(immutable, parallel_safe)]
fn customer_history_combine(
    a: Option<State>,
    b: Option<State>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    combine::<History>(a, b, fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn customer_features_final(mut state: State) -> Option<Vec<f64>> {
    state.get::<History>()?.features().map(|f| f.to_vec())
}

#[pg_extern(immutable, parallel_safe)]
fn holdout_spend_final(mut state: State) -> Option<f64> {
    state.get::<History>()?.labels().map(|l| l.holdout_spend)
}

#[pg_extern(immutable, parallel_safe)]
fn holdout_purchases_final(mut state: State) -> Option<i64> {
    state
        .get::<History>()?
        .labels()
        .map(|l| l.holdout_purchases)
}

#[pg_extern(immutable, parallel_safe)]
fn churned_in_holdout_final(mut state: State) -> Option<bool> {
    state.get::<History>()?.labels().map(|l| l.churned)
}

/// The names of `customer_features`' components, in order (1-based in SQL arrays).
#[pg_extern(immutable, strict, parallel_safe)]
fn customer_feature_names() -> Vec<&'static str> {
    FEATURE_NAMES.to_vec()
}

extension_sql!(
    r#"
CREATE AGGREGATE customer_features(ts date, amount double precision, calibration_end date) (
    sfunc = customer_history_trans,
    stype = clv_aggregate_state,
    finalfunc = customer_features_final,
    combinefunc = customer_history_combine,
    parallel = safe
);
CREATE AGGREGATE customer_features(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = clv_aggregate_state,
    finalfunc = customer_features_final,
    combinefunc = customer_history_combine,
    parallel = safe
);
CREATE AGGREGATE holdout_spend(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = clv_aggregate_state,
    finalfunc = holdout_spend_final,
    combinefunc = customer_history_combine,
    parallel = safe
);
CREATE AGGREGATE holdout_purchases(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = clv_aggregate_state,
    finalfunc = holdout_purchases_final,
    combinefunc = customer_history_combine,
    parallel = safe
);
CREATE AGGREGATE churned_in_holdout(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = clv_aggregate_state,
    finalfunc = churned_in_holdout_final,
    combinefunc = customer_history_combine,
    parallel = safe
);
"#,
    name = "customer_feature_aggregates",
    requires = [
        customer_history_trans,
        customer_history_trans_c,
        customer_history_combine,
        customer_features_final,
        holdout_spend_final,
        holdout_purchases_final,
        churned_in_holdout_final
    ]
);
