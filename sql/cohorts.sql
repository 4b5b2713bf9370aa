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
-- The bodies name the extension's schema: PostgreSQL 17 and later build and refresh materialized
-- views (the pipeline's clv_customers calls cohort_of) with search_path = pg_catalog, pg_temp.
CREATE FUNCTION cohort_of(first_purchase timestamp, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT date_trunc(@extschema@.clv_check_grain(cohort_grain, 'cohort_grain'), first_purchase)::date $$;

CREATE FUNCTION cohort_of(first_purchase date, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT @extschema@.cohort_of(first_purchase::timestamp, cohort_grain) $$;

CREATE FUNCTION cohort_of(first_purchase timestamptz, cohort_grain text DEFAULT 'month')
RETURNS date LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT @extschema@.cohort_of(first_purchase::timestamp, cohort_grain) $$;

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
