-- K-means segments: kmeans_fit / kmeans_assign / kmeans_centroids / kmeans_k_sweep on a hand
-- example and on well separated synthetic clusters; determinism, value ordering, parallel plans,
-- and bad input with SQLSTATEs.
-- Own schema: the regression tests share one database, so table names must not collide.
CREATE SCHEMA segments_kmeans;
SET search_path = segments_kmeans, public;
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Hand example, one feature: 0, 1, 2 and 10, 11, 12. Mean 6, population variance 154/6, centroids
-- 1 and 11, inertia (2 + 2) / (154/6) = 0.155844155844 (standardized units).
CREATE TABLE one_d AS SELECT x FROM unnest(ARRAY[0, 1, 2, 10, 11, 12]::float8[]) x;
CREATE TABLE one_d_model AS SELECT kmeans_fit(ARRAY[x], 2, 7) AS m FROM one_d;
SELECT m FROM one_d_model;
SELECT * FROM kmeans_centroids((SELECT m FROM one_d_model));
SELECT x, kmeans_assign(m, ARRAY[x]) AS cluster
FROM one_d_model, unnest(ARRAY[-100, 0, 4, 5.9, 6.1, 8, 12, 100]::float8[]) x ORDER BY x;
-- Without a seed the seed is 1, and the value feature is the last one.
SELECT (SELECT kmeans_fit(ARRAY[x], 2) FROM one_d)::text = (SELECT kmeans_fit(ARRAY[x], 2, 1, 1) FROM one_d)::text AS defaults_are_seed_1_last_feature,
       (SELECT kmeans_fit(ARRAY[x], 2)::jsonb->'seed' FROM one_d) AS seed;

-- Clusters are numbered by the value feature, ascending: with features (x, -x), ordering by
-- feature 1 makes {10, 11, 12} cluster 2, ordering by feature 2 makes {0, 1, 2} cluster 2.
SELECT x, kmeans_assign(m1, ARRAY[x, -x]) AS by_feature_1, kmeans_assign(m2, ARRAY[x, -x]) AS by_feature_2
FROM (SELECT kmeans_fit(ARRAY[x, -x], 2, 7, 1) AS m1, kmeans_fit(ARRAY[x, -x], 2, 7, 2) AS m2 FROM one_d) q, one_d ORDER BY x;

-- Three well separated groups of 385 customers in (recency, frequency, clv), interleaved; the
-- deterministic jitter is a full grid (i mod 7, i mod 5, i mod 11), so every group mean is exactly
-- its centre: high (10, 12, 900), middle (40, 5, 300), low (90, 1, 50).
CREATE TABLE customers AS
SELECT i * 3 + g AS id, g AS grp, c[1] + (i % 7) - 3 AS recency, c[2] + ((i % 5) - 2) * 0.5 AS frequency, c[3] + ((i % 11) - 5) * 10.0 AS clv
FROM generate_series(0, 384) i,
     (VALUES (0, ARRAY[10, 12, 900]::float8[]), (1, ARRAY[40, 5, 300]::float8[]), (2, ARRAY[90, 1, 50]::float8[])) c(g, c);
ANALYZE customers;
CREATE TABLE model AS SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3) AS m FROM customers;
-- Python check (population mean and std, within-group sums of squares): means 46.6667, 6,
-- 416.6667; stds 33.05887005, 4.60072458, 358.08130672; inertia 40.518591709.
SELECT j->>'k' AS k, j->>'seed' AS seed, j->>'value_feature' AS value_feature, j->>'n_rows' AS n_rows,
       (SELECT array_agg(round(v::numeric, 4)) FROM jsonb_array_elements_text(j->'means') v) AS means,
       (SELECT array_agg(round(v::numeric, 8)) FROM jsonb_array_elements_text(j->'stds') v) AS stds,
       round((j->>'inertia')::numeric, 9) AS inertia
