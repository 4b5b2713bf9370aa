//! The learners, each a library call:
//!
//! | method            | regression                                  | classification (P(label = true))            |
//! |-------------------|---------------------------------------------|---------------------------------------------|
//! | linear            | linfa-linear OLS (alpha = 0), smartcore ridge | -                                         |
//! | tweedie           | linfa-linear `TweedieRegressor`, log link   | -                                           |
//! | logistic          | -                                           | linfa-logistic `LogisticRegression`         |
//! | decision_tree     | smartcore `DecisionTreeRegressor`           | the same on 0/1 labels                      |
//! | random_forest     | smartcore `RandomForestRegressor`           | the same on 0/1 labels                      |
//! | gradient_boosting | forust-ml, squared loss                     | forust-ml, log loss                         |
//!
//! Trees and forests classify with smartcore's regressor on 0/1 labels: for two classes the
//! variance reduction of a split is exactly half its Gini reduction (2 p (1 - p) = 2 var), so the
//! splits are those of a Gini tree, and the leaf mean is the class-1 share - the probability
//! scikit-learn's `predict_proba` gives. smartcore's classifiers return labels only.
//!
//! Ridge follows scikit-learn's `Ridge`: features and label centred, the intercept not penalized.
//! The GLMs (Tweedie, logistic) standardize the features with the training mean and population
//! standard deviation (scikit-learn's `StandardScaler`) and report coefficients per standard
//! deviation; `alpha` is scikit-learn's (mean deviance + alpha/2 |w|^2 for Tweedie, C = 1/alpha
//! for logistic).

use crate::options::{Hyper, Method, Task};
use crate::rows::TrainingRows;
use crate::{invalid, Result};
use clv_math::ClvError;
use forust_ml::{GradientBooster, Matrix};
use linfa::prelude::*;
use linfa_linalg::cholesky::InverseC;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{
    RidgeRegression, RidgeRegressionParameters, RidgeRegressionSolverName,
};
use smartcore::tree::decision_tree_regressor::{
    DecisionTreeRegressor, DecisionTreeRegressorParameters,
};

type Tree = DecisionTreeRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;
type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Learner {
    /// prediction = intercept + coefficients . x
    Linear {
        intercept: f64,
        coefficients: Vec<f64>,
    },
    /// eta = intercept + sum_j coefficients_j (x_j - means_j) / stds_j; prediction = exp(eta)
    /// (Tweedie, log link) or 1 / (1 + exp(-eta)) (logistic).
    Glm {
        logit: bool,
        means: Vec<f64>,
        stds: Vec<f64>,
        intercept: f64,
        coefficients: Vec<f64>,
    },
    Tree {
        tree: Box<Tree>,
    },
    Forest {
        forest: Box<Forest>,
    },
    Boosting {
        logit: bool,
        booster: Box<GradientBooster>,
    },
}

/// A coefficient with its classical standard error (None where the method has none: ridge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub term: String,
    pub coefficient: f64,
    pub standard_error: Option<f64>,
}

fn failed(what: &str, e: impl std::fmt::Display) -> ClvError {
    ClvError::NoConvergence {
        message: format!("{what} failed: {e}"),
        hint: "check the features for constant or collinear columns, or change the hyperparameters"
            .into(),
    }
}

fn x_array(rows: &TrainingRows) -> Array2<f64> {
    Array2::from_shape_vec((rows.n(), rows.d), rows.x.clone()).expect("n x d values")
}

fn dense(rows: &TrainingRows) -> Result<DenseMatrix<f64>> {
    DenseMatrix::new(rows.n(), rows.d, rows.x.clone(), false)
        .map_err(|e| failed("building the feature matrix", e))
}

/// Column means and population standard deviations; a constant column gets standard deviation 1
/// (its coefficient is then 0 under any penalty, and nothing is divided by 0).
fn scaler(rows: &TrainingRows) -> (Vec<f64>, Vec<f64>) {
    let n = rows.n() as f64;
    let mut means = vec![0.0; rows.d];
    for i in 0..rows.n() {
        for (m, v) in means.iter_mut().zip(rows.row(i)) {
            *m += v;
        }
    }
    means.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; rows.d];
    for i in 0..rows.n() {
        for ((s, v), m) in var.iter_mut().zip(rows.row(i)).zip(&means) {
            *s += (v - m).powi(2);
        }
    }
    let stds = var
        .iter()
        .map(|s| (s / n).sqrt())
        .map(|s| if s > 0.0 { s } else { 1.0 })
        .collect();
    (means, stds)
}

