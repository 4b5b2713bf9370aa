//! The stored model: the learner with everything needed to read it - task, method, resolved
//! hyperparameters, feature names, training size and metrics, feature importances,
//! coefficients - in a versioned form.
//!
//! The versioned form is the JSON (`to_json` / `from_json`); the SQL layer stores it framed
//! behind a 16-byte header that identifies it (clv_ext's `src/framed.rs`), so that a model of
//! megabytes is decoded once per query, not once per row.

use crate::learners::{fit, Coefficient, Learner};
use crate::metrics::{classification, regression};
use crate::options::{Hyper, Method, Options, Task};
use crate::rows::TrainingRows;
use crate::{invalid, Result};
use clv_math::ClvError;
use serde::{Deserialize, Serialize};

pub const MODEL_VERSION: u32 = 1;
/// Rows the permutation importances are measured on (a seeded sample of the training rows).
pub const IMPORTANCE_ROWS: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    pub feature: String,
    /// Increase of the training loss (mean squared error, or log-loss for classifiers) when the
    /// feature's values are permuted (Breiman 2001, section 10): how much the model relies on it.
    pub importance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningPoint {
    pub hyperparameters: Hyper,
    /// Validation RMSE (regression) or log-loss (classification) on the inner split.
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// 75% of the training rows fit, 25% score (a seeded split of the training rows only).
    pub inner_training_rows: u64,
    pub inner_validation_rows: u64,
    pub grid: Vec<TuningPoint>,
}

#[derive(Serialize, Deserialize)]
pub struct MlModel {
    pub version: u32,
    pub model: String,
    pub task: Task,
    pub method: Method,
    pub feature_names: Vec<String>,
    pub hyperparameters: Hyper,
    pub training_rows: u64,
    /// Rows the aggregate received when training used a sample of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_from: Option<u64>,
    pub training_metrics: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    pub feature_importance: Vec<Importance>,
    pub coefficients: Vec<Coefficient>,
    pub learner: Learner,
}

/// Candidate values of the tuned hyperparameters; a key the caller set explicitly is not tuned.
fn grid(method: Method) -> Vec<(&'static str, Vec<f64>)> {
    match method {
        Method::Linear => vec![("alpha", vec![0.1, 1.0, 10.0, 100.0, 1000.0])],
        Method::Tweedie => vec![
            ("alpha", vec![0.0, 0.001, 0.01, 0.1]),
            ("power", vec![1.2, 1.5, 1.8]),
        ],
        Method::Logistic => vec![("alpha", vec![0.01, 0.1, 1.0, 10.0])],
        Method::DecisionTree => vec![
            ("max_depth", vec![3.0, 5.0, 8.0, 12.0]),
            ("min_samples_leaf", vec![5.0, 20.0, 50.0]),
        ],
        Method::RandomForest => vec![
            ("max_depth", vec![6.0, 10.0, 14.0]),
            ("min_samples_leaf", vec![1.0, 5.0]),
        ],
        Method::GradientBoosting => vec![
            ("max_depth", vec![3.0, 5.0]),
            ("learning_rate", vec![0.05, 0.1]),
            ("n_trees", vec![100.0, 300.0]),
        ],
    }
}

fn with_value(h: &Hyper, key: &str, v: f64) -> Hyper {
    let mut h = h.clone();
    match key {
        "alpha" => h.alpha = Some(v),
        "power" => h.power = Some(v),
        "max_depth" => h.max_depth = Some(v as u16),
        "min_samples_leaf" => h.min_samples_leaf = Some(v as usize),
        "learning_rate" => h.learning_rate = Some(v),
        "n_trees" => h.n_trees = Some(v as usize),
        _ => unreachable!("grid keys"),
    }
    h
}

fn loss(task: Task, pred: &[f64], y: &[f64]) -> Result<f64> {
    match task {
        Task::Regression => Ok(regression(pred, y)?.rmse),
        Task::Classification => {
            let labels: Vec<bool> = y.iter().map(|&v| v == 1.0).collect();
            Ok(classification(pred, &labels)?.log_loss)
        }
    }
}

fn finite_predictions(learner: &Learner, rows: &TrainingRows) -> Result<Vec<f64>> {
    let p = learner.predict_all(rows);
    if let Some(v) = p.iter().find(|v| !v.is_finite()) {
        return Err(ClvError::OutOfRange(format!(
            "the model predicts {v} for a training row"
        )));
    }
    Ok(p)
}

