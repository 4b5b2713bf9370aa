//! DBSCAN (Ester, Kriegel, Sander & Xu 1996) with linfa-clustering's `Dbscan` (kd-tree
//! neighbour search from linfa-nn) on standardized features.
//!
//! - **Parameters.** `eps`: the neighbourhood radius, Euclidean, in standardized units
//!   (inclusive: a point at exactly eps is a neighbour). `min_points`: a point is a **core point**
//!   when at least this many points, **itself included**, lie within eps (scikit-learn's
//!   `min_samples`; linfa counts the same way), from 2 (linfa's minimum) to 1,000,000.
//! - **Clusters.** Core points within eps of each other are chained into one cluster; a non-core
//!   point within eps of a core point joins the cluster that reaches it first (in the sorted row
//!   order); every other point is **noise**. Clusters are numbered 1, 2, ... by first appearance in
//!   that order; noise is 0.
//! - **New customers** (`assign`): the cluster of the nearest core point within eps, else 0 (noise).
//!   A core point of the fit gets its own cluster back; a border point lying within eps of core
//!   points of two clusters may get the other one than during the fit.
//! - **Cost.** The fit keeps the rows (rows x features doubles) and a kd-tree; time is about
//!   n log n for a small eps and grows toward n^2 when eps covers much of the data (every point a
//!   neighbour of every other). The model stores the core points: up to rows x features doubles.

use super::{renumber, sizes, SortedPoints, Standardizer};
use crate::rows::TrainingRows;
use crate::Result;
use linfa::traits::Transformer;
use linfa_clustering::Dbscan;
use linfa_nn::distance::L2Dist;
use linfa_nn::{CommonNearestNeighbour, NearestNeighbour};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbscanModel {
    pub eps: f64,
    pub min_points: usize,
    pub n_rows: u64,
    pub standardizer: Standardizer,
    /// Number of clusters (labels 1..=clusters).
    pub clusters: usize,
    /// Training rows per cluster, and those left as noise.
    pub sizes: Vec<u64>,
    pub noise: u64,
    /// The core points (standardized) with their cluster.
    pub core: SortedPoints,
}

pub fn check_params(eps: f64, min_points: i64) -> Result<usize> {
    if !(eps.is_finite() && eps > 0.0) {
        return crate::invalid(format!("eps must be a finite number > 0, got {eps}"));
    }
    // linfa's DBSCAN needs at least 2 (with 1 every point would be a cluster of its own).
    if !(2..=1_000_000).contains(&min_points) {
        return crate::invalid(format!(
            "min_points must be between 2 and 1000000, got {min_points}"
        ));
    }
    Ok(min_points as usize)
}

/// Fit on `rows` (sorted by the caller for determinism).
pub fn fit(rows: &TrainingRows, eps: f64, min_points: usize) -> Result<DbscanModel> {
    fit_labelled(rows, eps, min_points).map(|(m, _)| m)
}

/// The fit and each row's cluster (None: noise).
pub fn fit_labelled(
    rows: &TrainingRows,
    eps: f64,
    min_points: usize,
) -> Result<(DbscanModel, Vec<Option<u32>>)> {
    if rows.n() == 0 {
        return crate::invalid("DBSCAN needs at least one row");
    }
    let standardizer = Standardizer::fit(rows)?;
    let z = Array2::from_shape_vec((rows.n(), rows.d), standardizer.apply_all(rows))
        .map_err(|e| clv_math::ClvError::InvalidParameter(format!("feature matrix: {e}")))?;
    let params = Dbscan::params(min_points).tolerance(eps);
    let labels = params
        .transform(&z)
        .map_err(|e| clv_math::ClvError::InvalidParameter(format!("DBSCAN: {e}")))?;
    let labels: Vec<Option<usize>> = labels.to_vec();
    // linfa reports memberships only; core points are those with min_points neighbours
    // (itself included) within eps, found with the same kd-tree search linfa uses.
    let index = CommonNearestNeighbour::KdTree
        .from_batch(&z, L2Dist)
        .map_err(|e| clv_math::ClvError::InvalidParameter(format!("neighbour index: {e}")))?;
    let numbered = renumber(&labels);
    let clusters = numbered.iter().flatten().max().copied().unwrap_or(0) as usize;
    let mut core = Vec::new();
    for (i, label) in numbered.iter().enumerate() {
        let Some(label) = label else { continue };
        let found = index
            .within_range(z.row(i), eps)
            .map_err(|e| clv_math::ClvError::InvalidParameter(format!("neighbour search: {e}")))?;
        if found.len() >= min_points {
            core.push((z.row(i).to_vec(), *label));
        }
    }
    let noise = numbered.iter().filter(|l| l.is_none()).count() as u64;
    let model = DbscanModel {
        eps,
        min_points,
        n_rows: rows.n() as u64,
        sizes: sizes(&numbered, clusters),
        noise,
        clusters,
        core: SortedPoints::new(rows.d, core),
        standardizer,
    };
    Ok((model, numbered))
}

impl DbscanModel {
    /// The cluster of a new row: that of the nearest core point within eps, 0 for noise.
    pub fn assign(&self, x: &[f64]) -> Result<u32> {
        let z = self.standardizer.apply(x)?;
        Ok(self.core.nearest_within(&z, self.eps).unwrap_or(0))
    }

    pub fn validate(&self) -> Result<()> {
        self.standardizer.check()?;
        check_params(self.eps, self.min_points as i64)?;
        let d = self.standardizer.d();
        if self.core.d != d
            || self.core.x.len() != self.core.labels.len() * d
            || self.sizes.len() != self.clusters
            || self
                .core
                .labels
                .iter()
                .any(|l| *l == 0 || *l as usize > self.clusters)
            || self.core.x.iter().any(|v| !v.is_finite())
        {
            return crate::invalid(
                "invalid DBSCAN model: core points, labels and sizes do not agree",
            );
        }
        Ok(())
    }
}
