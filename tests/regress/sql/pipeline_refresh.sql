-- Incremental refresh (clv_pipeline_refresh, docs/refresh.md) against a full recompute. A seeded
-- population (simulate_transactions + setseed/random) arrives in 9 batches: an initial load and 8
-- appends, each moving the observation end two weeks on. Rows arrive out of time order: rows held
-- back and inserted late (time before the last run's mark), rows dated after the observation end
-- that are inserted early, same-day refunds and NULL amounts, new customers, NULL customers and
-- times; batch 5 deletes old rows, batch 6 keeps the observation end. After every batch two refreshed
-- schemas - r_time (high-water mark on the time column, verified totals) and r_arrival (arrival
-- column id, a bigserial) - must equal a full clv_pipeline run on the same rows: summaries exactly
-- (monetary value and totals to 1e-12 relative), model parameters to 1e-9 relative, the same tiers,
-- clusters and segments.
SET extra_float_digits = 0;
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE SCHEMA refresh_test;
SET search_path = refresh_test, public;

-- Observation end of batch b: 2024-03-31, then two weeks more per batch.
CREATE FUNCTION end_of(b integer) RETURNS date LANGUAGE sql IMMUTABLE AS $$ SELECT date '2024-03-31' + 14 * b $$;

-- The population: BG/NBD customers acquired over 40 weeks from 2023-01-02, observed for 80 weeks.
SELECT setseed(0.4242);
CREATE TABLE universe AS
SELECT customer_id::integer AS customer_id,
       timestamptz '2023-01-02 00:00+00' + make_interval(secs => t * 7 * 86400) AS ts,
       round(amount::numeric, 2) AS amount, random() < 0.3 AS coupon, random() AS u
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                           customers => 700, horizon => 80, acquisition => 40, seed => 17)
ORDER BY customer_id, t;
-- New customers acquired while the batches arrive (from 2024-03-04, keys from 1001).
INSERT INTO universe
SELECT 1000 + customer_id::integer, timestamptz '2024-03-04 00:00+00' + make_interval(secs => t * 7 * 86400),
       round(amount::numeric, 2), random() < 0.3, random()
FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                           customers => 150, horizon => 20, acquisition => 20, seed => 18)
ORDER BY customer_id, t;
-- Same-day partial refunds (negative amounts) and NULL amounts beside some purchases, arriving
-- with them (same u).
INSERT INTO universe
SELECT customer_id, ts, -round(0.3 * amount, 2), false, u FROM universe WHERE u BETWEEN 0.2 AND 0.23;
INSERT INTO universe
SELECT customer_id, ts, NULL, coupon, u FROM universe WHERE u BETWEEN 0.5 AND 0.51;
-- Rows the pipeline skips: no customer, no time.
INSERT INTO universe VALUES (NULL, timestamptz '2024-04-20 10:00+00', 5, false, 0.9), (NULL, timestamptz '2023-05-01 10:00+00', 7, true, 0.9),
                            (42, NULL, 9, false, 0.9), (43, NULL, 3, true, 0.9);
