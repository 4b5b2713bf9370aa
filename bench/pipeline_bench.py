#!/usr/bin/env python3
"""Python side of bench/pipeline_bench.sh: what clv_pipeline does, with lifetimes 0.11.3 + pandas.

Usage:
    python pipeline_bench.py TRANSACTIONS.csv OBSERVATION_END [--kmeans-sample N] [--clusters K]
                             [--seed S] [--horizon-months M] [--discount-rate D]

TRANSACTIONS.csv: header customer_id,ts,amount (the rows of bench_tx, exported with \\copy).
Stages, each timed with time.perf_counter, one run:
  read     pd.read_csv with ts parsed as datetimes (a cost the Python user pays, reported apart)
  summary  lifetimes.utils.summary_data_from_transaction_data(freq='D', freq_multiplier=7,
           observation_period_end=OBSERVATION_END): frequency = distinct purchase days - 1,
           recency and T in weeks of 7 days, monetary_value = mean of the repeat days' totals,
           the same definitions as clv_ext's rfm() + rfm_fields(s, 'week')
  bgnbd    BetaGeoFitter(penalizer_coef=0).fit(frequency, recency, T) on every customer
  gg       GammaGammaFitter(penalizer_coef=0).fit on the repeat buyers (frequency > 0)
  clv      ggf.customer_lifetime_value(bgf, ..., time=M, discount_rate=D, freq='W') for everyone
  tiers    20/50/30 value tiers: top 20% high, middle 50% medium, bottom 30% low by CLV
           (pd.qcut on the CLV's rank)
  kmeans_fit     scikit-learn KMeans(K, n_init=10, k-means++, seeded) on the z-scores of
                 (recency, frequency, monetary_value, clv) of a seeded random sample of N
                 customers (N = 20,000 as clv_pipeline's kmeans_sample; everyone if fewer)
  kmeans_assign  the fitted scaler + model's predict() for every customer
The last line of stdout is one JSON object with every stage's seconds, the parameters, the CLV
sum, the tier counts and the customer count.
"""
import argparse
import json
import os
import sys
import time
import warnings

# One thread, as bench/lifetimes/bench.py: numpy's elementwise work is single-threaded anyway, and
# scikit-learn's K-means would otherwise take both cores while clv_pipeline's K-means runs on one.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import lifetimes  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402
import sklearn  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("csv")
    p.add_argument("observation_end")
    p.add_argument("--kmeans-sample", type=int, default=20000)
    p.add_argument("--clusters", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--horizon-months", type=int, default=12)
    p.add_argument("--discount-rate", type=float, default=0.01)
    a = p.parse_args()
    warnings.simplefilter("ignore")
    t = {}

    def lap(stage, t0):
        t[stage] = time.perf_counter() - t0
        print("pipeline_bench.py: %-14s %8.3f s" % (stage, t[stage]), file=sys.stderr, flush=True)
        return time.perf_counter()

    t0 = time.perf_counter()
    tx = pd.read_csv(a.csv, parse_dates=["ts"], dtype={"customer_id": np.int64, "amount": np.float64})
    t0 = lap("read", t0)

    s = summary_data_from_transaction_data(tx, "customer_id", "ts", "amount",
                                           observation_period_end=a.observation_end, freq="D", freq_multiplier=7)
    t0 = lap("summary", t0)

    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
    t0 = lap("bgnbd", t0)

    rep = s[s["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"])
    t0 = lap("gg", t0)

    clv = ggf.customer_lifetime_value(bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                      time=a.horizon_months, discount_rate=a.discount_rate, freq="W")
    t0 = lap("clv", t0)

    tier = pd.qcut(clv.rank(method="first"), [0, 0.3, 0.8, 1.0], labels=["low", "medium", "high"])
    t0 = lap("tiers", t0)

    feats = np.column_stack([s["recency"].to_numpy(), s["frequency"].to_numpy(),
                             s["monetary_value"].to_numpy(), clv.to_numpy()])
    rng = np.random.default_rng(a.seed)
    sample = feats if len(feats) <= a.kmeans_sample else feats[rng.choice(len(feats), a.kmeans_sample, replace=False)]
    scaler = StandardScaler().fit(sample)
    km = KMeans(n_clusters=min(a.clusters, len(sample)), n_init=10, init="k-means++", max_iter=300,
                random_state=a.seed).fit(scaler.transform(sample))
    t0 = lap("kmeans_fit", t0)
    cluster = km.predict(scaler.transform(feats))
    t0 = lap("kmeans_assign", t0)

    work = sum(t[k] for k in ("summary", "bgnbd", "gg", "clv", "tiers", "kmeans_fit", "kmeans_assign"))
    print(json.dumps({
        "stages_s": t,
        "work_s": work,
        "work_without_kmeans_s": work - t["kmeans_fit"] - t["kmeans_assign"],
        "transactions": int(len(tx)),
        "customers": int(len(s)),
        "repeat_buyers": int(len(rep)),
        "bgnbd_params": {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")},
        "gg_params": {k: float(ggf.params_[k]) for k in ("p", "q", "v")},
        "clv_sum": float(clv.sum()),
        "tiers": {k: int(v) for k, v in tier.value_counts().items()},
        "cluster_sizes": sorted(int(v) for v in np.bincount(cluster)),
        "kmeans_sample": int(len(sample)),
        "versions": {"lifetimes": lifetimes.__version__, "pandas": pd.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__},
    }))


if __name__ == "__main__":
    main()
