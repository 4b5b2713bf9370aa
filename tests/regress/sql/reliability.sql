-- Issue 8: no call may hang, exhaust or crash a backend, and none returns NaN or infinity.
-- The calls that once ran past statement_timeout now return a value or an error at once; each
-- call runs under a 5 s statement_timeout, so a regression shows as 57014 here, not as a hang.
SET extra_float_digits = 0;
SET statement_timeout = '5s';
CREATE FUNCTION pg_temp.outcome(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE q INTO v;
    RETURN coalesce(v, 'NULL');
EXCEPTION WHEN OTHERS OR query_canceled THEN  -- OTHERS alone does not catch a cancel
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT q, pg_temp.outcome(q) FROM (VALUES
    -- Opportunity sums of BG/BB over astronomically many periods.
    ($$SELECT purchase_probability(bgbb_model(1.204, 0.750, 0.657, 2.783), 0, 1e300)$$),
    ($$SELECT purchase_probability(bgbb_model(1e-4, 1e4, 1e4, 1e-4), 5, 1e300)$$),
    ($$SELECT p_alive(bgbb_model(1.204, 0.750, 0.657, 2.783), 1, 10000, 1e300)$$),
    ($$SELECT expected_purchases(bgbb_model(1.204, 0.750, 0.657, 2.783), 1e300, 1, 5, 6)$$),
    ($$SELECT expected_purchases_new_customer(bgbb_model(1.204, 0.750, 0.657, 2.783), 1e300)$$),
    -- Simulations whose size comes from the arguments.
    ($$SELECT count(*) FROM (SELECT * FROM simulate_customers(pareto_nbd_model(1e4, 1e-4, 1e-4, 1e4), gamma_gamma_model(6.25, 3.74, 15.44), 1000, 1e6, 1, 1) LIMIT 1000) z$$),
    ($$SELECT count(*) FROM (SELECT * FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 9223372036854775807, 38.86) LIMIT 1000) z$$),
    -- Results that were not finite numbers.
    ($$SELECT expected_purchases_new_customer(bgnbd_model(0.243, 4.414, 0.793, 2.426), 1e300)$$),
    ($$SELECT expected_purchases(pareto_nbd_model(1e4, 1e-4, 1e-4, 1e4), 1e6, 1e300, 0, 0)$$),
    ($$SELECT expected_purchases(bgnbd_model(0.243, 4.414, 0.793, 2.426), 39, 2, 0, 38.86)$$),
    ($$SELECT expected_purchases(mbgnbd_model(0.525, 6.183, 0.891, 1.614), 39, 2, 0, 38.86)$$),
    -- Gamma-Gamma with q <= 1: the conditional mean spend exists when p x + q > 1 ...
    ($$SELECT round(expected_spend(gamma_gamma_model(6.25, 0.79, 15.44), 2, 22.35)::numeric, 6)$$),
    -- ... and not otherwise (x = 0 with q <= 1, or p x + q <= 1).
    ($$SELECT expected_spend(gamma_gamma_model(6.25, 0.79, 15.44), 0, 0)$$),
    ($$SELECT expected_spend(gamma_gamma_model(0.1, 0.5, 15.44), 2, 22.35)$$),
    -- Found by the fuzzer (XX000 before): jsonb holds numbers no float can.
    ($$SELECT count(*) FROM kmeans_k_sweep_rows('1e1000'::jsonb)$$),
    ($$SELECT count(*) FROM kmeans_k_sweep_rows('[{"k": 2, "inertia": 1e400}]'::jsonb)$$),
    ($$SELECT string_agg(k || ':' || inertia, ' ') FROM kmeans_k_sweep_rows('[{"k": 2, "inertia": 10.5}, {"k": 3, "inertia": 4}]'::jsonb)$$)
) v(q);
-- The Gamma-Gamma formula written out (Fader & Hardie 2013; lifetimes'
-- conditional_expected_average_profit): (p v + p x zbar) / (p x + q - 1).
SELECT round(((6.25 * 15.44 + 6.25 * 2 * 22.35) / (6.25 * 2 + 0.79 - 1))::numeric, 6) AS formula;
-- A streamed simulation in the select list stops at the LIMIT.
SELECT count(*) FROM (SELECT simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 50000000, 52) LIMIT 1000) z;
RESET statement_timeout;

-- statement_timeout stops the long calls midway and the backend stays usable: K-means on 200,000
-- rows, a fit, a simulation (57014 = query_canceled; each runs for seconds without the timeout).
CREATE TABLE many AS
SELECT frequency, recency, tenure, monetary_value
FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 200000, 52, 26, 11);
SET statement_timeout = '100ms';
SELECT pg_temp.outcome($$SELECT kmeans_fit(ARRAY[frequency, recency, monetary_value], 8)::text FROM many$$) AS kmeans_fit;
SELECT pg_temp.outcome($$SELECT kmeans_k_sweep(ARRAY[frequency, recency, monetary_value], 2, 12)::text FROM many$$) AS kmeans_k_sweep;
SELECT pg_temp.outcome($$SELECT count(*) FROM simulate_transactions(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 50000000, 52)$$) AS simulation;
RESET statement_timeout;
SELECT count(*) AS rows_after_cancel, round(avg(frequency)::numeric, 6) > 0 AS backend_usable FROM many;
