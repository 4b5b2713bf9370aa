#!/usr/bin/env bash
# Model benchmark: SQL fits and CLV scoring against Python lifetimes 0.11.3 on the same data, in one
# run, ratios side by side.
#   bench/models_bench.sh                  # 1,000,000 simulated customers
#   CUSTOMERS=100000 bench/models_bench.sh
source "$(dirname "$0")/../scripts/lib.sh"
CUSTOMERS=${CUSTOMERS:-1000000}
REPEAT=${REPEAT:-5}
ensure_setup
[ -n "${SKIP_INSTALL:-}" ] || install_extension
log "Python lifetimes 0.11.3 venv"
PY=$("$ROOT/bench/lifetimes/setup.sh" | tail -n 1)
CLV_PORT=${CLV_PORT:-55434} connect_or_start bench-models-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"

log "simulating $CUSTOMERS customers (BG/NBD + Gamma-Gamma, CDNOW parameters) and summarising them"
OUT=$(pg_dir "$BUILD/bench-out")
psql_q <<SQL
DROP TABLE IF EXISTS bench_rfm;
CREATE UNLOGGED TABLE bench_rfm AS
SELECT customer_id, f.frequency, f.recency, f.tenure, f.monetary_value
FROM (SELECT customer_id, rfm(timestamp '2024-01-01' + make_interval(secs => t * 7 * 86400), round(amount::numeric, 2), '2024-12-29') AS s
      FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                                 $CUSTOMERS, horizon => 52, acquisition => 13, seed => 11)
      GROUP BY customer_id) q
CROSS JOIN LATERAL rfm_fields(q.s, 'week') f;
ANALYZE bench_rfm;
\copy (SELECT customer_id, frequency, recency, tenure AS "T", monetary_value FROM bench_rfm ORDER BY customer_id) TO '$OUT/summary.csv' CSV HEADER
SQL

time_sql() { # $1 = workers, $2 = sql: best of REPEAT, seconds (server time, fresh backend each run)
    best_server_time "$REPEAT" "$1" "$2"
}

psql_q -c "DROP TABLE IF EXISTS bench_models" \
       -c "CREATE TABLE bench_models AS SELECT bgnbd_fit(frequency, recency, tenure) AS b, gamma_gamma_fit(frequency, monetary_value) AS g FROM bench_rfm"
log "timing SQL (best of $REPEAT)"
# The floor: reading the same columns of every row and nothing else.
READ3=$(time_sql 0 "SELECT count(*), sum(frequency), sum(recency), sum(tenure) FROM bench_rfm")
READ2=$(time_sql 0 "SELECT count(*), sum(frequency), sum(monetary_value) FROM bench_rfm")
FIT0=$(time_sql 0 "SELECT bgnbd_fit(frequency, recency, tenure) FROM bench_rfm")
FIT2=$(time_sql 2 "SELECT bgnbd_fit(frequency, recency, tenure) FROM bench_rfm")
GG0=$(time_sql 0 "SELECT gamma_gamma_fit(frequency, monetary_value) FROM bench_rfm")
CLV0=$(time_sql 0 "SELECT sum(clv(b, g, frequency, recency, tenure, monetary_value, 12, 0.01, 'week')) FROM bench_rfm, bench_models")
CLV2=$(time_sql 2 "SELECT sum(clv(b, g, frequency, recency, tenure, monetary_value, 12, 0.01, 'week')) FROM bench_rfm, bench_models")
SQL_CLV_SUM=$(psql_q -Atc "SELECT round(sum(clv(b, g, frequency, recency, tenure, monetary_value, 12, 0.01, 'week'))::numeric, 2) FROM bench_rfm, bench_models")
SQL_PARAMS=$(psql_q -Atc "SELECT (b::jsonb->'params') || (g::jsonb->'params') FROM bench_models")
DISTINCT=$(psql_q -Atc "SELECT b::jsonb->'fit'->>'n_distinct_rows' FROM bench_models")

log "timing Python lifetimes 0.11.3 on the same rows"
LT=$("$PY" "$ROOT/bench/lifetimes/bench.py" "$OUT/summary.csv" --repeat "${LT_REPEAT:-3}" | tail -n 1)
j() { echo "$LT" | "$PY" -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
LT_FIT=$(j "['bgnbd_fit_s']"); LT_FITC=$(j "['bgnbd_fit_compressed_s']"); LT_GG=$(j "['gg_fit_s']")
LT_GGC=$(j "['gg_fit_compressed_s']"); LT_CLV=$(j "['clv_s']"); LT_SUM=$(j "['clv_sum']")
r() { echo "scale=1; $1 / $2" | bc -l; }
LT_FIT=$(printf '%.3f' "$LT_FIT"); LT_FITC=$(printf '%.3f' "$LT_FITC"); LT_GG=$(printf '%.3f' "$LT_GG")
LT_GGC=$(printf '%.3f' "$LT_GGC"); LT_CLV=$(printf '%.3f' "$LT_CLV")

printf '\n%s customers, %s distinct (frequency, recency, T) rows\n' "$CUSTOMERS" "$DISTINCT"
printf '%-34s %12s %12s %12s %22s\n' "task" "clv_ext s" "2 workers s" "lifetimes s" "lifetimes / clv_ext"
printf '%-34s %12s %12s %12s %22s\n' "floor: read f, r, T (count/sum)" "$READ3" "-" "-" "-"
printf '%-34s %12s %12s %12s %22s\n' "floor: read f, m (count/sum)" "$READ2" "-" "-" "-"
printf '%-34s %12s %12s %12s %22s\n' "BG/NBD fit vs uncompressed" "$FIT0" "$FIT2" "$LT_FIT" "$(r "$LT_FIT" "$FIT0")x"
printf '%-34s %12s %12s %12s %22s\n' "BG/NBD fit vs compressed (weights)" "$FIT0" "$FIT2" "$LT_FITC" "$(r "$LT_FITC" "$FIT0")x"
printf '%-34s %12s %12s %12s %22s\n' "Gamma-Gamma fit vs uncompressed" "$GG0" "-" "$LT_GG" "$(r "$LT_GG" "$GG0")x"
printf '%-34s %12s %12s %12s %22s\n' "Gamma-Gamma fit vs compressed" "$GG0" "-" "$LT_GGC" "$(r "$LT_GGC" "$GG0")x"
printf '%-34s %12s %12s %12s %22s\n' "12-month CLV of every customer" "$CLV0" "$CLV2" "$LT_CLV" "$(r "$LT_CLV" "$CLV0")x serial, $(r "$LT_CLV" "$CLV2")x 2w"
printf '\nsame answers: CLV sum clv_ext %s, lifetimes %s\n' "$SQL_CLV_SUM" "$LT_SUM"
printf 'clv_ext parameters %s\nlifetimes parameters %s %s\n' "$SQL_PARAMS" "$(j "['bgnbd_params']")" "$(j "['gg_params']")"
