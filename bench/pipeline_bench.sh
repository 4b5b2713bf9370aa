#!/usr/bin/env bash
# End-to-end pipeline benchmark (issue 10): clv_pipeline against Python lifetimes 0.11.3 + pandas
# (+ scikit-learn K-means) doing the same work on the same transactions, then clv_pipeline_refresh
# after 1% new transactions against a full run on the grown table; one run, ratios side by side.
#   bench/pipeline_bench.sh                                    # 200,000 customers, ~4M transactions
#   CUSTOMERS=1000000 TRANSACTIONS=10000000 bench/pipeline_bench.sh
#   CUSTOMERS=20000 TRANSACTIONS=400000 SKIP_INSTALL=1 bench/pipeline_bench.sh   # a quick try
# Uses a throwaway cluster on CLV_PORT (default 55437), or the server named by CLV_DATABASE_URL /
# PG*; SKIP_INSTALL=1 uses the installed extension. REPEAT (default 3): best of how many runs of
# the floor queries. WORK_MEM (default 1GB) for every SQL session. The pipeline runs are single
# runs (each one changes the pipeline schema), so are Python's stages.
#
# Data: simulate_transactions from BG/NBD (r = 1, a = 2, b = 60, alpha calibrated so that the
# expected transactions per customer are TRANSACTIONS / CUSTOMERS) and Gamma-Gamma (CDNOW's
# p, q, v), in days: customers acquired over 2023, observed until 2024-12-31, day-level timestamps,
# amounts rounded to cents (float8), stored in time order in bench_tx(customer_id, ts, amount)
# with an index on ts (what a refresh looks the new rows up with). Exported to CSV with \copy for
# Python. Then 1% new rows (90% from customers active in the last 90 days, 10% new customers)
# dated in the week after, and the observation end moved on by that week.
source "$(dirname "$0")/../scripts/lib.sh"
CUSTOMERS=${CUSTOMERS:-200000}
TRANSACTIONS=${TRANSACTIONS:-4000000}
REPEAT=${REPEAT:-3}
WORK_MEM=${WORK_MEM:-1GB}
CLUSTERS=4
SEED=1
E0=2024-12-31   # observation end of the first runs
E1=2025-01-07   # after the appended week
[ -n "${SKIP_INSTALL:-}" ] || { ensure_setup; install_extension; }
log "Python lifetimes 0.11.3 venv (+ scikit-learn for K-means)"
PY=$("$ROOT/bench/lifetimes/setup.sh" | tail -n 1)
# Outside requirements.txt, so that setup.sh's stamp (and the models benchmark's venv) stays as it is.
"$PY" -c 'import sklearn' 2>/dev/null || "$PY" -m pip install -q --only-binary=:all: scikit-learn==1.5.2 >&2
CLV_PORT=${CLV_PORT:-55437} connect_or_start bench-pipeline-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"
HAS_REFRESH=$(psql_q -Atc "SELECT to_regproc('clv_pipeline_refresh') IS NOT NULL")
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')

log "simulating $CUSTOMERS customers, about $TRANSACTIONS transactions (observation end $E0)"
PER=$(echo "scale=6; $TRANSACTIONS / $CUSTOMERS" | bc -l)
OUT=$(pg_dir "$BUILD/bench-out")
psql_q <<SQL
SET work_mem = '$WORK_MEM';
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_tx;
DROP SCHEMA IF EXISTS bench_a CASCADE;
DROP SCHEMA IF EXISTS bench_b CASCADE;
DROP SCHEMA IF EXISTS bench_full CASCADE;
-- alpha (the purchase rate's scale, in days) such that a customer acquired uniformly over the first
-- 365 days makes $PER transactions on average by day 730: bisection on log(alpha).
WITH RECURSIVE bis(i, lo, hi) AS (
  SELECT 0, ln(0.01), ln(100000.0)
  UNION ALL
  SELECT i + 1, CASE WHEN e > $PER THEN mid ELSE lo END, CASE WHEN e > $PER THEN hi ELSE mid END
  FROM bis, LATERAL (SELECT (lo + hi) / 2 AS mid) m,
       LATERAL (SELECT 1 + avg(expected_purchases_new_customer(bgnbd_model(1, exp(mid), 2, 60), 730 - 365 * (k + 0.5) / 100)) AS e
                FROM generate_series(0, 99) k) x
  WHERE i < 40)
SELECT exp((lo + hi) / 2) AS alpha FROM bis ORDER BY i DESC LIMIT 1 \gset
SELECT setseed(0.3) AS seeded \gset
CREATE UNLOGGED TABLE bench_tx AS
SELECT customer_id::bigint AS customer_id, timestamp '2023-01-01' + floor(t)::int * interval '1 day' AS ts,
       round(amount::numeric, 2)::float8 AS amount
FROM simulate_transactions(bgnbd_model(1, :alpha, 2, 60), gamma_gamma_model(6.25, 3.74, 15.44),
                           $CUSTOMERS, horizon => 730, acquisition => 365, seed => 11)
ORDER BY 2, random();
CREATE INDEX bench_tx_ts ON bench_tx (ts);
VACUUM ANALYZE bench_tx;
SQL
N_TX=$(psql_q -Atc "SELECT count(*) FROM bench_tx")
PER_CUSTOMER=$(psql_q -Atc "SELECT round((count(*)::numeric / count(DISTINCT customer_id)), 2) FROM bench_tx")
log "$N_TX transactions ($PER_CUSTOMER per customer); exporting them to CSV"
t0=$(date +%s.%N)
psql_q -c "\copy (SELECT customer_id, ts, amount FROM bench_tx) TO '$OUT/pipeline_tx.csv' CSV HEADER"
EXPORT_S=$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc -l)")

