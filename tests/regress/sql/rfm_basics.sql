-- RFM aggregate: lifetimes semantics on small hand-checked examples, units, NULLs, bad input.
CREATE EXTENSION IF NOT EXISTS clv_ext;
SET extra_float_digits = 0;

-- Report the SQLSTATE and message of a failing statement, so tests pin the error class.
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

CREATE TABLE tx (customer int, ts date, amount numeric);
INSERT INTO tx VALUES
  -- customer 1 of CDNOW: three purchases up to the end, one after it (ignored)
  (1, '1997-01-01', 29.33), (1, '1997-01-18', 29.73), (1, '1997-08-02', 14.96), (1, '1997-12-12', 26.48),
  -- two purchases on one day are merged into one period (amounts summed)
  (2, '1997-03-01', 10), (2, '1997-03-01', 5), (2, '1997-03-08', 7), (2, '1997-03-09', 1),
  -- one-time buyer: frequency 0, monetary value 0
  (3, '1997-09-30', 42),
  -- only purchases after the observation end: no summary (NULL), as lifetimes drops them
  (4, '1997-10-01', 8),
  -- a refund (negative amount) is summed into its period like any amount
  (5, '1997-05-01', 20), (5, '1997-06-01', 30), (5, '1997-06-01', -30), (5, '1997-07-01', 12),
  -- NULL time: row skipped; NULL amount: counted as a purchase worth 0
  (6, NULL, 99), (6, '1997-02-01', 10), (6, '1997-02-10', NULL);

CREATE TABLE s AS
SELECT customer, rfm(ts, amount, '1997-09-30') AS d, rfm(ts, amount, '1997-09-30', 'week') AS w,
       rfm(ts, amount, '1997-09-30', 'month') AS m
FROM tx GROUP BY customer;

SELECT customer, frequency(d), round(recency(d, 'week')::numeric, 4) AS recency_weeks,
       round(tenure(d, 'week')::numeric, 4) AS t_weeks, round(monetary_value(d)::numeric, 4) AS monetary,
       transactions(d), total_amount(d), round(average_order_value(d)::numeric, 4) AS aov
FROM s ORDER BY customer;

-- Days are the default unit; first/last purchase and inter-purchase statistics.
SELECT customer, recency(d), tenure(d), time_since_last_purchase(d), first_purchase(d), last_purchase(d),
       round(interpurchase_time_mean(d)::numeric, 4) AS gap_mean, round(interpurchase_time_cv(d)::numeric, 4) AS gap_cv
FROM s ORDER BY customer;

-- Week periods start on Monday: 1997-03-08 (Saturday) and 1997-03-09 (Sunday) share a week,
-- so customer 2 has two weekly periods. Month periods: tenure in months of 30.436875 days.
SELECT customer, frequency(w) AS f_week, recency(w) AS r_week, tenure(w) AS t_week,
       frequency(m) AS f_month, recency(m) AS r_month, round(tenure(m)::numeric, 6) AS t_month
FROM s ORDER BY customer;

-- All fields at once for a materialized view.
SELECT customer, f.* FROM s CROSS JOIN LATERAL rfm_fields(s.d, 'week') f WHERE customer IN (1, 3) ORDER BY customer;

-- The text form is JSON and reads back to an equal value.
SELECT d FROM s WHERE customer = 2;
SELECT (d::text::rfm_summary)::text = d::text AS text_round_trip FROM s WHERE customer = 2;

-- An empty group (no rows at all) gives NULL, as other aggregates do.
SELECT rfm(ts, amount, '1997-09-30') IS NULL AS empty_is_null FROM tx WHERE false;

-- Bad input: each with its SQLSTATE.
SELECT pg_temp.error_of($$SELECT rfm(ts, 'NaN'::float8, '1997-09-30') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, 'Infinity'::float8, '1997-09-30') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, 'NaN'::numeric, '1997-09-30') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, amount, '1997-09-30', 'fortnight') FROM tx$$);
SELECT pg_temp.error_of($$SELECT recency(rfm(ts, amount, '1997-09-30'), 'hour') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, amount, NULL) FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm('infinity'::date, amount, '1997-09-30') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, amount, 'infinity') FROM tx$$);
SELECT pg_temp.error_of($$SELECT rfm(ts, amount, ('1997-09-30'::date + customer)) FROM tx WHERE ts IS NOT NULL$$);
SELECT pg_temp.error_of($$SELECT rfm_holdout(ts, amount, '1997-09-30', '1997-01-01', 'day') FROM tx$$);
SELECT pg_temp.error_of($$SELECT '{"version": 9}'::rfm_summary$$);
SELECT pg_temp.error_of($$SELECT 'not json'::rfm_summary$$);
SELECT pg_temp.error_of($$SELECT rollup(x) FROM (SELECT rfm(ts, amount, '1997-09-30') FROM tx UNION ALL SELECT rfm(ts, amount, '1997-09-30', 'week') FROM tx) q(x)$$);
