#!/usr/bin/env bash
# Citus benchmark: clv_ext's aggregates on scripts/citus.sh's cluster (a coordinator and two
# workers, Citus 13.2.2) against the same query on a plain table on the coordinator (serial and
# with 2 parallel workers) and against every input row going to the coordinator, as 0.5.0's
# `internal` states forced (Citus cannot partially aggregate them): "rows shipped" reads
# `FROM (SELECT * FROM t OFFSET 0) t` (every column, through an intermediate result), "row-gather"
# puts ORDER BY in the aggregate call, which gets the plan 0.5.0 got (the workers send the
# aggregate's arguments, the coordinator aggregates) plus a sort. Each plan's strategy comes from
# EXPLAIN VERBOSE. Prints times and ratios side by side in one run.
#   bench/citus_bench.sh                 # 2M transactions of 200k customers; 1M customers for the fits
#   TRANSACTIONS=1000000 CUSTOMERS=100000 FIT_CUSTOMERS=500000 bench/citus_bench.sh
#   TX_SHARDS="32 8" FIT_SHARDS="8 32" REPEAT=3 WORK_MEM=256MB
# Starts a cluster of its own with scripts/citus.sh's functions (Citus built first if missing), in
# build/citus-bench/citus-cluster on 127.0.0.1:9710-9712 (CLV_CITUS_PORT), apart from the Citus
# tests' cluster so that both can run at once, and stops it at the end; CLV_CITUS_KEEP=1 leaves it
# up (psql -h 127.0.0.1 -p 9710 -U postgres clv_citus). REUSE_CLUSTER=1 uses the cluster already up
# on CLV_CITUS_PORT and leaves it up; REUSE_DATA=1 then keeps bench tables of the same sizes.
# clv_ext must be installed already (as for scripts/citus.sh).
# Times: best of REPEAT, each run in a fresh session that first runs the query once untimed (so
# the coordinator's connections to the workers, kept with citus.max_cached_conns_per_worker, and
# the library in every worker backend are ready: paid once per session, not per query). Every
# node runs with WORK_MEM and max_parallel_workers_per_gather = 0 (the "2 workers" rows force a
# parallel plan on the coordinator's plain table). The three servers share the machine's cores
# (2 on the project's machine): the two workers run at most two shard queries at a time between
# them, and the coordinator's combining competes with them for the same CPUs, so the speed-up
# from distributing is bounded by the cores, not by the number of workers or shards.
CLV_CITUS_PORT=${CLV_CITUS_PORT:-9710}
source "$(dirname "$0")/../scripts/citus.sh"   # its functions (and lib.sh); CITUS_PORT, CITUS_DB
TRANSACTIONS=${TRANSACTIONS:-2000000}
CUSTOMERS=${CUSTOMERS:-200000}
FIT_CUSTOMERS=${FIT_CUSTOMERS:-1000000}
TX_SHARDS=${TX_SHARDS:-32}
FIT_SHARDS=${FIT_SHARDS:-8 32}
REPEAT=${REPEAT:-3}
WORK_MEM=${WORK_MEM:-256MB}
unset PGHOST PGPORT PGDATABASE PGUSER CLV_DATABASE_URL

load_avg() { cut -d' ' -f1-3 /proc/loadavg; }

if [ -n "${REUSE_CLUSTER:-}" ] && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$CITUS_PORT"; then
    log "using the Citus cluster on :$CITUS_PORT"
else
    if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/clv_ext.control" ]; then
        echo "clv_ext is not installed in $PG_CONFIG's PostgreSQL (cargo pgrx install, or scripts/test.sh)" >&2
        exit 1
    fi
    ensure_citus || exit 0
    unset REUSE_DATA
    BUILD=$ROOT/build/citus-bench start_citus   # stops the cluster on exit unless CLV_CITUS_KEEP
fi
export PGHOST=127.0.0.1 PGPORT=$CITUS_PORT PGUSER=postgres PGDATABASE=$CITUS_DB
for i in 0 1 2; do
    psql_q -p $((CITUS_PORT + i)) -c "ALTER SYSTEM SET work_mem = '$WORK_MEM'" \
        -c "ALTER SYSTEM SET max_parallel_workers_per_gather = 0" -c "SELECT pg_reload_conf()" >/dev/null
done

