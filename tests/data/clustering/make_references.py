#!/usr/bin/env python3
"""Reference values for the clustering / reduction methods of clv_ext (PCA, DBSCAN,
agglomerative clustering), computed with scikit-learn / scipy / numpy.

Run by hand from the repository root:

    build/ml-venv/bin/python tests/data/clustering/make_references.py

Writes tests/data/clustering/reference.json (deterministic: re-running gives the same bytes).
See README.md in this folder for the conventions.
"""
import json
import math
import os
import platform
import sys

import numpy as np
import pandas as pd
import scipy
import sklearn
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.decomposition import PCA

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "cdnow", "cdnow_customers_summary_with_transactions.csv")
OUT = os.path.join(HERE, "reference.json")
FEATURES = ["x", "t_x", "T", "zbar"]

DBSCAN_PARAMS = [(0.3, 5), (0.5, 10), (1.0, 5)]
AGG_ROWS = 300
AGG_LINKAGES = ["ward", "complete", "average", "single"]
AGG_K = [2, 3, 5]
AGG_CUT_T = 2.0
AGG_CUT_LINKAGES = ["complete", "average"]
TIE_TOL = 1e-9  # "near tie" tolerance (standardized distance units)


# ---------------------------------------------------------------------------------------------
# Standardization exactly as clv-math's K-means (segment::kmeans::mean_std / standardize):
# sequential left-to-right sums (Rust's Iterator::sum), population mean and std (divide by n);
# a column whose values are all bit-equal is "constant": its mean is the value itself and it gets
# std 1 here (clv-math stores std 0 and writes z = 0; both give z = 0 exactly).
# ---------------------------------------------------------------------------------------------
def seq_sum(values):
    s = 0.0
    for v in values:
        s += float(v)
    return s


def mean_std(rows):
    n = rows.shape[0]
    means, stds, constant = [], [], []
    for j in range(rows.shape[1]):
        col = [float(v) for v in rows[:, j]]
        is_const = all(v == col[0] for v in col)
        if is_const:
            means.append(col[0])
            stds.append(1.0)
        else:
            m = seq_sum(col) / n
            means.append(m)
            stds.append(math.sqrt(seq_sum((v - m) * (v - m) for v in col) / n))
        constant.append(is_const)
    return np.array(means), np.array(stds), constant


def standardize(rows, means, stds):
    return (rows - means) / stds


def renumber(labels):
    """Cluster ids renumbered 0, 1, ... by first appearance in row order; -1 (noise) kept."""
    mapping = {}
    out = []
    for lab in labels:
        lab = int(lab)
        if lab < 0:
            out.append(-1)
            continue
        if lab not in mapping:
            mapping[lab] = len(mapping)
        out.append(mapping[lab])
    return out


def same_partition(a, b):
    return renumber(a) == renumber(b)


def fl(a):
    return [float(v) for v in np.asarray(a).ravel()]


# ---------------------------------------------------------------------------------------------
df = pd.read_csv(DATA)
X = df[FEATURES].to_numpy(dtype=np.float64)
n = X.shape[0]
assert n == 2357

means, stds, const = mean_std(X)
Z = standardize(X, means, stds)

out = {
    "meta": {
        "generator": "tests/data/clustering/make_references.py",
        "data": "tests/data/cdnow/cdnow_customers_summary_with_transactions.csv",
        "features": FEATURES,
        "n_rows": n,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "standardization": "z = (v - mean) / std, population mean and std (divide by n) of the "
        "fitting rows, sequential sums; constant column: mean = value, std = 1 (z = 0)",
    },
    "standardization_all_rows": {"mean": fl(means), "std": fl(stds), "constant": const},
}

# ---------------------------------------------------------------------------------------------
# 1. PCA on all standardized rows
# ---------------------------------------------------------------------------------------------
pca = PCA(n_components=4, svd_solver="full").fit(Z)
comps = pca.components_.copy()
signs = np.ones(4)
for i in range(4):
    j = int(np.argmax(np.abs(comps[i])))
    if comps[i, j] < 0:
        signs[i] = -1.0