fn standardized(rows: &TrainingRows, means: &[f64], stds: &[f64]) -> Array2<f64> {
    let mut x = x_array(rows);
    for mut row in x.rows_mut() {
        for ((v, m), s) in row.iter_mut().zip(means).zip(stds) {
            *v = (*v - m) / s;
        }
    }
    x
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

pub fn fit(
    task: Task,
    method: Method,
    h: &Hyper,
    rows: &TrainingRows,
    names: &[String],
) -> Result<Learner> {
    let n = rows.n();
    if n < 2 {
        return invalid(format!("training needs at least 2 rows, got {n}"));
    }
    if task == Task::Classification
        && (rows.y.iter().all(|&y| y == 1.0) || rows.y.iter().all(|&y| y == 0.0))
    {
        return invalid("a classifier needs rows of both labels (true and false)");
    }
    match method {
        Method::Linear => fit_linear(h.alpha.unwrap_or(0.0), rows, names),
        Method::Tweedie => {
            let power = h.power.unwrap_or(1.5);
            if power > 0.0 && power < 2.0 && rows.y.iter().any(|&y| y < 0.0) {
                return invalid("a Tweedie model with power in [1, 2) needs labels >= 0");
            }
            if power >= 2.0 && rows.y.iter().any(|&y| y <= 0.0) {
                return invalid("a Tweedie model with power >= 2 needs labels > 0");
            }
            let (means, stds) = scaler(rows);
            let x = standardized(rows, &means, &stds);
            let (intercept, coefficients) = fit_tweedie(
                &x,
                &rows.y,
                power,
                h.alpha.unwrap_or(0.0),
                h.max_iterations.unwrap_or(1000) as usize,
            )?;
            Ok(Learner::Glm {
                logit: false,
                means,
                stds,
                intercept,
                coefficients,
            })
        }
        Method::Logistic => {
            let (means, stds) = scaler(rows);
            let x = standardized(rows, &means, &stds);
            let y: Array1<bool> = rows.y.iter().map(|&v| v == 1.0).collect();
            let alpha = h.alpha.unwrap_or(1.0);
            if alpha <= 0.0 {
                return invalid("logistic regression needs alpha > 0 (an L2 penalty keeps separable data finite)");
            }
            let m = linfa_logistic::LogisticRegression::default()
                .alpha(alpha)
                .max_iterations(h.max_iterations.unwrap_or(1000))
                .gradient_tolerance(1e-10)
                .fit(&Dataset::new(x, y))
                .map_err(|e| failed("the logistic fit", e))?;
            // linfa models the larger class as "positive": turn it into P(true).
            let sign = if m.labels().pos.class { 1.0 } else { -1.0 };
            Ok(Learner::Glm {
                logit: true,
                means,
                stds,
                intercept: sign * m.intercept(),
                coefficients: m.params().iter().map(|c| sign * c).collect(),
            })
        }
        Method::DecisionTree => {
            let p = DecisionTreeRegressorParameters {
                max_depth: h.max_depth,
                min_samples_leaf: h.min_samples_leaf.unwrap_or(1),
                min_samples_split: 2,
                seed: Some(0),
            };
            let tree =
                Tree::fit(&dense(rows)?, &rows.y, p).map_err(|e| failed("the decision tree", e))?;
            Ok(Learner::Tree {
                tree: Box::new(tree),
            })
        }
        Method::RandomForest => {
            let m = h.max_features.map(|m| m.min(rows.d));
            let p = RandomForestRegressorParameters {
                max_depth: h.max_depth,
                min_samples_leaf: h.min_samples_leaf.unwrap_or(1),
                min_samples_split: 2,
                n_trees: h.n_trees.unwrap_or(100),
                m,
                keep_samples: false,
                seed: h.seed.unwrap_or(1),
            };
            let forest = Forest::fit(&dense(rows)?, &rows.y, p)
                .map_err(|e| failed("the random forest", e))?;
            Ok(Learner::Forest {
                forest: Box::new(forest),
            })
        }
        Method::GradientBoosting => {
            let logit = task == Task::Classification;
            let objective = if logit {
                forust_ml::objective::ObjectiveType::LogLoss
            } else {
                forust_ml::objective::ObjectiveType::SquaredLoss
            };
            let mut b = GradientBooster::default()
                .set_objective_type(objective)
                .set_iterations(h.n_trees.unwrap_or(100))
                .set_learning_rate(h.learning_rate.unwrap_or(0.1) as f32)
                .set_max_depth(h.max_depth.unwrap_or(4) as usize)
                .set_l2(h.l2.unwrap_or(1.0) as f32)
                .set_min_leaf_weight(h.min_leaf_weight.unwrap_or(1.0) as f32)
                .set_seed(h.seed.unwrap_or(1))
                .set_parallel(false)
                .set_nbins(256);
            let cols = column_major(rows);
            let data = Matrix::new(&cols, rows.n(), rows.d);
            b.fit(&data, &rows.y, &vec![1.0; rows.n()], None)
                .map_err(|e| failed("gradient boosting", e))?;
            Ok(Learner::Boosting {
                logit,
                booster: Box::new(b),
            })
        }
    }
}

/// The Tweedie GLM with log link, scikit-learn's objective: mean unit deviance / 2 +
/// alpha / 2 |w|^2 (intercept not penalized), minimized with the project's BFGS
/// (`clv_math::optimize`). linfa-linear's `TweedieRegressor` was the first choice; on the CDNOW
/// features its More-Thuente line search never returned (over 100 s with `max_iter = 5`), where
/// this converges in milliseconds and stops on every trial step whose deviance overflows.
fn fit_tweedie(
    x: &Array2<f64>,
    y: &[f64],
    power: f64,
    alpha: f64,
    max_iter: usize,
) -> Result<(f64, Vec<f64>)> {
    let (n, d) = (x.nrows(), x.ncols());
    let ybar = y.iter().sum::<f64>() / n as f64;
    let mut x0 = vec![0.0; d + 1];
    x0[0] = ybar.max(1e-300).ln();
    let p = power;
    // The mu-dependent part of the unit deviance / 2 (Jorgensen 1997, eq. 4.2).
    let half_dev = move |yi: f64, eta: f64| -> (f64, f64) {
        let mu = eta.exp();
        let value = if p == 1.0 {
            mu - yi * eta
        } else if p == 2.0 {
            yi / mu + eta
        } else {
            -yi * ((1.0 - p) * eta).exp() / (1.0 - p) + ((2.0 - p) * eta).exp() / (2.0 - p)
        };
        // d/d eta: mu^(2-p) - y mu^(1-p)
        (
            value,
            ((2.0 - p) * eta).exp() - yi * ((1.0 - p) * eta).exp(),
        )
    };
    let objective = |w: &[f64], g: &mut [f64]| -> f64 {
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut f = 0.0;
        for (row, &yi) in x.rows().into_iter().zip(y) {
            let eta = w[0] + row.iter().zip(&w[1..]).map(|(a, b)| a * b).sum::<f64>();
            let (v, dv) = half_dev(yi, eta);
            f += v;
            g[0] += dv;
            for (gj, xj) in g[1..].iter_mut().zip(row) {
                *gj += dv * xj;
            }
        }
        let nf = n as f64;
        f /= nf;
        g.iter_mut().for_each(|v| *v /= nf);
        for j in 1..=d {
            f += 0.5 * alpha * w[j] * w[j];
            g[j] += alpha * w[j];
        }
        f
    };
    let m = clv_math::optimize::bfgs(objective, &x0, max_iter, 1e-10, clv_math::interrupt::check);
    // The gradient can stall a little above 1e-10 in rounding noise; 1e-6 (scaled by the
    // objective) is far inside what scikit-learn's lbfgs (tol 1e-4 by default) accepts.
    if !(m.converged || m.grad_norm <= 1e-6 * m.f.abs().max(1.0))
        || !m.x.iter().all(|v| v.is_finite())
    {
        return Err(ClvError::NoConvergence {
            message: format!(
                "the Tweedie fit did not converge (gradient norm {:e} after {} iterations)",
                m.grad_norm, m.iterations
            ),
            hint: "raise option \"max_iterations\", or add an L2 penalty (option \"alpha\" > 0)"
                .into(),
        });
    }
    Ok((m.x[0], m.x[1..].to_vec()))
}

fn column_major(rows: &TrainingRows) -> Vec<f64> {
    let mut cols = Vec::with_capacity(rows.x.len());
    for j in 0..rows.d {
        cols.extend((0..rows.n()).map(|i| rows.x[i * rows.d + j]));
    }
    cols
}

/// The first feature that is (numerically) a linear combination of the intercept and the features
/// before it: modified Gram-Schmidt on the centred columns, a residual below 1e-9 of the column's
/// norm counts as dependent.
fn dependent_feature(rows: &TrainingRows) -> Option<usize> {
    let (means, _) = scaler(rows);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for (j, mean) in means.iter().enumerate() {
        let mut col: Vec<f64> = (0..rows.n())
            .map(|i| rows.x[i * rows.d + j] - mean)
            .collect();
        let norm0 = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        for q in &basis {
            let dot: f64 = col.iter().zip(q).map(|(a, b)| a * b).sum();
            col.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm0 == 0.0 || norm <= 1e-9 * norm0 {
            return Some(j);
        }
        basis.push(col.into_iter().map(|v| v / norm).collect());
    }
    None
}

fn fit_linear(alpha: f64, rows: &TrainingRows, names: &[String]) -> Result<Learner> {
    if alpha == 0.0 {
        // Least squares has no unique answer then; scikit-learn would return one of many.
        if let Some(j) = dependent_feature(rows) {
            return invalid(format!(
                "feature \"{}\" is constant or a linear combination of the features before it, so least squares has no unique solution; leave it out or use ridge (option \"alpha\" > 0)",
                names.get(j).map_or("?", String::as_str)
            ));
        }
        let ds = Dataset::new(x_array(rows), Array1::from(rows.y.clone()));
        let m = linfa_linear::LinearRegression::new()
            .fit(&ds)
            .map_err(|e| failed("the least-squares fit", e))?;
        return Ok(Learner::Linear {
            intercept: m.intercept(),
            coefficients: m.params().to_vec(),
        });
    }
    // scikit-learn's Ridge: centre features and label, penalize the slopes only.
    let (means, _) = scaler(rows);
    let ybar = rows.y.iter().sum::<f64>() / rows.n() as f64;
    let centred: Vec<f64> = rows
        .x
        .chunks_exact(rows.d)
        .flat_map(|r| r.iter().zip(&means).map(|(v, m)| v - m))
        .collect();
    let x = DenseMatrix::new(rows.n(), rows.d, centred, false)
        .map_err(|e| failed("building the feature matrix", e))?;
    let y: Vec<f64> = rows.y.iter().map(|v| v - ybar).collect();
    let p = RidgeRegressionParameters::default()
        .with_alpha(alpha)
        .with_normalize(false)
        .with_solver(RidgeRegressionSolverName::Cholesky);
    let m = RidgeRegression::fit(&x, &y, p).map_err(|e| failed("the ridge fit", e))?;
    use smartcore::linalg::basic::arrays::Array;
    let coefficients: Vec<f64> = (0..rows.d).map(|j| *m.coefficients().get((j, 0))).collect();
    let intercept = ybar
        - coefficients
            .iter()
            .zip(&means)
            .map(|(c, m)| c * m)
            .sum::<f64>();
    Ok(Learner::Linear {
        intercept,
        coefficients,
    })
}

impl Learner {
    /// The prediction for one row: the label's expectation (regression) or P(label = true).
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Learner::Linear {
                intercept,
                coefficients,
            } => intercept + coefficients.iter().zip(x).map(|(c, v)| c * v).sum::<f64>(),
            Learner::Glm {
                logit,
                means,
                stds,
                intercept,
                coefficients,
            } => {
                let eta = intercept
                    + coefficients
                        .iter()
                        .zip(x)
                        .zip(means.iter().zip(stds))
                        .map(|((c, v), (m, s))| c * (v - m) / s)
                        .sum::<f64>();
                if *logit {
                    sigmoid(eta)
                } else {
                    eta.exp()
                }
            }
            Learner::Tree { tree } => {
                let m = DenseMatrix::new(1, x.len(), x.to_vec(), false).expect("one row");
                tree.predict(&m).expect("tree predicts")[0]
            }
            Learner::Forest { forest } => {
                let m = DenseMatrix::new(1, x.len(), x.to_vec(), false).expect("one row");
                forest.predict(&m).expect("forest predicts")[0]
            }
            Learner::Boosting { logit, booster } => {
                // forust's `predict` allocates a matrix index and a vector per tree for one row;
                // this is its own per-row walk and summation order (base score, then each tree in
                // turn), without allocating, so the value is the same bit for bit.
                let trees =
                    &booster.trees[..booster.prediction_iteration.unwrap_or(booster.trees.len())];
                let raw = trees.iter().fold(booster.base_score, |p, t| {
                    p + t.predict_row_from_row_slice(x, &booster.missing)
                });
                if *logit {
                    sigmoid(raw)
                } else {
                    raw
                }
            }
        }
    }

    /// Predictions for every row (one library call where the library predicts in batches).
    pub fn predict_all(&self, rows: &TrainingRows) -> Vec<f64> {
        let mut tick = clv_math::interrupt::Ticker::new();
        match self {
            Learner::Tree { tree } => match dense(rows) {
                Ok(m) if rows.n() > 0 => tree.predict(&m).expect("tree predicts"),
                _ => vec![],
            },
            Learner::Forest { forest } => match dense(rows) {
                Ok(m) if rows.n() > 0 => forest.predict(&m).expect("forest predicts"),
                _ => vec![],
            },
            _ => (0..rows.n())
                .map(|i| {
                    tick.tick();
                    self.predict(rows.row(i))
                })
                .collect(),
        }
    }

    /// Coefficients on the scale the model uses (original units for linear, per standard
    /// deviation for the GLMs), with standard errors where the method has them; empty for trees.
    pub fn coefficients(
        &self,
        names: &[String],
        h: &Hyper,
        rows: &TrainingRows,
    ) -> Vec<Coefficient> {
        let alpha = h.alpha.unwrap_or(0.0);
        let (intercept, coefs, se) = match self {
            Learner::Linear {
                intercept,
                coefficients,
            } => {
                let se = if alpha == 0.0 {
                    ols_standard_errors(rows, self)
                } else {
                    None
                };
                (*intercept, coefficients, se)
            }
            Learner::Glm {
                logit,
                means,
                stds,
                intercept,
                coefficients,
            } => {
                let power = (!*logit).then(|| h.power.unwrap_or(1.5));
                (
                    *intercept,
                    coefficients,
                    glm_standard_errors(rows, self, power, means, stds, alpha),
                )
            }
            _ => return vec![],
        };
        std::iter::once(("intercept".to_string(), intercept))
            .chain(names.iter().cloned().zip(coefs.iter().copied()))
            .enumerate()
            .map(|(k, (term, coefficient))| Coefficient {
                term,
                coefficient,
                standard_error: se
                    .as_ref()
                    .map(|s: &Vec<f64>| s[k])
                    .filter(|s| s.is_finite()),
            })
            .collect()
    }
}

