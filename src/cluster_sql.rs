//! DBSCAN, hierarchical clustering and PCA in SQL (the maths: `clv_ml::unsupervised`):
//! the types `cluster_model` (DBSCAN or hierarchical) and `pca_model`, the aggregates
//! `dbscan_fit`, `hierarchical_fit`, `hierarchical_fit_distance` and `pca_fit`, and the row
//! functions `cluster_assign` and `pca_project`.
//!
//! The aggregates collect the feature rows exactly as `kmeans_fit` does (kmeans_sql.rs: the same
//! state and combine function, so they run in parallel plans and on Citus) and fit in the final
//! function on sorted rows (the model depends on the set of rows only), on a worker thread the
//! backend watches (`clv_ml::runner`), so `statement_timeout` stops a fit at once. Hierarchical
//! clustering refuses more than `MAX_ROWS` rows (54000) as they arrive. Models are framed
//! (framed.rs): scoring decodes a model once per call site.

use crate::agg_state::State;
use crate::errors::{not_null, raise_code, OrRaise};
use crate::framed::{framed_type, Framed};
use crate::kmeans_sql::{add_row, RowsState};
use clv_math::ClvError;
use clv_ml::rows::TrainingRows;
use clv_ml::unsupervised::dbscan::{self, DbscanModel};
use clv_ml::unsupervised::hierarchical::{self, Cut, HierarchicalModel, Linkage, MAX_ROWS};
use clv_ml::unsupervised::pca::{self, PcaModel};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

/// A clustering of customers that can assign new ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum ClusterModel {
    Dbscan(DbscanModel),
    Hierarchical(HierarchicalModel),
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    version: u32,
    #[serde(flatten)]
    model: T,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
enum PcaTagged {
    Pca(PcaModel),
}

fn parse_stored<T: serde::de::DeserializeOwned>(text: &[u8], name: &str) -> Result<T, ClvError> {
    let v: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| ClvError::InvalidParameter(format!("invalid {name}: {e}")))?;
    match v.get("version").and_then(serde_json::Value::as_u64) {
        Some(1) => {}
        Some(other) => {
            return Err(ClvError::InvalidParameter(format!(
                "{name} version {other} is not supported by this release"
            )))
        }
        None => {
            return Err(ClvError::InvalidParameter(format!(
                "invalid {name}: no \"version\""
            )))
        }
    }
    let s: Stored<T> = serde_json::from_value(v)
        .map_err(|e| ClvError::InvalidParameter(format!("invalid {name}: {e}")))?;
    Ok(s.model)
}

impl Framed for ClusterModel {
    const SQL_NAME: &'static str = "cluster_model";
    fn to_json(&self) -> String {
        serde_json::to_string(&Stored {
            version: VERSION,
            model: self,
        })
        .expect("model serializes")
    }
    fn from_json(text: &[u8]) -> Result<Self, ClvError> {
        let m: ClusterModel = parse_stored(text, Self::SQL_NAME)?;
        match &m {
            ClusterModel::Dbscan(d) => d.validate()?,
            ClusterModel::Hierarchical(h) => h.validate()?,
        }
        Ok(m)
    }
}

impl Framed for PcaModel {
    const SQL_NAME: &'static str = "pca_model";
    fn to_json(&self) -> String {
        serde_json::to_string(&Stored {
            version: VERSION,
            model: PcaTagged::Pca(self.clone()),
        })
        .expect("model serializes")
    }
    fn from_json(text: &[u8]) -> Result<Self, ClvError> {
        let PcaTagged::Pca(m) = parse_stored(text, Self::SQL_NAME)?;
        m.validate()?;
        Ok(m)
    }
}

framed_type!(cluster_model, ClusterModel);
framed_type!(pca_model, PcaModel);

// The third parameter slot names the aggregate, so rows of one aggregate cannot be combined
// with another's; the first two hold its arguments.
const DBSCAN: i64 = 1;
const HIERARCHICAL_K: i64 = 2;
const HIERARCHICAL_DISTANCE: i64 = 3;
const PCA: i64 = 4;

fn invalid(msg: impl Into<String>) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

fn linkage_code(linkage: Option<&str>) -> i64 {
    match Linkage::parse(not_null(linkage, "linkage")).or_raise() {
        Linkage::Ward => 0,
        Linkage::Complete => 1,
        Linkage::Average => 2,
        Linkage::Single => 3,
    }
}

fn linkage_of(code: i64) -> Linkage {
    [
        Linkage::Ward,
        Linkage::Complete,
        Linkage::Average,
        Linkage::Single,
    ][code as usize]
}