fn tune(
    task: Task,
    method: Method,
    opts: &Options,
    explicit: &[String],
    rows: &TrainingRows,
    names: &[String],
    seed: u64,
) -> Result<(Hyper, Tuning)> {
    let (fit_rows, val_rows) = rows.split(0.75, seed);
    if fit_rows.n() < 2 || val_rows.n() < 1 {
        return invalid(format!(
            "tuning needs at least 4 training rows, got {}",
            rows.n()
        ));
    }
    let mut candidates = vec![opts.hyper.clone()];
    for (key, values) in grid(method) {
        if explicit.iter().any(|k| k == key) {
            continue;
        }
        candidates = candidates
            .iter()
            .flat_map(|h| values.iter().map(move |&v| with_value(h, key, v)))
            .collect();
    }
    let mut points = Vec::with_capacity(candidates.len());
    for h in candidates {
        clv_math::interrupt::check();
        let learner = fit(task, method, &h, &fit_rows, names)?;
        let pred = finite_predictions(&learner, &val_rows)?;
        points.push(TuningPoint {
            score: loss(task, &pred, &val_rows.y)?,
            hyperparameters: h,
        });
    }
    // The first of the best scores: the grid lists simpler models first.
    let best = points
        .iter()
        .fold(&points[0], |b, p| if p.score < b.score { p } else { b })
        .hyperparameters
        .clone();
    Ok((
        best,
        Tuning {
            inner_training_rows: fit_rows.n() as u64,
            inner_validation_rows: val_rows.n() as u64,
            grid: points,
        },
    ))
}

fn permutation_importance(
    task: Task,
    learner: &Learner,
    rows: &TrainingRows,
    names: &[String],
    seed: u64,
) -> Result<Vec<Importance>> {
    let sample = rows.sample(IMPORTANCE_ROWS, seed);
    let base = loss(task, &finite_predictions(learner, &sample)?, &sample.y)?;
    let base = if task == Task::Regression {
        base * base
    } else {
        base
    };
    let n = sample.n();
    names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            clv_math::interrupt::check();
            // A seeded shuffle of column j.
            let mut perm: Vec<usize> = (0..n).collect();
            let mut state = seed ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for i in (1..n).rev() {
                state = state.wrapping_add(1);
                let k =
                    (clv_math::segment::validation::splitmix64(state) % (i as u64 + 1)) as usize;
                perm.swap(i, k);
            }
            let mut shuffled = sample.clone();
            for (i, &p) in perm.iter().enumerate() {
                shuffled.x[i * sample.d + j] = sample.x[p * sample.d + j];
            }
            let l = loss(task, &finite_predictions(learner, &shuffled)?, &sample.y)?;
            let l = if task == Task::Regression { l * l } else { l };
            Ok(Importance {
                feature: name.clone(),
                importance: l - base,
            })
        })
        .collect()
}

/// Train a model on `rows` (in any order: they are sorted first). `explicit` lists the option keys
/// the caller set (they are not tuned).
pub fn train(
    task: Task,
    method: Method,
    opts: &Options,
    explicit: &[String],
    rows: &TrainingRows,
) -> Result<MlModel> {
    if rows.n() == 0 {
        return invalid("no training rows");
    }
    let names: Vec<String> = match &opts.feature_names {
        Some(n) if n.len() != rows.d => {
            return invalid(format!(
                "feature_names has {} names for {} features",
                n.len(),
                rows.d
            ));
        }
        Some(n) => n.clone(),
        None => (1..=rows.d).map(|j| format!("x{j}")).collect(),
    };
    let seed = opts.hyper.seed.unwrap_or(1);
    let sorted = rows.sorted();
    let (rows, sampled_from) = match opts.sample_rows {
        Some(k) if k < sorted.n() => (sorted.sample(k, seed), Some(sorted.n() as u64)),
        _ => (sorted, None),
    };
    let (hyper, tuning) = if opts.tune {
        let (h, t) = tune(task, method, opts, explicit, &rows, &names, seed)?;
        (h, Some(t))
    } else {
        (opts.hyper.clone(), None)
    };
    let learner = fit(task, method, &hyper, &rows, &names)?;
    let pred = finite_predictions(&learner, &rows)?;
    let training_metrics = match task {
        Task::Regression => serde_json::to_value(regression(&pred, &rows.y)?),
        Task::Classification => {
            let labels: Vec<bool> = rows.y.iter().map(|&v| v == 1.0).collect();
            serde_json::to_value(classification(&pred, &labels)?)
        }
    }
    .expect("metrics serialize");
    let feature_importance = permutation_importance(task, &learner, &rows, &names, seed)?;
    let coefficients = learner.coefficients(&names, &hyper, &rows);
    Ok(MlModel {
        version: MODEL_VERSION,
        model: "ml".into(),
        task,
        method,
        feature_names: names,
        hyperparameters: hyper,
        training_rows: rows.n() as u64,
        sampled_from,
        training_metrics,
        tuning,
        feature_importance,
        coefficients,
        learner,
    })
}

