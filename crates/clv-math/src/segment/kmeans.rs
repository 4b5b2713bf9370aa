//! K-means clustering of customers (rows of features such as recency, frequency, monetary, CLV)
//! with the algorithm of `linfa-clustering` (run here, see below), wrapped so that the SQL layer
//! can store the fitted model as a value and assign customers later.
//!
//! # Method
//!
//! - **Standardization.** Features have very different units (days, counts, currency), so each is
//!   turned into a z-score `(x - mean) / std` with the *population* mean and standard deviation of
//!   the fitting rows (divide by `n`, not `n - 1`). A constant feature (all rows equal) has `std = 0`
//!   and is left centred at 0: it then plays no part in distances. All distances, the inertia and
//!   the silhouette are computed in these standardized units.
//! - **Fit.** The algorithm of `linfa_clustering::KMeans` 0.8 (k-means++ initialisation, 10 runs
//!   keeping the lowest inertia, tolerance 1e-6, at most 300 iterations, the m_k-means update that
//!   counts the old centroid as one more member) seeded with `Xoshiro256Plus::seed_from_u64(seed)`:
//!   the same rows in the same order and the same seed give the same model. It is run here, not
//!   by linfa, so that the iterations can be interrupted (linfa offers no callback): the code
//!   below repeats linfa's arithmetic operation for operation and draws the same random numbers,
//!   so its centroids are bit for bit linfa's (a test compares them). It checks for interrupts
//!   every [`crate::interrupt::EVERY`] distance evaluations, in the initialisation and in every
//!   assignment step, so `statement_timeout` stops a fit on millions of rows within milliseconds.
//! - **Stable labels.** linfa numbers clusters arbitrarily, so clusters are renumbered by
//!   **ascending** centroid value of the chosen `value_feature` (e.g. CLV): label 0 is the least
//!   valuable cluster, label `k - 1` the most valuable, and labels keep their meaning across refits.
//!   The centroid is the mean of its members (linfa's m_k-means update converges to it).
//! - **Assignment.** A customer goes to the nearest centroid in standardized units; an exact tie goes
//!   to the lower label.
//! - **Inertia** is the within-cluster sum of squared standardized distances (scikit-learn's
//!   `inertia_`; linfa itself reports the mean instead).
//! - **Silhouette** (for choosing k) is the mean silhouette over a deterministic systematic sample
//!   of at most [`SILHOUETTE_SAMPLE`] rows (row `floor(i * n / m)` for `i < m`), because the exact
//!   score is O(n^2); with the sample the cost is O(m^2) on top of the O(n k) fit, i.e. O(n) in `n`.

use crate::error::{ClvError, Result};
use crate::interrupt::{self, Ticker};
use rand::distributions::{Distribution, WeightedIndex};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

/// Largest number of rows the silhouette score is computed on.
pub const SILHOUETTE_SAMPLE: usize = 2000;
/// Largest k accepted (a segmentation with more clusters is not meant for humans, and each k costs a
/// full fit in [`kmeans_k_sweep`]).
pub const MAX_K: usize = 50;

const N_RUNS: usize = 10;
const TOLERANCE: f64 = 1e-6;
const MAX_ITERATIONS: u64 = 300;

/// A fitted K-means segmentation, self-contained so it can be stored and applied later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    /// Number of clusters; labels are `0..k`.
    pub k: usize,
    /// Seed of the Xoshiro256Plus generator used for the fit.
    pub seed: u64,
    /// Index of the feature whose centroid value orders the labels (ascending).
    pub value_feature: usize,
    /// Population mean of each feature over the fitting rows.
    pub means: Vec<f64>,
    /// Population standard deviation of each feature (0 for a constant feature).
    pub stds: Vec<f64>,
    /// Centroids in original units, `centroids[label][feature]`.
    pub centroids: Vec<Vec<f64>>,
    /// Number of fitting rows assigned to each label.
    pub sizes: Vec<u64>,
    /// Within-cluster sum of squared standardized distances.
    pub inertia: f64,
}

/// A fit: the model and the label of every fitting row, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansFit {
    pub model: KMeansModel,
    pub labels: Vec<usize>,
}

/// Inertia and silhouette of one k in [`kmeans_k_sweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KSweepPoint {
    pub k: usize,
    pub inertia: f64,
    /// Mean silhouette; `None` for k = 1, where it is undefined.
    pub silhouette: Option<f64>,
}

