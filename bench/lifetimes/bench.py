#!/usr/bin/env python3
"""Time Python `lifetimes` 0.11.3 on a customer summary, for comparison with clv_ext.

Usage:
    python bench.py SUMMARY.csv [--repeat N] [--max-rows N]
    python bench.py --selfcheck [--repeat N]

SUMMARY.csv: header customer_id,frequency,recency,T,monetary_value; one row per
customer; recency and T in weeks; monetary_value is the mean value of the repeat
purchases (0 or anything when frequency = 0: it is only used where frequency > 0,
and in the CLV, where lifetimes gives frequency-0 customers the population mean).

Timed with time.perf_counter, best of --repeat (default 1):
  a) BetaGeoFitter(penalizer_coef=0).fit(frequency, recency, T) on all rows;
  b) the same fit on rows grouped by (frequency, recency, T), counts passed as
     fit(..., weights=counts); the grouping is timed too;
  c) GammaGammaFitter(penalizer_coef=0).fit(frequency, monetary_value) on the rows
     with frequency > 0, plain and grouped by (frequency, monetary_value) with weights;
  d) ggf.customer_lifetime_value(bgf, frequency, recency, T, monetary_value,
     time=12, discount_rate=0.01, freq='W') for every customer, with the plain fits.
Note that lifetimes' fit() also computes the Hessian (autograd) for the standard
errors: that is part of the timed fit.

The last line of stdout is one JSON object:
  rows, distinct_rows        customers, distinct (frequency, recency, T) triples
  bgnbd_fit_s                (a)
  compress_s                 (b) the grouping alone
  bgnbd_fit_compressed_s     (b) total: grouping + fit on the grouped rows
  bgnbd_fit_compressed_only_s   (b) the fit alone
  gg_rows, gg_distinct_rows  rows with frequency > 0, distinct (frequency, monetary_value)
  gg_fit_s                   (c) plain
  gg_compress_s, gg_fit_compressed_s (total: grouping + fit), gg_fit_compressed_only_s
  clv_s                      (d)
  bgnbd_params, gg_params    from the plain fits; *_compressed from the grouped ones
  clv_sum                    sum of (d) over all customers
  bgnbd_log_lik, gg_log_lik  total log-likelihood at the plain fits' parameters
                             (BG/NBD in the CSV's time unit, i.e. weeks)
  load_s                     reading the CSV (not part of any other figure)
Each total is the best of its own repeats (so it can be below the sum of the best parts).
"""
import argparse
import json
import os
import sys
import time
import warnings

# Keep CPU use modest and comparable: elementwise numpy is single-threaded anyway,
# this only stops OpenBLAS from spawning threads for the small Hessian algebra.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np
import pandas as pd
import lifetimes
from lifetimes import BetaGeoFitter, GammaGammaFitter

BGNBD_KEYS = ("r", "alpha", "a", "b")
GG_KEYS = ("p", "q", "v")

# Published CDNOW BG/NBD estimates (lifetimes docs; Fader, Hardie & Lee 2005).
CDNOW_BGNBD = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}


def load_csv(path, max_rows=None):
    df = pd.read_csv(
        path,
        nrows=max_rows,
        dtype={"frequency": np.int64, "recency": np.float64, "T": np.float64,
               "monetary_value": np.float64},
    )
    expected = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    if list(df.columns) != expected:
        sys.exit("bench.py: %s: header must be %s, got %s" % (path, ",".join(expected), ",".join(df.columns)))
    return df.set_index("customer_id")