FROM (SELECT m::jsonb AS j FROM model) q;
-- Centroids are the group centres, numbered by clv: 1 = low, 2 = middle, 3 = high.
SELECT cluster, size, (SELECT array_agg(round(v::numeric, 6)) FROM unnest(centroid) v) AS centroid
FROM model, kmeans_centroids(m) ORDER BY cluster;
-- Every customer of a group gets the same cluster: high -> 3, middle -> 2, low -> 1.
SELECT grp, kmeans_assign(m, ARRAY[recency, frequency, clv]) AS cluster, count(*)
FROM customers, model GROUP BY 1, 2 ORDER BY 1, 2;
-- New customers go to the nearest centroid in standardized units.
SELECT kmeans_assign(m, ARRAY[12, 11, 850]) AS near_high, kmeans_assign(m, ARRAY[45, 4, 280]) AS near_middle,
       kmeans_assign(m, ARRAY[200, 0, 0]) AS far_low, kmeans_assign(m, ARRAY[12, 11, NULL]) AS null_feature
FROM model;

-- Deterministic: the same rows and seed give the same model, whatever the row order; another
-- seed finds the same clusters under the same numbers.
SELECT (SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3 ORDER BY id DESC) FROM customers)::text = m::text AS same_model_reverse_order,
       (SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3 ORDER BY clv, id) FROM customers)::text = m::text AS same_model_sorted_by_clv
FROM model;
SELECT count(*) FILTER (WHERE kmeans_assign(m, f) <> kmeans_assign(m2, f)) AS differing_seed_7,
       (SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 7, 3)::jsonb->>'seed' FROM customers) AS seed
FROM model, (SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 7, 3) AS m2 FROM customers) q,
     LATERAL (SELECT ARRAY[recency, frequency, clv] AS f FROM customers) c;
-- Rows with a NULL array or a NULL feature are skipped.
SELECT (SELECT kmeans_fit(f, 3, 42, 3) FROM (SELECT ARRAY[recency, frequency, clv] AS f FROM customers
                                                UNION ALL VALUES (NULL::float8[]), (ARRAY[1, NULL, 3]::float8[])) q)::text = m::text AS nulls_skipped
FROM model;

-- The text form reads back (also as jsonb); a model can be stored and applied later.
SELECT m::text::kmeans_model::text = m::text AS text_round_trip, jsonb_typeof(m::jsonb) AS json FROM model;

-- Parallel plan: partial states in workers, combined in the leader, give the same model.
CREATE TABLE customers_big AS SELECT c.*, r FROM customers c, generate_series(1, 4) r;
ANALYZE customers_big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE serial_model AS SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3) AS m FROM customers_big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3) FROM customers_big;
SELECT (SELECT kmeans_fit(ARRAY[recency, frequency, clv], 3, 42, 3) FROM customers_big)::text = m::text AS parallel_equals_serial,
       m::jsonb->'sizes' AS sizes
FROM serial_model;
SELECT (SELECT kmeans_k_sweep(ARRAY[recency, frequency, clv], 2, 3, 5) FROM customers_big) =
       (SELECT kmeans_k_sweep(ARRAY[recency, frequency, clv], 2, 3, 5 ORDER BY id DESC) FROM customers_big) AS sweep_parallel_equals_ordered;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;

-- Choosing k: inertia and silhouette for k = 1..5. k = 1: inertia = rows x features = 3465 (each
-- standardized feature has variance 1), silhouette NULL. k = 3 is the best silhouette (Python:
-- 0.881455904942 on all 1155 rows) and its inertia is the k = 3 fit's.
CREATE TABLE sweep AS SELECT kmeans_k_sweep(ARRAY[recency, frequency, clv], 1, 5, 42) AS s FROM customers;
SELECT k, round(inertia::numeric, 6) AS inertia, round(silhouette::numeric, 12) AS silhouette
FROM sweep, kmeans_k_sweep_rows(s) ORDER BY k;
SELECT (SELECT k FROM sweep, kmeans_k_sweep_rows(s) ORDER BY silhouette DESC NULLS LAST LIMIT 1) AS best_k,
       (SELECT inertia FROM sweep, kmeans_k_sweep_rows(s) WHERE k = 3) = (SELECT (m::jsonb->>'inertia')::float8 FROM model) AS same_inertia_as_fit,
       (SELECT bool_and(a.inertia > b.inertia) FROM sweep, kmeans_k_sweep_rows(s) a JOIN kmeans_k_sweep_rows(s) b ON b.k = a.k + 1) AS inertia_decreasing;
