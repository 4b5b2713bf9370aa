//! Unsupervised methods beside K-means: DBSCAN (`dbscan`, linfa-clustering), agglomerative
//! clustering (`hierarchical`, kodama) and principal components (`pca`, linfa-linalg's symmetric
//! eigendecomposition).
//!
//! All three standardize every feature exactly as K-means does (`clv_math::segment::kmeans`:
//! population z-scores of the fitting rows; a constant feature becomes 0) and work in those units;
//! the models keep the means and standard deviations so that new customers are standardized the
//! same way. Fits run on the rows sorted by their values, so a model depends on the set of rows
//! only (serial and parallel plans give the same model).

pub mod dbscan;
pub mod hierarchical;
pub mod pca;

use crate::rows::TrainingRows;
use crate::Result;
use clv_math::segment::kmeans::{checked_mean_std, standardize};
use clv_math::ClvError;
use serde::{Deserialize, Serialize};

/// The population means and standard deviations of the fitting rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
}

impl Standardizer {
    pub fn fit(rows: &TrainingRows) -> Result<Standardizer> {
        let as_rows: Vec<Vec<f64>> = (0..rows.n()).map(|i| rows.row(i).to_vec()).collect();
        let (means, stds) = checked_mean_std(&as_rows, rows.d)?;
        Ok(Standardizer { means, stds })
    }

    pub fn d(&self) -> usize {
        self.means.len()
    }

    /// The z-scores of a new row: 22023 for a wrong length or a NaN / infinite value.
    pub fn apply(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.d() {
            return crate::invalid(format!(
                "the model has {} features, the row has {}",
                self.d(),
                x.len()
            ));
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return crate::invalid(format!("features must be finite numbers, got {v}"));
        }
        let z = standardize(x, &self.means, &self.stds);
        if z.iter().any(|v| !v.is_finite()) {
            return crate::invalid(
                "features too far outside the fitted range to standardize (the z-score overflows)",
            );
        }
        // Squared distances between such z-scores must stay finite too.
        if z.iter().map(|v| v * v).sum::<f64>() > 1e300 {
            return crate::invalid(
                "features too far outside the fitted range (distances would overflow)",
            );
        }
        Ok(z)
    }

    /// Every row standardized, row-major.
    pub fn apply_all(&self, rows: &TrainingRows) -> Vec<f64> {
        (0..rows.n())
            .flat_map(|i| standardize(rows.row(i), &self.means, &self.stds))
            .collect()
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.means.len() != self.stds.len()
            || self.means.is_empty()
            || self.means.iter().chain(&self.stds).any(|v| !v.is_finite())
            || self.stds.iter().any(|s| *s < 0.0)
        {
            return Err(ClvError::InvalidParameter(
                "invalid model: means and stds must be finite, of equal non-zero length, stds >= 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Points (standardized, row-major) sorted by their first coordinate, for exact nearest-point
/// queries: a query scans outward from its own first coordinate and stops once that coordinate
/// alone is farther than the best distance found. For the few features of customer data this
/// visits a small slice of the points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortedPoints {
    pub d: usize,
    /// Row-major, sorted by the first coordinate (ties by the remaining ones).
    pub x: Vec<f64>,
    /// The label of each point (same order).
    pub labels: Vec<u32>,
}

impl SortedPoints {
    pub fn new(d: usize, points: Vec<(Vec<f64>, u32)>) -> SortedPoints {
        let mut points = points;
        points.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(p, q)| p.total_cmp(q))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        let labels = points.iter().map(|p| p.1).collect();
        let x = points.into_iter().flat_map(|p| p.0).collect();
        SortedPoints { d, x, labels }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn point(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// The label of the nearest point within `radius` (Euclidean, inclusive), None when there is
    /// none. An exact tie in distance goes to the smaller label.
    pub fn nearest_within(&self, z: &[f64], radius: f64) -> Option<u32> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let r2 = radius * radius;
        let mut best: Option<(f64, u32)> = None;
        let mid = {
            // The first point whose first coordinate is >= z[0].
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let m = (lo + hi) / 2;
                if self.point(m)[0] < z[0] {
                    lo = m + 1;
                } else {
                    hi = m;
                }
            }
            lo
        };
        let consider = |i: usize, best: &mut Option<(f64, u32)>| -> bool {
            let p = self.point(i);
            let gap = (p[0] - z[0]).powi(2);
            let limit = best.map_or(r2, |(b, _)| b.min(r2));
            if gap > limit {
                return false;
            }
            let d2: f64 = p.iter().zip(z).map(|(a, b)| (a - b).powi(2)).sum();
            let label = self.labels[i];
            if d2 <= r2 {
                match *best {
                    Some((b, l)) if d2 > b || (d2 == b && label >= l) => {}
                    _ => *best = Some((d2, label)),
                }
            }
            true
        };
        for i in mid..n {
            if !consider(i, &mut best) {
                break;
            }
        }
        for i in (0..mid).rev() {
            if !consider(i, &mut best) {
                break;
            }
        }
        best.map(|(_, l)| l)
    }
}

/// Cluster ids renumbered 1, 2, ... by first appearance in row order (`None` stays None).
pub(crate) fn renumber(labels: &[Option<usize>]) -> Vec<Option<u32>> {
    let mut map = std::collections::HashMap::new();
    labels
        .iter()
        .map(|l| {
            l.map(|c| {
                let next = map.len() as u32 + 1;
                *map.entry(c).or_insert(next)
            })
        })
        .collect()
}

/// Number of members of each cluster 1..=k.
pub(crate) fn sizes(labels: &[Option<u32>], k: usize) -> Vec<u64> {
    let mut s = vec![0u64; k];
    for l in labels.iter().flatten() {
        s[*l as usize - 1] += 1;
    }
    s
}

#[cfg(test)]
mod tests;
