//! Validation metrics of predictions against what happened.
//!
//! Regression (e.g. holdout spend): MAE, RMSE, R^2 (1 - SSE / SST, scikit-learn's `r2_score`),
//! normalized Gini (the Gini of the actual values ordered by prediction over that of the perfect
//! order; the Kaggle / insurance "normalized Gini"), the share of the actual total captured by the
//! predicted top 20%, and the 20/50/30 tier hit rates (of the customers in an actual tier, the share
//! the predictions put in the same tier). Rankings break ties by position, after sorting by value.
//!
//! Classification (P(label = true)): AUC (Mann-Whitney, ties count one half), log-loss (natural
//! log, probabilities clipped to [1e-15, 1 - 1e-15] as scikit-learn does), Brier score.

use crate::{invalid, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub n: u64,
    pub mae: f64,
    pub rmse: f64,
    pub r2: Option<f64>,
    pub normalized_gini: Option<f64>,
    pub top_20_capture: Option<f64>,
    pub tier_hit_rate_top_20: Option<f64>,
    pub tier_hit_rate_middle_50: Option<f64>,
    pub tier_hit_rate_bottom_30: Option<f64>,
    pub mean_predicted: f64,
    pub mean_actual: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub n: u64,
    pub auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub mean_predicted: f64,
    pub share_true: f64,
}

fn check(pred: &[f64], actual: &[f64]) -> Result<()> {
    if pred.len() != actual.len() {
        return invalid("predictions and actual values differ in number");
    }
    if pred.is_empty() {
        return invalid("metrics need at least one pair");
    }
    if pred.iter().chain(actual).any(|v| !v.is_finite()) {
        return invalid("predictions and actual values must be finite numbers");
    }
    Ok(())
}

/// Indices ordered by `key` descending, ties by position.
fn order_desc(key: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..key.len()).collect();
    idx.sort_by(|&a, &b| key[b].total_cmp(&key[a]).then(a.cmp(&b)));
    idx
}

fn gini(actual: &[f64], order: &[usize]) -> Option<f64> {
    let total: f64 = actual.iter().sum();
    if total == 0.0 {
        return None;
    }
    let n = actual.len() as f64;
    let mut cum = 0.0;
    let mut sum = 0.0;
    for &i in order {
        cum += actual[i];
        sum += cum / total;
    }
    Some((sum - (n + 1.0) / 2.0) / n)
}

/// Tier of each value: 0 = top 20%, 1 = next 50%, 2 = bottom 30% (cuts after round(0.2 n) and
/// round(0.7 n) ranks). Equal values share a tier: a tie group straddling a cut goes wholly to the
/// lower tier, as `clv_segment` does (holdout spend is mostly zeros).
fn tiers(key: &[f64]) -> Vec<u8> {
    let order = order_desc(key);
    let n = order.len();
    let (a, b) = (
        ((n as f64) * 0.2).round() as usize,
        ((n as f64) * 0.7).round() as usize,
    );
    let tier_of = |rank: usize| {
        if rank < a {
            0
        } else if rank < b {
            1
        } else {
            2
        }
    };
    let mut t = vec![0u8; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && key[order[j + 1]] == key[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            t[k] = tier_of(j);
        }
        i = j + 1;
    }
    t
}

pub fn regression(pred: &[f64], actual: &[f64]) -> Result<RegressionMetrics> {
    check(pred, actual)?;
    let n = pred.len() as f64;
    let mae = pred
        .iter()
        .zip(actual)
        .map(|(p, a)| (p - a).abs())
        .sum::<f64>()
        / n;
    let sse: f64 = pred.iter().zip(actual).map(|(p, a)| (p - a).powi(2)).sum();
    let mean_actual = actual.iter().sum::<f64>() / n;
    let sst: f64 = actual.iter().map(|a| (a - mean_actual).powi(2)).sum();
    let by_pred = order_desc(pred);
    let by_actual = order_desc(actual);
    let normalized_gini = match (gini(actual, &by_pred), gini(actual, &by_actual)) {
        (Some(g), Some(best)) if best != 0.0 => Some(g / best),
        _ => None,
    };
    let total: f64 = actual.iter().sum();
    let k = ((n * 0.2).round() as usize).max(1);
    let top_20_capture =
        (total != 0.0).then(|| by_pred[..k].iter().map(|&i| actual[i]).sum::<f64>() / total);
    let (tp, ta) = (tiers(pred), tiers(actual));
    let hit = |tier: u8| {
        let members: Vec<usize> = (0..ta.len()).filter(|&i| ta[i] == tier).collect();
        (!members.is_empty()).then(|| {
            members.iter().filter(|&&i| tp[i] == tier).count() as f64 / members.len() as f64
        })
    };
    Ok(RegressionMetrics {
        n: pred.len() as u64,
        mae,
        rmse: (sse / n).sqrt(),
        r2: (sst > 0.0).then(|| 1.0 - sse / sst),
        normalized_gini,
        top_20_capture,
        tier_hit_rate_top_20: hit(0),
        tier_hit_rate_middle_50: hit(1),
        tier_hit_rate_bottom_30: hit(2),
        mean_predicted: pred.iter().sum::<f64>() / n,
        mean_actual,
    })
}