def best_of(repeat, fn):
    """Run fn() `repeat` times; return (best seconds, result of the last run)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def params(fitter, keys):
    return {k: float(fitter.params_[k]) for k in keys}


def compress(df, cols):
    """Distinct rows of df[cols] with their counts, as a DataFrame with a 'count' column."""
    return df.groupby(list(cols), sort=False).size().reset_index(name="count")


def timed_compressed(repeat, df, cols, fit):
    """Best-of timings for grouping, fitting the grouped rows, and both together."""
    best_c = best_f = best_total = float("inf")
    grouped = fitter = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        grouped = compress(df, cols)
        t1 = time.perf_counter()
        fitter = fit(grouped)
        t2 = time.perf_counter()
        best_c, best_f, best_total = min(best_c, t1 - t0), min(best_f, t2 - t1), min(best_total, t2 - t0)
    return best_c, best_f, best_total, grouped, fitter


def run(df, repeat):
    f, rec, T, m = df["frequency"], df["recency"], df["T"], df["monetary_value"]
    out = {"rows": int(len(df))}

    # a) BG/NBD, one row per customer
    out["bgnbd_fit_s"], bgf = best_of(
        repeat, lambda: BetaGeoFitter(penalizer_coef=0.0).fit(f, rec, T))

    # b) BG/NBD on (frequency, recency, T) patterns weighted by their counts
    c_s, fit_s, total_s, grouped, bgf_c = timed_compressed(
        repeat, df, ("frequency", "recency", "T"),
        lambda g: BetaGeoFitter(penalizer_coef=0.0).fit(
            g["frequency"], g["recency"], g["T"], weights=g["count"]))
    out["distinct_rows"] = int(len(grouped))
    out["compress_s"] = c_s
    out["bgnbd_fit_compressed_s"] = total_s
    out["bgnbd_fit_compressed_only_s"] = fit_s

    # c) Gamma-Gamma on repeat customers, plain and weighted
    rep = df[df["frequency"] > 0]
    out["gg_rows"] = int(len(rep))
    out["gg_fit_s"], ggf = best_of(
        repeat, lambda: GammaGammaFitter(penalizer_coef=0.0).fit(rep["frequency"], rep["monetary_value"]))
    c_s, fit_s, total_s, grouped, ggf_c = timed_compressed(
        repeat, rep, ("frequency", "monetary_value"),
        lambda g: GammaGammaFitter(penalizer_coef=0.0).fit(
            g["frequency"], g["monetary_value"], weights=g["count"]))
    out["gg_distinct_rows"] = int(len(grouped))
    out["gg_compress_s"] = c_s
    out["gg_fit_compressed_s"] = total_s
    out["gg_fit_compressed_only_s"] = fit_s

    # d) 12-month CLV of every customer (recency/T in weeks -> freq='W')
    out["clv_s"], clv = best_of(
        repeat, lambda: ggf.customer_lifetime_value(
            bgf, f, rec, T, m, time=12, discount_rate=0.01, freq="W"))

    out["bgnbd_params"] = params(bgf, BGNBD_KEYS)
    out["gg_params"] = params(ggf, GG_KEYS)
    out["clv_sum"] = float(clv.sum())
    out["bgnbd_params_compressed"] = params(bgf_c, BGNBD_KEYS)
    out["gg_params_compressed"] = params(ggf_c, GG_KEYS)
    out["bgnbd_log_lik"] = bgnbd_log_lik(bgf, f, rec, T)
    out["gg_log_lik"] = -float(ggf._negative_log_likelihood_) * len(rep)
    out["clv_nan"] = int(clv.isna().sum())
    return out


def bgnbd_log_lik(bgf, f, rec, T):
    """Total BG/NBD log-likelihood in the data's own time unit (weeks).

    lifetimes fits in rescaled time (T / max(T)), so its _negative_log_likelihood_
    is a per-customer mean off by a Jacobian term; re-evaluate its own formula
    at the fitted parameters on the unscaled data instead (CDNOW: -9582.43).
    """
    log_params = np.log([bgf.params_[k] for k in BGNBD_KEYS])
    f = np.asarray(f).astype(int)
    nll = BetaGeoFitter._negative_log_likelihood(
        log_params, f, np.asarray(rec), np.asarray(T), np.ones_like(f), 0.0)
    return -float(nll) * len(f)


def rel_diff(x, y):
    return abs(x - y) / abs(y)


def selfcheck(repeat):
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
    df = load_cdnow_summary_data_with_monetary_value()
    df.index.name = "customer_id"
    out = run(df, repeat)
    failures = []
    for k, want in CDNOW_BGNBD.items():
        got = out["bgnbd_params"][k]
        if rel_diff(got, want) > 1e-3:
            failures.append("BG/NBD %s=%r, want %r (1e-3 rel)" % (k, got, want))
        got_c = out["bgnbd_params_compressed"][k]
        if rel_diff(got_c, got) > 1e-4:
            failures.append("compressed BG/NBD %s=%r, plain %r (1e-4 rel)" % (k, got_c, got))
    for k in GG_KEYS:
        got, got_c = out["gg_params"][k], out["gg_params_compressed"][k]
        if rel_diff(got_c, got) > 1e-4:
            failures.append("compressed Gamma-Gamma %s=%r, plain %r (1e-4 rel)" % (k, got_c, got))
    out["selfcheck"] = "failed" if failures else "ok"
    for msg in failures:
        print("selfcheck FAILED: " + msg, file=sys.stderr)
    return out, not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", nargs="?", help="customer summary CSV")
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs of each step (default 1)")
    ap.add_argument("--max-rows", type=int, default=None, help="only use the first N rows of the CSV")
    ap.add_argument("--selfcheck", action="store_true",
                    help="run on lifetimes' bundled CDNOW summary and check the known estimates")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.selfcheck == bool(args.summary):
        ap.error("give either SUMMARY.csv or --selfcheck")

    print("lifetimes %s, numpy %s, pandas %s, python %s" % (
        lifetimes.__version__, np.__version__, pd.__version__, sys.version.split()[0]), file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.selfcheck:
            out, ok = selfcheck(args.repeat)
        else:
            t0 = time.perf_counter()
            df = load_csv(args.summary, args.max_rows)
            load_s = time.perf_counter() - t0
            out, ok = run(df, args.repeat), True
            out["load_s"] = load_s
    seen = set()
    for w in caught:
        key = (w.category.__name__, str(w.message))
        if key not in seen:
            seen.add(key)
            print("warning: %s: %s (%s:%s)" % (key[0], key[1], w.filename, w.lineno), file=sys.stderr)
    out["warnings"] = len(caught)
    out["repeat"] = args.repeat
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
