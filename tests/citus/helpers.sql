-- Helpers of the distributed tests (tests/citus/sql), created by scripts/citus.sh in the test
-- database on the coordinator only, before pg_regress runs: they run there, around queries on
-- distributed tables, and are not needed on the workers.
SET citus.enable_ddl_propagation = off;
CREATE SCHEMA citus_test;

-- 'full pushdown' (the workers run the whole aggregate), 'partial aggregation' (worker_partial_agg
-- on the workers, coord_combine_agg on the coordinator) or 'rows to the coordinator' (the workers
-- send every input row; the coordinator aggregates), from EXPLAIN VERBOSE; shard names not shown.
CREATE FUNCTION citus_test.plan_of(q text) RETURNS TABLE (worker_partial_agg boolean, coord_combine_agg boolean, strategy text)
LANGUAGE plpgsql AS $$
DECLARE
    plan text := '';
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        plan := plan || line || E'\n';
    END LOOP;
    worker_partial_agg := position('worker_partial_agg' IN plan) > 0;
    coord_combine_agg := position('coord_combine_agg' IN plan) > 0;
    strategy := CASE WHEN worker_partial_agg AND coord_combine_agg THEN 'partial aggregation'
                     WHEN plan LIKE 'Custom Scan (Citus%' THEN 'full pushdown'
                     ELSE 'rows to the coordinator' END;
    RETURN NEXT;
END $$;

