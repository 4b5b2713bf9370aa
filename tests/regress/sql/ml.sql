-- Issue 9: supervised CLV and churn models. Features and labels equal an independent pandas
-- computation (tests/data/ml/cdnow_features.csv); OLS, ridge and logistic coefficients equal
-- scikit-learn's; tree methods land within a few percent of scikit-learn's / XGBoost's holdout
-- error (tests/data/ml/sklearn_reference.json); models are deterministic, storable and cached.
SET extra_float_digits = 0;
-- Its own schema: later tests create tables of the same names.
CREATE SCHEMA ml_test;
SET search_path = ml_test, public;
\getenv data CLV_TEST_DATA
\set raw :data '/cdnow/CDNOW_sample.txt'
\set pandas :data '/ml/cdnow_features.csv'
\set reference_file :data '/ml/sklearn_reference.json'
\set binary_file :data '/ml_models.bin'
CREATE TABLE cdnow_raw (line text);
COPY cdnow_raw FROM :'raw';
-- The reference hashes the first column (the customer id) for the split.
CREATE TABLE cdnow AS
SELECT f[1]::int AS customer, to_date(f[3], 'YYYYMMDD') AS ts, f[5]::float8 AS amount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_raw) q;
CREATE TABLE reference AS SELECT pg_read_file(:'reference_file')::jsonb AS r;

-- 1. Features and labels, one pass (the four aggregates share one state per customer).
CREATE TABLE ds AS
SELECT customer, customer_features(ts, amount, '1997-09-30', '1998-06-30') AS features,
       holdout_spend(ts, amount, '1997-09-30', '1998-06-30') AS spend,
       holdout_purchases(ts, amount, '1997-09-30', '1998-06-30') AS purchases,
       churned_in_holdout(ts, amount, '1997-09-30', '1998-06-30') AS churned,
       clv_in_training_set(customer::bigint, 0) AS train
FROM cdnow GROUP BY customer;
SELECT customer_feature_names();
SELECT * FROM ds WHERE customer = 4;
CREATE TABLE pandas (customer int, f1 float8, f2 float8, f3 float8, f4 float8, f5 float8, f6 float8, f7 float8,
    f8 float8, f9 float8, f10 float8, f11 float8, f12 float8, f13 float8, f14 float8, f15 float8, f16 float8,
    f17 float8, f18 float8, spend float8, purchases int, churned boolean, train boolean);
COPY pandas FROM :'pandas' (FORMAT csv, HEADER);
SELECT count(*) AS customers,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM unnest(d.features, ARRAY[p.f1, p.f2, p.f3, p.f4, p.f5, p.f6, p.f7, p.f8, p.f9, p.f10, p.f11, p.f12,
                                                  p.f13, p.f14, p.f15, p.f16, p.f17, p.f18]) u(a, b)
           WHERE abs(a - b) > 1e-9 * greatest(abs(b), 1))) AS feature_mismatches,
       count(*) FILTER (WHERE abs(d.spend - p.spend) > 1e-9 OR d.purchases <> p.purchases OR d.churned <> p.churned) AS label_mismatches,
       count(*) FILTER (WHERE d.train <> p.train) AS split_mismatches,
       count(*) FILTER (WHERE d.train) AS training
FROM ds d JOIN pandas p USING (customer);
-- A customer whose first purchase is after the calibration end has no features or labels.
SELECT customer_features(d, 10, '2024-01-31', '2024-03-31') AS features, holdout_spend(d, 10, '2024-01-31', '2024-03-31') AS spend
FROM (VALUES ('2024-02-10'::date)) v(d);
-- Features only (no holdout): the three-argument form.
SELECT customer_features(ts, amount, '1997-09-30') = (SELECT features FROM ds WHERE customer = 4) AS same
FROM cdnow WHERE customer = 4;

-- 2. Linear models against scikit-learn: OLS on the 15 full-rank features (coefficients and
-- standard errors to 1e-8), ridge on all 18 (to 1e-8 of the largest coefficient), logistic (1e-5).
CREATE TABLE full_rank AS
SELECT array_agg(n ORDER BY n) AS names, array_agg(i ORDER BY n) AS idx
FROM (SELECT jsonb_array_elements_text(r->'ols_full_rank'->'features') AS n FROM reference) q
JOIN unnest(customer_feature_names()) WITH ORDINALITY f(n2, i) ON f.n2 = q.n;
CREATE TABLE linear_models AS
SELECT ml_regression_fit((SELECT array_agg(features[i]) FROM unnest(full_rank.idx) i), spend, 'linear',
                         jsonb_build_object('feature_names', full_rank.names)) AS ols,
       ml_regression_fit(features, spend, 'linear', jsonb_build_object('alpha', 10, 'feature_names', customer_feature_names())) AS ridge,
       ml_classifier_fit(features, churned, 'logistic', jsonb_build_object('feature_names', customer_feature_names())) AS logistic
