#!/usr/bin/env python3
"""Reference cohort-analysis tables on the CDNOW sample (run by hand, not by the test suite).

Reads tests/data/cdnow/CDNOW_sample.txt and computes, with pandas, the cohort table of README.md
for (cohort grain, period grain) = (month, month), (quarter, month), (week, week), (month, week).
Every table is then recomputed by a second, independent method (plain Python loops over the raw
text lines, datetime.date arithmetic and exact fractions.Fraction money, no pandas) and the two
must agree cell by cell after formatting, otherwise the script exits non-zero.

Outputs (next to this script):
  cdnow_<cohort>_<period>.csv    one row per (cohort, period), sorted by cohort, period
  cdnow_customer_cohorts.csv     one row per customer, sorted by customer

Usage (from the repository root; needs only pandas and numpy):
  build/ml-venv/bin/python tests/data/cohort/make_references.py [--observation-end YYYY-MM-DD]

Without --observation-end the observation end is the latest transaction date (1998-06-30); the
committed CSVs are produced that way.
"""

import argparse
import datetime as dt
import hashlib
import os
import sys
from collections import defaultdict
from fractions import Fraction

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "cdnow", "CDNOW_sample.txt")

COMBOS = [("month", "month"), ("quarter", "month"), ("week", "week"), ("month", "week")]
COLUMNS = [
    "cohort",
    "period",
    "cohort_size",
    "active_customers",
    "retention_rate",
    "transactions",
    "revenue",
    "revenue_per_customer",
    "cumulative_revenue_per_customer",
    "customers_observed",
]
FLOAT_COLUMNS = {"retention_rate", "revenue", "revenue_per_customer", "cumulative_revenue_per_customer"}


def fmt_float(x):
    """12 significant digits, shortest form (as '%.12g')."""
    return "%.12g" % float(x)


# --------------------------------------------------------------------------------------------
# Method A: pandas
# --------------------------------------------------------------------------------------------


def load_pandas():
    df = pd.read_csv(
        DATA,
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "yyyymmdd", "number_of_cds", "dollar_value"],
        dtype=str,
    )
    tx = pd.DataFrame(
        {
            "customer": df["sample_id"].astype(np.int64),
            "ts": pd.to_datetime(df["yyyymmdd"], format="%Y%m%d"),
            # exact integer cents (every amount has two decimals)
            "cents": df["dollar_value"].map(lambda s: int(s.replace(".", ""))).astype(np.int64),
        }
    )
    assert (df["dollar_value"].str.len() - df["dollar_value"].str.find(".") == 3).all()
    return tx


def trunc_pd(ts, grain):
    """PostgreSQL date_trunc(grain, ts) on a datetime64 Series."""
    if grain == "month":
        return ts.dt.to_period("M").dt.start_time
    if grain == "quarter":
        return ts.dt.to_period("Q").dt.start_time
    if grain == "week":  # ISO week, Monday start
        return ts.dt.normalize() - pd.to_timedelta(ts.dt.day_of_week, unit="D")
    raise ValueError(grain)


def index_pd(ts, first, grain):
    """Number of grain periods between the period containing `first` and the one containing `ts`."""
    if grain == "month":
        return (ts.dt.year * 12 + ts.dt.month) - (first.dt.year * 12 + first.dt.month)
    if grain == "quarter":
        return (ts.dt.year * 4 + ts.dt.quarter) - (first.dt.year * 4 + first.dt.quarter)
    if grain == "week":
        return (trunc_pd(ts, "week") - trunc_pd(first, "week")).dt.days // 7
    raise ValueError(grain)


def customers_pd(tx):
    cust = tx.groupby("customer", as_index=False)["ts"].min().rename(columns={"ts": "first_purchase"})
    for g in ("month", "week", "quarter"):
        cust["cohort_" + g] = trunc_pd(cust["first_purchase"], g)
    return cust.sort_values("customer").reset_index(drop=True)


