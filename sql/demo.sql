-- clv_ext demo (README command 1). Runs on any database where you may CREATE EXTENSION.
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS clv_ext;
DROP SCHEMA IF EXISTS clv_demo CASCADE;
CREATE SCHEMA clv_demo;
SET search_path = clv_demo, public;
-- Deterministic demo data: 2,000 customers acquired in Q1 2024, observed to 2024-12-31.
-- setseed + a serial plan make random() repeatable.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.42) AS seeded \gset
CREATE TABLE customers AS
SELECT id,
       date '2024-01-01' + (random() * 90)::int AS first_day,
       -- heterogeneous purchase rates (per day) and spend levels
       (-ln(1 - random()) * 0.02)::float8 AS rate,
       (20 + random() * 80)::numeric(10, 2) AS spend
FROM generate_series(1, 2000) id;
CREATE TABLE transactions AS
SELECT c.id AS customer_id, c.first_day::timestamp + interval '10 hours' AS ts, c.spend AS amount FROM customers c
UNION ALL
SELECT c.id, c.first_day + (random() * 400)::int + interval '14 hours', round(c.spend * (0.5 + random())::numeric, 2)
FROM customers c, generate_series(1, 30) k
WHERE random() < c.rate * 12;
RESET max_parallel_workers_per_gather;
\echo
\echo 'Transactions loaded:'
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers, min(ts)::date AS first, max(ts)::date AS last FROM transactions;

-- One aggregate per customer: lifetimes' frequency / recency / T / monetary value (weeks).
CREATE TABLE customer_rfm AS
SELECT customer_id, f.*
FROM (SELECT customer_id, rfm(ts, amount, '2024-12-31') AS summary FROM transactions GROUP BY customer_id) s
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
