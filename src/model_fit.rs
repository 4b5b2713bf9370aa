//! Model-fitting aggregates: `bgnbd_fit(frequency, recency, tenure [, weight [, penalizer]])` and
//! likewise for Pareto/NBD, MBG/NBD, BG/BB and Gamma-Gamma.
//!
//! The state keeps sufficient statistics: identical input rows are stored once with a summed
//! weight, so memory grows with distinct (frequency, recency, T) patterns, not with customers.
//! Parallel workers and Citus workers each build a partial map; combine merges them, and the map
//! travels between processes as a `clv_aggregate_state` (agg_state.rs). The map is turned into
//! rows sorted by key before fitting, so the result does not depend on arrival order: serial and
//! parallel plans give the same parameters.

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use crate::models::*;
use crate::v1::{arg, arg_f64, function_info_v1};
use clv_math::error::Num;
use clv_math::fit::patterns::PatternCounts;
use clv_math::fit::{self, CustomerRow, FitOptions, SpendRow};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::sync::Arc;

#[derive(Default, Clone)]
pub struct FitState {
    rows: PatternCounts,
    penalizer: Option<f64>,
}

impl FitState {
    fn add(&mut self, key: [f64; 3], weight: f64, penalizer: Option<f64>) {
        if !(weight.is_finite() && weight > 0.0) {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("weight must be a finite number > 0, got {}", Num(weight)),
            );
        }
        if let Some(p) = penalizer {
            if !(p.is_finite() && p >= 0.0) {
                raise_code(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    format!("penalizer must be a finite number >= 0, got {}", Num(p)),
                );
            }
            match self.penalizer {
                Some(q) if q != p => raise_code(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    "the penalizer must be the same for every row",
                ),
                _ => self.penalizer = Some(p),
            }
        }
        // -0.0 and 0.0 are the same customer pattern.
        let bits = key.map(|v| (v + 0.0).to_bits());
        self.rows.add(bits, weight);
    }

    fn merge(&mut self, other: &mut FitState) {
        self.rows.merge(&mut other.rows);
        if let Some(p) = other.penalizer {
            if matches!(self.penalizer, Some(q) if q != p) {
                raise_code(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    "the penalizer must be the same for every row",
                );
            }
            self.penalizer = Some(p);
        }
    }

    /// Rows in key order, so the optimizer sees the same sums whatever the arrival order.
    fn sorted<R>(&mut self, row: impl Fn([f64; 3], f64) -> R) -> Vec<R> {
        let mut v: Vec<([u64; 3], f64)> = self.rows.entries().collect();
        // Checked every 2^14 comparisons: with continuous-time data every customer is its own
        // pattern, and sorting ten million of them takes seconds.
        clv_math::interrupt::sort_unstable_by(&mut v, |a, b| a.0.cmp(&b.0));
        v.into_iter()
            .map(|(k, w)| row(k.map(f64::from_bits), w))
            .collect()
    }

    fn options(&self) -> FitOptions {
        FitOptions {
            penalizer: self.penalizer.unwrap_or(0.0),
            check: crate::interrupts::check_for_interrupts,
            ..FitOptions::default()
        }
    }

    // Layout: version u8, has_penalizer u8, penalizer f64, n u64, n x (3 x u64 key, f64 weight).
    fn encode(&mut self) -> Vec<u8> {
        let n = self.rows.len();
        let mut out = Vec::with_capacity(18 + n * 32);
        out.push(1u8);
        out.push(self.penalizer.is_some() as u8);
        out.extend_from_slice(&self.penalizer.unwrap_or(0.0).to_le_bytes());
        out.extend_from_slice(&(n as u64).to_le_bytes());
        // Scattered, not in table (hash) order: decoding inserts them into a fresh table.
        for (k, w) in self.rows.entries_scattered() {
            for b in k {
                out.extend_from_slice(&b.to_le_bytes());
            }
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> FitState {
        let corrupt = || {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "corrupt model-fit state",
            )
        };
        if b.len() < 18 || b[0] != 1 {
            corrupt();
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let n = u(10) as usize;
        if Some(b.len()) != n.checked_mul(32).and_then(|m| m.checked_add(18)) {
            corrupt();
        }
        let penalizer = (b[1] == 1).then(|| f64::from_bits(u(2)));
        let mut rows = PatternCounts::with_capacity(n);
        for i in 0..n {
            let o = 18 + i * 32;
            let w = f64::from_bits(u(o + 24));
            if !(w.is_finite() && w > 0.0) {
                corrupt();
            }
            rows.add([u(o), u(o + 8), u(o + 16)], w);
        }
        FitState { rows, penalizer }
    }
}

impl StateKind for FitState {
    const KIND: u8 = 2;
    const NAME: &'static str = "model fit";
    fn encode(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&FitState::encode(self));
    }
    fn decode(bytes: &[u8]) -> Self {
        FitState::decode(bytes)
    }
    fn merge(&mut self, other: &mut Self) {
        FitState::merge(self, other)
    }
    state_kind_methods!(FitState);
}

