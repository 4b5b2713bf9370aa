//! Supervised models in SQL: the `ml_model` type, the training aggregates `ml_regression_fit` and
//! `ml_classifier_fit`, the row functions `ml_predict` and `ml_predict_probability`, and readers.
//! The maths is `clv_ml`; this file converts values and errors and caches decoded models.
//!
//! Training collects every row (rows x (features + 1) doubles, at most `clv_ml::rows::MAX_VALUES`,
//! else SQLSTATE 54000) and trains in the final function on a worker thread the backend watches
//! for interrupts every 10 ms (`clv_ml::runner`), so `statement_timeout` stops it at once.
//!
//! Scoring decodes a model once per call site: `fn_extra` keeps the decoded model with the 16-byte
//! header identity of its stored bytes; each row reads only that header (a slice of the toasted
//! value, not the whole model) to see whether its model is the cached one, and not even that when
//! the row brings the same TOAST pointer as the row before.

use crate::agg_state::{combine, state_kind_methods, state_mut, State, StateKind};
use crate::errors::{raise_code, OrRaise};
use clv_ml::model::MlModel;
use clv_ml::options::{parse_options, Method, Options, Task};
use clv_ml::rows::{TooLarge, TrainingRows};
use clv_ml::ClvError;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use std::ffi::CStr;

crate::framed::framed_type!(ml_model, MlModel);

impl crate::framed::Framed for MlModel {
    const SQL_NAME: &'static str = "ml_model";
    fn to_json(&self) -> String {
        MlModel::to_json(self)
    }
    fn from_json(text: &[u8]) -> Result<Self, ClvError> {
        MlModel::from_json(text)
    }
}

fn invalid(msg: impl Into<String>) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

fn too_large(e: TooLarge) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED, e.0)
}

/// Rows plus the aggregate's settings, which must be the same on every row.
#[derive(Clone)]
pub(crate) struct FitState {
    task: Task,
    method_text: String,
    options_text: String,
    /// The options' jsonb bytes as first seen (empty for no options argument, and in a state
    /// decoded for combining, which gets no more rows).
    options_raw: Vec<u8>,
    method: Method,
    options: Options,
    explicit: Vec<String>,
    rows: TrainingRows,
}

/// The options argument (jsonb) as its stored bytes, or None when the call has no options
/// argument. jsonb's binary form is canonical (sorted, deduplicated keys), so equal bytes are
/// equal options; comparing them costs far less per row than printing the value.
unsafe fn options_raw(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> Option<&'static [u8]> {
    unsafe {
        let nargs = (*fcinfo).nargs as usize;
        if index >= nargs {
            return None;
        }
        let arg = *(*fcinfo).args.as_ptr().add(index);
        if arg.isnull {
            raise_code(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "options must not be NULL (use '{}' for the defaults)",
            )
        }
        // Detoasted into the per-row memory context, which outlives this call's use of it.
        let v = pg_sys::pg_detoast_datum_packed(arg.value.cast_mut_ptr());
        Some(pgrx::varlena::varlena_to_byte_slice(v))
    }
}

/// The options argument as text (once per aggregate state: jsonb_out on every row would cost more
/// than the row itself).
unsafe fn options_text(fcinfo: pg_sys::FunctionCallInfo, index: usize) -> String {
    unsafe {
        if options_raw(fcinfo, index).is_none() {
            return "{}".into();
        }
        let arg = *(*fcinfo).args.as_ptr().add(index);
        let cstr = pg_sys::OidOutputFunctionCall(pg_sys::Oid::from(pg_sys::F_JSONB_OUT), arg.value);
        CStr::from_ptr(cstr).to_string_lossy().into_owned()
    }
}

fn settings(task: Task, method: &str, options: &str) -> (Method, Options, Vec<String>) {
    let m = Method::parse(task, method).or_raise();
    let v: serde_json::Value = serde_json::from_str(options)
        .unwrap_or_else(|e| invalid(format!("options are not valid JSON: {e}")));
    let explicit = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    (m, parse_options(m, &v).or_raise(), explicit)
}

fn add_row(
    mut state: State,
    fcinfo: pg_sys::FunctionCallInfo,
    task: Task,
    features: Option<Vec<Option<f64>>>,
    label: Option<f64>,
    method: Option<&str>,
) -> State {
    let Some(method) = method else {
        raise_code(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "method must not be NULL",
        )
    };
    let raw = unsafe { options_raw(fcinfo, 4) }.unwrap_or_default();
    let s = state_mut(&mut state, fcinfo, || {
        let options = unsafe { options_text(fcinfo, 4) };
        let (m, o, explicit) = settings(task, method, &options);
        FitState {
            task,
            method_text: method.to_owned(),
            options_text: options,
            options_raw: raw.to_vec(),
            method: m,
            options: o,
            explicit,
            rows: TrainingRows::default(),
        }
    });
    if s.method_text != method || s.options_raw != raw {
        invalid("method and options must be the same on every row");
    }
    // Rows with a NULL label or a NULL feature vector or element are skipped.
    if let (Some(x), Some(y)) = (
        features.and_then(|f| f.into_iter().collect::<Option<Vec<f64>>>()),
        label,
    ) {
        if let Err(e) = s.rows.push(&x, y).or_raise() {
            too_large(e)
        }
    }
    state
}

