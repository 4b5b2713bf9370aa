//! K-means segments: the `kmeans_model` type, the `kmeans_fit` and `kmeans_k_sweep` aggregates,
//! `kmeans_assign`, and the readers `kmeans_centroids` and `kmeans_k_sweep_rows`.
//!
//! The maths (`segment::kmeans`) standardizes every feature to z-scores, fits with k-means++ and 10
//! seeded runs, and numbers clusters by ascending centroid of the value feature. SQL numbers them
//! from 1: cluster 1 is the least valuable, cluster k the most valuable (maths label + 1).
//!
//! K-means needs every row in memory: the aggregate state collects the feature rows (O(rows x
//! features) doubles, 8 bytes each) and the fit runs in the final function. Parallel workers each
//! collect a part; combine concatenates them, and they travel as a `clv_aggregate_state` (so one
//! worker's part must stay below 1 GB, about 30 million rows of 4 features). The rows are sorted
//! before fitting, so the model depends on the set of rows only, not on their arrival order:
//! serial and parallel plans give the same model.
//!
//! Interrupts: rows are collected under the executor's usual interrupt checks; the final function
//! checks before sorting and before each fit (each k of a sweep), and the fit itself - linfa's
//! algorithm (k-means++, 10 seeded runs, at most 300 iterations) run in clv-math's own loops, bit
//! for bit linfa's centroids - checks every 2^14 distance evaluations, so `statement_timeout`
//! stops a fit on half a million rows within milliseconds (docs/loops.md).

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::binary_type::{binary_datum, BinaryForm};
use crate::errors::{not_null, raise_code, OrRaise};
use clv_math::segment::kmeans::{assign, fit_kmeans, model_silhouette, KMeansModel, MAX_K};
use clv_math::ClvError;
use pgrx::prelude::*;
use pgrx::{InOutFuncs, JsonB, PgSqlErrorCode, StringInfo};
use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::sync::Arc;

pub const KMEANS_VERSION: u32 = 1;

/// The stored form (also the text / jsonb form). The fields are the maths' `KMeansModel` with SQL
/// numbering: `value_feature` is 1-based, `centroids[i]` and `sizes[i]` belong to cluster i + 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKMeans {
    pub version: u32,
    pub model: String,
    pub k: usize,
    /// The seed as given in SQL (reinterpreted as unsigned 64-bit for the generator).
    pub seed: i64,
    /// 1-based index of the feature whose centroid orders the clusters.
    pub value_feature: usize,
    /// Rows the model was fitted on.
    pub n_rows: u64,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    pub centroids: Vec<Vec<f64>>,
    pub sizes: Vec<u64>,
    pub inertia: f64,
}

impl StoredKMeans {
    fn from_math(m: KMeansModel, seed: i64, n_rows: u64) -> Self {
        StoredKMeans {
            version: KMEANS_VERSION,
            model: "kmeans".into(),
            k: m.k,
            seed,
            value_feature: m.value_feature + 1,
            n_rows,
            means: m.means,
            stds: m.stds,
            centroids: m.centroids,
            sizes: m.sizes,
            inertia: m.inertia,
        }
    }

    fn to_math(&self) -> KMeansModel {
        KMeansModel {
            k: self.k,
            seed: self.seed as u64,
            value_feature: self.value_feature.wrapping_sub(1),
            means: self.means.clone(),
            stds: self.stds.clone(),
            centroids: self.centroids.clone(),
            sizes: self.sizes.clone(),
            inertia: self.inertia,
        }
    }
}

/// A decoded model with its maths form.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    stored: StoredKMeans,
    math: KMeansModel,
}

fn parse(text: &[u8]) -> Result<Decoded, ClvError> {
    let stored: StoredKMeans = serde_json::from_slice(text)
        .map_err(|e| ClvError::InvalidParameter(format!("invalid kmeans_model: {e}")))?;
    if stored.version != KMEANS_VERSION {
        return Err(ClvError::InvalidParameter(format!(
            "kmeans_model version {} is not supported by this release",
            stored.version
        )));
    }
    if stored.model != "kmeans" {
        return Err(ClvError::InvalidParameter(format!(
            "a {} model is not a kmeans_model",
            stored.model
        )));
    }
    let math = stored.to_math();
    math.validate()
        .map_err(|e| ClvError::InvalidParameter(e.to_string()))?;
    Ok(Decoded { stored, math })
}