FROM ds, full_rank WHERE train GROUP BY full_rank.names, full_rank.idx;
SELECT count(*) AS terms,
       max(abs(c.coefficient - coalesce(r->'ols_full_rank'->'coefficients'->>c.term, r->'ols_full_rank'->>'intercept')::float8)
           / abs(coalesce(r->'ols_full_rank'->'coefficients'->>c.term, r->'ols_full_rank'->>'intercept')::float8)) < 1e-8 AS ols_coefficients_agree,
       max(abs(c.standard_error - coalesce(r->'ols_full_rank'->'se_coefficients'->>c.term, r->'ols_full_rank'->>'se_intercept')::float8)
           / coalesce(r->'ols_full_rank'->'se_coefficients'->>c.term, r->'ols_full_rank'->>'se_intercept')::float8) < 1e-8 AS ols_standard_errors_agree
FROM linear_models, reference, ml_coefficients(ols) c;
WITH scale AS (SELECT max(abs(v::float8)) AS s FROM reference, jsonb_each_text(r->'ridge'->'coefficients') e(k, v))
SELECT count(*) AS terms,
       max(abs(c.coefficient - coalesce(r->'ridge'->'coefficients'->>c.term, r->'ridge'->>'intercept')::float8))
           < 1e-8 * max(scale.s) AS ridge_agrees,
       bool_and(c.standard_error IS NULL) AS ridge_has_no_standard_errors
FROM linear_models, reference, scale, ml_coefficients(ridge) c;
SELECT count(*) AS terms,
       max(abs(c.coefficient - coalesce(r->'logistic'->'coefficients'->>c.term, r->'logistic'->>'intercept')::float8)
           / greatest(abs(coalesce(r->'logistic'->'coefficients'->>c.term, r->'logistic'->>'intercept')::float8), 1)) < 1e-5 AS logistic_agrees,
       bool_and(c.standard_error > 0) AS logistic_has_standard_errors
FROM linear_models, reference, ml_coefficients(logistic) c;
-- OLS on all 18 features: they are collinear (days_since_last_purchase = T - recency).
SELECT ml_regression_fit(features, spend, 'linear', jsonb_build_object('feature_names', customer_feature_names())) FROM ds WHERE train;

-- 3. Every method: test-set error within a few percent of scikit-learn's / XGBoost's.
CREATE TABLE models AS
SELECT m.method, 'regression' AS task, ml_regression_fit(features, spend, m.method, jsonb_build_object('feature_names', customer_feature_names())) AS model
FROM ds, (VALUES ('tweedie'), ('decision_tree'), ('random_forest'), ('gradient_boosting')) m(method) WHERE train GROUP BY m.method
UNION ALL
SELECT m.method, 'churn', ml_classifier_fit(features, churned, m.method)
FROM ds, (VALUES ('logistic'), ('decision_tree'), ('random_forest'), ('gradient_boosting')) m(method) WHERE train GROUP BY m.method;
SELECT method, task,
       round(((regression_metrics(ml_predict(model, features), spend) FILTER (WHERE task = 'regression'))->>'rmse')::numeric, 2) AS rmse,
       round(((classification_metrics(ml_predict_probability(model, features), churned) FILTER (WHERE task = 'churn'))->>'auc')::numeric, 3) AS auc
FROM models, ds WHERE NOT train GROUP BY method, task ORDER BY task, method;
WITH ours AS (
    SELECT method, task, (regression_metrics(ml_predict(model, features), spend) FILTER (WHERE task = 'regression'))->>'rmse' AS rmse,
           (classification_metrics(ml_predict(model, features), churned) FILTER (WHERE task = 'churn'))->>'auc' AS auc
    FROM models, ds WHERE NOT train GROUP BY method, task)
