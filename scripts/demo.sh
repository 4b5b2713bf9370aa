#!/usr/bin/env bash
# README command 1: set everything up (idempotent), then run the demo on a throwaway cluster
# (or on the server named by CLV_DATABASE_URL / PG* variables).
source "$(dirname "$0")/lib.sh"
ensure_setup
install_extension
connect_or_start pgdata
mkdir -p "$BUILD"
psql_q -v report_file="$BUILD/demo_report.html" -f "$ROOT/sql/demo.sql"