#[allow(non_camel_case_types)]
#[derive(Debug, Clone, PartialEq, PostgresType)]
#[inoutfuncs]
#[bikeshed_postgres_type_manually_impl_from_into_datum]
pub struct kmeans_model(pub Arc<Decoded>);

impl BinaryForm for kmeans_model {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&serde_json::to_vec(&self.0.stored).expect("model serializes"));
    }
    fn decode(bytes: &[u8]) -> Result<Self, ClvError> {
        // kmeans_assign runs once per customer with the same model: decode it once.
        thread_local! {
            static LAST: std::cell::RefCell<Option<(Vec<u8>, Arc<Decoded>)>> = const { std::cell::RefCell::new(None) };
        }
        if let Some(hit) = LAST.with(|c| {
            c.borrow()
                .as_ref()
                .filter(|(b, _)| b.as_slice() == bytes)
                .map(|(_, m)| m.clone())
        }) {
            return Ok(kmeans_model(hit));
        }
        let m = Arc::new(parse(bytes).map_err(|e| ClvError::Corrupt(e.to_string()))?);
        LAST.with(|c| *c.borrow_mut() = Some((bytes.to_vec(), m.clone())));
        Ok(kmeans_model(m))
    }
}

binary_datum!(kmeans_model);

impl InOutFuncs for kmeans_model {
    fn input(input: &CStr) -> Self {
        match parse(input.to_bytes()) {
            Ok(d) => kmeans_model(Arc::new(d)),
            Err(e) => raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                e.to_string(),
            ),
        }
    }
    fn output(&self, buffer: &mut StringInfo) {
        buffer.push_str(&serde_json::to_string(&self.0.stored).expect("model serializes"));
    }
}

fn invalid(msg: String) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

/// Rows of features collected by `kmeans_fit` and `kmeans_k_sweep` (and the DBSCAN,
/// hierarchical and PCA aggregates of cluster_sql.rs), plus the aggregate's
/// parameters, which must be the same on every row: `[k, seed, value_feature (0 = the last)]` for
/// kmeans_fit, `[k_min, k_max, seed]` for kmeans_k_sweep.
#[derive(Default, Clone)]
pub(crate) struct RowsState {
    d: usize,
    data: Vec<f64>,
    pub(crate) params: Option<[i64; 3]>,
}

impl RowsState {
    pub(crate) fn n_rows(&self) -> usize {
        self.data.len().checked_div(self.d).unwrap_or(0)
    }

    fn set_params(&mut self, p: [i64; 3]) {
        match self.params {
            Some(q) if q != p => invalid("the aggregate's parameters (k, seed, value feature, k range, eps, linkage, ...) must be the same for every row".into()),
            _ => self.params = Some(p),
        }
    }

    fn set_d(&mut self, d: usize) {
        if self.d == 0 {
            self.d = d;
        } else if self.d != d {
            invalid(format!(
                "every features array must have the same length: got {d}, earlier rows have {}",
                self.d
            ));
        }
    }

    fn add(&mut self, row: &[f64]) {
        if row.is_empty() {
            invalid("clustering needs at least one feature per row (got an empty array)".into());
        }
        if let Some(v) = row.iter().find(|v| !v.is_finite()) {
            invalid(format!("features must be finite numbers, got {v}"));
        }
        self.set_d(row.len());
        self.data.extend_from_slice(row);
    }

    fn merge(&mut self, other: &RowsState) {
        if let Some(p) = other.params {
            self.set_params(p);
        }
        if other.d != 0 {
            self.set_d(other.d);
            self.data.extend_from_slice(&other.data);
        }
    }

