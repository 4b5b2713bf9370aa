-- rfm, rfm_holdout and rollup on Citus (coordinator + 2 workers, scripts/citus.sh): the same
-- summaries from distributed tables as from a plain copy on the coordinator, whether the table is
-- distributed by customer (the whole aggregate runs on the workers) or by another column (partial
-- states from the workers combined on the coordinator), and how Citus plans them.
-- No float is printed: each check says how many customers differ (0). Frequency, recency, tenure,
-- transactions, first/last purchase and the holdout counts must be equal; amounts (monetary value,
-- totals, averages) may differ by 1e-12 relative (the summation order differs).
-- Helpers (citus_test.*): tests/citus/helpers.sql.
SET citus.shard_count = 8;
-- 800 customers with 1 to 9 transactions each (4,004 rows) from 2023-01-01 to 2024-05-26, 137
-- after the observation end 2023-12-31, some on the same day; 8 rows with a NULL amount (a
-- purchase worth 0) and 8 with a NULL time (skipped).
CREATE TABLE tx_local AS
SELECT (c * 100 + k)::bigint AS order_id, c AS customer_id,
       CASE WHEN c % 100 = 7 AND k = 0 THEN NULL ELSE
       timestamp '2023-01-01' + make_interval(days => (c * 37) % 300 + k * (1 + (c * 13 + k * 7) % 29),
                                              hours => (c + k * 5) % 24) END AS ts,
       CASE WHEN c % 100 = 3 AND k = 0 THEN NULL ELSE round(((c * 7919 + k * 104729) % 10000) / 100.0 + 1, 2) END AS amount
FROM generate_series(1, 800) c, generate_series(0, 8) k
WHERE k <= (c * 31) % 9;
CREATE TABLE tx (LIKE tx_local);
SELECT create_distributed_table('tx', 'customer_id');
INSERT INTO tx SELECT * FROM tx_local;
CREATE TABLE tx_by_order (LIKE tx_local);
SELECT create_distributed_table('tx_by_order', 'order_id');
INSERT INTO tx_by_order SELECT * FROM tx_local;
SELECT logicalrelid, partmethod, column_to_column_name(logicalrelid, partkey) AS distributed_by,
       (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards
FROM pg_dist_partition p WHERE logicalrelid IN ('tx'::regclass, 'tx_by_order'::regclass) ORDER BY 1::text;
SELECT (SELECT count(*) FROM tx) AS tx, (SELECT count(*) FROM tx_by_order) AS tx_by_order, (SELECT count(*) FROM tx_local) AS tx_local,
       (SELECT count(DISTINCT customer_id) FROM tx_by_order) AS customers,
       (SELECT count(*) FROM tx_local WHERE ts > '2023-12-31') AS after_end;
SELECT count(DISTINCT nodeport) AS nodes, min(shards) AS min_shards, max(shards) AS max_shards
FROM (SELECT nodeport, count(*) AS shards FROM pg_dist_shard_placement
      WHERE shardid IN (SELECT shardid FROM pg_dist_shard WHERE logicalrelid = 'tx'::regclass) GROUP BY nodeport) q;

-- rfm per customer, distributed by customer: the whole aggregate runs on the workers.
SELECT * FROM citus_test.plan_of($$SELECT customer_id, rfm(ts, amount, '2023-12-31') FROM tx GROUP BY customer_id$$);
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local GROUP BY customer_id$$) AS by_customer;

-- rfm per customer, distributed by order: the customers' transactions are spread over the shards.
SELECT * FROM citus_test.plan_of($$SELECT customer_id, rfm(ts, amount, '2023-12-31') FROM tx_by_order GROUP BY customer_id$$);
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_by_order GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local GROUP BY customer_id$$) AS by_order;

-- The unit form (weeks start on Monday; months) and date / float8 input, distributed by order.
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts::date, amount::float8, '2023-12-31', 'week') AS s FROM tx_by_order GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts::date, amount::float8, '2023-12-31', 'week') AS s FROM tx_local GROUP BY customer_id$$) AS weeks;
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts, amount, '2023-12-31', 'month') AS s FROM tx GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31', 'month') AS s FROM tx_local GROUP BY customer_id$$) AS months;

-- rfm_holdout (calibration to 2023-09-30, holdout to 2023-12-31), by order and by customer.
SELECT * FROM citus_test.plan_of($$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') FROM tx_by_order GROUP BY customer_id$$);
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx_by_order GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx_local GROUP BY customer_id$$) AS holdout_by_order;
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx_local GROUP BY customer_id$$) AS holdout_by_customer;

