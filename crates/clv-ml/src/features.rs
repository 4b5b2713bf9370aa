//! Per-customer features as of a calibration end and labels from the holdout window that follows,
//! computed from one customer's transactions in one pass (docs/ml.md has the table).
//!
//! Purchases are days, as in lifetimes' `summary_data_from_transaction_data(freq='D')`: all
//! transactions of a day are one purchase whose spend is their sum. Durations are in days, amounts
//! in the currency of the input. A customer whose first purchase is after the calibration end has
//! no features (lifetimes' calibration/holdout split leaves such customers out too).

use crate::{invalid, Result};

/// Names of the feature vector's components, in order.
pub const FEATURE_NAMES: [&str; 18] = [
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "average_order_value",
    "total_spend",
    "first_purchase_spend",
    "interpurchase_mean_days",
    "interpurchase_cv",
    "purchases_last_30_days",
    "spend_last_30_days",
    "purchases_last_90_days",
    "spend_last_90_days",
    "purchases_last_180_days",
    "spend_last_180_days",
    "purchase_trend_90_days",
    "spend_trend_90_days",
];

pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// One customer's transactions (day number, amount) and the window ends, as an aggregate collects
/// them. Days are any consistent day numbering (PostgreSQL's days since 2000-01-01).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub calibration_end: Option<i32>,
    pub holdout_end: Option<i32>,
    pub rows: Vec<(i32, f64)>,
}

/// The labels of a customer: what happened in the holdout window (calibration end, holdout end].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labels {
    pub holdout_spend: f64,
    pub holdout_purchases: i64,
    pub churned: bool,
}

impl History {
    /// Set the window ends; they must be the same on every row of a customer.
    pub fn set_window(&mut self, calibration_end: i32, holdout_end: i32) -> Result<()> {
        if holdout_end < calibration_end {
            return invalid(format!(
                "holdout_end must not be before calibration_end (got {holdout_end} < {calibration_end} in days)"
            ));
        }
        match (self.calibration_end, self.holdout_end) {
            (None, _) => {
                self.calibration_end = Some(calibration_end);
                self.holdout_end = Some(holdout_end);
                Ok(())
            }
            (Some(c), Some(h)) if c == calibration_end && h == holdout_end => Ok(()),
            _ => invalid(
                "calibration_end and holdout_end must be the same on every row of a customer",
            ),
        }
    }