# bench_tx_local: TRANSACTIONS rows, customer 1 + (i - 1) % CUSTOMERS (so each customer's rows are
# spread over the table), times over 2022-01-01..2023-10 from the customer and purchase numbers
# (as tests/citus/sql/citus_rfm.sql), amounts 1.00..100.99; bench_summary_local: its rfm per
# customer; bench_cust_local: FIT_CUSTOMERS simulated BG/NBD + Gamma-Gamma customers (seeded).
# Distributed copies: bench_tx_by_customer_<shards>, bench_tx_by_order_<shards>,
# bench_summary_<shards> (by customer) for TX_SHARDS; bench_cust_<shards> for FIT_SHARDS.
SIZES="$TRANSACTIONS $CUSTOMERS $FIT_CUSTOMERS $TX_SHARDS / $FIT_SHARDS"
if [ -n "${REUSE_DATA:-}" ] && [ "$(psql_q -Atc "SELECT obj_description('bench_tx_local'::regclass)" 2>/dev/null)" = "$SIZES" ]; then
    log "reusing the bench tables ($SIZES)"
else
    log "generating $TRANSACTIONS transactions of $CUSTOMERS customers and $FIT_CUSTOMERS customers for the fits; distributing them"
    psql_q >/dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_tx_local, bench_summary_local, bench_cust_local CASCADE;
$(for s in $TX_SHARDS; do echo "DROP TABLE IF EXISTS bench_tx_by_customer_$s, bench_tx_by_order_$s, bench_summary_$s;"; done)
$(for s in $FIT_SHARDS; do echo "DROP TABLE IF EXISTS bench_cust_$s;"; done)
CREATE TABLE bench_tx_local AS
SELECT i AS order_id, c AS customer_id,
       timestamp '2022-01-01' + make_interval(days => (c * 37) % 400 + k * (1 + (c * 13 + k * 7) % 29),
                                              hours => (c + k * 5) % 24) AS ts,
       round(((c * 7919 + k * 104729) % 10000) / 100.0 + 1, 2)::float8 AS amount
FROM generate_series(1, $TRANSACTIONS::bigint) i,
     LATERAL (SELECT (1 + (i - 1) % $CUSTOMERS)::int AS c, ((i - 1) / $CUSTOMERS)::int AS k) a;
CREATE TABLE bench_summary_local AS
SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM bench_tx_local GROUP BY customer_id;
CREATE TABLE bench_cust_local AS
SELECT customer_id, frequency, recency, tenure, monetary_value
FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                        $FIT_CUSTOMERS, horizon => 52, acquisition => 12, seed => 7);
$(for s in $TX_SHARDS; do cat <<EOS
SET citus.shard_count = $s;
CREATE TABLE bench_tx_by_customer_$s (LIKE bench_tx_local);
SELECT create_distributed_table('bench_tx_by_customer_$s', 'customer_id');
INSERT INTO bench_tx_by_customer_$s SELECT * FROM bench_tx_local;
CREATE TABLE bench_tx_by_order_$s (LIKE bench_tx_local);
SELECT create_distributed_table('bench_tx_by_order_$s', 'order_id');
INSERT INTO bench_tx_by_order_$s SELECT * FROM bench_tx_local;
CREATE TABLE bench_summary_$s (LIKE bench_summary_local);
SELECT create_distributed_table('bench_summary_$s', 'customer_id');
INSERT INTO bench_summary_$s SELECT * FROM bench_summary_local;
EOS
done)
$(for s in $FIT_SHARDS; do cat <<EOS
SET citus.shard_count = $s;
CREATE TABLE bench_cust_$s (LIKE bench_cust_local);
SELECT create_distributed_table('bench_cust_$s', 'customer_id');
INSERT INTO bench_cust_$s SELECT * FROM bench_cust_local;
EOS
done)
COMMENT ON TABLE bench_tx_local IS '$SIZES';
SQL
    psql_q -c "VACUUM ANALYZE" >/dev/null
fi
# A fit's parameters to 6 decimals (the distributed fits must agree with the local one); parallel
# safe, or no query calling it gets a parallel plan.
psql_q -c "CREATE OR REPLACE FUNCTION bench_params(m jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
    \$\$ SELECT string_agg(k || '=' || round(v::numeric, 6), ' ' ORDER BY k) FROM jsonb_each_text(m -> 'params') e(k, v) \$\$"

