//! RFM quintile scores (1..5, 5 = best) and the classic named RFM segments.
//!
//! Scoring is split in two steps so it maps onto SQL: an aggregate collects one dimension's values
//! and returns its cut points ([`quantile_cut_points`] / [`rfm_cut_points`]), then a scalar
//! function scores each customer against them ([`score_value`]). [`score_all`] does both for a
//! whole partition (a window function) in O(n log n).
//!
//! # Cut points and ties
//!
//! With `B` bins and `n` values sorted ascending `v(1) <= ... <= v(n)`, the `j`-th cut point
//! (`j = 1..B-1`) is `v(ceil(j * n / B))`: the smallest observed value such that at least `j/B` of
//! the customers have a value `<=` it (the inverse empirical CDF, i.e. PostgreSQL's
//! `percentile_disc(j / B)`, or NumPy's `quantile(method = "inverted_cdf")`). A value's bin is
//! `1 + (number of cut points strictly below the value)`, so bins are right-closed intervals
//! `(cut(j-1), cut(j)]`, as in `pandas.qcut`.
//!
//! Because bins are defined by *values*, not by row positions, equal values always receive the same
//! score, and the result does not depend on the order in which rows arrive. A group of equal values
//! that straddles a quintile boundary falls wholly into the lower bin, so bins can be uneven, and
//! with heavy ties some scores are never used (e.g. when 60% of customers have frequency 0, they all
//! get F = 1 and F = 2, 3 stay empty: the three lowest cut points are all 0). That is deliberate:
//! SQL's `ntile(5) OVER (ORDER BY v)` would instead cut the sorted rows into five equal *counts*,
//! giving equal values different scores depending on the (unspecified) order of peers - two
//! customers with identical behaviour could land in different segments, and a re-run could swap
//! them.
//!
//! # Direction
//!
//! Score 5 is always "best". For a dimension where larger is better (frequency, monetary value,
//! recency in the `lifetimes` sense = age at last purchase) the score is the bin; for one where
//! smaller is better (days since the last purchase) the score is `B + 1 - bin`. The direction is an
//! explicit argument because "recency" means opposite things in different conventions.

use crate::error::{ClvError, Result};
use crate::interrupt::{self, Ticker};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Number of bins of a classic RFM score.
pub const RFM_BINS: usize = 5;

/// Which end of a dimension is best (receives the highest score).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoreDirection {
    /// Larger values are better: frequency, monetary, `lifetimes` recency (age at last purchase).
    HigherIsBetter,
    /// Smaller values are better: days since the last purchase.
    LowerIsBetter,
}

impl ScoreDirection {
    /// Convenience for a SQL `higher_is_better boolean` argument.
    pub fn from_higher_is_better(higher_is_better: bool) -> Self {
        if higher_is_better {
            ScoreDirection::HigherIsBetter
        } else {
            ScoreDirection::LowerIsBetter
        }
    }
}

fn check_values(values: &[f64]) -> Result<()> {
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(ClvError::InvalidParameter(format!(
            "values to score must be finite numbers, got {v}"
        )));
    }
    Ok(())
}

fn check_bins(n_bins: usize) -> Result<()> {
    if !(2..=100).contains(&n_bins) {
        return Err(ClvError::InvalidParameter(format!(
            "the number of score bins must be between 2 and 100, got {n_bins}"
        )));
    }
    Ok(())
}

/// Cut points of `values` into `n_bins` quantile bins: `n_bins - 1` non-decreasing values, the
/// `j`-th being `v(ceil(j * n / n_bins))` of the ascending order (see the module documentation).
///
/// Errors: empty input, a non-finite value, or `n_bins` outside 2..=100.
pub fn quantile_cut_points(values: &[f64], n_bins: usize) -> Result<Vec<f64>> {
    check_bins(n_bins)?;
    check_values(values)?;
    if values.is_empty() {
        return Err(ClvError::InvalidParameter(
            "cannot compute score cut points of an empty set of values".into(),
        ));
    }
    let mut sorted = values.to_vec();
    interrupt::sort_by(&mut sorted, f64::total_cmp);
    Ok(cut_points_of_sorted(&sorted, n_bins))
}

// Integer arithmetic for ceil(j * n / B) so that n = 10, 100, ... gives exact, fp-free positions.
fn cut_points_of_sorted(sorted: &[f64], n_bins: usize) -> Vec<f64> {
    let n = sorted.len();
    (1..n_bins)
        .map(|j| {
            let pos = (j * n).div_ceil(n_bins); // 1-based, >= 1 because n >= 1
            sorted[pos - 1]
        })
        .collect()
}

