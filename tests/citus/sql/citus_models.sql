-- The model fits on Citus: bgnbd_fit, pareto_nbd_fit, mbgnbd_fit, bgbb_fit and gamma_gamma_fit
-- over a distributed per-customer table give the parameters of the same fit on a plain copy on
-- the coordinator (to 1e-9 relative), globally and grouped by a column that is not the
-- distribution column; models stored in a reference table score rows on the workers.
-- Each check prints how many results differ (0), not the floats. Helpers (citus_test.*):
-- tests/citus/helpers.sql.
SET citus.shard_count = 8;
-- 3,000 customers: a seeded BG/NBD + Gamma-Gamma simulation (frequency, recency, tenure in weeks,
-- monetary value), a weight, and BG/BB histories over 6 opportunities (x purchases, the last in
-- opportunity tx): purchase probability 0.1-0.8 and drop-out probability 0.05-0.45 per opportunity.
CREATE TABLE cust_local AS
SELECT s.customer_id, s.frequency, s.recency, s.tenure, s.monetary_value, 1 + s.customer_id % 3 AS weight,
       6 AS n, b.x, b.tx
FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                        3000, horizon => 52, acquisition => 12, seed => 7) s
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE buy) AS x, coalesce(max(t) FILTER (WHERE buy), 0) AS tx
    FROM (SELECT t, t < 1 + floor(ln(citus_test.u(s.customer_id, 7)) / ln(1 - (0.05 + 0.4 * citus_test.u(s.customer_id, 5))))
                    AND citus_test.u(s.customer_id, 100 + t) < 0.1 + 0.7 * citus_test.u(s.customer_id, 3) AS buy
          FROM generate_series(1, 6) t) p) b;
CREATE TABLE cust (LIKE cust_local);
SELECT create_distributed_table('cust', 'customer_id');
INSERT INTO cust SELECT * FROM cust_local;
SELECT count(*) AS customers, count(*) FILTER (WHERE frequency > 0) AS repeat_buyers,
       count(DISTINCT (frequency, recency, tenure)) AS distinct_histories,
       count(*) FILTER (WHERE x > 0) AS bgbb_buyers, max(x) AS bgbb_max_x
FROM cust;

-- How Citus plans each fit: a global aggregate over a distributed table.
SELECT f, p.* FROM (VALUES
    ('bgnbd_fit', $$SELECT bgnbd_fit(frequency, recency, tenure) FROM cust$$),
    ('pareto_nbd_fit', $$SELECT pareto_nbd_fit(frequency, recency, tenure) FROM cust$$),
    ('mbgnbd_fit', $$SELECT mbgnbd_fit(frequency, recency, tenure) FROM cust$$),
    ('bgbb_fit', $$SELECT bgbb_fit(x, tx, n) FROM cust$$),
    ('gamma_gamma_fit', $$SELECT gamma_gamma_fit(frequency, monetary_value) FROM cust$$),
    ('bgnbd_fit grouped', $$SELECT customer_id % 2, bgnbd_fit(frequency, recency, tenure) FROM cust GROUP BY 1$$)
) v(f, q), LATERAL citus_test.plan_of(q) p ORDER BY f;

