//! Value tiers: split customers by a value (CLV, spend...) into tiers holding given shares of the
//! customers (default: high = top 20%, medium = middle 50%, low = bottom 30%), or by fixed
//! thresholds.
//!
//! Tier 0 is always the **highest**-value tier; shares and labels are listed from the top down.
//!
//! # Counts, ties, NULLs
//!
//! With `n` (non-NULL) customers sorted by value, highest first, tiers `0..=j` together receive the
//! first `k(j) = round(n * (share(0) + ... + share(j)))` customers (halves rounded up), so with
//! distinct values and `n = 10, 100, 1000` the default tiers hold exactly 20/50/30%.
//!
//! Equal values always land in the same tier. A group of equal values that straddles a boundary
//! goes wholly to the **lower** tier: a tier (together with the tiers above it) never holds more
//! customers than its cumulative share allows, so "top 20%" is never over-promised, and a large
//! block of zero values ends up in the bottom tier instead of inflating the middle one. As a
//! consequence a tier can be smaller than its share, even empty (its threshold is then `+inf`).
//!
//! The tiers are expressed as thresholds `t(0) >= t(1) >= ...` (one fewer than the tiers): a value
//! `v` is in the first tier `j` with `v >= t(j)`, else in the last tier. `t(j)` is the smallest
//! value admitted into tiers `0..=j`. The same rule is the fixed-threshold form ([`FixedTiers`]).
//!
//! NULL (`None`) and NaN values get no tier (`None`) and are not counted in `n`; infinite values
//! are rejected. Everything is deterministic and independent of the input order.

use crate::error::{ClvError, Result};
use crate::interrupt::{self, Ticker};
use serde::{Deserialize, Serialize};

/// Default tier shares, top down: high 20%, medium 50%, low 30%.
pub const DEFAULT_TIER_SHARES: [f64; 3] = [0.2, 0.5, 0.3];
/// Default tier labels, top down.
pub const DEFAULT_TIER_LABELS: [&str; 3] = ["high", "medium", "low"];

/// Check that `shares` is a usable list of tier shares: at least one, each finite and > 0, summing
/// to 1 within 1e-9.
pub fn check_shares(shares: &[f64]) -> Result<()> {
    if shares.is_empty() {
        return Err(ClvError::InvalidParameter(
            "at least one tier share is required".into(),
        ));
    }
    if let Some(s) = shares.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(ClvError::InvalidParameter(format!(
            "tier shares must be positive numbers, got {s}"
        )));
    }
    let sum: f64 = shares.iter().sum();
    if (sum - 1.0).abs() > 1e-9 {
        return Err(ClvError::InvalidParameter(format!(
            "tier shares must sum to 1, got {sum}"
        )));
    }
    Ok(())
}

/// Tier shares with their labels, top tier first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierSpec {
    shares: Vec<f64>,
    labels: Vec<String>,
}

impl TierSpec {
    /// Validated shares and labels (one label per share, none empty, top tier first), e.g.
    /// `[0.05, 0.15, 0.5, 0.3]` with `["platinum", "gold", "silver", "bronze"]`.
    pub fn new(shares: Vec<f64>, labels: Vec<String>) -> Result<Self> {
        check_shares(&shares)?;
        check_labels(&labels, shares.len())?;
        Ok(TierSpec { shares, labels })
    }