fn training_rows(s: &RowsState) -> TrainingRows {
    let rows = s.sorted_rows();
    let d = rows.first().map_or(0, Vec::len);
    TrainingRows {
        d,
        y: vec![0.0; rows.len()],
        x: rows.into_iter().flatten().collect(),
    }
}

fn too_many_for_hierarchical(s: &RowsState) {
    if hierarchical::n_rows_too_many(s.n_rows()) {
        raise_code(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "hierarchical clustering accepts at most {MAX_ROWS} rows (it keeps n (n - 1) / 2 distances); cluster a sample, e.g. WHERE clv_in_training_set(customer_id, seed, share)"
            ),
        )
    }
}

#[pg_extern(immutable, parallel_safe)]
fn dbscan_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    eps: Option<f64>,
    min_points: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let eps = not_null(eps, "eps");
    let min_points = not_null(min_points, "min_points");
    dbscan::check_params(eps, min_points as i64).or_raise();
    add_row(
        state,
        fcinfo,
        features,
        [eps.to_bits() as i64, min_points as i64, DBSCAN],
    )
}

/// NULL for no rows.
#[pg_extern(immutable, parallel_safe)]
fn dbscan_fit_final(mut state: State) -> Option<cluster_model> {
    let s = state.get::<RowsState>()?;
    let [eps, min_points, _] = s.params?;
    if s.n_rows() == 0 {
        return None;
    }
    let rows = training_rows(s);
    let eps = f64::from_bits(eps as u64);
    let m = clv_ml::runner::run(move || dbscan::fit(&rows, eps, min_points as usize)).or_raise();
    Some(cluster_model::owned(ClusterModel::Dbscan(m)))
}

fn hierarchical_row(
    state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    features: Option<Vec<Option<f64>>>,
    params: [i64; 3],
) -> State {
    let mut state = add_row(state, fcinfo, features, params);
    if let Some(s) = state.get::<RowsState>() {
        too_many_for_hierarchical(s);
    }
    state
}

fn hierarchical_k(
    state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    features: Option<Vec<Option<f64>>>,
    clusters: Option<i32>,
    linkage: Option<&str>,
) -> State {
    let k = not_null(clusters, "clusters");
    if !(1..=MAX_ROWS as i32).contains(&k) {
        invalid(format!(
            "clusters must be between 1 and {MAX_ROWS}, got {k}"
        ));
    }
    let code = linkage_code(linkage);
    hierarchical_row(state, fcinfo, features, [k as i64, code, HIERARCHICAL_K])
}

#[pg_extern(immutable, parallel_safe, name = "hierarchical_fit_trans")]
fn hierarchical_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    clusters: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    hierarchical_k(state, fcinfo, features, clusters, Some("ward"))
}

#[pg_extern(immutable, parallel_safe, name = "hierarchical_fit_trans")]
fn hierarchical_fit_trans_l(
    state: State,
    features: Option<Vec<Option<f64>>>,
    clusters: Option<i32>,
    linkage: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    hierarchical_k(state, fcinfo, features, clusters, linkage)
}

fn hierarchical_distance(
    state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    features: Option<Vec<Option<f64>>>,
    max_distance: Option<f64>,
    linkage: Option<&str>,
) -> State {
    let t = not_null(max_distance, "max_distance");
    if !(t.is_finite() && t >= 0.0) {
        invalid(format!(
            "max_distance must be a finite number >= 0, got {t}"
        ));
    }
    let code = linkage_code(linkage);
    hierarchical_row(
        state,
        fcinfo,
        features,
        [t.to_bits() as i64, code, HIERARCHICAL_DISTANCE],
    )
}

#[pg_extern(immutable, parallel_safe, name = "hierarchical_fit_distance_trans")]
fn hierarchical_fit_distance_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    max_distance: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    hierarchical_distance(state, fcinfo, features, max_distance, Some("ward"))
}

#[pg_extern(immutable, parallel_safe, name = "hierarchical_fit_distance_trans")]
fn hierarchical_fit_distance_trans_l(
    state: State,
    features: Option<Vec<Option<f64>>>,
    max_distance: Option<f64>,
    linkage: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    hierarchical_distance(state, fcinfo, features, max_distance, linkage)
}