    /// Rows in lexicographic order, so the fit does not depend on the arrival order.
    pub(crate) fn sorted_rows(&self) -> Vec<Vec<f64>> {
        pgrx::check_for_interrupts!();
        let mut rows: Vec<Vec<f64>> = self
            .data
            .chunks_exact(self.d)
            .map(<[f64]>::to_vec)
            .collect();
        // Checked every 2^14 comparisons: millions of rows take seconds to sort.
        clv_math::interrupt::sort_unstable_by(&mut rows, |a, b| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        pgrx::check_for_interrupts!();
        rows
    }

    // Layout: version u8, has_params u8, 3 x i64 params, d u64, data length u64, data f64s.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(42 + self.data.len() * 8);
        out.push(1u8);
        out.push(self.params.is_some() as u8);
        for p in self.params.unwrap_or_default() {
            out.extend_from_slice(&p.to_le_bytes());
        }
        out.extend_from_slice(&(self.d as u64).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        for v in &self.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> RowsState {
        let corrupt = || {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "corrupt clustering state",
            )
        };
        if b.len() < 42 || b[0] != 1 {
            corrupt();
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let d = u(26) as usize;
        let len = u(34) as usize;
        if len.checked_mul(8).and_then(|x| x.checked_add(42)) != Some(b.len())
            || !len.is_multiple_of(d)
        {
            corrupt();
        }
        let params = (b[1] == 1).then(|| [u(2) as i64, u(10) as i64, u(18) as i64]);
        let data = (0..len).map(|i| f64::from_bits(u(42 + i * 8))).collect();
        RowsState { d, data, params }
    }
}

impl StateKind for RowsState {
    const KIND: u8 = 3;
    const NAME: &'static str = "clustering rows";
    fn encode(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&RowsState::encode(self));
    }
    fn decode(bytes: &[u8]) -> Self {
        RowsState::decode(bytes)
    }
    fn merge(&mut self, other: &mut Self) {
        RowsState::merge(self, other)
    }
    state_kind_methods!(RowsState);
}

/// A row with a NULL array or a NULL element is skipped.
pub(crate) fn add_row(
    mut state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    features: Option<Vec<Option<f64>>>,
    params: [i64; 3],
) -> State {
    let s = state_mut(&mut state, fcinfo, RowsState::default);
    s.set_params(params);
    if let Some(row) = features.and_then(|f| f.into_iter().collect::<Option<Vec<f64>>>()) {
        s.add(&row);
    }
    state
}

fn check_k(k: i32, what: &str) -> i64 {
    if !(1..=MAX_K as i32).contains(&k) {
        invalid(format!("{what} must be between 1 and {MAX_K}, got {k}"));
    }
    k as i64
}

#[pg_extern(immutable, parallel_safe)]
fn kmeans_rows_combine(
    a: Option<State>,
    b: Option<State>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    combine::<RowsState>(a, b, fcinfo)
}

fn fit_params(k: Option<i32>, seed: Option<i64>, value_feature: Option<i32>) -> [i64; 3] {
    let k = check_k(not_null(k, "k"), "the number of clusters k");
    let seed = not_null(seed, "seed");
    let vf = match value_feature {
        None => 0, // the last feature
        Some(v) if v >= 1 => v as i64,
        Some(v) => invalid(format!(
            "value_feature is the 1-based index of a feature and must be >= 1, got {v}"
        )),
    };
    [k, seed, vf]
}

#[pg_extern(immutable, parallel_safe, name = "kmeans_fit_trans")]
fn kmeans_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    k: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, features, fit_params(k, Some(1), None))
}
#[pg_extern(immutable, parallel_safe, name = "kmeans_fit_trans")]
fn kmeans_fit_trans_s(
    state: State,
    features: Option<Vec<Option<f64>>>,
    k: Option<i32>,
    seed: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, features, fit_params(k, seed, None))
}
#[pg_extern(immutable, parallel_safe, name = "kmeans_fit_trans")]
fn kmeans_fit_trans_sv(
    state: State,
    features: Option<Vec<Option<f64>>>,
    k: Option<i32>,
    seed: Option<i64>,
    value_feature: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let vf = not_null(value_feature, "value_feature");
    add_row(state, fcinfo, features, fit_params(k, seed, Some(vf)))
}

/// NULL for no rows.
#[pg_extern(immutable, parallel_safe)]
fn kmeans_fit_final(mut state: State) -> Option<kmeans_model> {
    let s = state.get::<RowsState>()?;
    let [k, seed, vf] = s.params?;
    if s.n_rows() == 0 {
        return None;
    }
    let vf = if vf == 0 { s.d } else { vf as usize };
    if vf > s.d {
        invalid(format!(
            "value_feature must be between 1 and the number of features ({}), got {vf}",
            s.d
        ));
    }
    let rows = s.sorted_rows();
    let fit = fit_kmeans(&rows, k as usize, seed as u64, vf - 1).or_raise();
    let stored = StoredKMeans::from_math(fit.model, seed, rows.len() as u64);
    let math = stored.to_math();
    Some(kmeans_model(Arc::new(Decoded { stored, math })))
}