fn check_rows(rows: &[Vec<f64>]) -> Result<usize> {
    let first = rows.first().ok_or_else(|| {
        ClvError::InvalidParameter("K-means needs at least one row of features".into())
    })?;
    let d = first.len();
    if d == 0 {
        return Err(ClvError::InvalidParameter(
            "K-means needs at least one feature per row".into(),
        ));
    }
    for (i, r) in rows.iter().enumerate() {
        if r.len() != d {
            return Err(ClvError::InvalidParameter(format!(
                "every row must have the same number of features: row {} has {}, the first row has {d}",
                i + 1,
                r.len()
            )));
        }
        if let Some(v) = r.iter().find(|v| !v.is_finite()) {
            return Err(ClvError::InvalidParameter(format!(
                "features must be finite numbers, row {} contains {v}",
                i + 1
            )));
        }
    }
    Ok(d)
}

fn mean_std(rows: &[Vec<f64>], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() as f64;
    let mut means = vec![0.0; d];
    let mut stds = vec![0.0; d];
    let mut tick = Ticker::new();
    for j in 0..d {
        let mean = rows
            .iter()
            .inspect(|_| tick.tick())
            .map(|r| r[j])
            .sum::<f64>()
            / n;
        let constant = rows.iter().all(|r| r[j] == rows[0][j]);
        // A constant column must get exactly 0, not the rounding noise of (x - mean).
        let std = if constant {
            0.0
        } else {
            (rows
                .iter()
                .inspect(|_| tick.tick())
                .map(|r| (r[j] - mean).powi(2))
                .sum::<f64>()
                / n)
                .sqrt()
        };
        means[j] = if constant { rows[0][j] } else { mean };
        stds[j] = std;
    }
    (means, stds)
}

/// Population means and standard deviations of the columns (a constant column: its value and 0),
/// as K-means standardizes; features too large to sum are refused (22023) rather than clustered
/// as NaN z-scores. Shared with the other unsupervised methods (clv-ml).
pub fn checked_mean_std(rows: &[Vec<f64>], d: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let (means, stds) = mean_std(rows, d);
    if means.iter().chain(&stds).all(|v| v.is_finite()) {
        Ok((means, stds))
    } else {
        Err(ClvError::InvalidParameter(
            "features are too large to standardize: rescale them (e.g. to thousands)".into(),
        ))
    }
}

/// The z-scores of one row; a constant feature (std 0) gives 0.
pub fn standardize(x: &[f64], means: &[f64], stds: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(means.iter().zip(stds))
        .map(|(&v, (&m, &s))| if s > 0.0 { (v - m) / s } else { 0.0 })
        .collect()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(z: &[f64], centroids_z: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, cz) in centroids_z.iter().enumerate() {
        let d = sq_dist(z, cz);
        // Strict < keeps the lower label on exact ties.
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

fn count_distinct(z: &[Vec<f64>]) -> usize {
    let mut idx: Vec<usize> = (0..z.len()).collect();
    let cmp = |a: &Vec<f64>, b: &Vec<f64>| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    };
    interrupt::sort_by(&mut idx, |&a, &b| cmp(&z[a], &z[b]));
    1 + idx
        .windows(2)
        .filter(|w| cmp(&z[w[0]], &z[w[1]]).is_ne())
        .count()
}

impl KMeansModel {
    /// Check the internal consistency of a model (e.g. one read back from storage).
    pub fn validate(&self) -> Result<()> {
        let d = self.means.len();
        let ok = self.k >= 1
            && d >= 1
            && self.stds.len() == d
            && self.value_feature < d
            && self.centroids.len() == self.k
            && self.sizes.len() == self.k
            && self.centroids.iter().all(|c| c.len() == d)
            && self.means.iter().all(|v| v.is_finite())
            && self.stds.iter().all(|s| s.is_finite() && *s >= 0.0)
            && self.centroids.iter().flatten().all(|v| v.is_finite())
            && self.inertia.is_finite()
            && self.inertia >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(ClvError::Corrupt(
                "inconsistent K-means model: dimensions or values do not match".into(),
            ))
        }
    }

    /// Number of features a row must have.
    pub fn n_features(&self) -> usize {
        self.means.len()
    }

    fn centroids_z(&self) -> Vec<Vec<f64>> {
        self.centroids
            .iter()
            .map(|c| standardize(c, &self.means, &self.stds))
            .collect()
    }
}

/// Fit K-means with `k` clusters on `rows` (see the module documentation for the method).
///
/// Errors: no rows, rows of different lengths, a non-finite feature, `k` outside `1..=MAX_K`,
/// `value_feature` out of range, or fewer distinct (standardized) rows than `k`.
pub fn fit_kmeans(
    rows: &[Vec<f64>],
    k: usize,
    seed: u64,
    value_feature: usize,
) -> Result<KMeansFit> {
    let d = check_rows(rows)?;
    if !(1..=MAX_K).contains(&k) {
        return Err(ClvError::InvalidParameter(format!(
            "the number of clusters k must be between 1 and {MAX_K}, got {k}"
        )));
    }
    if value_feature >= d {
        return Err(ClvError::InvalidParameter(format!(
            "the value feature index must be below the number of features ({d}), got {value_feature}"
        )));
    }
    let (means, stds) = checked_mean_std(rows, d)?;
    let mut tick = Ticker::new();
    let z: Vec<Vec<f64>> = rows
        .iter()
        .inspect(|_| tick.tick())
        .map(|r| standardize(r, &means, &stds))
        .collect();
    fit_standardized(&z, k, seed, value_feature, means, stds)
}

