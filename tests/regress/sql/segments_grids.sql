-- Plot-ready grids: expected_purchases_grid and p_alive_grid for BG/NBD, Pareto/NBD and MBG/NBD.
-- Own schema: the regression tests share one database, so table names must not collide.
CREATE SCHEMA segments_grids;
SET search_path = segments_grids, public;
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- docs/segments.md example: CDNOW's published BG/NBD parameters, a customer of age 10 weeks,
-- frequency 0..2, recency 0, 5, 10. Frequency 0 only with recency 0, repeat buyers only with
-- recency > 0 (a repeat purchase comes after the first). Values checked by hand with the closed
-- forms (Python, 2F1 by its series): P(alive) 1, 0.6430565646, 0.7536502019, 0.6242912915,
-- 0.8120407680; expected purchases in 4 weeks 0.0647952591, 0.2100253588, 0.2461457713,
-- 0.3646627315, 0.4743314677.
CREATE TABLE grid_model AS SELECT bgnbd_model(0.243, 4.414, 0.793, 2.426) AS m;
SELECT a.frequency, a.recency, round(a.p_alive::numeric, 10) AS p_alive, round(e.expected_purchases::numeric, 10) AS expected_4_weeks
FROM grid_model, p_alive_grid(m, tenure => 10, max_frequency => 2, max_recency => 10, recency_steps => 2) a
JOIN expected_purchases_grid(m, 4, 10, 2, 10, 2) e USING (frequency, recency)
ORDER BY 1, 2;

-- lifetimes' plot_frequency_recency_matrix(T = max_recency): integer recencies 0..max_recency.
-- Every cell equals the scalar functions; (max_frequency + 1) x (max_recency + 1) cells minus the
-- impossible ones: max_recency with frequency 0, and recency 0 with frequency > 0.
SELECT count(*) AS cells, min(recency) AS min_r, max(recency) AS max_r,
       count(*) FILTER (WHERE frequency = 0) AS frequency_0_cells,
       max(abs(g.expected_purchases - expected_purchases(m, 1, g.frequency, g.recency, 39))) AS max_diff_scalar
FROM grid_model, expected_purchases_grid(m, 1, 39, 20, 39, 39) g;
SELECT count(*) AS cells, max(abs(g.p_alive - p_alive(m, g.frequency, g.recency, 39))) AS max_diff_scalar,
       bool_and(g.p_alive BETWEEN 0 AND 1) AS probabilities
FROM grid_model, p_alive_grid(m, 39, 20, 39, 39) g;
-- Recency never exceeds tenure: with tenure 25 the recencies 26..39 are left out.
SELECT count(*) AS cells, max(recency) AS max_r FROM grid_model, p_alive_grid(m, 25, 20, 39, 39);
-- Default recency_steps = 20: 21 recencies.
SELECT count(DISTINCT recency) AS recencies, array_agg(recency ORDER BY recency) FILTER (WHERE recency < 2) AS first
FROM grid_model, p_alive_grid(m, 10, 1, 10);
-- The more recent the last purchase (and the more purchases), the more likely alive.
SELECT bool_and(a.p_alive <= b.p_alive) AS increasing_in_recency
FROM grid_model, p_alive_grid(m, 39, 20, 39, 39) a JOIN p_alive_grid(m, 39, 20, 39, 39) b
  ON b.frequency = a.frequency AND b.recency = a.recency + 1;

-- Pareto/NBD and MBG/NBD overloads agree with their scalar functions.
SELECT count(*) AS cells, max(abs(g.expected_purchases - expected_purchases(m, 2, g.frequency, g.recency, 30))) AS max_diff
FROM (SELECT pareto_nbd_model(0.553, 10.578, 0.606, 11.669) AS m) q, expected_purchases_grid(m, 2, 30, 10, 30, 15) g;
SELECT count(*) AS cells, max(abs(g.p_alive - p_alive(m, g.frequency, g.recency, 30))) AS max_diff
FROM (SELECT pareto_nbd_model(0.553, 10.578, 0.606, 11.669) AS m) q, p_alive_grid(m, 30, 10, 30, 15) g;
SELECT count(*) AS cells, max(abs(g.expected_purchases - expected_purchases(m, 2, g.frequency, g.recency, 30))) AS max_diff
FROM (SELECT mbgnbd_model(0.243, 4.414, 0.793, 2.426) AS m) q, expected_purchases_grid(m, 2, 30, 10, 30, 15) g;
SELECT count(*) AS cells, max(abs(g.p_alive - p_alive(m, g.frequency, g.recency, 30))) AS max_diff
FROM (SELECT mbgnbd_model(0.243, 4.414, 0.793, 2.426) AS m) q, p_alive_grid(m, 30, 10, 30, 15) g;

-- Edge cases: a single cell; tenure 0, where only the customer without repeat purchases exists
-- (Python: 0.0532678912).
SELECT g.* FROM grid_model, p_alive_grid(m, 10, 0, 10, 1) g;
SELECT g.frequency, g.recency, round(g.expected_purchases::numeric, 10) AS expected_purchases FROM grid_model, expected_purchases_grid(m, 1, 0, 2, 5, 1) g;
-- The largest accepted grid: 1,000,000 cells.
SELECT count(*) FROM grid_model, p_alive_grid(m, 999, 999, 999, 999);

-- Bad input.
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, -1, 10)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, 2, 10, 0)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, 2, -1)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, 2, 'NaN')$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, 2, 'Infinity')$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 'NaN', 2, 10)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, -1, 2, 10)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, p_alive_grid(m, 10, 1000, 10, 1000)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, expected_purchases_grid(m, 10, 10, 2147483647, 10, 2147483647)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, expected_purchases_grid(m, -1, 10, 2, 10)$$);
SELECT pg_temp.error_of($$SELECT * FROM grid_model, expected_purchases_grid(m, 'NaN', 10, 2, 10)$$);
SELECT count(*) AS strict_null FROM grid_model, p_alive_grid(m, 10, NULL, 10);