fn add_row(
    mut state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    key: [Option<f64>; 3],
    weight: Option<Option<f64>>,
    penalizer: Option<Option<f64>>,
) -> State {
    // Rows with a NULL input (e.g. customers without a summary) are skipped.
    let ([Some(a), Some(b), Some(c)], Some(w)) = (key, weight.unwrap_or(Some(1.0))) else {
        return state;
    };
    let penalizer = penalizer.map(|p| {
        p.unwrap_or_else(|| {
            raise_code(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "penalizer must not be NULL",
            )
        })
    });
    state_mut(&mut state, fcinfo, FitState::default).add([a, b, c], w, penalizer);
    state
}

#[pg_extern(immutable, parallel_safe)]
fn clv_fit_combine(a: Option<State>, b: Option<State>, fcinfo: pg_sys::FunctionCallInfo) -> State {
    combine::<FitState>(a, b, fcinfo)
}

fn customer_rows(s: &mut FitState) -> Vec<CustomerRow> {
    s.sorted(|[x, tx, t], w| CustomerRow { x, tx, t, w })
}

fn spend_rows(s: &mut FitState) -> Vec<SpendRow> {
    s.sorted(|[x, m, _], w| SpendRow { x, m, w })
}

/// The transition of every fit aggregate, a plain V1 C function: it runs once per customer row,
/// and reading the float8 datums directly (no per-argument Option wrapping, no pgrx call
/// machinery) is most of what separates the fit from a bare `sum()` over the table - see
/// bench/README.md. `KEY` is the number of pattern columns (3 for the purchase models, 2 for
/// Gamma-Gamma); then an optional weight and an optional penalizer (the SQL overload decides).
unsafe fn fit_transition<const KEY: usize>(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let nargs = (*fcinfo).nargs as usize;
        let mut key = [Some(0.0); 3];
        for (i, k) in key.iter_mut().enumerate().take(KEY) {
            *k = arg_f64(fcinfo, 1 + i);
        }
        let weight = (nargs > KEY + 1).then(|| arg_f64(fcinfo, KEY + 1));
        let penalizer = (nargs > KEY + 2).then(|| arg_f64(fcinfo, KEY + 2));
        let state = add_row(State::from(arg(fcinfo, 0)), fcinfo, key, weight, penalizer);
        state.into_return(fcinfo)
    }
}

function_info_v1!(pg_finfo_clv_fit_trans3);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_fit_trans3(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { fit_transition::<3>(fcinfo) }
}

function_info_v1!(pg_finfo_clv_fit_trans2);
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_fit_trans2(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { fit_transition::<2>(fcinfo) }
}

/// The final function of one fit aggregate over three-column rows (frequency, recency, T or
/// number of periods).
macro_rules! fit_final {
    ($final:ident, $model:ident, $fit:path, $rows:ident, $kind:literal) => {
        /// NULL for no rows; an error with a hint when the optimizer does not converge.
        #[pg_extern(immutable, parallel_safe)]
        fn $final(mut state: State) -> Option<$model> {
            let s = state.get_mut::<FitState>()?;
            let f = $fit(&$rows(s), &s.options()).or_raise();
            Some($model(Arc::new(Stored::from_fit(
                $kind,
                f,
                s.rows.len() as u64,
                s.penalizer.unwrap_or(0.0),
            ))))
        }
    };
}