fn fit_standardized(
    z: &[Vec<f64>],
    k: usize,
    seed: u64,
    value_feature: usize,
    means: Vec<f64>,
    stds: Vec<f64>,
) -> Result<KMeansFit> {
    let n = z.len();
    let d = means.len();
    // k-means++ would pick the same point twice and leave clusters empty.
    let distinct = count_distinct(z);
    if distinct < k {
        return Err(ClvError::InvalidParameter(format!(
            "cannot form {k} clusters from {distinct} distinct rows: lower k"
        )));
    }
    let mut tick = Ticker::new();
    let data: Vec<f64> = z
        .iter()
        .flat_map(|r| {
            tick.tick();
            r.iter().copied()
        })
        .collect();
    let best = lloyd(
        &Points { x: &data, d },
        k,
        &mut Xoshiro256Plus::seed_from_u64(seed),
    )
    .ok_or_else(|| ClvError::NoConvergence {
        message: "K-means did not converge: Fitting failed: No inertia improvement (-inf)".into(),
        hint: "try another seed or a smaller k".into(),
    })?;
    let raw: Vec<Vec<f64>> = best.chunks(d).map(<[f64]>::to_vec).collect();
    if raw.len() != k || raw.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ClvError::NoConvergence {
            message: "K-means produced invalid centroids".into(),
            hint: "try another seed or a smaller k".into(),
        });
    }
    // Renumber by ascending value feature; the stable sort keeps linfa's order on ties.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| raw[a][value_feature].total_cmp(&raw[b][value_feature]));
    let centroids: Vec<Vec<f64>> = order
        .iter()
        .map(|&c| {
            raw[c]
                .iter()
                .enumerate()
                .map(|(j, &v)| means[j] + v * stds[j])
                .collect()
        })
        .collect();
    let mut model = KMeansModel {
        k,
        seed,
        value_feature,
        means,
        stds,
        centroids,
        sizes: vec![0; k],
        inertia: 0.0,
    };
    // Labels and inertia go through the same path as `assign`, so a stored model reproduces them.
    let cz = model.centroids_z();
    let mut labels = Vec::with_capacity(n);
    let mut inertia = 0.0;
    for row in z {
        tick.tick();
        let (c, dist) = nearest(row, &cz);
        labels.push(c);
        model.sizes[c] += 1;
        inertia += dist;
    }
    model.inertia = inertia;
    Ok(KMeansFit { model, labels })
}

/// Rows of `d` features, row-major: row i is `x[i * d..(i + 1) * d]`.
struct Points<'a> {
    x: &'a [f64],
    d: usize,
}

impl Points<'_> {
    fn n(&self) -> usize {
        self.x.len() / self.d
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }
}

/// Squared Euclidean distance summed in feature order from +0.0: linfa's `L2Dist::rdistance`
/// (ndarray-stats' `sq_l2_dist`, a sequential sum).
fn rdist(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let diff = x - y;
        s += diff * diff;
    }
    s
}

/// ndarray's `sum()` of a contiguous array (eight partial sums, then the rest): linfa's inertia
/// of a run, which decides between runs, so it is summed in the same order.
fn unrolled_sum(xs: &[f64]) -> f64 {
    let mut p = [0.0f64; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (pi, ci) in p.iter_mut().zip(c) {
            *pi += ci;
        }
    }
    let mut acc = 0.0;
    acc += p[0] + p[4];
    acc += p[1] + p[5];
    acc += p[2] + p[6];
    acc += p[3] + p[7];
    for x in chunks.remainder() {
        acc += x;
    }
    acc
}