def cohort_table_pd(tx, cust, cohort_grain, period_grain, obs_end):
    tx = tx[tx["ts"] <= obs_end]
    cust = cust[cust["first_purchase"] <= obs_end].copy()
    cust["cohort"] = cust["cohort_" + cohort_grain]
    # last reachable period index of each customer: the observation-end period
    end = pd.Series(obs_end, index=cust.index)
    cust["max_index"] = index_pd(end, cust["first_purchase"], period_grain)

    t = tx.merge(cust[["customer", "first_purchase", "cohort"]], on="customer", how="inner")
    t["period"] = index_pd(t["ts"], t["first_purchase"], period_grain)
    assert (t["period"] >= 0).all()
    act = (
        t.groupby(["cohort", "period"])
        .agg(active_customers=("customer", "nunique"), transactions=("customer", "size"), cents=("cents", "sum"))
        .reset_index()
    )

    size = cust.groupby("cohort").size().rename("cohort_size")
    # customers_observed(cohort, p) = #customers of the cohort with max_index >= p
    grids = []
    for cohort, g in cust.groupby("cohort"):
        top = int(g["max_index"].max())
        periods = np.arange(top + 1)
        counts = np.bincount(g["max_index"].to_numpy(), minlength=top + 1)
        observed = counts[::-1].cumsum()[::-1]
        grids.append(pd.DataFrame({"cohort": cohort, "period": periods, "customers_observed": observed}))
    grid = pd.concat(grids, ignore_index=True)
    grid = grid.merge(size, left_on="cohort", right_index=True)
    out = grid.merge(act, on=["cohort", "period"], how="left")
    assert len(out) == len(grid)
    # every transaction falls inside the grid
    assert act.merge(grid, on=["cohort", "period"], how="left")["cohort_size"].notna().all()
    for c in ("active_customers", "transactions", "cents"):
        out[c] = out[c].fillna(0).astype(np.int64)
    out = out.sort_values(["cohort", "period"]).reset_index(drop=True)
    out["retention_rate"] = out["active_customers"] / out["cohort_size"]
    out["revenue"] = out["cents"] / 100.0
    out["revenue_per_customer"] = out["cents"] / 100.0 / out["cohort_size"]
    # running sum of revenue_per_customer = cumulative revenue / cohort_size (summed in exact cents)
    out["cumulative_revenue_per_customer"] = out.groupby("cohort")["cents"].cumsum() / 100.0 / out["cohort_size"]
    out["cohort"] = out["cohort"].dt.strftime("%Y-%m-%d")
    return out[COLUMNS]


def rows_from_frame(df):
    rows = []
    for rec in df.itertuples(index=False):
        r = []
        for col, v in zip(COLUMNS, rec):
            if col == "cohort":
                r.append(str(v))
            elif col in FLOAT_COLUMNS:
                r.append(fmt_float(v))
            else:
                r.append(str(int(v)))
        rows.append(r)
    return rows


# --------------------------------------------------------------------------------------------
# Method B: plain Python (no pandas), exact arithmetic
# --------------------------------------------------------------------------------------------


def load_plain():
    out = []
    with open(DATA, "r") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            _, sid, ymd, _, dollars = parts
            d = dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8]))
            out.append((int(sid), d, Fraction(dollars)))
    return out


def trunc_plain(d, grain):
    if grain == "month":
        return dt.date(d.year, d.month, 1)
    if grain == "quarter":
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if grain == "week":
        return d - dt.timedelta(days=d.isoweekday() - 1)
    raise ValueError(grain)


