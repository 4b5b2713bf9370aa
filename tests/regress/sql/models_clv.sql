-- clv() shares its costly part, the discounted expected purchases of a customer who is alive,
-- between customers of the same frequency and age (memo per backend, per model and horizon).
-- These checks compare it with the definition written out in SQL through expected_purchases(),
-- for every CDNOW customer and every model, called twice (cold and warm memo), with models
-- alternating row by row, and with invalid arguments.
SET extra_float_digits = 0;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

\getenv data CLV_TEST_DATA
\set reference :data '/cdnow/cdnow_customers_summary_with_transactions.csv'
CREATE TABLE clv_customers (id int, x float8, t_x float8, t float8, zbar float8);
COPY clv_customers FROM :'reference' (FORMAT csv, HEADER);

CREATE TABLE clv_models AS SELECT bgnbd_model(0.243, 4.414, 0.793, 2.426) AS bg, pareto_nbd_model(0.553, 10.578, 0.606, 11.669) AS pn,
    mbgnbd_model(0.525, 6.183, 0.891, 1.614) AS mbg, gamma_gamma_model(6.25, 3.74, 15.44) AS gg;

-- lifetimes' definition: sum over months k of spend * (E[X(k f)] - E[X((k-1) f)]) / (1 + d)^k.
CREATE TABLE clv_definition AS
SELECT c.id,
       sum(expected_spend(gg, x, zbar) * (expected_purchases(bg, k * 4.345, x, t_x, t) - expected_purchases(bg, (k - 1) * 4.345, x, t_x, t)) / 1.01 ^ k) AS d_bg,
       sum(expected_spend(gg, x, zbar) * (expected_purchases(pn, k * 4.345, x, t_x, t) - expected_purchases(pn, (k - 1) * 4.345, x, t_x, t)) / 1.01 ^ k) AS d_pn,
       sum(expected_spend(gg, x, zbar) * (expected_purchases(mbg, k * 4.345, x, t_x, t) - expected_purchases(mbg, (k - 1) * 4.345, x, t_x, t)) / 1.01 ^ k) AS d_mbg
FROM clv_customers c, clv_models, generate_series(1, 12) k
GROUP BY c.id;

-- Cold and warm memo, three models alternating on every row: all equal to the definition.
SELECT run, count(*) AS customers,
       max(abs(clv(bg, gg, x, t_x, t, zbar) - d_bg) / greatest(d_bg, 1e-300)) < 1e-12 AS bgnbd_ok,
       max(abs(clv(pn, gg, x, t_x, t, zbar) - d_pn) / greatest(d_pn, 1e-300)) < 1e-12 AS pareto_ok,
       max(abs(clv(mbg, gg, x, t_x, t, zbar) - d_mbg) / greatest(d_mbg, 1e-300)) < 1e-12 AS mbgnbd_ok
FROM generate_series(1, 2) run, clv_customers c JOIN clv_definition d USING (id), clv_models
GROUP BY run ORDER BY run;

-- Another horizon and unit in the same backend: the memo keeps horizons apart.
SELECT round(sum(clv(bg, gg, x, t_x, t, zbar, 6, 0.02, 'week'))::numeric, 6) = round(sum(v)::numeric, 6) AS six_months_ok
FROM clv_customers c, clv_models, LATERAL (SELECT sum(expected_spend(gg, x, zbar) * (expected_purchases(bg, k * 4.345, x, t_x, t)
                                   - expected_purchases(bg, (k - 1) * 4.345, x, t_x, t)) / 1.02 ^ k) AS v
                          FROM generate_series(1, 6) k) s;
SELECT clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 'week') = clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, ' Weeks') AS unit_spellings,
       round(clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 'month')::numeric, 4) AS per_month_unit,
       round(clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 'week')::numeric, 4) AS per_week_unit
FROM clv_models;

-- BG/BB (discrete opportunities) does not split its expectation: memo per full history.
SELECT round(clv(bgbb_model(1.204, 0.750, 0.657, 2.783), gamma_gamma_model(6.25, 3.74, 15.44), x, tx, 6, 20, 12, 0.01, 'month')::numeric, 6) AS bgbb_clv
FROM (VALUES (0, 0), (3, 5), (6, 6), (3, 5)) v(x, tx);

-- STRICT: a NULL argument gives NULL; invalid arguments raise 22023.
SELECT clv(bg, gg, NULL, 30, 39, 20) IS NULL AS null_in_null_out, clv(bg, gg, 2, 30, 39, 20, 12, 0.01, NULL) IS NULL AS null_unit FROM clv_models;
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 2, 30, 39, 20, -1) FROM clv_models$$);
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 2, 40, 39, 20) FROM clv_models$$);
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 1.5, 1, 39, 20) FROM clv_models$$);
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 2, 30, 39, 20, 12, -1) FROM clv_models$$);
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 2, 30, 39, 20, 12, 0.01, 'fortnight') FROM clv_models$$);
SELECT pg_temp.error_of($$SELECT clv(bg, gg, 2, 30, 39, 'NaN') FROM clv_models$$);

DROP TABLE clv_customers, clv_models, clv_definition;