-- A global aggregate: all 4,004 transactions as one history (a summary of several hundred
-- purchase days, beyond the inline state), over either table.
SELECT * FROM citus_test.plan_of($$SELECT rfm(ts, amount, '2023-12-31') FROM tx_by_order$$);
SELECT citus_test.compare_rfm($$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_by_order$$,
                           $$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local$$) AS global_by_order;
SELECT citus_test.compare_rfm($$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx$$,
                           $$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local$$) AS global_by_customer;
SELECT (SELECT count(*) FROM tx_by_order) = (SELECT count(*) FROM tx_local) AS same_count,
       (SELECT sum(amount) FROM tx_by_order) = (SELECT sum(amount) FROM tx_local) AS same_numeric_sum;

-- Stored summaries in a distributed table (per customer and month, distributed by month; a month
-- wholly after the observation end has a NULL summary), rolled up per customer: equal to one rfm
-- over all the customer's transactions (those with a time).
CREATE TABLE monthly (customer_id integer, month date, s rfm_summary);
SELECT create_distributed_table('monthly', 'month');
INSERT INTO monthly SELECT customer_id, date_trunc('month', ts)::date, rfm(ts, amount, '2023-12-31') FROM tx WHERE ts IS NOT NULL GROUP BY 1, 2;
SELECT count(*) AS rows, count(s) AS summaries FROM monthly;
SELECT * FROM citus_test.plan_of($$SELECT customer_id, rollup(s) FROM monthly GROUP BY customer_id$$);
SELECT citus_test.compare_rfm($$SELECT customer_id, rollup(s) AS s FROM monthly GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local WHERE ts IS NOT NULL GROUP BY customer_id$$) AS rollup_by_month;
SELECT citus_test.compare_rfm($$SELECT customer_id, s FROM (SELECT customer_id, rollup(s) AS s FROM monthly GROUP BY customer_id) q$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local WHERE ts IS NOT NULL GROUP BY customer_id$$) AS rollup_subquery;

-- Accessors on the workers (full pushdown) and on the coordinator agree.
SELECT count(*) AS customers, sum(f) AS repeat_purchases, sum(r) AS recency_days, sum(t) AS tenure_days
FROM (SELECT customer_id, frequency(s) AS f, recency(s) AS r, tenure(s) AS t
      FROM (SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx GROUP BY customer_id) q) d;
SELECT count(*) AS customers, sum(f) AS repeat_purchases, sum(r) AS recency_days, sum(t) AS tenure_days
FROM (SELECT customer_id, frequency(s) AS f, recency(s) AS r, tenure(s) AS t
      FROM (SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local GROUP BY customer_id) q) d;

-- Without coordinator aggregation Citus must push the aggregates down as partial states.
SET citus.coordinator_aggregation_strategy = 'disabled';
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local GROUP BY customer_id$$) AS disabled_by_customer;
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_by_order GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local GROUP BY customer_id$$) AS disabled_by_order;
SELECT citus_test.compare_rfm($$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx_by_order GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm_holdout(ts, amount, '2023-09-30', '2023-12-31', 'week') AS s FROM tx_local GROUP BY customer_id$$) AS disabled_holdout;
SELECT citus_test.compare_rfm($$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_by_order$$,
                           $$SELECT 0 AS customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local$$) AS disabled_global;
SELECT citus_test.compare_rfm($$SELECT customer_id, rollup(s) AS s FROM monthly GROUP BY customer_id$$,
                           $$SELECT customer_id, rfm(ts, amount, '2023-12-31') AS s FROM tx_local WHERE ts IS NOT NULL GROUP BY customer_id$$) AS disabled_rollup;
RESET citus.coordinator_aggregation_strategy;

-- EXPLAIN ANALYZE reads the workers' results in the binary protocol: rfm_summary has send/receive.
SELECT citus_test.error_of($$EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT customer_id, rfm(ts, amount, '2023-12-31') FROM tx GROUP BY customer_id$$);
-- With partial aggregation it fails in Citus 13.2 for any custom aggregate (also one with a
-- float8 state): EXPLAIN ANALYZE stores each task's result in a table, and worker_partial_agg
-- returns a cstring. The query itself runs.
SELECT citus_test.error_of($$EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT rfm(ts, amount, '2023-12-31') FROM tx_by_order$$);
