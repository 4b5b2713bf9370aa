//! Agglomerative (hierarchical) clustering with kodama (Müllner's algorithms, "Modern
//! hierarchical, agglomerative clustering algorithms", 2011; the library SciPy's `linkage`
//! follows) on Euclidean distances between standardized features.
//!
//! - **Linkage**: `ward` (minimum increase of within-cluster variance; SciPy's and
//!   scikit-learn's default), `complete` (farthest pair), `average` (UPGMA), `single` (nearest
//!   pair). Merge heights are SciPy's `linkage(..., method)` heights.
//! - **Cut**: a number of clusters k (the first n - k merges), or a distance t (every merge of
//!   height <= t, SciPy's `fcluster(Z, t, 'distance')`). Clusters are numbered 1, 2, ... by first
//!   appearance in the sorted row order.
//! - **Why kodama and not linfa-hierarchical**: linfa-hierarchical (which wraps kodama) takes a
//!   kernel matrix and uses -ln(kernel value), clipped at 1e-6, as the dissimilarity, so distances
//!   saturate and Ward's method sees squared distances; and it numbers clusters in HashMap order,
//!   which differs from run to run. We call kodama with plain Euclidean distances.
//! - **New customers** (`assign`): the cluster of the nearest training row (standardized
//!   Euclidean; ties to the smaller cluster number), so a customer joins the group of the customer
//!   most like them.
//! - **Memory**: the condensed distance matrix has n (n - 1) / 2 doubles, so fits are limited to
//!   [`MAX_ROWS`] rows (about 100 MB); sample larger tables first (e.g. `TABLESAMPLE` or a
//!   `clv_in_training_set` share).

use super::{renumber, sizes, SortedPoints, Standardizer};
use crate::rows::TrainingRows;
use crate::Result;
use kodama::{linkage, Method};
use serde::{Deserialize, Serialize};

/// Largest number of rows a fit accepts: 5,000 rows need 12.5 million distances (100 MB).
pub const MAX_ROWS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Linkage {
    Ward,
    Complete,
    Average,
    Single,
}

impl Linkage {
    pub fn parse(s: &str) -> Result<Linkage> {
        match s.to_ascii_lowercase().as_str() {
            "ward" => Ok(Linkage::Ward),
            "complete" => Ok(Linkage::Complete),
            "average" => Ok(Linkage::Average),
            "single" => Ok(Linkage::Single),
            _ => crate::invalid(format!(
                "unknown linkage \"{s}\"; accepted are 'ward', 'complete', 'average', 'single'"
            )),
        }
    }