pub fn classification(prob: &[f64], label: &[bool]) -> Result<ClassificationMetrics> {
    let actual: Vec<f64> = label.iter().map(|&b| f64::from(u8::from(b))).collect();
    check(prob, &actual)?;
    if prob.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return invalid("probabilities must be between 0 and 1");
    }
    let n = prob.len() as f64;
    let eps = 1e-15;
    let log_loss = -prob
        .iter()
        .zip(label)
        .map(|(&p, &y)| {
            let p = p.clamp(eps, 1.0 - eps);
            if y {
                p.ln()
            } else {
                (1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / n;
    let brier = prob
        .iter()
        .zip(&actual)
        .map(|(p, a)| (p - a).powi(2))
        .sum::<f64>()
        / n;
    // AUC = (sum of the positives' mid-ranks - n1 (n1 + 1) / 2) / (n1 n0).
    let mut idx: Vec<usize> = (0..prob.len()).collect();
    idx.sort_by(|&a, &b| prob[a].total_cmp(&prob[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && prob[idx[j + 1]] == prob[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| label[k]).count() as f64 * mid;
        i = j + 1;
    }
    let n1 = label.iter().filter(|&&b| b).count() as f64;
    let n0 = n - n1;
    let auc = (n1 > 0.0 && n0 > 0.0).then(|| (rank_sum - n1 * (n1 + 1.0) / 2.0) / (n1 * n0));
    Ok(ClassificationMetrics {
        n: prob.len() as u64,
        auc,
        log_loss,
        brier,
        mean_predicted: prob.iter().sum::<f64>() / n,
        share_true: n1 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_hand_example() {
        let pred = [3.0, 1.0, 2.0, 0.0, 4.0];
        let actual = [2.0, 0.0, 3.0, 1.0, 4.0];
        let m = regression(&pred, &actual).unwrap();
        assert_eq!(m.mae, 0.8);
        assert!((m.rmse - (4.0f64 / 5.0).sqrt()).abs() < 1e-15);
        assert!((m.r2.unwrap() - (1.0 - 4.0 / 10.0)).abs() < 1e-15);
        // Ordered by prediction: actual 4, 2, 3, 0, 1 -> cumulative shares .4 .6 .9 .9 1 = 3.8;
        // perfect: 4, 3, 2, 1, 0 -> .4 .7 .9 1 1 = 4.0; gini = (s - 3) / 5.
        assert!((m.normalized_gini.unwrap() - 0.8 / 1.0).abs() < 1e-12);
        assert_eq!(m.top_20_capture, Some(0.4));
        assert_eq!(m.tier_hit_rate_top_20, Some(1.0));
        // The actual middle tier is rows 2, 0 and 3; the predictions put rows 0 and 2 there.
        assert!((m.tier_hit_rate_middle_50.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn classification_hand_example() {
        let p = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        let m = classification(&p, &y).unwrap();
        assert_eq!(m.auc, Some(0.75)); // scikit-learn's roc_auc_score example
        let ll = -((0.9f64).ln() + (0.6f64).ln() + (0.35f64).ln() + (0.8f64).ln()) / 4.0;
        assert!((m.log_loss - ll).abs() < 1e-15);
        assert!((m.brier - (0.01 + 0.16 + 0.4225 + 0.04) / 4.0).abs() < 1e-15);
        // Ties count one half.
        assert_eq!(
            classification(&[0.5, 0.5], &[false, true]).unwrap().auc,
            Some(0.5)
        );
        assert!(classification(&[1.5], &[true]).is_err());
        assert!(regression(&[1.0], &[f64::NAN]).is_err());
        // Ties share a tier: 6 of 10 actual values are 0, the zero group straddles the 70% cut and
        // goes wholly to the bottom tier, so the middle tier holds ranks 3 and 4 only.
        let actual = [9.0, 8.0, 7.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let pred = [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5];
        let m = regression(&pred, &actual).unwrap();
        assert_eq!(m.tier_hit_rate_top_20, Some(1.0));
        assert_eq!(m.tier_hit_rate_middle_50, Some(1.0));
        assert_eq!(m.tier_hit_rate_bottom_30, Some(3.0 / 6.0));
    }
}