/// NULL for no rows.
#[pg_extern(immutable, parallel_safe)]
fn hierarchical_fit_final(mut state: State) -> Option<cluster_model> {
    let s = state.get::<RowsState>()?;
    let [value, code, kind] = s.params?;
    if s.n_rows() == 0 {
        return None;
    }
    too_many_for_hierarchical(s);
    let cut = if kind == HIERARCHICAL_K {
        Cut::Clusters(value as usize)
    } else {
        Cut::MaxDistance(f64::from_bits(value as u64))
    };
    let rows = training_rows(s);
    let linkage = linkage_of(code);
    let m = clv_ml::runner::run(move || hierarchical::fit(&rows, linkage, cut)).or_raise();
    Some(cluster_model::owned(ClusterModel::Hierarchical(m)))
}

#[pg_extern(immutable, parallel_safe)]
fn pca_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    components: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let k = not_null(components, "components");
    if !(1..=pca::MAX_FEATURES as i32).contains(&k) {
        invalid(format!(
            "components must be between 1 and the number of features, got {k}"
        ));
    }
    add_row(state, fcinfo, features, [k as i64, 0, PCA])
}

/// NULL for no rows.
#[pg_extern(immutable, parallel_safe)]
fn pca_fit_final(mut state: State) -> Option<pca_model> {
    let s = state.get::<RowsState>()?;
    let [k, _, _] = s.params?;
    if s.n_rows() == 0 {
        return None;
    }
    let rows = training_rows(s);
    let m = clv_ml::runner::run(move || pca::fit(&rows, k as usize)).or_raise();
    Some(pca_model::owned(m))
}

extension_sql!(
    r#"
CREATE CAST (cluster_model AS jsonb) WITH INOUT;
CREATE CAST (pca_model AS jsonb) WITH INOUT;

CREATE AGGREGATE dbscan_fit(features double precision[], eps double precision, min_points integer) (
    sfunc = dbscan_fit_trans, stype = clv_aggregate_state, finalfunc = dbscan_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
CREATE AGGREGATE hierarchical_fit(features double precision[], clusters integer) (
    sfunc = hierarchical_fit_trans, stype = clv_aggregate_state, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
CREATE AGGREGATE hierarchical_fit(features double precision[], clusters integer, linkage text) (
    sfunc = hierarchical_fit_trans, stype = clv_aggregate_state, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
CREATE AGGREGATE hierarchical_fit_distance(features double precision[], max_distance double precision) (
    sfunc = hierarchical_fit_distance_trans, stype = clv_aggregate_state, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
CREATE AGGREGATE hierarchical_fit_distance(features double precision[], max_distance double precision, linkage text) (
    sfunc = hierarchical_fit_distance_trans, stype = clv_aggregate_state, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
CREATE AGGREGATE pca_fit(features double precision[], components integer) (
    sfunc = pca_fit_trans, stype = clv_aggregate_state, finalfunc = pca_fit_final,
    combinefunc = kmeans_rows_combine, parallel = safe
);
"#,
    name = "cluster_aggregates",
    requires = [
        cluster_model,
        pca_model,
        dbscan_fit_trans,
        dbscan_fit_final,
        hierarchical_fit_trans,
        hierarchical_fit_trans_l,
        hierarchical_fit_distance_trans,
        hierarchical_fit_distance_trans_l,
        hierarchical_fit_final,
        pca_fit_trans,
        pca_fit_final,
        "kmeans_aggregates"
    ]
);

/// The cluster of one customer: DBSCAN, the cluster of the nearest core point within eps, else
/// 0 (noise); hierarchical, the cluster of the nearest training row. Standardized Euclidean
/// distance with the fit's means and standard deviations. NULL when a feature is NULL; 22023 for
/// a wrong number of features or a NaN / infinite one.
#[pg_extern(immutable, strict, parallel_safe)]
fn cluster_assign(
    model: cluster_model,
    features: Vec<Option<f64>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<i32> {
    let row: Vec<f64> = features.into_iter().collect::<Option<Vec<f64>>>()?;
    let m = model.cached(fcinfo);
    let c = match m.as_ref() {
        ClusterModel::Dbscan(d) => d.assign(&row),
        ClusterModel::Hierarchical(h) => h.assign(&row),
    };
    Some(c.or_raise() as i32)
}

/// The principal-component scores of one customer (one per kept component): the z-scores of
/// the features times the components. NULL when a feature is NULL; 22023 for a wrong number of
/// features or a NaN / infinite one.
#[pg_extern(immutable, strict, parallel_safe)]
fn pca_project(
    model: pca_model,
    features: Vec<Option<f64>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<Vec<f64>> {
    let row: Vec<f64> = features.into_iter().collect::<Option<Vec<f64>>>()?;
    Some(model.cached(fcinfo).project(&row).or_raise())
}
