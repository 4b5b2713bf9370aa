//! Methods and their hyperparameters: parsed from the `options` jsonb of the training aggregates,
//! checked, completed with the documented defaults and stored in the model as resolved.

use crate::{invalid, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Linear,
    Tweedie,
    Logistic,
    DecisionTree,
    RandomForest,
    GradientBoosting,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Linear => "linear",
            Method::Tweedie => "tweedie",
            Method::Logistic => "logistic",
            Method::DecisionTree => "decision_tree",
            Method::RandomForest => "random_forest",
            Method::GradientBoosting => "gradient_boosting",
        }
    }

    pub fn parse(task: Task, s: &str) -> Result<Method> {
        let m = match s.trim().to_ascii_lowercase().as_str() {
            "linear" | "ols" | "ridge" => Method::Linear,
            "tweedie" => Method::Tweedie,
            "logistic" => Method::Logistic,
            "decision_tree" => Method::DecisionTree,
            "random_forest" => Method::RandomForest,
            "gradient_boosting" => Method::GradientBoosting,
            _ => return invalid(format!("unknown method \"{s}\"; {}", accepted(task))),
        };
        let ok = match task {
            Task::Regression => m != Method::Logistic,
            Task::Classification => !matches!(m, Method::Linear | Method::Tweedie),
        };
        if !ok {
            return invalid(format!(
                "method \"{s}\" does not fit this task; {}",
                accepted(task)
            ));
        }
        Ok(m)
    }

    /// The hyperparameters a method takes (besides `seed` for the randomized ones).
    fn keys(self) -> &'static [&'static str] {
        match self {
            Method::Linear => &["alpha"],
            Method::Tweedie => &["alpha", "power", "max_iterations"],
            Method::Logistic => &["alpha", "max_iterations"],
            Method::DecisionTree => &["max_depth", "min_samples_leaf"],
            Method::RandomForest => &[
                "max_depth",
                "min_samples_leaf",
                "n_trees",
                "max_features",
                "seed",
            ],
            Method::GradientBoosting => &[
                "max_depth",
                "n_trees",
                "learning_rate",
                "l2",
                "min_leaf_weight",
                "seed",
            ],
        }
    }
}

fn accepted(task: Task) -> &'static str {
    match task {
        Task::Regression => "regression methods are 'linear', 'tweedie', 'decision_tree', 'random_forest', 'gradient_boosting'",
        Task::Classification => "classification methods are 'logistic', 'decision_tree', 'random_forest', 'gradient_boosting'",
    }
}

/// Every hyperparameter any method takes; a method uses its own (see `Method::keys`), the rest are
/// `None` in its resolved set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_samples_leaf: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_trees: Option<usize>,
    /// Features tried at each split of a forest's trees; `None` resolved: floor(sqrt(features)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_features: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_leaf_weight: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Hyper {
    /// The documented defaults of a method (docs/ml.md).
    pub fn defaults(m: Method) -> Hyper {
        let h = Hyper::default();
        match m {
            Method::Linear => Hyper {
                alpha: Some(0.0),
                ..h
            },
            Method::Tweedie => Hyper {
                alpha: Some(0.001),
                power: Some(1.5),
                max_iterations: Some(1000),
                ..h
            },
            Method::Logistic => Hyper {
                alpha: Some(1.0),
                max_iterations: Some(1000),
                ..h
            },
            Method::DecisionTree => Hyper {
                max_depth: Some(6),
                min_samples_leaf: Some(20),
                ..h
            },
            Method::RandomForest => Hyper {
                max_depth: Some(8),
                min_samples_leaf: Some(5),
                n_trees: Some(100),
                seed: Some(1),
                ..h
            },
            Method::GradientBoosting => Hyper {
                max_depth: Some(4),
                n_trees: Some(100),
                learning_rate: Some(0.1),
                l2: Some(1.0),
                min_leaf_weight: Some(1.0),
                seed: Some(1),
                ..h
            },
        }
    }

    /// Set one hyperparameter from its JSON value, checking its range.
    fn set(&mut self, key: &str, v: &Value) -> Result<()> {
        let num = || {
            v.as_f64().filter(|x| x.is_finite()).map_or_else(
                || invalid(format!("option \"{key}\" must be a finite number, got {v}")),
                Ok,
            )
        };
        let int = |lo: u64, hi: u64| {
            v.as_u64().filter(|x| (lo..=hi).contains(x)).map_or_else(
                || {
                    invalid(format!(
                        "option \"{key}\" must be an integer between {lo} and {hi}, got {v}"
                    ))
                },
                Ok,
            )
        };
        match key {
            "alpha" => {
                let a = num()?;
                if a < 0.0 {
                    return invalid(format!("option \"alpha\" must be >= 0, got {a}"));
                }
                self.alpha = Some(a);
            }
            "power" => {
                let p = num()?;
                if !(p == 0.0 || (1.0..=3.0).contains(&p)) {
                    return invalid(format!(
                        "option \"power\" must be 0 or between 1 and 3 (Tweedie), got {p}"
                    ));
                }
                self.power = Some(p);
            }
            "max_iterations" => self.max_iterations = Some(int(1, 100_000)?),
            "max_depth" => self.max_depth = Some(int(1, 30)? as u16),
            "min_samples_leaf" => self.min_samples_leaf = Some(int(1, 1_000_000)? as usize),
            "n_trees" => self.n_trees = Some(int(1, 5000)? as usize),
            "max_features" => {
                self.max_features = Some(int(1, crate::rows::MAX_FEATURES as u64)? as usize)
            }
            "learning_rate" => {
                let r = num()?;
                if !(r > 0.0 && r <= 1.0) {
                    return invalid(format!(
                        "option \"learning_rate\" must be in (0, 1], got {r}"
                    ));
                }
                self.learning_rate = Some(r);
            }
            "l2" | "min_leaf_weight" => {
                let x = num()?;
                if x < 0.0 {
                    return invalid(format!("option \"{key}\" must be >= 0, got {x}"));
                }
                if key == "l2" {
                    self.l2 = Some(x)
                } else {
                    self.min_leaf_weight = Some(x)
                }
            }
            "seed" => {
                // Any 64-bit integer, negative ones reinterpreted as unsigned (like the other seeds).
                let s = v.as_i64().map(|s| s as u64).or_else(|| v.as_u64());
                self.seed = Some(s.map_or_else(
                    || invalid(format!("option \"seed\" must be a 64-bit integer, got {v}")),
                    Ok,
                )?);
            }
            _ => unreachable!("keys are checked by the caller"),
        }
        Ok(())
    }
}

