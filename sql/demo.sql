-- clv_ext demo (README command 1). Runs on any database where you may CREATE EXTENSION.
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS clv_ext;
DROP SCHEMA IF EXISTS clv_demo CASCADE;
CREATE SCHEMA clv_demo;
SET search_path = clv_demo, public;
-- Deterministic demo data: 2,000 customers acquired over the first quarter of 2024 and observed
-- to 2024-12-29, simulated (seeded) from BG/NBD purchase behaviour with CDNOW's published
-- parameters and Gamma-Gamma spend; simulate_transactions gives times in weeks since the start.
CREATE TABLE transactions AS
SELECT customer_id, timestamp '2024-01-01' + make_interval(secs => t * 7 * 86400) AS ts, round(amount::numeric, 2) AS amount
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                           customers => 2000, horizon => 52, acquisition => 13, seed => 42);
\echo
\echo 'Transactions loaded:'
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers, min(ts)::date AS first, max(ts)::date AS last FROM transactions;

-- One aggregate per customer: lifetimes' frequency / recency / T / monetary value (weeks).
CREATE TABLE customer_rfm AS
SELECT customer_id, f.*
FROM (SELECT customer_id, rfm(ts, amount, '2024-12-29') AS summary FROM transactions GROUP BY customer_id) s
CROSS JOIN LATERAL rfm_fields(s.summary, 'week') f;

\echo
\echo 'Per-customer RFM summary (first 10 customers; recency and T in weeks):'
SELECT customer_id, frequency, round(recency::numeric, 2) AS recency, round(tenure::numeric, 2) AS "T",
       round(monetary_value::numeric, 2) AS monetary_value, transactions, round(total_amount::numeric, 2) AS total_amount
FROM customer_rfm ORDER BY customer_id LIMIT 10;

-- RFM scores (5 = best; R scored on weeks since the last purchase, lower is better) and segments.
CREATE TABLE customer_segments AS
SELECT customer_id, r, f, m, rfm_segment(r, f, m) AS segment
FROM (SELECT customer_id,
             rfm_score(tenure - recency, higher_is_better => false) OVER () AS r,
             rfm_score(frequency) OVER () AS f,
             rfm_score(total_amount) OVER () AS m
      FROM customer_rfm) scored;

\echo
\echo 'RFM segments:'
SELECT segment, count(*) AS customers, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct,
       round(avg(f), 2) AS avg_f_score, round(avg(r), 2) AS avg_r_score
FROM customer_segments GROUP BY segment ORDER BY customers DESC, segment;

-- Models fitted by aggregates over the per-customer rows (recency and T in weeks).
CREATE TABLE models AS
SELECT bgnbd_fit(frequency, recency, tenure) AS bgnbd,
       mbgnbd_fit(frequency, recency, tenure) AS mbgnbd,
       gamma_gamma_fit(frequency, monetary_value) AS spend
FROM customer_rfm;

\echo
\echo 'Fitted models (parameters, log-likelihood, standard errors):'
SELECT 'BG/NBD' AS model, bgnbd::jsonb->'params' AS params, round((bgnbd::jsonb->'fit'->>'log_likelihood')::numeric, 1) AS log_likelihood,
       bgnbd::jsonb->'fit'->'std_errors' AS std_errors FROM models
UNION ALL
SELECT 'MBG/NBD', mbgnbd::jsonb->'params', round((mbgnbd::jsonb->'fit'->>'log_likelihood')::numeric, 1),
       mbgnbd::jsonb->'fit'->'std_errors' FROM models
UNION ALL
SELECT 'Gamma-Gamma', spend::jsonb->'params', round((spend::jsonb->'fit'->>'log_likelihood')::numeric, 1),
       spend::jsonb->'fit'->'std_errors' FROM models;

-- Scoring every customer: P(alive), expected purchases in the next 26 weeks, expected spend and
-- 12-month CLV at 1% a month.
CREATE TABLE customer_value AS
SELECT customer_id, frequency, recency, tenure, monetary_value,
       p_alive(bgnbd, frequency, recency, tenure) AS p_alive,
       expected_purchases(bgnbd, 26, frequency, recency, tenure) AS expected_purchases_26w,
       expected_spend(spend, frequency, monetary_value) AS expected_spend,
       clv(bgnbd, spend, frequency, recency, tenure, monetary_value, 12, 0.01, 'week') AS clv_12m
FROM customer_rfm, models;

\echo
\echo 'Top 10 customers by 12-month CLV:'
SELECT customer_id, frequency, round(recency::numeric, 1) AS recency, round(tenure::numeric, 1) AS "T",
       round(p_alive::numeric, 3) AS p_alive, round(expected_purchases_26w::numeric, 2) AS purchases_26w,
       round(expected_spend::numeric, 2) AS spend, round(clv_12m::numeric, 2) AS clv_12m
