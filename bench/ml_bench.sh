#!/usr/bin/env bash
# ML benchmark (issue 9): training and scoring in SQL (clv_ext) against scikit-learn / xgboost on the
# same rows with the same hyperparameters and the same cores, in one run, ratios side by side.
#   bench/ml_bench.sh                        # 1,000,000 customers x 12 features
#   ROWS=20000 bench/ml_bench.sh
#   FOREST_ROWS=200000 bench/ml_bench.sh     # a smaller training size for one method (both sides)
# Per-method training sizes (default ROWS; the first n rows by id, on both sides): LINEAR_ROWS,
# TWEEDIE_ROWS, LOGISTIC_ROWS, TREE_ROWS, FOREST_ROWS, BOOST_ROWS (both gradient boostings).
# TRAIN_REPEAT (default 1) and SCORE_REPEAT (default 3): best of how many runs.
# Uses a throwaway cluster on CLV_PORT (default 55460), or the server named by CLV_DATABASE_URL / PG*.
# SKIP_INSTALL=1 uses the installed extension (and Debian packages) as they are.
#
# clv_ext trains single-threaded in the backend, so Python gets one core too: n_jobs=1 and a
# threadpoolctl limit of 1 (BLAS, OpenMP); xgboost is also timed with n_jobs=2 (the machine's cores).
# SQL times are psql's \timing of `CREATE TABLE ... AS SELECT ml_..._fit(...) FROM ml_bench` in a
# fresh backend with the library loaded and parallel query off; they include reading the rows (the
# floor line gives that alone), Python's times start from numpy arrays in memory.
source "$(dirname "$0")/../scripts/lib.sh"
ROWS=${ROWS:-1000000}
TRAIN_REPEAT=${TRAIN_REPEAT:-1}
SCORE_REPEAT=${SCORE_REPEAT:-3}
QUALITY_ROWS=$(( ROWS < 100000 ? ROWS : 100000 ))
rows_for() { local n=${!1:-$ROWS}; [ "$n" -le "$ROWS" ] || n=$ROWS; echo "$n"; }
LINEAR_ROWS=$(rows_for LINEAR_ROWS); TWEEDIE_ROWS=$(rows_for TWEEDIE_ROWS); LOGISTIC_ROWS=$(rows_for LOGISTIC_ROWS)
TREE_ROWS=$(rows_for TREE_ROWS); FOREST_ROWS=$(rows_for FOREST_ROWS); BOOST_ROWS=$(rows_for BOOST_ROWS)

# SKIP_INSTALL=1 also skips ensure_setup (whose toolchain checks run cargo): the extension is there.
[ -n "${SKIP_INSTALL:-}" ] || { ensure_setup; install_extension; }