-- The batch a row belongs to by its time, and the batch it is inserted in: most on time; some held
-- back to batch 3 or 6 (late: their time is before the last run's mark); some inserted one batch
-- early (dated after that run's observation end, which ignores them until a later end covers them).
ALTER TABLE universe ADD COLUMN due integer, ADD COLUMN batch integer;
UPDATE universe SET due = CASE WHEN ts IS NULL OR (ts AT TIME ZONE 'UTC')::date <= end_of(0) THEN 0
                                   ELSE least(8, ((ts AT TIME ZONE 'UTC')::date - end_of(0) + 13) / 14) END;
UPDATE universe SET batch = CASE WHEN u < 0.04 AND due < 3 THEN 3
                                 WHEN u < 0.04 AND due BETWEEN 3 AND 5 THEN 6
                                 WHEN u > 0.9 AND due >= 1 THEN due - 1
                                 ELSE due END;
SELECT count(*) AS rows, count(DISTINCT customer_id) AS customers, count(*) FILTER (WHERE batch > due) AS late_rows,
       count(*) FILTER (WHERE batch < due) AS early_rows, count(*) FILTER (WHERE amount < 0) AS refunds,
       (SELECT count(*) FROM (SELECT customer_id FROM universe GROUP BY 1 HAVING min(batch) > 0) c) AS customers_after_batch_0
FROM universe;

CREATE TABLE tx (id bigserial PRIMARY KEY, customer_id integer, ts timestamptz, amount numeric, coupon boolean);
CREATE INDEX ON tx (ts);
CREATE FUNCTION load_batch(b integer) RETURNS bigint LANGUAGE sql AS $$
    WITH ins AS (INSERT INTO tx (customer_id, ts, amount, coupon)
                 SELECT customer_id, ts, amount, coupon FROM universe WHERE batch = b ORDER BY u RETURNING 1)
    SELECT count(*) FROM ins
$$;

-- Refreshed schema `inc` against full-run schema `ref` (same observation end): per-customer rows,
-- model parameters, tiers, clusters and segments.
CREATE FUNCTION compare(inc name, ref name)
RETURNS TABLE (customers bigint, summaries_equal boolean, params_equal boolean, tiers_equal boolean, clusters_equal boolean, segments_equal boolean)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH r AS (SELECT * FROM %1$I.clv_rfm a FULL JOIN %2$I.clv_rfm b USING (customer_id)),
        models AS (SELECT (SELECT m FROM %1$I.clv_models m ORDER BY run_id DESC LIMIT 1) AS a,
                          (SELECT m FROM %2$I.clv_models m ORDER BY run_id DESC LIMIT 1) AS b),
        params AS (SELECT x.value::float8 AS a, y.value::float8 AS b
                   FROM models, LATERAL (SELECT 'bgnbd' AS kind, (models.a).bgnbd::jsonb->'params' AS pa, (models.b).bgnbd::jsonb->'params' AS pb
                                         UNION ALL SELECT 'spend', (models.a).spend::jsonb->'params', (models.b).spend::jsonb->'params') k,
                        jsonb_each_text(k.pa) x JOIN jsonb_each_text(k.pb) y USING (key)),
        c AS (SELECT * FROM %1$I.clv_customers a FULL JOIN %2$I.clv_customers b USING (customer_id))
        SELECT (SELECT count(*) FROM r),
               (SELECT bool_and(a.frequency = b.frequency AND a.recency = b.recency AND a.tenure = b.tenure
                                AND a.transactions = b.transactions AND a.first_purchase = b.first_purchase AND a.last_purchase = b.last_purchase
                                AND abs(a.monetary_value - b.monetary_value) <= 1e-12 * abs(b.monetary_value)
                                AND abs(a.total_amount - b.total_amount) <= 1e-12 * abs(b.total_amount)
                                AND a.interpurchase_time_cv IS NOT DISTINCT FROM b.interpurchase_time_cv)
                FROM (SELECT customer_id, a.frequency, a.recency, a.tenure, a.transactions, a.first_purchase, a.last_purchase,
                             a.monetary_value, a.total_amount, a.interpurchase_time_cv FROM %1$I.clv_rfm a) a
                FULL JOIN %2$I.clv_rfm b USING (customer_id))
               AND (SELECT bool_and(a.discount_share = b.discount_share) FROM %1$I.clv_discounts a FULL JOIN %2$I.clv_discounts b USING (customer_id)),
               (SELECT bool_and(abs(a - b) <= 1e-9 * abs(b)) AND count(*) = 7 FROM params),
               (SELECT bool_and(a.tier = b.tier) FROM (SELECT customer_id, tier FROM %1$I.clv_customers) a FULL JOIN %2$I.clv_customers b USING (customer_id)),
               (SELECT bool_and(a.cluster = b.cluster) FROM (SELECT customer_id, cluster FROM %1$I.clv_customers) a FULL JOIN %2$I.clv_customers b USING (customer_id)),
               (SELECT bool_and(a.rfm_segment = b.rfm_segment AND a.named_segment = b.named_segment)
                FROM (SELECT customer_id, rfm_segment, named_segment FROM %1$I.clv_customers) a FULL JOIN %2$I.clv_customers b USING (customer_id))
    $q$, inc, ref);
END $$;

-- Batch 0 and the first full runs.
SELECT load_batch(0) AS rows_loaded;
SELECT run_id, customers FROM clv_pipeline('tx', 'customer_id', 'ts', 'amount', end_of(0), target_schema => 'r_time', discount_column => 'coupon');
SELECT run_id, customers FROM clv_pipeline('tx', 'customer_id', 'ts', 'amount', end_of(0), target_schema => 'r_arrival', discount_column => 'coupon',
                                           arrival_column => 'id');
SELECT time_mark = (SELECT max(ts) FROM tx WHERE (ts AT TIME ZONE 'UTC')::date <= end_of(0)) AS time_mark_is_newest_summarised,
       arrival_mark = (SELECT max(id) FROM tx WHERE customer_id IS NOT NULL) AS arrival_mark_is_largest_id,
       rows_aggregated = (SELECT count(*) FROM tx WHERE customer_id IS NOT NULL AND (ts AT TIME ZONE 'UTC')::date <= end_of(0)) AS rows_counted
FROM r_arrival.clv_pipeline_state;

-- Batches 1-8: append, (batch 5: delete old rows), refresh both, recompute in full, compare.
CREATE TABLE results (batch integer, rows_loaded bigint, schema text, run_mode text, customers bigint, summaries_equal boolean,
                      params_equal boolean, tiers_equal boolean, clusters_equal boolean, segments_equal boolean);
CREATE FUNCTION run_batch(b integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    e date := CASE WHEN b = 6 THEN end_of(5) ELSE end_of(b) END;  -- batch 6 keeps the end
    n bigint := load_batch(b);
BEGIN
    IF b = 5 THEN
        -- Deleted (cancelled) old transactions: only a verified refresh can notice.
        DELETE FROM tx WHERE id % 61 = 0 AND ts < timestamptz '2024-02-01 00:00+00';
    END IF;
    -- Odd batches rebuild r_time's materialized view, even ones diff it (clv.refresh_concurrently).
    PERFORM set_config('clv.refresh_concurrently', CASE WHEN b % 2 = 1 THEN 'off' ELSE 'on' END, true);
    PERFORM * FROM clv_pipeline_refresh('r_time', e);
    PERFORM set_config('clv.refresh_concurrently', '', true);
    PERFORM * FROM clv_pipeline_refresh('r_arrival', e, verify => CASE WHEN b = 5 THEN true END);
    PERFORM * FROM clv_pipeline('tx', 'customer_id', 'ts', 'amount', e, target_schema => 'full_run', discount_column => 'coupon');
    INSERT INTO results SELECT b, n, x.schema, (SELECT m FROM last_run_mode(x.schema) m), c.*
    FROM (VALUES ('r_time'), ('r_arrival')) x(schema), LATERAL compare(x.schema::name, 'full_run') c;
END $$;
CREATE FUNCTION last_run_mode(schema text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT run_mode FROM %I.clv_models ORDER BY run_id DESC LIMIT 1', schema);
END $$;
SELECT run_batch(b) FROM generate_series(1, 8) b;
SELECT * FROM results ORDER BY batch, schema DESC;
SELECT bool_and(summaries_equal AND params_equal AND tiers_equal AND clusters_equal AND segments_equal) AS refresh_equals_full_recompute
FROM results;

-- Every run recorded its mode and stage timings; K-means was fitted on every customer (fewer than
-- the 20,000 of its sample).
SELECT run_mode, count(*) AS runs, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(min(stage_seconds::text)::jsonb) k) AS stages
FROM r_time.clv_models GROUP BY run_mode ORDER BY run_mode;
SELECT (clusters::jsonb->>'n_rows')::bigint = customers AS kmeans_on_everyone FROM r_time.clv_models ORDER BY run_id DESC LIMIT 1;
-- Timing NOTICEs on request (not shown here: client_min_messages is warning).
SET clv.pipeline_timing = on;
SELECT run_id, customers FROM clv_pipeline_refresh('r_arrival', end_of(8));
RESET clv.pipeline_timing;
-- Tier migration between the last two refreshes, as after full runs.
SELECT sum(customers) = (SELECT count(*) FROM r_arrival.clv_customers) AS migration_covers_everyone FROM r_arrival.clv_tier_migration;

-- clv.refresh_concurrently = off rebuilds clv_customers as a new file (readers wait); on, the
-- default, diffs it in place (readers see the last run meanwhile). Same rows either way (above).
SELECT pg_relation_filenode('r_time.clv_customers') AS filenode \gset
SET clv.refresh_concurrently = off;
SELECT count(*) AS runs FROM clv_pipeline_refresh('r_time', end_of(8));
SELECT pg_relation_filenode('r_time.clv_customers') <> :filenode AS rebuilt,
       (SELECT count(*) FROM r_time.clv_customers) = (SELECT count(*) FROM r_time.clv_rfm) AS everyone_scored;
SELECT pg_relation_filenode('r_time.clv_customers') AS filenode \gset
SET clv.refresh_concurrently = on;
SELECT count(*) AS runs FROM clv_pipeline_refresh('r_time', end_of(8));
SELECT pg_relation_filenode('r_time.clv_customers') = :filenode AS diffed_in_place;
SET clv.refresh_concurrently = 'sometimes';
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_time', end_of(8))$$);
RESET clv.refresh_concurrently;
-- The spellings of a boolean setting are PostgreSQL's own (any case, unique prefixes); unset or
-- empty gives the default.
CREATE FUNCTION pg_temp.read_as(v text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('clv.refresh_concurrently', v, true);
    RETURN clv_setting_on('clv.refresh_concurrently', NULL);
END $$;
SELECT string_agg(format('%s=%s', v, pg_temp.read_as(v)), ' ' ORDER BY i) AS read_as
FROM unnest(ARRAY['on', 'OFF', ' Yes ', 'n', 'TRUE', 'f', '1', '0', 'of', 't']) WITH ORDINALITY u(v, i);
SET clv.refresh_concurrently = '';
SELECT clv_setting_on('clv.refresh_concurrently', true) AS empty_is_default, clv_setting_on('clv.no_such_setting', false) AS unset_is_default;
SET clv.refresh_concurrently = 'o';
SELECT pg_temp.error_of($$SELECT clv_setting_on('clv.refresh_concurrently', true)$$);
RESET clv.refresh_concurrently;
SET clv.pipeline_timing = 'loud';
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_time', end_of(8))$$);
RESET clv.pipeline_timing;
-- The per-customer tables are loaded before their primary keys are built; the keys are back.
SELECT conrelid::regclass AS tab, conname, pg_get_constraintdef(oid) AS key
FROM pg_constraint WHERE contype = 'p' AND conrelid IN ('r_time.clv_rfm'::regclass, 'r_time.clv_rfm_state'::regclass, 'r_time.clv_tier_history'::regclass)
ORDER BY conname;
-- When clv_customers must be re-created (its definition changed: another clv_ext version), objects
-- of the user's that depend on it are named (2BP01), not dropped with it; the pipeline's own
-- clv_tier_summary is re-created.
CREATE VIEW top_customers AS SELECT customer_id, clv FROM r_time.clv_customers WHERE tier = 'high';
COMMENT ON MATERIALIZED VIEW r_time.clv_customers IS 'a definition of another version';
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_time', end_of(8))$$);
SELECT count(*) > 0 AS still_there FROM top_customers;
DROP VIEW top_customers;
SELECT count(*) AS runs FROM clv_pipeline_refresh('r_time', end_of(8));
SELECT obj_description('r_time.clv_customers'::regclass, 'pg_class') <> 'a definition of another version' AS recreated,
       to_regclass('r_time.clv_tier_summary') IS NOT NULL AS tier_summary_back;

-- A refresh needs a full run's state, a later or equal observation end, and the same column types.
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('no_such_schema')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_time', '2024-01-01')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_time', 'infinity')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh(NULL)$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('tx', 'customer_id', 'ts', 'amount', '2024-06-30', target_schema => 'r_bad', arrival_column => 'coupon')$$);
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline('tx', 'customer_id', 'ts', 'amount', '2024-06-30', target_schema => 'r_bad', arrival_column => 'nope')$$);
CREATE TABLE tx_copy AS SELECT * FROM tx;
SELECT run_id FROM clv_pipeline('tx_copy', 'customer_id', 'ts', 'amount', end_of(8), target_schema => 'r_copy');
ALTER TABLE tx_copy ALTER COLUMN ts TYPE timestamp USING ts AT TIME ZONE 'UTC';
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_copy', '2024-12-31')$$);
-- A full run takes the new type; refreshes work again.
SELECT run_id FROM clv_pipeline('tx_copy', 'customer_id', 'ts', 'amount', end_of(8), target_schema => 'r_copy');
INSERT INTO tx_copy (customer_id, ts, amount) VALUES (1, '2024-12-01 10:00', 25);
SELECT run_id, customers FROM clv_pipeline_refresh('r_copy', '2024-12-31');
SELECT run_mode, pg_typeof(time_mark) AS time_mark_type,
       transactions(summary) = (SELECT count(*) FROM tx_copy WHERE customer_id = 1 AND ts IS NOT NULL) AS customer_1_complete
FROM r_copy.clv_models, r_copy.clv_pipeline_state, r_copy.clv_rfm_state WHERE run_id = 3 AND customer_id = 1;
DROP TABLE tx_copy;
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_copy', '2024-12-31')$$);
-- A NaN discount amount among the new rows is refused as in a full run.
CREATE TABLE tx_num AS SELECT customer_id, ts, amount, CASE WHEN coupon THEN 1.5 ELSE 0 END AS discount FROM tx;
SELECT run_id FROM clv_pipeline('tx_num', 'customer_id', 'ts', 'amount', end_of(8), target_schema => 'r_num', discount_column => 'discount');
INSERT INTO tx_num VALUES (1, timestamptz '2024-12-01 00:00+00', 10, 'NaN');
SELECT pg_temp.error_of($$SELECT * FROM clv_pipeline_refresh('r_num', '2024-12-31')$$);

RESET search_path;
DROP SCHEMA r_time, r_arrival, full_run, r_copy, r_num, refresh_test CASCADE;
