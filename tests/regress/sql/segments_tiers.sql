-- Value tiers: clv_segment(value) OVER (...) (high 20% / medium 50% / low 30%), custom shares and
-- labels, clv_segment_fixed, and bad input with SQLSTATEs.
-- Own schema: the regression tests share one database, so table names must not collide.
CREATE SCHEMA segments_tiers;
SET search_path = segments_tiers, public;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- docs/segments.md example: ten distinct values -> 2 high, 5 medium, 3 low; NULL stays NULL.
SELECT v, clv_segment(v) OVER () AS tier
FROM (VALUES (1.0), (2.0), (3.0), (4.0), (5.0), (6.0), (7.0), (8.0), (9.0), (10.0), (NULL)) t(v)
ORDER BY v;

-- 1000 distinct values in a scrambled order: exactly 200 / 500 / 300, and the tiers are the top
-- 200, the next 500 and the bottom 300 values (rank by value descending).
CREATE TABLE thousand AS SELECT i AS id, ((i * 7919) % 1000) * 1.5 - 3.0 AS clv FROM generate_series(0, 999) i;
CREATE TABLE thousand_tiers AS
SELECT id, clv, clv_segment(clv) OVER () AS tier, rank() OVER (ORDER BY clv DESC) AS r FROM thousand;
SELECT tier, count(*) AS n, min(r) AS best_rank, max(r) AS worst_rank, min(clv) AS min_clv, max(clv) AS max_clv
FROM thousand_tiers GROUP BY tier ORDER BY min(r);
-- The window's ORDER BY (and hence its frame) does not change the tiers.
SELECT count(*) AS differing FROM thousand_tiers a
JOIN (SELECT id, clv_segment(clv) OVER (ORDER BY id DESC) AS tier FROM thousand) b USING (id)
WHERE a.tier IS DISTINCT FROM b.tier;

-- Ties are never split; a tie group straddling a boundary goes wholly to the lower tier.
-- Sorted: 9, 7, 7, 7, 5, 4, 0, 0, 0, 0. The top 2 would cut the 7s: high keeps only 9. The top 7
-- would cut the zeros: all four zeros are low.
SELECT v, clv_segment(v) OVER () AS tier, ntile(10) OVER (ORDER BY v DESC) AS ntile_splits_ties
FROM (VALUES (7), (0), (9), (0), (7), (0), (5), (7), (4), (0)) t(v) ORDER BY v DESC, 3;
-- All values equal: one tie group, all in the bottom tier.
SELECT tier, count(*) FROM (SELECT clv_segment(v) OVER () AS tier FROM (SELECT 2.5 AS v FROM generate_series(1, 8)) t) q GROUP BY 1;

-- Partitions get their own tiers; rounding of the counts: n = 7 -> 1.4 -> 1 high, 4.9 -> 5 -> 4 medium.
SELECT g, v, clv_segment(v) OVER (PARTITION BY g) AS tier
FROM (SELECT 'a' AS g, i::float8 AS v FROM generate_series(1, 7) i
      UNION ALL SELECT 'b', i * 100 FROM generate_series(1, 5) i) t
ORDER BY g, v;

-- Custom tiers, listed from the top: platinum 5%, gold 15%, silver 50%, bronze 30% of 0..99.
SELECT tier, count(*) AS n, min(v) AS min_v, max(v) AS max_v
FROM (SELECT v, clv_segment(v, ARRAY[0.05, 0.15, 0.5, 0.3], ARRAY['platinum', 'gold', 'silver', 'bronze']) OVER () AS tier
      FROM generate_series(0, 99) v) t