    fn method(self) -> Method {
        match self {
            Linkage::Ward => Method::Ward,
            Linkage::Complete => Method::Complete,
            Linkage::Average => Method::Average,
            Linkage::Single => Method::Single,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    Clusters(usize),
    MaxDistance(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchicalModel {
    pub linkage: Linkage,
    pub cut: Cut,
    pub n_rows: u64,
    pub standardizer: Standardizer,
    pub clusters: usize,
    pub sizes: Vec<u64>,
    /// The n - 1 merge heights in merge order (the dendrogram's heights, for choosing a cut).
    pub merge_heights: Vec<f64>,
    /// The training rows (standardized) with their cluster.
    pub points: SortedPoints,
}

/// Fit on `rows` (sorted by the caller for determinism).
pub fn fit(rows: &TrainingRows, linkage_kind: Linkage, cut: Cut) -> Result<HierarchicalModel> {
    fit_labelled(rows, linkage_kind, cut).map(|(m, _)| m)
}

/// The fit and each row's cluster.
pub fn fit_labelled(
    rows: &TrainingRows,
    linkage_kind: Linkage,
    cut: Cut,
) -> Result<(HierarchicalModel, Vec<u32>)> {
    if n_rows_too_many(rows.n()) {
        return Err(clv_math::ClvError::InvalidParameter(format!(
            "hierarchical clustering accepts at most {MAX_ROWS} rows (n (n - 1) / 2 distances), got {}; cluster a sample",
            rows.n()
        )));
    }
    let n = rows.n();
    if n == 0 {
        return crate::invalid("hierarchical clustering needs at least one row");
    }
    match cut {
        Cut::Clusters(0) => return crate::invalid("the number of clusters must be >= 1"),
        Cut::MaxDistance(t) if !(t.is_finite() && t >= 0.0) => {
            return crate::invalid(format!(
                "the cut distance must be a finite number >= 0, got {t}"
            ))
        }
        _ => {}
    }
    let standardizer = Standardizer::fit(rows)?;
    let z = standardizer.apply_all(rows);
    let d = rows.d;
    let point = |i: usize| &z[i * d..(i + 1) * d];
    let mut condensed = Vec::with_capacity(n * (n - 1) / 2);
    let mut tick = clv_math::interrupt::Ticker::new();
    for i in 0..n {
        for j in i + 1..n {
            tick.tick();
            let d2: f64 = point(i)
                .iter()
                .zip(point(j))
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            condensed.push(d2.sqrt());
        }
    }
    let dendrogram = linkage(&mut condensed, n, linkage_kind.method());
    let steps = dendrogram.steps();
    let merges = match cut {
        Cut::Clusters(k) => n.saturating_sub(k),
        // The heights of these four linkages never decrease, so the merges up to t are a prefix.
        Cut::MaxDistance(t) => steps.iter().take_while(|s| s.dissimilarity <= t).count(),
    };
    // Union-find over the applied merges; kodama names the cluster made by step i `n + i`.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut member = (0..n).collect::<Vec<usize>>(); // cluster id -> one observation
    member.resize(n + steps.len(), 0);
    for (i, s) in steps.iter().take(merges).enumerate() {
        let (a, b) = (member[s.cluster1], member[s.cluster2]);
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent[rb] = ra;
        member[n + i] = ra;
    }
    let raw: Vec<Option<usize>> = (0..n).map(|i| Some(root(&mut parent, i))).collect();
    let numbered = renumber(&raw);
    let clusters = numbered.iter().flatten().max().copied().unwrap_or(0) as usize;
    let points = SortedPoints::new(
        d,
        (0..n)
            .map(|i| {
                (
                    point(i).to_vec(),
                    numbered[i].expect("every row has a cluster"),
                )
            })
            .collect(),
    );
    let model = HierarchicalModel {
        linkage: linkage_kind,
        cut,
        n_rows: n as u64,
        sizes: sizes(&numbered, clusters),
        clusters,
        merge_heights: steps.iter().map(|s| s.dissimilarity).collect(),
        points,
        standardizer,
    };
    Ok((
        model,
        numbered
            .into_iter()
            .map(|l| l.expect("every row has a cluster"))
            .collect(),
    ))
}

/// Whether a fit on `n` rows would exceed [`MAX_ROWS`] (the SQL layer refuses it early, with
/// SQLSTATE 54000, before collecting more rows).
pub fn n_rows_too_many(n: usize) -> bool {
    n > MAX_ROWS
}

impl HierarchicalModel {
    /// The cluster of a new row: that of the nearest training row.
    pub fn assign(&self, x: &[f64]) -> Result<u32> {
        let z = self.standardizer.apply(x)?;
        Ok(self
            .points
            .nearest_within(&z, f64::INFINITY)
            .expect("a fitted model has rows"))
    }

    pub fn validate(&self) -> Result<()> {
        self.standardizer.check()?;
        let d = self.standardizer.d();
        if self.points.is_empty()
            || self.points.d != d
            || self.points.x.len() != self.points.labels.len() * d
            || self.sizes.len() != self.clusters
            || self
                .points
                .labels
                .iter()
                .any(|l| *l == 0 || *l as usize > self.clusters)
            || self.points.x.iter().any(|v| !v.is_finite())
        {
            return crate::invalid(
                "invalid hierarchical model: points, labels and sizes do not agree",
            );
        }
        Ok(())
    }
}