-- a and b are equal to 1e-12 relative, or both NULL.
CREATE FUNCTION citus_test.close(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL OR b IS NULL THEN a IS NULL AND b IS NULL
                ELSE a = b OR abs(a - b) <= 1e-12 * greatest(abs(a), abs(b)) END
$$;

-- Runs query `dist` (on distributed tables) and `local` (on the coordinator's plain tables), both
-- returning (customer_id, s rfm_summary), and says how many customers they have, how many only
-- one of them has, and how many summaries differ; or the error of the distributed query.
CREATE FUNCTION citus_test.compare_rfm(dist text, local text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    only_one bigint;
    differ bigint;
    nulls bigint;
BEGIN
    IF to_regclass('pg_temp.cmp_dist') IS NOT NULL THEN DROP TABLE pg_temp.cmp_dist; END IF;
    IF to_regclass('pg_temp.cmp_local') IS NOT NULL THEN DROP TABLE pg_temp.cmp_local; END IF;
    BEGIN
        EXECUTE 'CREATE TEMP TABLE cmp_dist AS ' || dist;
    EXCEPTION WHEN OTHERS THEN
        RETURN 'error ' || SQLSTATE || ': ' || SQLERRM;
    END;
    EXECUTE 'CREATE TEMP TABLE cmp_local AS ' || local;
    SELECT count(*), count(*) FILTER (WHERE d.customer_id IS NULL OR l.customer_id IS NULL),
           count(*) FILTER (WHERE d.customer_id IS NOT NULL AND l.customer_id IS NOT NULL AND NOT (
               (d.s IS NULL) = (l.s IS NULL)
               AND (x.frequency, x.recency, x.tenure, x.transactions, x.first_purchase, x.last_purchase,
                    x.interpurchase_time_mean, x.frequency_holdout, x.duration_holdout)
                   IS NOT DISTINCT FROM
                   (y.frequency, y.recency, y.tenure, y.transactions, y.first_purchase, y.last_purchase,
                    y.interpurchase_time_mean, y.frequency_holdout, y.duration_holdout)
               AND citus_test.close(x.monetary_value, y.monetary_value) AND citus_test.close(x.total_amount, y.total_amount)
               AND citus_test.close(x.average_order_value, y.average_order_value)
               AND citus_test.close(x.interpurchase_time_cv, y.interpurchase_time_cv)
               AND citus_test.close(x.monetary_value_holdout, y.monetary_value_holdout)
               AND citus_test.close(x.total_amount_holdout, y.total_amount_holdout))),
           count(*) FILTER (WHERE l.customer_id IS NOT NULL AND l.s IS NULL)
    INTO n, only_one, differ, nulls
    FROM cmp_dist d FULL JOIN cmp_local l USING (customer_id)
         LEFT JOIN LATERAL rfm_fields(d.s, 'day') x ON true
         LEFT JOIN LATERAL rfm_fields(l.s, 'day') y ON true;
    RETURN format('%s customers (%s NULL summaries): %s in one result only, %s differ', n, nulls, only_one, differ);
END $$;

-- Two JSON values with the same structure and numbers equal to `tol` relative.
CREATE FUNCTION citus_test.json_close(a jsonb, b jsonb, tol float8) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    i integer;
BEGIN
    IF a IS NULL OR b IS NULL THEN
        RETURN a IS NULL AND b IS NULL;
    ELSIF jsonb_typeof(a) <> jsonb_typeof(b) THEN
        RETURN false;
    ELSIF jsonb_typeof(a) = 'number' THEN
        RETURN a = b OR abs(a::float8 - b::float8) <= tol * greatest(abs(a::float8), abs(b::float8));
    ELSIF jsonb_typeof(a) = 'object' THEN
        IF (SELECT array_agg(x ORDER BY x) FROM jsonb_object_keys(a) x) IS DISTINCT FROM
           (SELECT array_agg(x ORDER BY x) FROM jsonb_object_keys(b) x) THEN
            RETURN false;
        END IF;
        FOR k IN SELECT jsonb_object_keys(a) LOOP
            IF NOT citus_test.json_close(a -> k, b -> k, tol) THEN RETURN false; END IF;
        END LOOP;
        RETURN true;
    ELSIF jsonb_typeof(a) = 'array' THEN
        IF jsonb_array_length(a) <> jsonb_array_length(b) THEN RETURN false; END IF;
        FOR i IN 0 .. jsonb_array_length(a) - 1 LOOP
            IF NOT citus_test.json_close(a -> i, b -> i, tol) THEN RETURN false; END IF;
        END LOOP;
        RETURN true;
    END IF;
    RETURN a = b;
END $$;

-- Runs query `dist` (on distributed tables) and `local` (on the coordinator's plain tables), both
-- returning rows (key, value castable to jsonb; a NULL key is a key), and says how many keys there are, how many only
-- one result has and how many values differ beyond `tol`; or the error of the distributed query.
CREATE FUNCTION citus_test.compare(dist text, local text, tol float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    only_one bigint;
    differ bigint;
BEGIN
    IF to_regclass('pg_temp.cmp_dist') IS NOT NULL THEN DROP TABLE pg_temp.cmp_dist; END IF;
    IF to_regclass('pg_temp.cmp_local') IS NOT NULL THEN DROP TABLE pg_temp.cmp_local; END IF;
    BEGIN
        EXECUTE 'CREATE TEMP TABLE cmp_dist AS SELECT coalesce(k::text, ''(null)'') AS k, to_jsonb(v) AS v FROM (' || dist || ') q(k, v)';
    EXCEPTION WHEN OTHERS THEN
        RETURN 'error ' || SQLSTATE || ': ' || SQLERRM;
    END;
    EXECUTE 'CREATE TEMP TABLE cmp_local AS SELECT coalesce(k::text, ''(null)'') AS k, to_jsonb(v) AS v FROM (' || local || ') q(k, v)';
    SELECT count(*), count(*) FILTER (WHERE d.k IS NULL OR l.k IS NULL),
           count(*) FILTER (WHERE d.k IS NOT NULL AND l.k IS NOT NULL AND NOT citus_test.json_close(d.v, l.v, tol))
    INTO n, only_one, differ
    FROM cmp_dist d FULL JOIN cmp_local l USING (k);
    RETURN format('%s results: %s in one only, %s differ', n, only_one, differ);
END $$;

-- A fitted model's parameters, log-likelihood and counts (not the iteration count or gradient norm).
CREATE FUNCTION citus_test.fit_of(m jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('params', m -> 'params', 'log_likelihood', m #> '{fit,log_likelihood}',
                              'n_customers', m #> '{fit,n_customers}', 'n_distinct_rows', m #> '{fit,n_distinct_rows}',
                              'converged', m #> '{fit,converged}')
$$;

-- A uniform number in (0, 1) from two integers (md5; no random()).
CREATE FUNCTION citus_test.u(c bigint, t bigint) RETURNS float8 LANGUAGE sql IMMUTABLE AS $$
    SELECT (('x' || substr(md5(c || ':' || t), 1, 8))::bit(32)::bigint + 0.5) / 4294967296.0
$$;
-- The SQLSTATE and message of q's error, or 'no error'.
CREATE FUNCTION citus_test.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
