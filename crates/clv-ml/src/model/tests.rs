//! Agreement with scikit-learn and XGBoost on CDNOW (tests/data/ml: features computed
//! independently in pandas, references produced by tests/data/ml/make_references.py).

use super::*;
use crate::features::FEATURE_NAMES;
use crate::options::parse_options;
use serde_json::{json, Value};

struct Data {
    names: Vec<String>,
    train: Vec<(Vec<f64>, f64, bool)>,
    test: Vec<(Vec<f64>, f64, bool)>,
}

fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ml")
}

fn load() -> (Data, Value) {
    let text = std::fs::read_to_string(data_dir().join("cdnow_features.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[1..19], &FEATURE_NAMES[..]);
    let mut d = Data {
        names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        train: vec![],
        test: vec![],
    };
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let x: Vec<f64> = f[1..19].iter().map(|v| v.parse().unwrap()).collect();
        let row = (x, f[19].parse().unwrap(), f[21] == "true");
        if f[22] == "true" {
            d.train.push(row);
        } else {
            d.test.push(row);
        }
    }
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("sklearn_reference.json")).unwrap(),
    )
    .unwrap();
    (d, reference)
}

fn rows(set: &[(Vec<f64>, f64, bool)], cols: &[usize], classify: bool) -> TrainingRows {
    let mut r = TrainingRows::default();
    for (x, spend, churned) in set {
        let x: Vec<f64> = cols.iter().map(|&j| x[j]).collect();
        r.push(
            &x,
            if classify {
                f64::from(u8::from(*churned))
            } else {
                *spend
            },
        )
        .unwrap()
        .unwrap();
    }
    r
}

fn train_on(task: Task, method: &str, options: Value, cols: &[usize], d: &Data) -> MlModel {
    let m = Method::parse(task, method).unwrap();
    let names: Vec<String> = cols.iter().map(|&j| d.names[j].clone()).collect();
    let mut options = options;
    options["feature_names"] = json!(names);
    let opts = parse_options(m, &options).unwrap();
    let explicit: Vec<String> = options.as_object().unwrap().keys().cloned().collect();
    train(
        task,
        m,
        &opts,
        &explicit,
        &rows(&d.train, cols, task == Task::Classification),
    )
    .unwrap()
}

fn test_rmse(m: &MlModel, cols: &[usize], d: &Data) -> f64 {
    let t = rows(&d.test, cols, false);
    let pred: Vec<f64> = (0..t.n()).map(|i| m.predict(t.row(i)).unwrap()).collect();
    regression(&pred, &t.y).unwrap().rmse
}

fn test_classification(
    m: &MlModel,
    cols: &[usize],
    d: &Data,
) -> crate::metrics::ClassificationMetrics {
    let t = rows(&d.test, cols, true);
    let pred: Vec<f64> = (0..t.n()).map(|i| m.predict(t.row(i)).unwrap()).collect();
    let labels: Vec<bool> = t.y.iter().map(|&v| v == 1.0).collect();
    classification(&pred, &labels).unwrap()
}

fn coef<'a>(m: &'a MlModel, term: &str) -> &'a Coefficient {
    m.coefficients.iter().find(|c| c.term == term).unwrap()
}

/// Coefficients of an ill-conditioned fit agree to `rel` of the largest coefficient.
fn close_in(a: f64, b: f64, scale: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * scale,
        "{what}: {a} vs {b} (difference {:e}, scale {scale})",
        (a - b).abs()
    );
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1e-300),
        "{what}: {a} vs {b} (relative {:e})",
        ((a - b) / b).abs()
    );
}

const ALL: [usize; 18] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];

