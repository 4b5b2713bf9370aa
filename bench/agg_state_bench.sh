#!/usr/bin/env bash
# A/B benchmark of the aggregate state: 0.6.0's `clv_aggregate_state` (an expanded object, so that
# Citus can partially aggregate) against 0.5.0's `internal` state, serial, same data, same server,
# one run, runs interleaved (old, new, old, new, ...) so machine load hits both alike.
#   bench/agg_state_bench.sh                     # 3M transactions / 300k customers, 2M fit rows
#   TRANSACTIONS=10000000 CUSTOMERS=1000000 bench/agg_state_bench.sh
# The 0.5.0 library is built from git (OLD_REV, default the 0.5.0 release commit) in a worktree
# and installed next to the current one as clv_ext_old.so; its aggregates are declared in a
# database of their own (each backend loads only one of the two libraries).
source "$(dirname "$0")/../scripts/lib.sh"
TRANSACTIONS=${TRANSACTIONS:-3000000}
CUSTOMERS=${CUSTOMERS:-300000}
FIT_ROWS=${FIT_ROWS:-2000000}
REPEAT=${REPEAT:-5}
OLD_REV=${OLD_REV:-df5f6b7}
ensure_setup
[ -n "${SKIP_INSTALL:-}" ] || install_extension
LIBDIR=$("$PG_CONFIG" --pkglibdir)
if [ ! -f "$LIBDIR/clv_ext_old.so" ] || [ -n "${REBUILD_OLD:-}" ]; then
    log "building the $OLD_REV library (internal states) in a worktree"
    WT=$(mktemp -d /tmp/clv_ext_old.XXXXXX)
    git -C "$ROOT" worktree add --detach "$WT" "$OLD_REV" >/dev/null
    (cd "$WT" && CARGO_TARGET_DIR="$BUILD/old-target" cargo build --release --lib >/dev/null)
    as_root cp "$BUILD/old-target/release/libclv_ext.so" "$LIBDIR/clv_ext_old.so"
    git -C "$ROOT" worktree remove --force "$WT"
fi
CLV_PORT=${CLV_PORT:-55436} connect_or_start bench-state-cluster

data() { # the same tables in both databases (seeded)
    psql_q -d "$1" <<SQL
SELECT setseed(0.5) AS seeded \gset
CREATE UNLOGGED TABLE bench_tx AS
SELECT (random() * ($CUSTOMERS - 1))::int + 1 AS customer_id,
       timestamp '2023-01-01' + random() * interval '730 days' AS ts,
       round((random() * 100)::numeric, 2)::float8 AS amount
FROM generate_series(1, $TRANSACTIONS);
SELECT setseed(0.3) AS seeded \gset
CREATE UNLOGGED TABLE bench_fit AS
SELECT (random() * 10)::int::float8 AS f, 0::float8 AS r, (20 + (random() * 30)::int)::float8 AS t,
       10 + random() * 50 AS m
FROM generate_series(1, $FIT_ROWS);
UPDATE bench_fit SET r = CASE WHEN f = 0 THEN 0 ELSE least(t, f + (random() * (t - f))::int) END;
VACUUM ANALYZE bench_tx, bench_fit;
CREATE FUNCTION seconds(q text) RETURNS double precision LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE q; RETURN extract(epoch FROM clock_timestamp() - t0); END \$\$;
SQL
}

log "two databases: clv_old (0.5.0 library, internal states) and clv_new (this build)"
psql_q -d postgres -c "DROP DATABASE IF EXISTS clv_old" -c "DROP DATABASE IF EXISTS clv_new" \
    -c "CREATE DATABASE clv_old" -c "CREATE DATABASE clv_new"
psql_q -d clv_new -c "CREATE EXTENSION clv_ext"
psql_q -d clv_old <<'SQL'
-- 0.5.0's definitions of the benchmarked aggregates, against its own library (final functions
-- declared as returning bytea: only whether they return a value is looked at).
CREATE FUNCTION rfm_trans(internal, timestamp, double precision, date) RETURNS internal
    LANGUAGE c AS '$libdir/clv_ext_old', 'clv_rfm_trans_timestamp_float8_day';
CREATE FUNCTION rfm_final(internal) RETURNS bytea LANGUAGE c AS '$libdir/clv_ext_old', 'clv_rfm_final';
CREATE AGGREGATE rfm(timestamp, double precision, date) (sfunc = rfm_trans, stype = internal, sspace = 320, finalfunc = rfm_final);
CREATE FUNCTION fit_trans(internal, double precision, double precision, double precision, double precision, double precision) RETURNS internal
    LANGUAGE c AS '$libdir/clv_ext_old', 'clv_fit_trans3';
CREATE FUNCTION fit_trans(internal, double precision, double precision) RETURNS internal
    LANGUAGE c AS '$libdir/clv_ext_old', 'clv_fit_trans2';
CREATE FUNCTION bgnbd_final(internal) RETURNS bytea LANGUAGE c AS '$libdir/clv_ext_old', 'bgnbd_fit_final_wrapper';
CREATE FUNCTION gg_final(internal) RETURNS bytea LANGUAGE c AS '$libdir/clv_ext_old', 'gamma_gamma_fit_final_wrapper';
CREATE AGGREGATE bgnbd_fit(double precision, double precision, double precision, double precision, double precision) (sfunc = fit_trans, stype = internal, finalfunc = bgnbd_final);
CREATE AGGREGATE gamma_gamma_fit(double precision, double precision) (sfunc = fit_trans, stype = internal, finalfunc = gg_final);
SQL
log "generating $TRANSACTIONS transactions over $CUSTOMERS customers and $FIT_ROWS fit rows (twice)"
data clv_old
data clv_new

declare -A Q
Q[rfm]="SELECT count(*) FILTER (WHERE s IS NOT NULL) FROM (SELECT customer_id, rfm(ts, amount, date '2024-12-31') AS s FROM bench_tx GROUP BY customer_id) q"
Q[rfm_global]="SELECT rfm(ts, amount, date '2024-12-31') IS NOT NULL FROM bench_tx"
Q[bgnbd_fit]="SELECT bgnbd_fit(f, r, t, 1.0, 0.01) IS NOT NULL FROM bench_fit"
Q[gamma_gamma_fit]="SELECT gamma_gamma_fit(f + 1, m) IS NOT NULL FROM bench_fit"
ORDER=(rfm rfm_global bgnbd_fit gamma_gamma_fit)

time_in() { # $1 = database, $2 = query: seconds of one run in a fresh backend
    psql_q -At -d "$1" -c "SET max_parallel_workers_per_gather = 0" -c "SET work_mem = '1GB'" \
        -c "SELECT seconds(\$q\$$2\$q\$)"
}

log "timing (serial, best of $REPEAT, interleaved)"
printf '\n%-38s %10s %10s %9s\n' "query ($TRANSACTIONS tx, $CUSTOMERS customers)" "0.5.0 s" "0.6.0 s" "new/old"
for name in "${ORDER[@]}"; do
    old=999999; new=999999
    for _ in $(seq "$REPEAT"); do
        o=$(time_in clv_old "${Q[$name]}"); n=$(time_in clv_new "${Q[$name]}")
        old=$(echo "if ($o < $old) $o else $old" | bc -l); new=$(echo "if ($n < $new) $n else $new" | bc -l)
    done
    printf '%-38s %10.3f %10.3f %9.3f\n' "$name" "$old" "$new" "$(echo "$new / $old" | bc -l)"
done