comps = comps * signs[:, None]
scores20 = (Z[:20] - pca.mean_) @ comps[:2].T
# independent check: eigen-decomposition of the sample covariance (n - 1)
C = np.cov(Z, rowvar=False, ddof=1)
evals = np.sort(np.linalg.eigvalsh(C))[::-1]
assert np.allclose(evals, pca.explained_variance_, rtol=1e-10, atol=1e-12)
assert np.allclose(pca.singular_values_ ** 2 / (n - 1), pca.explained_variance_, rtol=1e-12)
sk_scores = pca.transform(Z[:20])[:, :2] * signs[:2]
assert np.allclose(sk_scores, scores20, atol=1e-12)
out["pca"] = {
    "input": "all 2357 standardized rows (standardization_all_rows); sklearn PCA(n_components=4, "
    "svd_solver='full') centres the data itself (mean_ below is ~0 because the input is "
    "already standardized)",
    "sign_convention": "each component (row) multiplied by -1 if needed so that its entry of "
    "largest absolute value is positive; scores use the same signs",
    "mean": fl(pca.mean_),
    "components": [fl(r) for r in comps],
    "explained_variance": fl(pca.explained_variance_),
    "explained_variance_note": "sklearn: singular_values^2 / (n_samples - 1); sum = 4 * n / (n - 1) "
    "because the features were standardized with the population std",
    "explained_variance_ratio": fl(pca.explained_variance_ratio_),
    "singular_values": fl(pca.singular_values_),
    "n_samples": n,
    "scores_first20_pc1_pc2": [fl(r) for r in scores20],
}

# ---------------------------------------------------------------------------------------------
# 2. DBSCAN on all standardized rows
# ---------------------------------------------------------------------------------------------
D = squareform(pdist(Z, "euclidean"))


def nearest_core_rule(points_z, core_idx, core_labels, eps):
    res = []
    for p in points_z:
        d = np.sqrt(((Z[core_idx] - p) ** 2).sum(axis=1))
        k = int(np.argmin(d))
        dmin = float(d[k])
        lab = int(core_labels[k]) if dmin <= eps else -1
        # margin info: nearest core point of a *different* cluster
        other = d[core_labels != core_labels[k]]
        d_other = float(other.min()) if other.size else None
        res.append((lab, int(core_idx[k]), dmin, d_other))
    return res


# New points (original units): 20 = mean + fixed offsets (in std units) rounded to 2 decimals and
# clipped at 0; 10 = copies of data rows with small fixed perturbations.
offsets = [
    (0, 0, 0, 0), (-0.5, -0.5, 0.5, -0.5), (-0.6, -1.2, 1.0, -0.7), (-0.6, -1.2, -1.0, -0.7),
    (-0.6, -1.2, 0.0, -0.7), (1, 1, 0, 1), (2, 1, 0, 0), (0.5, 0.5, 0.5, 0.5),
    (3, 1.2, 0.5, 0.5), (0, 0, 0, 3), (1, 0, -1, 0), (-0.3, 0.8, 0.2, -0.2),
    (5, 1, 1, 1), (0.2, 1.1, 1.0, 0.0), (-0.2, -0.5, -1.5, 0.3), (1.5, 1.2, 1.2, -0.3),
    (0, -1, 0, 0), (0.8, 0.9, -0.8, 0.4), (10, 2, 1, 2), (-0.4, 0.3, 0.9, 0.1),
]
new_pts = []
for o in offsets:
    v = means + np.array(o, dtype=float) * stds
    v = np.maximum(np.round(v, 2), 0.0)
    v[0] = float(round(v[0]))  # x is a count
    new_pts.append([float(a) for a in v])
perturb_rows = [0, 2, 3, 9, 17, 40, 101, 250, 999, 2000]
perturb = [(0, 0.0, 0.05, 0.0), (0, 0, 0.0, 0), (0, 0, -0.1, 0), (0, 0.3, 0, 0.5),
           (0, 0, 0.2, 0), (0, -0.2, 0, -0.4), (0, 0, 0, 0), (0, 0.1, 0.1, 0.1),
           (0, 0, -0.05, 0), (0, 0, 0, 1.0)]
for r, p in zip(perturb_rows, perturb):
    v = np.maximum(np.round(X[r] + np.array(p), 2), 0.0)
    new_pts.append([float(a) for a in v])
assert len(new_pts) == 30
NEW = np.array(new_pts)
NEW_Z = standardize(NEW, means, stds)