#[test]
fn ols_and_ridge_equal_scikit_learn() {
    let (d, r) = load();
    // All 18 features are collinear (days_since_last_purchase = T - recency, the trends): OLS refuses.
    let m = Method::Linear;
    let opts = parse_options(m, &json!({"feature_names": d.names})).unwrap();
    let e = train(
        Task::Regression,
        m,
        &opts,
        &[],
        &rows(&d.train, &ALL, false),
    )
    .unwrap_err();
    assert!(e.to_string().contains("days_since_last_purchase"), "{e}");
    // The 15 full-rank features: coefficients and standard errors to 1e-8.
    let full = &r["ols_full_rank"];
    let cols: Vec<usize> = full["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            d.names
                .iter()
                .position(|x| x == n.as_str().unwrap())
                .unwrap()
        })
        .collect();
    let ols = train_on(Task::Regression, "linear", json!({}), &cols, &d);
    close(
        coef(&ols, "intercept").coefficient,
        full["intercept"].as_f64().unwrap(),
        1e-8,
        "OLS intercept",
    );
    close(
        coef(&ols, "intercept").standard_error.unwrap(),
        full["se_intercept"].as_f64().unwrap(),
        1e-8,
        "OLS SE intercept",
    );
    for &j in &cols {
        let name = &d.names[j];
        close(
            coef(&ols, name).coefficient,
            full["coefficients"][name].as_f64().unwrap(),
            1e-8,
            name,
        );
        close(
            coef(&ols, name).standard_error.unwrap(),
            full["se_coefficients"][name].as_f64().unwrap(),
            1e-8,
            name,
        );
    }
    close(
        test_rmse(&ols, &cols, &d),
        full["test_rmse"].as_f64().unwrap(),
        1e-10,
        "OLS test RMSE",
    );
    // Ridge on all 18.
    let ridge = train_on(Task::Regression, "linear", json!({"alpha": 10.0}), &ALL, &d);
    let rr = &r["ridge"];
    close(
        coef(&ridge, "intercept").coefficient,
        rr["intercept"].as_f64().unwrap(),
        1e-8,
        "ridge intercept",
    );
    // Ridge on raw, collinear features is ill-conditioned (both libraries round differently in
    // the 9th digit of the smallest coefficients): agreement to 1e-8 of the largest coefficient.
    let scale = rr["coefficients"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    for name in &d.names {
        close_in(
            coef(&ridge, name).coefficient,
            rr["coefficients"][name].as_f64().unwrap(),
            scale,
            1e-8,
            name,
        );
        assert_eq!(coef(&ridge, name).standard_error, None);
    }
}

#[test]
fn logistic_and_tweedie_equal_scikit_learn() {
    let (d, r) = load();
    let lg = train_on(
        Task::Classification,
        "logistic",
        json!({"alpha": 1.0}),
        &ALL,
        &d,
    );
    let rl = &r["logistic"];
    close(
        coef(&lg, "intercept").coefficient,
        rl["intercept"].as_f64().unwrap(),
        1e-5,
        "logistic intercept",
    );
    for name in &d.names {
        let (a, b) = (
            coef(&lg, name).coefficient,
            rl["coefficients"][name].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{name}: {a} vs {b}"
        );
    }
    let m = test_classification(&lg, &ALL, &d);
    close(
        m.auc.unwrap(),
        rl["test_auc"].as_f64().unwrap(),
        1e-6,
        "logistic AUC",
    );
    close(
        m.log_loss,
        rl["test_log_loss"].as_f64().unwrap(),
        1e-6,
        "logistic log-loss",
    );
    let tw = train_on(
        Task::Regression,
        "tweedie",
        json!({"alpha": 0.001, "power": 1.5}),
        &ALL,
        &d,
    );
    let rt = &r["tweedie"];
    close(
        coef(&tw, "intercept").coefficient,
        rt["intercept"].as_f64().unwrap(),
        1e-4,
        "tweedie intercept",
    );
    close(
        test_rmse(&tw, &ALL, &d),
        rt["test_rmse"].as_f64().unwrap(),
        1e-4,
        "tweedie test RMSE",
    );
}

