-- Validation: the stable train/test split clv_in_training_set and the prediction_errors aggregate.
-- Expected split values come from an independent Python implementation of SplitMix64 / FNV-1a 64.
-- Own schema: the regression tests share one database, so table names must not collide.
CREATE SCHEMA segments_validation;
SET search_path = segments_validation, public;
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Key 0, seed 0: u = splitmix64(0) / 2^64 = 0.88331080821..., so training iff share > u.
SELECT clv_in_training_set(0, 0, 0.8834) AS share_above_u, clv_in_training_set(0, 0, 0.8833) AS share_below_u,
       clv_in_training_set(0) AS default_seed_0_share_80;
-- Pinned decisions (seed 0, 7, -3; share 0.8), negative keys and the largest bigint included.
SELECT key, clv_in_training_set(key) AS seed_0, clv_in_training_set(key, 7) AS seed_7, clv_in_training_set(key, -3) AS seed_minus_3
FROM unnest(ARRAY[0, 1, 2, 3, 42, -1, -42, 9223372036854775807]) key;
-- About share of many keys: 79,925 of 100,000 at 80%; 50,286 of 100,000 at 50% with seed 7.
SELECT count(*) FILTER (WHERE clv_in_training_set(k)) AS train_80, count(*) FILTER (WHERE clv_in_training_set(k, 7, 0.5)) AS train_50_seed_7
FROM generate_series(0, 99999) k;
SELECT count(*) FILTER (WHERE clv_in_training_set(k, 7, 0.5)) AS train_50_seed_7_from_1 FROM generate_series(1, 100000) k;
-- share 0: nobody; share 1: everybody.
SELECT count(*) FILTER (WHERE clv_in_training_set(k, 5, 0)) AS share_0, count(*) FILTER (WHERE clv_in_training_set(k, 5, 1)) AS share_1
FROM generate_series(1, 1000) k;
-- Text keys (FNV-1a 64 of the UTF-8 bytes first); '42' and 42 land differently.
SELECT key, clv_in_training_set(key, 99) AS seed_99, clv_in_training_set(key) AS seed_0
FROM unnest(ARRAY['cust-1', 'cust-2', '42', '', 'ü']) key;
SELECT count(*) FILTER (WHERE clv_in_training_set('cust-' || k, 99)) AS text_train FROM generate_series(1, 20000) k;
-- docs/segments.md example: a split that is the same on every run.
SELECT clv_in_training_set(customer_id, seed => 2024) AS training, count(*)
FROM generate_series(1, 1000) customer_id GROUP BY 1 ORDER BY 1;
SELECT clv_in_training_set(NULL::bigint) IS NULL AS null_key, clv_in_training_set(1, NULL) IS NULL AS null_seed;
SELECT pg_temp.error_of($$SELECT clv_in_training_set(1, 0, 1.5)$$);
SELECT pg_temp.error_of($$SELECT clv_in_training_set(1, 0, -0.1)$$);
SELECT pg_temp.error_of($$SELECT clv_in_training_set(1, 0, 'NaN')$$);
SELECT pg_temp.error_of($$SELECT clv_in_training_set('a', 0, 'Infinity')$$);

-- prediction_errors: errors -1, 0, -2 -> MAE 1, RMSE sqrt(5/3) = 1.29099444873581, bias -1; NULL pairs skipped.
SELECT prediction_errors(p, a) FROM (VALUES (1.0, 2.0), (2, 2), (3, 5), (NULL, 7), (8, NULL)) t(p, a);
-- Errors -0.5, 0.5, -1, 0, 2: MAE 0.8, RMSE sqrt(1.1) = 1.04880884817015, bias 0.2.
SELECT e->>'n' AS n, round((e->>'mae')::numeric, 12) AS mae, round((e->>'rmse')::numeric, 12) AS rmse, round((e->>'bias')::numeric, 12) AS bias
FROM (SELECT prediction_errors(p, a) AS e FROM (VALUES (0.5, 1.0), (1.5, 1), (2, 3), (0, 0), (4, 2)) t(p, a)) q;
-- Per group, and agreement with the plain SQL formulas.
CREATE TABLE holdout AS
SELECT i % 3 AS grp, ((i * 7919) % 1000) / 100.0::float8 AS predicted, ((i * 104729) % 1300) / 100.0::float8 AS actual
FROM generate_series(1, 30000::bigint) i;
SELECT grp, (e->>'n')::int AS n,
       abs((e->>'mae')::float8 - mae) < 1e-12 AS mae_ok, abs((e->>'rmse')::float8 - rmse) < 1e-12 AS rmse_ok,
       abs((e->>'bias')::float8 - bias) < 1e-12 AS bias_ok, round(mae::numeric, 4) AS mae
FROM (SELECT grp, prediction_errors(predicted, actual) AS e, avg(abs(predicted - actual)) AS mae,
             sqrt(avg((predicted - actual) ^ 2)) AS rmse, avg(predicted - actual) AS bias
      FROM holdout GROUP BY grp) q
ORDER BY grp;
-- Parallel plan: same n, same metrics to 1e-12 (floating-point sums depend on the order).
CREATE TABLE holdout_big AS SELECT h.* FROM holdout h, generate_series(1, 10);
ANALYZE holdout_big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial_errors AS SELECT prediction_errors(predicted, actual) AS e FROM holdout_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT prediction_errors(predicted, actual) FROM holdout_big;
SELECT p->'n' = s->'n' AS same_n, p->'n' AS n,
       abs((p->>'mae')::float8 / (s->>'mae')::float8 - 1) < 1e-12 AS mae_ok,
       abs((p->>'rmse')::float8 / (s->>'rmse')::float8 - 1) < 1e-12 AS rmse_ok,
       abs((p->>'bias')::float8 / (s->>'bias')::float8 - 1) < 1e-12 AS bias_ok
FROM (SELECT prediction_errors(predicted, actual) AS p FROM holdout_big) q, (SELECT e AS s FROM serial_errors) r;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
-- No pairs: NULL.
SELECT prediction_errors(p, a) IS NULL AS empty, (SELECT prediction_errors(NULL, a) IS NULL FROM (VALUES (1.0)) t(a)) AS only_nulls
FROM (VALUES (1.0, 1.0)) t(p, a) WHERE false;
SELECT pg_temp.error_of($$SELECT prediction_errors(p, a) FROM (VALUES (1.0, 1.0), ('NaN', 1)) t(p, a)$$);
SELECT pg_temp.error_of($$SELECT prediction_errors(p, a) FROM (VALUES (1.0, 'Infinity'::float8)) t(p, a)$$);
SELECT regexp_replace(pg_temp.error_of($$SELECT prediction_errors(p, a) FROM (VALUES ('1.7e308'::float8, '-1.7e308'::float8)) t(p, a)$$), '\d{200}\d*', '<309 digits>', 'g');
SELECT pg_temp.error_of($$SELECT prediction_errors(p, a) FROM (VALUES (1e200::float8, -1e200::float8)) t(p, a)$$);