/// k-means++ initialisation as linfa's `k_means_plusplus` (weights all 1): the first centroid is
/// drawn uniformly (a `WeightedIndex` over ones), each next one with probability proportional to
/// the squared distance to the nearest centroid so far (all distances 0: row 0, without a draw).
/// The nearest distance is kept up to date with the newest centroid only - the same minimum linfa
/// recomputes over all centroids, at O(n k d) instead of O(n k^2 d).
fn k_means_plus_plus(
    p: &Points,
    k: usize,
    rng: &mut Xoshiro256Plus,
    tick: &mut Ticker,
) -> Vec<f64> {
    let (n, d) = (p.n(), p.d);
    let mut centroids = vec![0.0; k * d];
    let first = WeightedIndex::new(std::iter::repeat_n(1.0f64, n))
        .expect("n >= 1 rows")
        .sample(rng);
    centroids[..d].copy_from_slice(p.row(first));
    let mut dists = vec![f64::INFINITY; n];
    for c in 1..k {
        let newest = &centroids[(c - 1) * d..c * d];
        for (i, di) in dists.iter_mut().enumerate() {
            tick.tick();
            let r = rdist(newest, p.row(i));
            if r < *di {
                *di = r;
            }
        }
        // linfa multiplies by the weights (1.0) here, which changes nothing.
        let next = WeightedIndex::new(dists.iter())
            .map(|w| w.sample(rng))
            .unwrap_or(0);
        centroids[c * d..(c + 1) * d].copy_from_slice(p.row(next));
    }
    centroids
}

/// Nearest centroid (first index on ties) and its squared distance: linfa's `closest_centroid`.
fn closest(row: &[f64], centroids: &[f64], d: usize, tick: &mut Ticker) -> (usize, f64) {
    let mut best = (0, rdist(&centroids[..d], row));
    for (c, cz) in centroids.chunks_exact(d).enumerate() {
        tick.tick();
        let r = rdist(cz, row);
        if r < best.1 {
            best = (c, r);
        }
    }
    best
}

/// linfa's `KMeansValidParams::fit` with `N_RUNS` runs, `TOLERANCE` and `MAX_ITERATIONS`: the
/// centroids (row-major, k x d) of the run with the lowest inertia (the first on ties), or `None`
/// if no run had a comparable inertia (NaN). Checks for interrupts every `interrupt::EVERY`
/// distance evaluations and after every iteration.
fn lloyd(p: &Points, k: usize, rng: &mut Xoshiro256Plus) -> Option<Vec<f64>> {
    let (n, d) = (p.n(), p.d);
    let mut tick = Ticker::new();
    let mut memberships = vec![0usize; n];
    let mut dists = vec![0.0f64; n];
    let mut min_inertia = f64::INFINITY;
    let mut best = None;
    for _ in 0..N_RUNS {
        let mut centroids = k_means_plus_plus(p, k, rng, &mut tick);
        let mut n_iter = 0u64;
        let inertia = loop {
            interrupt::check();
            for i in 0..n {
                let (m, dist) = closest(p.row(i), &centroids, d, &mut tick);
                memberships[i] = m;
                dists[i] = dist;
            }
            // m_k-means: each centroid is the mean of its members and of itself, the members
            // summed in row order, then the old centroid added, then divided.
            let mut new = vec![0.0; k * d];
            let mut counts = vec![1usize; k];
            for (i, &m) in memberships.iter().enumerate() {
                for (s, x) in new[m * d..(m + 1) * d].iter_mut().zip(p.row(i)) {
                    *s += x;
                }
                counts[m] += 1;
            }
            for (s, old) in new.iter_mut().zip(&centroids) {
                *s += old;
            }
            for (c, &cnt) in new.chunks_exact_mut(d).zip(&counts) {
                for v in c {
                    *v /= cnt as f64;
                }
            }
            // linfa's L2Dist::distance between the old and new centroid matrices.
            let distance = rdist(&centroids, &new).sqrt();
            centroids = new;
            n_iter += 1;
            if distance < TOLERANCE || n_iter == MAX_ITERATIONS {
                break unrolled_sum(&dists);
            }
        };
        if inertia < min_inertia {
            min_inertia = inertia;
            best = Some(centroids);
        }
    }
    best
}

/// Label (`0..k`, ascending value) of one customer's features under a fitted model.
///
/// Errors: a feature count different from the model's, a non-finite feature, or an inconsistent
/// model (`Corrupt`).
pub fn assign(model: &KMeansModel, features: &[f64]) -> Result<usize> {
    model.validate()?;
    if features.len() != model.n_features() {
        return Err(ClvError::InvalidParameter(format!(
            "the model was fitted on {} features, got {}",
            model.n_features(),
            features.len()
        )));
    }
    if let Some(v) = features.iter().find(|v| !v.is_finite()) {
        return Err(ClvError::InvalidParameter(format!(
            "features must be finite numbers, got {v}"
        )));
    }
    let z = standardize(features, &model.means, &model.stds);
    Ok(nearest(&z, &model.centroids_z()).0)
}

/// Exact mean silhouette of `points` under `labels` (Euclidean distance, no scaling, O(n^2)).
/// A point alone in its cluster scores 0 (as in scikit-learn). `None` when fewer than two clusters
/// are present.
///
/// Errors: length mismatch, rows of different lengths, or a non-finite value.
pub fn silhouette_score(points: &[Vec<f64>], labels: &[usize]) -> Result<Option<f64>> {
    if points.len() != labels.len() {
        return Err(ClvError::InvalidParameter(format!(
            "{} points but {} labels",
            points.len(),
            labels.len()
        )));
    }
    if points.is_empty() {
        return Ok(None);
    }
    check_rows(points)?;
    let refs: Vec<&[f64]> = points.iter().map(Vec::as_slice).collect();
    Ok(silhouette_of(&refs, labels))
}

