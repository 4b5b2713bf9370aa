//! Validation: a stable train/test split of customers (`clv_in_training_set`) and the
//! `prediction_errors(predicted, actual)` aggregate (n, MAE, RMSE, bias).

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use clv_math::segment::validation::{in_training_set, in_training_set_str, ErrorAccumulator};
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};

/// Whether the customer belongs to the training set of the split `seed`: a fixed hash
/// (SplitMix64 of key XOR seed) below `share`. Same key, seed and share: same answer, on every
/// server and release.
#[pg_extern(immutable, strict, parallel_safe, name = "clv_in_training_set")]
fn clv_in_training_set(
    customer_key: i64,
    seed: default!(i64, 0),
    share: default!(f64, 0.8),
) -> bool {
    in_training_set(customer_key, seed, share).or_raise()
}

/// Text keys: the UTF-8 bytes are hashed with FNV-1a 64 first ('42' and 42 land differently).
#[pg_extern(immutable, strict, parallel_safe, name = "clv_in_training_set")]
fn clv_in_training_set_text(
    customer_key: &str,
    seed: default!(i64, 0),
    share: default!(f64, 0.8),
) -> bool {
    in_training_set_str(customer_key, seed, share).or_raise()
}

/// The `prediction_errors` state (a newtype: the accumulator lives in clv-math).
#[derive(Clone, Copy, Default)]
pub(crate) struct Errors(ErrorAccumulator);

// Layout: version u8, n u64, sum of errors, of absolute errors, of squared errors (f64).
impl StateKind for Errors {
    const KIND: u8 = 7;
    const NAME: &'static str = "prediction_errors";
    fn encode(&mut self, out: &mut Vec<u8>) {
        let s = &self.0;
        out.push(1u8);
        out.extend_from_slice(&s.n.to_le_bytes());
        for v in [s.sum_error, s.sum_abs_error, s.sum_sq_error] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn decode(bytes: &[u8]) -> Self {
        if bytes.len() != 33 || bytes[0] != 1 {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "corrupt prediction_errors state",
            );
        }
        let u = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        Errors(ErrorAccumulator {
            n: u(1),
            sum_error: f64::from_bits(u(9)),
            sum_abs_error: f64::from_bits(u(17)),
            sum_sq_error: f64::from_bits(u(25)),
        })
    }
    fn merge(&mut self, other: &mut Self) {
        self.0.merge(&other.0);
    }
    state_kind_methods!(Errors);
}

/// Pairs with a NULL side are skipped; a NaN or infinite value is an error.
#[pg_extern(immutable, parallel_safe)]
fn prediction_errors_trans(
    mut state: State,
    predicted: Option<f64>,
    actual: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    if let (Some(p), Some(a)) = (predicted, actual) {
        state_mut(&mut state, fcinfo, Errors::default)
            .0
            .push(p, a)
            .or_raise();
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn prediction_errors_combine(
    a: Option<State>,
    b: Option<State>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    combine::<Errors>(a, b, fcinfo)
}

/// `{"n", "mae", "rmse", "bias"}` with bias = mean(predicted - actual); NULL for no pairs.
#[pg_extern(immutable, parallel_safe)]
fn prediction_errors_final(mut state: State) -> Option<JsonB> {
    let m = state.get::<Errors>()?.0.finish()?;
    if !(m.rmse.is_finite() && m.mae.is_finite() && m.bias.is_finite()) {
        raise_code(
            PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            "prediction errors are too large to summarize (the sums overflow)",
        );
    }
    Some(JsonB(
        serde_json::json!({ "n": m.n, "mae": m.mae, "rmse": m.rmse, "bias": m.bias }),
    ))
}

extension_sql!(
    r#"
CREATE AGGREGATE prediction_errors(predicted double precision, actual double precision) (
    sfunc = prediction_errors_trans,
    stype = clv_aggregate_state,
    finalfunc = prediction_errors_final,
    combinefunc = prediction_errors_combine,
    parallel = safe
);
"#,
    name = "prediction_errors_aggregate",
    requires = [
        prediction_errors_trans,
        prediction_errors_combine,
        prediction_errors_final
    ]
);