fn sweep_params(k_min: Option<i32>, k_max: Option<i32>, seed: Option<i64>) -> [i64; 3] {
    let k_min = check_k(not_null(k_min, "k_min"), "k_min");
    let k_max = check_k(not_null(k_max, "k_max"), "k_max");
    if k_min > k_max {
        invalid(format!(
            "k_min must not exceed k_max, got {k_min} > {k_max}"
        ));
    }
    [k_min, k_max, not_null(seed, "seed")]
}

#[pg_extern(immutable, parallel_safe, name = "kmeans_k_sweep_trans")]
fn kmeans_k_sweep_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    k_min: Option<i32>,
    k_max: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, features, sweep_params(k_min, k_max, Some(1)))
}
#[pg_extern(immutable, parallel_safe, name = "kmeans_k_sweep_trans")]
fn kmeans_k_sweep_trans_s(
    state: State,
    features: Option<Vec<Option<f64>>>,
    k_min: Option<i32>,
    k_max: Option<i32>,
    seed: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, features, sweep_params(k_min, k_max, seed))
}

/// `[{"k", "inertia", "silhouette"}, ...]` for k = k_min..k_max; NULL for no rows. Each k is the
/// same fit as `kmeans_fit(features, k, seed)` (same inertia), with the maths' sampled silhouette
/// (at most 2000 rows; null for k = 1).
#[pg_extern(immutable, parallel_safe)]
fn kmeans_k_sweep_final(mut state: State) -> Option<JsonB> {
    let s = state.get::<RowsState>()?;
    let [k_min, k_max, seed] = s.params?;
    if s.n_rows() == 0 {
        return None;
    }
    let rows = s.sorted_rows();
    let points: Vec<serde_json::Value> = (k_min..=k_max)
        .map(|k| {
            pgrx::check_for_interrupts!();
            let fit = fit_kmeans(&rows, k as usize, seed as u64, s.d - 1).or_raise();
            let silhouette = model_silhouette(&fit.model, &rows).or_raise();
            serde_json::json!({ "k": k, "inertia": fit.model.inertia, "silhouette": silhouette })
        })
        .collect();
    Some(JsonB(serde_json::Value::Array(points)))
}

extension_sql!(
    r#"
CREATE CAST (kmeans_model AS jsonb) WITH INOUT;

CREATE AGGREGATE kmeans_fit(features double precision[], k integer) (
    sfunc = kmeans_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = kmeans_fit_final,
    combinefunc = kmeans_rows_combine,
    parallel = safe
);

CREATE AGGREGATE kmeans_fit(features double precision[], k integer, seed bigint) (
    sfunc = kmeans_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = kmeans_fit_final,
    combinefunc = kmeans_rows_combine,
    parallel = safe
);

CREATE AGGREGATE kmeans_fit(features double precision[], k integer, seed bigint, value_feature integer) (
    sfunc = kmeans_fit_trans,
    stype = clv_aggregate_state,
    finalfunc = kmeans_fit_final,
    combinefunc = kmeans_rows_combine,
    parallel = safe
);

CREATE AGGREGATE kmeans_k_sweep(features double precision[], k_min integer, k_max integer) (
    sfunc = kmeans_k_sweep_trans,
    stype = clv_aggregate_state,
    finalfunc = kmeans_k_sweep_final,
    combinefunc = kmeans_rows_combine,
    parallel = safe
);

CREATE AGGREGATE kmeans_k_sweep(features double precision[], k_min integer, k_max integer, seed bigint) (
    sfunc = kmeans_k_sweep_trans,
    stype = clv_aggregate_state,
    finalfunc = kmeans_k_sweep_final,
    combinefunc = kmeans_rows_combine,
    parallel = safe
);
"#,
    name = "kmeans_aggregates",
    requires = [
        kmeans_model,
        kmeans_fit_trans,
        kmeans_fit_trans_s,
        kmeans_fit_trans_sv,
        kmeans_fit_final,
        kmeans_k_sweep_trans,
        kmeans_k_sweep_trans_s,
        kmeans_k_sweep_final,
        kmeans_rows_combine
    ]
);

