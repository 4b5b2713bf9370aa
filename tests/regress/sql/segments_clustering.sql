-- Issue 11: DBSCAN, hierarchical clustering and PCA on the CDNOW RFM features (frequency, recency,
-- T, monetary value), against scikit-learn 1.9.1 / SciPy (tests/data/clustering/reference.json,
-- made by an independent script); serial and parallel plans give the same models; clustering on
-- principal components; how customers are assigned; memory limit; bad input.
SET extra_float_digits = 0;
CREATE SCHEMA clustering_test;
SET search_path = clustering_test, public;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
\getenv data CLV_TEST_DATA
\set rfm_file :data '/cdnow/cdnow_customers_summary_with_transactions.csv'
\set reference_file :data '/clustering/reference.json'
CREATE TABLE rfm (id int, x float8, t_x float8, t float8, zbar float8);
COPY rfm FROM :'rfm_file' (FORMAT csv, HEADER);
CREATE TABLE reference AS SELECT pg_read_file(:'reference_file')::jsonb AS r;

CREATE TABLE models AS
SELECT dbscan_fit(ARRAY[x, t_x, t, zbar], 0.5, 10) AS db05,
       dbscan_fit(ARRAY[x, t_x, t, zbar], 0.3, 5) AS db03,
       hierarchical_fit(ARRAY[x, t_x, t, zbar], 5) FILTER (WHERE id <= 300) AS ward5,
       hierarchical_fit(ARRAY[x, t_x, t, zbar], 3, 'average') FILTER (WHERE id <= 300) AS average3,
       hierarchical_fit_distance(ARRAY[x, t_x, t, zbar], 2.0, 'complete') FILTER (WHERE id <= 300) AS complete_at_2,
       pca_fit(ARRAY[x, t_x, t, zbar], 4) AS pca4,
       pca_fit(ARRAY[x, t_x, t, zbar], 2) AS pca2
FROM rfm;

-- 1. DBSCAN: clusters, noise and core points as scikit-learn (its min_samples counts the point
-- itself, as linfa does).
SELECT run->>'eps' AS eps, run->>'min_samples' AS min_points,
       (m->>'clusters')::int = (run->>'n_clusters')::int AS clusters_equal,
       (m->>'noise')::int = (run->>'n_noise')::int AS noise_equal,
       jsonb_array_length(m->'core'->'labels') = (run->>'n_core')::int AS core_points_equal,
       m->>'clusters' AS clusters, m->>'noise' AS noise
FROM reference, jsonb_array_elements(r->'dbscan'->'runs') run,
     LATERAL (SELECT CASE run->>'eps' WHEN '0.5' THEN db05::jsonb WHEN '0.3' THEN db03::jsonb END AS m FROM models) q
