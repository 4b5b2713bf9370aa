//! RFM quantile scores as a window function and the classic named RFM segments.

use crate::errors::OrRaise;
use crate::v1::function_info_v1;
use crate::window::Window;
use clv_math::segment::rfm_scores::{rfm_segment as segment_of, score_all, ScoreDirection};
use pgrx::prelude::*;

function_info_v1!(pg_finfo_clv_rfm_score);

#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn clv_rfm_score(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    let w = unsafe { Window::of(fcinfo) };
    let higher_is_better = w.current_arg::<bool>(1).unwrap_or(true);
    let bins = w.current_arg::<i32>(2).unwrap_or(5);
    // -1 marks NULL so the per-partition array stays plain integers.
    let score: i32 = w.partition_result::<f64, i32>(0, |values| {
        if !(2..=100).contains(&bins) {
            crate::errors::raise(clv_math::ClvError::InvalidParameter(format!(
                "bins must be between 2 and 100, got {bins}"
            )));
        }
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        if let Some(bad) = present.iter().find(|v| !v.is_finite()) {
            crate::errors::raise(clv_math::ClvError::InvalidParameter(format!(
                "rfm_score values must be finite, got {bad}"
            )));
        }
        let scores = if present.is_empty() {
            Vec::new()
        } else {
            score_all(
                &present,
                bins as usize,
                ScoreDirection::from_higher_is_better(higher_is_better),
            )
            .or_raise()
        };
        let mut it = scores.into_iter();
        values
            .iter()
            .map(|v| {
                if v.is_some() {
                    it.next().expect("one score per value") as i32
                } else {
                    -1
                }
            })
            .collect()
    });
    if score < 0 {
        unsafe { (*fcinfo).isnull = true };
        pg_sys::Datum::from(0)
    } else {
        pg_sys::Datum::from(score)
    }
}

extension_sql!(
    r#"
CREATE FUNCTION rfm_score(value double precision, higher_is_better boolean DEFAULT true, bins integer DEFAULT 5)
RETURNS integer
LANGUAGE c WINDOW IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clv_rfm_score';
COMMENT ON FUNCTION rfm_score(double precision, boolean, integer) IS
'Quantile score 1..bins (5 = best) of value within the window partition; equal values get equal scores; NULL stays NULL. Use as rfm_score(x) OVER ().';
"#,
    name = "rfm_score_window"
);

/// Classic named RFM segment of (recency, frequency, monetary) scores 1..5; the mapping is the
/// table in docs/rfm.md (recency and frequency decide, as in the widely used R/F grid).
#[pg_extern(immutable, strict, parallel_safe)]
fn rfm_segment(r: i32, f: i32, m: i32) -> &'static str {
    segment_of(r, f, m).or_raise().label()
}