dbscan_out = {
    "input": "all 2357 standardized rows (standardization_all_rows)",
    "semantics": "sklearn DBSCAN(metric='euclidean'): core point = at least min_samples points "
    "within distance <= eps INCLUDING the point itself; labels renumbered by first appearance "
    "in row order, noise = -1",
    "new_points": {
        "points_original_units": new_pts,
        "rule": "standardize with standardization_all_rows; nearest core point (standardized "
        "Euclidean, ties -> lowest row index); if its distance <= eps, that core point's "
        "(renumbered) cluster, else -1",
    },
    "runs": [],
}
for eps, ms in DBSCAN_PARAMS:
    db = DBSCAN(eps=eps, min_samples=ms, metric="euclidean", algorithm="auto").fit(Z)
    labels = renumber(db.labels_)
    core = sorted(int(i) for i in db.core_sample_indices_)
    # own check of the core definition
    within = (D <= eps).sum(axis=1)  # includes self (distance 0)
    core_incl = np.flatnonzero(within >= ms)
    core_excl = np.flatnonzero(within - 1 >= ms)
    assert core == [int(i) for i in core_incl]
    # the alternative convention is sklearn with min_samples + 1
    db_alt = DBSCAN(eps=eps, min_samples=ms + 1).fit(Z)
    assert sorted(int(i) for i in db_alt.core_sample_indices_) == [int(i) for i in core_excl]
    labels_alt = renumber(db_alt.labels_)
    lab = np.array(labels)
    n_clusters = int(lab.max() + 1)
    # boundary sensitivity: pairs with |d - eps| tiny, and distance margins
    iu = np.triu_indices(n, 1)
    dd = D[iu]
    near = int((np.abs(dd - eps) <= TIE_TOL).sum())
    exact = int((dd == eps).sum())
    margin = float(np.min(np.abs(dd - eps)))
    # border points within eps of core points of >= 2 clusters (ambiguous assignment)
    core_mask = np.zeros(n, bool)
    core_mask[core] = True
    ambiguous = []
    for i in np.flatnonzero(~core_mask & (lab >= 0)):
        cl = set(int(lab[j]) for j in np.flatnonzero((D[i] <= eps) & core_mask))
        if len(cl) > 1:
            ambiguous.append(int(i))
    sizes = [int((lab == c).sum()) for c in range(n_clusters)]
    core_lab = lab[core]
    assign = nearest_core_rule(NEW_Z, np.array(core), core_lab, eps)
    dbscan_out["runs"].append({
        "eps": eps,
        "min_samples": ms,
        "labels": labels,
        "n_clusters": n_clusters,
        "cluster_sizes": sizes,
        "n_noise": int((lab == -1).sum()),
        "n_core": len(core),
        "core_indices": core,
        "n_core_if_min_samples_excludes_self": int(core_excl.size),
        "excluding_self_convention": {
            "note": "core = at least min_samples OTHER points within eps (= sklearn with "
            "min_samples + 1)",
            "n_clusters": int(max(labels_alt) + 1),
            "n_noise": int(sum(1 for v in labels_alt if v == -1)),
            "labels": labels_alt,
        },
        "border_points_reachable_from_2plus_clusters": ambiguous,
        "pairs_with_abs_distance_minus_eps_le_1e-9": near,
        "pairs_with_distance_exactly_eps": exact,
        "min_abs_pair_distance_minus_eps": margin,
        "new_point_labels": [a[0] for a in assign],
        "new_point_nearest_core_row": [a[1] for a in assign],
        "new_point_nearest_core_distance": [a[2] for a in assign],
        "new_point_nearest_other_cluster_core_distance": [a[3] for a in assign],
    })
out["dbscan"] = dbscan_out

