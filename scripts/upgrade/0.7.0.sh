#!/usr/bin/env bash
# Regenerates sql/clv_ext--0.6.0--0.7.0.sql from a 0.7.0 install script (after `cargo pgrx install`).
cd "$(dirname "$0")/../.."
INSTALL=${1:-$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension/clv_ext--0.7.0.sql}
python3 scripts/make-upgrade.py 0.6.0 0.7.0 "$INSTALL" \
    --header "clv_ext 0.6.0 -> 0.7.0 (issue 12): charts as SVG (src/charts_sql.rs: frequency_recency_chart,
p_alive_chart, period_transactions[_chart], p_alive_history[_chart], calibration_vs_holdout_chart,
clv_concentration_chart, tier_migration_chart) and the HTML report clv_report (sql/report.sql).
cohort_of names the extension schema in its body (PostgreSQL 17+ builds materialized views with a
restricted search_path) and clv_pipeline_lap rounds a numeric (PostgreSQL 13's extract returns
double precision): cohorts.sql and pipeline.sql are re-created with CREATE OR REPLACE; nothing is
dropped." \
    --entity '-- src/charts_sql.rs' \
    --replace-sql sql/pipeline.sql --replace-sql sql/cohorts.sql --sql sql/report.sql "${@:2}" > sql/clv_ext--0.6.0--0.7.0.sql