fit_final!(
    bgnbd_fit_final,
    bgnbd_model,
    fit::fit_bgnbd,
    customer_rows,
    "bgnbd"
);
fit_final!(
    pareto_nbd_fit_final,
    pareto_nbd_model,
    fit::fit_paretonbd,
    customer_rows,
    "pareto_nbd"
);
fit_final!(
    mbgnbd_fit_final,
    mbgnbd_model,
    fit::fit_mbgnbd,
    customer_rows,
    "mbgnbd"
);
fit_final!(
    bgbb_fit_final,
    bgbb_model,
    fit::fit_bgbb,
    customer_rows,
    "bgbb"
);
// Gamma-Gamma rows have two columns; the third key is a constant so all fits share one state type.
fit_final!(
    gamma_gamma_fit_final,
    gamma_gamma_model,
    fit::fit_gamma_gamma,
    spend_rows,
    "gamma_gamma"
);

extension_sql!(
    r#"
-- Transition functions: one C symbol per number of pattern columns (see fit_transition).
-- Parameter names as in 0.1.0 (an upgrade cannot rename them).
CREATE FUNCTION bgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION bgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION bgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION pareto_nbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION pareto_nbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION pareto_nbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION mbgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION mbgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION mbgnbd_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION bgbb_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION bgbb_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION bgbb_fit_trans(state clv_aggregate_state, a double precision, b double precision, c double precision, weight double precision, penalizer double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans3';
CREATE FUNCTION gamma_gamma_fit_trans(state clv_aggregate_state, frequency double precision, monetary_value double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';
CREATE FUNCTION gamma_gamma_fit_trans(state clv_aggregate_state, frequency double precision, monetary_value double precision, weight double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';
CREATE FUNCTION gamma_gamma_fit_trans(state clv_aggregate_state, frequency double precision, monetary_value double precision, weight double precision, penalizer double precision) RETURNS clv_aggregate_state
    LANGUAGE c IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_fit_trans2';

CREATE AGGREGATE bgnbd_fit(frequency double precision, recency double precision, tenure double precision) (
    sfunc = bgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE bgnbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision) (
    sfunc = bgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE bgnbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision, penalizer double precision) (
    sfunc = bgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE pareto_nbd_fit(frequency double precision, recency double precision, tenure double precision) (
    sfunc = pareto_nbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = pareto_nbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE pareto_nbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision) (
    sfunc = pareto_nbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = pareto_nbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE pareto_nbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision, penalizer double precision) (
    sfunc = pareto_nbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = pareto_nbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE mbgnbd_fit(frequency double precision, recency double precision, tenure double precision) (
    sfunc = mbgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = mbgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE mbgnbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision) (
    sfunc = mbgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = mbgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE mbgnbd_fit(frequency double precision, recency double precision, tenure double precision, weight double precision, penalizer double precision) (
    sfunc = mbgnbd_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = mbgnbd_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE bgbb_fit(frequency double precision, recency double precision, n_periods double precision) (
    sfunc = bgbb_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgbb_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE bgbb_fit(frequency double precision, recency double precision, n_periods double precision, weight double precision) (
    sfunc = bgbb_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgbb_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE bgbb_fit(frequency double precision, recency double precision, n_periods double precision, weight double precision, penalizer double precision) (
    sfunc = bgbb_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = bgbb_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE gamma_gamma_fit(frequency double precision, monetary_value double precision) (
    sfunc = gamma_gamma_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = gamma_gamma_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE gamma_gamma_fit(frequency double precision, monetary_value double precision, weight double precision) (
    sfunc = gamma_gamma_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = gamma_gamma_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);

CREATE AGGREGATE gamma_gamma_fit(frequency double precision, monetary_value double precision, weight double precision, penalizer double precision) (
    sfunc = gamma_gamma_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = gamma_gamma_fit_final,
    combinefunc = clv_fit_combine,
    parallel = safe
);
"#,
    name = "fit_aggregates",
    requires = [
        bgnbd_fit_final,
        pareto_nbd_fit_final,
        mbgnbd_fit_final,
        bgbb_fit_final,
        gamma_gamma_fit_final,
        clv_fit_combine
    ]
);
