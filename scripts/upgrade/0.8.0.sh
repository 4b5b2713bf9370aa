#!/usr/bin/env bash
# Regenerates sql/clv_ext--0.7.0--0.8.0.sql from a 0.8.0 install script (after `cargo pgrx install`).
cd "$(dirname "$0")/../.."
INSTALL=${1:-$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension/clv_ext--0.8.0.sql}
python3 scripts/make-upgrade.py 0.7.0 0.8.0 "$INSTALL" \
    --header "clv_ext 0.7.0 -> 0.8.0 (issue 10): the pipeline loads clv_rfm_state and clv_rfm without their
primary keys and adds them afterwards (clv_load_then_key), appends the tier history in key order,
and with SET clv.refresh_concurrently = off rebuilds clv_customers instead of diffing it
(clv_setting_on); clv_report computes the holdout predictions once for its chart and metrics
(clv_holdout_metrics_query, clv_calibration_vs_holdout_query); a run that must re-create
clv_customers stops with 2BP01 when objects of the user's depend on it instead of dropping them
with CASCADE. pipeline.sql and report.sql are
re-created with CREATE OR REPLACE; nothing is dropped." \
    --replace-sql sql/pipeline.sql --replace-sql sql/report.sql "${@:2}" > sql/clv_ext--0.7.0--0.8.0.sql
