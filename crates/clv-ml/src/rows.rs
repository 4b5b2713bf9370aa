//! The rows a training aggregate collects: a feature vector and a label per row.
//!
//! Learners need the rows themselves, not sufficient statistics, so memory grows with rows x
//! (features + 1) doubles. Parallel workers each collect a part, combine concatenates them; the
//! rows are sorted before training so the model depends on the set of rows only (serial and
//! parallel plans give the same model bit for bit).

use crate::{invalid, Result};
use clv_math::ClvError;

/// At most this many stored doubles (rows x (features + 1)): 800 MB, below the 1 GB a parallel
/// worker's serialized part may take. Beyond it the aggregate refuses (SQLSTATE 54000); the
/// `sample_rows` option trains on a seeded sample instead.
pub const MAX_VALUES: usize = 100_000_000;

/// Feature vectors are at most this long.
pub const MAX_FEATURES: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainingRows {
    pub d: usize,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// Too many rows for memory: the SQL layer reports SQLSTATE 54000 (program_limit_exceeded).
#[derive(Debug, Clone, PartialEq)]
pub struct TooLarge(pub String);

impl TrainingRows {
    pub fn n(&self) -> usize {
        self.y.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    fn set_d(&mut self, d: usize) -> Result<()> {
        if d == 0 {
            return invalid("a feature vector needs at least one feature (got an empty array)");
        }
        if d > MAX_FEATURES {
            return invalid(format!(
                "at most {MAX_FEATURES} features are supported, got {d}"
            ));
        }
        if self.n() == 0 && self.d == 0 {
            self.d = d;
        } else if self.d != d {
            return invalid(format!(
                "every feature vector must have the same length: got {d}, earlier rows have {}",
                self.d
            ));
        }
        Ok(())
    }

    fn check_size(&self, extra_rows: usize) -> std::result::Result<(), TooLarge> {
        let values = (self.n() + extra_rows) * (self.d + 1);
        if values > MAX_VALUES {
            return Err(TooLarge(format!(
                "training data exceed {MAX_VALUES} values (rows x (features + 1)); train on a sample (option \"sample_rows\" or TABLESAMPLE)"
            )));
        }
        Ok(())
    }

    /// Add one row. Every feature and the label must be finite.
    pub fn push(
        &mut self,
        features: &[f64],
        label: f64,
    ) -> Result<std::result::Result<(), TooLarge>> {
        self.set_d(features.len())?;
        if let Some(v) = features.iter().find(|v| !v.is_finite()) {
            return invalid(format!("features must be finite numbers, got {v}"));
        }
        if !label.is_finite() {
            return invalid(format!("the label must be a finite number, got {label}"));
        }
        if let Err(e) = self.check_size(1) {
            return Ok(Err(e));
        }
        self.x.extend_from_slice(features);
        self.y.push(label);
        Ok(Ok(()))
    }

    pub fn merge(&mut self, other: &TrainingRows) -> Result<std::result::Result<(), TooLarge>> {
        if other.n() == 0 {
            return Ok(Ok(()));
        }
        self.set_d(other.d)?;
        if let Err(e) = self.check_size(other.n()) {
            return Ok(Err(e));
        }
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
        Ok(Ok(()))
    }

    /// The rows in lexicographic order of (features, label).
    pub fn sorted(&self) -> TrainingRows {
        let mut idx: Vec<usize> = (0..self.n()).collect();
        clv_math::interrupt::sort_unstable_by(&mut idx, |&a, &b| {
            self.row(a)
                .iter()
                .zip(self.row(b))
                .map(|(p, q)| p.total_cmp(q))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| self.y[a].total_cmp(&self.y[b]))
        });
        self.take(&idx)
    }

    /// The rows at `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> TrainingRows {
        let mut out = TrainingRows {
            d: self.d,
            x: Vec::with_capacity(idx.len() * self.d),
            y: Vec::with_capacity(idx.len()),
        };
        for &i in idx {
            out.x.extend_from_slice(self.row(i));
            out.y.push(self.y[i]);
        }
        out
    }

    /// A seeded sample of `k` rows (all when k >= n), in their present order: a partial
    /// Fisher-Yates shuffle of the indices with SplitMix64, then the chosen indices sorted.
    pub fn sample(&self, k: usize, seed: u64) -> TrainingRows {
        let n = self.n();
        if k >= n {
            return self.clone();
        }
        let mut idx: Vec<usize> = (0..n).collect();
        let mut state = seed;
        for i in 0..k {
            state = state.wrapping_add(1);
            let r = clv_math::segment::validation::splitmix64(state);
            let j = i + (r % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut chosen = idx[..k].to_vec();
        chosen.sort_unstable();
        self.take(&chosen)
    }

    /// Split into (first, second) by a seeded hash of the row position: rows whose hash falls
    /// below `share` go to the first part. Used for the inner validation split of tuning.
    pub fn split(&self, share: f64, seed: u64) -> (TrainingRows, TrainingRows) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..self.n() {
            let h = clv_math::segment::validation::splitmix64(i as u64 ^ seed);
            if ((h >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < share {
                a.push(i);
            } else {
                b.push(i);
            }
        }
        (self.take(&a), self.take(&b))
    }

    // Layout: version u8 = 1, d u64, n u64, then n x d feature values and n labels (f64 LE).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + (self.x.len() + self.y.len()) * 8);
        out.push(1);
        out.extend_from_slice(&(self.d as u64).to_le_bytes());
        out.extend_from_slice(&(self.n() as u64).to_le_bytes());
        for v in self.x.iter().chain(&self.y) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<TrainingRows> {
        let corrupt = || Err(ClvError::Corrupt("corrupt training-rows state".into()));
        if b.len() < 17 || b[0] != 1 {
            return corrupt();
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes")) as usize;
        let (d, n) = (u(1), u(9));
        let total = n.checked_mul(d.saturating_add(1));
        if d > MAX_FEATURES
            || total
                .and_then(|t| t.checked_mul(8))
                .and_then(|t| t.checked_add(17))
                != Some(b.len())
        {
            return corrupt();
        }
        let vals: Vec<f64> = b[17..]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let (x, y) = vals.split_at(n * d);
        Ok(TrainingRows {
            d,
            x: x.to_vec(),
            y: y.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_sorts_and_round_trips() {
        let mut r = TrainingRows::default();
        r.push(&[2.0, 1.0], 5.0).unwrap().unwrap();
        r.push(&[1.0, 3.0], 6.0).unwrap().unwrap();
        r.push(&[1.0, 3.0], 4.0).unwrap().unwrap();
        let s = r.sorted();
        assert_eq!(s.x, vec![1.0, 3.0, 1.0, 3.0, 2.0, 1.0]);
        assert_eq!(s.y, vec![4.0, 6.0, 5.0]);
        assert_eq!(TrainingRows::decode(&r.encode()).unwrap(), r);
        assert!(TrainingRows::decode(&r.encode()[..20]).is_err());
        assert!(r.push(&[1.0], 1.0).is_err());
        assert!(r.push(&[1.0, f64::NAN], 1.0).is_err());
        assert!(r.push(&[1.0, 2.0], f64::INFINITY).is_err());
        assert!(TrainingRows::default().push(&[], 1.0).is_err());
    }

    #[test]
    fn sample_is_seeded_and_split_partitions() {
        let mut r = TrainingRows::default();
        for i in 0..1000 {
            r.push(&[i as f64], i as f64).unwrap().unwrap();
        }
        let a = r.sample(100, 7);
        assert_eq!(a.n(), 100);
        assert_eq!(a, r.sample(100, 7));
        assert_ne!(a, r.sample(100, 8));
        let (p, q) = r.split(0.75, 3);
        assert_eq!(p.n() + q.n(), 1000);
        assert!((700..800).contains(&p.n()), "{}", p.n());
    }
}