# Queries, each with one aggregate call (Citus ships a partial state per call in the select list):
# the result (the top spender and its total, a global summary's total, a fit's parameters) is
# printed for the local table and compared for the others.
Q_PER="SELECT customer_id, round(total_amount(rfm(ts, amount, '2023-12-31'))::numeric, 2) AS total FROM %s GROUP BY customer_id ORDER BY total DESC, customer_id LIMIT 1"
Q_GLOBAL="SELECT round(total_amount(rfm(ts, amount, '2023-12-31'))::numeric, 2) FROM %s"
Q_ROLLUP="SELECT round(total_amount(rollup(s))::numeric, 2) FROM %s"
Q_BGNBD="SELECT bench_params(bgnbd_fit(frequency, recency, tenure)::jsonb) FROM %s"
Q_GG="SELECT bench_params(gamma_gamma_fit(frequency, monetary_value)::jsonb) FROM %s"
SHIP="(SELECT * FROM %s OFFSET 0) t"
# The same with ORDER BY in the aggregate call, which Citus cannot push down: its row-gather plan
# (the workers send the aggregate's arguments, the coordinator aggregates), the plan 0.5.0's
# `internal` states got; plus a sort that 0.5.0 did not pay.
Q_PER_RG=${Q_PER/"'2023-12-31')"/"'2023-12-31' ORDER BY ts)"}
Q_GLOBAL_RG=${Q_GLOBAL/"'2023-12-31')"/"'2023-12-31' ORDER BY ts)"}
Q_ROLLUP_RG=${Q_ROLLUP/"rollup(s)"/"rollup(s ORDER BY customer_id)"}
Q_BGNBD_RG=${Q_BGNBD/"tenure)"/"tenure ORDER BY customer_id)"}
Q_GG_RG=${Q_GG/"monetary_value)"/"monetary_value ORDER BY customer_id)"}

