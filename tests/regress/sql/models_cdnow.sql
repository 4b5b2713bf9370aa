-- Acceptance: BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma fitted by SQL aggregates on the 2,357
-- CDNOW customers (weeks) reproduce the published parameters and log-likelihoods
-- (tests/data/README.md), and the scoring functions the reference predictions.
SET extra_float_digits = 0;
\getenv data CLV_TEST_DATA
\set reference :data '/cdnow/cdnow_customers_summary_with_transactions.csv'
CREATE TABLE cdnow_rfm (id int, x float8, t_x float8, t float8, zbar float8);
COPY cdnow_rfm FROM :'reference' (FORMAT csv, HEADER);

CREATE TABLE models AS
SELECT bgnbd_fit(x, t_x, t) AS bgnbd, pareto_nbd_fit(x, t_x, t) AS pareto, mbgnbd_fit(x, t_x, t) AS mbg,
       gamma_gamma_fit(x, zbar) AS gg
FROM cdnow_rfm;

-- Parameters to 3 significant digits, log-likelihood to 0.1, against the published values.
SELECT 'BG/NBD' AS model, round((j->'params'->>'r')::numeric, 3) AS p1, round((j->'params'->>'alpha')::numeric, 3) AS p2,
       round((j->'params'->>'a')::numeric, 3) AS p3, round((j->'params'->>'b')::numeric, 3) AS p4,
       round((j->'fit'->>'log_likelihood')::numeric, 1) AS ll FROM (SELECT bgnbd::jsonb j FROM models) q
UNION ALL
SELECT 'Pareto/NBD', round((j->'params'->>'r')::numeric, 3), round((j->'params'->>'alpha')::numeric, 3),
       round((j->'params'->>'s')::numeric, 3), round((j->'params'->>'beta')::numeric, 3),
       round((j->'fit'->>'log_likelihood')::numeric, 1) FROM (SELECT pareto::jsonb j FROM models) q
UNION ALL
SELECT 'MBG/NBD', round((j->'params'->>'r')::numeric, 3), round((j->'params'->>'alpha')::numeric, 3),
       round((j->'params'->>'a')::numeric, 3), round((j->'params'->>'b')::numeric, 3),
       round((j->'fit'->>'log_likelihood')::numeric, 1) FROM (SELECT mbg::jsonb j FROM models) q
UNION ALL
SELECT 'Gamma-Gamma', round((j->'params'->>'p')::numeric, 2), round((j->'params'->>'q')::numeric, 2),
       round((j->'params'->>'v')::numeric, 2), NULL, round((j->'fit'->>'log_likelihood')::numeric, 1)
FROM (SELECT gg::jsonb j FROM models) q;

-- Standard errors of BG/NBD (lifetimes: 0.012557, 0.378221, 0.185719, 0.705345), counts, criteria.
SELECT round((j->'fit'->'std_errors'->>'r')::numeric, 4) AS se_r, round((j->'fit'->'std_errors'->>'alpha')::numeric, 3) AS se_alpha,
       round((j->'fit'->'std_errors'->>'a')::numeric, 3) AS se_a, round((j->'fit'->'std_errors'->>'b')::numeric, 3) AS se_b,
       j->'fit'->>'n_customers' AS n, (j->'fit'->>'n_distinct_rows')::int < 2357 AS compressed,
       j->'fit'->>'converged' AS converged, round((j->'fit'->>'aic')::numeric, 1) AS aic, round((j->'fit'->>'bic')::numeric, 1) AS bic
FROM (SELECT bgnbd::jsonb j FROM models) q;
SELECT (gg::jsonb->'fit'->>'n_customers')::float8 AS gamma_gamma_repeat_buyers FROM models;

-- Predictions for the first five customers with the fitted models: 39-week expected purchases,
-- P(alive), expected spend and 12-month CLV at 1% a month (weeks: 4.345 per month).
SELECT id, round(expected_purchases(bgnbd, 39, x, t_x, t)::numeric, 4) AS e39,
       round(p_alive(bgnbd, x, t_x, t)::numeric, 4) AS p_alive,
       round(expected_spend(gg, x, zbar)::numeric, 4) AS spend,
       round(clv(bgnbd, gg, x, t_x, t, zbar, 12, 0.01, 'week')::numeric, 4) AS clv_12m
FROM cdnow_rfm, models WHERE id <= 5 ORDER BY id;

-- The same with the precise lifetimes parameters, to 1e-4 relative of the reference values.
CREATE TABLE ref_models AS SELECT bgnbd_model(0.242593, 4.413532, 0.792886, 2.425752) AS b,
       gamma_gamma_model(6.248802, 3.744588, 15.447748) AS g;
WITH expected(id, e39, pa, sp, cl) AS (VALUES
    (1, 1.225910, 0.726609, 24.658616, 36.278496), (2, 0.203251, 0.212227, 18.911480, 4.637466),
    (3, 0.194781, 1.0, 35.171002, 8.344093), (4, 0.194781, 1.0, 35.171002, 8.344093), (5, 0.194781, 1.0, 35.171002, 8.344093))
SELECT id,
       abs(expected_purchases(b, 39, x, t_x, t) / e39 - 1) < 1e-4 AS e39_ok,
       abs(p_alive(b, x, t_x, t) / pa - 1) < 1e-4 AS p_alive_ok,
       abs(expected_spend(g, x, zbar) / sp - 1) < 1e-4 AS spend_ok,
       abs(clv(b, g, x, t_x, t, zbar) / cl - 1) < 1e-4 AS clv_ok
FROM cdnow_rfm JOIN expected USING (id), ref_models ORDER BY id;

-- New-customer predictions: E[X(t)] at 1, 3, 32, 78 weeks; BTYD's P(X(39)=0) and P(X(2)=10).
SELECT t, round(expected_purchases_new_customer(b, t)::numeric, 4) AS expected FROM ref_models, unnest(ARRAY[1, 3, 32, 78]) t;
SELECT round(purchase_probability(bgnbd_model(0.243, 4.414, 0.793, 2.426), 0, 39)::numeric, 7) AS p0_39,
       to_char(purchase_probability(bgnbd_model(0.243, 4.414, 0.793, 2.426), 10, 2), '9.99999EEEE') AS p10_2;

-- P(alive) now and 52 weeks on, for a customer seen at 30 of 39 weeks; other models score too.
SELECT round(p_alive(bgnbd, 2, 30, 39)::numeric, 4) AS bgnbd_now, round(p_alive(bgnbd, 2, 30, 39, 52)::numeric, 4) AS bgnbd_52w,
       round(p_alive(pareto, 2, 30, 39)::numeric, 4) AS pareto_now, round(expected_purchases(pareto, 39, 2, 30, 39)::numeric, 4) AS pareto_e39,
       round(p_alive(mbg, 2, 30, 39)::numeric, 4) AS mbg_now, round(clv(pareto, gg, 2, 30, 39, 22.35)::numeric, 4) AS pareto_clv
FROM models;

-- Stored models survive a round trip through text and a table column.
CREATE TABLE stored AS SELECT bgnbd::text::bgnbd_model AS m FROM models;
SELECT m::text = (SELECT bgnbd::text FROM models) AS same_after_round_trip, m::jsonb->>'version' AS version FROM stored;
