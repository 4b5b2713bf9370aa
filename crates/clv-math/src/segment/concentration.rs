//! The concentration of value: customers ranked by predicted CLV, highest first, against the
//! running share of total CLV they hold (the "80/20" or cumulative-gains curve), and the Gini
//! coefficient of the same values. Sorting and the passes over the values check for interrupts
//! (`crate::interrupt`), so a call over any array stops at `statement_timeout`.

use crate::error::{ClvError, Result};
use crate::interrupt::{sort_unstable_by, Ticker};

fn invalid(msg: String) -> ClvError {
    ClvError::InvalidParameter(msg)
}

/// The concentration curve of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Concentration {
    /// (share of customers in %, share of total value in %), from (0, 0) to (100, 100), customers
    /// taken highest value first. At most `max_points` + 1 points, each exact at its rank.
    pub points: Vec<(f64, f64)>,
    /// Gini coefficient in [0, 1): 0 when everyone has the same value. Sen's form for a sample,
    /// G = 2 sum_i i x_(i) / (n sum x) - (n + 1) / n with x ascending. None when the total is 0.
    pub gini: Option<f64>,
    pub customers: usize,
    pub total: f64,
}

impl Concentration {
    /// The share of total value (in %) held by the top `customer_share` (in [0, 1]) of
    /// customers, interpolated linearly between ranks.
    pub fn value_share_at(&self, customer_share: f64) -> f64 {
        let x = 100.0 * customer_share.clamp(0.0, 1.0);
        let i = self.points.partition_point(|p| p.0 < x);
        if i == 0 {
            return self.points[0].1;
        }
        if i == self.points.len() {
            return self.points[i - 1].1;
        }
        let (a, b) = (self.points[i - 1], self.points[i]);
        if b.0 == a.0 {
            b.1
        } else {
            a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)
        }
    }
}

/// The concentration curve of `values` (any order; each finite and >= 0).
pub fn concentration(values: &[f64], max_points: usize) -> Result<Concentration> {
    if values.is_empty() {
        return Err(invalid("no values to rank".into()));
    }
    let mut ticker = Ticker::new();
    for &v in values {
        ticker.tick();
        if !v.is_finite() || v < 0.0 {
            return Err(invalid(format!(
                "values must be finite and >= 0 to rank their shares, got {v}"
            )));
        }
    }
    let mut sorted = values.to_vec();
    sort_unstable_by(&mut sorted, |a, b| b.total_cmp(a));
    let n = sorted.len();
    let total: f64 = sorted.iter().sum();
    let step = n.div_ceil(max_points.max(1));
    let mut points = Vec::with_capacity(n / step + 2);
    points.push((0.0, 0.0));
    let mut running = 0.0;
    for (i, v) in sorted.iter().enumerate() {
        ticker.tick();
        running += v;
        let rank = i + 1;
        if rank % step == 0 || rank == n {
            let share = if total > 0.0 {
                100.0 * running / total
            } else {
                100.0 * rank as f64 / n as f64
            };
            points.push((100.0 * rank as f64 / n as f64, share.min(100.0)));
        }
    }
    // Ascending order for Gini: i runs 1..n over the values from the smallest.
    let gini = (total > 0.0).then(|| {
        let weighted: f64 = sorted
            .iter()
            .rev()
            .enumerate()
            .map(|(i, v)| (i + 1) as f64 * v)
            .sum();
        let nf = n as f64;
        (2.0 * weighted / (nf * total) - (nf + 1.0) / nf).max(0.0)
    });
    Ok(Concentration {
        points,
        gini,
        customers: n,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_lie_on_the_diagonal() {
        let c = concentration(&[5.0; 10], 1000).unwrap();
        assert_eq!(c.points.len(), 11);
        for &(x, y) in &c.points {
            assert!((x - y).abs() < 1e-9);
        }
        assert!(c.gini.unwrap().abs() < 1e-12);
        assert!((c.value_share_at(0.2) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn one_customer_with_everything() {
        // Gini of (0, ..., 0, 1) over n is (n - 1) / n.
        let mut v = vec![0.0; 9];
        v.push(3.0);
        let c = concentration(&v, 1000).unwrap();
        assert!((c.gini.unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(c.points[1], (10.0, 100.0));
        assert_eq!(c.value_share_at(0.05), 50.0);
    }

    #[test]
    fn a_known_gini_and_downsampling() {
        // 1, 2, 3, 4: G = 2 (1 + 4 + 9 + 16) / (4 * 10) - 5 / 4 = 0.25.
        let c = concentration(&[3.0, 1.0, 4.0, 2.0], 1000).unwrap();
        assert!((c.gini.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(c.points[1], (25.0, 40.0));
        assert_eq!(c.points[2], (50.0, 70.0));
        let many: Vec<f64> = (0..100_000).map(|i| (i % 97) as f64).collect();
        let d = concentration(&many, 1000).unwrap();
        assert!(d.points.len() <= 1001);
        assert_eq!(*d.points.last().unwrap(), (100.0, 100.0));
    }

    #[test]
    fn refusals_and_zero_totals() {
        assert!(concentration(&[], 10).is_err());
        assert!(concentration(&[1.0, -1.0], 10).is_err());
        assert!(concentration(&[f64::NAN], 10).is_err());
        let z = concentration(&[0.0, 0.0], 10).unwrap();
        assert_eq!(z.gini, None);
        assert_eq!(z.total, 0.0);
    }
}
