#!/usr/bin/env python3
"""Reference data for clv_ext's supervised ML models (run by hand, not by the test suite).

Reads tests/data/cdnow/CDNOW_sample.txt, computes the per-customer features and labels of
docs/ml-features-spec.md independently with pandas (calibration end 1997-09-30, holdout end
1998-06-30), the splitmix64 train/test split (seed 0, 80 % training), and fits scikit-learn /
xgboost reference models on it.

Outputs (next to this script):
  cdnow_features.csv       one row per customer, sorted by customer_id
  sklearn_reference.json   fitted coefficients and test-set metrics

Usage (from the repository root):
  python3 -m venv build/ml-venv
  build/ml-venv/bin/pip install -r tests/data/ml/requirements.txt
  build/ml-venv/bin/python tests/data/ml/make_references.py
"""

import json
import math
import os
import sys

import numpy as np
import pandas as pd
import sklearn
import scipy
import xgboost
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, TweedieRegressor
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "cdnow", "CDNOW_sample.txt")
OUT_CSV = os.path.join(HERE, "cdnow_features.csv")
OUT_JSON = os.path.join(HERE, "sklearn_reference.json")

CAL_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")
SEED = 0
TRAIN_SHARE = 0.8

FEATURES = [
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "average_order_value",
    "total_spend",
    "first_purchase_spend",
    "interpurchase_mean_days",
    "interpurchase_cv",
    "purchases_last_30_days",
    "spend_last_30_days",
    "purchases_last_90_days",
    "spend_last_90_days",
    "purchases_last_180_days",
    "spend_last_180_days",
    "purchase_trend_90_days",
    "spend_trend_90_days",
]

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


assert splitmix64(0) == 0xE220A8397B1DCDAF


def in_training(customer_id: int, seed: int = SEED) -> bool:
    u = float(splitmix64((customer_id ^ seed) & MASK64) >> 11) / float(1 << 53)
    return u < TRAIN_SHARE


# --------------------------------------------------------------------------------------------
# Features and labels
# --------------------------------------------------------------------------------------------

