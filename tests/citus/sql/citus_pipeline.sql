-- clv_pipeline on Citus: a distributed transactions table as the source (its RFM, feature and
-- discount queries run on the workers; the results land in plain tables on the coordinator) gives
-- the tables and views of the same run on a plain copy: same customers, tiers, segments and
-- clusters; CLV, P(alive) and model parameters to 1e-9 relative. Helpers: tests/citus/helpers.sql.
SET citus.shard_count = 8;

-- 1,200 customers from a seeded BG/NBD + Gamma-Gamma simulation (acquired over the first year, observed
-- for two; time in weeks from 2022-01-03 made into timestamps), a discount flag on every fifth order.
CREATE TABLE p_tx_local AS
SELECT row_number() OVER (ORDER BY customer_id, t) AS order_id, customer_id,
       timestamp '2022-01-03' + t * interval '7 days' AS ts, round(amount::numeric, 2) AS amount,
       row_number() OVER (ORDER BY customer_id, t) % 5 = 0 AS discounted
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                           1200, horizon => 104, acquisition => 52, seed => 11);
CREATE TABLE p_tx (LIKE p_tx_local);
SELECT create_distributed_table('p_tx', 'customer_id');
INSERT INTO p_tx SELECT * FROM p_tx_local;
CREATE TABLE p_tx_by_order (LIKE p_tx_local);
SELECT create_distributed_table('p_tx_by_order', 'order_id');
INSERT INTO p_tx_by_order SELECT * FROM p_tx_local;
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers FROM p_tx;

-- The same run on the table distributed by customer and on the local copy (BG/NBD, weeks).
-- Messages are off (client_min_messages = error) for the runs: besides the pipeline's notices,
-- Citus warns that the views over the coordinator's plain tables (clv_tier_summary,
-- clv_tier_migration) are created on the coordinator only - which is where they belong; the
-- pipeline's schema itself is propagated to the workers - and names one of the views' local
-- tables, not always the same one.
SET client_min_messages = error;
SELECT run_id, customers FROM clv_pipeline('p_tx', 'customer_id', 'ts', 'amount', '2023-12-31',
                                           target_schema => 'clv_dist', discount_column => 'discounted');
SELECT run_id, customers FROM clv_pipeline('p_tx_local', 'customer_id', 'ts', 'amount', '2023-12-31',
                                           target_schema => 'clv_local', discount_column => 'discounted');
RESET client_min_messages;
SELECT tier, customers FROM clv_dist.clv_tier_summary ORDER BY tier;
SELECT citus_test.compare(replace(q, 'clv_local.', 'clv_dist.'), q, 1e-9) AS tier_summary FROM (VALUES (
    $$SELECT tier, jsonb_build_array(customers, customer_share_pct, predicted_clv, clv_share_pct, mean_p_alive, mean_expected_purchases)
      FROM clv_local.clv_tier_summary$$)) v(q);
SELECT citus_test.compare(replace(q, 'clv_local.', 'clv_dist.'), q, 1e-9) AS customers FROM (VALUES (
    $$SELECT customer_id, jsonb_build_array(frequency, recency, tenure, monetary_value, transactions, total_amount, p_alive,
                                            expected_purchases, expected_spend, clv, discount_share, tier, rfm_segment, named_segment, cluster)
      FROM clv_local.clv_customers$$)) v(q);
SELECT citus_test.compare(replace(q, 'clv_local.', 'clv_dist.'), q, 1e-9) AS models FROM (VALUES (
    $$SELECT run_id, jsonb_build_array(customers, model, bgnbd::jsonb -> 'params', spend::jsonb -> 'params', clusters::jsonb)
      FROM clv_local.clv_models$$)) v(q);

-- Distributed by order, with coordinator aggregation disabled: every aggregate over the source
-- must be pushed down as partial states.
SET citus.coordinator_aggregation_strategy = 'disabled';
SET client_min_messages = error;
SELECT citus_test.error_of($$SELECT clv_pipeline('p_tx_by_order', 'customer_id', 'ts', 'amount', '2023-12-31',
                                                 target_schema => 'clv_by_order', discount_column => 'discounted')$$) AS by_order;
RESET client_min_messages;
RESET citus.coordinator_aggregation_strategy;
SELECT citus_test.compare(replace(q, 'clv_local.', 'clv_by_order.'), q, 1e-9) AS tier_summary FROM (VALUES (
    $$SELECT tier, jsonb_build_array(customers, customer_share_pct, predicted_clv, clv_share_pct, mean_p_alive, mean_expected_purchases)
      FROM clv_local.clv_tier_summary$$)) v(q);
SELECT citus_test.compare(replace(q, 'clv_local.', 'clv_by_order.'), q, 1e-9) AS customers FROM (VALUES (
    $$SELECT customer_id, jsonb_build_array(frequency, recency, tenure, monetary_value, transactions, total_amount, p_alive,
                                            expected_purchases, expected_spend, clv, discount_share, tier, rfm_segment, named_segment, cluster)
      FROM clv_local.clv_customers$$)) v(q);

-- With an ML method (clv_method / churn_method): the ML stage copies its data set into a temporary
-- table first (an UPDATE with a CTE over a distributed source is refused by Citus, 0A000), so it
-- runs on a distributed source and gives the local copy's models and CLVs.
SET client_min_messages = error;
SELECT citus_test.error_of($$SELECT clv_pipeline('p_tx', 'customer_id', 'ts', 'amount', '2023-12-31', target_schema => 'clv_ml',
                                                 clv_method => 'linear', churn_method => 'logistic')$$) AS ml_on_distributed;
SELECT citus_test.error_of($$SELECT clv_pipeline('p_tx_local', 'customer_id', 'ts', 'amount', '2023-12-31', target_schema => 'clv_local_ml',
                                                 clv_method => 'linear', churn_method => 'logistic')$$) AS ml_on_local;
RESET client_min_messages;
SELECT citus_test.compare(replace(q, 'clv_local_ml.', 'clv_ml.'), q, 1e-9) AS ml_customers FROM (VALUES (
    $$SELECT customer_id, jsonb_build_array(clv, tier, p_alive) FROM clv_local_ml.clv_customers$$)) v(q);
SELECT citus_test.compare(replace(q, 'clv_local_ml.', 'clv_ml.'), q, 1e-9) AS ml_models FROM (VALUES (
    $$SELECT run_id, jsonb_build_array(clv_method, clv_model::jsonb, churn_model::jsonb, ml_validation) FROM clv_local_ml.clv_models$$)) v(q);