SELECT method, task,
       CASE task WHEN 'regression' THEN abs(rmse::float8 / (CASE method WHEN 'tweedie' THEN r->'tweedie'->>'test_rmse'
                                                              WHEN 'decision_tree' THEN r->'decision_tree'->'regressor'->>'test_rmse'
                                                              WHEN 'random_forest' THEN r->'random_forest'->'over_random_state_1_to_10'->>'test_rmse_mean'
                                                              ELSE r->'xgboost'->'regressor'->>'test_rmse' END)::float8 - 1) < 0.05
                 ELSE abs(auc::float8 / (CASE method WHEN 'logistic' THEN r->'logistic'->>'test_auc'
                                                     WHEN 'decision_tree' THEN r->'decision_tree'->'classifier'->>'test_auc'
                                                     WHEN 'random_forest' THEN r->'random_forest'->'classifier'->>'test_auc'
                                                     ELSE r->'xgboost'->'classifier'->>'test_auc' END)::float8 - 1) < 0.04 END AS within_a_few_percent
FROM ours, reference ORDER BY task, method;

-- 4. Deterministic: a parallel plan (workers collect parts, combine concatenates) gives the same
-- model bit for bit as a serial one.
CREATE TABLE ds_big AS SELECT d.* FROM ds d, generate_series(1, 20);
ANALYZE ds_big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial AS SELECT ml_regression_fit(features, spend, 'gradient_boosting', '{"n_trees": 20}') AS m FROM ds_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT ml_regression_fit(features, spend, 'gradient_boosting', '{"n_trees": 20}') FROM ds_big;
SELECT md5(ml_regression_fit(features, spend, 'gradient_boosting', '{"n_trees": 20}')::text) = (SELECT md5(m::text) FROM serial) AS parallel_equals_serial
FROM ds_big;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;

-- 5. Stored and reloaded: text and binary (COPY BINARY uses send/receive) give the same model
-- and the same predictions; scoring with models alternating row by row (the per-call-site cache
-- holds several) equals scoring one model at a time.
SELECT count(*) AS models, bool_and(model::text::ml_model::text = model::text) AS text_round_trip FROM models;
COPY (SELECT method, task, model FROM models) TO :'binary_file' (FORMAT binary);
CREATE TABLE reloaded (method text, task text, model ml_model);
COPY reloaded FROM :'binary_file' (FORMAT binary);
SELECT count(*) AS predictions, count(*) FILTER (WHERE ml_predict(m.model, d.features) <> ml_predict(r.model, d.features)) AS differences
FROM models m JOIN reloaded r USING (method, task), ds d;
SELECT method, task, ml_model_summary(model) - 'training_metrics' - 'feature_importance' - 'coefficients' AS summary
FROM models WHERE method IN ('random_forest', 'logistic') ORDER BY task;
SELECT feature, rank FROM ml_feature_importance((SELECT model FROM models WHERE method = 'gradient_boosting' AND task = 'regression')) WHERE rank <= 3;

-- 6. Bad input: SQLSTATEs.
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE q INTO v;
    RETURN coalesce(v, 'NULL');
EXCEPTION WHEN OTHERS OR query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT q, pg_temp.outcome(q) FROM (VALUES
    ($$SELECT ml_predict(model, ARRAY[1, 2]) FROM models WHERE method = 'tweedie'$$),
    ($$SELECT ml_predict(model, array_fill(1.0::float8, ARRAY[17]) || 'NaN'::float8) FROM models WHERE method = 'tweedie'$$),
    ($$SELECT ml_predict(model, array_fill(1.0::float8, ARRAY[17]) || NULL::float8) FROM models WHERE method = 'tweedie'$$),
    ($$SELECT ml_predict(model, array_fill(1e300::float8, ARRAY[18])) FROM models WHERE method = 'tweedie'$$),
    ($$SELECT ml_predict_probability(model, features) FROM models, ds WHERE method = 'tweedie' LIMIT 1$$),
    ($$SELECT ml_regression_fit(features, spend, 'logistic') FROM ds$$),
    ($$SELECT ml_classifier_fit(features, churned, 'linear') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'random_forest', '{"n_trees": 0}') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'random_forest', '{"depth": 3}') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'random_forest', '[1]') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'random_forest', NULL) FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'random_forest', '{"feature_names": ["a"]}') FROM ds$$),
    ($$SELECT ml_regression_fit(ARRAY[customer, 'Infinity'], spend, 'linear') FROM ds$$),
    ($$SELECT ml_regression_fit(CASE WHEN customer % 2 = 0 THEN ARRAY[1.0, 2.0] ELSE ARRAY[1.0] END, spend, 'linear') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, CASE WHEN customer % 2 = 0 THEN 'linear' ELSE 'tweedie' END) FROM ds$$),
    ($$SELECT ml_classifier_fit(features, true, 'logistic') FROM ds$$),
    ($$SELECT ml_regression_fit(features, -spend - 1, 'tweedie') FROM ds$$),
    ($$SELECT ml_regression_fit(features, spend, 'linear') FROM ds WHERE false$$),
    ($$SELECT '{"version": 2, "model": "ml"}'::ml_model::text$$),
    ($$SELECT '{"version": 1}'::ml_model::text$$),
    ($$SELECT customer_features(ts, amount, 'infinity', '1998-06-30') FROM cdnow$$),
    ($$SELECT customer_features(ts, amount, '1998-06-30', '1997-01-01') FROM cdnow$$),
    ($$SELECT regression_metrics(x, 'NaN') FROM generate_series(1, 3) x$$),
    ($$SELECT classification_metrics(1.5, true)$$)
) v(q);