#[test]
fn trees_within_a_few_percent_of_scikit_learn_and_xgboost() {
    let (d, r) = load();
    let rmse = |m: &str, o: Value| test_rmse(&train_on(Task::Regression, m, o, &ALL, &d), &ALL, &d);
    let auc = |m: &str, o: Value| {
        test_classification(&train_on(Task::Classification, m, o, &ALL, &d), &ALL, &d)
            .auc
            .unwrap()
    };
    let checks = [
        (
            "decision tree RMSE",
            rmse("decision_tree", json!({})),
            r["decision_tree"]["regressor"]["test_rmse"]
                .as_f64()
                .unwrap(),
            0.05,
        ),
        (
            "random forest RMSE",
            rmse("random_forest", json!({})),
            r["random_forest"]["over_random_state_1_to_10"]["test_rmse_mean"]
                .as_f64()
                .unwrap(),
            0.05,
        ),
        (
            "gradient boosting RMSE",
            rmse("gradient_boosting", json!({})),
            r["xgboost"]["regressor"]["test_rmse"].as_f64().unwrap(),
            0.05,
        ),
        (
            "decision tree AUC",
            auc("decision_tree", json!({})),
            r["decision_tree"]["classifier"]["test_auc"]
                .as_f64()
                .unwrap(),
            0.04,
        ),
        (
            "random forest AUC",
            auc("random_forest", json!({})),
            r["random_forest"]["classifier"]["test_auc"]
                .as_f64()
                .unwrap(),
            0.03,
        ),
        (
            "gradient boosting AUC",
            auc("gradient_boosting", json!({})),
            r["xgboost"]["classifier"]["test_auc"].as_f64().unwrap(),
            0.03,
        ),
    ];
    for (what, ours, theirs, tol) in checks {
        eprintln!("{what}: ours {ours}, reference {theirs}");
        close(ours, theirs, tol, what);
    }
}

#[test]
fn deterministic_order_free_and_round_trips() {
    let (d, _) = load();
    for (task, method) in [
        (Task::Regression, "random_forest"),
        (Task::Classification, "gradient_boosting"),
        (Task::Regression, "decision_tree"),
    ] {
        let opts = if method == "decision_tree" {
            json!({})
        } else {
            json!({"n_trees": 20})
        };
        let a = train_on(task, method, opts.clone(), &ALL, &d);
        let mut rev = Data {
            names: d.names.clone(),
            train: d.train.clone(),
            test: vec![],
        };
        rev.train.reverse();
        let b = train_on(task, method, opts, &ALL, &rev);
        assert_eq!(
            a.to_json(),
            b.to_json(),
            "{method}: row order changed the model"
        );
        let back = MlModel::from_json(a.to_json().as_bytes()).unwrap();
        assert_eq!(back.to_json(), a.to_json());
        for (x, _, _) in d.test.iter().take(50) {
            assert_eq!(
                back.predict(x).unwrap().to_bits(),
                a.predict(x).unwrap().to_bits()
            );
        }
        assert!(a.predict(&x_short()).is_err());
        assert!(a.predict(&[f64::NAN; 18]).is_err());
        assert_eq!(a.feature_importance.len(), 18);
    }
    fn x_short() -> Vec<f64> {
        vec![1.0; 17]
    }
}

#[test]
fn tuning_uses_an_inner_split_and_reports_its_grid() {
    let (d, _) = load();
    let m = train_on(
        Task::Regression,
        "decision_tree",
        json!({"tune": true, "min_samples_leaf": 20}),
        &ALL,
        &d,
    );
    let t = m.tuning.as_ref().unwrap();
    assert_eq!(t.grid.len(), 4); // max_depth only: min_samples_leaf was given
    assert_eq!(
        t.inner_training_rows + t.inner_validation_rows,
        d.train.len() as u64
    );
    let best = t.grid.iter().map(|p| p.score).fold(f64::INFINITY, f64::min);
    let chosen = t
        .grid
        .iter()
        .find(|p| p.hyperparameters == m.hyperparameters)
        .unwrap();
    assert_eq!(chosen.score, best);
    assert_eq!(m.hyperparameters.min_samples_leaf, Some(20));
}

#[test]
fn bad_models_are_refused() {
    assert!(MlModel::from_json(b"{}").is_err());
    assert!(MlModel::from_json(br#"{"version": 2, "model": "ml"}"#).is_err());
    assert!(MlModel::from_json(b"nonsense").is_err());
    let (d, _) = load();
    let m = train_on(
        Task::Regression,
        "linear",
        json!({"alpha": 1.0}),
        &[0, 1],
        &d,
    );
    let mut v: Value = serde_json::from_str(&m.to_json()).unwrap();
    v["feature_names"] = json!(["a"]);
    let e = MlModel::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}