WHERE m IS NOT NULL ORDER BY 1;
-- New customers: the cluster of the nearest core point within eps, else 0 (noise). Numbering
-- differs (ours follows the sorted rows, scikit-learn's the file order), so compare partitions:
-- the same noise points, and points together in one are together in the other.
CREATE TABLE new_points AS
SELECT i, p.v AS features, (r->'dbscan'->'runs'->1->'new_point_labels'->>(i - 1)::int)::int AS sklearn
FROM reference, jsonb_array_elements(r->'dbscan'->'new_points'->'points_original_units') WITH ORDINALITY p(v, i);
WITH a AS (SELECT sklearn, cluster_assign(db05, ARRAY(SELECT jsonb_array_elements_text(features)::float8)) AS ours
           FROM new_points, models)
SELECT count(*) AS new_points,
       count(*) FILTER (WHERE (ours = 0) = (sklearn = -1)) AS same_noise,
       (SELECT count(*) FROM (SELECT DISTINCT ours, sklearn FROM a WHERE sklearn >= 0) d) =
       (SELECT count(DISTINCT sklearn) FROM a WHERE sklearn >= 0)
       AND (SELECT count(DISTINCT ours) FROM a WHERE sklearn >= 0) = (SELECT count(DISTINCT sklearn) FROM a WHERE sklearn >= 0) AS same_partition
FROM a;

-- 2. Hierarchical: cluster sizes equal SciPy's cut of the same dendrogram (first 300 customers).
SELECT 'ward, k = 5' AS cut, (SELECT array_agg(s ORDER BY s) FROM jsonb_array_elements_text(ward5::jsonb->'sizes') s(s)) =
       (SELECT array_agg(c ORDER BY c) FROM (SELECT count(*)::text AS c FROM jsonb_array_elements_text(r->'agglomerative'->'methods'->'ward'->'labels_n_clusters'->'5') l GROUP BY l) q) AS sizes_equal
FROM models, reference
UNION ALL
SELECT 'average, k = 3', (SELECT array_agg(s ORDER BY s) FROM jsonb_array_elements_text(average3::jsonb->'sizes') s(s)) =
       (SELECT array_agg(c ORDER BY c) FROM (SELECT count(*)::text AS c FROM jsonb_array_elements_text(r->'agglomerative'->'methods'->'average'->'labels_n_clusters'->'3') l GROUP BY l) q)
FROM models, reference
UNION ALL
SELECT 'complete, distance 2.0', (complete_at_2::jsonb->>'clusters')::int = (r->'agglomerative'->'methods'->'complete'->'distance_cut'->>'n_clusters')::int
FROM models, reference;
-- Merge heights: SciPy's, to 1e-9.
SELECT max(abs(a.h::float8 - b.h::float8)) < 1e-9 AS ward_heights_equal
FROM (SELECT h, row_number() OVER (ORDER BY h::float8) AS k FROM models, jsonb_array_elements_text(ward5::jsonb->'merge_heights') h) a
JOIN (SELECT h, row_number() OVER (ORDER BY h::float8) AS k FROM reference, jsonb_array_elements_text(r->'agglomerative'->'methods'->'ward'->'merge_heights') h) b USING (k);
-- Training customers are assigned back to their own cluster (nearest training row = itself).
SELECT array_agg(n ORDER BY c) = (SELECT array_agg(s::bigint ORDER BY o) FROM models, jsonb_array_elements_text(ward5::jsonb->'sizes') WITH ORDINALITY s(s, o)) AS assignment_reproduces_sizes
FROM (SELECT cluster_assign(ward5, ARRAY[x, t_x, t, zbar]) AS c, count(*) AS n FROM rfm, models WHERE id <= 300 GROUP BY 1) q;

-- 3. PCA: explained variance ratio and components as scikit-learn (signs: largest entry positive).
SELECT k, round((pca4::jsonb->'explained_variance_ratio'->>k)::numeric, 6) AS explained_variance_ratio,
       abs((pca4::jsonb->'explained_variance_ratio'->>k)::float8 - (r->'pca'->'explained_variance_ratio'->>k)::float8) < 1e-12 AS ratio_equal,
       (SELECT max(abs(a::float8 - b::float8)) FROM jsonb_array_elements_text(pca4::jsonb->'components'->k) WITH ORDINALITY x(a, i)
        JOIN jsonb_array_elements_text(r->'pca'->'components'->k) WITH ORDINALITY y(b, i) USING (i)) < 1e-10 AS component_equal
FROM models, reference, generate_series(0, 3) k;
SELECT max(abs(s[1] - (r->'pca'->'scores_first20_pc1_pc2'->(id - 1)->>0)::float8)) < 1e-9
       AND max(abs(s[2] - (r->'pca'->'scores_first20_pc1_pc2'->(id - 1)->>1)::float8)) < 1e-9 AS scores_equal
FROM (SELECT id, pca_project(pca2, ARRAY[x, t_x, t, zbar]) AS s FROM rfm, models WHERE id <= 20) q, reference;
-- Clustering on principal components: K-means on the two scores.
SELECT cluster, count(*) AS customers FROM (
    SELECT kmeans_assign(k, p) AS cluster FROM
        (SELECT kmeans_fit(pca_project(pca2, ARRAY[x, t_x, t, zbar]), 3) AS k FROM rfm, models) f,
        (SELECT pca_project(pca2, ARRAY[x, t_x, t, zbar]) AS p FROM rfm, models) s) q
GROUP BY 1 ORDER BY 1;

-- 4. Deterministic: a parallel plan (rows arrive in another order, in parts) gives the same models.
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TABLE big AS SELECT r.* FROM rfm r, generate_series(1, 4);
ANALYZE big;
EXPLAIN (COSTS OFF) SELECT dbscan_fit(ARRAY[x, t_x, t, zbar], 0.5, 10) FROM big;
CREATE TABLE parallel_fit AS SELECT dbscan_fit(ARRAY[x, t_x, t, zbar], 0.5, 10) AS db, pca_fit(ARRAY[x, t_x, t, zbar], 2) AS pc FROM big;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT p.db::text = s.db::text AS dbscan_same, p.pc::text = s.pc::text AS pca_same
FROM parallel_fit p, (SELECT dbscan_fit(ARRAY[x, t_x, t, zbar], 0.5, 10) AS db, pca_fit(ARRAY[x, t_x, t, zbar], 2) AS pc FROM big) s;
RESET max_parallel_workers_per_gather;

-- 5. Stored and reloaded: text, and binary (COPY BINARY uses send/receive), give the same models.
\set binary_file :data '/cluster_models.bin'
COPY (SELECT db05, ward5, pca2 FROM models) TO :'binary_file' (FORMAT binary);
CREATE TABLE reloaded (db05 cluster_model, ward5 cluster_model, pca2 pca_model);
COPY reloaded FROM :'binary_file' (FORMAT binary);
SELECT m.db05::text::cluster_model::text = m.db05::text AS text_round_trip,
       r.db05::text = m.db05::text AND r.ward5::text = m.ward5::text AND r.pca2::text = m.pca2::text AS binary_round_trip
FROM models m, reloaded r;

-- 6. Limits and bad input.
SELECT pg_temp.error_of($$SELECT hierarchical_fit(ARRAY[g::float8], 2) FROM generate_series(1, 5001) g$$);
SELECT pg_temp.error_of($$SELECT dbscan_fit(ARRAY[x], 0, 5) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT dbscan_fit(ARRAY[x], 'NaN', 5) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT dbscan_fit(ARRAY[x], NULL, 5) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT dbscan_fit(ARRAY[x], 0.5, 1) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT hierarchical_fit(ARRAY[x], 0) FROM rfm WHERE id < 10$$);
SELECT pg_temp.error_of($$SELECT hierarchical_fit(ARRAY[x], 2, 'centroid') FROM rfm WHERE id < 10$$);
SELECT pg_temp.error_of($$SELECT hierarchical_fit_distance(ARRAY[x], -1) FROM rfm WHERE id < 10$$);
SELECT pg_temp.error_of($$SELECT pca_fit(ARRAY[x, t], 3) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT pca_fit(ARRAY[x, t], 0) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT pca_fit(ARRAY[x, t], 1) FROM rfm WHERE id = 1$$);
SELECT pg_temp.error_of($$SELECT dbscan_fit(ARRAY[x, 'Infinity'], 0.5, 3) FROM rfm$$);
SELECT pg_temp.error_of($$SELECT cluster_assign(db05, '{1,2,3}') FROM models$$);
SELECT pg_temp.error_of($$SELECT cluster_assign(db05, '{1,2,3,NaN}') FROM models$$);
SELECT pg_temp.error_of($$SELECT pca_project(pca2, '{1,2,3}') FROM models$$);
SELECT pg_temp.error_of($$SELECT pca_project(pca2, '{1e308,0,0,0}') FROM models$$);
SELECT pg_temp.error_of($$SELECT cluster_assign(ward5, '{1e200,-1e200,0,0}') FROM models$$);
SELECT pg_temp.error_of($$SELECT 'nonsense'::cluster_model$$);
SELECT pg_temp.error_of($$SELECT '{"version": 2, "model": "pca"}'::pca_model$$);
SELECT cluster_assign(db05, '{1,2,3,NULL}') IS NULL AS null_feature_gives_null FROM models;
SELECT dbscan_fit(ARRAY[x], 0.5, 3) IS NULL AS no_rows_gives_null FROM rfm WHERE false;

RESET search_path;
DROP SCHEMA clustering_test CASCADE;