SELECT jsonb_pretty(s -> 0) FROM sweep;
SELECT (SELECT kmeans_k_sweep(ARRAY[x], 2, 2) FROM one_d) AS default_seed_sweep;

-- No rows: NULL.
SELECT kmeans_fit(ARRAY[x], 2) IS NULL AS fit_null, kmeans_k_sweep(ARRAY[x], 1, 3) IS NULL AS sweep_null FROM one_d WHERE false;
SELECT kmeans_fit(NULL::float8[], 2) IS NULL AS only_null_rows FROM one_d;

-- Bad input.
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2) FROM (VALUES (1.0), ('NaN')) t(x)$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2) FROM (VALUES (1.0), ('Infinity')) t(x)$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 0) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], -1) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 51) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 7) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[(x::int % 2)::float8], 3) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(CASE WHEN x > 5 THEN ARRAY[x, x] ELSE ARRAY[x] END, 2) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[]::float8[], 1) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2, 1, 0) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2, 1, 2) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], NULL) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2, NULL) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], 2, 1, NULL) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_fit(ARRAY[x], CASE WHEN x > 5 THEN 2 ELSE 3 END) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_k_sweep(ARRAY[x], 3, 2) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_k_sweep(ARRAY[x], 0, 2) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_k_sweep(ARRAY[x], 1, 7) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_k_sweep(ARRAY[x], 1, 51) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_k_sweep(ARRAY[x], 1, 2, NULL) FROM one_d$$);
SELECT pg_temp.error_of($$SELECT kmeans_assign(m, ARRAY[1, 2]) FROM one_d_model$$);
SELECT pg_temp.error_of($$SELECT kmeans_assign(m, ARRAY['NaN'::float8]) FROM one_d_model$$);
SELECT pg_temp.error_of($$SELECT kmeans_assign(m, ARRAY['-Infinity'::float8]) FROM one_d_model$$);
SELECT pg_temp.error_of($$SELECT kmeans_assign(m, ARRAY[]::float8[]) FROM one_d_model$$);
SELECT kmeans_assign(NULL, ARRAY[1.0]) IS NULL AS null_model, kmeans_assign(m, NULL) IS NULL AS null_features FROM one_d_model;
SELECT pg_temp.error_of($$SELECT '{"version":1,"model":"kmeans","k":2}'::kmeans_model$$);
SELECT pg_temp.error_of($$SELECT '{"version":2,"model":"kmeans","k":1,"seed":1,"value_feature":1,"n_rows":1,"means":[0],"stds":[1],"centroids":[[0]],"sizes":[1],"inertia":0}'::kmeans_model$$);
SELECT pg_temp.error_of($$SELECT '{"version":1,"model":"kmeans","k":2,"seed":1,"value_feature":1,"n_rows":1,"means":[0],"stds":[1],"centroids":[[0]],"sizes":[1],"inertia":0}'::kmeans_model$$);
SELECT pg_temp.error_of($$SELECT '{"version":1,"model":"kmeans","k":1,"seed":1,"value_feature":0,"n_rows":1,"means":[0],"stds":[1],"centroids":[[0]],"sizes":[1],"inertia":0}'::kmeans_model$$);
SELECT pg_temp.error_of($$SELECT * FROM kmeans_k_sweep_rows('{"k": 1}')$$);
SELECT pg_temp.error_of($$SELECT * FROM kmeans_k_sweep_rows('[{"k": 1}]')$$);
-- A hand-written model is accepted when consistent.
SELECT kmeans_assign('{"version":1,"model":"kmeans","k":2,"seed":0,"value_feature":1,"n_rows":2,"means":[5],"stds":[5],"centroids":[[0],[10]],"sizes":[1,1],"inertia":0}', ARRAY[6.0]) AS hand_model;
