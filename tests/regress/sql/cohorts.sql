-- Issue 11: cohort analysis. clv_cohorts on the CDNOW transactions equals an independent pandas
-- computation (tests/data/cohort, made by a separate script) for four (cohort, period) grain pairs,
-- every column; cohort_of; bad input with SQLSTATEs.
SET extra_float_digits = 0;
CREATE SCHEMA cohort_test;
SET search_path = cohort_test, public;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
\getenv data CLV_TEST_DATA
\set raw :data '/cdnow/CDNOW_sample.txt'
CREATE TABLE cdnow_raw (line text);
COPY cdnow_raw FROM :'raw';
CREATE TABLE cdnow AS
SELECT f[2]::int AS customer, to_date(f[3], 'YYYYMMDD') AS day, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_raw) q;

CREATE TABLE pandas (grains text, cohort date, period int, cohort_size bigint, active_customers bigint,
                     retention_rate float8, transactions bigint, revenue float8, revenue_per_customer float8,
                     cumulative_revenue_per_customer float8, customers_observed bigint);
CREATE TEMP TABLE one (LIKE pandas);
ALTER TABLE one DROP COLUMN grains;
\set f :data '/cohort/cdnow_month_month.csv'
COPY one FROM :'f' (FORMAT csv, HEADER);
INSERT INTO pandas SELECT 'month/month', * FROM one; TRUNCATE one;
\set f :data '/cohort/cdnow_quarter_month.csv'
COPY one FROM :'f' (FORMAT csv, HEADER);
INSERT INTO pandas SELECT 'quarter/month', * FROM one; TRUNCATE one;
\set f :data '/cohort/cdnow_week_week.csv'
COPY one FROM :'f' (FORMAT csv, HEADER);
INSERT INTO pandas SELECT 'week/week', * FROM one; TRUNCATE one;
\set f :data '/cohort/cdnow_month_week.csv'
COPY one FROM :'f' (FORMAT csv, HEADER);
INSERT INTO pandas SELECT 'month/week', * FROM one;

CREATE TABLE ours AS
SELECT g.cohort_grain || '/' || g.period_grain AS grains, c.*
FROM (VALUES ('month', 'month'), ('quarter', 'month'), ('week', 'week'), ('month', 'week')) g(cohort_grain, period_grain),
     LATERAL clv_cohorts('cdnow', 'customer', 'day', 'amount', g.cohort_grain, g.period_grain) c;

-- Same rows (no row missing on either side) and every column equal: counts exactly, money and
-- rates to 1e-9 relative (the CSV has 12 significant digits).
SELECT p.grains, count(*) AS rows, count(o.cohort) AS matched,
       count(*) FILTER (WHERE o.cohort_size <> p.cohort_size OR o.customers_observed <> p.customers_observed
                        OR o.active_customers <> p.active_customers OR o.transactions <> p.transactions) AS count_mismatches,
       max(greatest(abs(o.revenue - p.revenue) / greatest(abs(p.revenue), 1),
                    abs(o.retention_rate - p.retention_rate),
                    abs(o.revenue_per_customer - p.revenue_per_customer) / greatest(p.revenue_per_customer, 1),
                    abs(o.cumulative_revenue_per_customer - p.cumulative_revenue_per_customer) / greatest(p.cumulative_revenue_per_customer, 1))) < 1e-9 AS values_agree
FROM pandas p LEFT JOIN ours o USING (grains, cohort, period)
GROUP BY p.grains ORDER BY p.grains;
SELECT grains, count(*) AS rows_only_in_sql FROM ours o
WHERE NOT EXISTS (SELECT 1 FROM pandas p WHERE p.grains = o.grains AND p.cohort = o.cohort AND p.period = o.period)
GROUP BY grains;

-- The month cohorts' first periods: retention and the empirical CLV curve.
SELECT cohort, period, cohort_size, active_customers, round(retention_rate::numeric, 4) AS retention,
       round(revenue::numeric, 2) AS revenue, round(cumulative_revenue_per_customer::numeric, 2) AS clv_curve