# Best of REPEAT runs of $2 with $1 parallel workers per gather on the coordinator, in seconds
# (psql's \timing), each run in a fresh session after one untimed run of the same query.
time_query() {
    local workers=$1 sql=$2 best=999999 ms sets=()
    if [ "$workers" -gt 0 ]; then sets+=(-c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0"); fi
    for _ in $(seq "$REPEAT"); do
        ms=$(psql_q -c "LOAD 'clv_ext'" -c "SET max_parallel_workers_per_gather = $workers" "${sets[@]}" \
                    -c "SET citus.max_cached_conns_per_worker = 64" -c "$sql" -c '\timing on' -c "$sql" \
             | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
        if [ -z "$ms" ]; then echo "no time for: $sql" >&2; return 1; fi
        best=$(echo "if ($ms / 1000 < $best) $ms / 1000 else $best" | bc -l)
    done
    printf '%.3f' "$best"
}
# How the plan runs aggregate $3 (EXPLAIN VERBOSE of $2 with $1 workers per gather).
plan_of() {
    local plan
    plan=$(psql_q -At -c "SET max_parallel_workers_per_gather = $1" -c "SET parallel_setup_cost = 0" \
                  -c "SET parallel_tuple_cost = 0" -c "EXPLAIN (VERBOSE, COSTS OFF) $2")
    if grep -q worker_partial_agg <<<"$plan"; then echo "partial aggregation"
    elif grep 'Query:' <<<"$plan" | grep -v read_intermediate_result | grep -q "$3("; then echo "full pushdown"
    elif grep -q 'Distributed Subplan' <<<"$plan"; then echo "rows to coordinator"
    elif grep -q 'Custom Scan (Citus' <<<"$plan"; then echo "rows to coordinator (row-gather)"
    elif grep -q 'Gather' <<<"$plan"; then echo "local, parallel"
    else echo "local"; fi
}

# One line per case, tab-separated: group, key, label, workers, aggregate, query template, table
CASES=()
add() { CASES+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"$'\t'"$6"$'\t'"$7"); }
add per local "local, serial" 0 rfm "$Q_PER" bench_tx_local
add per local2 "local, 2 parallel workers" 2 rfm "$Q_PER" bench_tx_local
for s in $TX_SHARDS; do
    add per cust$s "by customer, $s shards" 0 rfm "$Q_PER" bench_tx_by_customer_$s
    add per order$s "by order, $s shards" 0 rfm "$Q_PER" bench_tx_by_order_$s
    add per ship$s "by order, $s shards, rows shipped" 0 rfm "$Q_PER" "$(printf "$SHIP" bench_tx_by_order_$s)"
    add per rg$s "by order, $s shards, row-gather" 0 rfm "$Q_PER_RG" bench_tx_by_order_$s
done
add global local "local, serial" 0 rfm "$Q_GLOBAL" bench_tx_local
add global local2 "local, 2 parallel workers" 2 rfm "$Q_GLOBAL" bench_tx_local
for s in $TX_SHARDS; do
    add global order$s "by order, $s shards" 0 rfm "$Q_GLOBAL" bench_tx_by_order_$s
    add global ship$s "by order, $s shards, rows shipped" 0 rfm "$Q_GLOBAL" "$(printf "$SHIP" bench_tx_by_order_$s)"
    add global rg$s "by order, $s shards, row-gather" 0 rfm "$Q_GLOBAL_RG" bench_tx_by_order_$s
done
add rollup local "local, serial" 0 rollup "$Q_ROLLUP" bench_summary_local
add rollup local2 "local, 2 parallel workers" 2 rollup "$Q_ROLLUP" bench_summary_local
for s in $TX_SHARDS; do
    add rollup cust$s "by customer, $s shards" 0 rollup "$Q_ROLLUP" bench_summary_$s
    add rollup ship$s "by customer, $s shards, rows shipped" 0 rollup "$Q_ROLLUP" "$(printf "$SHIP" bench_summary_$s)"
    add rollup rg$s "by customer, $s shards, row-gather" 0 rollup "$Q_ROLLUP_RG" bench_summary_$s
done
for f in bgnbd gg; do
    if [ $f = bgnbd ]; then q=$Q_BGNBD rg=$Q_BGNBD_RG a=bgnbd_fit; else q=$Q_GG rg=$Q_GG_RG a=gamma_gamma_fit; fi
    add $f local "local, serial" 0 $a "$q" bench_cust_local
    add $f local2 "local, 2 parallel workers" 2 $a "$q" bench_cust_local
    for s in $FIT_SHARDS; do
        add $f cust$s "by customer, $s shards" 0 $a "$q" bench_cust_$s
        add $f ship$s "by customer, $s shards, rows shipped" 0 $a "$q" "$(printf "$SHIP" bench_cust_$s)"
        add $f rg$s "by customer, $s shards, row-gather" 0 $a "$rg" bench_cust_$s
    done
done

# Another build may reinstall the library meanwhile (a backend that has it mapped then dies of
# SIGBUS, and the figures mix two builds): say which one was timed, and whether it changed.
LIB=$("$PG_CONFIG" --pkglibdir)/clv_ext.so
LIB_BEFORE=$(stat -c '%y' "$LIB" | cut -c1-19)
LOAD_BEFORE=$(load_avg)
log "timing (best of $REPEAT; load $LOAD_BEFORE)"
declare -A T P R
for c in "${CASES[@]}"; do
    IFS=$'\t' read -r group key label workers agg tmpl table <<<"$c"
    sql=$(printf "$tmpl" "$table")
    P[$group,$key]=$(plan_of "$workers" "$sql" "$agg")
    R[$group,$key]=$(psql_q -At -c "SET max_parallel_workers_per_gather = $workers" -c "$sql")
    T[$group,$key]=$(time_query "$workers" "$sql")
    printf '  %-8s %-40s %8s s  %s\n' "$group" "$label" "${T[$group,$key]}" "${P[$group,$key]}" >&2
done
LOAD_AFTER=$(load_avg)
LIB_AFTER=$(stat -c '%y' "$LIB" | cut -c1-19)

ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf '\n%s transactions of %s customers; %s customers for the fits; coordinator + 2 workers on one machine (%s cores)\n' \
    "$TRANSACTIONS" "$CUSTOMERS" "$FIT_CUSTOMERS" "$(nproc)"
printf 'load average (1, 5, 15 min) before: %s, after: %s\n' "$LOAD_BEFORE" "$LOAD_AFTER"
printf 'clv_ext.so installed %s%s\n' "$LIB_BEFORE" \
    "$([ "$LIB_BEFORE" = "$LIB_AFTER" ] || echo "; REINSTALLED during the run ($LIB_AFTER): the figures mix two builds")"
printf '\n%-40s %-36s %9s %8s  %s\n' "query / table" "plan" "s" "x local" "result"
last=
for c in "${CASES[@]}"; do
    IFS=$'\t' read -r group key label workers agg tmpl table <<<"$c"
    if [ "$group" != "$last" ]; then
        case $group in
            per) title="rfm per customer (the top spender)" ;;
            global) title="global rfm (one summary of every row)" ;;
            rollup) title="global rollup of the per-customer summaries" ;;
            bgnbd) title="bgnbd_fit(frequency, recency, tenure)" ;;
            gg) title="gamma_gamma_fit(frequency, monetary_value)" ;;
        esac
        printf '%s\n' "$title"
        last=$group
    fi
    if [ "$key" = local ]; then res=${R[$group,$key]}
    elif [ "${R[$group,$key]}" = "${R[$group,local]}" ]; then res="same"
    else res="DIFFERS: ${R[$group,$key]}"; fi
    printf '  %-38s %-36s %9s %8s  %s\n' "$label" "${P[$group,$key]}" "${T[$group,$key]}" \
        "$(ratio "${T[$group,$key]}" "${T[$group,local]}")" "$res"
done
printf '\n"x local": time / the local serial time (below 1 is faster). Each row'"'"'s plan is from EXPLAIN VERBOSE:\n'
printf 'partial aggregation = worker_partial_agg on the workers, coord_combine_agg on the coordinator.\n'
