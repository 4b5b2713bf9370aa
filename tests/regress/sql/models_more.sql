-- BG/BB on the donations benchmark, weights and penalizer, parallel fitting, simulation and
-- parameter recovery, and bad input with SQLSTATEs.
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' HINT: ' || nullif(hint, ''), '');
END $$;

\getenv data CLV_TEST_DATA
\set donations :data '/donations/donations.csv'
CREATE TABLE donations (frequency float8, recency float8, periods float8, weights float8);
COPY donations FROM :'donations' (FORMAT csv, HEADER);

-- Published: alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783, LL = -33,225.6.
SELECT round((j->'params'->>'alpha')::numeric, 3) AS alpha, round((j->'params'->>'beta')::numeric, 3) AS beta,
       round((j->'params'->>'gamma')::numeric, 3) AS gamma, round((j->'params'->>'delta')::numeric, 3) AS delta,
       round((j->'fit'->>'log_likelihood')::numeric, 1) AS ll, (j->'fit'->>'n_customers')::float8 AS donors
FROM (SELECT bgbb_fit(frequency, recency, periods, weights)::jsonb AS j FROM donations) q;

-- BG/BB scoring: a donor who gave in 3 of 6 years, last in year 6 / year 3, over the next 5 years.
CREATE TABLE bgbb AS SELECT bgbb_fit(frequency, recency, periods, weights) AS m FROM donations;
SELECT round(expected_purchases(m, 5, 3, 6, 6)::numeric, 4) AS e5_recent, round(expected_purchases(m, 5, 3, 3, 6)::numeric, 4) AS e5_lapsed,
       round(p_alive(m, 3, 6, 6)::numeric, 4) AS alive_recent, round(p_alive(m, 3, 3, 6)::numeric, 4) AS alive_lapsed,
       round(purchase_probability(m, 0, 6)::numeric, 4) AS p_none_in_6
FROM bgbb;

-- Weights: a weighted row equals that many identical rows; a penalizer shrinks the parameters.
CREATE TABLE expanded AS SELECT d.frequency, d.recency, d.periods FROM donations d, generate_series(1, d.weights::int);
SELECT (SELECT bgbb_fit(frequency, recency, periods)::jsonb->'params' FROM expanded) =
       (SELECT m::jsonb->'params' FROM bgbb) AS expanded_equals_weighted;
SELECT (j->'params'->>'alpha')::float8 < (SELECT (m::jsonb->'params'->>'alpha')::float8 FROM bgbb) AS penalized_smaller,
       (j->'fit'->>'penalizer')::float8 AS penalizer
FROM (SELECT bgbb_fit(frequency, recency, periods, weights, 0.01)::jsonb AS j FROM donations) q;

-- Simulation: 100,000 BG/NBD customers with Gamma-Gamma spend (seeded) recover the parameters
-- within 5%, and the seeded stream is repeatable.
CREATE TABLE sim AS
SELECT * FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                                 100000, horizon => 52, acquisition => 12, seed => 7);
SELECT count(*) AS customers, sum(frequency) > 0 AS bought, min(tenure) >= 40 AS min_t_ok, max(tenure) <= 52 AS max_t_ok FROM sim;
SELECT k, round(v::numeric, 3) AS fitted, round(abs(v / want - 1)::numeric, 3) < 0.05 AS within_5pct
FROM (SELECT bgnbd_fit(frequency, recency, tenure)::jsonb->'params' AS p FROM sim) q,
     LATERAL (VALUES ('r', (p->>'r')::float8, 0.243), ('alpha', (p->>'alpha')::float8, 4.414),
                     ('a', (p->>'a')::float8, 0.793), ('b', (p->>'b')::float8, 2.426)) v(k, v, want);
SELECT k, round(abs(v / want - 1)::numeric, 3) < 0.05 AS within_5pct
FROM (SELECT gamma_gamma_fit(frequency, monetary_value)::jsonb->'params' AS p FROM sim) q,
     LATERAL (VALUES ('p', (p->>'p')::float8, 6.25), ('q', (p->>'q')::float8, 3.74), ('v', (p->>'v')::float8, 15.44)) v(k, v, want);
SELECT count(*) AS transactions, count(DISTINCT customer_id) AS customers, round(sum(amount)::numeric, 2) AS total
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 1000, 52, 12, 7);
SELECT (SELECT array_agg(t ORDER BY customer_id, t) FROM simulate_transactions(pareto_nbd_model(0.553, 10.578, 0.606, 11.669), gamma_gamma_model(6.25, 3.74, 15.44), 50, 39, 0, 3)) =
       (SELECT array_agg(t ORDER BY customer_id, t) FROM simulate_transactions(pareto_nbd_model(0.553, 10.578, 0.606, 11.669), gamma_gamma_model(6.25, 3.74, 15.44), 50, 39, 0, 3)) AS repeatable;

