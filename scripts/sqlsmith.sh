#!/usr/bin/env bash
# sqlsmith (Debian package `sqlsmith`, installed when missing) against a database whose tables
# hold typed clv_ext columns (scripts/sqlsmith.sql), on a throwaway cluster (port CLV_PORT,
# default 55440), with scripts/pgwatch.py stopping any query that outlives statement_timeout by a
# second (HANG) or whose backend passes 1 GB (MEMORY).
#   scripts/sqlsmith.sh                          short run: 10,000 queries (about 40 s)
#   CLV_SMITH_QUERIES=30000 scripts/sqlsmith.sh  the long run; CLV_SMITH_SEED=N (default 1)
#   CLV_SMITH_FOCUS=0 lets sqlsmith use all ~3,000 functions of PostgreSQL instead of clv_ext's and
#   a few dozen common ones (see the end of scripts/sqlsmith.sql).
# Reports queries, errors by kind (sqlsmith's own summary, and by SQLSTATE from the server log),
# broken connections, and fails on any crash (server log: "terminated by signal", TRAP, PANIC),
# XX000 raised by clv_ext, hang or memory finding (scripts/sqlsmith_report.py). Errors of random
# SQL are expected otherwise.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
QUERIES=${CLV_SMITH_QUERIES:-10000}
SEED=${CLV_SMITH_SEED:-1}
TIMEOUT_S=1   # sqlsmith sets statement_timeout = 1s in its sessions; the database gets the same

if ! command -v sqlsmith >/dev/null; then
    log "installing sqlsmith (Debian package)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlsmith >/dev/null
fi
clv_pyenv
start_limited_cluster smith-cluster
OUT=$(run_log_dir sqlsmith)
psql_q -c "CREATE DATABASE clv_smith"
psql_q -d clv_smith -f "$ROOT/scripts/sqlsmith.sql" >/dev/null
psql_q -c "ALTER DATABASE clv_smith SET statement_timeout = '${TIMEOUT_S}s'"
# PostgreSQL's JIT compiles a costly plan without looking at statement_timeout (3 s for one random
# query here): a hang of PostgreSQL, not of clv_ext. Off, so the watchdog sees clv_ext's.
psql_q -c "ALTER DATABASE clv_smith SET jit = off"
if [ "${CLV_SMITH_FOCUS:-1}" = 1 ]; then
    psql_q -c "ALTER ROLE smith IN DATABASE clv_smith SET search_path = smith_focus, public, pg_catalog"
fi
# The functions of clv_ext, to count the queries that call one.
CLV_FUNCS=$(psql -X -At -d clv_smith -c "SELECT string_agg(DISTINCT p.proname, '|') FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clv_ext'")
psql_q -c "ALTER SYSTEM SET log_error_verbosity = verbose" -c "SELECT pg_reload_conf()" >/dev/null
EXT_VERSION=$(psql -X -At -d clv_smith -c "SELECT extversion FROM pg_extension WHERE extname = 'clv_ext'")
LOG_START=$(stat -c %s "$SERVER_LOG")

"$CLV_PY" "$ROOT/scripts/pgwatch.py" --dsn "host=$PGHOST port=$PGPORT dbname=postgres user=postgres" \
    --datname clv_smith --timeout "$TIMEOUT_S" --findings "$OUT/sqlsmith.watch.jsonl" 2>>"$OUT/sqlsmith.watch.log" &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true; cleanup_limited_cluster' EXIT

log "sqlsmith: $QUERIES queries, seed $SEED, against clv_ext $EXT_VERSION (log: $OUT/sqlsmith.err)"
start=$(date +%s)
set +e
sqlsmith --target="host=$PGHOST port=$PGPORT dbname=clv_smith user=smith" --exclude-catalog \
    --seed="$SEED" --max-queries="$QUERIES" --verbose --dump-all-queries >"$OUT/sqlsmith.queries" 2>"$OUT/sqlsmith.err"
rc=$?
set -e
secs=$(( $(date +%s) - start ))
sleep 0.5
kill "$WATCH" 2>/dev/null || true
wait "$WATCH" 2>/dev/null || true
tail -c +"$((LOG_START + 1))" "$SERVER_LOG" > "$OUT/sqlsmith.server.log"

"$CLV_PY" "$ROOT/scripts/sqlsmith_report.py" --err "$OUT/sqlsmith.err" --queries "$OUT/sqlsmith.queries" \
    --server-log "$OUT/sqlsmith.server.log" --watch "$OUT/sqlsmith.watch.jsonl" --functions "$CLV_FUNCS" \
    --seconds "$secs" --status "$rc" --json "$OUT/sqlsmith.summary.json"