-- 7. Metrics on a hand example (scikit-learn's roc_auc_score example: AUC 0.75).
SELECT classification_metrics(p, y) FROM (VALUES (0.1, false), (0.4, false), (0.35, true), (0.8, true)) v(p, y);
SELECT regression_metrics(p, a) FROM (VALUES (3, 2), (1, 0), (2, 3), (0, 1), (4, 4)) v(p, a);

-- 8. Training stops at statement_timeout (it runs on a thread the backend watches every 10 ms).
CREATE TABLE t0 AS SELECT clock_timestamp() AS t;
SET statement_timeout = '300ms';
SELECT ml_regression_fit(features, spend, 'gradient_boosting', '{"n_trees": 3000, "max_depth": 8}') IS NOT NULL FROM ds_big;
RESET statement_timeout;
SELECT clock_timestamp() - t < interval '5 s' AS cancelled_promptly FROM t0;
-- And the next training runs normally (it waits for the abandoned worker first).
SELECT ml_regression_fit(features, spend, 'decision_tree') IS NOT NULL AS trains_again FROM ds WHERE train;

-- 9. ML or BTYD? The comparison on CDNOW (calibration to 1997-09-30, holdout to 1998-06-30),
-- hyperparameters tuned on the training customers only.
SELECT model, target, test_customers, round(rmse::numeric, 2) AS rmse, round(r2::numeric, 3) AS r2,
       round(normalized_gini::numeric, 3) AS gini, round(top_20_capture::numeric, 3) AS top_20,
       round(tier_hit_rate_top_20::numeric, 3) AS hit_top_20, round(mean_predicted::numeric, 2) AS mean_predicted,
       round(mean_actual::numeric, 2) AS mean_actual, round(auc::numeric, 3) AS auc, round(log_loss::numeric, 3) AS log_loss,
       round(brier::numeric, 3) AS brier, fit_seconds >= 0 AND score_seconds >= 0 AS timed, hyperparameters
FROM clv_ml_comparison('cdnow', 'customer', 'ts', 'amount', '1997-09-30', '1998-06-30');

-- 10. The pipeline with an ML CLV column and a churn probability.
SET client_min_messages = warning;
SELECT customers FROM clv_pipeline('cdnow', 'customer', 'ts', 'amount', '1998-06-30', horizon_months => 6,
                                   clv_method => 'gradient_boosting', churn_method => 'logistic', target_schema => 'clv_ml');
RESET client_min_messages;
SELECT clv_method, clv_model IS NOT NULL AS has_clv_model, churn_model IS NOT NULL AS has_churn_model,
       ml_validation->'trained_on' AS trained_on, (ml_validation->'clv'->>'n')::int AS validated_on,
       (ml_validation->'churn'->>'auc')::float8 > 0.7 AS churn_auc_above_0_7
FROM clv_ml.clv_models;
SELECT count(*) AS customers, count(clv) AS with_clv, count(churn_probability) AS with_churn_probability,
       bool_and(churn_probability BETWEEN 0 AND 1) AS probabilities
FROM clv_ml.clv_customers;
SELECT pg_temp.outcome($$SELECT run_id FROM clv_pipeline('cdnow', 'customer', 'ts', 'amount', '1998-06-30', clv_method => 'svm')$$);

SET client_min_messages = warning;
DROP SCHEMA ml_test CASCADE;
DROP SCHEMA clv_ml CASCADE;
RESET client_min_messages;
RESET search_path;
