-- Features, ML, clustering and metrics aggregates on Citus: customer_features and the holdout
-- labels per customer from transactions distributed by order; kmeans_fit, kmeans_k_sweep,
-- dbscan_fit, hierarchical_fit, pca_fit, ml_regression_fit, ml_classifier_fit, prediction_errors,
-- regression_metrics and classification_metrics over a distributed per-customer table. Each gives
-- what the same query gives on a plain copy on the coordinator (models and metrics as JSON, numbers
-- to 1e-9 relative; features to 1e-12). Helpers (citus_test.*): tests/citus/helpers.sql.
SET citus.shard_count = 8;

-- 1,000 customers, 1 to 10 purchases each between 2022-01-01 and 2023-12-31 (first purchase day,
-- active span, days and amounts from md5 of the customer and purchase numbers: no random()).
CREATE TABLE ml_tx_local AS
SELECT (c * 100 + k)::bigint AS order_id, c AS customer_id,
       date '2022-01-01' + s + CASE WHEN k = 0 THEN 0 ELSE floor(l * citus_test.u(c, 10 + k))::int END AS ts,
       round((5 + 95 * citus_test.u(c, 1000 + k) ^ 2)::numeric, 2)::float8 AS amount
FROM (SELECT c, floor(600 * citus_test.u(c, 0))::int AS s, 1 + floor(10 * citus_test.u(c, 2) ^ 2)::int AS n
      FROM generate_series(1, 1000) c) a
CROSS JOIN LATERAL (SELECT floor((730 - a.s) * citus_test.u(a.c, 1))::int AS l) b
CROSS JOIN LATERAL generate_series(0, a.n - 1) k;
CREATE TABLE ml_tx (LIKE ml_tx_local);
SELECT create_distributed_table('ml_tx', 'order_id');
INSERT INTO ml_tx SELECT * FROM ml_tx_local;
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers, min(ts), max(ts) FROM ml_tx;

-- Features (as of 2023-06-30) and labels (holdout to 2023-12-31) per customer.
SELECT * FROM citus_test.plan_of($$SELECT customer_id, customer_features(ts, amount, '2023-06-30', '2023-12-31') FROM ml_tx GROUP BY customer_id$$);
SELECT citus_test.compare(replace(q, 'ml_tx_local', 'ml_tx'), q, 1e-12) AS features_and_labels FROM (VALUES (
    $$SELECT customer_id, jsonb_build_array(customer_features(ts, amount, '2023-06-30', '2023-12-31'),
                                            holdout_spend(ts, amount, '2023-06-30', '2023-12-31'),
                                            holdout_purchases(ts, amount, '2023-06-30', '2023-12-31'),
                                            churned_in_holdout(ts, amount, '2023-06-30', '2023-12-31'))
      FROM ml_tx_local GROUP BY customer_id$$)) v(q);
SELECT citus_test.compare(replace(q, 'ml_tx_local', 'ml_tx'), q, 1e-12) AS features_today FROM (VALUES (
    $$SELECT customer_id, customer_features(ts, amount, '2023-12-31') FROM ml_tx_local GROUP BY customer_id$$)) v(q);

-- The per-customer data set: built on the coordinator from the distributed transactions into a
-- table distributed by customer, and from the local copy.
CREATE TABLE ds (customer_id integer, features float8[], spend float8, churned boolean);
SELECT create_distributed_table('ds', 'customer_id');
INSERT INTO ds SELECT customer_id, customer_features(ts, amount, '2023-06-30', '2023-12-31'),
                      holdout_spend(ts, amount, '2023-06-30', '2023-12-31'), churned_in_holdout(ts, amount, '2023-06-30', '2023-12-31')
FROM ml_tx GROUP BY customer_id;
CREATE TABLE ds_local AS SELECT customer_id, customer_features(ts, amount, '2023-06-30', '2023-12-31') AS features,
                                holdout_spend(ts, amount, '2023-06-30', '2023-12-31') AS spend,
                                churned_in_holdout(ts, amount, '2023-06-30', '2023-12-31') AS churned
