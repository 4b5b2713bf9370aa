-- The one-call pipeline: tables and materialized views, repeated runs, tier migration, hostile
-- identifiers, wrong columns, privileges; and the holdout validation on CDNOW's canonical split.
SET extra_float_digits = 0;
SET client_min_messages = notice;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Hostile names everywhere: a schema, table and columns that need quoting, and a target schema
-- with a quote and a space in it.
CREATE SCHEMA "shop; DROP TABLE x";
CREATE TABLE "shop; DROP TABLE x"."Trans""actions" ("Customer ID" bigint, "when" timestamptz, "amount$" numeric);
INSERT INTO "shop; DROP TABLE x"."Trans""actions"
SELECT customer_id, timestamptz '2024-01-01 00:00+00' + make_interval(secs => t * 7 * 86400), round(amount::numeric, 2)
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                           customers => 2000, horizon => 60, acquisition => 13, seed => 5);

SELECT run_id, customers, round(total_clv::numeric, 2) AS total_clv
FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'when', 'amount$',
                  observation_end => '2024-10-31', target_schema => 'clv "out"');

-- Tiers hold 20/50/30% of the customers, up to ties: customers with the same history have the
-- same CLV and always share a tier (a tie straddling a boundary goes to the lower tier). The top
-- 20% of customers hold far more than 20% of the predicted CLV.
SELECT tier, customers, customer_share_pct, clv_share_pct > customer_share_pct AS over_represented
FROM "clv ""out""".clv_tier_summary ORDER BY customers;
SELECT count(*) - count(DISTINCT clv) AS tied_customers, count(DISTINCT tier) = 3 AS three_tiers,
       (SELECT count(*) FROM (SELECT clv FROM "clv ""out""".clv_customers GROUP BY clv HAVING count(DISTINCT tier) > 1) t) AS split_ties
FROM "clv ""out""".clv_customers;

-- One row per customer with every field filled; the unique index allows a concurrent refresh.
SELECT count(*) AS customers, count(p_alive) AS scored, count(tier) AS tiered, count(rfm_segment) AS rfm_segmented,
       count(named_segment) AS named, count(DISTINCT cluster) AS clusters,
       bool_and(p_alive BETWEEN 0 AND 1) AS p_alive_ok, bool_and(clv >= 0) AS clv_ok
FROM "clv ""out""".clv_customers;
REFRESH MATERIALIZED VIEW CONCURRENTLY "clv ""out""".clv_customers;
SELECT run_id, model, customers, observation_end, unit, fit_seconds >= 0 AS timed, clusters IS NOT NULL AS has_clusters
FROM "clv ""out""".clv_models;

-- No migration yet after one run; a second run (later observation end, more data) refreshes
-- everything in place and records the movement between tiers.
SELECT count(*) AS migration_rows FROM "clv ""out""".clv_tier_migration;
SELECT run_id, customers FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'when', 'amount$',
                                           observation_end => '2024-12-31', target_schema => 'clv "out"');
SELECT from_run, to_run, sum(customers) AS customers, sum(customers) FILTER (WHERE from_tier = to_tier) AS stayed,
       sum(customers) FILTER (WHERE from_tier = '(new)') AS new_customers
FROM "clv ""out""".clv_tier_migration GROUP BY 1, 2;
SELECT run_id, count(*) FROM "clv ""out""".clv_tier_history GROUP BY 1 ORDER BY 1;
SELECT count(*) AS tables_left_by_injection FROM pg_tables WHERE tablename = 'x';
-- The tier summary comes out in tier rank, without an ORDER BY of the reader's.
SELECT tier, customers FROM "clv ""out""".clv_tier_summary;

-- Regular buyers with no visible drop-out: every customer buys every week up to the end, so the
-- BG/NBD likelihood has no interior maximum. The weekly job still runs: it refits with the
-- documented fallback penalizer, says so in a WARNING and records it; an explicit penalizer is
-- used as given (and a bad one refused).
CREATE TABLE regular_buyers AS
SELECT c AS customer, date '2024-01-01' + (c % 7) + 7 * w AS day, 10 + c % 5 + w % 3 AS amount
FROM generate_series(1, 300) c, generate_series(0, 40 - c % 20) w;
SELECT run_id, customers FROM clv_pipeline('regular_buyers', 'customer', 'day', 'amount', '2024-10-31', target_schema => 'clv_regular');
SELECT run_id, penalizer, (bgnbd::jsonb #>> '{fit,penalizer}')::float8 AS fit_penalizer FROM clv_regular.clv_models;
SELECT run_id, customers FROM clv_pipeline('regular_buyers', 'customer', 'day', 'amount', '2024-10-31', target_schema => 'clv_regular',
                                           penalizer => 0.01);
SELECT run_id, penalizer, (bgnbd::jsonb #>> '{fit,penalizer}')::float8 AS fit_penalizer FROM clv_regular.clv_models ORDER BY run_id;
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('regular_buyers', 'customer', 'day', 'amount', '2024-10-31', target_schema => 'clv_regular', penalizer => -1)$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('regular_buyers', 'customer', 'day', 'amount', '2024-10-31', target_schema => 'clv_regular', penalizer => 'NaN')$$);

-- Wrong input: missing column, wrong type, unknown model or unit.
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'customer', 'when', 'amount$', '2024-12-31')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'amount$', 'when', '2024-12-31')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'when', 'amount$', '2024-12-31', model => 'bgbb')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'when', 'amount$', '2024-12-31', unit => 'hour')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('no_such_table', 'a', 'b', 'c', '2024-12-31')$$);

