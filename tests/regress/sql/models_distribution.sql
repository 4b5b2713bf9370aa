-- Issue 11: the conditional purchase distribution P(X(t) = n | frequency, recency, T) for BG/NBD,
-- MBG/NBD, Pareto/NBD and BG/BB. Check values computed elsewhere at 50 digits (issue 11); the
-- distribution sums to 1 and its mean is expected_purchases for every CDNOW customer history;
-- bad input with SQLSTATEs.
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Pareto/NBD, a heavy buyer (x, t_x, T) = (132, 200, 200), t = 10: P(0) = 0.0066232,
-- P(3) = 0.0805734, P(6) = 0.1536087, P(9) = 0.0766865.
SELECT n, round(probability::numeric, 7) AS probability
FROM purchase_distribution(pareto_nbd_model(0.55, 10.58, 0.61, 11.67), 10, 132, 200, 200)
WHERE n IN (0, 3, 6, 9);
SELECT round(purchase_probability(pareto_nbd_model(0.55, 10.58, 0.61, 11.67), 6, 10, 132, 200, 200)::numeric, 7) AS p6;

-- Every distinct CDNOW history (weeks), three horizons, three models fitted on CDNOW: the rows sum
-- to 1 (within the 1e-10 tail) and their mean is expected_purchases (to 1e-7 relative, plus 1e-8 for
-- the tail left out: an almost surely inactive customer's list ends at n = 0).
\getenv data CLV_TEST_DATA
\set reference :data '/cdnow/cdnow_customers_summary_with_transactions.csv'
CREATE TEMP TABLE cdnow_rfm (id int, x float8, t_x float8, t float8, zbar float8);
COPY cdnow_rfm FROM :'reference' (FORMAT csv, HEADER);
CREATE TEMP TABLE fitted AS
SELECT bgnbd_fit(x, t_x, t) AS bgnbd, pareto_nbd_fit(x, t_x, t) AS pareto, mbgnbd_fit(x, t_x, t) AS mbg FROM cdnow_rfm;
CREATE TEMP TABLE histories AS SELECT DISTINCT x, t_x, t FROM cdnow_rfm WHERE x IN (0, 1, 2, 5, 10, 20) OR x >= 15;
CREATE TEMP TABLE checked AS
SELECT 'BG/NBD' AS model, h.x, h.t_x, h.t, w.horizon, d.total, d.mean, expected_purchases(f.bgnbd, w.horizon, h.x, h.t_x, h.t) AS expected
FROM histories h CROSS JOIN fitted f CROSS JOIN (VALUES (1.0), (10.0), (39.0)) w(horizon),
     LATERAL (SELECT sum(probability) AS total, sum(n * probability) AS mean FROM purchase_distribution(f.bgnbd, w.horizon, h.x, h.t_x, h.t)) d
UNION ALL
SELECT 'MBG/NBD', h.x, h.t_x, h.t, w.horizon, d.total, d.mean, expected_purchases(f.mbg, w.horizon, h.x, h.t_x, h.t)
FROM histories h CROSS JOIN fitted f CROSS JOIN (VALUES (1.0), (10.0), (39.0)) w(horizon),
     LATERAL (SELECT sum(probability) AS total, sum(n * probability) AS mean FROM purchase_distribution(f.mbg, w.horizon, h.x, h.t_x, h.t)) d
UNION ALL
SELECT 'Pareto/NBD', h.x, h.t_x, h.t, w.horizon, d.total, d.mean, expected_purchases(f.pareto, w.horizon, h.x, h.t_x, h.t)
FROM histories h CROSS JOIN fitted f CROSS JOIN (VALUES (1.0), (10.0), (39.0)) w(horizon),
     LATERAL (SELECT sum(probability) AS total, sum(n * probability) AS mean FROM purchase_distribution(f.pareto, w.horizon, h.x, h.t_x, h.t)) d;
SELECT model, count(*) AS cases, max(abs(total - 1)) < 2e-10 AS sums_to_one,
       bool_and(abs(mean - expected) <= 1e-8 + 1e-7 * expected) AS mean_is_expected_purchases
FROM checked GROUP BY model ORDER BY model;

-- One CDNOW customer (x, t_x, T) = (2, 30.43, 38.86), BG/NBD, the next 39 weeks.
SELECT n, round(probability::numeric, 6) AS probability, round(cumulative_probability::numeric, 6) AS cumulative
FROM purchase_distribution((SELECT bgnbd FROM fitted), 39, 2, 30.43, 38.86) WHERE n <= 5;
-- P(X = 0) includes the probability that the customer has already dropped out.
SELECT round((purchase_probability(bgnbd, 0, 39, 2, 30.43, 38.86) - (1 - p_alive(bgnbd, 2, 30.43, 38.86)))::numeric, 6) AS p0_minus_dead
FROM fitted;

-- BG/BB (opportunities): donations-style parameters; nothing beyond the horizon's opportunities.
SELECT count(*) AS rows, round(sum(probability)::numeric, 12) AS total,
       round((sum(n * probability) - expected_purchases(bgbb_model(1.204, 0.750, 0.657, 2.783), 5, 3, 5, 6))::numeric, 12) AS mean_minus_expected
FROM purchase_distribution(bgbb_model(1.204, 0.750, 0.657, 2.783), 5, 3, 5, 6);

-- Bad input.
SELECT pg_temp.error_of($$SELECT purchase_probability(bgnbd_model(0.243, 4.414, 0.793, 2.426), -1, 10, 2, 30, 38)$$);
SELECT pg_temp.error_of($$SELECT purchase_probability(bgnbd_model(0.243, 4.414, 0.793, 2.426), 1, 10, 2, 40, 38)$$);
SELECT pg_temp.error_of($$SELECT purchase_probability(mbgnbd_model(0.525, 6.183, 0.891, 1.614), 1, -10, 2, 30, 38)$$);
SELECT pg_temp.error_of($$SELECT purchase_probability(pareto_nbd_model(0.55, 10.58, 0.61, 11.67), 1, 'NaN', 2, 30, 38)$$);
SELECT pg_temp.error_of($$SELECT * FROM purchase_distribution(pareto_nbd_model(0.55, 10.58, 0.61, 11.67), 10000, 132, 200, 200, 20)$$);
SELECT pg_temp.error_of($$SELECT * FROM purchase_distribution(bgnbd_model(0.243, 4.414, 0.793, 2.426), 10, 2, 30, 38, -1)$$);
-- A huge expected count is refused at once rather than after max_n terms.
SELECT pg_temp.error_of($$SELECT * FROM purchase_distribution(bgnbd_model(0.24, 4.41, 0.79, 2.43), 10, 1e6, 100, 100, 1000)$$);
SELECT pg_temp.error_of($$SELECT purchase_probability(bgbb_model(1.204, 0.750, 0.657, 2.783), 1, 2.5, 3, 5, 6)$$);
