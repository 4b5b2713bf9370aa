"""Python side of bench/cohort_bench.sh: export the transactions from PostgreSQL, build the cohort
table with pandas (the independent reference implementation of tests/data/cohort), and check it
against clv_cohorts' totals. Prints JSON: seconds for export and for the pandas computation."""
import io
import json
import os
import sys
import time

import pandas as pd
import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "cohort"))
import make_references as ref  # noqa: E402


def main(table, cohort_grain, period_grain, obs_end):
    with psycopg.connect("") as conn:
        t0 = time.perf_counter()
        buf = io.BytesIO()
        with conn.cursor().copy(
            f"COPY (SELECT customer_id, ts::date, round(amount * 100)::bigint FROM {table}) TO STDOUT (FORMAT csv)"
        ) as copy:
            for chunk in copy:
                buf.write(chunk)
        buf.seek(0)
        tx = pd.read_csv(buf, header=None, names=["customer", "ts", "cents"], parse_dates=["ts"],
                         dtype={"customer": "int64", "cents": "int64"})
        t1 = time.perf_counter()
        cust = ref.customers_pd(tx)
        out = ref.cohort_table_pd(tx, cust, cohort_grain, period_grain, pd.Timestamp(obs_end))
        t2 = time.perf_counter()
        sql = conn.execute(
            "SELECT count(*), sum(active_customers), sum(transactions), round(sum(revenue)::numeric, 2) "
            "FROM clv_cohorts(%s, 'customer_id', 'ts', 'amount', %s, %s, %s)",
            (table, cohort_grain, period_grain, obs_end),
        ).fetchone()
    ours = (len(out), int(out["active_customers"].sum()), int(out["transactions"].sum()),
            round(float(out["revenue"].sum()), 2))
    print(json.dumps({"export_s": t1 - t0, "pandas_s": t2 - t1, "rows": len(out),
                      "same_totals": [int(sql[0]), int(sql[1]), int(sql[2]), round(float(sql[3]), 2)] == list(ours),
                      "pandas": ours, "sql": [int(sql[0]), int(sql[1]), int(sql[2]), float(sql[3])]}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