log "Python venv (scikit-learn, xgboost, psycopg)"
VENV=${CLV_ML_VENV:-$BUILD/ml-venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sklearn, xgboost, pandas, threadpoolctl' 2>/dev/null; then
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --only-binary=:all: -r "$ROOT/tests/data/ml/requirements.txt"
fi
if ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
    # The same client as the reliability scripts (scripts/pyenv.sh).
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet --only-binary=:all: "psycopg[binary]==3.2.13"
fi
PY=$VENV/bin/python

CLV_PORT=${CLV_PORT:-55460} connect_or_start bench-ml-cluster
psql_q -c "CREATE EXTENSION IF NOT EXISTS clv_ext"
OUT=$(pg_dir "$BUILD/bench-out")/ml
mkdir -p "$OUT"

log "generating $ROWS customers x 12 features (seeded) into ml_bench"
# Customer-like features: order count, days since last order, tenure, mean order value, total,
# visits, email open rate, support tickets, discount share, return share, age, region code.
# spend: zero-inflated (whether the customer buys, a logistic in the features; how much, a
# lognormal around the mean order value); churned: a logistic in the features.
psql_q <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS ml_bench;
SELECT setseed(0.25) AS seeded \gset
CREATE TABLE ml_bench AS
SELECT id, ARRAY[f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12]::float8[] AS features,
       CASE WHEN u14 < 1 / (1 + exp(-(-0.8 + 0.5 * ln(1 + f1) - 0.006 * f2 + 0.08 * f6 + 1.2 * f7 - 0.3 * f8
                                      + 0.4 * (f12 = 2)::int)))
            THEN round((f4 * exp(0.35 * sqrt(-2 * ln(u12)) * cos(2 * pi() * u13)) * (1 + 0.1 * f1) * (1 + f9))::numeric, 2)::float8
            ELSE 0 END AS spend,
       u15 < 1 / (1 + exp(-(-0.5 + 0.008 * f2 - 0.35 * ln(1 + f1) - 1.0 * f7 + 0.4 * f8 + 2 * f10
                            - 0.02 * (f11 - 40)))) AS churned
FROM (SELECT id, u12, u13, u14, u15,
             f1, f2, f3, f4, f1 * f4 AS f5, floor(-ln(u6) * (2 + f1 / 2)) AS f6, f7, f8, f9, f10, f11, f12
      FROM (SELECT id, u6, u12, u13, u14, u15,
                   floor(-ln(u1) * 4) AS f1,
                   u2 * 365 AS f2,
                   u2 * 365 + u3 * 1000 AS f3,
                   exp(3.5 + 0.6 * sqrt(-2 * ln(u4)) * cos(2 * pi() * u5)) AS f4,
                   u7 AS f7,
                   floor(-ln(u8) * 0.7) AS f8,
                   u9 * u9 AS f9,
                   0.3 * u10 AS f10,
                   40 + 12 * sqrt(-2 * ln(u4)) * sin(2 * pi() * u5) AS f11,
                   floor(u11 * 5) AS f12
            FROM (SELECT id, 1 - random() AS u1, 1 - random() AS u2, 1 - random() AS u3, 1 - random() AS u4,
                         1 - random() AS u5, 1 - random() AS u6, 1 - random() AS u7, 1 - random() AS u8,
                         1 - random() AS u9, 1 - random() AS u10, 1 - random() AS u11, 1 - random() AS u12,
                         1 - random() AS u13, 1 - random() AS u14, 1 - random() AS u15
                  FROM generate_series(1::bigint, $ROWS) id OFFSET 0) u) a) b;
ALTER TABLE ml_bench ADD PRIMARY KEY (id);
VACUUM ANALYZE ml_bench;
\copy (SELECT features[1], features[2], features[3], features[4], features[5], features[6], features[7], features[8], features[9], features[10], features[11], features[12], spend, churned::int FROM ml_bench ORDER BY id) TO '$OUT/ml_bench.csv' CSV
SQL
psql_q -Atc "SELECT format('%s rows: spend > 0 %s%%, mean spend %s, churned %s%%', count(*),
                          round(100.0 * avg((spend > 0)::int), 1), round(avg(spend)::numeric, 2),
                          round(100.0 * avg(churned::int), 1)) FROM ml_bench"