/// The four cut points of a classic 1..5 RFM score for one dimension.
pub fn rfm_cut_points(values: &[f64]) -> Result<Vec<f64>> {
    quantile_cut_points(values, RFM_BINS)
}

/// Score of `value` against `cuts` (as returned by [`quantile_cut_points`]): `1..=cuts.len() + 1`,
/// the highest being best according to `direction`. A value equal to a cut point belongs to the
/// lower bin; values outside the range seen when the cuts were computed get the extreme scores.
///
/// Errors: a non-finite value, no cut points, or cut points that are not finite and non-decreasing.
pub fn score_value(value: f64, cuts: &[f64], direction: ScoreDirection) -> Result<u8> {
    crate::error::finite("value", value)?;
    check_cuts(cuts)?;
    Ok(score_unchecked(value, cuts, direction))
}

fn check_cuts(cuts: &[f64]) -> Result<()> {
    if cuts.is_empty() || cuts.len() > 99 {
        return Err(ClvError::InvalidParameter(format!(
            "score cut points must have between 1 and 99 elements, got {}",
            cuts.len()
        )));
    }
    if cuts.iter().any(|c| !c.is_finite()) {
        return Err(ClvError::InvalidParameter(
            "score cut points must be finite numbers".into(),
        ));
    }
    if cuts.windows(2).any(|w| w[1] < w[0]) {
        return Err(ClvError::InvalidParameter(
            "score cut points must be in non-decreasing order".into(),
        ));
    }
    Ok(())
}

fn score_unchecked(value: f64, cuts: &[f64], direction: ScoreDirection) -> u8 {
    // Number of cuts strictly below the value; cuts are sorted so partition_point is exact.
    let bin = 1 + cuts.partition_point(|&c| c < value);
    let score = match direction {
        ScoreDirection::HigherIsBetter => bin,
        ScoreDirection::LowerIsBetter => cuts.len() + 2 - bin,
    };
    score as u8
}

/// Cut points and scores of a whole partition at once, in input order (O(n log n)).
pub fn score_all(values: &[f64], n_bins: usize, direction: ScoreDirection) -> Result<Vec<u8>> {
    let cuts = quantile_cut_points(values, n_bins)?;
    let mut tick = Ticker::new();
    Ok(values
        .iter()
        .inspect(|_| tick.tick())
        .map(|&v| score_unchecked(v, &cuts, direction))
        .collect())
}

/// The classic named RFM segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RfmSegment {
    Champions,
    LoyalCustomers,
    PotentialLoyalists,
    NewCustomers,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLoseThem,
    Hibernating,
    Lost,
}

impl RfmSegment {
    /// Every segment, in the order of the mapping table.
    pub const ALL: [RfmSegment; 11] = [
        RfmSegment::Champions,
        RfmSegment::LoyalCustomers,
        RfmSegment::PotentialLoyalists,
        RfmSegment::NewCustomers,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLoseThem,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
    ];

    /// The label shown to SQL users.
    pub fn label(self) -> &'static str {
        match self {
            RfmSegment::Champions => "Champions",
            RfmSegment::LoyalCustomers => "Loyal Customers",
            RfmSegment::PotentialLoyalists => "Potential Loyalists",
            RfmSegment::NewCustomers => "New Customers",
            RfmSegment::Promising => "Promising",
            RfmSegment::NeedAttention => "Need Attention",
            RfmSegment::AboutToSleep => "About To Sleep",
            RfmSegment::AtRisk => "At Risk",
            RfmSegment::CantLoseThem => "Can't Lose Them",
            RfmSegment::Hibernating => "Hibernating",
            RfmSegment::Lost => "Lost",
        }
    }
}

impl fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

fn check_score(name: &str, s: i32) -> Result<()> {
    if (1..=5).contains(&s) {
        Ok(())
    } else {
        Err(ClvError::InvalidParameter(format!(
            "{name} score must be an integer from 1 to 5, got {s}"
        )))
    }
}

