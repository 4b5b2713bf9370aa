//! Validation metrics as aggregates over (prediction, actual) pairs: `regression_metrics` and
//! `classification_metrics` (definitions in `clv_ml::metrics` and docs/ml.md). They rank, so the
//! state keeps the pairs (16 bytes each); the pairs are sorted before computing, so serial and
//! parallel plans give the same numbers.

use crate::agg_state::{new_state, new_transient_state, state_mut};
use crate::errors::{raise_code, OrRaise};
use pgrx::prelude::*;
use pgrx::{Internal, JsonB, PgSqlErrorCode};

#[derive(Clone, Default)]
struct Pairs(Vec<(f64, f64)>);

fn pairs(state: &Internal) -> Option<&Pairs> {
    unsafe { state.get::<Pairs>() }
}

fn push(
    mut state: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
    p: Option<f64>,
    a: Option<f64>,
) -> Internal {
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
    state: Internal,
    predicted: Option<f64>,
    actual: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    push(state, fcinfo, predicted, actual)
}

#[pg_extern(immutable, parallel_safe)]
fn classification_metrics_trans(
    state: Internal,
    probability: Option<f64>,
    label: Option<bool>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    push(
        state,
        fcinfo,
        probability,
        label.map(|b| f64::from(u8::from(b))),
    )
}

#[pg_extern(immutable, parallel_safe)]
fn metrics_pairs_combine(
    mut a: Internal,
    b: Internal,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    match (pairs(&a).is_some(), pairs(&b)) {
        (_, None) => a,
        (false, Some(b)) => new_state(fcinfo, b.clone()),
        (true, Some(b)) => {
            unsafe { a.get_mut::<Pairs>() }
                .expect("checked")
                .0
                .extend_from_slice(&b.0);
            a
        }
    }
}

#[pg_extern(immutable, strict, parallel_safe)]
fn metrics_pairs_serialize(state: Internal) -> Vec<u8> {
    pairs(&state)
        .map(|p| {
            p.0.iter()
                .flat_map(|(x, y)| x.to_le_bytes().into_iter().chain(y.to_le_bytes()))
                .collect()
        })
        .unwrap_or_default()
}

#[pg_extern(immutable, strict, parallel_safe)]
fn metrics_pairs_deserialize(bytes: &[u8], _unused: Internal) -> Internal {
    if !bytes.len().is_multiple_of(16) {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
            "corrupt metrics state",
        );
    }
    let v = bytes
        .chunks_exact(16)
        .map(|c| {
            (
                f64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                f64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
            )
        })
        .collect();
    new_transient_state(Pairs(v))
}

fn sorted(state: &Internal) -> Option<(Vec<f64>, Vec<f64>)> {
    let mut v = pairs(state)?.0.clone();
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
fn regression_metrics_final(state: Internal) -> Option<JsonB> {
    let (p, a) = sorted(&state)?;
    let m = clv_ml::metrics::regression(&p, &a).or_raise();
    Some(JsonB(serde_json::to_value(m).expect("metrics serialize")))
}

/// `{n, auc, log_loss, brier, mean_predicted, share_true}`; NULL for no pairs.
#[pg_extern(immutable, parallel_safe)]
fn classification_metrics_final(state: Internal) -> Option<JsonB> {
    let (p, a) = sorted(&state)?;
    let labels: Vec<bool> = a.iter().map(|&v| v == 1.0).collect();
    let m = clv_ml::metrics::classification(&p, &labels).or_raise();
    Some(JsonB(serde_json::to_value(m).expect("metrics serialize")))
}

extension_sql!(
    r#"
CREATE AGGREGATE regression_metrics(predicted double precision, actual double precision) (
    sfunc = regression_metrics_trans, stype = internal, finalfunc = regression_metrics_final,
    combinefunc = metrics_pairs_combine, serialfunc = metrics_pairs_serialize,
    deserialfunc = metrics_pairs_deserialize, parallel = safe
);
CREATE AGGREGATE classification_metrics(probability double precision, label boolean) (
    sfunc = classification_metrics_trans, stype = internal, finalfunc = classification_metrics_final,
    combinefunc = metrics_pairs_combine, serialfunc = metrics_pairs_serialize,
    deserialfunc = metrics_pairs_deserialize, parallel = safe
);
"#,
    name = "ml_metrics_aggregates",
    requires = [
        regression_metrics_trans,
        classification_metrics_trans,
        metrics_pairs_combine,
        metrics_pairs_serialize,
        metrics_pairs_deserialize,
        regression_metrics_final,
        classification_metrics_final
    ]
);