FROM ml_tx_local GROUP BY customer_id;
SELECT count(*) AS customers, count(features) AS with_features, count(*) FILTER (WHERE churned) AS churned FROM ds;

-- How Citus plans each aggregate over the distributed data set (a global aggregate).
SELECT f, p.* FROM (VALUES
    ('kmeans_fit', $$SELECT kmeans_fit(features, 3, 42) FROM ds$$),
    ('kmeans_k_sweep', $$SELECT kmeans_k_sweep(features[1:4], 2, 4, 1) FROM ds$$),
    ('dbscan_fit', $$SELECT dbscan_fit(features[1:4], 0.5, 5) FROM ds$$),
    ('hierarchical_fit', $$SELECT hierarchical_fit(features[1:4], 3) FROM ds$$),
    ('pca_fit', $$SELECT pca_fit(features, 2) FROM ds$$),
    ('ml_regression_fit', $$SELECT ml_regression_fit(features, spend, 'linear', '{"alpha": 1.0}') FROM ds$$),
    ('ml_classifier_fit', $$SELECT ml_classifier_fit(features, churned, 'logistic') FROM ds$$),
    ('prediction_errors', $$SELECT prediction_errors(features[1], spend) FROM ds$$),
    ('regression_metrics', $$SELECT regression_metrics(features[1], spend) FROM ds$$),
    ('classification_metrics', $$SELECT classification_metrics(1 / (1 + features[5] / 100), churned) FROM ds$$)
) v(f, q), LATERAL citus_test.plan_of(q) p ORDER BY f;

-- Models: distributed = local.
SELECT f, citus_test.compare(replace(q, 'FROM ds_local', 'FROM ds'), q, 1e-9) AS distributed_vs_local FROM (VALUES
    ('kmeans_fit', $$SELECT 0, kmeans_fit(features, 3, 42)::jsonb FROM ds_local$$),
    ('kmeans_fit value feature', $$SELECT 0, kmeans_fit(ARRAY[features[2], features[1], features[7]], 4, 7, 3)::jsonb FROM ds_local$$),
    ('kmeans_k_sweep', $$SELECT 0, kmeans_k_sweep(features[1:4], 2, 4, 1) FROM ds_local$$),
    ('dbscan_fit', $$SELECT 0, dbscan_fit(features[1:4], 0.5, 5)::jsonb FROM ds_local$$),
    ('hierarchical_fit', $$SELECT 0, hierarchical_fit(features[1:4], 3)::jsonb FROM ds_local$$),
    ('pca_fit', $$SELECT 0, pca_fit(features, 2)::jsonb FROM ds_local$$),
    ('ml_regression_fit linear', $$SELECT 0, ml_regression_fit(features, spend, 'linear', '{"alpha": 1.0}')::jsonb FROM ds_local$$),
    ('ml_regression_fit decision_tree', $$SELECT 0, ml_regression_fit(features, spend, 'decision_tree', '{"max_depth": 3}')::jsonb FROM ds_local$$),
    ('ml_classifier_fit logistic', $$SELECT 0, ml_classifier_fit(features, churned, 'logistic')::jsonb FROM ds_local$$),
    ('pca_fit per churned', $$SELECT churned, pca_fit(features[1:4], 2)::jsonb FROM ds_local GROUP BY churned$$)
) v(f, q) ORDER BY f;

-- Models trained on 80% of the customers (clv_in_training_set), in a reference table, score the
-- rows on the workers; the metrics aggregate the scores of the other 20%.
CREATE TABLE ml_models (id integer PRIMARY KEY, clv ml_model, churn ml_model, clusters kmeans_model, pca pca_model);
SELECT create_reference_table('ml_models');
INSERT INTO ml_models SELECT 1, ml_regression_fit(features, spend, 'linear', '{"alpha": 1.0}'),
                             ml_classifier_fit(features, churned, 'logistic'), kmeans_fit(features, 3, 42), pca_fit(features, 2)