-- Parameters: distributed = local (1e-9 relative).
SELECT f, citus_test.compare(replace(q, 'FROM cust_local', 'FROM cust'), q, 1e-9) AS distributed_vs_local FROM (VALUES
    ('1 bgnbd_fit', $$SELECT 0, citus_test.fit_of(bgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('2 bgnbd_fit weighted, penalized', $$SELECT 0, citus_test.fit_of(bgnbd_fit(frequency, recency, tenure, weight, 0.001)::jsonb) FROM cust_local$$),
    ('3 pareto_nbd_fit', $$SELECT 0, citus_test.fit_of(pareto_nbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('4 mbgnbd_fit', $$SELECT 0, citus_test.fit_of(mbgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('5 bgbb_fit', $$SELECT 0, citus_test.fit_of(bgbb_fit(x, tx, n)::jsonb) FROM cust_local$$),
    ('6 gamma_gamma_fit', $$SELECT 0, citus_test.fit_of(gamma_gamma_fit(frequency, monetary_value)::jsonb) FROM cust_local$$),
    ('7 bgnbd_fit per customer_id % 2', $$SELECT customer_id % 2, citus_test.fit_of(bgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local GROUP BY 1$$),
    ('8 gamma_gamma_fit per weight', $$SELECT weight, citus_test.fit_of(gamma_gamma_fit(frequency, monetary_value)::jsonb) FROM cust_local GROUP BY 1$$)
) v(f, q) ORDER BY f;

-- Models in a reference table (copied to every worker) score the distributed rows on the workers.
CREATE TABLE models (id integer PRIMARY KEY, b bgnbd_model, p pareto_nbd_model, g gamma_gamma_model, bb bgbb_model);
SELECT create_reference_table('models');
INSERT INTO models SELECT 1, bgnbd_fit(frequency, recency, tenure), pareto_nbd_fit(frequency, recency, tenure),
                          gamma_gamma_fit(frequency, monetary_value), bgbb_fit(x, tx, n) FROM cust_local;
CREATE TABLE models_local AS SELECT * FROM models;
SELECT * FROM citus_test.plan_of($$SELECT c.customer_id, p_alive(m.b, c.frequency, c.recency, c.tenure) FROM cust c CROSS JOIN models m$$);
SELECT citus_test.compare(
    $$SELECT c.customer_id, jsonb_build_array(p_alive(m.b, c.frequency, c.recency, c.tenure), expected_purchases(m.p, 13, c.frequency, c.recency, c.tenure),
                                              clv(m.b, m.g, c.frequency, c.recency, c.tenure, c.monetary_value), p_alive(m.bb, c.x, c.tx, c.n))
      FROM cust c CROSS JOIN models m$$,
    $$SELECT c.customer_id, jsonb_build_array(p_alive(m.b, c.frequency, c.recency, c.tenure), expected_purchases(m.p, 13, c.frequency, c.recency, c.tenure),
                                              clv(m.b, m.g, c.frequency, c.recency, c.tenure, c.monetary_value), p_alive(m.bb, c.x, c.tx, c.n))
      FROM cust_local c CROSS JOIN models_local m$$, 0) AS scores_on_workers;
SELECT row_number() OVER (ORDER BY nodeport) AS worker, success, result AS models FROM run_command_on_workers($$SELECT count(*) FROM models$$) ORDER BY nodeport;

-- Without coordinator aggregation the fits must be pushed down as partial states.
SET citus.coordinator_aggregation_strategy = 'disabled';
SELECT f, citus_test.compare(replace(q, 'FROM cust_local', 'FROM cust'), q, 1e-9) AS disabled FROM (VALUES
    ('1 bgnbd_fit', $$SELECT 0, citus_test.fit_of(bgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('2 pareto_nbd_fit', $$SELECT 0, citus_test.fit_of(pareto_nbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('3 mbgnbd_fit', $$SELECT 0, citus_test.fit_of(mbgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local$$),
    ('4 bgbb_fit', $$SELECT 0, citus_test.fit_of(bgbb_fit(x, tx, n)::jsonb) FROM cust_local$$),
    ('5 gamma_gamma_fit', $$SELECT 0, citus_test.fit_of(gamma_gamma_fit(frequency, monetary_value)::jsonb) FROM cust_local$$),
    ('6 bgnbd_fit per customer_id % 2', $$SELECT customer_id % 2, citus_test.fit_of(bgnbd_fit(frequency, recency, tenure)::jsonb) FROM cust_local GROUP BY 1$$)
) v(f, q) ORDER BY f;
RESET citus.coordinator_aggregation_strategy;