-- Privileges: the pipeline runs as the caller; a role without SELECT on the source is refused.
CREATE ROLE regress_clv_analyst;
GRANT USAGE ON SCHEMA "shop; DROP TABLE x" TO regress_clv_analyst;
SET ROLE regress_clv_analyst;
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('"shop; DROP TABLE x"."Trans""actions"', 'Customer ID', 'when', 'amount$', '2024-12-31', target_schema => 'regress_clv_denied')$$);
RESET ROLE;
SELECT count(*) AS schemas_created_by_denied_call FROM pg_namespace WHERE nspname = 'regress_clv_denied';
DROP OWNED BY regress_clv_analyst;
DROP ROLE regress_clv_analyst;
SELECT prosecdef AS security_definer FROM pg_proc WHERE proname = 'clv_pipeline';

-- Validation on CDNOW: calibration to 1997-09-30, holdout to 1998-06-30 (39 weeks). lifetimes
-- 0.11.3 on the same split gives, by calibration frequency 0..6 (n, mean actual, mean predicted):
-- 0: 1411, 0.236712, 0.225087   1: 439, 0.697039, 0.523131   2: 214, 1.392523, 1.044134
-- 3: 100, 1.560000, 1.520280    4: 62, 2.532258, 2.163866    5: 38, 2.947368, 2.653846
-- 6: 29, 3.862069, 3.504042; purchases MAE 0.785454, RMSE 1.607982, bias -0.096984.
\getenv data CLV_TEST_DATA
\set raw :data '/cdnow/CDNOW_sample.txt'
CREATE TABLE cdnow_lines (line text);
COPY cdnow_lines FROM :'raw';
CREATE TABLE cdnow_tx AS
SELECT f[2]::int AS customer, to_date(f[3], 'YYYYMMDD') AS day, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_lines) q;

SELECT frequency_cal, customers, round(mean_actual::numeric, 6) AS mean_actual, round(mean_predicted::numeric, 4) AS mean_predicted
FROM clv_calibration_vs_holdout('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30', 'week');
WITH lifetimes(frequency_cal, n, actual, predicted) AS (VALUES
    (0, 1411, 0.236712, 0.225087), (1, 439, 0.697039, 0.523131), (2, 214, 1.392523, 1.044134), (3, 100, 1.560000, 1.520280),
    (4, 62, 2.532258, 2.163866), (5, 38, 2.947368, 2.653846), (6, 29, 3.862069, 3.504042))
SELECT bool_and(c.customers = l.n AND abs(c.mean_actual - l.actual) < 1e-6 AND abs(c.mean_predicted - l.predicted) < 1e-4) AS matches_lifetimes
FROM clv_calibration_vs_holdout('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30', 'week') c
JOIN lifetimes l USING (frequency_cal);
SELECT metric, round(value::numeric, 4) AS value
FROM clv_holdout_metrics('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30', 'week');
SELECT count(*) AS customers, round(avg(duration_holdout)::numeric, 4) AS duration_weeks,
       round(sum(actual_spend)::numeric, 2) AS actual_holdout_spend
FROM clv_holdout_predictions('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30', 'week');

-- A seeded 80/20 customer split for train/test.
SELECT round(avg(clv_in_training_set(customer, 42)::int)::numeric, 2) AS training_share,
       count(*) FILTER (WHERE clv_in_training_set(customer, 42) <> clv_in_training_set(customer, 43)) > 0 AS seed_matters
FROM (SELECT DISTINCT customer FROM cdnow_tx) c;
-- Actual holdout spend equals the plain-SQL sum over customers known at calibration.
SELECT round(sum(amount), 2) AS native_holdout_spend FROM cdnow_tx
WHERE day > '1997-09-30' AND day <= '1998-06-30' AND customer IN (SELECT customer FROM cdnow_tx WHERE day <= '1997-09-30');
