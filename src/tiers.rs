//! Value tiers: `clv_segment(value) OVER (...)` (default high 20% / medium 50% / low 30%),
//! `clv_segment(value, shares, labels) OVER (...)` (any tiers, top tier first) and the
//! fixed-threshold scalar `clv_segment_fixed(value, thresholds, labels)`.
//!
//! The share-based forms are window functions (see window.rs): the tiers of a partition are
//! computed once, on its first row, with `segment::tiers::assign_tiers` (O(n log n); ties never
//! split; a tie group straddling a boundary goes wholly to the lower tier), and every row then reads
//! its tier in O(1). That reads like `ntile`, needs no second pass or self-join over the data, works
//! in `CREATE MATERIALIZED VIEW`, and is deterministic: the result depends on the values of the
//! partition only, not on their order (the window's ORDER BY is irrelevant).

use crate::errors::{no_null_elements, raise, raise_code, OrRaise};
use crate::v1::function_info_v1;
use crate::window::Window;
use clv_math::segment::tiers::{
    assign_tiers, FixedTiers, TierSpec, DEFAULT_TIER_LABELS, DEFAULT_TIER_SHARES,
};
use clv_math::segment::validation::fnv1a64;
use clv_math::ClvError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn check_value(v: f64) {
    if !v.is_finite() {
        raise(ClvError::InvalidParameter(format!(
            "values to put into tiers must be finite, got {v}"
        )));
    }
}

/// Tier index of every row (0 = top), -1 for NULL; values must be finite.
fn tiers_of(values: &[Option<f64>], shares: &[f64]) -> Vec<i32> {
    values.iter().flatten().for_each(|v| check_value(*v));
    assign_tiers(values, shares)
        .or_raise()
        .into_iter()
        .map(|t| t.map_or(-1, |t| t as i32))
        .collect()
}

fn return_text(fcinfo: pg_sys::FunctionCallInfo, label: Option<&str>) -> pg_sys::Datum {
    match label.and_then(|l| l.into_datum()) {
        Some(d) => d,
        None => {
            unsafe { (*fcinfo).isnull = true };
            pg_sys::Datum::from(0)
        }
    }
}

function_info_v1!(pg_finfo_clv_segment_default);

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_segment_default(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let w = unsafe { Window::of(fcinfo) };
    let tier = w.partition_result::<f64, i32>(0, |values| tiers_of(values, &DEFAULT_TIER_SHARES));
    return_text(
        fcinfo,
        usize::try_from(tier).ok().map(|t| DEFAULT_TIER_LABELS[t]),
    )
}

// Identifies a (shares, labels) pair, to check that every row of a partition passes the same one.
fn fingerprint(spec: &TierSpec) -> u32 {
    let mut bytes = Vec::new();
    for s in spec.shares() {
        bytes.extend_from_slice(&s.to_bits().to_le_bytes());
    }
    for l in spec.labels() {
        bytes.extend_from_slice(&(l.len() as u64).to_le_bytes());
        bytes.extend_from_slice(l.as_bytes());
    }
    let h = fnv1a64(&bytes);
    (h ^ (h >> 32)) as u32
}

function_info_v1!(pg_finfo_clv_segment_custom);

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_segment_custom(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let w = unsafe { Window::of(fcinfo) };
    // Shares and labels are read (and validated) on every row: they must be the same for the whole
    // partition, which the stored fingerprint checks.
    let spec = TierSpec::new(
        no_null_elements(w.current_arg::<Vec<Option<f64>>>(1), "tier shares"),
        no_null_elements(w.current_arg::<Vec<Option<String>>>(2), "tier labels"),
    )
    .or_raise();
    let fp = fingerprint(&spec);
    let (tier, partition_fp) = w.partition_result::<f64, (i32, u32)>(0, |values| {
        tiers_of(values, spec.shares())
            .into_iter()
            .map(|t| (t, fp))
            .collect()
    });
    if partition_fp != fp {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "clv_segment: shares and labels must be the same for every row of a window partition",
        );
    }
    return_text(
        fcinfo,
        usize::try_from(tier).ok().and_then(|t| spec.label(t)),
    )
}

extension_sql!(
    r#"
CREATE FUNCTION clv_segment(value double precision)
RETURNS text
LANGUAGE c WINDOW IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clv_segment_default';
COMMENT ON FUNCTION clv_segment(double precision) IS
'Value tier of value within the window partition: high = top 20%, medium = middle 50%, low = bottom 30% of the non-NULL values; equal values always share a tier (a tie straddling a boundary goes to the lower tier); NULL stays NULL. Use as clv_segment(clv) OVER ().';

CREATE FUNCTION clv_segment(value double precision, shares double precision[], labels text[])
RETURNS text
LANGUAGE c WINDOW IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clv_segment_custom';
COMMENT ON FUNCTION clv_segment(double precision, double precision[], text[]) IS
'Value tier of value within the window partition for custom tiers: shares (each > 0, summing to 1) and labels listed from the top tier down, the same for every row of the partition. Ties never split; NULL stays NULL.';
"#,
    name = "clv_segment_window"
);

/// Tier label of `value` by fixed thresholds, descending (top tier first): the first label whose
/// threshold is <= value, else the last label. One more label than thresholds.
#[pg_extern(immutable, strict, parallel_safe)]
fn clv_segment_fixed(
    value: f64,
    thresholds: Vec<Option<f64>>,
    labels: Vec<Option<String>>,
) -> String {
    let tiers = FixedTiers::new(
        no_null_elements(Some(thresholds), "tier thresholds"),
        no_null_elements(Some(labels), "tier labels"),
    )
    .or_raise();
    check_value(value);
    tiers
        .label_of(value)
        .or_raise()
        .expect("finite values get a tier")
        .to_owned()
}
