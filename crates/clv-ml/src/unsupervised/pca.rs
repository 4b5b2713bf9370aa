//! Principal component analysis of standardized features: the eigenvectors of the sample
//! covariance matrix of the z-scores (Jolliffe, "Principal Component Analysis", 2002, ch. 1),
//! from linfa-linalg's symmetric eigendecomposition (`Eigh`).
//!
//! - **Components** are unit vectors, in decreasing order of explained variance, each with the
//!   sign that makes its largest-magnitude entry positive (so refits give the same signs).
//! - **Explained variance** of a component is its eigenvalue (variance of the scores, divided by
//!   n - 1, scikit-learn's `explained_variance_`); the **ratio** divides by the total variance
//!   of all components (scikit-learn's `explained_variance_ratio_`).
//! - **Projection** of a customer: the z-scores (with the fit's means and standard deviations)
//!   times the kept components; the scores are what K-means, DBSCAN or hierarchical clustering
//!   can run on.
//! - **Why not linfa-reduction's `Pca`**: it divides the explained variance by the number of kept
//!   components minus one instead of n - 1 (a division by zero for one component), normalizes the
//!   ratio over the kept components only, and computes the components with a randomized
//!   iterative solver (LOBPCG). For the few features of customer data the d x d eigenproblem is
//!   exact and cheap: O(n d^2) to form the covariance plus O(d^3).

use super::Standardizer;
use crate::rows::TrainingRows;
use crate::Result;
use linfa_linalg::eigh::{EigSort, Eigh};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Features a PCA accepts (the d x d covariance matrix).
pub const MAX_FEATURES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaModel {
    pub n_rows: u64,
    pub standardizer: Standardizer,
    /// components[k] is the k-th principal axis (length d).
    pub components: Vec<Vec<f64>>,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

/// Fit `components` principal components (1..=d) on `rows`.
pub fn fit(rows: &TrainingRows, components: usize) -> Result<PcaModel> {
    let (n, d) = (rows.n(), rows.d);
    if n < 2 {
        return crate::invalid("PCA needs at least two rows");
    }
    if d > MAX_FEATURES {
        return crate::invalid(format!(
            "PCA accepts at most {MAX_FEATURES} features, got {d}"
        ));
    }
    if components == 0 || components > d {
        return crate::invalid(format!(
            "the number of components must be between 1 and the number of features ({d}), got {components}"
        ));
    }
    let standardizer = Standardizer::fit(rows)?;
    let mut cov = Array2::<f64>::zeros((d, d));
    let mut tick = clv_math::interrupt::Ticker::new();
    for i in 0..n {
        tick.tick();
        let z = clv_math::segment::kmeans::standardize(
            rows.row(i),
            &standardizer.means,
            &standardizer.stds,
        );
        for a in 0..d {
            for b in a..d {
                cov[[a, b]] += z[a] * z[b];
            }
        }
    }
    for a in 0..d {
        for b in a..d {
            cov[[a, b]] /= (n - 1) as f64;
            cov[[b, a]] = cov[[a, b]];
        }
    }
    let total: f64 = (0..d).map(|a| cov[[a, a]]).sum();
    let (values, vectors) = cov
        .eigh()
        .map_err(|e| clv_math::ClvError::InvalidParameter(format!("eigendecomposition: {e}")))?
        .sort_eig_desc();
    let mut axes = Vec::with_capacity(components);
    for k in 0..components {
        let mut v: Vec<f64> = vectors.column(k).to_vec();
        let big = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        axes.push(v);
    }
    // Eigenvalues of a covariance matrix are >= 0; rounding can leave -1e-17.
    let variance: Vec<f64> = values.iter().take(components).map(|v| v.max(0.0)).collect();
    let ratio = variance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    Ok(PcaModel {
        n_rows: n as u64,
        standardizer,
        components: axes,
        explained_variance: variance,
        explained_variance_ratio: ratio,
    })
}

impl PcaModel {
    /// The scores of a row on the kept components.
    pub fn project(&self, x: &[f64]) -> Result<Vec<f64>> {
        let z = self.standardizer.apply(x)?;
        Ok(self
            .components
            .iter()
            .map(|c| c.iter().zip(&z).map(|(a, b)| a * b).sum())
            .collect())
    }

    pub fn validate(&self) -> Result<()> {
        self.standardizer.check()?;
        let d = self.standardizer.d();
        let k = self.components.len();
        if k == 0
            || k > d
            || self.components.iter().any(|c| c.len() != d)
            || self.explained_variance.len() != k
            || self.explained_variance_ratio.len() != k
            || self
                .components
                .iter()
                .flatten()
                .chain(&self.explained_variance)
                .chain(&self.explained_variance_ratio)
                .any(|v| !v.is_finite())
        {
            return crate::invalid(
                "invalid PCA model: components and variances do not match the features",
            );
        }
        Ok(())
    }
}
