#!/usr/bin/env bash
# Cohort analysis benchmark (issue 11): clv_cohorts in SQL against exporting the transactions and
# building the same table with pandas (tests/data/cohort/make_references.py, the independent
# reference implementation), on the same data in one run, ratios side by side.
#   bench/cohort_bench.sh                          # 10M transactions, 1M customers, 2 years
#   TRANSACTIONS=1000000 CUSTOMERS=100000 bench/cohort_bench.sh
# Uses a throwaway cluster on CLV_PORT (default 55470), or the server named by CLV_DATABASE_URL /
# PG*; SKIP_INSTALL=1 uses the installed extension; REPEAT (default 3): best of how many SQL runs.
source "$(dirname "$0")/../scripts/lib.sh"
TRANSACTIONS=${TRANSACTIONS:-10000000}
CUSTOMERS=${CUSTOMERS:-1000000}
REPEAT=${REPEAT:-3}
[ -n "${SKIP_INSTALL:-}" ] || { ensure_setup; install_extension; }
PY=${CLV_ML_VENV:-$BUILD/ml-venv}/bin/python
"$PY" -c 'import pandas, psycopg' 2>/dev/null || { echo "needs $PY with pandas and psycopg (bench/ml_bench.sh installs them)" >&2; exit 1; }
CLV_PORT=${CLV_PORT:-55470} connect_or_start bench-cohort-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"

log "generating $TRANSACTIONS transactions of $CUSTOMERS customers over two years (each customer's first purchase in the first year)"
psql_q <<SQL
DROP TABLE IF EXISTS cohort_tx;
SELECT setseed(0.25) AS seeded \gset
CREATE UNLOGGED TABLE cohort_tx AS
SELECT c AS customer_id, first_day + (random() * (730 - (first_day - date '2023-01-01')))::int AS ts,
       round((5 + random() * 95)::numeric, 2) AS amount
FROM (SELECT (random() * ($CUSTOMERS - 1))::int + 1 AS c FROM generate_series(1, $TRANSACTIONS - $CUSTOMERS)) t
JOIN (SELECT c, date '2023-01-01' + (random() * 364)::int AS first_day FROM generate_series(1, $CUSTOMERS) c) f USING (c)
UNION ALL
SELECT c, date '2023-01-01' + (random() * 364)::int, round((5 + random() * 95)::numeric, 2) FROM generate_series(1, $CUSTOMERS) c;
VACUUM ANALYZE cohort_tx;
SQL
END_DATE=$(psql_q -Atc "SELECT max(ts) FROM cohort_tx")

printf '\n%-28s %12s %12s %12s %14s %11s\n' "cohort / period grain" "clv_ext s" "export s" "pandas s" "python total s" "python/sql"
for g in "month month" "week week" "month week"; do
    set -- $g
    sql_s=$(best_server_time "$REPEAT" 0 "SELECT count(*), sum(revenue) FROM clv_cohorts('cohort_tx', 'customer_id', 'ts', 'amount', '$1', '$2')" "SET work_mem = '256MB'")
    py=$("$PY" "$ROOT/bench/cohort_bench.py" cohort_tx "$1" "$2" "$END_DATE")
    read -r ex pd_s same < <("$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["export_s"], j["pandas_s"], j["same_totals"])' "$py")
    total=$(echo "$ex + $pd_s" | bc -l)
    printf '%-28s %12.3f %12.3f %12.3f %14.3f %10.2fx   same totals: %s\n' "$1 / $2" "$sql_s" "$ex" "$pd_s" "$total" "$(echo "$total / $sql_s" | bc -l)" "$same"
done
echo
echo "clv_ext: server execution time, best of $REPEAT, serial (max_parallel_workers_per_gather = 0), work_mem 256MB;"
echo "python: COPY ... TO STDOUT (csv) into pandas, then the reference implementation (tests/data/cohort); one run."
