-- clv_ext 0.4.0 -> 0.5.0 (issue 11): the conditional purchase distribution (purchase_probability
-- with a history, purchase_distribution), cohort analysis (clv_cohorts, cohort_of), segment
-- profiles (clv_segment_profiles), DBSCAN / hierarchical clustering / PCA (cluster_model,
-- pca_model, dbscan_fit, hierarchical_fit, pca_fit, cluster_assign, pca_project), and clv_pipeline's discount_column (Discount Seekers), cohort
-- and discount_share columns and clv_segment_profiles view.
-- Generated from `cargo pgrx schema` so every definition is exactly a fresh install's.
\echo Use "ALTER EXTENSION clv_ext UPDATE TO '0.5.0'" to load this file. \quit

-- src/purchase_distribution.rs:89
-- clv_ext::purchase_distribution::purchase_distribution
CREATE  FUNCTION "purchase_distribution"(
	"model" bgbb_model, /* bgbb_model */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision, /* f64 */
	"max_n" INT DEFAULT 10000 /* i32 */
) RETURNS TABLE (
	"n" INT,  /* i32 */
	"probability" double precision,  /* f64 */
	"cumulative_probability" double precision  /* f64 */
)
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgbb_purchase_distribution_wrapper';

-- src/purchase_distribution.rs:74
-- clv_ext::purchase_distribution::purchase_distribution
CREATE  FUNCTION "purchase_distribution"(
	"model" bgnbd_model, /* bgnbd_model */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision, /* f64 */
	"max_n" INT DEFAULT 10000 /* i32 */
) RETURNS TABLE (
	"n" INT,  /* i32 */
	"probability" double precision,  /* f64 */
	"cumulative_probability" double precision  /* f64 */
)
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgnbd_purchase_distribution_wrapper';

-- src/purchase_distribution.rs:84
-- clv_ext::purchase_distribution::purchase_distribution
CREATE  FUNCTION "purchase_distribution"(
	"model" mbgnbd_model, /* mbgnbd_model */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision, /* f64 */
	"max_n" INT DEFAULT 10000 /* i32 */
) RETURNS TABLE (
	"n" INT,  /* i32 */
	"probability" double precision,  /* f64 */
	"cumulative_probability" double precision  /* f64 */
)
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mbgnbd_purchase_distribution_wrapper';

-- src/purchase_distribution.rs:79
-- clv_ext::purchase_distribution::purchase_distribution
CREATE  FUNCTION "purchase_distribution"(
	"model" pareto_nbd_model, /* pareto_nbd_model */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision, /* f64 */
	"max_n" INT DEFAULT 10000 /* i32 */
) RETURNS TABLE (
	"n" INT,  /* i32 */
	"probability" double precision,  /* f64 */
	"cumulative_probability" double precision  /* f64 */
)
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pareto_nbd_purchase_distribution_wrapper';

-- src/purchase_distribution.rs:89
-- clv_ext::purchase_distribution::purchase_probability
CREATE  FUNCTION "purchase_probability"(
	"model" bgbb_model, /* bgbb_model */
	"n" INT, /* i32 */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision /* f64 */
) RETURNS double precision /* f64 */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgbb_conditional_purchase_probability_wrapper';

-- src/purchase_distribution.rs:74
-- clv_ext::purchase_distribution::purchase_probability
CREATE  FUNCTION "purchase_probability"(
	"model" bgnbd_model, /* bgnbd_model */
	"n" INT, /* i32 */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision /* f64 */
) RETURNS double precision /* f64 */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgnbd_conditional_purchase_probability_wrapper';

-- src/purchase_distribution.rs:84
-- clv_ext::purchase_distribution::purchase_probability
CREATE  FUNCTION "purchase_probability"(
	"model" mbgnbd_model, /* mbgnbd_model */
	"n" INT, /* i32 */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision /* f64 */
) RETURNS double precision /* f64 */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mbgnbd_conditional_purchase_probability_wrapper';

-- src/purchase_distribution.rs:79
-- clv_ext::purchase_distribution::purchase_probability
CREATE  FUNCTION "purchase_probability"(
	"model" pareto_nbd_model, /* pareto_nbd_model */
	"n" INT, /* i32 */
	"t" double precision, /* f64 */
	"frequency" double precision, /* f64 */
	"recency" double precision, /* f64 */
	"tenure" double precision /* f64 */
) RETURNS double precision /* f64 */
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pareto_nbd_conditional_purchase_probability_wrapper';

-- DBSCAN, hierarchical clustering and PCA: types, binary I/O, aggregates, row functions.
-- src/cluster_sql.rs:104
-- cluster_model
CREATE TYPE cluster_model;

-- src/cluster_sql.rs:104
-- clv_ext::cluster_sql::cluster_model_in
CREATE  FUNCTION "cluster_model_in"(
	"input" cstring /* Option < & :: core :: ffi :: CStr > */
) RETURNS cluster_model /* Option < cluster_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_model_in_wrapper';

-- src/cluster_sql.rs:104
-- clv_ext::cluster_sql::cluster_model_out
CREATE  FUNCTION "cluster_model_out"(
	"input" cluster_model /* cluster_model */
) RETURNS cstring /* :: pgrx :: ffi :: CString */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_model_out_wrapper';

-- src/cluster_sql.rs:104
-- cluster_model
CREATE TYPE cluster_model (
	INTERNALLENGTH = variable,
	INPUT = cluster_model_in, /* clv_ext::cluster_sql::cluster_model_in */
	OUTPUT = cluster_model_out, /* clv_ext::cluster_sql::cluster_model_out */
	STORAGE = extended
);