GROUP BY tier ORDER BY min(v) DESC;
-- Two tiers; NULL is not counted: 5 values, top 20% = 1 value.
SELECT v, clv_segment(v, ARRAY[0.2, 0.8], ARRAY['top', 'rest']) OVER () AS tier
FROM (VALUES (5.0), (NULL), (1.0), (3.0), (4.0), (2.0)) t(v) ORDER BY v;
-- Shares may differ between partitions (but not within one).
SELECT g, v, clv_segment(v, CASE g WHEN 'a' THEN ARRAY[0.5, 0.5] ELSE ARRAY[0.25, 0.75] END, ARRAY['top', 'bottom']) OVER (PARTITION BY g) AS tier
FROM (VALUES ('a', 1), ('a', 2), ('a', 3), ('a', 4), ('b', 1), ('b', 2), ('b', 3), ('b', 4)) t(g, v) ORDER BY g, v;
-- Only NULLs: every row NULL.
SELECT clv_segment(v) OVER () AS tier, clv_segment(v, ARRAY[1.0], ARRAY['all']) OVER () AS one_tier
FROM (VALUES (NULL::float8), (NULL)) t(v);

-- Usable in a materialized view (computed in one pass at refresh).
CREATE MATERIALIZED VIEW thousand_segments AS SELECT id, clv, clv_segment(clv) OVER () AS tier FROM thousand;
SELECT tier, count(*) FROM thousand_segments GROUP BY tier ORDER BY 2;
UPDATE thousand SET clv = clv + 10000 WHERE id < 300;
REFRESH MATERIALIZED VIEW thousand_segments;
SELECT tier, count(*) AS n, bool_and(id < 300) AS all_boosted, bool_or(id < 300) AS any_boosted
FROM thousand_segments GROUP BY tier ORDER BY 2;

-- Fixed thresholds, descending (top tier first): >= 1000 gold, >= 100 silver, else bronze.
SELECT v, clv_segment_fixed(v, ARRAY[1000, 100], ARRAY['gold', 'silver', 'bronze']) AS tier
FROM (VALUES (5000.0), (1000.0), (999.99), (100.0), (99.5), (-1.0), (NULL)) t(v) ORDER BY v DESC NULLS LAST;
SELECT clv_segment_fixed(42, ARRAY[]::float8[], ARRAY['everyone']) AS single_tier,
       clv_segment_fixed(5, ARRAY[5, 5], ARRAY['a', 'b', 'c']) AS equal_thresholds_top_wins;

-- Bad input.
SELECT pg_temp.error_of($$SELECT clv_segment(v) OVER () FROM (VALUES (1.0), ('NaN')) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v) OVER () FROM (VALUES (1.0), ('Infinity')) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v) OVER () FROM (VALUES (1.0), ('-Infinity')) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(1.0)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, 0.4], ARRAY['a', 'b']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[1.2, -0.2], ARRAY['a', 'b']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, 0.5, 0], ARRAY['a', 'b', 'c']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY['NaN'::float8, 1], ARRAY['a', 'b']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[]::float8[], ARRAY[]::text[]) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, 0.5], ARRAY['a']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, 0.5], ARRAY['a', ' ']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, NULL, ARRAY['a', 'b']) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, 0.5], ARRAY['a', NULL]) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment(v, ARRAY[0.5, NULL], ARRAY['a', 'b']) OVER () FROM (VALUES (1.0)) t(v)$$);
-- Shares must be the same on every row of a partition.
SELECT pg_temp.error_of($$SELECT clv_segment(v, CASE WHEN v < 2 THEN ARRAY[0.5, 0.5] ELSE ARRAY[0.2, 0.8] END, ARRAY['a', 'b']) OVER ()
                         FROM (VALUES (1.0), (2.0), (3.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed(1, ARRAY[100, 1000], ARRAY['a', 'b', 'c'])$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed(1, ARRAY[1000, 100], ARRAY['a', 'b'])$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed(1, ARRAY[1000, 'NaN'::float8], ARRAY['a', 'b', 'c'])$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed(1, ARRAY[1000, NULL], ARRAY['a', 'b', 'c'])$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed('NaN', ARRAY[1000, 100], ARRAY['a', 'b', 'c'])$$);
SELECT pg_temp.error_of($$SELECT clv_segment_fixed('Infinity', ARRAY[1000, 100], ARRAY['a', 'b', 'c'])$$);
SELECT clv_segment_fixed(1, NULL, ARRAY['a']) IS NULL AS strict_null;