FROM ours WHERE grains = 'month/month' AND period <= 2 ORDER BY cohort, period;

-- An explicit observation end cuts transactions after it, and periods end there.
SELECT max(period) AS last_period, sum(transactions) AS transactions
FROM clv_cohorts('cdnow', 'customer', 'day', 'amount', 'month', 'month', '1997-09-30');
SELECT count(*) AS transactions FROM cdnow WHERE day <= '1997-09-30';

-- cohort_of is the cohort definition, for a customer feature: equal to pandas' cohort of every
-- customer for the three grains.
CREATE TABLE pandas_customers (customer int, first_purchase date, cohort_month date, cohort_week date, cohort_quarter date);
\set f :data '/cohort/cdnow_customer_cohorts.csv'
COPY pandas_customers FROM :'f' (FORMAT csv, HEADER);
SELECT count(*) AS customers,
       count(*) FILTER (WHERE cohort_of(c.first, 'month') = p.cohort_month AND cohort_of(c.first, 'week') = p.cohort_week
                          AND cohort_of(c.first, 'quarter') = p.cohort_quarter AND c.first = p.first_purchase) AS equal
FROM (SELECT customer, min(day) AS first FROM cdnow GROUP BY customer) c JOIN pandas_customers p USING (customer);
SELECT cohort_of('1997-02-11'::date, 'quarter'), cohort_of('1997-02-11 10:00'::timestamp, 'week'),
       cohort_of('1997-02-11'::date, 'year');

-- Bad input.
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', 'day', 'amount', 'fortnight')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', 'day', 'amount', 'month', 'hour')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', 'nope', 'amount')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', 'amount', 'amount')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('no_such_table', 'customer', 'day', 'amount')$$);
SELECT pg_temp.error_of($$SELECT cohort_of(now(), 'decade')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', 'day', 'amount', observation_end => 'infinity')$$);
CREATE TABLE odd (customer int, ts timestamp, amount numeric);
INSERT INTO odd VALUES (1, '2024-01-01', 1), (1, '2024-02-01', 'NaN');
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('odd', 'customer', 'ts', 'amount')$$);
UPDATE odd SET amount = 2;
INSERT INTO odd VALUES (2, '-infinity', 1);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('odd', 'customer', 'ts', 'amount')$$);
-- NULL customers and times are ignored, a NULL amount counts 0.
DELETE FROM odd WHERE customer = 2;
INSERT INTO odd VALUES (3, '2024-01-01', NULL), (NULL, '2024-01-01', 1), (4, NULL, 5);
SELECT * FROM clv_cohorts('odd', 'customer', 'ts', 'amount', 'year');
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts(NULL, 'customer', 'day', 'amount')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('cdnow', 'customer', NULL, 'amount')$$);
-- A stray date decades away: refused before building billions of cells.
INSERT INTO odd VALUES (5, '2999-12-31', 1);
SELECT pg_temp.error_of($$SELECT * FROM clv_cohorts('odd', 'customer', 'ts', 'amount', 'day')$$);
SELECT count(*) AS year_rows FROM clv_cohorts('odd', 'customer', 'ts', 'amount', 'year');
-- An empty source (or one with only NULL customers / times): no rows.
CREATE TABLE empty (customer int, ts timestamp, amount numeric);
SELECT count(*) FROM clv_cohorts('empty', 'customer', 'ts', 'amount');
INSERT INTO empty VALUES (NULL, '2024-01-01', 1), (1, NULL, 1);
SELECT count(*) FROM clv_cohorts('empty', 'customer', 'ts', 'amount');
-- Nothing to analyse: no rows.
SELECT count(*) FROM clv_cohorts('cdnow', 'customer', 'day', 'amount', 'month', 'month', '1990-01-01');

RESET search_path;
DROP SCHEMA cohort_test CASCADE;