/// Cluster (1..k, k = the most valuable) of one customer: the nearest centroid in the model's
/// standardized units, ties to the lower cluster. NULL when a feature is NULL.
#[pg_extern(immutable, strict, parallel_safe)]
fn kmeans_assign(model: kmeans_model, features: Vec<Option<f64>>) -> Option<i32> {
    let row: Vec<f64> = features.into_iter().collect::<Option<Vec<f64>>>()?;
    Some(assign(&model.0.math, &row).or_raise() as i32 + 1)
}

/// The clusters of a model: number (1..k, ascending value), fitting rows assigned, centroid in the
/// original units.
#[pg_extern(immutable, strict, parallel_safe)]
fn kmeans_centroids(
    model: kmeans_model,
) -> TableIterator<
    'static,
    (
        name!(cluster, i32),
        name!(size, i64),
        name!(centroid, Vec<f64>),
    ),
> {
    let s = &model.0.stored;
    let rows: Vec<(i32, i64, Vec<f64>)> = s
        .centroids
        .iter()
        .zip(&s.sizes)
        .enumerate()
        .map(|(i, (c, n))| (i as i32 + 1, *n as i64, c.clone()))
        .collect();
    TableIterator::new(rows)
}

type SweepRows = TableIterator<
    'static,
    (
        name!(k, i32),
        name!(inertia, f64),
        name!(silhouette, Option<f64>),
    ),
>;

fn sweep_rows(sweep: &serde_json::Value) -> SweepRows {
    fn bad() -> ! {
        invalid("not a kmeans_k_sweep result: expected an array of {\"k\", \"inertia\", \"silhouette\"} objects".into())
    }
    let items = sweep.as_array().unwrap_or_else(|| bad());
    let rows: Vec<(i32, f64, Option<f64>)> = items
        .iter()
        .map(|p| {
            let k = p
                .get("k")
                .and_then(serde_json::Value::as_i64)
                .and_then(|k| i32::try_from(k).ok())
                .unwrap_or_else(|| bad());
            let inertia = p
                .get("inertia")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or_else(|| bad());
            let silhouette = match p.get("silhouette") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(v.as_f64().unwrap_or_else(|| bad())),
            };
            (k, inertia, silhouette)
        })
        .collect();
    TableIterator::new(rows)
}

/// The rows of a `kmeans_k_sweep` result, from its text. `kmeans_k_sweep_rows(jsonb)` (SQL, below)
/// calls this with `sweep::text`: pgrx's own jsonb conversion panics (XX000) on numbers jsonb holds
/// and a float does not (1e400), where this parses the text and answers 22023.
#[pg_extern(immutable, strict, parallel_safe)]
fn kmeans_k_sweep_rows_from_text(
    sweep: &str,
) -> TableIterator<
    'static,
    (
        name!(k, i32),
        name!(inertia, f64),
        name!(silhouette, Option<f64>),
    ),
> {
    match serde_json::from_str::<serde_json::Value>(sweep) {
        Ok(v) => sweep_rows(&v),
        Err(e) => invalid(format!("not a kmeans_k_sweep result: {e}")),
    }
}

/// 0.2.0's C definition of `kmeans_k_sweep_rows(jsonb)`: its symbol stays for a database between
/// installing this library and `ALTER EXTENSION clv_ext UPDATE` (see src/compat.rs); the SQL
/// function is now the wrapper below.
#[pg_extern(immutable, strict, parallel_safe, sql = false)]
fn kmeans_k_sweep_rows(
    sweep: JsonB,
) -> TableIterator<
    'static,
    (
        name!(k, i32),
        name!(inertia, f64),
        name!(silhouette, Option<f64>),
    ),
> {
    sweep_rows(&sweep.0)
}

extension_sql!(
    r#"
CREATE FUNCTION kmeans_k_sweep_rows(sweep jsonb) RETURNS TABLE (k integer, inertia double precision, silhouette double precision)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT * FROM kmeans_k_sweep_rows_from_text(sweep::text) $$;
"#,
    name = "kmeans_k_sweep_rows",
    requires = [kmeans_k_sweep_rows_from_text]
);
