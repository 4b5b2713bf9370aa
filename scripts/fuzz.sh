#!/usr/bin/env bash
# The catalog-driven edge-value fuzzer (scripts/fuzz.py) against a throwaway cluster with clv_ext
# installed from the server's extension directory (build/install it first, e.g. with test.sh).
#   scripts/fuzz.sh                  short run: 20,000 calls (about 1 minute)
#   scripts/fuzz.sh --long           200,000 calls; or --calls N, --seed S, --only REGEX, -v ...
#   CLV_FUZZ_ARGS="--calls 50000" scripts/fuzz.sh
# Port CLV_PORT (default 55440), so it may run next to the test suite's cluster. Exits non-zero
# when a call hung, exhausted memory, crashed the backend, raised XX000 or returned NaN/infinity.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
clv_pyenv
start_limited_cluster fuzz-cluster
psql_q -c "CREATE DATABASE clv_fuzz"
psql_q -d clv_fuzz -c "CREATE EXTENSION clv_ext"
log "fuzzing every SQL function of clv_ext $(psql -X -At -d clv_fuzz -c "SELECT extversion FROM pg_extension WHERE extname = 'clv_ext'")"
# shellcheck disable=SC2086
"$CLV_PY" "$ROOT/scripts/fuzz.py" --dsn "host=$PGHOST port=$PGPORT dbname=clv_fuzz user=postgres" \
    --server-log "$SERVER_LOG" --library "$(clv_library)" ${CLV_FUZZ_ARGS:-} "$@"