fn silhouette_of(points: &[&[f64]], labels: &[usize]) -> Option<f64> {
    let n_labels = labels.iter().max().map_or(0, |m| m + 1);
    let mut members = vec![0usize; n_labels];
    for &l in labels {
        members[l] += 1;
    }
    if members.iter().filter(|&&c| c > 0).count() < 2 {
        return None;
    }
    let mut total = 0.0;
    let mut sums = vec![0.0; n_labels];
    for (i, p) in points.iter().enumerate() {
        // O(n) work per point: one check each.
        interrupt::check();
        sums.iter_mut().for_each(|s| *s = 0.0);
        for (q, &l) in points.iter().zip(labels) {
            sums[l] += sq_dist(p, q).sqrt();
        }
        let own = labels[i];
        if members[own] < 2 {
            continue; // s(i) = 0
        }
        let a = sums[own] / (members[own] - 1) as f64;
        let b = (0..n_labels)
            .filter(|&c| c != own && members[c] > 0)
            .map(|c| sums[c] / members[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    Some(total / points.len() as f64)
}

// Systematic sample: deterministic, spread over the whole input, independent of any RNG version.
fn sample_indices(n: usize, m: usize) -> Vec<usize> {
    if n <= m {
        (0..n).collect()
    } else {
        (0..m).map(|i| i * n / m).collect()
    }
}

/// Mean silhouette of a fit on at most [`SILHOUETTE_SAMPLE`] rows (see the module documentation),
/// in the model's standardized units. `None` for k = 1.
pub fn model_silhouette(model: &KMeansModel, rows: &[Vec<f64>]) -> Result<Option<f64>> {
    model.validate()?;
    let d = check_rows(rows)?;
    if d != model.n_features() {
        return Err(ClvError::InvalidParameter(format!(
            "the model was fitted on {} features, got {d}",
            model.n_features()
        )));
    }
    let cz = model.centroids_z();
    let idx = sample_indices(rows.len(), SILHOUETTE_SAMPLE);
    let z: Vec<Vec<f64>> = idx
        .iter()
        .map(|&i| standardize(&rows[i], &model.means, &model.stds))
        .collect();
    let labels: Vec<usize> = z.iter().map(|r| nearest(r, &cz).0).collect();
    let refs: Vec<&[f64]> = z.iter().map(Vec::as_slice).collect();
    Ok(silhouette_of(&refs, &labels))
}

/// Inertia and sampled mean silhouette for each k in `k_min..=k_max`, to choose k (largest
/// silhouette, or the elbow of the inertia). Standardization is computed once and shared by all k.
///
/// Errors: as [`fit_kmeans`], plus `k_min > k_max`.
pub fn kmeans_k_sweep(
    rows: &[Vec<f64>],
    k_min: usize,
    k_max: usize,
    seed: u64,
    value_feature: usize,
) -> Result<Vec<KSweepPoint>> {
    if k_min > k_max || k_min == 0 || k_max > MAX_K {
        return Err(ClvError::InvalidParameter(format!(
            "the k range must satisfy 1 <= k_min <= k_max <= {MAX_K}, got {k_min}..{k_max}"
        )));
    }
    let d = check_rows(rows)?;
    if value_feature >= d {
        return Err(ClvError::InvalidParameter(format!(
            "the value feature index must be below the number of features ({d}), got {value_feature}"
        )));
    }
    let (means, stds) = checked_mean_std(rows, d)?;
    let mut tick = Ticker::new();
    let z: Vec<Vec<f64>> = rows
        .iter()
        .inspect(|_| tick.tick())
        .map(|r| standardize(r, &means, &stds))
        .collect();
    let idx = sample_indices(z.len(), SILHOUETTE_SAMPLE);
    let sample: Vec<&[f64]> = idx.iter().map(|&i| z[i].as_slice()).collect();
    (k_min..=k_max)
        .map(|k| {
            let fit = fit_standardized(&z, k, seed, value_feature, means.clone(), stds.clone())?;
            let labels: Vec<usize> = idx.iter().map(|&i| fit.labels[i]).collect();
            Ok(KSweepPoint {
                k,
                inertia: fit.model.inertia,
                silhouette: silhouette_of(&sample, &labels),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    // Three well separated groups in (recency, frequency, monetary, clv) with very different
    // feature scales; returned with the true group of each row. The groups are listed with CLV
    // *descending*, so label ordering has to do real work.
    fn blobs(per_blob: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<usize>) {
        let centres = [
            [10.0, 12.0, 300.0, 900.0],
            [40.0, 5.0, 120.0, 300.0],
            [90.0, 1.0, 40.0, 50.0],
        ];
        let sds = [3.0, 0.8, 15.0, 30.0];
        let mut rng = Xoshiro256Plus::seed_from_u64(seed);
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        // Interleave the groups so the input is not sorted by cluster.
        for _ in 0..per_blob {
            for (g, c) in centres.iter().enumerate() {
                let row = c
                    .iter()
                    .zip(sds)
                    .map(|(&m, s)| Normal::new(m, s).unwrap().sample(&mut rng))
                    .collect();
                rows.push(row);
                truth.push(g);
            }
        }
        (rows, truth)
    }

    #[test]
    fn one_dimensional_hand_example() {
        let rows: Vec<Vec<f64>> = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
            .iter()
            .map(|&x| vec![x])
            .collect();
        let fit = fit_kmeans(&rows, 2, 7, 0).unwrap();
        let m = &fit.model;
        assert_eq!(fit.labels, vec![0, 0, 0, 1, 1, 1]);
        assert!((m.centroids[0][0] - 1.0).abs() < 1e-5, "{:?}", m.centroids);
        assert!((m.centroids[1][0] - 11.0).abs() < 1e-5, "{:?}", m.centroids);
        assert!((m.means[0] - 6.0).abs() < 1e-12);
        // Population variance: (36 + 25 + 16 + 16 + 25 + 36) / 6.
        let var: f64 = 154.0 / 6.0;
        assert!((m.stds[0] - var.sqrt()).abs() < 1e-12);
        // Within-cluster SS = 2 + 2 in original units.
        assert!((m.inertia - 4.0 / var).abs() < 1e-9, "{}", m.inertia);
        assert_eq!(m.sizes, vec![3, 3]);
        assert_eq!(assign(m, &[4.0]).unwrap(), 0);
        assert_eq!(assign(m, &[8.0]).unwrap(), 1);
        assert_eq!(assign(m, &[-100.0]).unwrap(), 0);
    }

    #[test]
    fn constant_feature_is_centred_and_ignored() {
        let rows: Vec<Vec<f64>> = [0.0, 1.0, 10.0, 11.0]
            .iter()
            .map(|&x| vec![5.0, x])
            .collect();
        let fit = fit_kmeans(&rows, 2, 1, 1).unwrap();
        assert_eq!(fit.model.stds[0], 0.0);
        assert_eq!(fit.model.means[0], 5.0);
        assert_eq!(fit.labels, vec![0, 0, 1, 1]);
        // The constant feature plays no part: a wildly different value does not change the label.
        assert_eq!(assign(&fit.model, &[1e6, 10.5]).unwrap(), 1);
        assert!((fit.model.centroids[1][0] - 5.0).abs() < 1e-12);
    }

    #[test]
    fn recovers_blobs_with_labels_ordered_by_value() {
        let (rows, truth) = blobs(150, 42);
        let fit = fit_kmeans(&rows, 3, 2024, 3).unwrap();
        // Group 2 has the lowest CLV -> label 0; group 0 the highest -> label 2.
        for (l, g) in fit.labels.iter().zip(&truth) {
            assert_eq!(*l, 2 - g);
        }
        assert_eq!(fit.model.sizes, vec![150, 150, 150]);
        let clv: Vec<f64> = fit.model.centroids.iter().map(|c| c[3]).collect();
        assert!(clv[0] < clv[1] && clv[1] < clv[2], "{clv:?}");
        // Centroids in original units are the group means: within 4 standard errors of the centres.
        let expected = [
            [90.0, 1.0, 40.0, 50.0],
            [40.0, 5.0, 120.0, 300.0],
            [10.0, 12.0, 300.0, 900.0],
        ];
        let sds = [3.0, 0.8, 15.0, 30.0];
        for (c, e) in fit.model.centroids.iter().zip(expected) {
            for j in 0..4 {
                assert!(
                    (c[j] - e[j]).abs() < 4.0 * sds[j] / 150f64.sqrt(),
                    "{c:?} vs {e:?}"
                );
            }
        }
        // Assigning the fitting rows with the stored model reproduces the fit's labels.
        for (r, l) in rows.iter().zip(&fit.labels) {
            assert_eq!(assign(&fit.model, r).unwrap(), *l);
        }
        assert_eq!(assign(&fit.model, &[12.0, 11.0, 280.0, 850.0]).unwrap(), 2);
    }

    #[test]
    fn same_seed_same_model_and_labels_stable_across_seeds() {
        let (rows, _) = blobs(60, 9);
        let a = fit_kmeans(&rows, 3, 123, 3).unwrap();
        let b = fit_kmeans(&rows, 3, 123, 3).unwrap();
        assert_eq!(a, b);
        // Another seed finds the same well separated clusters under the same labels.
        let c = fit_kmeans(&rows, 3, 999, 3).unwrap();
        assert_eq!(a.labels, c.labels);
        assert_eq!(c.model.seed, 999);
    }

    #[test]
    fn silhouette_peaks_at_the_true_k() {
        let (rows, _) = blobs(100, 5);
        let sweep = kmeans_k_sweep(&rows, 1, 6, 11, 3).unwrap();
        assert_eq!(
            sweep.iter().map(|p| p.k).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(sweep[0].silhouette, None);
        let best = sweep
            .iter()
            .filter_map(|p| p.silhouette.map(|s| (p.k, s)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(best.0, 3, "{sweep:?}");
        assert!(best.1 > 0.8, "{sweep:?}");
        // k = 1 inertia is n * d (standardized, population variance 1 per feature).
        assert!(
            (sweep[0].inertia - 300.0 * 4.0).abs() < 1e-6,
            "{}",
            sweep[0].inertia
        );
        // Inertia drops sharply up to the true k, then only a little.
        assert!(sweep[2].inertia < 0.1 * sweep[1].inertia);
        assert!(sweep[3].inertia > 0.6 * sweep[2].inertia);
        // The sweep's k = 3 matches a direct fit.
        let fit = fit_kmeans(&rows, 3, 11, 3).unwrap();
        assert!((fit.model.inertia - sweep[2].inertia).abs() < 1e-9);
        let s = model_silhouette(&fit.model, &rows).unwrap().unwrap();
        assert!((s - sweep[2].silhouette.unwrap()).abs() < 1e-12);
    }

    #[test]
    fn silhouette_hand_example() {
        let pts: Vec<Vec<f64>> = [0.0, 1.0, 10.0, 11.0].iter().map(|&x| vec![x]).collect();
        let s = silhouette_score(&pts, &[0, 0, 1, 1]).unwrap().unwrap();
        let expected = (9.5 / 10.5 + 8.5 / 9.5) / 2.0;
        assert!((s - expected).abs() < 1e-15, "{s} vs {expected}");
        // A singleton scores 0: points 0 alone, {1, 10, 11} together.
        let s = silhouette_score(&pts, &[0, 1, 1, 1]).unwrap().unwrap();
        let s1 = {
            let a = (9.0 + 10.0) / 2.0;
            let b = 1.0;
            (b - a) / a
        };
        let s10 = {
            let a = (9.0 + 1.0) / 2.0;
            let b: f64 = 10.0;
            (b - a) / b
        };
        let s11 = {
            let a = (10.0 + 1.0) / 2.0;
            let b: f64 = 11.0;
            (b - a) / b
        };
        assert!((s - (s1 + s10 + s11) / 4.0).abs() < 1e-15);
        assert_eq!(silhouette_score(&pts, &[0, 0, 0, 0]).unwrap(), None);
    }

    #[test]
    fn sample_is_systematic_and_bounded() {
        assert_eq!(sample_indices(5, 10), vec![0, 1, 2, 3, 4]);
        assert_eq!(sample_indices(10, 4), vec![0, 2, 5, 7]);
        let s = sample_indices(1_000_003, SILHOUETTE_SAMPLE);
        assert_eq!(s.len(), SILHOUETTE_SAMPLE);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && *s.last().unwrap() < 1_000_003);
    }

    #[test]
    fn invalid_inputs() {
        let rows = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]];
        let invalid = |r: Result<KMeansFit>| matches!(r, Err(ClvError::InvalidParameter(_)));
        assert!(invalid(fit_kmeans(&[], 1, 0, 0)));
        assert!(invalid(fit_kmeans(&rows, 0, 0, 0)));
        assert!(invalid(fit_kmeans(&rows, MAX_K + 1, 0, 0)));
        assert!(invalid(fit_kmeans(&rows, 2, 0, 2)));
        assert!(invalid(fit_kmeans(&rows, 4, 0, 0)));
        assert!(invalid(fit_kmeans(&[vec![1.0], vec![1.0, 2.0]], 1, 0, 0)));
        assert!(invalid(fit_kmeans(&[vec![1.0], vec![f64::NAN]], 1, 0, 0)));
        assert!(invalid(fit_kmeans(&[vec![]], 1, 0, 0)));
        // Three rows but two distinct.
        assert!(invalid(fit_kmeans(
            &[vec![1e308], vec![1e308], vec![-1e308]],
            1,
            0,
            0
        )));
        let dup = vec![vec![1.0], vec![1.0], vec![2.0]];
        assert!(invalid(fit_kmeans(&dup, 3, 0, 0)));
        assert_eq!(fit_kmeans(&dup, 2, 0, 0).unwrap().labels, vec![0, 0, 1]);
        // k = 1 works and puts everyone in label 0.
        let one = fit_kmeans(&rows, 1, 0, 0).unwrap();
        assert_eq!(one.labels, vec![0, 0, 0]);
        let model = fit_kmeans(&rows, 2, 0, 1).unwrap().model;
        assert!(assign(&model, &[1.0]).is_err());
        assert!(assign(&model, &[1.0, f64::INFINITY]).is_err());
        let mut broken = model.clone();
        broken.centroids.pop();
        assert!(matches!(
            assign(&broken, &[1.0, 2.0]),
            Err(ClvError::Corrupt(_))
        ));
        assert!(kmeans_k_sweep(&rows, 3, 2, 0, 0).is_err());
        assert!(kmeans_k_sweep(&rows, 0, 2, 0, 0).is_err());
        assert!(silhouette_score(&rows, &[0, 1]).is_err());
    }

    // The model is stored by the SQL layer through serde.
    #[allow(dead_code)]
    fn model_is_serde() {
        fn is_serde<T: Serialize + for<'de> Deserialize<'de>>() {}
        is_serde::<KMeansModel>();
        is_serde::<KMeansFit>();
        is_serde::<KSweepPoint>();
    }

    /// linfa-clustering's own fit, as `fit_standardized` ran it before: the oracle.
    fn linfa_centroids(z: &[Vec<f64>], k: usize, seed: u64) -> Vec<f64> {
        use linfa::traits::Fit;
        let (n, d) = (z.len(), z[0].len());
        let data = ndarray::Array2::from_shape_fn((n, d), |(i, j)| z[i][j]);
        let fitted =
            linfa_clustering::KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
                .n_runs(N_RUNS)
                .tolerance(TOLERANCE)
                .max_n_iterations(MAX_ITERATIONS)
                .fit(&linfa::DatasetBase::from(data))
                .unwrap();
        fitted.centroids().iter().copied().collect()
    }

    fn our_centroids(z: &[Vec<f64>], k: usize, seed: u64) -> Vec<f64> {
        let data: Vec<f64> = z.iter().flatten().copied().collect();
        let p = Points {
            x: &data,
            d: z[0].len(),
        };
        lloyd(&p, k, &mut Xoshiro256Plus::seed_from_u64(seed)).unwrap()
    }

    #[test]
    fn lloyd_is_linfa_bit_for_bit() {
        use rand::Rng;
        let mut rng = Xoshiro256Plus::seed_from_u64(77);
        let mut sets: Vec<Vec<Vec<f64>>> = Vec::new();
        // Separated blobs, 4 features of different scales (standardized as the fit does).
        sets.push(blobs(120, 3).0);
        // Overlapping uniform noise in 2 and 7 dimensions (many iterations, ties in the runs).
        for d in [2, 7] {
            sets.push(
                (0..700)
                    .map(|_| (0..d).map(|_| rng.gen::<f64>()).collect())
                    .collect(),
            );
        }
        // Heavy duplicates on a small grid: zero distances, k-means++ draws with many zeros.
        sets.push(
            (0..400)
                .map(|_| vec![rng.gen_range(0..4) as f64, rng.gen_range(0..3) as f64])
                .collect(),
        );
        // One dimension, long tail.
        sets.push(
            (0..300)
                .map(|_| vec![rng.gen::<f64>().powi(6) * 1e3])
                .collect(),
        );
        for rows in &sets {
            let d = rows[0].len();
            let (means, stds) = mean_std(rows, d);
            let z: Vec<Vec<f64>> = rows.iter().map(|r| standardize(r, &means, &stds)).collect();
            let distinct = count_distinct(&z);
            for k in [1, 2, 3, 5, 8] {
                if k > distinct {
                    continue;
                }
                for seed in [0, 1, 2024, u64::MAX] {
                    let ours = our_centroids(&z, k, seed);
                    let theirs = linfa_centroids(&z, k, seed);
                    assert_eq!(
                        ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        theirs.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "d = {d}, k = {k}, seed = {seed}: {ours:?} vs {theirs:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_large_fit_stops_on_interrupt() {
        use crate::interrupt::testing::cancelled_within;
        let mut rng = Xoshiro256Plus::seed_from_u64(5);
        let rows: Vec<Vec<f64>> = (0..200_000)
            .map(|_| {
                use rand::Rng;
                (0..4).map(|_| rng.gen::<f64>()).collect()
            })
            .collect();
        let (cancelled, took) = cancelled_within(|| fit_kmeans(&rows, 8, 1, 3));
        assert!(cancelled && took.as_millis() < 100, "{took:?}");
    }
}
