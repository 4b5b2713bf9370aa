//! Validation metrics as aggregates over (prediction, actual) pairs: `regression_metrics` and
//! `classification_metrics` (definitions in `clv_ml::metrics` and docs/ml.md). They rank, so the
//! state keeps the pairs (16 bytes each); the pairs are sorted before computing, so serial and
//! parallel plans give the same numbers.

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

#[derive(Clone, Default)]
pub(crate) struct Pairs(Vec<(f64, f64)>);

// Layout: n x (prediction f64, actual f64), little-endian.
impl StateKind for Pairs {
    const KIND: u8 = 5;
    const NAME: &'static str = "metrics";
    fn encode(&mut self, out: &mut Vec<u8>) {
        for (x, y) in &self.0 {
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
    }
    fn decode(bytes: &[u8]) -> Self {
        if !bytes.len().is_multiple_of(16) {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "corrupt metrics state",
            );
        }
        let f = |c: &[u8]| f64::from_le_bytes(c.try_into().expect("8 bytes"));
        Pairs(
            bytes
                .chunks_exact(16)
                .map(|c| (f(&c[..8]), f(&c[8..])))
                .collect(),
        )
    }
    fn merge(&mut self, other: &mut Self) {
        self.0.extend_from_slice(&other.0);
    }
    state_kind_methods!(Pairs);
}

fn push(
    mut state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    p: Option<f64>,
    a: Option<f64>,
) -> State {
    if let (Some(p), Some(a)) = (p, a) {
        if !p.is_finite() || !a.is_finite() {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("predictions and actual values must be finite numbers, got ({p}, {a})"),
            );
        }
        state_mut(&mut state, fcinfo, Pairs::default).0.push((p, a));
    }
    state
}

/// Pairs with a NULL side are skipped.
#[pg_extern(immutable, parallel_safe)]
fn regression_metrics_trans(
    state: State,
    predicted: Option<f64>,
    actual: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    push(state, fcinfo, predicted, actual)
}

#[pg_extern(immutable, parallel_safe)]
fn classification_metrics_trans(
    state: State,
    probability: Option<f64>,
    label: Option<bool>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    push(
        state,
        fcinfo,
        probability,
        label.map(|b| f64::from(u8::from(b))),
    )
}

#[pg_extern(immutable, parallel_safe)]
fn metrics_pairs_combine(
    a: Option<State>,
    b: Option<State>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    combine::<Pairs>(a, b, fcinfo)
}

fn sorted(state: &mut State) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut v = state.get::<Pairs>()?.0.clone();
    if v.is_empty() {
        return None;
    }
    clv_math::interrupt::sort_unstable_by(&mut v, |a, b| {
        a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1))
    });
    Some(v.into_iter().unzip())
}

/// `{n, mae, rmse, r2, normalized_gini, top_20_capture, tier_hit_rate_top_20,
/// tier_hit_rate_middle_50, tier_hit_rate_bottom_30, mean_predicted, mean_actual}`; NULL for no pairs.
#[pg_extern(immutable, parallel_safe)]
fn regression_metrics_final(mut state: State) -> Option<JsonB> {
    let (p, a) = sorted(&mut state)?;
    let m = clv_ml::metrics::regression(&p, &a).or_raise();
    Some(JsonB(serde_json::to_value(m).expect("metrics serialize")))
}

/// `{n, auc, log_loss, brier, mean_predicted, share_true}`; NULL for no pairs.
#[pg_extern(immutable, parallel_safe)]
fn classification_metrics_final(mut state: State) -> Option<JsonB> {
    let (p, a) = sorted(&mut state)?;
    let labels: Vec<bool> = a.iter().map(|&v| v == 1.0).collect();
    let m = clv_ml::metrics::classification(&p, &labels).or_raise();
    Some(JsonB(serde_json::to_value(m).expect("metrics serialize")))
}

extension_sql!(
    r#"
CREATE AGGREGATE regression_metrics(predicted double precision, actual double precision) (
    sfunc = regression_metrics_trans, stype = clv_aggregate_state, finalfunc = regression_metrics_final,
    combinefunc = metrics_pairs_combine, parallel = safe
);
CREATE AGGREGATE classification_metrics(probability double precision, label boolean) (
    sfunc = classification_metrics_trans, stype = clv_aggregate_state, finalfunc = classification_metrics_final,
    combinefunc = metrics_pairs_combine, parallel = safe
);
"#,
    name = "ml_metrics_aggregates",
    requires = [
        regression_metrics_trans,
        classification_metrics_trans,
        metrics_pairs_combine,
        regression_metrics_final,
        classification_metrics_final
    ]
);