FROM ds_local WHERE clv_in_training_set(customer_id, 1);
CREATE TABLE ml_models_local AS SELECT * FROM ml_models;
SELECT citus_test.compare(
    $$SELECT d.customer_id, jsonb_build_array(ml_predict(m.clv, d.features), ml_predict_probability(m.churn, d.features),
                                              kmeans_assign(m.clusters, d.features), pca_project(m.pca, d.features))
      FROM ds d CROSS JOIN ml_models m$$,
    $$SELECT d.customer_id, jsonb_build_array(ml_predict(m.clv, d.features), ml_predict_probability(m.churn, d.features),
                                              kmeans_assign(m.clusters, d.features), pca_project(m.pca, d.features))
      FROM ds_local d CROSS JOIN ml_models_local m$$, 0) AS scores_on_workers;
SELECT f, citus_test.compare(replace(replace(q, 'FROM ds_local', 'FROM ds'), 'ml_models_local', 'ml_models'), q, 1e-9) AS distributed_vs_local FROM (VALUES
    ('prediction_errors', $$SELECT 0, prediction_errors(ml_predict(m.clv, d.features), d.spend) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$),
    ('regression_metrics', $$SELECT 0, regression_metrics(ml_predict(m.clv, d.features), d.spend) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$),
    ('classification_metrics', $$SELECT 0, classification_metrics(ml_predict_probability(m.churn, d.features), d.churned) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$),
    ('regression_metrics per cluster', $$SELECT kmeans_assign(m.clusters, d.features), regression_metrics(ml_predict(m.clv, d.features), d.spend) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1) GROUP BY 1$$)
) v(f, q) ORDER BY f;

-- Without coordinator aggregation every aggregate must be pushed down as partial states.
SET citus.coordinator_aggregation_strategy = 'disabled';
SELECT f, citus_test.compare(replace(replace(replace(q, 'FROM ds_local', 'FROM ds'), 'ml_models_local', 'ml_models'), 'ml_tx_local', 'ml_tx'), q, 1e-9) AS disabled FROM (VALUES
    ('customer_features', $$SELECT customer_id, customer_features(ts, amount, '2023-06-30', '2023-12-31') FROM ml_tx_local GROUP BY customer_id$$),
    ('kmeans_fit', $$SELECT 0, kmeans_fit(features, 3, 42)::jsonb FROM ds_local$$),
    ('kmeans_k_sweep', $$SELECT 0, kmeans_k_sweep(features[1:4], 2, 4, 1) FROM ds_local$$),
    ('dbscan_fit', $$SELECT 0, dbscan_fit(features[1:4], 0.5, 5)::jsonb FROM ds_local$$),
    ('hierarchical_fit', $$SELECT 0, hierarchical_fit(features[1:4], 3)::jsonb FROM ds_local$$),
    ('pca_fit', $$SELECT 0, pca_fit(features, 2)::jsonb FROM ds_local$$),
    ('ml_regression_fit', $$SELECT 0, ml_regression_fit(features, spend, 'linear', '{"alpha": 1.0}')::jsonb FROM ds_local$$),
    ('ml_classifier_fit', $$SELECT 0, ml_classifier_fit(features, churned, 'logistic')::jsonb FROM ds_local$$),
    ('prediction_errors', $$SELECT 0, prediction_errors(ml_predict(m.clv, d.features), d.spend) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$),
    ('regression_metrics', $$SELECT 0, regression_metrics(ml_predict(m.clv, d.features), d.spend) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$),
    ('classification_metrics', $$SELECT 0, classification_metrics(ml_predict_probability(m.churn, d.features), d.churned) FROM ds_local d, ml_models_local m WHERE NOT clv_in_training_set(d.customer_id, 1)$$)
) v(f, q) ORDER BY f;
RESET citus.coordinator_aggregation_strategy;
