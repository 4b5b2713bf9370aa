-- RFM scores as a window function (quantile bins, ties kept together) and named RFM segments.
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Ten distinct values: two per quintile. NULL stays NULL and is not counted.
SELECT v, rfm_score(v) OVER () AS score, rfm_score(v, false) OVER () AS score_lower_is_better
FROM (VALUES (1.0), (2.0), (3.0), (4.0), (5.0), (6.0), (7.0), (8.0), (9.0), (10.0), (NULL)) t(v) ORDER BY v;

-- Ties: six customers with frequency 0 all get score 1; no tie is split across scores.
SELECT v, rfm_score(v) OVER () AS score, ntile(5) OVER (ORDER BY v) AS ntile_splits_ties
FROM (VALUES (0), (0), (0), (0), (0), (0), (1), (2), (3), (7)) t(v) ORDER BY v, 3;

-- Partitions are scored separately; bins can be changed.
SELECT g, v, rfm_score(v, true, 3) OVER (PARTITION BY g) AS tercile
FROM (VALUES ('a', 1), ('a', 2), ('a', 3), ('b', 10), ('b', 20), ('b', 30)) t(g, v) ORDER BY g, v;

-- The classic segment grid (docs/rfm.md) at its corners and edges.
SELECT r, f, m, rfm_segment(r, f, m)
FROM (VALUES (5, 5, 5), (5, 1, 1), (4, 1, 3), (4, 3, 3), (3, 3, 3), (3, 4, 1), (3, 1, 5), (2, 3, 3),
             (1, 5, 5), (2, 2, 2), (1, 1, 3), (1, 1, 2)) t(r, f, m);

SELECT pg_temp.error_of($$SELECT rfm_segment(0, 3, 3)$$);
SELECT pg_temp.error_of($$SELECT rfm_segment(3, 6, 3)$$);
SELECT pg_temp.error_of($$SELECT rfm_score(v) OVER () FROM (VALUES ('NaN'::float8)) t(v)$$);
SELECT pg_temp.error_of($$SELECT rfm_score(v, true, 1) OVER () FROM (VALUES (1.0)) t(v)$$);
SELECT pg_temp.error_of($$SELECT rfm_score(1.0)$$);