    /// Add a transaction; those after the holdout end are not kept.
    pub fn push(&mut self, day: i32, amount: f64) -> Result<()> {
        if !amount.is_finite() {
            return invalid(format!("amount must be a finite number, got {amount}"));
        }
        if self.holdout_end.is_some_and(|h| day <= h) {
            self.rows.push((day, amount));
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &History) -> Result<()> {
        if let (Some(c), Some(h)) = (other.calibration_end, other.holdout_end) {
            self.set_window(c, h)?;
        }
        self.rows.extend_from_slice(&other.rows);
        Ok(())
    }

    /// Purchase days in order with their summed spend. Rows are sorted by day and amount first, so
    /// the sums (and so every feature) do not depend on the order rows arrived in.
    fn purchases(&self) -> Vec<(i32, f64)> {
        let mut rows = self.rows.clone();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut out: Vec<(i32, f64)> = Vec::with_capacity(rows.len());
        for (d, a) in rows {
            match out.last_mut() {
                Some(last) if last.0 == d => last.1 += a,
                _ => out.push((d, a)),
            }
        }
        out
    }

    /// The feature vector as of the calibration end (see [`FEATURE_NAMES`]); `None` when the
    /// customer has no purchase on or before it.
    pub fn features(&self) -> Option<[f64; N_FEATURES]> {
        let c = self.calibration_end?;
        let all = self.purchases();
        let cal: Vec<(i32, f64)> = all.into_iter().filter(|p| p.0 <= c).collect();
        let (&(d1, s1), &(dn, _)) = (cal.first()?, cal.last()?);
        let n = cal.len();
        let total: f64 = cal.iter().map(|p| p.1).sum();
        let frequency = (n - 1) as f64;
        let recency = f64::from(dn - d1);
        let monetary_value = if n > 1 {
            cal[1..].iter().map(|p| p.1).sum::<f64>() / frequency
        } else {
            0.0
        };
        let gaps: Vec<f64> = cal.windows(2).map(|w| f64::from(w[1].0 - w[0].0)).collect();
        let gap_mean = if gaps.is_empty() {
            0.0
        } else {
            gaps.iter().sum::<f64>() / gaps.len() as f64
        };
        let gap_cv = if gaps.len() >= 2 && gap_mean > 0.0 {
            let var = gaps.iter().map(|g| (g - gap_mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            var.sqrt() / gap_mean
        } else {
            0.0
        };
        // Purchases in the `days` days ending at c (c included), and in the `days` before those.
        let window = |from_excl: i32, to_incl: i32| {
            cal.iter()
                .filter(|p| p.0 > from_excl && p.0 <= to_incl)
                .fold((0.0, 0.0), |(k, s), p| (k + 1.0, s + p.1))
        };
        let (p30, s30) = window(c - 30, c);
        let (p90, s90) = window(c - 90, c);
        let (p180, s180) = window(c - 180, c);
        let (p90_before, s90_before) = window(c - 180, c - 90);
        Some([
            frequency,
            recency,
            f64::from(c - d1),
            monetary_value,
            f64::from(c - dn),
            total / n as f64,
            total,
            s1,
            gap_mean,
            gap_cv,
            p30,
            s30,
            p90,
            s90,
            p180,
            s180,
            p90 - p90_before,
            s90 - s90_before,
        ])
    }

    /// The holdout labels; `None` when the customer has no purchase on or before the calibration
    /// end (no features to pair them with).
    pub fn labels(&self) -> Option<Labels> {
        let (c, h) = (self.calibration_end?, self.holdout_end?);
        let all = self.purchases();
        if all.first().is_none_or(|p| p.0 > c) {
            return None;
        }
        let holdout: Vec<&(i32, f64)> = all.iter().filter(|p| p.0 > c && p.0 <= h).collect();
        Some(Labels {
            holdout_spend: holdout.iter().map(|p| p.1).sum(),
            holdout_purchases: holdout.len() as i64,
            churned: holdout.is_empty(),
        })
    }

    // Layout: version u8 = 1, has_window u8, calibration_end i32, holdout_end i32, count u64,
    // then count x (day i32, amount f64).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.rows.len() * 12);
        out.push(1);
        out.push(self.calibration_end.is_some() as u8);
        out.extend_from_slice(&self.calibration_end.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.holdout_end.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        for (d, a) in &self.rows {
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&a.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<History> {
        let corrupt = || {
            Err(clv_math::ClvError::Corrupt(
                "corrupt customer-features state".into(),
            ))
        };
        if b.len() < 18 || b[0] != 1 {
            return corrupt();
        }
        let i32_at = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let n = u64::from_le_bytes(b[10..18].try_into().expect("8 bytes")) as usize;
        if n.checked_mul(12).and_then(|x| x.checked_add(18)) != Some(b.len()) {
            return corrupt();
        }
        let window = b[1] == 1;
        let rows = (0..n)
            .map(|k| {
                let at = 18 + 12 * k;
                let a = f64::from_le_bytes(b[at + 4..at + 12].try_into().expect("8 bytes"));
                (i32_at(at), a)
            })
            .collect();
        Ok(History {
            calibration_end: window.then(|| i32_at(2)),
            holdout_end: window.then(|| i32_at(6)),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(c: i32, h: i32, rows: &[(i32, f64)]) -> History {
        let mut s = History::default();
        s.set_window(c, h).unwrap();
        for &(d, a) in rows {
            s.push(d, a).unwrap();
        }
        s
    }

    #[test]
    fn hand_example() {
        // Calibration end day 200, holdout end day 300. Purchases on days 10 (two rows: 5 + 15),
        // 50, 150, 190 (calibration) and 250 (holdout); day 400 is after the holdout: ignored.
        let s = history(
            200,
            300,
            &[
                (190, 40.0),
                (10, 5.0),
                (50, 30.0),
                (10, 15.0),
                (150, 20.0),
                (250, 7.5),
                (400, 99.0),
            ],
        );
        let f = s.features().unwrap();
        let gaps = [40.0, 100.0, 40.0];
        let mean = 60.0;
        let sd = (gaps.iter().map(|g: &f64| (g - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        let expected = [
            3.0,         // frequency
            180.0,       // recency 190 - 10
            190.0,       // T 200 - 10
            30.0,        // monetary value (30 + 20 + 40) / 3
            10.0,        // days since last purchase
            27.5,        // average order value (20 + 30 + 20 + 40) / 4
            110.0,       // total spend
            20.0,        // first purchase spend 5 + 15
            mean,        // inter-purchase mean
            sd / mean,   // inter-purchase CV
            1.0,         // purchases in (170, 200]
            40.0,        // spend in (170, 200]
            2.0,         // purchases in (110, 200]: days 150, 190
            60.0,        // their spend
            3.0,         // purchases in (20, 200]: 50, 150, 190
            90.0,        // their spend
            2.0 - 1.0,   // trend: 2 purchases in the last 90 days, 1 (day 50) in (20, 110]
            60.0 - 30.0, // spend trend
        ];
        assert_eq!(f, expected);
        let l = s.labels().unwrap();
        assert_eq!(
            l,
            Labels {
                holdout_spend: 7.5,
                holdout_purchases: 1,
                churned: false
            }
        );
    }

    #[test]
    fn one_purchase_and_no_calibration_purchase() {
        let s = history(100, 200, &[(100, 12.0)]);
        let f = s.features().unwrap();
        assert_eq!(
            &f[..10],
            &[0.0, 0.0, 0.0, 0.0, 0.0, 12.0, 12.0, 12.0, 0.0, 0.0]
        );
        assert!(s.labels().unwrap().churned);
        // First purchase in the holdout: no features, no labels.
        let late = history(100, 200, &[(150, 12.0)]);
        assert_eq!(late.features(), None);
        assert_eq!(late.labels(), None);
    }

    #[test]
    fn order_independent_and_round_trips() {
        let rows = [
            (1, 0.1),
            (1, 0.2),
            (1, 0.3),
            (5, 1e16),
            (5, 1.0),
            (5, -1e16),
        ];
        let a = history(10, 20, &rows);
        let mut rev = rows;
        rev.reverse();
        let b = history(10, 20, &rev);
        assert_eq!(a.features(), b.features());
        assert_eq!(History::decode(&a.encode()).unwrap(), a);
        assert!(History::decode(&a.encode()[1..]).is_err());
    }

    #[test]
    fn bad_input() {
        let mut s = History::default();
        assert!(s.set_window(10, 5).is_err());
        s.set_window(5, 10).unwrap();
        assert!(s.set_window(6, 10).is_err());
        assert!(s.push(1, f64::NAN).is_err());
    }
}