# key | task | SQL method | options | label | rows
METHODS="linear|regression|linear|{\"alpha\": 0}|linear (OLS)|$LINEAR_ROWS
tweedie|regression|tweedie|{\"power\": 1.5, \"alpha\": 0.001}|tweedie (power 1.5, log link)|$TWEEDIE_ROWS
logistic|classification|logistic|{\"alpha\": 1}|logistic (C=1, standardized)|$LOGISTIC_ROWS
decision_tree|regression|decision_tree|{\"max_depth\": 6, \"min_samples_leaf\": 20}|decision_tree (depth 6)|$TREE_ROWS
random_forest|regression|random_forest|{\"n_trees\": 100, \"max_depth\": 8, \"min_samples_leaf\": 5, \"seed\": 1}|random_forest (100 x depth 8)|$FOREST_ROWS
gradient_boosting|regression|gradient_boosting|{\"n_trees\": 100, \"learning_rate\": 0.1, \"max_depth\": 4, \"l2\": 1, \"min_leaf_weight\": 1, \"seed\": 1}|gradient_boosting regression|$BOOST_ROWS
gradient_boosting_clf|classification|gradient_boosting|{\"n_trees\": 100, \"learning_rate\": 0.1, \"max_depth\": 4, \"l2\": 1, \"min_leaf_weight\": 1, \"seed\": 1}|gradient_boosting classification|$BOOST_ROWS"
SCORING="gradient_boosting gradient_boosting_clf random_forest"

# Seconds of statement $3 (psql's \timing), best of $1 runs, each in a fresh backend with the
# library loaded, parallel query off; $2 runs first, untimed.
sql_time() {
    local repeat=$1 setup=$2 sql=$3 best=999999 ms
    for _ in $(seq "$repeat"); do
        ms=$(psql_q -c "SET client_min_messages = warning" -c "LOAD 'clv_ext'" -c "SET max_parallel_workers_per_gather = 0" \
                    -c "$setup" -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
        best=$(echo "if ($ms / 1000 < $best) $ms / 1000 else $best" | bc -l)
    done
    printf '%.3f' "$best"
}

PLAN=$OUT/plan.json
{
    printf '{"csv": "%s", "rows": %s, "quality_rows": %s, "train_repeat": %s, "score_repeat": %s,\n "methods": [' \
        "$OUT/ml_bench.csv" "$ROWS" "$QUALITY_ROWS" "$TRAIN_REPEAT" "$SCORE_REPEAT"
    sep=""
    while IFS='|' read -r key task method opts label n; do
        threads2=false; [ "$method" = gradient_boosting ] && threads2=true
        printf '%s\n  {"key": "%s", "task": "%s", "method": "%s", "label": "%s", "rows": %s, "threads2": %s}' \
            "$sep" "$key" "$task" "$method" "$label" "$n" "$threads2"
        sep=","
    done <<< "$METHODS"
    printf '],\n "scoring": [%s]}\n' "$(printf '"%s",' $SCORING | sed 's/,$//')"
} > "$PLAN"

log "timing clv_ext training (best of $TRAIN_REPEAT), one backend, one core"
FLOOR=$(sql_time 3 "SELECT 1" "SELECT count(*), sum(spend), sum(churned::int), sum(features[12]) FROM ml_bench")
SQLJ="{\"floor_s\": $FLOOR, \"methods\": {"
sep=""
while IFS='|' read -r key task method opts label n; do
    if [ "$task" = regression ]; then
        fit="ml_regression_fit(features, spend, '$method', '$opts')"
        metric="regression_metrics(ml_predict(m.model, b.features), b.spend)"
    else
        fit="ml_classifier_fit(features, churned, '$method', '$opts')"
        metric="classification_metrics(ml_predict_probability(m.model, b.features), b.churned)"
    fi
    printf '%-34s %8s rows ... ' "$label" "$n" >&2
    s=$(sql_time "$TRAIN_REPEAT" "DROP TABLE IF EXISTS ml_bench_model_$key" \
        "CREATE TABLE ml_bench_model_$key AS SELECT $fit AS model FROM ml_bench WHERE id <= $n")
    echo "$s s" >&2
    q=$(psql_q -Atc "SELECT $metric FROM ml_bench b, ml_bench_model_$key m WHERE b.id <= $QUALITY_ROWS")
    SQLJ="$SQLJ$sep\"$key\": {\"fit_s\": $s, \"quality\": $q}"
    sep=", "
done <<< "$METHODS"
SQLJ="$SQLJ}, \"scoring\": {"

log "timing clv_ext scoring of every customer (best of $SCORE_REPEAT)"
sep=""
for key in $SCORING; do
    fn=ml_predict; grep -q "^$key|classification|" <<< "$METHODS" && fn=ml_predict_probability
    s=$(sql_time "$SCORE_REPEAT" "DROP TABLE IF EXISTS ml_bench_scores_$key" \
        "CREATE TABLE ml_bench_scores_$key AS SELECT b.id, $fn(m.model, b.features) AS score FROM ml_bench b, ml_bench_model_$key m")
    echo "$key: $s s" >&2
    SQLJ="$SQLJ$sep\"$key\": $s"
    sep=", "
done
echo "$SQLJ}}" > "$OUT/sql.json"

log "timing scikit-learn / xgboost on the same rows (one core; xgboost also on 2) and the export round trip"
"$PY" "$ROOT/bench/ml_bench.py" run "$PLAN" "$OUT/python.json"

# The two sides' scores of every customer should agree as closely as their models do.
for key in $SCORING; do
    psql_q -Atc "SELECT format('%s: SQL and Python scores of %s customers, correlation %s, mean %s vs %s', '$key', count(*),
                               round(corr(s.score, p.score)::numeric, 4), round(avg(s.score)::numeric, 4), round(avg(p.score)::numeric, 4))
                 FROM ml_bench_scores_$key s JOIN ml_bench_py_scores_$key p USING (id)"
done

printf '\nmachine: %s cores, %s, %s GiB; PostgreSQL %s\n' "$(nproc)" \
    "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" "$(free -g | awk '/^Mem:/ {print $2}')" \
    "$(psql_q -Atc 'SHOW server_version')"
"$PY" "$ROOT/bench/ml_bench.py" report "$PLAN" "$OUT/sql.json" "$OUT/python.json"
