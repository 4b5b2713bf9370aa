#!/usr/bin/env bash
# Load: 16 concurrent sessions x N scoring calls each (clv, p_alive, expected_purchases of the
# BG/NBD, Pareto/NBD, MBG/NBD and BG/BB models on random possible histories; scripts/load.pgbench,
# 3 calls a transaction) with pgbench on a throwaway cluster (port CLV_PORT, default 55440).
# scripts/pgwatch.py samples every backend's memory (/proc RSS and private anonymous memory) and
# has each one log its memory contexts (pg_log_backend_memory_contexts) while it runs.
#   scripts/load.sh                              16 x 10,000 calls (a few seconds)
#   CLV_LOAD_CALLS=200000 scripts/load.sh        the long run: 16 x 200,000 calls
#   CLV_LOAD_CLIENTS=16 CLV_LOAD_MAX_ANON_MB=4 CLV_LOAD_MAX_CTX_KB=512 (the bounds of growth);
#   CLV_LOAD_SCRIPT=file.pgbench another pgbench script (3 calls a transaction are assumed)
# Fails on any error or missing transaction, or a backend whose memory grew past the bounds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
CLIENTS=${CLV_LOAD_CLIENTS:-16}
CALLS=${CLV_LOAD_CALLS:-10000}
TX=$(( (CALLS + 2) / 3 ))
clv_pyenv
start_limited_cluster load-cluster
OUT=$(run_log_dir load)
psql_q -c "CREATE DATABASE clv_load"
psql_q -d clv_load -c "CREATE EXTENSION clv_ext"
EXT_VERSION=$(psql -X -At -d clv_load -c "SELECT extversion FROM pg_extension WHERE extname = 'clv_ext'")
LOG_START=$(stat -c %s "$SERVER_LOG")

"$CLV_PY" "$ROOT/scripts/pgwatch.py" --dsn "host=$PGHOST port=$PGPORT dbname=postgres user=postgres" \
    --datname clv_load --timeout 30 --interval 0.1 --rss-log "$OUT/load.rss.jsonl" --rss-every 0.2 \
    --log-contexts-every 0.5 --findings "$OUT/load.watch.jsonl" 2>>"$OUT/load.watch.log" &
WATCH=$!
trap 'kill $WATCH 2>/dev/null || true; cleanup_limited_cluster' EXIT
sleep 1

log "pgbench: $CLIENTS sessions x $TX transactions x 3 scoring calls against clv_ext $EXT_VERSION"
set +e
pgbench -n -c "$CLIENTS" -j 2 -t "$TX" -f "${CLV_LOAD_SCRIPT:-$ROOT/scripts/load.pgbench}" -h "$PGHOST" -p "$PGPORT" -U postgres clv_load \
    >"$OUT/load.pgbench.txt" 2>&1
rc=$?
set -e
kill "$WATCH" 2>/dev/null || true
wait "$WATCH" 2>/dev/null || true
tail -n 12 "$OUT/load.pgbench.txt"
[ "$rc" -eq 0 ] || { echo "pgbench exit status $rc:"; grep -iE "error|abort" "$OUT/load.pgbench.txt" | head -5; }
tail -c +"$((LOG_START + 1))" "$SERVER_LOG" > "$OUT/load.server.log"
"$CLV_PY" "$ROOT/scripts/load_report.py" --pgbench "$OUT/load.pgbench.txt" --rss-log "$OUT/load.rss.jsonl" \
    --server-log "$OUT/load.server.log" --expected-tx $((CLIENTS * TX)) \
    --max-anon-growth-mb "${CLV_LOAD_MAX_ANON_MB:-4}" --max-context-growth-kb "${CLV_LOAD_MAX_CTX_KB:-512}" \
    --json "$OUT/load.summary.json"