/// Named segment of a customer from their R, F and M scores (each 1..5, 5 = best; R must be scored
/// so that 5 = most recent).
///
/// The R x F grid is the one popularised by many RFM tutorials (a regex map over the "RF" string);
/// M only separates **Lost** from **Hibernating** in the worst corner, where a customer who also
/// spent little has nothing left to win back:
///
/// | R \ F | 1 | 2 | 3 | 4 | 5 |
/// |---|---|---|---|---|---|
/// | **1** | Lost if M <= 2, else Hibernating | Hibernating | At Risk | At Risk | Can't Lose Them |
/// | **2** | Hibernating | Hibernating | At Risk | At Risk | Can't Lose Them |
/// | **3** | About To Sleep | About To Sleep | Need Attention | Loyal Customers | Loyal Customers |
/// | **4** | Promising | Potential Loyalists | Potential Loyalists | Loyal Customers | Loyal Customers |
/// | **5** | New Customers | Potential Loyalists | Potential Loyalists | Champions | Champions |
///
/// Errors: any score outside 1..=5.
pub fn rfm_segment(r: i32, f: i32, m: i32) -> Result<RfmSegment> {
    check_score("recency (R)", r)?;
    check_score("frequency (F)", f)?;
    check_score("monetary (M)", m)?;
    use RfmSegment::*;
    Ok(match (r, f) {
        (1, 1) if m <= 2 => Lost,
        (1..=2, 1..=2) => Hibernating,
        (1..=2, 3..=4) => AtRisk,
        (1..=2, 5) => CantLoseThem,
        (3, 1..=2) => AboutToSleep,
        (3, 3) => NeedAttention,
        (3..=4, 4..=5) => LoyalCustomers,
        (4, 1) => Promising,
        (5, 1) => NewCustomers,
        (4..=5, 2..=3) => PotentialLoyalists,
        (5, 4..=5) => Champions,
        // Unreachable after validation, but a label beats a panic in a database backend.
        _ => Hibernating,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScoreDirection::*;

    #[test]
    fn distinct_values_fill_equal_bins() {
        // 1..=10 shuffled: cut points are the 2nd, 4th, 6th, 8th smallest.
        let v = [7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0];
        assert_eq!(rfm_cut_points(&v).unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
        let s = score_all(&v, 5, HigherIsBetter).unwrap();
        assert_eq!(s, vec![4, 2, 5, 1, 3, 5, 1, 4, 2, 3]);
        for score in 1..=5u8 {
            assert_eq!(s.iter().filter(|&&x| x == score).count(), 2);
        }
        // Smaller is better: the two smallest get 5.
        let s = score_all(&v, 5, LowerIsBetter).unwrap();
        assert_eq!(s, vec![2, 4, 1, 5, 3, 1, 5, 2, 4, 3]);
    }

    #[test]
    fn uneven_count_uses_ceiling_positions() {
        // n = 7: positions ceil(7j/5) = 2, 3, 5, 6.
        let v = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0];
        assert_eq!(rfm_cut_points(&v).unwrap(), vec![20.0, 30.0, 50.0, 60.0]);
        let s = score_all(&v, 5, HigherIsBetter).unwrap();
        assert_eq!(s, vec![1, 1, 2, 3, 3, 4, 5]);
    }

    #[test]
    fn ties_stay_together_in_the_lower_bin() {
        // Six zeros out of ten: cut points 0, 0, 0, 2 -> every zero scores 1, scores 2 and 3 unused.
        let v = [0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 5.0, 0.0];
        assert_eq!(rfm_cut_points(&v).unwrap(), vec![0.0, 0.0, 0.0, 2.0]);
        let s = score_all(&v, 5, HigherIsBetter).unwrap();
        assert_eq!(s, vec![1, 5, 1, 4, 1, 1, 4, 1, 5, 1]);
        // Same values in a different order give the same score per value.
        let mut rev = v;
        rev.reverse();
        let s_rev = score_all(&rev, 5, HigherIsBetter).unwrap();
        for (i, &x) in rev.iter().enumerate() {
            let j = v.iter().position(|&y| y == x).unwrap();
            assert_eq!(s_rev[i], s[j], "value {x}");
        }
    }

    #[test]
    fn equal_values_always_share_a_score() {
        // Deterministic pseudo-random data with many ties.
        let mut x: u64 = 12345;
        let v: Vec<f64> = (0..997)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % 23) as f64
            })
            .collect();
        let s = score_all(&v, 5, LowerIsBetter).unwrap();
        for i in 0..v.len() {
            for j in 0..v.len() {
                if v[i] == v[j] {
                    assert_eq!(s[i], s[j]);
                }
                // Scores are monotone: strictly smaller value never scores worse.
                if v[i] < v[j] {
                    assert!(s[i] >= s[j]);
                }
            }
        }
    }

    #[test]
    fn score_value_edges() {
        let cuts = [2.0, 4.0, 6.0, 8.0];
        assert_eq!(score_value(-100.0, &cuts, HigherIsBetter).unwrap(), 1);
        assert_eq!(score_value(2.0, &cuts, HigherIsBetter).unwrap(), 1);
        assert_eq!(score_value(2.5, &cuts, HigherIsBetter).unwrap(), 2);
        assert_eq!(score_value(8.0, &cuts, HigherIsBetter).unwrap(), 4);
        assert_eq!(score_value(8.01, &cuts, HigherIsBetter).unwrap(), 5);
        assert_eq!(score_value(8.01, &cuts, LowerIsBetter).unwrap(), 1);
        assert_eq!(score_value(0.0, &cuts, LowerIsBetter).unwrap(), 5);
        // Three bins from two cuts.
        assert_eq!(score_value(5.0, &[1.0, 9.0], HigherIsBetter).unwrap(), 2);
    }

    #[test]
    fn invalid_inputs_are_rejected() {
        assert!(matches!(
            rfm_cut_points(&[]),
            Err(ClvError::InvalidParameter(_))
        ));
        assert!(rfm_cut_points(&[1.0, f64::NAN]).is_err());
        assert!(quantile_cut_points(&[1.0], 1).is_err());
        assert!(score_value(f64::NAN, &[1.0], HigherIsBetter).is_err());
        assert!(score_value(1.0, &[], HigherIsBetter).is_err());
        assert!(score_value(1.0, &[3.0, 2.0], HigherIsBetter).is_err());
        assert!(score_value(1.0, &[f64::INFINITY], HigherIsBetter).is_err());
        // A single value: every cut is that value and it scores 1 (HigherIsBetter).
        assert_eq!(rfm_cut_points(&[4.0]).unwrap(), vec![4.0; 4]);
        assert_eq!(score_all(&[4.0], 5, HigherIsBetter).unwrap(), vec![1]);
    }

    #[test]
    fn every_grid_cell_maps_to_exactly_the_documented_segment() {
        use RfmSegment::*;
        // The documented table, row = R, column = F (Lost handled below).
        let table = [
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLoseThem],
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLoseThem],
            [
                AboutToSleep,
                AboutToSleep,
                NeedAttention,
                LoyalCustomers,
                LoyalCustomers,
            ],
            [
                Promising,
                PotentialLoyalists,
                PotentialLoyalists,
                LoyalCustomers,
                LoyalCustomers,
            ],
            [
                NewCustomers,
                PotentialLoyalists,
                PotentialLoyalists,
                Champions,
                Champions,
            ],
        ];
        let mut counts = std::collections::HashMap::new();
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let seg = rfm_segment(r, f, m).unwrap();
                    let expected = if r == 1 && f == 1 && m <= 2 {
                        Lost
                    } else {
                        table[(r - 1) as usize][(f - 1) as usize]
                    };
                    assert_eq!(seg, expected, "r={r} f={f} m={m}");
                    *counts.entry(seg).or_insert(0) += 1;
                }
            }
        }
        // Every segment is reachable; 125 cells in total.
        assert_eq!(counts.len(), RfmSegment::ALL.len());
        assert_eq!(counts.values().sum::<i32>(), 125);
        assert_eq!(counts[&Lost], 2);
        assert_eq!(counts[&Hibernating], 4 * 5 - 2);
        assert_eq!(counts[&Champions], 10);
        assert_eq!(counts[&NeedAttention], 5);
    }

    #[test]
    fn segment_labels_and_invalid_scores() {
        assert_eq!(rfm_segment(5, 5, 5).unwrap().label(), "Champions");
        assert_eq!(rfm_segment(1, 5, 1).unwrap().to_string(), "Can't Lose Them");
        assert_eq!(rfm_segment(1, 1, 3).unwrap().label(), "Hibernating");
        assert_eq!(rfm_segment(1, 1, 2).unwrap().label(), "Lost");
        for (r, f, m) in [
            (0, 3, 3),
            (3, 6, 3),
            (3, 3, 0),
            (-1, 1, 1),
            (3, 3, i32::MAX),
        ] {
            match rfm_segment(r, f, m) {
                Err(ClvError::InvalidParameter(msg)) => assert!(msg.contains("1 to 5"), "{msg}"),
                other => panic!("expected InvalidParameter for ({r},{f},{m}), got {other:?}"),
            }
        }
    }
}
