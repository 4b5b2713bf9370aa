#!/usr/bin/env python3
"""Write a synthetic BG/NBD + Gamma-Gamma customer summary CSV for bench.py.

Usage: python gen_synthetic.py OUT.csv [--rows N] [--seed S] [--days D]

Each customer makes a first purchase on a whole day, so its age T_days is uniform
in 1..D; repeat purchases follow BG/NBD (Poisson rate lambda ~ Gamma(r, alpha) per
week, death after each purchase with p ~ Beta(a, b)), each on a later whole day
(gaps rounded up to >= 1 day), so recency_days <= T_days. recency = recency_days/7
and T = T_days/7, in weeks. Each repeat purchase has a value ~ Gamma(p, nu) with
nu ~ Gamma(q, v) per customer; monetary_value is their mean rounded to cents
(>= 0.01), or 0 for customers with no repeat purchase. Parameters default to the
CDNOW estimates. Needs only numpy and pandas (the benchmark venv has both).
"""
import argparse

import numpy as np
import pandas as pd


def generate(rows, seed, days, r=0.243, alpha=4.414, a=0.793, b=2.426, p=6.25, q=3.74, v=15.45):
    rng = np.random.default_rng(seed)
    T_days = rng.integers(1, days + 1, size=rows)
    lam_per_day = rng.gamma(r, 1.0 / alpha, size=rows) / 7.0
    p_die = rng.beta(a, b, size=rows)

    freq = np.zeros(rows, dtype=np.int64)
    last = np.zeros(rows, dtype=np.int64)          # day of the last purchase
    idx = np.arange(rows)                          # customers still alive and in the window
    while idx.size:
        gap = rng.exponential(1.0 / lam_per_day[idx])          # can be huge (or inf): clip before the cast
        gap = np.clip(np.ceil(gap), 1, days + 1).astype(np.int64)
        day = last[idx] + gap
        ok = day <= T_days[idx]
        idx = idx[ok]
        freq[idx] += 1
        last[idx] = day[ok]
        idx = idx[rng.random(idx.size) >= p_die[idx]]   # dies after a purchase with prob p

    nu = rng.gamma(q, 1.0 / v, size=rows)
    # mean of `freq` Gamma(p, nu) values = Gamma(p * freq, nu * freq)
    rep = freq > 0
    mean = np.zeros(rows)
    mean[rep] = rng.gamma(p * freq[rep], 1.0 / (nu[rep] * freq[rep]))
    mean[rep] = np.maximum(np.round(mean[rep], 2), 0.01)

    return pd.DataFrame({
        "customer_id": np.arange(1, rows + 1),
        "frequency": freq,
        "recency": last / 7.0,
        "T": T_days / 7.0,
        "monetary_value": mean,
    })


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=730, help="longest customer age in days (default 730)")
    args = ap.parse_args()
    df = generate(args.rows, args.seed, args.days)
    df.to_csv(args.out, index=False)
    print("%s: %d rows, %d with repeat purchases, mean frequency %.3f"
          % (args.out, len(df), int((df.frequency > 0).sum()), df.frequency.mean()))


if __name__ == "__main__":
    main()