# ---------------------------------------------------------------------------------------------
# 3. Agglomerative clustering on the first 300 rows (standardized with THEIR OWN mean/std)
# ---------------------------------------------------------------------------------------------
X300 = X[:AGG_ROWS]
m300, s300, c300 = mean_std(X300)
Z300 = standardize(X300, m300, s300)
y = pdist(Z300, "euclidean")
agg = {
    "input": "first 300 rows of the file (row order), standardized with the mean/std of these "
    "300 rows (standardization_first300)",
    "standardization_first300": {"mean": fl(m300), "std": fl(s300), "constant": c300},
    "n_distinct_points": int(np.unique(Z300, axis=0).shape[0]),
    "labels_convention": "renumbered 0.. by first appearance in row order",
    "merge_heights_convention": "scipy.cluster.hierarchy.linkage(pdist(Z300), method) column 2, "
    "sorted ascending (299 values); ward heights are sqrt of the Lance-Williams ward update on "
    "squared distances, as scipy/fastcluster and kodama compute them",
    "methods": {},
}
for meth in AGG_LINKAGES:
    L = linkage(y, method=meth)
    h = np.sort(L[:, 2])
    entry = {"merge_heights": fl(h), "labels_n_clusters": {}, "cut_gaps": {}}
    for k in AGG_K:
        ac = AgglomerativeClustering(n_clusters=k, linkage=meth, metric="euclidean").fit(Z300)
        labs = renumber(ac.labels_)
        assert max(labs) + 1 == k
        # scipy tree cut into k clusters must give the same partition
        fc = fcluster(L, k, "maxclust")
        assert same_partition(fc, labs), (meth, k)
        entry["labels_n_clusters"][str(k)] = labs
        last_done, first_not = float(h[AGG_ROWS - k - 1]), float(h[AGG_ROWS - k])
        entry["cut_gaps"][str(k)] = {
            "last_merge_height": last_done,
            "next_merge_height": first_not,
            "gap": first_not - last_done,
            "tie": bool(first_not - last_done <= TIE_TOL),
        }
    if meth in AGG_CUT_LINKAGES:
        fc = fcluster(L, AGG_CUT_T, "distance")
        labs = renumber(fc)
        below = h[h <= AGG_CUT_T]
        above = h[h > AGG_CUT_T]
        # sklearn's distance_threshold (merges strictly below t) gives the same partition here
        ac = AgglomerativeClustering(n_clusters=None, distance_threshold=AGG_CUT_T,
                                     linkage=meth).fit(Z300)
        assert same_partition(ac.labels_, labs)
        entry["distance_cut"] = {
            "t": AGG_CUT_T,
            "rule": "scipy fcluster(Z, t, 'distance'): merges with height <= t are applied",
            "labels": labs,
            "n_clusters": int(max(labs) + 1),
            "largest_height_le_t": float(below.max()) if below.size else None,
            "smallest_height_gt_t": float(above.min()) if above.size else None,
            "heights_within_1e-9_of_t": int((np.abs(h - AGG_CUT_T) <= TIE_TOL).sum()),
        }
    nz = h[h > 0]
    entry["n_zero_heights"] = int((h == 0).sum())
    entry["n_exactly_tied_nonzero_heights"] = int(nz.size - np.unique(nz).size)
    agg["methods"][meth] = entry

# linfa-hierarchical takes a kernel and uses -ln(similarity) as dissimilarity: with a Gaussian
# kernel exp(-|x-y|^2/eps) that is |x-y|^2/eps (squared Euclidean). Record what average linkage on
# squared distances gives, to show the difference (single/complete are invariant under it).
y2 = y * y
sq = {"note": "linkage on SQUARED Euclidean distances (what linfa-hierarchical sees with a "
      "Gaussian kernel, eps = 1, up to exp/ln rounding and the 1e-6 similarity floor); NOT the "
      "reference: for comparison only", "methods": {}}
for meth in ["average", "complete", "single"]:
    L2 = linkage(y2, method=meth)
    e = {"labels_n_clusters": {}, "same_partition_as_euclidean": {}}
    for k in AGG_K:
        labs = renumber(fcluster(L2, k, "maxclust"))
        e["labels_n_clusters"][str(k)] = labs
        e["same_partition_as_euclidean"][str(k)] = labs == agg["methods"][meth]["labels_n_clusters"][str(k)]
    if meth == "average":
        e["merge_heights"] = fl(np.sort(L2[:, 2]))
    sq["methods"][meth] = e
agg["squared_distance_variant"] = sq
out["agglomerative"] = agg

with open(OUT, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")

# ---------------------------------------------------------------------------------------------
print("wrote", OUT, os.path.getsize(OUT), "bytes")
print("PCA explained_variance_ratio", out["pca"]["explained_variance_ratio"])
for r in dbscan_out["runs"]:
    print("DBSCAN eps=%s ms=%s clusters=%d noise=%d core=%d core_excl_self=%d alt(cl=%d noise=%d) "
          "ambiguous_border=%d near_eps_pairs=%d min|d-eps|=%.3g new=%s" % (
              r["eps"], r["min_samples"], r["n_clusters"], r["n_noise"], r["n_core"],
              r["n_core_if_min_samples_excludes_self"], r["excluding_self_convention"]["n_clusters"],
              r["excluding_self_convention"]["n_noise"],
              len(r["border_points_reachable_from_2plus_clusters"]),
              r["pairs_with_abs_distance_minus_eps_le_1e-9"], r["min_abs_pair_distance_minus_eps"],
              r["new_point_labels"]))
for meth, e in agg["methods"].items():
    print("AGG", meth, {k: (round(v["gap"], 6), v["tie"]) for k, v in e["cut_gaps"].items()},
          "zero", e["n_zero_heights"], "tied_nonzero", e["n_exactly_tied_nonzero_heights"],
          e.get("distance_cut", {}).get("n_clusters"),
          e.get("distance_cut", {}).get("largest_height_le_t"),
          e.get("distance_cut", {}).get("smallest_height_gt_t"))
for meth, e in sq["methods"].items():
    print("SQ", meth, e["same_partition_as_euclidean"])