time_sql() { # $1 = workers, $2 = sql: best of REPEAT, server time, fresh backend each run
    best_server_time "$REPEAT" "$1" "$2" "SET work_mem = '$WORK_MEM'"
}
log "floors (best of $REPEAT, work_mem $WORK_MEM)"
FLOOR_Q="SELECT count(*) FILTER (WHERE n > 0 AND lo IS NOT NULL AND hi IS NOT NULL AND s IS NOT NULL) FROM (
  SELECT customer_id, count(*) AS n, min(ts) AS lo, max(ts) AS hi, sum(amount) AS s FROM bench_tx GROUP BY customer_id) q"
RFM_Q="SELECT count(*) FILTER (WHERE s IS NOT NULL) FROM (
  SELECT customer_id, rfm(ts, amount, '$E0') AS s FROM bench_tx GROUP BY customer_id) q"
FLOOR0=$(time_sql 0 "$FLOOR_Q"); FLOOR2=$(time_sql 2 "$FLOOR_Q")
RFM0=$(time_sql 0 "$RFM_Q"); RFM2=$(time_sql 2 "$RFM_Q")

# One clv_pipeline / clv_pipeline_refresh call in a fresh session with the stage NOTICEs on; shows
# them and any warning, sets WALL (client-side seconds of the call).
run_sql() { # $1 = label, $2 = sql, $3 = clv.refresh_concurrently (default on)
    local out ms
    log "$1"
    out=$(psql_q -c "LOAD 'clv_ext'" -c "SET work_mem = '$WORK_MEM'" -c "SET clv.pipeline_timing = on" \
                 -c "SET clv.refresh_concurrently = ${3:-on}" -c '\timing on' -c "$2" 2>&1) || { echo "$out" >&2; exit 1; }
    echo "$out" | grep -E 'clv_pipeline: [a-z_]+ [0-9.]+ s|WARNING|merged' | sed 's/^/    /' >&2 || true
    ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
    WALL=$(printf '%.3f' "$(echo "$ms / 1000" | bc -l)")
}
# Seconds of the latest run in schema $1 summed over stages $2...; "-" when none of them ran.
stage() {
    local schema=$1; shift
    psql_q -Atc "SELECT coalesce(to_char(sum(v::numeric), 'FM9999990.000'), '-') FROM (SELECT stage_seconds FROM $schema.clv_models ORDER BY run_id DESC LIMIT 1) m,
                 jsonb_each_text(m.stage_seconds) e(k, v) WHERE k = ANY (string_to_array('$*', ' '))"
}
# Largest relative difference between the BG/NBD + Gamma-Gamma parameters of two clv_models rows.
params_of() { echo "(SELECT (bgnbd::jsonb->'params') || (spend::jsonb->'params') FROM $1.clv_models WHERE run_id = $2)"; }
param_diff() { # $1, $2: parameter JSON expressions
    psql_q -Atc "SELECT btrim(to_char(max(abs(x.value::float8 - y.value::float8) / abs(y.value::float8)), '9.9EEEE'))
                 FROM jsonb_each_text($1) x JOIN jsonb_each_text($2) y USING (key)"
}
# The stage seconds of bench_a's latest full run into the associative array named $1.
full_run_stages() {
    local -n into=$1
    local k keys
    for k in summary rfm rfm_table fit kmeans scoring history total; do
        case $k in summary) keys="rfm rfm_table" ;; *) keys=$k ;; esac
        into[$k]=$(stage bench_a $keys)
    done
}
PIPE="'bench_tx', 'customer_id', 'ts', 'amount', unit => 'week', horizon_months => 12, discount_rate => 0.01, clusters => $CLUSTERS, seed => $SEED"

