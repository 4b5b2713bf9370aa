//! The numbers behind two of lifetimes' plots, computed exactly instead of by simulation:
//! customers by number of repeat purchases against the model (`plot_period_transactions`), and
//! one customer's P(alive) through their history (`plot_history_alive`).

use super::PurchaseModel;
use crate::error::{ClvError, Result};
use crate::interrupt::{check, sort_unstable_by, Ticker};

/// Customers by repeat purchases 0, 1, ..., `max_frequency` - 1 and ">= max_frequency": the actual
/// counts of `frequency`, and the counts the model expects for customers of the ages `tenure`,
/// E[count_k] = sum_i P(X(T_i) = k) (the last bucket 1 - sum of the others). lifetimes draws the
/// model's bars from one simulated population of the same ages; this is the expectation of that
/// simulation. P(X(t) = k) is each model's `prob_purchases` (BG/NBD: Fader, Hardie and Lee 2005,
/// eq. 8). Each customer's frequency must be a whole number >= 0 and tenure finite >= 0. Checks
/// for interrupts every 2^14 customers, in the sort, and once per distinct tenure.
pub fn period_transactions(
    model: &dyn PurchaseModel,
    frequency: &[f64],
    tenure: &[f64],
    max_frequency: u32,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if max_frequency == 0 {
        return Err(ClvError::InvalidParameter(
            "max_frequency must be >= 1".into(),
        ));
    }
    if frequency.len() != tenure.len() {
        return Err(ClvError::InvalidParameter(format!(
            "frequency and tenure must have the same length, got {} and {}",
            frequency.len(),
            tenure.len()
        )));
    }
    let buckets = max_frequency as usize + 1;
    let mut actual = vec![0.0; buckets];
    let mut ticker = Ticker::new();
    for &f in frequency {
        ticker.tick();
        if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0) {
            return Err(ClvError::InvalidParameter(format!(
                "frequency must be a whole number >= 0, got {f}"
            )));
        }
        actual[(f as usize).min(buckets - 1)] += 1.0;
    }
    let mut ages = tenure.to_vec();
    for &t in &ages {
        ticker.tick();
        if !(t.is_finite() && t >= 0.0) {
            return Err(ClvError::InvalidParameter(format!(
                "tenure must be a finite number >= 0, got {t}"
            )));
        }
    }
    // Customers of the same age share one distribution: a few thousand ages in days.
    sort_unstable_by(&mut ages, f64::total_cmp);
    let mut expected = vec![0.0; buckets];
    let mut i = 0;
    while i < ages.len() {
        check();
        let t = ages[i];
        let same = ages[i..].partition_point(|&u| u == t) as f64;
        let mut below = 0.0;
        for (k, e) in expected.iter_mut().enumerate().take(buckets - 1) {
            let p = model.prob_purchases(k as u32, t)?;
            below += p;
            *e += same * p;
        }
        expected[buckets - 1] += same * (1.0 - below).max(0.0);
        i += same as usize;
    }
    Ok((actual, expected))
}