-- Parallel fitting: partial states in two workers, combined in the leader, give the same
-- parameters as a serial fit (to 1e-9 relative).
CREATE TABLE sim_big AS SELECT frequency, recency, tenure, monetary_value FROM sim, generate_series(1, 3);
ANALYZE sim_big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE fit_serial AS SELECT bgnbd_fit(frequency, recency, tenure) AS b, gamma_gamma_fit(frequency, monetary_value) AS g FROM sim_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT bgnbd_fit(frequency, recency, tenure) FROM sim_big;
CREATE TABLE fit_parallel AS SELECT bgnbd_fit(frequency, recency, tenure) AS b, gamma_gamma_fit(frequency, monetary_value) AS g FROM sim_big;
RESET max_parallel_workers_per_gather;
SELECT bool_and(abs((ps.value::float8) / (pp.value::float8) - 1) <= 1e-9) AS same_parameters
FROM fit_serial s, fit_parallel p,
     LATERAL jsonb_each_text(s.b::jsonb->'params' || s.g::jsonb->'params') ps,
     LATERAL jsonb_each_text(p.b::jsonb->'params' || p.g::jsonb->'params') pp
WHERE ps.key = pp.key;

-- Bad input: each with its SQLSTATE.
SELECT pg_temp.error_of($$SELECT bgnbd_fit(x, tx, t) FROM (VALUES (1.0, 5.0, 3.0)) v(x, tx, t)$$);
SELECT pg_temp.error_of($$SELECT bgnbd_fit(x, tx, t) FROM (VALUES ('NaN'::float8, 1.0, 3.0)) v(x, tx, t)$$);
SELECT pg_temp.error_of($$SELECT bgnbd_fit(x, tx, t, w) FROM (VALUES (1.0, 1.0, 3.0, -2.0)) v(x, tx, t, w)$$);
SELECT pg_temp.error_of($$SELECT gamma_gamma_fit(x, m) FROM (VALUES (0.0, 0.0), (0.0, 0.0)) v(x, m)$$);
SELECT pg_temp.error_of($$SELECT bgbb_fit(x, tx, n) FROM (VALUES (1.5, 2.0, 6.0)) v(x, tx, n)$$);
SELECT pg_temp.error_of($$SELECT p_alive(bgnbd_model(0.243, 4.414, 0.793, 2.426), 2, 40, 39)$$);
SELECT pg_temp.error_of($$SELECT expected_purchases(bgnbd_model(0.243, 4.414, 0.793, 2.426), 'Infinity', 2, 30, 39)$$);
SELECT pg_temp.error_of($$SELECT p_alive(bgnbd_model(0.243, 4.414, 0.793, 2.426), -1, 0, 39)$$);
SELECT pg_temp.error_of($$SELECT bgnbd_model(0.243, -4.414, 0.793, 2.426)$$);
SELECT pg_temp.error_of($$SELECT purchase_probability(bgnbd_model(0.243, 4.414, 0.793, 2.426), -1, 39)$$);
-- q <= 1: a repeat buyer's conditional mean spend exists while p x + q > 1 (the population mean
-- p v / (q - 1) of a customer without repeat purchases does not).
SELECT round(expected_spend(gamma_gamma_model(6.25, 0.9, 15.44), 2, 20)::numeric, 6) AS spend_q_below_1,
       round(((6.25 * 15.44 + 6.25 * 2 * 20) / (6.25 * 2 + 0.9 - 1))::numeric, 6) AS formula;
SELECT pg_temp.error_of($$SELECT expected_spend(gamma_gamma_model(6.25, 0.9, 15.44), 0, 0)$$);
SELECT pg_temp.error_of($$SELECT clv(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 2, 30, 39, 20, 12, 0.01, 'fortnight')$$);
SELECT pg_temp.error_of($$SELECT '{"version": 1, "model": "bgnbd", "params": {"r": 1}}'::bgnbd_model$$);
SELECT pg_temp.error_of($$SELECT (bgnbd_model(0.243, 4.414, 0.793, 2.426)::text)::pareto_nbd_model$$);
SELECT pg_temp.error_of($$SELECT * FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 10, 10, 20)$$);
-- Data with no information about a parameter: clear errors, never silently bad parameters.
SELECT pg_temp.error_of($$SELECT bgnbd_fit(x, tx, t) FROM (VALUES (0.0, 0.0, 10.0), (0.0, 0.0, 10.0)) v(x, tx, t)$$);
-- Every customer bought in every week up to the end: nobody ever drops out, the dropout
-- parameters run off to infinity; the error carries a hint.
SELECT pg_temp.error_of($$SELECT bgnbd_fit(x, x, 10) FROM generate_series(1, 10) x$$);
-- An aggregate over no rows is NULL, like avg().
SELECT bgnbd_fit(x, tx, t) IS NULL AS empty_is_null FROM (VALUES (1.0, 1.0, 2.0)) v(x, tx, t) WHERE false;