-- src/cluster_sql.rs:399
-- clv_ext::cluster_sql::cluster_assign
CREATE  FUNCTION "cluster_assign"(
	"model" cluster_model, /* cluster_model */
	"features" double precision[] /* Vec < Option < f64 > > */
) RETURNS INT /* Option < i32 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_assign_wrapper';

-- src/binary_io.rs:88
-- clv_ext::binary_io::cluster_model_recv
CREATE  FUNCTION "cluster_model_recv"(
	"buf" internal /* Internal */
) RETURNS cluster_model /* cluster_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_model_recv_wrapper';

-- src/binary_io.rs:88
-- clv_ext::binary_io::cluster_model_send
CREATE  FUNCTION "cluster_model_send"(
	"value" cluster_model /* cluster_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cluster_model_send_wrapper';

-- src/cluster_sql.rs:186
-- clv_ext::cluster_sql::dbscan_fit_final
CREATE  FUNCTION "dbscan_fit_final"(
	"state" internal /* Internal */
) RETURNS cluster_model /* Option < cluster_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'dbscan_fit_final_wrapper';

-- src/cluster_sql.rs:166
-- clv_ext::cluster_sql::dbscan_fit_trans
CREATE  FUNCTION "dbscan_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"eps" double precision, /* Option < f64 > */
	"min_points" INT /* Option < i32 > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'dbscan_fit_trans_wrapper';

-- src/cluster_sql.rs:272
-- clv_ext::cluster_sql::hierarchical_fit_distance_trans
CREATE  FUNCTION "hierarchical_fit_distance_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"max_distance" double precision /* Option < f64 > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hierarchical_fit_distance_trans_wrapper';

-- src/cluster_sql.rs:282
-- clv_ext::cluster_sql::hierarchical_fit_distance_trans
CREATE  FUNCTION "hierarchical_fit_distance_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"max_distance" double precision, /* Option < f64 > */
	"linkage" TEXT /* Option < & str > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hierarchical_fit_distance_trans_l_wrapper';

-- src/cluster_sql.rs:294
-- clv_ext::cluster_sql::hierarchical_fit_final
CREATE  FUNCTION "hierarchical_fit_final"(
	"state" internal /* Internal */
) RETURNS cluster_model /* Option < cluster_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hierarchical_fit_final_wrapper';

-- src/cluster_sql.rs:229
-- clv_ext::cluster_sql::hierarchical_fit_trans
CREATE  FUNCTION "hierarchical_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"clusters" INT /* Option < i32 > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hierarchical_fit_trans_wrapper';

-- src/cluster_sql.rs:239
-- clv_ext::cluster_sql::hierarchical_fit_trans
CREATE  FUNCTION "hierarchical_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"clusters" INT, /* Option < i32 > */
	"linkage" TEXT /* Option < & str > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'hierarchical_fit_trans_l_wrapper';

-- src/cluster_sql.rs:313
-- clv_ext::cluster_sql::pca_fit_trans
CREATE  FUNCTION "pca_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"components" INT /* Option < i32 > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_fit_trans_wrapper';

-- src/cluster_sql.rs:105
-- pca_model
CREATE TYPE pca_model;

-- src/cluster_sql.rs:105
-- clv_ext::cluster_sql::pca_model_in
CREATE  FUNCTION "pca_model_in"(
	"input" cstring /* Option < & :: core :: ffi :: CStr > */
) RETURNS pca_model /* Option < pca_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_model_in_wrapper';

-- src/cluster_sql.rs:105
-- clv_ext::cluster_sql::pca_model_out
CREATE  FUNCTION "pca_model_out"(
	"input" pca_model /* pca_model */
) RETURNS cstring /* :: pgrx :: ffi :: CString */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_model_out_wrapper';

-- src/cluster_sql.rs:105
-- pca_model
CREATE TYPE pca_model (
	INTERNALLENGTH = variable,
	INPUT = pca_model_in, /* clv_ext::cluster_sql::pca_model_in */
	OUTPUT = pca_model_out, /* clv_ext::cluster_sql::pca_model_out */
	STORAGE = extended
);

