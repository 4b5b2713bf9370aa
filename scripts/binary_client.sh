#!/usr/bin/env bash
# scripts/binary_client.py (psycopg 3 in binary mode reads, writes and COPYs every clv_ext type)
# against a throwaway cluster (port CLV_PORT, default 55440). -v lists every check.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/reliability_lib.sh"
clv_pyenv
start_limited_cluster binary-cluster
psql_q -c "CREATE DATABASE clv_binary"
psql_q -d clv_binary -c "CREATE EXTENSION clv_ext"
"$CLV_PY" "$ROOT/scripts/binary_client.py" --dsn "host=$PGHOST port=$PGPORT dbname=clv_binary user=postgres" "$@"