FROM customer_value ORDER BY clv_12m DESC, customer_id LIMIT 10;

-- The one-call pipeline: run 1 with data to the end of September, run 2 at the end of the year.
DROP SCHEMA IF EXISTS clv_demo_out CASCADE;
SET client_min_messages = notice;
\echo
\echo 'clv_pipeline, run 1 (observation end 2024-09-30):'
SELECT run_id, customers, round(total_clv::numeric, 2) AS total_clv
FROM clv_pipeline('clv_demo.transactions', 'customer_id', 'ts', 'amount', '2024-09-30', target_schema => 'clv_demo_out');
\echo
\echo 'clv_pipeline, run 2 (observation end 2024-12-29):'
SELECT run_id, customers, round(total_clv::numeric, 2) AS total_clv
FROM clv_pipeline('clv_demo.transactions', 'customer_id', 'ts', 'amount', '2024-12-29', target_schema => 'clv_demo_out');
SET client_min_messages = warning;

\echo
\echo 'Tier summary (the 80/20 check):'
SELECT tier, customers, customer_share_pct, round(predicted_clv::numeric, 2) AS predicted_clv, clv_share_pct,
       round(mean_p_alive::numeric, 3) AS mean_p_alive
FROM clv_demo_out.clv_tier_summary ORDER BY clv_share_pct DESC;

\echo
\echo 'Tier migration from run 1 to run 2:'
SELECT from_tier, to_tier, customers FROM clv_demo_out.clv_tier_migration ORDER BY from_tier, to_tier;

\echo
\echo 'Validation: calibration to 2024-09-30, holdout to 2024-12-29 (mean purchases by calibration frequency):'
SELECT frequency_cal, customers, round(mean_predicted::numeric, 3) AS mean_predicted, round(mean_actual::numeric, 3) AS mean_actual
FROM clv_calibration_vs_holdout('clv_demo.transactions', 'customer_id', 'ts', 'amount', '2024-09-30', '2024-12-29');
SELECT metric, round(value::numeric, 4) AS value
FROM clv_holdout_metrics('clv_demo.transactions', 'customer_id', 'ts', 'amount', '2024-09-30', '2024-12-29');
\echo
\echo 'ML or BTYD? BG/NBD + Gamma-Gamma against the supervised models on the same held-out customers (docs/ml.md):'
SELECT model, target, round(rmse::numeric, 2) AS rmse, round(r2::numeric, 3) AS r2, round(normalized_gini::numeric, 3) AS gini,
       round(top_20_capture::numeric, 3) AS top_20_capture, round(auc::numeric, 3) AS auc, round(log_loss::numeric, 3) AS log_loss,
       round(fit_seconds::numeric, 3) AS fit_seconds
FROM clv_ml_comparison('clv_demo.transactions', 'customer_id', 'ts', 'amount', '2024-09-30', '2024-12-29', tune => false);
\echo
\echo 'Cohorts: customers by month of first purchase, retention and revenue per customer by month since (docs/cohorts.md):'
SELECT cohort, period, cohort_size, active_customers, round(retention_rate::numeric, 3) AS retention,
       round(cumulative_revenue_per_customer::numeric, 2) AS revenue_per_customer_to_date
FROM clv_cohorts('clv_demo.transactions', 'customer_id', 'ts', 'amount', 'month', 'month', '2024-12-29')
WHERE period IN (0, 1, 3, 6) ORDER BY cohort, period LIMIT 16;
\echo
\echo 'Segment profiles of the latest pipeline run (value tiers and named segments; docs/segments.md):'
SELECT segmentation, segment, customers, round(customer_share::numeric, 3) AS customer_share,
       round(clv_share::numeric, 3) AS clv_share, defining_traits
FROM clv_demo_out.clv_segment_profiles WHERE segmentation IN ('tier', 'named_segment');
\echo
\echo 'The next 26 weeks of the most valuable customer: P(exactly n purchases) under the BG/NBD fit:'
SELECT d.n, round(d.probability::numeric, 4) AS probability, round(d.cumulative_probability::numeric, 4) AS cumulative
FROM (SELECT * FROM clv_demo_out.clv_customers ORDER BY clv DESC, customer_id LIMIT 1) c,
     LATERAL purchase_distribution((SELECT bgnbd FROM clv_demo_out.clv_models ORDER BY run_id DESC LIMIT 1),
                                   26, c.frequency, c.recency, c.tenure) d
WHERE d.n <= 8;
\echo
\echo 'The HTML report of the pipeline run (tables and inline SVG charts; docs/report.md), written to:'
\echo :report_file
\pset format unaligned
\pset tuples_only on
SELECT clv_report('clv_demo_out', validation => false) \g :report_file
\pset format aligned
\pset tuples_only off