def load_transactions() -> pd.DataFrame:
    tx = pd.read_csv(
        DATA,
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "quantity", "amount"],
        dtype={"customer_id": str, "sample_id": str, "date": str, "quantity": np.int64,
               "amount": np.float64},
    )
    tx["customer_id"] = tx["customer_id"].astype(np.int64)
    tx["day"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    tx = tx.dropna(subset=["day", "amount"])
    tx = tx[tx["day"] <= HOLDOUT_END]
    return tx[["customer_id", "day", "amount"]]


def window_agg(cal: pd.DataFrame, mask: pd.Series, name_n: str, name_s: str) -> pd.DataFrame:
    sub = cal[mask]
    g = sub.groupby("customer_id")["spend"]
    return pd.DataFrame({name_n: g.size(), name_s: g.sum()})


def build_features(tx: pd.DataFrame) -> pd.DataFrame:
    # One purchase per (customer, day), spend = sum of that day's amounts.
    days = (tx.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
              .rename(columns={"amount": "spend"})
              .sort_values(["customer_id", "day"], kind="mergesort")
              .reset_index(drop=True))

    cal = days[days["day"] <= CAL_END].copy()
    hold = days[(days["day"] > CAL_END) & (days["day"] <= HOLDOUT_END)]

    # Days relative to the calibration end (non-negative integers for calibration days).
    cal["age"] = (CAL_END - cal["day"]).dt.days.astype(np.int64)

    g = cal.groupby("customer_id")
    first_day = g["day"].min()
    last_day = g["day"].max()
    n = g.size()
    total = g["spend"].sum()
    first_spend = g["spend"].first()  # days are sorted within customer

    f = pd.DataFrame(index=n.index)
    f["frequency"] = (n - 1).astype(np.int64)
    f["recency"] = (last_day - first_day).dt.days.astype(np.int64)
    f["T"] = (CAL_END - first_day).dt.days.astype(np.int64)
    # mean(s_2..s_n): computed as the mean of the repeat rows themselves (not total - first).
    repeat_rows = cal[cal.groupby("customer_id").cumcount() > 0]
    repeat_mean = repeat_rows.groupby("customer_id")["spend"].mean()
    f["monetary_value"] = repeat_mean.reindex(f.index).fillna(0.0)
    f["days_since_last_purchase"] = (CAL_END - last_day).dt.days.astype(np.int64)
    f["average_order_value"] = g["spend"].mean()
    f["total_spend"] = total
    f["first_purchase_spend"] = first_spend

    # Inter-purchase gaps in days.
    cal["gap"] = cal.groupby("customer_id")["day"].diff().dt.days
    gaps = cal.dropna(subset=["gap"])
    gg = gaps.groupby("customer_id")["gap"]
    gap_mean = gg.mean()
    gap_std0 = gg.std(ddof=0)
    gap_count = gg.size()
    f["interpurchase_mean_days"] = gap_mean.reindex(f.index).fillna(0.0).astype(np.float64)
    cv = (gap_std0 / gap_mean).where((gap_count >= 2) & (gap_mean > 0), 0.0)
    f["interpurchase_cv"] = cv.reindex(f.index).fillna(0.0).astype(np.float64)

    # Windows: d_i > c - k  <=>  age < k  (c included, the k days ending at c).
    for k in (30, 90, 180):
        w = window_agg(cal, cal["age"] < k, f"purchases_last_{k}_days", f"spend_last_{k}_days")
        f[f"purchases_last_{k}_days"] = w[f"purchases_last_{k}_days"].reindex(f.index).fillna(0).astype(np.int64)
        f[f"spend_last_{k}_days"] = w[f"spend_last_{k}_days"].reindex(f.index).fillna(0.0)
    prev = window_agg(cal, (cal["age"] >= 90) & (cal["age"] < 180), "n_prev", "s_prev")
    n_prev = prev["n_prev"].reindex(f.index).fillna(0).astype(np.int64)
    s_prev = prev["s_prev"].reindex(f.index).fillna(0.0)
    f["purchase_trend_90_days"] = f["purchases_last_90_days"] - n_prev
    f["spend_trend_90_days"] = f["spend_last_90_days"] - s_prev

    # Labels. holdout_spend sums the holdout transactions' amounts (equal to summing the day sums).
    htx = tx[(tx["day"] > CAL_END) & (tx["day"] <= HOLDOUT_END)]
    f["holdout_spend"] = htx.groupby("customer_id")["amount"].sum().reindex(f.index).fillna(0.0)
    f["holdout_purchases"] = hold.groupby("customer_id").size().reindex(f.index).fillna(0).astype(np.int64)
    f["churned"] = f["holdout_purchases"] == 0
    f["in_training"] = [in_training(int(cid)) for cid in f.index]

    f = f[FEATURES + ["holdout_spend", "holdout_purchases", "churned", "in_training"]]
    f.index.name = "customer_id"
    return f.sort_index()


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def rmse(y, p) -> float:
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def flist(a):
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def named(coefs, names):
    return {k: float(v) for k, v in zip(names, np.asarray(coefs).ravel())}


def ols_block(Xtr, ytr, Xte, yte, names):
    lr = LinearRegression(fit_intercept=True).fit(Xtr, ytr)
    Z = np.column_stack([np.ones(len(Xtr)), Xtr])
    n, p = Xtr.shape
    rank = int(np.linalg.matrix_rank(Z))
    sv = np.linalg.svd(Z, compute_uv=False)
    resid = ytr - lr.predict(Xtr)
    rss = float(resid @ resid)
    block = {
        "features": list(names),
        "n_train": int(n),
        "p": int(p),
        "rank_of_Z": rank,
        "condition_number_of_Z": float(sv[0] / sv[-1]),
        "intercept": float(lr.intercept_),
        "coefficients": named(lr.coef_, names),
        "rss": rss,
        "test_rmse": rmse(yte, lr.predict(Xte)),
        "train_rmse": rmse(ytr, lr.predict(Xtr)),
    }
    if rank == p + 1:
        sigma2 = rss / (n - p - 1)
        ztz_inv = np.linalg.inv(Z.T @ Z)
        se = np.sqrt(sigma2 * np.diag(ztz_inv))
        block["sigma2"] = float(sigma2)
        block["se_intercept"] = float(se[0])
        block["se_coefficients"] = named(se[1:], names)
    else:
        block["sigma2"] = None
        block["se_intercept"] = None
        block["se_coefficients"] = None
    return lr, block


def check_features_plain_python(tx: pd.DataFrame, feat: pd.DataFrame) -> None:
    """Second, loop-based computation of the spec from the raw rows; must agree with pandas."""
    cal_end = CAL_END.date()
    per = {}
    for cid, day, amount in zip(tx["customer_id"], tx["day"].dt.date, tx["amount"]):
        per.setdefault(int(cid), {}).setdefault(day, []).append(float(amount))
    expected_ids = sorted(cid for cid, d in per.items() if min(d) <= cal_end)
    assert expected_ids == feat.index.tolist()
    for cid in expected_ids:
        cal = sorted((d, math.fsum(a)) for d, a in per[cid].items() if d <= cal_end)
        hold = [(d, a) for d, a in per[cid].items() if d > cal_end]
        d = [(cal_end - x).days for x, _ in cal]  # c - d_i, decreasing
        s = [v for _, v in cal]
        n = len(cal)
        gaps = [d[i] - d[i + 1] for i in range(n - 1)]
        gm = sum(gaps) / len(gaps) if gaps else 0.0
        if n >= 3 and gm > 0:
            cv = math.sqrt(sum((g - gm) ** 2 for g in gaps) / len(gaps)) / gm
        else:
            cv = 0.0
        def win(lo, hi):  # lo <= c - d_i < hi
            sel = [v for a, v in zip(d, s) if lo <= a < hi]
            return len(sel), math.fsum(sel)
        n30, s30 = win(0, 30)
        n90, s90 = win(0, 90)
        n180, s180 = win(0, 180)
        np_, sp = win(90, 180)
        exp = {
            "frequency": n - 1, "recency": d[0] - d[-1], "T": d[0],
            "monetary_value": math.fsum(s[1:]) / (n - 1) if n > 1 else 0.0,
            "days_since_last_purchase": d[-1], "average_order_value": math.fsum(s) / n,
            "total_spend": math.fsum(s), "first_purchase_spend": s[0],
            "interpurchase_mean_days": gm, "interpurchase_cv": cv,
            "purchases_last_30_days": n30, "spend_last_30_days": s30,
            "purchases_last_90_days": n90, "spend_last_90_days": s90,
            "purchases_last_180_days": n180, "spend_last_180_days": s180,
            "purchase_trend_90_days": n90 - np_, "spend_trend_90_days": s90 - sp,
            "holdout_spend": math.fsum(a for _, v in hold for a in v),
            "holdout_purchases": len(hold),
        }
        row = feat.loc[cid]
        for k, v in exp.items():
            got = float(row[k])
            assert abs(got - v) <= 1e-9 * max(1.0, abs(v)), (cid, k, got, v)
        assert bool(row["churned"]) == (len(hold) == 0)


def main() -> int:
    tx = load_transactions()
    feat = build_features(tx)
    check_features_plain_python(tx, feat)

    out = feat.reset_index()
    for col in ("churned", "in_training"):
        out[col] = out[col].map({True: "true", False: "false"})
    out.to_csv(OUT_CSV, index=False, float_format="%.17g", lineterminator="\n")

    # Read back what was written, so the models see exactly the committed numbers.
    df = pd.read_csv(OUT_CSV, dtype={"churned": str, "in_training": str})
    for col in ("churned", "in_training"):
        assert set(df[col]) <= {"true", "false"}, col
        df[col] = df[col] == "true"
    assert df["customer_id"].tolist() == feat.index.tolist()
    for c in FEATURES:
        assert np.array_equal(df[c].to_numpy(np.float64), feat[c].to_numpy(np.float64)), c

    tr = df[df["in_training"]]
    te = df[~df["in_training"]]
    Xtr = tr[FEATURES].to_numpy(np.float64)
    Xte = te[FEATURES].to_numpy(np.float64)
    ytr = tr["holdout_spend"].to_numpy(np.float64)
    yte = te["holdout_spend"].to_numpy(np.float64)
    ctr = tr["churned"].to_numpy(np.int64)
    cte = te["churned"].to_numpy(np.int64)

    ref = {
        "description": "clv_ext ML reference values, see tests/data/ml/README.md",
        "data": {
            "calibration_end": str(CAL_END.date()),
            "holdout_end": str(HOLDOUT_END.date()),
            "split": "in_training = (splitmix64(customer_id ^ 0) >> 11) / 2^53 < 0.8",
            "n_customers": int(len(df)),
            "n_train": int(len(tr)),
            "n_test": int(len(te)),
            "train_mean_holdout_spend": float(ytr.mean()),
            "test_mean_holdout_spend": float(yte.mean()),
            "train_churn_share": float(ctr.mean()),
            "test_churn_share": float(cte.mean()),
            "test_rmse_of_train_mean": rmse(yte, np.full_like(yte, ytr.mean())),
        },
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__,
        },
        "features": FEATURES,
    }

    # ---- OLS ---------------------------------------------------------------------------------
    _, ref["ols"] = ols_block(Xtr, ytr, Xte, yte, FEATURES)
    ref["ols"]["note"] = (
        "The 18 features have 3 exact linear dependencies (days_since_last_purchase = T - recency; "
        "purchase_trend_90_days = 2*purchases_last_90_days - purchases_last_180_days; "
        "spend_trend_90_days = 2*spend_last_90_days - spend_last_180_days), so Z'Z is singular and "
        "the OLS coefficients are not unique: these are sklearn's (scipy lstsq, minimum-norm on "
        "centred X). Fitted values and the test RMSE are unique. Standard errors are undefined "
        "(null). See ols_full_rank for a full-rank version with standard errors.")
    reduced = [f for f in FEATURES if f not in
               ("days_since_last_purchase", "purchase_trend_90_days", "spend_trend_90_days")]
    ridx = [FEATURES.index(f) for f in reduced]
    _, ref["ols_full_rank"] = ols_block(Xtr[:, ridx], ytr, Xte[:, ridx], yte, reduced)
    ref["ols_full_rank"]["note"] = (
        "OLS on the 15 features left after dropping days_since_last_purchase, "
        "purchase_trend_90_days and spend_trend_90_days (the exact linear combinations of others): "
        "unique coefficients, classical SEs with sigma^2 = RSS/(n - p - 1). Its test RMSE equals "
        "that of the 18-feature OLS (same column space).")

    # ---- Ridge -------------------------------------------------------------------------------
    ridge = Ridge(alpha=10.0, fit_intercept=True, solver="cholesky").fit(Xtr, ytr)
    ref["ridge"] = {
        "alpha": 10.0,
        "objective": "||y - b0 - X w||^2 + alpha ||w||^2 (intercept not penalised; raw X, sklearn centres X and y)",
        "solver": "cholesky",
        "intercept": float(ridge.intercept_),
        "coefficients": named(ridge.coef_, FEATURES),
        "test_rmse": rmse(yte, ridge.predict(Xte)),
        "train_rmse": rmse(ytr, ridge.predict(Xtr)),
    }
    ridge_default = Ridge(alpha=10.0, fit_intercept=True).fit(Xtr, ytr)
    ref["ridge"]["max_abs_coef_diff_vs_default_solver"] = float(
        np.max(np.abs(ridge_default.coef_ - ridge.coef_)))

    # ---- Standardisation ---------------------------------------------------------------------
    scaler = StandardScaler().fit(Xtr)  # ddof = 0
    Str = scaler.transform(Xtr)
    Ste = scaler.transform(Xte)
    scaler_block = {"mean": named(scaler.mean_, FEATURES), "scale": named(scaler.scale_, FEATURES)}

    # ---- Logistic ----------------------------------------------------------------------------
    logit = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000, solver="lbfgs").fit(Str, ctr)
    p_logit = logit.predict_proba(Ste)[:, 1]
    ref["logistic"] = {
        "label": "churned (1 = churned)",
        "C": 1.0,
        "penalty": "l2",
        "objective": "C * sum_i logloss_i + 0.5 * ||w||^2 (intercept not penalised), on standardised X",
        "n_iter": int(logit.n_iter_[0]),
        "intercept": float(logit.intercept_[0]),
        "coefficients": named(logit.coef_[0], FEATURES),
        "test_auc": float(roc_auc_score(cte, p_logit)),
        "test_log_loss": float(log_loss(cte, p_logit)),
        "test_brier": float(brier_score_loss(cte, p_logit)),
        "scaler": scaler_block,
    }

    # ---- Tweedie -----------------------------------------------------------------------------
    tw = TweedieRegressor(power=1.5, alpha=0.001, link="log", max_iter=10000, tol=1e-10).fit(Str, ytr)
    ref["tweedie"] = {
        "power": 1.5,
        "alpha": 0.001,
        "link": "log",
        "objective": "1/(2n) * sum_i unit_deviance(y_i, mu_i) + alpha/2 * ||w||^2 (intercept not penalised), on standardised X",
        "n_iter": int(tw.n_iter_),
        "intercept": float(tw.intercept_),
        "coefficients": named(tw.coef_, FEATURES),
        "test_rmse": rmse(yte, tw.predict(Ste)),
        "train_rmse": rmse(ytr, tw.predict(Str)),
        "scaler": "same as logistic.scaler",
    }

    # ---- Trees -------------------------------------------------------------------------------
    def clf_metrics(p):
        return {
            "test_auc": float(roc_auc_score(cte, p)),
            "test_log_loss": float(log_loss(cte, p)),
            "test_brier": float(brier_score_loss(cte, p)),
            "test_predictions_at_0_or_1": int(np.sum((p <= 0.0) | (p >= 1.0))),
            # Predictions of exactly 0 for a churner or 1 for a non-churner: each adds
            # -log(eps) = 36.04 to the clipped log-loss sum, so log-loss is convention-bound.
            "test_confidently_wrong": int(np.sum(((p <= 0.0) & (cte == 1)) | ((p >= 1.0) & (cte == 0)))),
        }

    dtr = DecisionTreeRegressor(max_depth=6, min_samples_leaf=20, random_state=1).fit(Xtr, ytr)
    dtc = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, criterion="gini",
                                 random_state=1).fit(Xtr, ctr)
    ref["decision_tree"] = {
        "params": {"max_depth": 6, "min_samples_leaf": 20, "criterion_classifier": "gini",
                   "criterion_regressor": "squared_error", "random_state": 1},
        "regressor": {"test_rmse": rmse(yte, dtr.predict(Xte)),
                      "n_leaves": int(dtr.get_n_leaves())},
        "classifier": dict(clf_metrics(dtc.predict_proba(Xte)[:, 1]),
                           n_leaves=int(dtc.get_n_leaves())),
    }

    rf_params = dict(n_estimators=100, max_depth=8, min_samples_leaf=5, max_features="sqrt",
                     bootstrap=True, n_jobs=1)  # n_jobs=1: bit-reproducible averaging
    rf_rmse, rf_auc, rf_ll = [], [], []
    rf_block = {"params": {k: v for k, v in rf_params.items() if k != "n_jobs"}}
    for seed in range(1, 11):
        rfr = RandomForestRegressor(random_state=seed, **rf_params).fit(Xtr, ytr)
        rfc = RandomForestClassifier(criterion="gini", random_state=seed, **rf_params).fit(Xtr, ctr)
        pr = rfc.predict_proba(Xte)[:, 1]
        rf_rmse.append(rmse(yte, rfr.predict(Xte)))
        rf_auc.append(float(roc_auc_score(cte, pr)))
        rf_ll.append(float(log_loss(cte, pr)))
        if seed == 1:
            rf_block["regressor"] = {"random_state": 1, "test_rmse": rf_rmse[-1]}
            rf_block["classifier"] = dict(clf_metrics(pr), random_state=1)
    rf_block["over_random_state_1_to_10"] = {
        "test_rmse": rf_rmse,
        "test_rmse_mean": float(np.mean(rf_rmse)),
        "test_rmse_std_ddof1": float(np.std(rf_rmse, ddof=1)),
        "test_auc": rf_auc,
        "test_auc_mean": float(np.mean(rf_auc)),
        "test_auc_std_ddof1": float(np.std(rf_auc, ddof=1)),
        "test_log_loss": rf_ll,
        "test_log_loss_mean": float(np.mean(rf_ll)),
        "test_log_loss_std_ddof1": float(np.std(rf_ll, ddof=1)),
    }
    ref["random_forest"] = rf_block

    xgb_params = dict(n_estimators=100, learning_rate=0.1, max_depth=4, reg_lambda=1.0,
                      min_child_weight=1.0, tree_method="hist", max_bin=256, n_jobs=2)
    xr = xgboost.XGBRegressor(**xgb_params).fit(Xtr, ytr)
    xc = xgboost.XGBClassifier(objective="binary:logistic", **xgb_params).fit(Xtr, ctr)

    def base_score(model):
        cfg = json.loads(model.get_booster().save_config())
        return cfg["learner"]["learner_model_param"]["base_score"]

    ref["xgboost"] = {
        "params": xgb_params,
        "regressor": {"objective": "reg:squarederror", "base_score": base_score(xr),
                      "test_rmse": rmse(yte, xr.predict(Xte).astype(np.float64))},
        "classifier": dict(clf_metrics(xc.predict_proba(Xte)[:, 1].astype(np.float64)),
                           objective="binary:logistic", base_score=base_score(xc)),
    }

    ref["metric_conventions"] = {
        "rmse": "sqrt(mean((y - p)^2)) over the test rows",
        "auc": "sklearn roc_auc_score, positive class = churned, ties count 1/2",
        "log_loss": "sklearn log_loss (mean, natural log), p clipped to [eps, 1 - eps], eps = float64 machine epsilon",
        "brier": "mean((p - y)^2)",
        "std": "sample standard deviation (ddof = 1) over the 10 random states",
    }

    with open(OUT_JSON, "w") as fh:
        json.dump(ref, fh, indent=2, allow_nan=False)
        fh.write("\n")
    print(f"wrote {OUT_CSV} and {OUT_JSON}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
