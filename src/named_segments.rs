//! Named customer segments from model outputs (`segment::named`): One-Timers, At Risk, Champions,
//! Discount Seekers, Silent Potentials, Regulars, by the first matching rule of a documented list.
//!
//! Ranks are percent ranks in [0, 1], exactly `percent_rank() OVER (ORDER BY x)` (0 = lowest,
//! 1 = highest; equal values share the rank of the first of them). Every threshold of
//! `SegmentRules` is a named parameter with its documented default.

use crate::errors::{raise_code, OrRaise};
use clv_math::segment::named::{named_segment, CustomerSignals, SegmentRules};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn threshold(v: Option<f64>, name: &str) -> f64 {
    v.unwrap_or_else(|| {
        raise_code(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{name} must not be NULL"),
        )
    })
}

/// Not STRICT because `discount_share` may be NULL (no discount data: the Discount Seekers rule is
/// skipped). A NULL frequency, p_alive or rank gives NULL; a NULL threshold is an error.
#[pg_extern(immutable, parallel_safe)]
#[allow(clippy::too_many_arguments)]
fn clv_named_segment(
    frequency: Option<f64>,
    p_alive: Option<f64>,
    clv_rank: Option<f64>,
    past_value_rank: Option<f64>,
    expected_purchases_rank: Option<f64>,
    discount_share: default!(Option<f64>, "NULL"),
    at_risk_min_past_value_rank: default!(Option<f64>, 0.7),
    at_risk_max_p_alive: default!(Option<f64>, 0.3),
    champion_min_clv_rank: default!(Option<f64>, 0.8),
    champion_min_p_alive: default!(Option<f64>, 0.7),
    discount_min_share: default!(Option<f64>, 0.5),
    silent_max_past_value_rank: default!(Option<f64>, 0.5),
    silent_min_p_alive: default!(Option<f64>, 0.8),
    silent_min_expected_purchases_rank: default!(Option<f64>, 0.5),
) -> Option<&'static str> {
    let rules = SegmentRules {
        at_risk_min_past_value_rank: threshold(
            at_risk_min_past_value_rank,
            "at_risk_min_past_value_rank",
        ),
        at_risk_max_p_alive: threshold(at_risk_max_p_alive, "at_risk_max_p_alive"),
        champion_min_clv_rank: threshold(champion_min_clv_rank, "champion_min_clv_rank"),
        champion_min_p_alive: threshold(champion_min_p_alive, "champion_min_p_alive"),
        discount_min_share: threshold(discount_min_share, "discount_min_share"),
        silent_max_past_value_rank: threshold(
            silent_max_past_value_rank,
            "silent_max_past_value_rank",
        ),
        silent_min_p_alive: threshold(silent_min_p_alive, "silent_min_p_alive"),
        silent_min_expected_purchases_rank: threshold(
            silent_min_expected_purchases_rank,
            "silent_min_expected_purchases_rank",
        ),
    };
    // Thresholds are checked even when an input is NULL, so a bad call fails on every row.
    rules.validate().or_raise();
    let signals = CustomerSignals {
        frequency: frequency?,
        p_alive: p_alive?,
        clv_rank: clv_rank?,
        past_value_rank: past_value_rank?,
        expected_purchases_rank: expected_purchases_rank?,
        discount_share,
    };
    Some(named_segment(&signals, &rules).or_raise().label())
}