/// Z = [1, X] (or [1, standardized X]).
fn design(x: Array2<f64>) -> Array2<f64> {
    let ones = Array2::ones((x.nrows(), 1));
    ndarray::concatenate(ndarray::Axis(1), &[ones.view(), x.view()]).expect("same rows")
}

/// sqrt(diag(sigma^2 (Z'Z)^-1)), sigma^2 = RSS / (n - p - 1): the classical OLS standard errors.
fn ols_standard_errors(rows: &TrainingRows, m: &Learner) -> Option<Vec<f64>> {
    let (n, k) = (rows.n(), rows.d + 1);
    if n <= k {
        return None;
    }
    let rss: f64 = (0..n)
        .map(|i| (rows.y[i] - m.predict(rows.row(i))).powi(2))
        .sum();
    let z = design(x_array(rows));
    let inv = z.t().dot(&z).invc().ok()?;
    let s2 = rss / (n - k) as f64;
    Some(inv.diag().iter().map(|v| (s2 * v).sqrt()).collect())
}

/// Standard errors from the inverse of the (penalized) Fisher information, on the standardized
/// scale (McCullagh and Nelder, Generalized Linear Models, 2nd ed., sections 2.5 and 4.4):
/// logistic: W = p (1 - p), dispersion 1; Tweedie with log link: W = mu^(2 - power), dispersion
/// the Pearson chi-square / (n - p - 1). The penalty adds alpha (logistic) or n alpha / dispersion
/// (Tweedie) to the slopes' diagonal, as in the objective.
fn glm_standard_errors(
    rows: &TrainingRows,
    m: &Learner,
    tweedie_power: Option<f64>,
    means: &[f64],
    stds: &[f64],
    alpha: f64,
) -> Option<Vec<f64>> {
    let (n, k) = (rows.n(), rows.d + 1);
    if n <= k {
        return None;
    }
    let mu: Vec<f64> = (0..n).map(|i| m.predict(rows.row(i))).collect();
    let z = design(standardized(rows, means, stds));
    // Weights already divided by the dispersion, so the information is Z' W Z + penalty.
    let (w, penalty): (Vec<f64>, f64) = match tweedie_power {
        None => (mu.iter().map(|p| p * (1.0 - p)).collect(), alpha),
        Some(p) => {
            let pearson: f64 = mu
                .iter()
                .zip(&rows.y)
                .map(|(m, y)| (y - m).powi(2) / m.powf(p))
                .sum();
            let phi = pearson / (n - k) as f64;
            (
                mu.iter().map(|m| m.powf(2.0 - p) / phi).collect(),
                n as f64 * alpha / phi,
            )
        }
    };
    let mut info = Array2::<f64>::zeros((k, k));
    for (i, zi) in z.rows().into_iter().enumerate() {
        for a in 0..k {
            let wa = w[i] * zi[a];
            for b in 0..k {
                info[(a, b)] += wa * zi[b];
            }
        }
    }
    for a in 1..k {
        info[(a, a)] += penalty;
    }
    let inv = info.invc().ok()?;
    Some(inv.diag().iter().map(|v| v.sqrt()).collect())
}