    pub fn shares(&self) -> &[f64] {
        &self.shares
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Label of tier `tier` (0 = top), `None` when out of range.
    pub fn label(&self, tier: usize) -> Option<&str> {
        self.labels.get(tier).map(String::as_str)
    }
}

impl Default for TierSpec {
    fn default() -> Self {
        TierSpec {
            shares: DEFAULT_TIER_SHARES.to_vec(),
            labels: DEFAULT_TIER_LABELS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn check_labels(labels: &[String], n_tiers: usize) -> Result<()> {
    if labels.len() != n_tiers {
        return Err(ClvError::InvalidParameter(format!(
            "{} tier labels given for {} tiers: give one label per tier",
            labels.len(),
            n_tiers
        )));
    }
    if labels.iter().any(|l| l.trim().is_empty()) {
        return Err(ClvError::InvalidParameter(
            "tier labels must not be empty".into(),
        ));
    }
    Ok(())
}

fn check_thresholds(thresholds: &[f64]) -> Result<()> {
    if thresholds.iter().any(|t| t.is_nan()) {
        return Err(ClvError::InvalidParameter(
            "tier thresholds must not be NaN".into(),
        ));
    }
    if thresholds.windows(2).any(|w| w[1] > w[0]) {
        return Err(ClvError::InvalidParameter(
            "tier thresholds must be in descending order (the top tier's threshold first)".into(),
        ));
    }
    Ok(())
}

// Values sorted highest first -> thresholds, one per boundary between consecutive tiers.
fn thresholds_of_sorted_desc(sorted: &[f64], shares: &[f64]) -> Vec<f64> {
    let n = sorted.len();
    let mut cum = 0.0;
    shares[..shares.len() - 1]
        .iter()
        .map(|s| {
            cum += s;
            // The 1e-9 absorbs the rounding of the cumulative sum (0.2 + 0.5 is not exactly 0.7).
            let k = ((cum * n as f64 + 0.5 + 1e-9).floor() as usize).min(n);
            // Move the boundary up to the start of a straddling tie group (ties go down).
            let k = if k == 0 || k == n {
                k
            } else {
                let v = sorted[k];
                sorted.partition_point(|&x| x > v)
            };
            if k == 0 {
                f64::INFINITY
            } else {
                sorted[k - 1]
            }
        })
        .collect()
}

fn tier_unchecked(value: f64, thresholds: &[f64]) -> usize {
    // Thresholds are non-increasing: the tier is the number of thresholds strictly above the value.
    thresholds.partition_point(|&t| t > value)
}

/// Thresholds (see the module documentation) that split `values` into tiers of the given `shares`
/// (top tier first). NaN values are ignored like NULLs.
///
/// Errors: invalid shares, an infinite value, or no non-NaN value at all.
pub fn tier_cut_points(values: &[f64], shares: &[f64]) -> Result<Vec<f64>> {
    check_shares(shares)?;
    let mut sorted = collect_values(values.iter().copied())?;
    if sorted.is_empty() {
        return Err(ClvError::InvalidParameter(
            "cannot compute tier thresholds of an empty set of values".into(),
        ));
    }
    interrupt::sort_by(&mut sorted, |a, b| b.total_cmp(a));
    Ok(thresholds_of_sorted_desc(&sorted, shares))
}

fn collect_values(values: impl Iterator<Item = f64>) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    let mut tick = Ticker::new();
    for v in values.filter(|v| !v.is_nan()) {
        tick.tick();
        if v.is_infinite() {
            return Err(ClvError::InvalidParameter(format!(
                "values to put into tiers must be finite, got {v}"
            )));
        }
        out.push(v);
    }
    Ok(out)
}

/// Tier (0 = top) of `value` given thresholds from [`tier_cut_points`] or chosen by hand: the first
/// `j` with `value >= thresholds[j]`, else `thresholds.len()` (the bottom tier). NaN -> `None`.
///
/// Errors: thresholds that contain NaN or are not in descending order, or an infinite value.
pub fn assign_tier(value: f64, thresholds: &[f64]) -> Result<Option<usize>> {
    check_thresholds(thresholds)?;
    if value.is_nan() {
        return Ok(None);
    }
    if value.is_infinite() {
        return Err(ClvError::InvalidParameter(format!(
            "a value to put into a tier must be finite, got {value}"
        )));
    }
    Ok(Some(tier_unchecked(value, thresholds)))
}

/// Tiers of a whole partition at once (a window function), in input order, O(n log n).
/// `None` and NaN values get `None` and do not count towards the shares.
pub fn assign_tiers(values: &[Option<f64>], shares: &[f64]) -> Result<Vec<Option<usize>>> {
    check_shares(shares)?;
    let mut sorted = collect_values(values.iter().flatten().copied())?;
    if sorted.is_empty() {
        return Ok(vec![None; values.len()]);
    }
    interrupt::sort_by(&mut sorted, |a, b| b.total_cmp(a));
    let thresholds = thresholds_of_sorted_desc(&sorted, shares);
    let mut tick = Ticker::new();
    Ok(values
        .iter()
        .inspect(|_| tick.tick())
        .map(|v| match v {
            Some(x) if !x.is_nan() => Some(tier_unchecked(*x, &thresholds)),
            _ => None,
        })
        .collect())
}

/// The fixed-threshold form: tiers defined by value thresholds instead of shares, e.g. thresholds
/// `[1000, 100]` with labels `["gold", "silver", "bronze"]` puts 1000 and above in gold, 100 up to
/// (excluding) 1000 in silver, the rest in bronze.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedTiers {
    thresholds: Vec<f64>,
    labels: Vec<String>,
}

impl FixedTiers {
    /// Thresholds in descending order and one label more than thresholds.
    pub fn new(thresholds: Vec<f64>, labels: Vec<String>) -> Result<Self> {
        check_thresholds(&thresholds)?;
        check_labels(&labels, thresholds.len() + 1)?;
        Ok(FixedTiers { thresholds, labels })
    }

    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// Tier index of `value` (0 = top); NaN -> `None`; an infinite value is an error.
    pub fn tier(&self, value: f64) -> Result<Option<usize>> {
        assign_tier(value, &self.thresholds)
    }