def index_plain(d, first, grain):
    if grain == "month":
        return (d.year - first.year) * 12 + (d.month - first.month)
    if grain == "quarter":
        return (d.year - first.year) * 4 + ((d.month - 1) // 3 - (first.month - 1) // 3)
    if grain == "week":
        days = (trunc_plain(d, "week") - trunc_plain(first, "week")).days
        assert days % 7 == 0
        return days // 7
    raise ValueError(grain)


def cohort_table_plain(tx, cohort_grain, period_grain, obs_end):
    first = {}
    for c, d, _ in tx:
        if d <= obs_end and (c not in first or d < first[c]):
            first[c] = d
    members = defaultdict(list)
    for c, f in first.items():
        members[trunc_plain(f, cohort_grain)].append(c)
    active = defaultdict(set)
    ntx = defaultdict(int)
    money = defaultdict(Fraction)
    for c, d, amt in tx:
        if d > obs_end:
            continue
        key = (trunc_plain(first[c], cohort_grain), index_plain(d, first[c], period_grain))
        active[key].add(c)
        ntx[key] += 1
        money[key] += amt
    rows = []
    for cohort in sorted(members):
        cs = members[cohort]
        size = len(cs)
        reach = [index_plain(obs_end, first[c], period_grain) for c in cs]
        cum = Fraction(0)
        for p in range(max(reach) + 1):
            key = (cohort, p)
            rev = money.get(key, Fraction(0))
            rpc = rev / size
            cum += rpc
            observed = sum(1 for r in reach if r >= p)
            rows.append(
                [
                    cohort.isoformat(),
                    str(p),
                    str(size),
                    str(len(active.get(key, ()))),
                    fmt_float(Fraction(len(active.get(key, ())), size)),
                    str(ntx.get(key, 0)),
                    fmt_float(rev),
                    fmt_float(rpc),
                    fmt_float(cum),
                    str(observed),
                ]
            )
    # nothing dropped: every activity key lies in the emitted grid
    emitted = {(r[0], int(r[1])) for r in rows}
    assert all((k[0].isoformat(), k[1]) in emitted for k in ntx)
    return rows


# --------------------------------------------------------------------------------------------


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--observation-end", help="YYYY-MM-DD (default: latest transaction date)")
    ap.add_argument("--outdir", default=HERE)
    args = ap.parse_args()

    tx = load_pandas()
    assert len(tx) == 6919 and tx["customer"].nunique() == 2357
    obs_end = pd.Timestamp(args.observation_end) if args.observation_end else tx["ts"].max()
    print("observation end:", obs_end.date())

    cust = customers_pd(tx)
    crows = [
        [str(r.customer)] + [x.strftime("%Y-%m-%d") for x in (r.first_purchase, r.cohort_month, r.cohort_week, r.cohort_quarter)]
        for r in cust.itertuples(index=False)
    ]
    cpath = os.path.join(args.outdir, "cdnow_customer_cohorts.csv")
    write_csv(cpath, ["customer", "first_purchase", "cohort_month", "cohort_week", "cohort_quarter"], crows)

    # independent check of the customer file
    ptx = load_plain()
    pfirst = {}
    for c, d, _ in ptx:
        if c not in pfirst or d < pfirst[c]:
            pfirst[c] = d
    prows = [
        [str(c)] + [x.isoformat() for x in (f, trunc_plain(f, "month"), trunc_plain(f, "week"), trunc_plain(f, "quarter"))]
        for c, f in sorted(pfirst.items())
    ]
    assert prows == crows, "customer cohorts: methods disagree"

    paths = [cpath]
    ok = True
    for cg, pg in COMBOS:
        df = cohort_table_pd(tx, cust, cg, pg, obs_end)
        rows_a = rows_from_frame(df)
        rows_b = cohort_table_plain(ptx, cg, pg, obs_end.date())
        same = rows_a == rows_b
        ok &= same
        path = os.path.join(args.outdir, "cdnow_%s_%s.csv" % (cg, pg))
        write_csv(path, COLUMNS, rows_a)
        paths.append(path)
        print(
            "%-8s %-6s rows=%4d cohorts=%3d  pandas vs plain-Python: %s"
            % (cg, pg, len(rows_a), df["cohort"].nunique(), "identical" if same else "DIFFER")
        )
        if not same:
            for a, b in zip(rows_a, rows_b):
                if a != b:
                    print("  A", a, "\n  B", b)
                    break
        # consistency checks
        assert (df.groupby("cohort")["transactions"].sum().sum()) == (tx["ts"] <= obs_end).sum()
        assert (df[df["period"] == 0]["retention_rate"] == 1.0).all()

    mm = cohort_table_pd(tx, cust, "month", "month", obs_end)
    print("\nmonth cohorts (period 0/1/2 retention, CLV at last period):")
    for cohort, g in mm.groupby("cohort"):
        g = g.set_index("period")
        print(
            "  %s size=%d ret0=%.6f ret1=%.6f ret2=%.6f  cum_rev_per_cust[p=%d]=%.6f"
            % (
                cohort,
                g.loc[0, "cohort_size"],
                g.loc[0, "retention_rate"],
                g.loc[1, "retention_rate"],
                g.loc[2, "retention_rate"],
                g.index.max(),
                g["cumulative_revenue_per_customer"].iloc[-1],
            )
        )
    print("\nSHA-256:")
    for p in paths:
        print("  %s  %s" % (sha256(p), os.path.basename(p)))
    if not ok:
        sys.exit("methods disagree")


if __name__ == "__main__":
    main()
