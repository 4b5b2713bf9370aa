#!/usr/bin/env python3
"""The Python side of bench/ml_bench.sh: scikit-learn 1.9.1 / xgboost 3.2.0 on the rows clv_ext
trains on, and the export round trip for scoring every customer.

    python ml_bench.py run PLAN.json OUT.json     # train, check quality, score round trips
    python ml_bench.py report PLAN.json SQL.json PY.json   # the side-by-side table

PLAN.json (written by ml_bench.sh):
    csv            the rows of ml_bench ordered by id: f1..f12, spend, churned (0/1), no header
    rows           rows in the CSV
    quality_rows   the quality check predicts the first this many rows (training rows, both sides)
    train_repeat, score_repeat   best of how many runs
    methods        [{key, task, method, label, rows, threads2}]: train on the first `rows` rows
                   (the rows with id <= rows in SQL); threads2: also time n_jobs=2
    scoring        [key]: score every row with that model

Training is timed with time.perf_counter around fit() alone (the data are numpy arrays in memory
already; the GLMs' StandardScaler is part of the timed pipeline, as clv_ext standardizes inside
its fit). Single-core figures run under threadpoolctl's limit of 1 thread (BLAS and OpenMP) with
n_jobs=1; the xgboost "2 threads" figure uses n_jobs=2 and no limit.

The scoring round trip, timed from an open connection (psycopg 3, unix socket), the way a Python
scorer would do it with the fewest copies: COPY (SELECT id, features[1..12] FROM ml_bench) TO STDOUT
in binary format, decoded with one numpy structured view (every row has the same size: no NULLs);
predict with the 1-thread model; CREATE TABLE and COPY the (id, score) rows back in binary format,
encoded with numpy; commit. The DROP of the previous run's table is not timed.
"""
import json
import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np
import pandas as pd
import sklearn
import xgboost
from sklearn.linear_model import LinearRegression, LogisticRegression, TweedieRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier, XGBRegressor

N_FEATURES = 12


def make_model(key, threads):
    """The scikit-learn / xgboost equivalent of clv_ext's method with its benchmark options."""
    xgb = dict(n_estimators=100, learning_rate=0.1, max_depth=4, reg_lambda=1.0, min_child_weight=1.0,
               tree_method="hist", max_bin=256, n_jobs=threads, random_state=1)
    if key == "linear":
        return LinearRegression()
    if key == "tweedie":
        return make_pipeline(StandardScaler(), TweedieRegressor(power=1.5, alpha=0.001, link="log", max_iter=1000))
    if key == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    if key == "decision_tree":
        return DecisionTreeRegressor(max_depth=6, min_samples_leaf=20, random_state=0)
    if key == "random_forest":
        return RandomForestRegressor(n_estimators=100, max_depth=8, min_samples_leaf=5, max_features="sqrt",
                                     n_jobs=threads, random_state=1)
    if key == "gradient_boosting":
        return XGBRegressor(**xgb)
    if key == "gradient_boosting_clf":
        return XGBClassifier(**xgb)
    raise ValueError(key)


def predict(model, task, x):
    return model.predict_proba(x)[:, 1] if task == "classification" else model.predict(x)


def quality(task, p, y):
    """RMSE for regression, AUC for classification (the same keys as clv_ext's metrics)."""
    if task == "classification":
        return {"auc": float(roc_auc_score(y, p)), "mean_predicted": float(np.mean(p))}
    return {"rmse": float(np.sqrt(np.mean((p - y) ** 2))), "mean_predicted": float(np.mean(p))}


def timed_fit(key, x, y, threads, repeat):
    best, model = None, None
    for _ in range(repeat):
        m = make_model(key, threads)
        if threads == 1:
            with threadpool_limits(limits=1):
                t0 = time.perf_counter()
                m.fit(x, y)
                t = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            m.fit(x, y)
            t = time.perf_counter() - t0
        if best is None or t < best:
            best, model = t, m
    return best, model


# Binary COPY: 11-byte signature, int32 flags, int32 header extension length; int16 -1 trailer.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"
ROW_IN = np.dtype([("nf", ">i2"), ("l0", ">i4"), ("id", ">i8")]
                  + [f for k in range(1, N_FEATURES + 1) for f in ((f"l{k}", ">i4"), (f"f{k}", ">f8"))])