-- src/cluster_sql.rs:330
-- clv_ext::cluster_sql::pca_fit_final
CREATE  FUNCTION "pca_fit_final"(
	"state" internal /* Internal */
) RETURNS pca_model /* Option < pca_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_fit_final_wrapper';

-- src/binary_io.rs:89
-- clv_ext::binary_io::pca_model_recv
CREATE  FUNCTION "pca_model_recv"(
	"buf" internal /* Internal */
) RETURNS pca_model /* pca_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_model_recv_wrapper';

-- src/binary_io.rs:89
-- clv_ext::binary_io::pca_model_send
CREATE  FUNCTION "pca_model_send"(
	"value" pca_model /* pca_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_model_send_wrapper';

-- src/cluster_sql.rs:417
-- clv_ext::cluster_sql::pca_project
CREATE  FUNCTION "pca_project"(
	"model" pca_model, /* pca_model */
	"features" double precision[] /* Vec < Option < f64 > > */
) RETURNS double precision[] /* :: std :: option :: Option < Vec < f64 > > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pca_project_wrapper';

ALTER TYPE cluster_model SET (SEND = cluster_model_send, RECEIVE = cluster_model_recv);
ALTER TYPE pca_model SET (SEND = pca_model_send, RECEIVE = pca_model_recv);

-- src/cluster_sql.rs:342
-- requires:
--   cluster_model
--   pca_model
--   dbscan_fit_trans
--   dbscan_fit_final
--   hierarchical_fit_trans
--   hierarchical_fit_trans_l
--   hierarchical_fit_distance_trans
--   hierarchical_fit_distance_trans_l
--   hierarchical_fit_final
--   pca_fit_trans
--   pca_fit_final
--   kmeans_aggregates


CREATE CAST (cluster_model AS jsonb) WITH INOUT;
CREATE CAST (pca_model AS jsonb) WITH INOUT;

CREATE AGGREGATE dbscan_fit(features double precision[], eps double precision, min_points integer) (
    sfunc = dbscan_fit_trans, stype = internal, finalfunc = dbscan_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);
CREATE AGGREGATE hierarchical_fit(features double precision[], clusters integer) (
    sfunc = hierarchical_fit_trans, stype = internal, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);
CREATE AGGREGATE hierarchical_fit(features double precision[], clusters integer, linkage text) (
    sfunc = hierarchical_fit_trans, stype = internal, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);
CREATE AGGREGATE hierarchical_fit_distance(features double precision[], max_distance double precision) (
    sfunc = hierarchical_fit_distance_trans, stype = internal, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);
CREATE AGGREGATE hierarchical_fit_distance(features double precision[], max_distance double precision, linkage text) (
    sfunc = hierarchical_fit_distance_trans, stype = internal, finalfunc = hierarchical_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);
CREATE AGGREGATE pca_fit(features double precision[], components integer) (
    sfunc = pca_fit_trans, stype = internal, finalfunc = pca_fit_final,
    combinefunc = kmeans_rows_combine, serialfunc = kmeans_rows_serialize,
    deserialfunc = kmeans_rows_deserialize, parallel = safe
);

-- Cohort analysis (docs/cohorts.md): customers grouped by when they first bought, followed period
-- by period. One row per (cohort, period since first purchase), ready for a BI heatmap.
--
-- Definitions (also in docs/cohorts.md; the test checks them against an independent pandas
-- computation, tests/data/cohort):
--   first purchase  = the customer's earliest transaction time (rows with a NULL customer or time
--                     are ignored; timestamptz is read in the session's time zone);
--   cohort          = date_trunc(cohort_grain, first purchase) as a date (ISO weeks start Monday);
--   period          = whole period_grain periods between the period of the first purchase and the
--                     period of the transaction (month: calendar-month difference; week: ISO weeks;
--                     day: days; quarter, year likewise);
--   observed        = a customer's period p is observed when its period starts on or before the
--                     observation end (default: the latest transaction time);
-- and per (cohort, period): cohort_size, customers_observed (cohort customers for whom this period
-- is observed: cohort_size unless the cohort grain is coarser than the period grain), active
-- customers (>= 1 transaction in the period), retention_rate = active / cohort_size, transactions,
-- revenue (sum of amount, NULL amounts count as 0), revenue_per_customer = revenue / cohort_size
-- and its running sum over periods 0..p (the empirical CLV curve of the cohort). Periods with no
-- activity are rows with zeros, so every cohort has periods 0 .. its last observed period.
--
-- Cost: a scan that checks the data (and finds the default observation end), one scan of the
-- source, a hash aggregate per customer (first purchase), a hash join and a
-- hash aggregate per (customer, period); parallel-safe, so PostgreSQL may run the scans and
-- aggregates in parallel. Memory: a hash table of customers (work_mem, spilling to disk beyond).

CREATE FUNCTION clv_period_index_expr(grain text, first_expr text, time_expr text)
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE grain
        WHEN 'day' THEN format('(%2$s::date - %1$s::date)', first_expr, time_expr)
        WHEN 'week' THEN format('((date_trunc(''week'', %2$s)::date - date_trunc(''week'', %1$s)::date) / 7)', first_expr, time_expr)
        WHEN 'month' THEN format('((extract(year FROM %2$s)::int * 12 + extract(month FROM %2$s)::int) - (extract(year FROM %1$s)::int * 12 + extract(month FROM %1$s)::int))', first_expr, time_expr)
        WHEN 'quarter' THEN format('((extract(year FROM %2$s)::int * 4 + extract(quarter FROM %2$s)::int) - (extract(year FROM %1$s)::int * 4 + extract(quarter FROM %1$s)::int))', first_expr, time_expr)
        WHEN 'year' THEN format('(extract(year FROM %2$s)::int - extract(year FROM %1$s)::int)', first_expr, time_expr)
    END;
END $$;

CREATE FUNCTION clv_check_grain(grain text, what text)
RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF grain IS NULL OR lower(grain) NOT IN ('day', 'week', 'month', 'quarter', 'year') THEN
        RAISE EXCEPTION 'unknown % "%"; accepted grains are ''day'', ''week'', ''month'', ''quarter'', ''year''', what, grain
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN lower(grain);
END $$;

-- The cohort of a customer whose first purchase was at first_purchase: the start of the
-- cohort-grain period containing it (a date), the definition clv_cohorts uses. For timestamptz
-- the period is taken in the session's time zone (hence STABLE).
CREATE FUNCTION cohort_of(first_purchase timestamp, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT date_trunc(clv_check_grain(cohort_grain, 'cohort_grain'), first_purchase)::date $$;

CREATE FUNCTION cohort_of(first_purchase date, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT cohort_of(first_purchase::timestamp, cohort_grain) $$;

CREATE FUNCTION cohort_of(first_purchase timestamptz, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT cohort_of(first_purchase::timestamp, cohort_grain) $$;

CREATE FUNCTION clv_cohorts(
    source regclass,
    customer_column text,
    time_column text,
    amount_column text,
    cohort_grain text DEFAULT 'month',
    period_grain text DEFAULT NULL,
    observation_end timestamp DEFAULT NULL)
RETURNS TABLE (cohort date, period integer, cohort_size bigint, customers_observed bigint,
               active_customers bigint, retention_rate double precision, transactions bigint,
               revenue double precision, revenue_per_customer double precision,
               cumulative_revenue_per_customer double precision)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    time_types CONSTANT text[] := ARRAY['date', 'timestamp without time zone', 'timestamp with time zone'];
    amount_types CONSTANT text[] := ARRAY['numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'];
    ts text;
    ends text;
    max_grid_cells CONSTANT numeric := 10000000;
    first_time timestamp;
    last_time timestamp;
    grid_cells numeric;
    bad_time boolean;
    bad_amount boolean;
BEGIN
    IF source IS NULL OR customer_column IS NULL OR time_column IS NULL OR amount_column IS NULL THEN
        RAISE EXCEPTION 'source and the customer, time and amount column names must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    ts := format('%I::timestamp', time_column);
    PERFORM clv_column_type(source, customer_column, NULL, 'customer');
    PERFORM clv_column_type(source, time_column, time_types, 'time');
    PERFORM clv_column_type(source, amount_column, amount_types, 'amount');
    cohort_grain := clv_check_grain(cohort_grain, 'cohort_grain');
    period_grain := clv_check_grain(coalesce(period_grain, cohort_grain), 'period_grain');
    -- One pass for the default end and the checks the RFM aggregates make too (docs/rfm.md):
    -- an infinite time or a NaN / infinite amount is 22023, not a NaN revenue.
    EXECUTE format('SELECT min(%1$s), max(%1$s), coalesce(bool_or(NOT isfinite(%1$s)), false), '
                   'coalesce(bool_or(%2$I::double precision IN (''NaN'', ''Infinity'', ''-Infinity'')), false) '
                   'FROM %3$s WHERE %4$I IS NOT NULL AND %1$s IS NOT NULL', ts, amount_column, source, customer_column)
        INTO first_time, last_time, bad_time, bad_amount;
    IF bad_time OR NOT isfinite(observation_end) THEN
        RAISE EXCEPTION 'cohorts need finite transaction times and observation end (found infinity)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bad_amount THEN
        RAISE EXCEPTION 'an amount is NaN or infinite' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    observation_end := coalesce(observation_end, last_time);
    IF first_time IS NULL OR first_time > observation_end THEN
        RETURN;  -- no transaction up to the observation end: no rows
    END IF;
    -- The table has at most (cohorts) x (periods) rows; a stray date decades away would make it
    -- billions. Both counts are bounded from the first transaction to the observation end.
    EXECUTE format('SELECT (%s + 1)::numeric * (%s + 1)',
                   clv_period_index_expr(cohort_grain, quote_literal(first_time) || '::timestamp', quote_literal(observation_end) || '::timestamp'),
                   clv_period_index_expr(period_grain, quote_literal(first_time) || '::timestamp', quote_literal(observation_end) || '::timestamp'))
        INTO grid_cells;
    IF grid_cells > max_grid_cells THEN
        RAISE EXCEPTION 'the cohort table would have up to % cohort x period cells (first transaction %, observation end %), more than %',
            grid_cells, first_time, observation_end, max_grid_cells
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'use coarser grains, or pass observation_end / filter out stray dates';
    END IF;
    ends := quote_literal(observation_end) || '::timestamp';
    RETURN QUERY EXECUTE format($q$
        WITH tx AS (
            SELECT %1$I AS customer, %2$s AS ts, coalesce(%3$I, 0)::double precision AS amount
            FROM %4$s WHERE %1$I IS NOT NULL AND %2$s IS NOT NULL AND %2$s <= %5$s),
        firsts AS (
            SELECT customer, min(ts) AS first_ts FROM tx GROUP BY customer),
        customers AS (
            SELECT customer, first_ts, date_trunc(%6$L, first_ts)::date AS cohort,
                   %7$s AS last_period
            FROM firsts),
        per_customer AS (
            SELECT c.cohort, %8$s AS period, count(*) AS transactions, sum(t.amount) AS revenue
            FROM tx t JOIN customers c USING (customer)
            GROUP BY c.customer, 1, 2),
        activity AS (
            SELECT p.cohort, p.period, count(*) AS active, sum(p.transactions) AS transactions,
                   sum(p.revenue) AS revenue
            FROM per_customer p GROUP BY 1, 2),
        reach AS (
            SELECT c.cohort, c.last_period, count(*) AS n FROM customers c GROUP BY 1, 2),
        -- A customer who can be seen up to period L counts as observed in periods 0..L.
        grid AS (
            SELECT r.cohort, g.period::integer AS period, sum(r.n)::bigint AS observed
            FROM reach r CROSS JOIN LATERAL generate_series(0, r.last_period) AS g(period)
            GROUP BY 1, 2),
        sized AS (
            SELECT grid.*, first_value(observed) OVER (PARTITION BY cohort ORDER BY period) AS cohort_size
            FROM grid)
        SELECT g.cohort, g.period, g.cohort_size, g.observed,
               coalesce(a.active, 0)::bigint,
               coalesce(a.active, 0)::double precision / g.cohort_size,
               coalesce(a.transactions, 0)::bigint,
               coalesce(a.revenue, 0)::double precision,
               coalesce(a.revenue, 0)::double precision / g.cohort_size,
               sum(coalesce(a.revenue, 0)::double precision / g.cohort_size)
                   OVER (PARTITION BY g.cohort ORDER BY g.period)
        FROM sized g LEFT JOIN activity a ON a.cohort = g.cohort AND a.period = g.period
        ORDER BY g.cohort, g.period$q$,
        customer_column, ts, amount_column, source, ends, cohort_grain,
        clv_period_index_expr(period_grain, 'first_ts', ends),
        clv_period_index_expr(period_grain, 'c.first_ts', 't.ts'));
END $$;

-- Segment profiles (docs/segments.md, "Segment profiles"): what defines each segment of a pipeline
-- run, so that "document the defining traits of each group" is a query.
--
-- For every segment of a segmentation (tier, rfm_segment, named_segment or cluster of
-- <target_schema>.clv_customers): its size and share of customers, its share of the predicted CLV,
-- the mean and median of each metric below, and each metric's standardized difference
--     d = (segment mean - mean of all customers) / population standard deviation of all customers
-- (0 when the metric is constant; NULL when the metric is NULL for every customer, e.g.
-- churn_probability without a churn model). defining_traits lists the (at most three) metrics with
-- the largest |d| of at least 0.2 (Cohen's "small" effect), largest first, e.g.
-- 'frequency +2.31 sd, p_alive +0.85 sd'.

CREATE FUNCTION clv_segment_profiles(target_schema name DEFAULT 'clv', segment_by text DEFAULT NULL)
RETURNS TABLE (segmentation text, segment text, customers bigint, customer_share double precision,
               clv_share double precision,
               mean_recency double precision, median_recency double precision,
               mean_frequency double precision, median_frequency double precision,
               mean_monetary_value double precision, median_monetary_value double precision,
               mean_p_alive double precision, median_p_alive double precision,
               mean_expected_purchases double precision, median_expected_purchases double precision,
               mean_clv double precision, median_clv double precision,
               standardized_differences jsonb, defining_traits text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- Every metric gets a standardized difference; the first six also mean and median columns.
    metrics CONSTANT text[] := ARRAY['recency', 'frequency', 'monetary_value', 'p_alive', 'expected_purchases', 'clv',
                                     'tenure', 'total_amount', 'churn_probability', 'discount_share'];
    segmentations CONSTANT text[] := ARRAY['tier', 'rfm_segment', 'named_segment', 'cluster'];
    src text;
    seg text;
    present text[];
    pop_cols text;
    seg_cols text;
    diffs text;
    stats text;
BEGIN
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'target_schema must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass(quote_ident(target_schema) || '.clv_customers') IS NULL THEN
        RAISE EXCEPTION 'no pipeline results in schema %', quote_ident(target_schema)
            USING HINT = format('run clv_pipeline(..., target_schema => %L) first', target_schema),
                  ERRCODE = 'undefined_table';
    END IF;
    src := quote_ident(target_schema) || '.clv_customers';
    segment_by := lower(segment_by);
    IF segment_by IS NOT NULL AND NOT (segment_by = ANY (segmentations)) THEN
        RAISE EXCEPTION 'unknown segment_by "%"; accepted are ''tier'', ''rfm_segment'', ''named_segment'', ''cluster'' (or NULL for all four)', segment_by
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Older pipeline schemas may lack the newer columns (discount_share, churn_probability).
    SELECT array_agg(m ORDER BY o) INTO present
    FROM unnest(metrics) WITH ORDINALITY AS u(m, o)
    WHERE EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = src::regclass AND a.attname = m AND NOT a.attisdropped);
    SELECT string_agg(format('avg(%1$I::float8) AS m_%1$s, stddev_pop(%1$I::float8) AS s_%1$s', m), ', ') INTO pop_cols FROM unnest(present) m;
    SELECT string_agg(format('avg(%1$I::float8) AS m_%1$s', m), ', ') INTO seg_cols FROM unnest(present) m;
    SELECT string_agg(format('%1$L, CASE WHEN p.m_%1$s IS NULL THEN NULL WHEN p.s_%1$s > 0 THEN (g.m_%1$s - p.m_%1$s) / p.s_%1$s ELSE 0 END', m), ', ')
        INTO diffs FROM unnest(present) m;
    SELECT string_agg(format('d.m_%1$s, d.q_%1$s', m), ', ') INTO stats
    FROM unnest(ARRAY['recency', 'frequency', 'monetary_value', 'p_alive', 'expected_purchases', 'clv']) m;
    FOREACH seg IN ARRAY segmentations LOOP
        CONTINUE WHEN segment_by IS NOT NULL AND seg <> segment_by;
        RETURN QUERY EXECUTE format($q$
            WITH p AS (SELECT count(*) AS n, sum(clv) AS total_clv, %3$s FROM %1$s),
            g AS (SELECT %2$I::text AS segment, count(*) AS n, sum(clv) AS seg_clv, %4$s,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY recency) AS q_recency,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY frequency) AS q_frequency,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY monetary_value) AS q_monetary_value,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY p_alive) AS q_p_alive,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY expected_purchases) AS q_expected_purchases,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY clv) AS q_clv
                  FROM %1$s GROUP BY 1),
            d AS (SELECT g.*, jsonb_build_object(%5$s) AS sd FROM g CROSS JOIN p)
            SELECT %2$L, d.segment, d.n, d.n::float8 / p.n, d.seg_clv / nullif(p.total_clv, 0), %6$s, d.sd,
                   (SELECT string_agg(format('%%s %%s sd', key, to_char(v, 'FMS990.00')), ', ' ORDER BY abs(v) DESC)
                    FROM (SELECT key, value::float8 AS v FROM jsonb_each(d.sd)
                          WHERE jsonb_typeof(value) = 'number' AND abs(value::float8) >= 0.2
                          ORDER BY abs(value::float8) DESC, key LIMIT 3) t)
            FROM d CROSS JOIN p
            ORDER BY d.seg_clv DESC NULLS LAST, d.segment$q$,
            src, seg, pop_cols, seg_cols, diffs, stats);
    END LOOP;
END $$;

-- clv_pipeline gained discount_column.
DROP FUNCTION clv_pipeline(regclass, text, text, text, date, text, text, integer, double precision, name, integer, bigint, double precision, text, text);
CREATE FUNCTION clv_pipeline(
    source regclass,
    customer_column text,
    time_column text,
    amount_column text,
    observation_end date,
    unit text DEFAULT 'week',
    model text DEFAULT 'bgnbd',
    horizon_months integer DEFAULT 12,
    discount_rate double precision DEFAULT 0.01,
    target_schema name DEFAULT 'clv',
    clusters integer DEFAULT 4,
    seed bigint DEFAULT 1,
    penalizer double precision DEFAULT 0,
    clv_method text DEFAULT 'btyd',
    churn_method text DEFAULT NULL,
    discount_column text DEFAULT NULL
) RETURNS TABLE (run_id bigint, customers bigint, total_clv double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- When the purchase model's likelihood has no interior maximum (regular buyers, no visible
    -- drop-out) and the caller gave no penalizer, the fit is retried once with this one (the
    -- value lifetimes' docs suggest) and the run says so in a WARNING and in clv_models.penalizer.
    fallback_penalizer CONSTANT double precision := 0.001;
    used_penalizer double precision := penalizer;
    fit_error text;
    bad_discount boolean;
    started timestamptz := clock_timestamp();
    s text := quote_ident(target_schema);
    id_type regtype;
    rfm_sql text;
    mv_sql text;
    mv_hash text;
    new_run bigint;
    t0 timestamptz;
    n bigint;
    -- ML: trained on the last horizon before observation_end (features as of its start, labels
    -- in it), validated on the customers outside clv_in_training_set, applied to the features as
    -- of observation_end.
    ml_start date;
    ml_sql text;
    feature_args text;
    clv_expr text;
    ml_on boolean;
BEGIN
    model := lower(model);
    clv_method := lower(clv_method);
    churn_method := lower(churn_method);
    IF clv_method IS NULL OR clv_method NOT IN ('btyd', 'linear', 'tweedie', 'decision_tree', 'random_forest', 'gradient_boosting') THEN
        RAISE EXCEPTION 'unknown clv_method "%"; accepted are ''btyd'', ''linear'', ''tweedie'', ''decision_tree'', ''random_forest'', ''gradient_boosting''', clv_method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF churn_method IS NOT NULL AND churn_method NOT IN ('logistic', 'decision_tree', 'random_forest', 'gradient_boosting') THEN
        RAISE EXCEPTION 'unknown churn_method "%"; accepted are ''logistic'', ''decision_tree'', ''random_forest'', ''gradient_boosting'' (or NULL for none)', churn_method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    ml_on := clv_method <> 'btyd' OR churn_method IS NOT NULL;
    IF model NOT IN ('bgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'unknown model "%"; accepted models are ''bgnbd'', ''pareto_nbd''', model USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF horizon_months IS NULL OR horizon_months < 1 OR discount_rate IS NULL OR discount_rate <= -1 OR clusters IS NULL OR clusters < 1
       OR observation_end IS NULL OR target_schema IS NULL
       OR penalizer IS NULL OR NOT (penalizer >= 0 AND penalizer < 'Infinity') THEN
        RAISE EXCEPTION 'invalid pipeline settings: horizon_months must be >= 1, discount_rate > -1, clusters >= 1, penalizer a finite number >= 0, observation_end and target_schema given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    id_type := clv_column_type(source, customer_column, NULL, 'customer');
    IF discount_column IS NOT NULL THEN
        -- boolean: the purchase used a discount; a number: the discount amount (> 0: it did).
        PERFORM clv_column_type(source, discount_column,
            ARRAY['boolean', 'numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'], 'discount');
    END IF;
    rfm_sql := clv_rfm_query(source, customer_column, time_column, amount_column, NULL, observation_end, unit);

    RAISE NOTICE 'clv_pipeline: stage 1/6: schema %', s;
    -- Created only when missing: IF NOT EXISTS would say "already exists, skipping" on every run.
    IF to_regnamespace(s) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %s', s);
    END IF;
    IF to_regclass(s || '.clv_models') IS NULL THEN
    EXECUTE format($f$CREATE TABLE %s.clv_models (
        run_id bigint PRIMARY KEY,
        fitted_at timestamptz NOT NULL,
        fit_seconds double precision NOT NULL,
        source text NOT NULL,
        observation_end date NOT NULL,
        unit text NOT NULL,
        first_transaction timestamp,
        last_transaction timestamp,
        customers bigint NOT NULL,
        model text NOT NULL,
        bgnbd bgnbd_model,
        pareto_nbd pareto_nbd_model,
        spend gamma_gamma_model NOT NULL,
        clusters kmeans_model,
        horizon_months integer NOT NULL,
        discount_rate double precision NOT NULL,
        penalizer double precision NOT NULL DEFAULT 0,
        clv_method text NOT NULL DEFAULT 'btyd',
        clv_model ml_model,
        churn_model ml_model,
        ml_validation jsonb)$f$, s);
    ELSIF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_models')
                      AND attname = 'penalizer' AND NOT attisdropped) THEN
        -- A schema written by clv_ext 0.2.0.
        EXECUTE format('ALTER TABLE %s.clv_models ADD COLUMN penalizer double precision NOT NULL DEFAULT 0', s);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_models')
                   AND attname = 'clv_method' AND NOT attisdropped) THEN
        -- A schema written by clv_ext 0.3.0 or earlier.
        EXECUTE format($f$ALTER TABLE %s.clv_models ADD COLUMN clv_method text NOT NULL DEFAULT 'btyd',
                          ADD COLUMN clv_model ml_model, ADD COLUMN churn_model ml_model, ADD COLUMN ml_validation jsonb$f$, s);
    END IF;
    IF to_regclass(s || '.clv_tier_history') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_tier_history (run_id bigint NOT NULL, customer_id %s NOT NULL, tier text, '
                       'PRIMARY KEY (run_id, customer_id))', s, id_type);
    END IF;

    RAISE NOTICE 'clv_pipeline: stage 2/6: RFM summaries of % (observation end %, unit %)', source, observation_end, unit;
    t0 := clock_timestamp();
    -- Refilled in place on later runs: the materialized view reads it.
    IF to_regclass(s || '.clv_rfm') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_rfm AS %s', s, rfm_sql);
        EXECUTE format('ALTER TABLE %s.clv_rfm ADD PRIMARY KEY (customer_id)', s);
    ELSE
        EXECUTE format('TRUNCATE %s.clv_rfm', s);
        EXECUTE format('INSERT INTO %s.clv_rfm %s', s, rfm_sql);
    END IF;
    EXECUTE format('SELECT count(*) FROM %s.clv_rfm', s) INTO n;
    IF n = 0 THEN
        RAISE EXCEPTION 'no customer has a transaction up to %', observation_end USING ERRCODE = 'no_data_found';
    END IF;

    -- Features as of observation_end for every customer (read by the ML scoring; empty otherwise).
    feature_args := format('%I::date, %I::double precision', time_column, amount_column);
    IF to_regclass(s || '.clv_features') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_features (customer_id %s PRIMARY KEY, features double precision[])', s, id_type);
    END IF;
    EXECUTE format('TRUNCATE %s.clv_features', s);
    IF ml_on THEN
        EXECUTE format('INSERT INTO %1$s.clv_features SELECT * FROM (SELECT %2$I, customer_features(%3$s, %4$L::date) AS f FROM %5$s '
                       'WHERE %2$I IS NOT NULL GROUP BY %2$I) q WHERE f IS NOT NULL',
                       s, customer_column, feature_args, observation_end, source);
    END IF;

    -- Discount share: the share of a customer's transactions up to observation_end (rows of the
    -- source) made with a discount; feeds the Discount Seekers rule of clv_named_segment.
    IF to_regclass(s || '.clv_discounts') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_discounts (customer_id %s PRIMARY KEY, discount_share double precision)', s, id_type);
    END IF;
    EXECUTE format('TRUNCATE %s.clv_discounts', s);
    IF discount_column IS NOT NULL THEN
        IF clv_column_type(source, discount_column, NULL, 'discount') <> 'boolean'::regtype THEN
            EXECUTE format('SELECT coalesce(bool_or(%1$I::double precision IN (''NaN'', ''Infinity'', ''-Infinity'')), false) FROM %2$s',
                           discount_column, source) INTO bad_discount;
            IF bad_discount THEN
                RAISE EXCEPTION 'a discount amount is NaN or infinite' USING ERRCODE = 'invalid_parameter_value';
            END IF;
        END IF;
        EXECUTE format('INSERT INTO %1$s.clv_discounts SELECT %2$I, avg(CASE WHEN %3$s THEN 1.0 ELSE 0.0 END) FROM %4$s '
                       'WHERE %2$I IS NOT NULL AND %5$I::date <= %6$L::date GROUP BY %2$I',
                       s, customer_column,
                       CASE WHEN clv_column_type(source, discount_column, NULL, 'discount') = 'boolean'::regtype
                            THEN format('coalesce(%I, false)', discount_column)
                            ELSE format('coalesce(%I > 0, false)', discount_column) END,
                       source, time_column, observation_end);
    END IF;

    RAISE NOTICE 'clv_pipeline: stage 3/6: fitting % and Gamma-Gamma on % customers', model, n;
    EXECUTE format('SELECT coalesce(max(run_id), 0) + 1 FROM %s.clv_models', s) INTO new_run;
    LOOP
        BEGIN
            EXECUTE format($f$INSERT INTO %1$s.clv_models
                SELECT %2$s, now(), 0, %3$L, %4$L, %5$L, min(first_purchase), max(last_purchase), count(*), %6$L,
                       %9$s, %10$s, gamma_gamma_fit(frequency, monetary_value, 1, %12$s), NULL, %7$s, %8$s, %11$s
                FROM %1$s.clv_rfm$f$, s, new_run, source::text, observation_end, lower(unit), model, horizon_months, discount_rate,
                CASE WHEN model = 'bgnbd' THEN format('bgnbd_fit(frequency, recency, tenure, 1, %s)', used_penalizer) ELSE 'NULL' END,
                CASE WHEN model = 'pareto_nbd' THEN format('pareto_nbd_fit(frequency, recency, tenure, 1, %s)', used_penalizer) ELSE 'NULL' END,
                used_penalizer, penalizer);
            EXIT;
        EXCEPTION WHEN SQLSTATE '22000' THEN  -- the fits' "did not converge"
            IF used_penalizer > 0 THEN
                RAISE;
            END IF;
            GET STACKED DIAGNOSTICS fit_error = MESSAGE_TEXT;
            RAISE WARNING 'clv_pipeline: the % fit has no maximum without a penalizer (%); refitting with penalizer %',
                model, fit_error, fallback_penalizer
                USING HINT = 'pass penalizer => ... to choose it yourself; clv_models.penalizer records the one used';
            used_penalizer := fallback_penalizer;
        END;
    END LOOP;

    IF ml_on THEN
        ml_start := (observation_end - make_interval(months => horizon_months))::date;
        RAISE NOTICE 'clv_pipeline: stage 3/6: ML (clv %, churn %) trained on features as of % and labels up to %',
            clv_method, coalesce(churn_method, 'none'), ml_start, observation_end;
        ml_sql := clv_ml_dataset_query(source, customer_column, time_column, amount_column, ml_start, observation_end, seed);
        EXECUTE format($f$
            WITH d AS MATERIALIZED (%2$s),
            fitted AS (SELECT CASE WHEN %3$L <> 'btyd' THEN ml_regression_fit(features, holdout_spend, %3$L, %5$L::jsonb) END AS c,
                              CASE WHEN %4$L IS NOT NULL THEN ml_classifier_fit(features, churned, coalesce(%4$L, 'logistic'), '{}'::jsonb || %5$L::jsonb - 'alpha') END AS k
                       FROM d WHERE in_training)
            UPDATE %1$s.clv_models m SET clv_method = %3$L, clv_model = fitted.c, churn_model = fitted.k,
                ml_validation = jsonb_build_object(
                    'trained_on', jsonb_build_object('features_as_of', %6$L::date, 'labels_until', %7$L::date),
                    'clv', (SELECT regression_metrics(ml_predict(fitted.c, d.features), d.holdout_spend) FROM d WHERE NOT d.in_training),
                    'churn', (SELECT classification_metrics(ml_predict_probability(fitted.k, d.features), d.churned) FROM d WHERE NOT d.in_training))
            FROM fitted WHERE m.run_id = %8$s$f$,
            s, ml_sql, clv_method, churn_method,
            jsonb_build_object('feature_names', to_jsonb(customer_feature_names())) || CASE WHEN clv_method = 'linear' THEN '{"alpha": 1.0}'::jsonb ELSE '{}'::jsonb END,
            ml_start, observation_end, new_run);
    END IF;

    -- The CLV of a customer row r (clv_rfm) with its features f (clv_features) under model row m:
    -- BTYD's discounted CLV, or the ML model's predicted spend over the horizon (undiscounted).
    clv_expr := $e$CASE WHEN m.clv_method = 'btyd' THEN
                   coalesce(clv(m.bgnbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit),
                            clv(m.pareto_nbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit))
                   ELSE ml_predict(m.clv_model, f.features) END$e$;

    RAISE NOTICE 'clv_pipeline: stage 4/6: K-means with % clusters on recency, frequency, monetary value and CLV', clusters;
    EXECUTE format($f$UPDATE %1$s.clv_models m SET clusters = (
        SELECT kmeans_fit(ARRAY[r.recency, r.frequency, r.monetary_value, %5$s], %2$s, %3$s::bigint)
        FROM %1$s.clv_rfm r LEFT JOIN %1$s.clv_features f USING (customer_id)) WHERE m.run_id = %4$s$f$, s, least(clusters, n), seed, new_run, clv_expr);
    EXECUTE format('UPDATE %s.clv_models SET fit_seconds = extract(epoch FROM clock_timestamp() - %L::timestamptz) WHERE run_id = %s',
                   s, t0, new_run);

    RAISE NOTICE 'clv_pipeline: stage 5/6: scoring every customer (materialized view %.clv_customers)', s;
    mv_sql := format($f$
        WITH m AS (SELECT * FROM %1$s.clv_models ORDER BY run_id DESC LIMIT 1),
        scored AS (
            SELECT r.customer_id, r.frequency, r.recency, r.tenure, r.monetary_value, r.transactions, r.total_amount,
                   r.first_purchase, r.last_purchase,
                   coalesce(p_alive(m.bgnbd, r.frequency, r.recency, r.tenure),
                            p_alive(m.pareto_nbd, r.frequency, r.recency, r.tenure)) AS p_alive,
                   coalesce(expected_purchases(m.bgnbd, m.horizon_months * clv_periods_per_month(m.unit), r.frequency, r.recency, r.tenure),
                            expected_purchases(m.pareto_nbd, m.horizon_months * clv_periods_per_month(m.unit), r.frequency, r.recency, r.tenure)) AS expected_purchases,
                   expected_spend(m.spend, r.frequency, r.monetary_value) AS expected_spend,
                   %2$s AS clv,
                   ml_predict_probability(m.churn_model, f.features) AS churn_probability,
                   d.discount_share, m.clusters
            FROM %1$s.clv_rfm r CROSS JOIN m LEFT JOIN %1$s.clv_features f USING (customer_id)
                 LEFT JOIN %1$s.clv_discounts d USING (customer_id))
        SELECT customer_id, frequency, recency, tenure, monetary_value, transactions, total_amount, first_purchase, last_purchase,
               cohort_of(first_purchase, 'month') AS cohort,
               p_alive, expected_purchases, expected_spend, clv, churn_probability, discount_share,
               clv_segment(clv) OVER () AS tier,
               rfm_segment(rfm_score(tenure - recency, false) OVER (), rfm_score(frequency) OVER (),
                           rfm_score(total_amount) OVER ()) AS rfm_segment,
               clv_named_segment(frequency, p_alive, percent_rank() OVER (ORDER BY clv),
                                 percent_rank() OVER (ORDER BY total_amount),
                                 percent_rank() OVER (ORDER BY expected_purchases), discount_share) AS named_segment,
               kmeans_assign(clusters, ARRAY[recency, frequency, monetary_value, clv]) AS cluster
        FROM scored$f$, s, clv_expr);
    mv_hash := md5(mv_sql);
    IF to_regclass(s || '.clv_customers') IS NOT NULL
       AND obj_description(to_regclass(s || '.clv_customers'), 'pg_class') = mv_hash THEN
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.clv_customers', s);
    ELSE
        IF to_regclass(s || '.clv_customers') IS NOT NULL THEN
            EXECUTE format('DROP MATERIALIZED VIEW %s.clv_customers CASCADE', s);
        END IF;
        EXECUTE format('CREATE MATERIALIZED VIEW %s.clv_customers AS %s', s, mv_sql);
        EXECUTE format('CREATE UNIQUE INDEX ON %s.clv_customers (customer_id)', s);
        EXECUTE format('COMMENT ON MATERIALIZED VIEW %s.clv_customers IS %L', s, mv_hash);
    END IF;

    RAISE NOTICE 'clv_pipeline: stage 6/6: tier summary, tier history and migration views';
    EXECUTE format($f$CREATE OR REPLACE VIEW %1$s.clv_tier_summary AS
        SELECT tier, count(*) AS customers,
               round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS customer_share_pct,
               sum(clv) AS predicted_clv,
               round((100.0 * sum(clv) / nullif(sum(sum(clv)) OVER (), 0))::numeric, 2) AS clv_share_pct,
               avg(p_alive) AS mean_p_alive, avg(expected_purchases) AS mean_expected_purchases
        FROM %1$s.clv_customers GROUP BY tier
        ORDER BY min(clv) DESC NULLS LAST$f$, s);  -- tier rank: high, medium, low
    EXECUTE format('CREATE OR REPLACE VIEW %1$s.clv_segment_profiles AS SELECT * FROM clv_segment_profiles(%2$L)', s, target_schema);
    EXECUTE format('DELETE FROM %s.clv_tier_history WHERE run_id = %s', s, new_run);
    EXECUTE format('INSERT INTO %1$s.clv_tier_history SELECT %2$s, customer_id, tier FROM %1$s.clv_customers', s, new_run);
    EXECUTE format($f$CREATE OR REPLACE VIEW %1$s.clv_tier_migration AS
        WITH cur AS (SELECT max(run_id) AS r FROM %1$s.clv_models),
             prev AS (SELECT max(run_id) AS r FROM %1$s.clv_models WHERE run_id < (SELECT r FROM cur)),
             a AS (SELECT customer_id, tier FROM %1$s.clv_tier_history WHERE run_id = (SELECT r FROM prev)),
             b AS (SELECT customer_id, tier FROM %1$s.clv_tier_history WHERE run_id = (SELECT r FROM cur))
        SELECT (SELECT r FROM prev) AS from_run, (SELECT r FROM cur) AS to_run,
               coalesce(a.tier, '(new)') AS from_tier, coalesce(b.tier, '(gone)') AS to_tier, count(*) AS customers
        FROM a FULL JOIN b USING (customer_id)
        WHERE (SELECT r FROM prev) IS NOT NULL
        GROUP BY a.tier, b.tier$f$, s);

    RETURN QUERY EXECUTE format('SELECT %s::bigint, count(*), sum(clv), extract(epoch FROM clock_timestamp() - %L::timestamptz)::float8 '
                                'FROM %s.clv_customers', new_run, started, s);
END $$;