/// One customer's P(alive) through their history, in the pipeline's semantics (purchases on the
/// same calendar day are one; times in units of `unit_days` days): at day d, frequency = purchase
/// days up to d minus 1, recency = last purchase day up to d - first day, T = d - first day
/// (lifetimes' `calculate_alive_path` with freq 'D'). `purchase_days` sorted ascending and
/// distinct, the last <= `end_day`. Evaluated at `steps` + 1 evenly spaced days plus each
/// purchase day and the day before it; returns (T in units, P(alive)) in time order.
pub fn alive_path(
    p_alive: &mut dyn FnMut(f64, f64, f64) -> Result<f64>,
    purchase_days: &[i32],
    end_day: i32,
    unit_days: f64,
    steps: u32,
) -> Result<Vec<(f64, f64)>> {
    let (&first, &last) = match (purchase_days.first(), purchase_days.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => {
            return Err(ClvError::InvalidParameter(
                "a customer's history needs a first purchase".into(),
            ))
        }
    };
    if last > end_day {
        return Err(ClvError::InvalidParameter(
            "a purchase is after the observation end".into(),
        ));
    }
    if purchase_days.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ClvError::InvalidParameter(
            "purchase days must be sorted and distinct".into(),
        ));
    }
    let span = (end_day - first) as i64;
    let steps = steps.max(1) as i64;
    let mut days: Vec<i32> = (0..=steps)
        .map(|i| first + (span * i / steps) as i32)
        .chain(purchase_days.iter().flat_map(|&d| [d - 1, d]))
        .filter(|&d| d >= first && d <= end_day)
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut seen = 0usize;
    days.into_iter()
        .map(|d| {
            while seen < purchase_days.len() && purchase_days[seen] <= d {
                seen += 1;
            }
            let f = (seen - 1) as f64;
            let r = (purchase_days[seen - 1] - first) as f64 / unit_days;
            let t = (d - first) as f64 / unit_days;
            Ok((t, p_alive(f, r, t)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::BgNbdParams;

    // lifetimes' BG/NBD fit on CDNOW (weeks): r, alpha, a, b.
    fn cdnow() -> BgNbdParams {
        BgNbdParams {
            r: 0.242593,
            alpha: 4.413597,
            a: 0.792920,
            b: 2.425891,
        }
    }

    #[test]
    fn expected_counts_sum_to_the_customers_and_match_a_customer_by_customer_sum() {
        let m = cdnow();
        let frequency = [0.0, 0.0, 1.0, 3.0, 9.0, 0.0, 2.0];
        let tenure = [38.0, 38.0, 20.5, 38.0, 11.0, 20.5, 30.0];
        let (actual, expected) = period_transactions(&m, &frequency, &tenure, 4).unwrap();
        assert_eq!(actual, vec![3.0, 1.0, 1.0, 1.0, 1.0]);
        assert!((expected.iter().sum::<f64>() - 7.0).abs() < 1e-12);
        for k in 0..4u32 {
            let naive: f64 = tenure
                .iter()
                .map(|&t| m.prob_purchases(k, t).unwrap())
                .sum();
            assert!((expected[k as usize] - naive).abs() < 1e-12, "k = {k}");
        }
        // Fader, Hardie and Lee (2005) eq. 8 at x = 0 is (alpha / (alpha + t))^r: the model's
        // zero bucket for three customers aged 38 weeks, two of 20.5 and one each of 11 and 30.
        let p0 = |t: f64| (m.alpha / (m.alpha + t)).powf(m.r);
        let zero = 3.0 * p0(38.0) + 2.0 * p0(20.5) + p0(11.0) + p0(30.0);
        assert!(
            (expected[0] - zero).abs() < 1e-12,
            "{} vs {zero}",
            expected[0]
        );
    }

    #[test]
    fn bad_customers_are_refused() {
        let m = cdnow();
        assert!(period_transactions(&m, &[1.5], &[3.0], 7).is_err());
        assert!(period_transactions(&m, &[-1.0], &[3.0], 7).is_err());
        assert!(period_transactions(&m, &[1.0], &[f64::NAN], 7).is_err());
        assert!(period_transactions(&m, &[1.0, 2.0], &[3.0], 7).is_err());
        assert!(period_transactions(&m, &[1.0], &[3.0], 0).is_err());
    }

    #[test]
    fn the_alive_path_follows_the_history() {
        let m = cdnow();
        // Purchases on days 0, 14 and 35 (weeks 0, 2 and 5), observed until day 70 (week 10).
        let days = [0, 14, 35];
        let path = alive_path(&mut |f, r, t| m.p_alive(f, r, t), &days, 70, 7.0, 10).unwrap();
        // Evaluation days: 0, 7, ..., 70 and 13, 14, 34, 35.
        assert_eq!(path.len(), 11 + 4 - 2);
        assert!(path.windows(2).all(|w| w[0].0 < w[1].0));
        // Before the first repeat purchase a customer is alive for sure (frequency 0).
        assert_eq!(path[0], (0.0, 1.0));
        let at = |t: f64| path.iter().find(|p| (p.0 - t).abs() < 1e-12).unwrap().1;
        assert_eq!(at(13.0 / 7.0), 1.0);
        // At the purchase on day 14: frequency 1, recency = T = 2 weeks.
        assert_eq!(at(2.0), m.p_alive(1.0, 2.0, 2.0).unwrap());
        // The day before the third purchase: frequency 1, recency 2, T = 34 / 7.
        assert_eq!(at(34.0 / 7.0), m.p_alive(1.0, 2.0, 34.0 / 7.0).unwrap());
        // At the end: the customer's RFM summary (frequency 2, recency 5, T 10).
        assert_eq!(
            path.last().unwrap(),
            &(10.0, m.p_alive(2.0, 5.0, 10.0).unwrap())
        );
        // P(alive) falls between purchases.
        assert!(at(34.0 / 7.0) < at(3.0));
    }

    #[test]
    fn alive_path_refusals() {
        let m = cdnow();
        let mut f = |x, r, t| m.p_alive(x, r, t);
        assert!(alive_path(&mut f, &[], 10, 7.0, 10).is_err());
        assert!(alive_path(&mut f, &[0, 20], 10, 7.0, 10).is_err());
        assert!(alive_path(&mut f, &[5, 5], 10, 7.0, 10).is_err());
        // One purchase on the last day: a single point, alive.
        assert_eq!(
            alive_path(&mut f, &[10], 10, 7.0, 10).unwrap(),
            vec![(0.0, 1.0)]
        );
    }
}