ROW_OUT = np.dtype([("nf", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("s", ">f8")])


def round_trip(conn, model, task, table):
    """Export the features, predict, load the scores back; seconds of each step."""
    cols = ", ".join(f"features[{k}]" for k in range(1, N_FEATURES + 1))
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
        t0 = time.perf_counter()
        buf = bytearray()
        with cur.copy(f"COPY (SELECT id, {cols} FROM ml_bench) TO STDOUT (FORMAT binary)") as cp:
            for chunk in cp:
                buf += chunk
        body = len(buf) - len(COPY_HEADER) - len(COPY_TRAILER)
        if buf[:11] != COPY_HEADER[:11] or body % ROW_IN.itemsize:
            raise RuntimeError("unexpected binary COPY layout (a NULL feature?)")
        rows = np.frombuffer(buf, dtype=ROW_IN, count=body // ROW_IN.itemsize, offset=len(COPY_HEADER))
        if not (rows["l1"] == 8).all():
            raise RuntimeError("unexpected binary COPY layout")
        ids = rows["id"].astype(np.int64)
        x = np.empty((len(rows), N_FEATURES))
        for k in range(N_FEATURES):
            x[:, k] = rows[f"f{k + 1}"]
        t1 = time.perf_counter()
        with threadpool_limits(limits=1):
            p = predict(model, task, x)
        t2 = time.perf_counter()
        out = np.empty(len(ids), dtype=ROW_OUT)
        out["nf"], out["l0"], out["id"], out["l1"], out["s"] = 2, 8, ids, 8, p
        cur.execute(f"CREATE TABLE {table} (id bigint, score float8)")
        with cur.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as cp:
            cp.write(COPY_HEADER + out.tobytes() + COPY_TRAILER)
        conn.commit()
        t3 = time.perf_counter()
    return {"total_s": t3 - t0, "export_s": t1 - t0, "predict_s": t2 - t1, "load_s": t3 - t2, "rows": len(ids)}


def run(plan_path, out_path):
    import psycopg

    plan = json.load(open(plan_path))
    t0 = time.perf_counter()
    d = pd.read_csv(plan["csv"], header=None, dtype=np.float64).to_numpy()
    load_s = time.perf_counter() - t0
    assert d.shape == (plan["rows"], N_FEATURES + 2), d.shape
    x, spend, churned = np.ascontiguousarray(d[:, :N_FEATURES]), d[:, N_FEATURES], d[:, N_FEATURES + 1].astype(int)
    q = plan["quality_rows"]
    res = {"load_csv_s": load_s, "sklearn": sklearn.__version__, "xgboost": xgboost.__version__,
           "numpy": np.__version__, "methods": {}, "scoring": {}}
    models = {}
    for m in plan["methods"]:
        key, n = m["key"], m["rows"]
        y = churned if m["task"] == "classification" else spend
        print(f"ml_bench.py: training {key} on {n} rows", file=sys.stderr, flush=True)
        t1, model = timed_fit(key, x[:n], y[:n], 1, plan["train_repeat"])
        r = {"rows": n, "fit_s": t1, "quality": quality(m["task"], predict(model, m["task"], x[:q]), y[:q])}
        if m.get("threads2"):
            r["fit2_s"], _ = timed_fit(key, x[:n], y[:n], 2, plan["train_repeat"])
        res["methods"][key] = r
        models[key] = model
        print(f"ml_bench.py: {key} {json.dumps(r)}", file=sys.stderr, flush=True)
    tasks = {m["key"]: m["task"] for m in plan["methods"]}
    with psycopg.connect("") as conn:
        for key in plan["scoring"]:
            best = None
            for _ in range(plan["score_repeat"]):
                r = round_trip(conn, models[key], tasks[key], f"ml_bench_py_scores_{key}")
                if best is None or r["total_s"] < best["total_s"]:
                    best = r
            res["scoring"][key] = best
            print(f"ml_bench.py: scoring {key} {json.dumps(best)}", file=sys.stderr, flush=True)
    json.dump(res, open(out_path, "w"), indent=1)


def report(plan_path, sql_path, py_path):
    plan, sql, py = (json.load(open(p)) for p in (plan_path, sql_path, py_path))

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    def ratio(a, b):
        return "-" if a is None or b is None or b <= 0 else f"{a / b:.2f}x"

    def qual(m):
        if m is None:
            return "-"
        return f"auc {m['auc']:.4f}" if "auc" in m else f"rmse {m['rmse']:.3f}"

    print(f"\n{'training':<34} {'rows':>8} {'clv_ext s':>10} {'python s':>10} {'python/clv_ext':>15}"
          f" {'xgb 2 thr s':>12} {'clv_ext quality':>17} {'python quality':>17}")
    for m in plan["methods"]:
        k = m["key"]
        s, p = sql["methods"][k], py["methods"][k]
        print(f"{m['label']:<34} {m['rows']:>8} {f(s['fit_s']):>10} {f(p['fit_s']):>10} {ratio(p['fit_s'], s['fit_s']):>15}"
              f" {f(p.get('fit2_s')):>12} {qual(s.get('quality')):>17} {qual(p['quality']):>17}")
    print(f"\n{'scoring every customer':<34} {'rows':>8} {'clv_ext s':>10} {'python s':>10} {'python/clv_ext':>15}"
          f"   python = export + predict + load")
    labels = {m["key"]: m["label"] for m in plan["methods"]}
    for k in plan["scoring"]:
        s, p = sql["scoring"][k], py["scoring"][k]
        print(f"{labels[k]:<34} {p['rows']:>8} {f(s):>10} {f(p['total_s']):>10} {ratio(p['total_s'], s):>15}"
              f"   {p['export_s']:.3f} + {p['predict_s']:.3f} + {p['load_s']:.3f}")
    print(f"\nfloor: reading every row's features and labels in SQL (count/sum): {f(sql.get('floor_s'))} s")
    print(f"quality: on the first {plan['quality_rows']} rows (training rows), RMSE of spend or AUC of churned")
    print(f"python: scikit-learn {py['sklearn']}, xgboost {py['xgboost']}, numpy {py['numpy']}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