impl std::fmt::Debug for MlModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MlModel({:?} {:?}, {} features, {} rows)",
            self.task,
            self.method,
            self.n_features(),
            self.training_rows
        )
    }
}

impl MlModel {
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// The prediction for one feature vector: expected label (regression) or P(true). A vector of
    /// the wrong length or with a NaN or infinite value is refused (22023); a prediction that is
    /// not finite is out of range (22003).
    pub fn predict(&self, x: &[f64]) -> Result<f64> {
        if x.len() != self.n_features() {
            return invalid(format!(
                "the model takes {} features, got {}",
                self.n_features(),
                x.len()
            ));
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return invalid(format!("features must be finite numbers, got {v}"));
        }
        // A hand-edited model can hold a tree that indexes past the features: the library panics.
        let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.learner.predict(x)))
            .map_err(|_| {
                ClvError::Corrupt(
                    "the stored model is inconsistent (its trees do not fit its features)".into(),
                )
            })?;
        if p.is_finite() {
            Ok(p)
        } else {
            Err(ClvError::OutOfRange(format!(
                "the prediction for these features is not finite ({p})"
            )))
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("model serializes")
    }

    pub fn from_json(text: &[u8]) -> Result<MlModel> {
        let v: serde_json::Value = serde_json::from_slice(text)
            .map_err(|e| ClvError::InvalidParameter(format!("invalid ml_model: {e}")))?;
        match v.get("version").and_then(serde_json::Value::as_u64) {
            Some(1) => {}
            Some(other) => {
                return invalid(format!(
                    "ml_model version {other} is not supported by this release"
                ))
            }
            None => return invalid("invalid ml_model: no \"version\""),
        }
        if v.get("model").and_then(serde_json::Value::as_str) != Some("ml") {
            return invalid("invalid ml_model: not an ml model (\"model\": \"ml\")");
        }
        let m: MlModel = serde_json::from_value(v)
            .map_err(|e| ClvError::InvalidParameter(format!("invalid ml_model: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<()> {
        let d = self.n_features();
        if d == 0 {
            return invalid("invalid ml_model: no features");
        }
        let ok = match (&self.learner, self.method, self.task) {
            (
                Learner::Linear {
                    coefficients,
                    intercept,
                },
                Method::Linear,
                Task::Regression,
            ) => {
                coefficients.len() == d
                    && intercept.is_finite()
                    && coefficients.iter().all(|c| c.is_finite())
            }
            (
                Learner::Glm {
                    logit,
                    means,
                    stds,
                    intercept,
                    coefficients,
                },
                Method::Tweedie | Method::Logistic,
                _,
            ) => {
                *logit == (self.method == Method::Logistic)
                    && (self.task == Task::Classification) == *logit
                    && [means, stds, coefficients]
                        .iter()
                        .all(|v| v.len() == d && v.iter().all(|x| x.is_finite()))
                    && stds.iter().all(|s| *s > 0.0)
                    && intercept.is_finite()
            }
            (Learner::Tree { .. }, Method::DecisionTree, _)
            | (Learner::Forest { .. }, Method::RandomForest, _) => true,
            (Learner::Boosting { logit, .. }, Method::GradientBoosting, t) => {
                *logit == (t == Task::Classification)
            }
            _ => false,
        };
        if !ok {
            return invalid(format!(
                "invalid ml_model: its learner does not match method {} with {d} features",
                self.method.name()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