#[pg_extern(immutable, parallel_safe, name = "ml_regression_fit_trans")]
fn ml_regression_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    label: Option<f64>,
    method: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, Task::Regression, features, label, method)
}

#[pg_extern(immutable, parallel_safe, name = "ml_classifier_fit_trans")]
fn ml_classifier_fit_trans(
    state: State,
    features: Option<Vec<Option<f64>>>,
    label: Option<bool>,
    method: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let y = label.map(|b| f64::from(u8::from(b)));
    add_row(state, fcinfo, Task::Classification, features, y, method)
}

// Layout: version u8 = 1, task u8, method text and options text (u64 length + UTF-8 each), rows.
impl StateKind for FitState {
    const KIND: u8 = 6;
    const NAME: &'static str = "ML training";
    fn encode(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[1u8, (self.task == Task::Classification) as u8]);
        for t in [&self.method_text, &self.options_text] {
            out.extend_from_slice(&(t.len() as u64).to_le_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        out.extend_from_slice(&self.rows.encode());
    }
    fn decode(bytes: &[u8]) -> Self {
        let corrupt = || -> ! {
            raise_code(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                "corrupt ML training state",
            )
        };
        if bytes.len() < 2 || bytes[0] != 1 {
            corrupt();
        }
        let task = if bytes[1] == 1 {
            Task::Classification
        } else {
            Task::Regression
        };
        let mut at = 2;
        let mut text = || -> String {
            let len = bytes
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
                .unwrap_or_else(|| corrupt());
            let s = bytes
                .get(at + 8..(at + 8).saturating_add(len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_else(|| corrupt());
            at += 8 + len;
            s.to_owned()
        };
        let (method_text, options_text) = (text(), text());
        let rows = TrainingRows::decode(&bytes[at..]).or_raise();
        let (method, options, explicit) = settings(task, &method_text, &options_text);
        FitState {
            task,
            method_text,
            options_text,
            options_raw: Vec::new(),
            method,
            options,
            explicit,
            rows,
        }
    }
    fn merge(&mut self, b: &mut Self) {
        if self.method_text != b.method_text || self.options_text != b.options_text {
            invalid("method and options must be the same on every row");
        }
        if let Err(e) = self.rows.merge(&b.rows).or_raise() {
            too_large(e)
        }
    }
    state_kind_methods!(FitState);
}

#[pg_extern(immutable, parallel_safe)]
fn ml_fit_combine(a: Option<State>, b: Option<State>, fcinfo: pg_sys::FunctionCallInfo) -> State {
    combine::<FitState>(a, b, fcinfo)
}

/// NULL for no rows.
#[pg_extern(immutable, parallel_safe)]
fn ml_fit_final(mut state: State) -> Option<ml_model> {
    let s = state.get::<FitState>()?;
    if s.rows.n() == 0 {
        return None;
    }
    if let Some(k) = s.options.sample_rows.filter(|&k| k < s.rows.n()) {
        notice!(
            "clv_ext: training on a seeded sample of {k} of {} rows (option \"sample_rows\")",
            s.rows.n()
        );
    }
    let (task, method, options, explicit, rows) = (
        s.task,
        s.method,
        s.options.clone(),
        s.explicit.clone(),
        s.rows.clone(),
    );
    let model =
        clv_ml::runner::run(move || clv_ml::model::train(task, method, &options, &explicit, &rows))
            .or_raise();
    Some(ml_model::owned(model))
}

extension_sql!(
    r#"
CREATE CAST (ml_model AS jsonb) WITH INOUT;

CREATE AGGREGATE ml_regression_fit(features double precision[], label double precision, method text) (
    sfunc = ml_regression_fit_trans, stype = clv_aggregate_state, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine,
    parallel = safe
);
CREATE AGGREGATE ml_regression_fit(features double precision[], label double precision, method text, options jsonb) (
    sfunc = ml_regression_fit_trans, stype = clv_aggregate_state, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine,
    parallel = safe
);
CREATE AGGREGATE ml_classifier_fit(features double precision[], label boolean, method text) (
    sfunc = ml_classifier_fit_trans, stype = clv_aggregate_state, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine,
    parallel = safe
);
CREATE AGGREGATE ml_classifier_fit(features double precision[], label boolean, method text, options jsonb) (
    sfunc = ml_classifier_fit_trans, stype = clv_aggregate_state, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine,
    parallel = safe
);
"#,
    name = "ml_fit_aggregates",
    requires = [
        ml_model,
        ml_regression_fit_trans,
        ml_regression_fit_trans_o,
        ml_classifier_fit_trans,
        ml_classifier_fit_trans_o,
        ml_fit_combine,
        ml_fit_final
    ]
);

/// The 4-argument transition functions: same as the 3-argument ones, the options read from the
/// fifth argument by `options_text`.
#[pg_extern(
    immutable,
    parallel_safe,
    name = "ml_regression_fit_trans",
    sql = "CREATE FUNCTION ml_regression_fit_trans(clv_aggregate_state, double precision[], double precision, text, jsonb) RETURNS clv_aggregate_state IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ml_regression_fit_trans_o_wrapper';"
)]
fn ml_regression_fit_trans_o(
    state: State,
    features: Option<Vec<Option<f64>>>,
    label: Option<f64>,
    method: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    add_row(state, fcinfo, Task::Regression, features, label, method)
}

#[pg_extern(
    immutable,
    parallel_safe,
    name = "ml_classifier_fit_trans",
    sql = "CREATE FUNCTION ml_classifier_fit_trans(clv_aggregate_state, double precision[], boolean, text, jsonb) RETURNS clv_aggregate_state IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ml_classifier_fit_trans_o_wrapper';"
)]
fn ml_classifier_fit_trans_o(
    state: State,
    features: Option<Vec<Option<f64>>>,
    label: Option<bool>,
    method: Option<&str>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> State {
    let y = label.map(|b| f64::from(u8::from(b)));
    add_row(state, fcinfo, Task::Classification, features, y, method)
}

fn row(features: Vec<Option<f64>>) -> Option<Vec<f64>> {
    features.into_iter().collect()
}

/// The model's prediction for one feature vector: the expected label (regression, e.g. holdout
/// spend in currency) or P(label = true) (classifiers). NULL when an element is NULL; 22023 for
/// a vector of the wrong length or with NaN or infinity; 22003 when the prediction overflows.
#[pg_extern(immutable, strict, parallel_safe)]
fn ml_predict(
    model: ml_model,
    features: Vec<Option<f64>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<f64> {
    let x = row(features)?;
    Some(model.cached(fcinfo).predict(&x).or_raise())
}

/// P(label = true) of a classifier; 22023 for a regression model.
#[pg_extern(immutable, strict, parallel_safe)]
fn ml_predict_probability(
    model: ml_model,
    features: Vec<Option<f64>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Option<f64> {
    let m = model.cached(fcinfo);
    if m.task != Task::Classification {
        invalid("ml_predict_probability needs a classifier (a model from ml_classifier_fit); use ml_predict for regression models");
    }
    let x = row(features)?;
    Some(m.predict(&x).or_raise())
}

/// Everything about a model except the learner itself: task, method, feature names, resolved
/// hyperparameters, training rows and metrics, tuning grid, importances, coefficients.
#[pg_extern(immutable, strict, parallel_safe)]
fn ml_model_summary(model: ml_model) -> JsonB {
    let mut v: serde_json::Value =
        serde_json::from_str(&model.decoded().to_json()).expect("model JSON");
    if let Some(o) = v.as_object_mut() {
        o.remove("learner");
    }
    JsonB(v)
}

/// Permutation importance of each feature, largest first.
#[pg_extern(immutable, strict, parallel_safe)]
fn ml_feature_importance(
    model: ml_model,
) -> TableIterator<
    'static,
    (
        name!(feature, String),
        name!(importance, f64),
        name!(rank, i32),
    ),
> {
    let m = model.decoded();
    let mut rows: Vec<(String, f64)> = m
        .feature_importance
        .iter()
        .map(|i| (i.feature.clone(), i.importance))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    TableIterator::new(
        rows.into_iter()
            .enumerate()
            .map(|(k, (f, i))| (f, i, k as i32 + 1)),
    )
}

/// Intercept and coefficients (linear: original units; Tweedie and logistic: per standard
/// deviation of the feature, on the link scale) with standard errors; no rows for tree models.
#[pg_extern(immutable, strict, parallel_safe)]
fn ml_coefficients(
    model: ml_model,
) -> TableIterator<
    'static,
    (
        name!(term, String),
        name!(coefficient, f64),
        name!(standard_error, Option<f64>),
    ),
> {
    let m = model.decoded();
    TableIterator::new(
        m.coefficients
            .iter()
            .map(|c| (c.term.clone(), c.coefficient, c.standard_error))
            .collect::<Vec<_>>(),
    )
}
