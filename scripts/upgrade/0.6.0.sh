#!/usr/bin/env bash
# Regenerates sql/clv_ext--0.5.0--0.6.0.sql from a 0.6.0 install script (after `cargo pgrx install`).
cd "$(dirname "$0")/../.."
INSTALL=${1:-$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension/clv_ext--0.6.0.sql}
python3 scripts/make-upgrade.py 0.5.0 0.6.0 "$INSTALL" \
    --header "clv_ext 0.5.0 -> 0.6.0 (issue 10): every aggregate's state becomes the real type
clv_aggregate_state (an expanded object while the aggregate runs), so Citus partially aggregates
them on its workers; rfm_as_of and clv_pipeline_refresh for incremental refresh (docs/refresh.md). The aggregates and their support functions
are dropped and re-created (a view that uses one of them must be dropped first: see docs/citus.md).
scripts/upgrade/0.5.0-aggregates.sql lists 0.5.0's internal-state aggregates and support functions
(queried from a 0.5.0 install's catalog)." \
    --drop scripts/upgrade/0.5.0-aggregates.sql \
    --entity clv_aggregate_state --entity '"rfm_as_of"' \
    --skip "CREATE CAST (ml_model AS jsonb)" --skip "CREATE CAST (kmeans_model AS jsonb)" \
    --skip "CREATE CAST (cluster_model AS jsonb)" --skip "CREATE CAST (pca_model AS jsonb)" \
    --replace-sql sql/pipeline.sql "${@:2}" > sql/clv_ext--0.5.0--0.6.0.sql
