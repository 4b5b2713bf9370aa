//! Agreement with scikit-learn 1.9.1 / SciPy on the CDNOW RFM features (frequency, recency, T,
//! monetary value of the 2,357 customers): `tests/data/clustering/reference.json`, made by
//! `make_references.py` there (an independent script).

use super::dbscan;
use super::hierarchical::{self, Cut, Linkage};
use super::pca;
use crate::rows::TrainingRows;
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/clustering/reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference file")).expect("JSON")
}

fn cdnow(limit: usize) -> TrainingRows {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/cdnow/cdnow_customers_summary_with_transactions.csv"
    );
    let mut rows = TrainingRows {
        d: 4,
        ..Default::default()
    };
    for line in std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .take(limit)
    {
        let v: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(|s| s.parse().unwrap())
            .collect();
        rows.x.extend_from_slice(&v);
        rows.y.push(0.0);
    }
    rows
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn pca_matches_scikit_learn() {
    let r = reference();
    let p = &r["pca"];
    let rows = cdnow(usize::MAX);
    let m = pca::fit(&rows, 4).unwrap();
    for (k, want) in p["components"].as_array().unwrap().iter().enumerate() {
        for (got, want) in m.components[k].iter().zip(floats(want)) {
            assert!((got - want).abs() < 1e-10, "component {k}: {got} vs {want}");
        }
    }
    for (got, want) in m
        .explained_variance
        .iter()
        .zip(floats(&p["explained_variance"]))
    {
        assert!((got - want).abs() < 1e-10 * want, "{got} vs {want}");
    }
    for (got, want) in m
        .explained_variance_ratio
        .iter()
        .zip(floats(&p["explained_variance_ratio"]))
    {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    let two = pca::fit(&rows, 2).unwrap();
    for (i, want) in p["scores_first20_pc1_pc2"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let got = two.project(rows.row(i)).unwrap();
        for (g, w) in got.iter().zip(floats(want)) {
            assert!((g - w).abs() < 1e-9, "row {i}: {g} vs {w}");
        }
    }
    assert!(pca::fit(&rows, 5).is_err() && pca::fit(&rows, 0).is_err());
    assert!(two.project(&[1.0, 2.0]).is_err());
    assert!(two.project(&[1.0, 2.0, f64::NAN, 3.0]).is_err());
}

#[test]
fn dbscan_matches_scikit_learn() {
    let r = reference();
    let rows = cdnow(usize::MAX);
    let new_points: Vec<Vec<f64>> = r["dbscan"]["new_points"]["points_original_units"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    for run in r["dbscan"]["runs"].as_array().unwrap() {
        let eps = run["eps"].as_f64().unwrap();
        let min_points = run["min_samples"].as_u64().unwrap() as usize;
        let (m, labels) = dbscan::fit_labelled(&rows, eps, min_points).unwrap();
        let want = ints(&run["labels"]);
        // Border points within eps of two clusters may go either way (first reached wins, and
        // linfa and scikit-learn expand in different orders); every other row must agree.
        let ambiguous: Vec<usize> = ints(&run["border_points_reachable_from_2plus_clusters"])
            .into_iter()
            .map(|i| i as usize)
            .collect();
        for (i, (g, w)) in labels.iter().zip(&want).enumerate() {
            if !ambiguous.contains(&i) {
                let g = g.map_or(-1, |c| c as i64 - 1);
                assert_eq!(g, *w, "eps {eps}, min_points {min_points}, row {i}");
            }
        }
        assert_eq!(m.clusters as i64, run["n_clusters"].as_i64().unwrap());
        assert_eq!(m.noise as i64, run["n_noise"].as_i64().unwrap());
        assert_eq!(m.core.len() as i64, run["n_core"].as_i64().unwrap());
        for (p, want) in new_points.iter().zip(ints(&run["new_point_labels"])) {
            let got = m.assign(p).unwrap() as i64 - 1;
            assert_eq!(got, want, "eps {eps}: new point {p:?}");
        }
    }
    assert!(dbscan::check_params(0.0, 5).is_err());
    assert!(dbscan::check_params(f64::NAN, 5).is_err());
    assert!(dbscan::check_params(0.5, 0).is_err());
}

/// The same partition up to the numbering, which both sides fix by first appearance in row order.
fn same_labels(got: &[u32], want: &[i64]) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| *g as i64 - 1 == *w)
}

#[test]
fn hierarchical_matches_scipy() {
    let r = reference();
    let rows = cdnow(300);
    for (name, reference) in r["agglomerative"]["methods"].as_object().unwrap() {
        let linkage = Linkage::parse(name).unwrap();
        let (m, _) = hierarchical::fit_labelled(&rows, linkage, Cut::Clusters(2)).unwrap();
        let mut heights = m.merge_heights.clone();
        heights.sort_by(f64::total_cmp);
        for (g, w) in heights.iter().zip(floats(&reference["merge_heights"])) {
            assert!((g - w).abs() < 1e-9 * w.max(1.0), "{name}: {g} vs {w}");
        }
        for (k, want) in reference["labels_n_clusters"].as_object().unwrap() {
            if reference["cut_gaps"][k]["tie"].as_bool().unwrap() {
                continue;
            }
            let k: usize = k.parse().unwrap();
            let (m, labels) = hierarchical::fit_labelled(&rows, linkage, Cut::Clusters(k)).unwrap();
            assert_eq!(m.clusters, k);
            assert!(same_labels(&labels, &ints(want)), "{name} k={k}");
            // A training row is assigned back to its own cluster.
            for i in (0..300).step_by(37) {
                assert_eq!(m.assign(rows.row(i)).unwrap(), labels[i], "{name} row {i}");
            }
        }
        if let Some(cut) = reference.get("distance_cut") {
            let t = cut["t"].as_f64().unwrap();
            let (m, labels) =
                hierarchical::fit_labelled(&rows, linkage, Cut::MaxDistance(t)).unwrap();
            assert_eq!(m.clusters as i64, cut["n_clusters"].as_i64().unwrap());
            assert!(same_labels(&labels, &ints(&cut["labels"])), "{name} t={t}");
        }
    }
    assert!(Linkage::parse("centroid").is_err());
    assert!(hierarchical::fit(&rows, Linkage::Ward, Cut::Clusters(0)).is_err());
    assert!(hierarchical::fit(&rows, Linkage::Ward, Cut::MaxDistance(-1.0)).is_err());
}
