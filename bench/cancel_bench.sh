#!/usr/bin/env bash
# Cancellation latency: how long after statement_timeout fires each long-running clv_ext call
# actually stops (issue 8: within one second), and whether the backend is usable afterwards.
#   bench/cancel_bench.sh                         # 10M rows for the fits, 500,000 for K-means
#   ROWS=1000000 KMEANS_ROWS=100000 bench/cancel_bench.sh
#   ONLY='_fit$' TIMEOUT_MS=2500 bench/cancel_bench.sh   # only the calls whose name matches
# Prints, per call: the timeout, the elapsed time, the overshoot, the SQLSTATE (57014 = cancelled
# by statement_timeout; a call that finishes before the timeout says so), and a follow-up query.
source "$(dirname "$0")/../scripts/lib.sh"
ROWS=${ROWS:-10000000}
KMEANS_ROWS=${KMEANS_ROWS:-500000}
TIMEOUT_MS=${TIMEOUT_MS:-500}
ensure_setup
[ -n "${SKIP_INSTALL:-}" ] || install_extension
CLV_PORT=${CLV_PORT:-55434} connect_or_start cancel-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"

log "generating $ROWS simulated customers"
psql_q <<SQL
DROP TABLE IF EXISTS cancel_customers;
CREATE UNLOGGED TABLE cancel_customers AS
SELECT frequency, recency, tenure, monetary_value,
       least(round(frequency), 20) AS x_discrete, least(round(recency), 20) AS tx_discrete
FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                        $ROWS, 52, 26, 7);
VACUUM ANALYZE cancel_customers;
SQL

declare -a NAMES QUERIES
add() { NAMES+=("$1"); QUERIES+=("$2"); }
add bgnbd_fit "SELECT bgnbd_fit(frequency, recency, tenure) FROM cancel_customers"
add pareto_nbd_fit "SELECT pareto_nbd_fit(frequency, recency, tenure) FROM cancel_customers"
add mbgnbd_fit "SELECT mbgnbd_fit(frequency, recency, tenure) FROM cancel_customers"
add bgbb_fit "SELECT bgbb_fit(least(x_discrete, tx_discrete), tx_discrete, 20) FROM cancel_customers"
add gamma_gamma_fit "SELECT gamma_gamma_fit(frequency, monetary_value) FROM cancel_customers"
add kmeans_fit "SELECT kmeans_fit(ARRAY[frequency, recency, monetary_value], 8) FROM (SELECT * FROM cancel_customers LIMIT $KMEANS_ROWS) c"
add kmeans_k_sweep "SELECT kmeans_k_sweep(ARRAY[frequency, recency, monetary_value], 2, 10) FROM (SELECT * FROM cancel_customers LIMIT $KMEANS_ROWS) c"
add simulate_transactions "SELECT count(*) FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 100000000, 52)"
add clv_pipeline "SELECT * FROM clv_pipeline('cancel_tx', 'customer_id', 'ts', 'amount', '2024-12-31', target_schema => 'cancel_clv')"
psql_q -c "DROP TABLE IF EXISTS cancel_tx" -c "CREATE UNLOGGED TABLE cancel_tx AS SELECT customer_id, date '2024-01-01' + (t * 7)::int AS ts, amount FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), $((ROWS / 20)), 52, 26, 3)"

printf '\n%-22s %10s %10s %10s %-8s %s\n' call timeout_s elapsed_s overshoot state backend_after
for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} =~ ${ONLY:-.} ]] || continue
    out=$(psql -X -q -At -v VERBOSITY=verbose -c "SET statement_timeout = '${TIMEOUT_MS}ms'" -c '\timing on' \
               -c "${QUERIES[$i]}" -c "SELECT 'alive'" 2>&1 || true)
    # A call that finishes before the timeout has no ERROR line: no match is not a failure.
    state=$( (grep -oE 'ERROR:  [0-9A-Z]{5}' <<<"$out" || true) | head -1 | awk '{print $2}')
    ms=$( (grep -oE 'Time: [0-9.]+ ms' <<<"$out" || true) | head -1 | awk '{print $2}')
    alive=$(grep -c '^alive$' <<<"$out" || true)
    printf '%-22s %10.3f %10.3f %10.3f %-8s %s\n' "${NAMES[$i]}" "$(echo "$TIMEOUT_MS/1000" | bc -l)" \
        "$(echo "${ms:-0}/1000" | bc -l)" "$(echo "(${ms:-0} - $TIMEOUT_MS)/1000" | bc -l)" "${state:-done}" \
        "$([ "$alive" -ge 1 ] && echo usable || echo LOST)"
done
