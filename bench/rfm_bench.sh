#!/usr/bin/env bash
# RFM aggregate benchmark: prints timings and ratios side by side in one run.
#   bench/rfm_bench.sh                       # 10M transactions over 1M customers
#   TRANSACTIONS=1000000 CUSTOMERS=100000 bench/rfm_bench.sh
# Uses a throwaway cluster, or the server named by CLV_DATABASE_URL / PG* variables.
# REUSE_DATA=1 keeps an existing bench_tx of the same size (on an existing server).
source "$(dirname "$0")/../scripts/lib.sh"
TRANSACTIONS=${TRANSACTIONS:-10000000}
CUSTOMERS=${CUSTOMERS:-1000000}
REPEAT=${REPEAT:-3}
ensure_setup
[ -n "${SKIP_INSTALL:-}" ] || install_extension
CLV_PORT=${CLV_PORT:-55433} connect_or_start bench-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"

if [ -n "${REUSE_DATA:-}" ] && [ "$(psql_q -Atc "SELECT count(*) FROM bench_tx" 2>/dev/null)" = "$TRANSACTIONS" ]; then
    log "reusing the existing bench_tx ($TRANSACTIONS transactions)"
else
log "generating $TRANSACTIONS transactions over $CUSTOMERS customers"
psql_q <<SQL
DROP TABLE IF EXISTS bench_tx;
SELECT setseed(0.5) AS seeded \gset
CREATE UNLOGGED TABLE bench_tx AS
SELECT (random() * ($CUSTOMERS - 1))::int + 1 AS customer_id,
       timestamp '2023-01-01' + random() * interval '730 days' AS ts,
       round((random() * 100)::numeric, 2)::float8 AS amount
FROM generate_series(1, $TRANSACTIONS);
ALTER TABLE bench_tx ADD COLUMN amount_numeric numeric;
UPDATE bench_tx SET amount_numeric = amount::numeric;
VACUUM ANALYZE bench_tx;
SQL
fi

# Every query consumes its aggregate's output, so the planner cannot drop the work.
declare -A Q
Q[floor]="SELECT count(*) FILTER (WHERE n > 0 AND lo IS NOT NULL AND hi IS NOT NULL AND s IS NOT NULL) FROM (
  SELECT customer_id, count(*) AS n, min(ts) AS lo, max(ts) AS hi, sum(amount) AS s FROM bench_tx GROUP BY customer_id) q"
Q[rfm]="SELECT count(*) FILTER (WHERE s IS NOT NULL) FROM (
  SELECT customer_id, rfm(ts, amount, '2024-12-31') AS s FROM bench_tx GROUP BY customer_id) q"
Q[rfm_numeric]="SELECT count(*) FILTER (WHERE s IS NOT NULL) FROM (
  SELECT customer_id, rfm(ts, amount_numeric, '2024-12-31') AS s FROM bench_tx GROUP BY customer_id) q"
Q[rfm_fields]="SELECT sum(f.frequency + f.recency + f.tenure + f.monetary_value) IS NOT NULL FROM (
  SELECT customer_id, rfm(ts, amount, '2024-12-31') AS s FROM bench_tx GROUP BY customer_id) q
  CROSS JOIN LATERAL rfm_fields(q.s, 'week') f"
Q[native]="SELECT sum(frequency + recency + t + monetary) IS NOT NULL FROM (
  SELECT customer_id, count(*) - 1 AS frequency, (max(d) - min(d)) / 7.0 AS recency,
         (date '2024-12-31' - min(d)) / 7.0 AS t,
         coalesce(sum(a) FILTER (WHERE d > first_d) / nullif(count(*) - 1, 0), 0) AS monetary,
         sum(n) AS transactions, sum(a) AS total
  FROM (SELECT customer_id, d, a, n, min(d) OVER (PARTITION BY customer_id) AS first_d
        FROM (SELECT customer_id, ts::date AS d, sum(amount) AS a, count(*) AS n
              FROM bench_tx WHERE ts::date <= date '2024-12-31' GROUP BY customer_id, ts::date) per_day) ranked
  GROUP BY customer_id) q"

time_query() { # $1 = workers, $2 = sql; prints the best of REPEAT runs in seconds (server time)
    best_server_time "$REPEAT" "$1" "$2" "SET work_mem = '1GB'"
}

KEYS="floor rfm rfm_numeric rfm_fields native"
log "timing (best of $REPEAT; work_mem 1GB)"
declare -A T
for w in 0 2; do
    for k in $KEYS; do T[$k,$w]=$(time_query "$w" "${Q[$k]}"); done
done
ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '\n%-42s %10s %8s %12s %8s\n' "query ($TRANSACTIONS tx, $CUSTOMERS customers)" "serial s" "x floor" "2 workers s" "x floor"
for k in $KEYS; do
    case $k in
        floor) label="bare floor: count/min/max/sum GROUP BY" ;;
        rfm) label="rfm(ts, float8, end) GROUP BY" ;;
        rfm_numeric) label="rfm(ts, numeric, end) GROUP BY" ;;
        rfm_fields) label="rfm + rfm_fields(s, 'week')" ;;
        native) label="native SQL, same semantics" ;;
    esac
    printf '%-42s %10s %8s %12s %8s\n' "$label" "${T[$k,0]}" "$(ratio "${T[$k,0]}" "${T[floor,0]}")" \
        "${T[$k,2]}" "$(ratio "${T[$k,2]}" "${T[floor,2]}")"
done
printf '\nrfm is %sx faster than the native same-semantics SQL serial, %sx with 2 workers\n' \
    "$(ratio "${T[native,0]}" "${T[rfm,0]}")" "$(ratio "${T[native,2]}" "${T[rfm,2]}")"