    /// Tier label of `value`; NaN -> `None`.
    pub fn label_of(&self, value: f64) -> Result<Option<&str>> {
        Ok(self.tier(value)?.map(|t| self.labels[t].as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tiers: &[Option<usize>], n_tiers: usize) -> Vec<usize> {
        let mut c = vec![0; n_tiers];
        for t in tiers.iter().flatten() {
            c[*t] += 1;
        }
        c
    }

    #[test]
    fn default_shares_give_exact_counts_for_round_n() {
        for n in [10usize, 100, 1000] {
            // Distinct values in a scrambled order.
            let values: Vec<Option<f64>> = (0..n)
                .map(|i| Some(((i * 7919) % n) as f64 * 1.5 - 3.0))
                .collect();
            let tiers = assign_tiers(&values, &DEFAULT_TIER_SHARES).unwrap();
            assert_eq!(counts(&tiers, 3), vec![n / 5, n / 2, 3 * n / 10], "n = {n}");
            // The top tier holds exactly the largest values.
            for (v, t) in values.iter().zip(&tiers) {
                let rank_desc = values.iter().filter(|w| w.unwrap() > v.unwrap()).count();
                let expected = if rank_desc < n / 5 {
                    0
                } else if rank_desc < 7 * n / 10 {
                    1
                } else {
                    2
                };
                assert_eq!(t.unwrap(), expected);
            }
        }
    }

    #[test]
    fn thresholds_for_ten_values() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // Top 2 (10, 9), next 5 (8..4), last 3 (3..1).
        let t = tier_cut_points(&v, &DEFAULT_TIER_SHARES).unwrap();
        assert_eq!(t, vec![9.0, 4.0]);
        assert_eq!(assign_tier(9.0, &t).unwrap(), Some(0));
        assert_eq!(assign_tier(8.99, &t).unwrap(), Some(1));
        assert_eq!(assign_tier(4.0, &t).unwrap(), Some(1));
        assert_eq!(assign_tier(3.5, &t).unwrap(), Some(2));
        assert_eq!(assign_tier(f64::NAN, &t).unwrap(), None);
    }

    #[test]
    fn ties_never_split_and_go_to_the_lower_tier() {
        // Sorted desc: 9, 7, 7, 7, 5, 4, 0, 0, 0, 0. Top boundary (2) falls inside the 7s -> the
        // whole group goes to medium and the top tier holds just 9. Medium boundary (7) falls inside
        // the zeros -> all four zeros go to low, medium keeps 5 values.
        let v = [7.0, 0.0, 9.0, 0.0, 7.0, 0.0, 5.0, 7.0, 4.0, 0.0];
        let values: Vec<Option<f64>> = v.iter().map(|&x| Some(x)).collect();
        let tiers = assign_tiers(&values, &DEFAULT_TIER_SHARES).unwrap();
        let expected = [1, 2, 0, 2, 1, 2, 1, 1, 1, 2];
        assert_eq!(tiers, expected.iter().map(|&t| Some(t)).collect::<Vec<_>>());
        assert_eq!(
            tier_cut_points(&v, &DEFAULT_TIER_SHARES).unwrap(),
            vec![9.0, 4.0]
        );
    }

    #[test]
    fn all_equal_values_fall_in_the_bottom_tier() {
        let values = vec![Some(2.5); 8];
        let tiers = assign_tiers(&values, &DEFAULT_TIER_SHARES).unwrap();
        assert!(tiers.iter().all(|t| *t == Some(2)));
        let t = tier_cut_points(&[2.5; 8], &DEFAULT_TIER_SHARES).unwrap();
        assert_eq!(t, vec![f64::INFINITY, f64::INFINITY]);
    }

    #[test]
    fn nulls_and_nans_get_no_tier_and_are_not_counted() {
        let values = [
            Some(5.0),
            None,
            Some(1.0),
            Some(f64::NAN),
            Some(3.0),
            Some(4.0),
            Some(2.0),
        ];
        // Five real values, shares 0.2 / 0.8: the top tier holds round(1.0) = 1 value.
        let tiers = assign_tiers(&values, &[0.2, 0.8]).unwrap();
        assert_eq!(
            tiers,
            vec![Some(0), None, Some(1), None, Some(1), Some(1), Some(1)]
        );
        assert_eq!(
            assign_tiers(&[None, None], &[0.5, 0.5]).unwrap(),
            vec![None, None]
        );
    }

    #[test]
    fn custom_tiers_with_platinum_and_rounding() {
        let spec = TierSpec::new(
            vec![0.05, 0.15, 0.5, 0.3],
            ["platinum", "gold", "silver", "bronze"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        let values: Vec<Option<f64>> = (0..100).map(|i| Some(i as f64)).collect();
        let tiers = assign_tiers(&values, spec.shares()).unwrap();
        assert_eq!(counts(&tiers, 4), vec![5, 15, 50, 30]);
        assert_eq!(spec.label(tiers[99].unwrap()), Some("platinum"));
        assert_eq!(spec.label(tiers[0].unwrap()), Some("bronze"));
        // n = 7 with 20/50/30: cumulative 1.4 -> 1, 4.9 -> 5.
        let values: Vec<Option<f64>> = (0..7).map(|i| Some(i as f64)).collect();
        let tiers = assign_tiers(&values, &DEFAULT_TIER_SHARES).unwrap();
        assert_eq!(counts(&tiers, 3), vec![1, 4, 2]);
        // n = 2 with halves: 1.0 -> 1 each.
        let tiers = assign_tiers(&[Some(1.0), Some(2.0)], &[0.5, 0.5]).unwrap();
        assert_eq!(tiers, vec![Some(1), Some(0)]);
    }

    #[test]
    fn fixed_thresholds() {
        let fixed = FixedTiers::new(
            vec![1000.0, 100.0],
            ["gold", "silver", "bronze"].map(String::from).to_vec(),
        )
        .unwrap();
        assert_eq!(fixed.label_of(5000.0).unwrap(), Some("gold"));
        assert_eq!(fixed.label_of(1000.0).unwrap(), Some("gold"));
        assert_eq!(fixed.label_of(999.0).unwrap(), Some("silver"));
        assert_eq!(fixed.label_of(100.0).unwrap(), Some("silver"));
        assert_eq!(fixed.label_of(-1.0).unwrap(), Some("bronze"));
        assert_eq!(fixed.label_of(f64::NAN).unwrap(), None);
        assert!(fixed.tier(f64::INFINITY).is_err());
        assert!(FixedTiers::new(vec![100.0, 1000.0], vec!["a".into(); 3]).is_err());
        assert!(FixedTiers::new(vec![100.0], vec!["a".into(); 3]).is_err());
    }

    #[test]
    fn invalid_shares_and_labels() {
        for shares in [
            vec![],
            vec![0.5, 0.4],
            vec![0.5, 0.5, 0.0],
            vec![1.2, -0.2],
            vec![f64::NAN, 1.0],
        ] {
            assert!(
                matches!(check_shares(&shares), Err(ClvError::InvalidParameter(_))),
                "{shares:?}"
            );
            assert!(assign_tiers(&[Some(1.0)], &shares).is_err());
        }
        // Within 1e-9 of 1 is accepted.
        assert!(check_shares(&[0.3, 0.3, 0.4 + 5e-10]).is_ok());
        assert!(TierSpec::new(vec![0.5, 0.5], vec!["a".into()]).is_err());
        assert!(TierSpec::new(vec![0.5, 0.5], vec!["a".into(), " ".into()]).is_err());
        assert!(tier_cut_points(&[], &DEFAULT_TIER_SHARES).is_err());
        assert!(tier_cut_points(&[1.0, f64::INFINITY], &DEFAULT_TIER_SHARES).is_err());
        assert!(assign_tier(1.0, &[1.0, f64::NAN]).is_err());
        assert!(assign_tier(1.0, &[1.0, 2.0]).is_err());
        assert_eq!(TierSpec::default().label(0), Some("high"));
        assert_eq!(TierSpec::default().label(3), None);
    }
}
