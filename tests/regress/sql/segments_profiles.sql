-- Issue 11: segment profiles and Discount Seekers. A pipeline run on CDNOW with a discount column
-- (here: the purchase had 3 or more CDs); clv_segment_profiles equals plain SQL written
-- separately below; discount_share equals a direct count; the Discount Seekers rule uses it.
SET extra_float_digits = 0;
SET client_min_messages = warning;
CREATE SCHEMA profile_test;
SET search_path = profile_test, public;
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
SELECT f[2]::int AS customer, to_date(f[3], 'YYYYMMDD') AS day, f[4]::int AS cds, f[5]::numeric AS amount,
       f[4]::int >= 3 AS bulk_discount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_raw) q;

SELECT customers FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30',
                                   target_schema => 'profile_run', discount_column => 'bulk_discount');

-- discount_share: the share of the customer's transactions up to the observation end with a discount.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(c.discount_share - d.share) < 1e-12) AS equal_share
FROM profile_run.clv_customers c
JOIN (SELECT customer, avg(bulk_discount::int) AS share FROM cdnow WHERE day <= '1997-09-30' GROUP BY customer) d
  ON d.customer = c.customer_id;
-- Discount Seekers: at least half of the purchases discounted, and not in a segment whose rule
-- comes first (One-Timers, At Risk, Champions): the customers with share >= 0.5 fall only there.
SELECT named_segment, count(*) AS customers, min(discount_share) >= 0.5 AS all_at_least_half
FROM profile_run.clv_customers WHERE named_segment = 'Discount Seekers' GROUP BY 1;
SELECT named_segment, count(*) AS customers_with_share_at_least_half FROM profile_run.clv_customers
WHERE discount_share >= 0.5 GROUP BY 1 ORDER BY 1;
-- Each customer's cohort.
SELECT cohort, count(*) FROM profile_run.clv_customers GROUP BY 1 ORDER BY 1;

-- Profiles of the value tiers, against plain SQL: sizes, shares, means, medians and the
-- standardized differences (segment mean - overall mean) / overall population standard deviation.
CREATE TABLE expected AS
WITH c AS (SELECT * FROM profile_run.clv_customers),
pop AS (SELECT count(*) AS n, sum(clv) AS clv_total, avg(frequency) AS mf, stddev_pop(frequency) AS sf,
               avg(p_alive) AS mp, stddev_pop(p_alive) AS sp, avg(discount_share) AS md, stddev_pop(discount_share) AS sd
        FROM c)
SELECT tier, count(*) AS customers, count(*)::float8 / min(pop.n) AS customer_share, sum(clv) / min(pop.clv_total) AS clv_share,
       avg(frequency) AS mean_frequency,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY monetary_value) AS median_monetary_value,
       (avg(frequency) - min(pop.mf)) / min(pop.sf) AS d_frequency,
       (avg(p_alive) - min(pop.mp)) / min(pop.sp) AS d_p_alive,
       (avg(discount_share) - min(pop.md)) / min(pop.sd) AS d_discount
FROM c CROSS JOIN pop GROUP BY tier;
SELECT p.segment, p.customers = e.customers AS customers_equal,
       abs(p.customer_share - e.customer_share) < 1e-12 AND abs(p.clv_share - e.clv_share) < 1e-12 AS shares_equal,
       abs(p.mean_frequency - e.mean_frequency) < 1e-12 AND abs(p.median_monetary_value - e.median_monetary_value) < 1e-12 AS stats_equal,
       abs((p.standardized_differences->>'frequency')::float8 - e.d_frequency) < 1e-9
       AND abs((p.standardized_differences->>'p_alive')::float8 - e.d_p_alive) < 1e-9
       AND abs((p.standardized_differences->>'discount_share')::float8 - e.d_discount) < 1e-9 AS differences_equal,
       p.standardized_differences->'churn_probability' AS churn_without_model
FROM clv_segment_profiles('profile_run', 'tier') p JOIN expected e ON e.tier = p.segment
ORDER BY p.clv_share DESC;
-- The printed profiles, as the pipeline view shows them (rounded for a stable output).
SELECT segmentation, segment, customers, round(customer_share::numeric, 3) AS customer_share,
       round(clv_share::numeric, 3) AS clv_share, round(mean_frequency::numeric, 2) AS mean_frequency,
       round(median_p_alive::numeric, 3) AS median_p_alive, defining_traits
FROM profile_run.clv_segment_profiles WHERE segmentation IN ('tier', 'named_segment');
SELECT segmentation, count(*) AS segments, sum(customers) AS customers, round(sum(customer_share)::numeric, 12) AS share
FROM clv_segment_profiles('profile_run') GROUP BY 1 ORDER BY 1;

-- Without a discount column nobody is a Discount Seeker and discount_share is NULL.
SELECT customers FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30', target_schema => 'profile_run');
SELECT count(*) FILTER (WHERE named_segment = 'Discount Seekers') AS discount_seekers,
       count(discount_share) AS with_share FROM profile_run.clv_customers;
-- A numeric discount column: discounted when > 0.
ALTER TABLE cdnow ADD COLUMN discount_amount numeric;
UPDATE cdnow SET discount_amount = CASE WHEN bulk_discount THEN 1.5 WHEN cds = 2 THEN 0 END;
SELECT customers FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30', target_schema => 'profile_run',
                                   discount_column => 'discount_amount');
SELECT count(*) FILTER (WHERE named_segment = 'Discount Seekers') AS discount_seekers FROM profile_run.clv_customers;

-- Bad input.
SELECT pg_temp.error_of($$SELECT * FROM clv_segment_profiles('no_such_schema')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_segment_profiles('profile_run', 'age_band')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_segment_profiles(NULL)$$);
UPDATE cdnow SET discount_amount = 'NaN' WHERE customer = 1;
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30', target_schema => 'profile_run', discount_column => 'discount_amount')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30', target_schema => 'profile_run', discount_column => 'day')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('cdnow', 'customer', 'day', 'amount', '1997-09-30', target_schema => 'profile_run', discount_column => 'coupon')$$);

RESET search_path;
DROP SCHEMA profile_run CASCADE;
DROP SCHEMA profile_test CASCADE;
