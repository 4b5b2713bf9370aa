-- The aggregate is parallel safe: under a forced parallel plan (Partial Aggregate in workers,
-- combine in the leader) every summary equals the serial one: counts, recency and tenure exactly,
-- amounts to 1e-12 relative (floating-point sums depend on addition order, as sum(float8) does).
SET extra_float_digits = 0;
CREATE TABLE ptx AS
SELECT (i % 5000)::int AS customer,
       date '2020-01-01' + ((i * 7919) % 700)::int AS ts,
       ((i * 104729) % 10000) / 100.0 AS amount
FROM generate_series(1, 200000::bigint) i;
ANALYZE ptx;

SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial AS SELECT customer, rfm(ts, amount, '2021-06-30', 'week') AS s FROM ptx GROUP BY customer;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF) SELECT customer, rfm(ts, amount, '2021-06-30', 'week') FROM ptx GROUP BY customer;
CREATE TABLE par AS SELECT customer, rfm(ts, amount, '2021-06-30', 'week') AS s FROM ptx GROUP BY customer;
RESET enable_hashagg;
EXPLAIN (COSTS OFF) SELECT rfm(ts, amount, '2021-06-30') FROM ptx;
CREATE TABLE whole AS SELECT rfm(ts, amount, '2021-06-30', 'week') AS s FROM ptx;

CREATE FUNCTION pg_temp.same(a rfm_summary, b rfm_summary) RETURNS boolean LANGUAGE sql AS $$
    SELECT frequency(a) = frequency(b) AND recency(a) = recency(b) AND tenure(a) = tenure(b)
       AND transactions(a) = transactions(b) AND first_purchase(a) = first_purchase(b)
       AND abs(monetary_value(a) - monetary_value(b)) <= 1e-12 * greatest(1, abs(monetary_value(a)))
       AND abs(total_amount(a) - total_amount(b)) <= 1e-12 * greatest(1, abs(total_amount(a)))
$$;

SELECT count(*) AS customers, count(*) FILTER (WHERE NOT coalesce(pg_temp.same(serial.s, par.s), false)) AS differing,
       sum(frequency(par.s)) AS total_repeat_weeks
FROM serial FULL JOIN par USING (customer);

-- Re-aggregating the per-customer summaries equals summarising all rows at once, in parallel too.
SELECT pg_temp.same((SELECT rollup(s) FROM serial), (SELECT s FROM whole)) AS rollup_equals_whole,
       frequency(s) AS whole_frequency FROM whole;