/// Everything the `options` jsonb may say.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub hyper: Hyper,
    pub feature_names: Option<Vec<String>>,
    /// Choose hyperparameters on an inner split of the training rows (`learners::tune`).
    pub tune: bool,
    /// Train on a seeded sample of at most this many rows (with a NOTICE).
    pub sample_rows: Option<usize>,
}

pub fn parse_options(method: Method, options: &Value) -> Result<Options> {
    let empty = Map::new();
    let obj = match options {
        Value::Object(o) => o,
        Value::Null => &empty,
        _ => return invalid(format!("options must be a jsonb object, got {options}")),
    };
    let mut out = Options {
        hyper: Hyper::defaults(method),
        feature_names: None,
        tune: false,
        sample_rows: None,
    };
    for (k, v) in obj {
        match k.as_str() {
            "feature_names" => {
                let names = v
                    .as_array()
                    .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>());
                out.feature_names = Some(names.map_or_else(|| invalid("option \"feature_names\" must be an array of strings"), Ok)?);
            }
            "tune" => {
                out.tune = v.as_bool().map_or_else(|| invalid(format!("option \"tune\" must be true or false, got {v}")), Ok)?
            }
            "sample_rows" => {
                let n = v.as_u64().filter(|n| *n >= 2);
                out.sample_rows = Some(n.map_or_else(|| invalid(format!("option \"sample_rows\" must be an integer >= 2, got {v}")), Ok)? as usize);
            }
            key if method.keys().contains(&key) => out.hyper.set(key, v)?,
            key => {
                return invalid(format!(
                    "unknown option \"{key}\" for method \"{}\"; it accepts {}, and every method accepts feature_names, tune, sample_rows",
                    method.name(),
                    method.keys().join(", ")
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_checks() {
        let o = parse_options(
            Method::GradientBoosting,
            &json!({"n_trees": 50, "learning_rate": 0.2, "seed": -1}),
        )
        .unwrap();
        assert_eq!(o.hyper.n_trees, Some(50));
        assert_eq!(o.hyper.max_depth, Some(4));
        assert_eq!(o.hyper.seed, Some(u64::MAX));
        assert!(parse_options(Method::Linear, &json!({"n_trees": 5})).is_err());
        assert!(parse_options(Method::DecisionTree, &json!({"max_depth": 0})).is_err());
        assert!(parse_options(Method::Logistic, &json!({"alpha": -1})).is_err());
        assert!(parse_options(Method::Logistic, &json!([1])).is_err());
        assert!(parse_options(Method::Tweedie, &json!({"power": 0.5})).is_err());
        assert!(Method::parse(Task::Regression, "logistic").is_err());
        assert!(Method::parse(Task::Classification, "linear").is_err());
        assert_eq!(
            Method::parse(Task::Classification, " Random_Forest").unwrap(),
            Method::RandomForest
        );
    }
}