run_sql "clv_pipeline, first run (new schema bench_a)" "SELECT * FROM clv_pipeline($PIPE, observation_end => '$E0', target_schema => 'bench_a')"
FULL1=$WALL
declare -A S1 S2 S3 SB SR SRN SF
full_run_stages S1
# The rfm stage's query alone, as the pipeline runs it (clv_pipeline_state_query), for the floors table.
STATE_Q="SELECT count(*) FILTER (WHERE summary IS NOT NULL AND last_time IS NOT NULL) FROM ($(psql_q -Atc "SELECT clv_pipeline_state_query('bench_a', 'all')")) q"
STATE0=$(time_sql 0 "$STATE_Q"); STATE2=$(time_sql 2 "$STATE_Q")
SQL_SUM=$(psql_q -Atc "SELECT (SELECT count(*) FROM bench_a.clv_customers) || ' customers, CLV sum ' || (SELECT round(sum(clv)::numeric, 2) FROM bench_a.clv_customers)
                       || ', tiers ' || (SELECT string_agg(tier || ' ' || n, ', ' ORDER BY tier) FROM (SELECT tier, count(*) AS n FROM bench_a.clv_customers GROUP BY tier) t)")
SQL_PARAMS=$(psql_q -Atc "SELECT (bgnbd::jsonb->'params') || (spend::jsonb->'params') FROM bench_a.clv_models ORDER BY run_id DESC LIMIT 1")
SQL_CLUSTERS=$(psql_q -Atc "SELECT string_agg(n::text, ', ' ORDER BY n) FROM (SELECT count(*) AS n FROM bench_a.clv_customers GROUP BY cluster) c")

run_sql "clv_pipeline, second run (same schema bench_a, same data)" "SELECT * FROM clv_pipeline($PIPE, observation_end => '$E0', target_schema => 'bench_a')"
FULL2=$WALL
RUN12_DIFF=$(param_diff "$(params_of bench_a 1)" "$(params_of bench_a 2)")
full_run_stages S2
run_sql "clv_pipeline, third run (same schema, same data, clv.refresh_concurrently = off)" \
    "SELECT * FROM clv_pipeline($PIPE, observation_end => '$E0', target_schema => 'bench_a')" off
FULL3=$WALL
full_run_stages S3

log "Python: lifetimes $("$PY" -c 'import lifetimes; print(lifetimes.__version__)') + pandas + scikit-learn on the exported CSV"
PYJ=$("$PY" "$ROOT/bench/pipeline_bench.py" "$OUT/pipeline_tx.csv" "$E0" --clusters "$CLUSTERS" --seed "$SEED" | tail -n 1)
j() { echo "$PYJ" | "$PY" -c "import json,sys; d=json.load(sys.stdin); v=d$1; print('%.3f' % v if isinstance(v, float) else json.dumps(v) if isinstance(v, (dict, list)) else v)"; }
declare -A P
P[read]=$(j "['stages_s']['read']"); P[summary]=$(j "['stages_s']['summary']")
P[fit]=$(j "['stages_s']['bgnbd'] + d['stages_s']['gg']"); P[kmeans]=$(j "['stages_s']['kmeans_fit']")
P[scoring]=$(j "['stages_s']['clv'] + d['stages_s']['tiers'] + d['stages_s']['kmeans_assign']")
P[work]=$(j "['work_s']"); P[nokm]=$(j "['work_without_kmeans_s']")

if [ "$HAS_REFRESH" = t ]; then
    run_sql "clv_pipeline, first run in schema bench_b (to be refreshed with verify => false)" \
        "SELECT * FROM clv_pipeline($PIPE, observation_end => '$E0', target_schema => 'bench_b')"
    FULLB=$WALL
    NEW=$((N_TX / 100))
    log "appending $NEW transactions dated $E0 + 1 .. $E1 (90% existing customers active in the last 90 days, 10% new customers)"
    psql_q <<SQL
SET work_mem = '$WORK_MEM';
SELECT setseed(0.7) AS seeded \gset
SELECT max(customer_id) AS max_id FROM bench_tx \gset
INSERT INTO bench_tx
SELECT customer_id, timestamp '$E0' + (1 + floor(random() * 7))::int * interval '1 day', round((5 + random() * 95)::numeric, 2)::float8
FROM (SELECT customer_id FROM bench_tx WHERE ts > timestamp '$E0' - interval '90 days' ORDER BY random() LIMIT $NEW - $NEW / 10) old
UNION ALL
SELECT :max_id + i, timestamp '$E0' + (1 + floor(random() * 7))::int * interval '1 day', round((5 + random() * 95)::numeric, 2)::float8
FROM generate_series(1, $NEW / 10) i;
SQL
    run_sql "clv_pipeline_refresh('bench_a', observation_end => '$E1') (time mark, verify on: the default without an arrival column)" \
        "SELECT * FROM clv_pipeline_refresh('bench_a', observation_end => '$E1')"
    REFRESH=$WALL
    run_sql "clv_pipeline_refresh('bench_b', observation_end => '$E1', verify => false) with clv.refresh_concurrently = off" \
        "SELECT * FROM clv_pipeline_refresh('bench_b', observation_end => '$E1', verify => false)" off
    REFRESH_NV=$WALL
    run_sql "clv_pipeline on the grown table (new schema bench_full)" \
        "SELECT * FROM clv_pipeline($PIPE, observation_end => '$E1', target_schema => 'bench_full')"
    FULLG=$WALL
    for k in summary rfm rfm_table fit kmeans scoring history total; do
        case $k in summary) keys="rfm rfm_table verify merge" ;; rfm) keys="rfm verify merge" ;; *) keys=$k ;; esac
        SR[$k]=$(stage bench_a $keys); SRN[$k]=$(stage bench_b $keys); SF[$k]=$(stage bench_full $keys)
    done
    REFRESH_DIFF=$(param_diff "$(params_of bench_a 4)" "$(params_of bench_full 1)")
    SAME=$(psql_q -Atc "SELECT count(*) || ' customers, ' || count(*) FILTER (WHERE a.customer_id IS NULL OR f.customer_id IS NULL) || ' missing on one side, '
                        || count(*) FILTER (WHERE a.tier IS DISTINCT FROM f.tier) || ' tiers differ, max |CLV difference| '
                        || coalesce(btrim(to_char(max(abs(a.clv - f.clv)), '9.9EEEE')), '-')
                        FROM bench_a.clv_customers a FULL JOIN bench_full.clv_customers f USING (customer_id)")
fi
LOAD_AFTER=$(uptime | sed 's/.*load average: //')

r() { if [ "$2" = - ] || [ "$1" = - ]; then echo -; else printf '%.2fx' "$(echo "$1 / $2" | bc -l)"; fi; }
printf '\n%s transactions of %s customers (%s per customer), observation end %s; work_mem %s\n' "$N_TX" "$CUSTOMERS" "$PER_CUSTOMER" "$E0" "$WORK_MEM"
printf 'load average before %s, after %s (%s cores)\n' "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)"
printf '\nfloors (server time, best of %s)                  serial s  2 workers s\n' "$REPEAT"
printf '%-46s %10s %12s\n' "count/min/max/sum GROUP BY customer_id" "$FLOOR0" "$FLOOR2"
printf '%-46s %10s %12s\n' "rfm(ts, amount, end) GROUP BY customer_id" "$RFM0" "$RFM2"
printf '%-46s %10s %12s\n' "the pipeline's rfm stage query (SELECT only)" "$STATE0" "$STATE2"

printf '\n%-40s %10s %12s %12s %12s %16s\n' "stage" "Python s" "SQL 1st s" "SQL 2nd s" "SQL 3rd s" "Python / SQL 1st"
printf '%-40s %10s %12s %12s %12s\n' "" "" "" "(view diffed)" "(rebuilt)"
row() { printf '%-40s %10s %12s %12s %12s %16s\n' "$1" "$2" "$3" "$4" "$5" "$(r "$2" "$3")"; }
row "export (\\copy) + read CSV" "$(echo "$EXPORT_S + ${P[read]}" | bc -l | xargs printf '%.3f')" - - -
row "summary (rfm + clv_rfm table)" "${P[summary]}" "${S1[summary]}" "${S2[summary]}" "${S3[summary]}"
row "  SQL: rfm aggregate -> clv_rfm_state" - "${S1[rfm]}" "${S2[rfm]}" "${S3[rfm]}"
row "  SQL: clv_rfm table (rfm_fields)" - "${S1[rfm_table]}" "${S2[rfm_table]}" "${S3[rfm_table]}"
row "BG/NBD + Gamma-Gamma fits" "${P[fit]}" "${S1[fit]}" "${S2[fit]}" "${S3[fit]}"
row "K-means fit (20,000-customer sample)" "${P[kmeans]}" "${S1[kmeans]}" "${S2[kmeans]}" "${S3[kmeans]}"
row "CLV, tiers, cluster of everyone (*)" "${P[scoring]}" "${S1[scoring]}" "${S2[scoring]}" "${S3[scoring]}"
row "tier history and views" - "${S1[history]}" "${S2[history]}" "${S3[history]}"
row "total (Python: work, no CSV)" "${P[work]}" "${S1[total]}" "${S2[total]}" "${S3[total]}"
echo "(*) SQL: the clv_customers materialized view (CLV, P(alive), expected purchases, tiers, RFM and named"
echo "    segments, cluster); the 2nd run refreshes it concurrently (the default), the 3rd with"
echo "    clv.refresh_concurrently = off. Python: customer_lifetime_value, qcut tiers, KMeans.predict."
printf 'client wall time of the clv_pipeline calls: 1st %s s, 2nd %s s, 3rd %s s\n' "$FULL1" "$FULL2" "$FULL3"
printf '\nsame work: SQL %s\n' "$SQL_SUM"
printf '           Python %s customers, CLV sum %.2f, tiers %s\n' "$(j "['customers']")" "$(j "['clv_sum']")" "$(j "['tiers']")"
printf 'parameters SQL %s\n           Python %s %s\n' "$SQL_PARAMS" "$(j "['bgnbd_params']")" "$(j "['gg_params']")"
printf 'cluster sizes SQL %s; Python %s\n' "$SQL_CLUSTERS" "$(j "['cluster_sizes']")"
printf 'largest relative parameter difference: SQL 1st vs Python %s; SQL 1st vs 2nd run (same data) %s\n' \
    "$(param_diff "'$SQL_PARAMS'::jsonb" "'$(j "['bgnbd_params']")'::jsonb || '$(j "['gg_params']")'::jsonb")" "$RUN12_DIFF"

if [ "$HAS_REFRESH" = t ]; then
    printf '\nafter appending %s transactions (observation end %s)\n' "$NEW" "$E1"
    printf '%-40s %12s %14s %14s\n' "stage" "full run s" "refresh s" "refresh s"
    printf '%-40s %12s %14s %14s\n' "" "(bench_full)" "(verify on)" "(verify off,"
    printf '%-40s %12s %14s %14s\n' "" "" "" "view rebuilt)"
    for k in summary rfm rfm_table fit kmeans scoring history total; do
        case $k in summary) label="summary (rfm / verify + merge, clv_rfm)" ;;
                   rfm) label="  rfm aggregate / verify + merge" ;; rfm_table) label="  clv_rfm (every customer's T moved)" ;; fit) label="fits" ;; kmeans) label="K-means fit" ;;
                   scoring) label="scoring (materialized view)" ;; history) label="tier history and views" ;; total) label="total" ;; esac
        printf '%-40s %12s %14s %14s\n' "$label" "${SF[$k]}" "${SR[$k]}" "${SRN[$k]}"
    done
    printf 'client wall time: full %s s, refresh %s s (verify on), %s s (verify off); full run into bench_b before: %s s\n' \
        "$FULLG" "$REFRESH" "$REFRESH_NV" "$FULLB"
    printf 'refreshed bench_a against the full run: %s; largest relative parameter difference %s\n' "$SAME" "$REFRESH_DIFF"
fi

printf '\nfull pipeline: lifetimes+pandas / clv_pipeline = %s (target >= 3x; Python work only, first run)\n' "$(r "${P[work]}" "${S1[total]}")"
printf '               with export + CSV read on the Python side: %s; without K-means on the Python side: %s\n' \
    "$(r "$(echo "${P[work]} + $EXPORT_S + ${P[read]}" | bc -l)" "${S1[total]}")" "$(r "${P[nokm]}" "${S1[total]}")"
printf 'second full run / first full run = %s (target <= 1); with clv.refresh_concurrently = off: %s\n' \
    "$(r "${S2[total]}" "${S1[total]}")" "$(r "${S3[total]}" "${S1[total]}")"
if [ "$HAS_REFRESH" = t ]; then
    printf 'incremental refresh after 1%% new rows: full / refresh = %s (target >= 20x); with verify => false, view rebuilt: %s\n' \
        "$(r "${SF[total]}" "${SR[total]}")" "$(r "${SF[total]}" "${SRN[total]}")"
else
    echo "incremental refresh: clv_pipeline_refresh is not in the installed clv_ext; rerun after installing it"
fi
