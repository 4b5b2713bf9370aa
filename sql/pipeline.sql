-- clv_pipeline: from a transactions table to BI-ready tables and materialized views in one call,
-- and clv_holdout_*: validation of the model on a calibration/holdout split.
--
-- Runs with the caller's privileges (no SECURITY DEFINER): the caller needs SELECT on the source
-- and CREATE on the target schema. Every identifier is quoted with format('%I') / regclass.

-- Checks a column of `source` and returns its type; clear errors for a missing column (42703) or a
-- wrong type (42804).
CREATE FUNCTION clv_column_type(source regclass, col text, allowed text[], what text)
RETURNS regtype LANGUAGE plpgsql STABLE AS $$
DECLARE
    t regtype;
BEGIN
    SELECT a.atttypid::regtype INTO t FROM pg_attribute a
    WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF t IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, source
            USING ERRCODE = 'undefined_column', HINT = format('clv_pipeline needs the %s column', what);
    END IF;
    -- Checked here so that a caller who may not read the source is told so before anything is created.
    IF NOT has_column_privilege(source, col, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', source
            USING ERRCODE = 'insufficient_privilege', HINT = format('clv_pipeline runs with your privileges and needs SELECT on column "%s"', col);
    END IF;
    IF allowed IS NOT NULL AND NOT (t::text = ANY (allowed)) THEN
        RAISE EXCEPTION 'column "%" of relation % has type %, expected one of %', col, source, t, array_to_string(allowed, ', ')
            USING ERRCODE = 'datatype_mismatch', HINT = format('the %s column', what);
    END IF;
    RETURN t;
END $$;

-- The per-customer RFM query over the source, shared by the pipeline and the validation.
CREATE FUNCTION clv_rfm_query(source regclass, customer_column text, time_column text, amount_column text,
                              calibration_end date, observation_end date, unit text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    time_types CONSTANT text[] := ARRAY['date', 'timestamp without time zone', 'timestamp with time zone'];
    amount_types CONSTANT text[] := ARRAY['numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'];
    summary text;
BEGIN
    PERFORM clv_column_type(source, customer_column, NULL, 'customer');
    PERFORM clv_column_type(source, time_column, time_types, 'transaction time');
    PERFORM clv_column_type(source, amount_column, amount_types, 'amount');
    IF unit IS NULL OR lower(unit) NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'unknown unit "%"; accepted units are ''day'', ''week'', ''month''', unit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    summary := CASE WHEN calibration_end IS NULL
        THEN format('rfm(%I, %I::double precision, %L)', time_column, amount_column, observation_end)
        ELSE format('rfm_holdout(%I, %I::double precision, %L, %L, ''day'')', time_column, amount_column, calibration_end, observation_end)
    END;
    RETURN format(
        'SELECT q.customer_id, f.* FROM (SELECT %I AS customer_id, %s AS s FROM %s WHERE %I IS NOT NULL GROUP BY %I) q '
        'CROSS JOIN LATERAL rfm_fields(q.s, %L) f',
        customer_column, summary, source, customer_column, customer_column, lower(unit));
END $$;

-- ---------------------------------------------------------------------------------------------
-- The pipeline. A run has two halves:
--   1. the per-customer state <schema>.clv_rfm_state (one rfm_summary per customer, in days, and
--      its count of discounted transactions), built from the whole source by clv_pipeline or
--      brought up to date from the new rows only by clv_pipeline_refresh (clv_pipeline_merge);
--   2. everything derived from it (clv_pipeline_finish): clv_rfm with every customer's T at the
--      observation end, the model fits, K-means, the materialized view, tier history and views.
-- <schema>.clv_pipeline_state (one row) holds the run's settings, the observation end and the
-- high-water marks that tell the next refresh which rows are new (docs/refresh.md).
-- ---------------------------------------------------------------------------------------------

-- A boolean placeholder setting (SET clv.<name> = on | off): its default when unset or empty;
-- the spellings PostgreSQL accepts for a boolean (parse_bool: on/off, true/false, yes/no, 1/0 and
-- unique prefixes, any case), otherwise 22023. Matched, not cast: a cast's error would need an
-- exception block, a subtransaction, which a parallel worker cannot start.
CREATE FUNCTION clv_setting_on(name text, default_value boolean)
RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    v text := lower(btrim(current_setting(name, true)));
BEGIN
    IF v IS NULL OR v = '' THEN
        RETURN default_value;
    ELSIF v ~ '^(t|tr|tru|true|y|ye|yes|on|1)$' THEN
        RETURN true;
    ELSIF v ~ '^(f|fa|fal|fals|false|n|no|of|off|0)$' THEN
        RETURN false;
    END IF;
    RAISE EXCEPTION 'setting % must be on or off, not "%"', name, current_setting(name, true)
        USING ERRCODE = 'invalid_parameter_value';
END $$;

-- Adds a stage's seconds to the run's timings (kept in clv_models.stage_seconds) and, when the
-- setting clv.pipeline_timing is on, says so in a NOTICE "clv_pipeline: <stage> <seconds> s".
CREATE FUNCTION clv_pipeline_lap(timings jsonb, stage text, since timestamptz)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- ::numeric: extract returns double precision before PostgreSQL 14, and round(float8, int) does not exist.
    secs numeric := round(extract(epoch FROM clock_timestamp() - since)::numeric, 6);
BEGIN
    IF clv_setting_on('clv.pipeline_timing', false) THEN
        RAISE NOTICE 'clv_pipeline: % % s', stage, round(secs, 3);
    END IF;
    RETURN coalesce(timings, '{}'::jsonb) || jsonb_build_object(stage, secs);
END $$;

-- The settings table of a pipeline schema, after checking that a run left one and that its
-- source still exists.
CREATE FUNCTION clv_pipeline_state_of(target_schema name)
RETURNS regclass LANGUAGE plpgsql STABLE AS $$
DECLARE
    meta regclass := to_regclass(quote_ident(target_schema) || '.clv_pipeline_state');
    src oid;
BEGIN
    IF meta IS NULL OR to_regclass(quote_ident(target_schema) || '.clv_rfm_state') IS NULL THEN
        RAISE EXCEPTION 'schema % has no pipeline state to refresh', quote_ident(target_schema)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('run clv_pipeline(..., target_schema => %L) once first (clv_ext 0.6.0 or later)', target_schema);
    END IF;
    EXECUTE format('SELECT source::oid FROM %s', meta) INTO src;
    IF src IS NULL OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = src) THEN
        RAISE EXCEPTION 'the source table of the pipeline in schema % no longer exists', quote_ident(target_schema)
            USING ERRCODE = 'undefined_table', HINT = 'run clv_pipeline on the new source';
    END IF;
    RETURN meta;
END $$;

-- "FROM <source> t WHERE ..." for the source rows a pipeline schema has aggregated ('old'), has
-- not ('new'), or all of them ('all'). A row is old when its time is at most the time mark and,
-- with an arrival column, its arrival value is not above the arrival mark. The marks are written
-- in as constants, so that the planner estimates how few rows are new and an index on the time
-- (and arrival) column serves 'new' (docs/refresh.md); their JSON text is ISO and does not
-- depend on DateStyle or TimeZone, so the constant is exactly the stored mark.
CREATE FUNCTION clv_pipeline_rows(target_schema name, which text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    meta regclass := clv_pipeline_state_of(target_schema);
    st record;
    time_mark text;
    arrival_mark text;
    old text;
    new text;
BEGIN
    EXECUTE format('SELECT * FROM %s', meta) INTO st;
    time_mark := format('%L::%s', to_json(st.time_mark) #>> '{}', pg_typeof(st.time_mark));
    arrival_mark := format('%L::%s', to_json(st.arrival_mark) #>> '{}', pg_typeof(st.arrival_mark));
    old := format('t.%I <= %s', st.time_column, time_mark);
    new := format('t.%I > %s', st.time_column, time_mark);
    IF st.arrival_column IS NOT NULL THEN
        old := old || format(' AND (t.%I > %s) IS NOT TRUE', st.arrival_column, arrival_mark);
        new := new || format(' OR t.%I > %s', st.arrival_column, arrival_mark);
    END IF;
    IF which IS NULL OR which NOT IN ('all', 'old', 'new') THEN
        RAISE EXCEPTION 'the pipeline''s rows are ''all'', ''old'' or ''new'', not %', which USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN format('FROM %s t WHERE t.%I IS NOT NULL', st.source, st.customer_column) || CASE which
        WHEN 'old' THEN format(' AND (%s)', old)
        WHEN 'new' THEN format(' AND (%s)', new)
        ELSE '' END;
END $$;

-- Runs `fill` (an INSERT) into the emptied table `tab` with its primary key dropped, then adds the
-- key back under its name and definition: loading a million rows through the key's B-tree in
-- random order took 8.6-13.5 s, loading them bare and building the key 1.3 + 2.1 s (bench/README.md).
-- Returns the rows inserted.
CREATE FUNCTION clv_load_then_key(tab regclass, fill text)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    key_name name;
    key_def text;
    n bigint;
BEGIN
    SELECT conname, pg_get_constraintdef(oid) INTO key_name, key_def
    FROM pg_constraint WHERE conrelid = tab AND contype = 'p'
      -- A foreign key of the user's that references it: keep the key, load through it.
      AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = tab);
    IF key_name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tab, key_name);
    END IF;
    EXECUTE fill;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF key_name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', tab, key_name, key_def);
    END IF;
    RETURN n;
END $$;

-- The per-customer aggregation of a pipeline schema's source rows (clv_pipeline_rows): the
-- summary in days up to the observation end, the discounted transactions among the summarised
-- ones, the newest summarised time (in the time column's type), the largest arrival value of
-- any row, and whether a discount amount is NaN or infinite. Checks the columns first (existence,
-- types, SELECT privilege).
CREATE FUNCTION clv_pipeline_state_query(target_schema name, which text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    time_types CONSTANT text[] := ARRAY['date', 'timestamp without time zone', 'timestamp with time zone'];
    amount_types CONSTANT text[] := ARRAY['numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'];
    meta regclass := clv_pipeline_state_of(target_schema);
    st record;
    time_type regtype;
    discount_type regtype;
    in_window text;
    last_time text;
    discounted text := 'NULL::bigint';
    bad_discount text := 'false';
    arrival text := 'NULL::bigint';
BEGIN
    EXECUTE format('SELECT * FROM %s', meta) INTO st;
    PERFORM clv_column_type(st.source, st.customer_column, NULL, 'customer');
    time_type := clv_column_type(st.source, st.time_column, time_types, 'transaction time');
    PERFORM clv_column_type(st.source, st.amount_column, amount_types, 'amount');
    -- rfm's days: a timestamptz falls on its UTC day (docs/rfm.md).
    in_window := format(CASE WHEN time_type = 'timestamp with time zone'::regtype THEN '(t.%I AT TIME ZONE ''UTC'')::date <= %L::date'
                             ELSE 't.%I::date <= %L::date' END, st.time_column, st.observation_end);
    last_time := CASE WHEN time_type = 'date'::regtype THEN 'last_purchase(%s)::date'
                      WHEN time_type = 'timestamp with time zone'::regtype THEN '(last_purchase(%s) AT TIME ZONE ''UTC'')'
                      ELSE 'last_purchase(%s)' END;
    IF st.discount_column IS NOT NULL THEN
        -- boolean: the purchase used a discount; a number: the discount amount (> 0: it did).
        discount_type := clv_column_type(st.source, st.discount_column,
            ARRAY['boolean', 'numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'], 'discount');
        discounted := format('count(*) FILTER (WHERE %s AND %s)', in_window,
            format(CASE WHEN discount_type = 'boolean'::regtype THEN 't.%I' ELSE 't.%I > 0' END, st.discount_column));
        IF discount_type <> 'boolean'::regtype THEN
            bad_discount := format('coalesce(bool_or(t.%I::double precision IN (''NaN'', ''Infinity'', ''-Infinity'')), false)', st.discount_column);
        END IF;
    END IF;
    IF st.arrival_column IS NOT NULL THEN
        arrival := format('max(t.%I)', st.arrival_column);
    END IF;
    RETURN format('SELECT t.%1$I AS customer_id, rfm(t.%2$I, t.%3$I::double precision, %4$L::date) AS summary, '
                  '%5$s AS last_time, %6$s AS discounted, %7$s AS arrival_max, %8$s AS bad_discount %9$s GROUP BY t.%1$I',
                  st.customer_column, st.time_column, st.amount_column, st.observation_end,
                  format(last_time, format('rfm(t.%I, t.%I::double precision, %L::date)', st.time_column, st.amount_column, st.observation_end)),
                  discounted, arrival, bad_discount, clv_pipeline_rows(target_schema, which));
END $$;

-- Aggregates the source rows `which` ('all': rebuild from scratch; 'new': the rows the stored
-- state has not seen) at the schema's observation end and merges them into clv_rfm_state: a
-- customer's stored summary is moved to the observation end (rfm_as_of) and rolled up with the
-- new one. The marks move to the newest aggregated time and the largest arrival value read, in the
-- same snapshot as the rows. Returns the transactions and customers merged.
CREATE FUNCTION clv_pipeline_merge(target_schema name, which text, OUT merged_rows bigint, OUT merged_customers bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s text := quote_ident(target_schema);
    meta regclass := clv_pipeline_state_of(target_schema);
    bad_discount boolean;
    observation_end date;
BEGIN
    IF which NOT IN ('all', 'new') THEN
        RAISE EXCEPTION 'clv_pipeline_merge merges ''all'' or ''new'' rows, not %', which USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT observation_end FROM %s', meta) INTO observation_end;
    IF which = 'all' THEN
        EXECUTE format('TRUNCATE %s.clv_rfm_state', s);
        EXECUTE format('UPDATE %s SET time_mark = NULL, arrival_mark = NULL', meta);
    END IF;
    IF to_regclass('pg_temp.clv_pipeline_rows') IS NOT NULL THEN
        DROP TABLE pg_temp.clv_pipeline_rows;
    END IF;
    -- One statement, one snapshot: the rows, their newest time and largest arrival value.
    EXECUTE format('CREATE TEMP TABLE clv_pipeline_rows AS %s', clv_pipeline_state_query(target_schema, which));
    EXECUTE 'SELECT coalesce(sum(transactions(summary)), 0), count(summary), coalesce(bool_or(bad_discount), false) '
            'FROM pg_temp.clv_pipeline_rows' INTO merged_rows, merged_customers, bad_discount;
    IF bad_discount THEN
        RAISE EXCEPTION 'a discount amount is NaN or infinite' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF which = 'all' THEN
        PERFORM clv_load_then_key(format('%s.clv_rfm_state', s)::regclass,
            format('INSERT INTO %s.clv_rfm_state SELECT customer_id, summary, discounted '
                   'FROM pg_temp.clv_pipeline_rows WHERE summary IS NOT NULL', s));
    ELSE
        -- Statistics, so that the join probes the (large) state with the (small) new rows.
        ANALYZE pg_temp.clv_pipeline_rows;
        EXECUTE format($f$INSERT INTO %1$s.clv_rfm_state (customer_id, summary, discounted)
            SELECT n.customer_id,
                   CASE WHEN o.summary IS NULL THEN n.summary
                        ELSE (SELECT rollup(x) FROM (VALUES (rfm_as_of(o.summary, %2$L::date)), (n.summary)) v(x)) END,
                   coalesce(o.discounted, 0) + n.discounted
            FROM pg_temp.clv_pipeline_rows n LEFT JOIN %1$s.clv_rfm_state o USING (customer_id)
            WHERE n.summary IS NOT NULL
            ON CONFLICT (customer_id) DO UPDATE SET summary = excluded.summary, discounted = excluded.discounted$f$,
            s, observation_end);
    END IF;
    EXECUTE format('UPDATE %s SET time_mark = greatest(time_mark, (SELECT max(last_time) FROM pg_temp.clv_pipeline_rows)), '
                   'arrival_mark = greatest(arrival_mark, (SELECT max(arrival_max) FROM pg_temp.clv_pipeline_rows))', meta);
    DROP TABLE pg_temp.clv_pipeline_rows;
END $$;

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
    discount_column text DEFAULT NULL,
    arrival_column text DEFAULT NULL
) RETURNS TABLE (run_id bigint, customers bigint, total_clv double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
    s text := quote_ident(target_schema);
    id_type regtype;
    time_type regtype;
    arrival_type regtype := 'bigint';
    t0 timestamptz;
    timings jsonb := '{}';
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
        PERFORM clv_column_type(source, discount_column,
            ARRAY['boolean', 'numeric', 'double precision', 'real', 'integer', 'bigint', 'smallint'], 'discount');
    END IF;
    IF arrival_column IS NOT NULL THEN
        -- A value that grows as rows arrive: a bigserial id or an insertion time (docs/refresh.md).
        arrival_type := clv_column_type(source, arrival_column,
            ARRAY['smallint', 'integer', 'bigint', 'numeric', 'date', 'timestamp without time zone', 'timestamp with time zone'], 'arrival');
    END IF;
    -- Checks the customer, time and amount columns and the unit.
    PERFORM clv_rfm_query(source, customer_column, time_column, amount_column, NULL, observation_end, unit);
    time_type := clv_column_type(source, time_column, NULL, 'transaction time');
    -- Settings checked before the work, not when a stage reads them.
    PERFORM clv_setting_on('clv.refresh_concurrently', true), clv_setting_on('clv.pipeline_timing', false);
    -- One run at a time per target schema (a refresh reads and moves the marks).
    PERFORM pg_advisory_xact_lock(hashtext('clv_pipeline'), hashtext(target_schema));

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
        ml_validation jsonb,
        run_mode text NOT NULL DEFAULT 'full',
        stage_seconds jsonb)$f$, s);
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
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_models')
                   AND attname = 'run_mode' AND NOT attisdropped) THEN
        -- A schema written by clv_ext 0.5.0 or earlier.
        EXECUTE format($f$ALTER TABLE %s.clv_models ADD COLUMN run_mode text NOT NULL DEFAULT 'full', ADD COLUMN stage_seconds jsonb$f$, s);
    END IF;
    IF to_regclass(s || '.clv_tier_history') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_tier_history (run_id bigint NOT NULL, customer_id %s NOT NULL, tier text, '
                       'PRIMARY KEY (run_id, customer_id))', s, id_type);
    END IF;
    -- The settings, observation end and marks of this run (one row), and the per-customer state,
    -- refilled by every full run; recreated when the source's column types changed.
    IF to_regclass(s || '.clv_pipeline_state') IS NOT NULL
       AND (SELECT array_agg(atttypid::regtype ORDER BY attname) FROM pg_attribute
            WHERE attrelid = to_regclass(s || '.clv_pipeline_state') AND attname IN ('arrival_mark', 'time_mark') AND NOT attisdropped)
           IS DISTINCT FROM ARRAY[arrival_type, time_type] THEN
        EXECUTE format('DROP TABLE %s.clv_pipeline_state', s);
    END IF;
    IF to_regclass(s || '.clv_rfm_state') IS NOT NULL
       AND (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_rfm_state') AND attname = 'customer_id')
           IS DISTINCT FROM id_type THEN
        EXECUTE format('DROP TABLE %s.clv_rfm_state', s);
    END IF;
    IF to_regclass(s || '.clv_pipeline_state') IS NULL THEN
    EXECUTE format($f$CREATE TABLE %s.clv_pipeline_state (
        one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
        source regclass NOT NULL,
        customer_column text NOT NULL,
        time_column text NOT NULL,
        amount_column text NOT NULL,
        discount_column text,
        arrival_column text,
        unit text NOT NULL,
        model text NOT NULL,
        horizon_months integer NOT NULL,
        discount_rate double precision NOT NULL,
        clusters integer NOT NULL,
        seed bigint NOT NULL,
        penalizer double precision NOT NULL,
        clv_method text NOT NULL,
        churn_method text,
        observation_end date NOT NULL,
        time_mark %s,
        arrival_mark %s,
        rows_aggregated bigint,
        amount_aggregated double precision,
        full_run_at timestamptz NOT NULL,
        refreshed_at timestamptz)$f$, s, time_type, arrival_type);
    END IF;
    IF to_regclass(s || '.clv_rfm_state') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_rfm_state (customer_id %s PRIMARY KEY, summary rfm_summary NOT NULL, discounted bigint)',
                       s, id_type);
    END IF;
    EXECUTE format('DELETE FROM %s.clv_pipeline_state', s);
    EXECUTE format('INSERT INTO %s.clv_pipeline_state (source, customer_column, time_column, amount_column, discount_column, '
                   'arrival_column, unit, model, horizon_months, discount_rate, clusters, seed, penalizer, clv_method, '
                   'churn_method, observation_end, full_run_at) '
                   'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, now())', s)
        USING source, customer_column, time_column, amount_column, discount_column, arrival_column, lower(unit), model,
              horizon_months, discount_rate, clusters, seed, penalizer, clv_method, churn_method, observation_end;

    RAISE NOTICE 'clv_pipeline: stage 2/6: RFM summaries of % (observation end %, unit %)', source, observation_end, unit;
    t0 := clock_timestamp();
    PERFORM clv_pipeline_merge(target_schema, 'all');
    timings := clv_pipeline_lap(timings, 'rfm', t0);
    RETURN QUERY SELECT * FROM clv_pipeline_finish(target_schema, 'full', timings, started);
END $$;

-- Brings a pipeline schema up to a later observation end from the source rows added since its last
-- run (clv_pipeline or clv_pipeline_refresh), without reading the old rows again, then refits and
-- republishes as clv_pipeline does. verify (default: true without an arrival column) first counts
-- and sums the source rows up to the time mark: when they differ from the stored summaries (rows
-- inserted late, deleted or changed), the summaries are rebuilt from the source. docs/refresh.md.
CREATE FUNCTION clv_pipeline_refresh(
    target_schema name DEFAULT 'clv',
    observation_end date DEFAULT NULL,
    verify boolean DEFAULT NULL
) RETURNS TABLE (run_id bigint, customers bigint, total_clv double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    started timestamptz := clock_timestamp();
    s text := quote_ident(target_schema);
    meta regclass;
    st record;
    new_end date;
    t0 timestamptz;
    timings jsonb := '{}';
    n_rows bigint;
    amount double precision;
    amount_abs double precision;
    rebuild boolean := false;
    merged record;
BEGIN
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'target_schema must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM clv_setting_on('clv.refresh_concurrently', true), clv_setting_on('clv.pipeline_timing', false);
    PERFORM pg_advisory_xact_lock(hashtext('clv_pipeline'), hashtext(target_schema));
    meta := clv_pipeline_state_of(target_schema);
    EXECUTE format('SELECT * FROM %s', meta) INTO st;
    new_end := coalesce(observation_end, greatest(current_date, st.observation_end));
    IF NOT isfinite(new_end) THEN
        RAISE EXCEPTION 'observation_end must be a finite date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF new_end < st.observation_end THEN
        RAISE EXCEPTION 'observation_end % is before the last run''s observation end %', new_end, st.observation_end
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a refresh only moves the observation end forward; run clv_pipeline for an earlier end';
    END IF;
    verify := coalesce(verify, st.arrival_column IS NULL);
    -- The marks and the state are typed like the source's columns of the last full run.
    IF clv_column_type(st.source, st.time_column, NULL, 'transaction time')
           IS DISTINCT FROM (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = meta AND attname = 'time_mark')
       OR clv_column_type(st.source, st.customer_column, NULL, 'customer')
           IS DISTINCT FROM (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_rfm_state') AND attname = 'customer_id')
       OR (st.arrival_column IS NOT NULL AND clv_column_type(st.source, st.arrival_column, NULL, 'arrival')
           IS DISTINCT FROM (SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = meta AND attname = 'arrival_mark')) THEN
        RAISE EXCEPTION 'a column of % changed type since the last full run of schema %', st.source, s
            USING ERRCODE = 'datatype_mismatch', HINT = 'run clv_pipeline again';
    END IF;
    EXECUTE format('UPDATE %s SET observation_end = %L, refreshed_at = now()', meta, new_end);

    RAISE NOTICE 'clv_pipeline: stage 2/6: refreshing the RFM summaries of % (observation end % -> %)', st.source, st.observation_end, new_end;
    t0 := clock_timestamp();
    IF verify THEN
        EXECUTE format('SELECT count(*), coalesce(sum(t.%1$I::double precision), 0), coalesce(sum(abs(t.%1$I::double precision)), 0) %2$s',
                       st.amount_column, clv_pipeline_rows(target_schema, 'old')) INTO n_rows, amount, amount_abs;
        -- Float sums in another order: equal to 1e-9 of the turnover (NaN: not equal).
        rebuild := n_rows IS DISTINCT FROM st.rows_aggregated OR NOT coalesce(abs(amount - st.amount_aggregated) <= 1e-9 * amount_abs, false);
        timings := clv_pipeline_lap(timings, 'verify', t0);
        t0 := clock_timestamp();
    END IF;
    IF rebuild THEN
        RAISE NOTICE 'clv_pipeline: the source has % rows (amount %) up to the time mark %, the stored summaries % (amount %): rows were inserted late, deleted or changed; rebuilding the summaries from the source',
            n_rows, amount, st.time_mark, st.rows_aggregated, st.amount_aggregated;
        SELECT * INTO merged FROM clv_pipeline_merge(target_schema, 'all');
        timings := clv_pipeline_lap(timings, 'rfm', t0);
    ELSE
        SELECT * INTO merged FROM clv_pipeline_merge(target_schema, 'new');
        RAISE NOTICE 'clv_pipeline: % new transactions of % customers merged', merged.merged_rows, merged.merged_customers;
        timings := clv_pipeline_lap(timings, 'merge', t0);
    END IF;
    RETURN QUERY SELECT * FROM clv_pipeline_finish(target_schema, CASE WHEN rebuild THEN 'rebuilt' ELSE 'incremental' END,
                                                   timings, started);
END $$;

-- Stages 3-6 of a run, from clv_rfm_state and the settings: clv_rfm (every customer's T at the
-- observation end), features and discount shares, the fits, K-means, the materialized view, the
-- tier history and the views. Shared by clv_pipeline and clv_pipeline_refresh.
CREATE FUNCTION clv_pipeline_finish(target_schema name, run_mode text, timings jsonb, started timestamptz)
RETURNS TABLE (run_id bigint, customers bigint, total_clv double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- When the purchase model's likelihood has no interior maximum (regular buyers, no visible
    -- drop-out) and the caller gave no penalizer, the fit is retried once with this one (the
    -- value lifetimes' docs suggest) and the run says so in a WARNING and in clv_models.penalizer.
    fallback_penalizer CONSTANT double precision := 0.001;
    -- K-means is fitted on at most this many customers (a seeded hash sample), docs/segments.md.
    kmeans_sample CONSTANT integer := 20000;
    meta regclass := clv_pipeline_state_of(target_schema);
    st record;
    used_penalizer double precision;
    fit_error text;
    s text := quote_ident(target_schema);
    id_type regtype;
    mv_sql text;
    mv_hash text;
    dependents text;
    new_run bigint;
    fit_started timestamptz := clock_timestamp();
    t0 timestamptz := clock_timestamp();
    n bigint;
    -- ML: trained on the last horizon before observation_end (features as of its start, labels
    -- in it), validated on the customers outside clv_in_training_set, applied to the features as
    -- of observation_end.
    ml_start date;
    ml_sql text;
    clv_expr text;
    ml_on boolean;
BEGIN
    EXECUTE format('SELECT * FROM %s', meta) INTO st;
    used_penalizer := st.penalizer;
    ml_on := st.clv_method <> 'btyd' OR st.churn_method IS NOT NULL;
    id_type := clv_column_type(st.source, st.customer_column, NULL, 'customer');

    -- Refilled in place on every run: the materialized view reads it.
    IF to_regclass(s || '.clv_rfm') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_rfm AS SELECT customer_id, f.* FROM %s.clv_rfm_state '
                       'CROSS JOIN LATERAL rfm_fields(summary, %L) f WITH NO DATA', s, s, st.unit);
        EXECUTE format('ALTER TABLE %s.clv_rfm ADD PRIMARY KEY (customer_id)', s);
    ELSE
        EXECUTE format('TRUNCATE %s.clv_rfm', s);
    END IF;
    n := clv_load_then_key(format('%s.clv_rfm', s)::regclass,
        format('INSERT INTO %1$s.clv_rfm SELECT customer_id, f.* FROM %1$s.clv_rfm_state '
               'CROSS JOIN LATERAL rfm_fields(rfm_as_of(summary, %2$L::date), %3$L) f',
               s, st.observation_end, st.unit));
    IF n = 0 THEN
        RAISE EXCEPTION 'no customer has a transaction up to %', st.observation_end USING ERRCODE = 'no_data_found';
    END IF;
    -- What a refresh's verify compares the source with.
    EXECUTE format('UPDATE %1$s SET rows_aggregated = r.n, amount_aggregated = r.a '
                   'FROM (SELECT sum(transactions) AS n, sum(total_amount) AS a FROM %2$s.clv_rfm) r', meta, s);

    -- Discount share: the share of a customer's summarised transactions made with a discount;
    -- feeds the Discount Seekers rule of clv_named_segment. (+ 0.0: the same numeric division as avg.)
    IF to_regclass(s || '.clv_discounts') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_discounts (customer_id %s PRIMARY KEY, discount_share double precision)', s, id_type);
    END IF;
    EXECUTE format('TRUNCATE %s.clv_discounts', s);
    IF st.discount_column IS NOT NULL THEN
        EXECUTE format('INSERT INTO %1$s.clv_discounts SELECT customer_id, (discounted + 0.0) / transactions(summary) '
                       'FROM %1$s.clv_rfm_state', s);
    END IF;
    timings := clv_pipeline_lap(timings, 'rfm_table', t0);
    t0 := clock_timestamp();

    -- Features as of observation_end for every customer (read by the ML scoring; empty otherwise).
    IF to_regclass(s || '.clv_features') IS NULL THEN
        EXECUTE format('CREATE TABLE %s.clv_features (customer_id %s PRIMARY KEY, features double precision[])', s, id_type);
    END IF;
    EXECUTE format('TRUNCATE %s.clv_features', s);
    IF ml_on THEN
        EXECUTE format('INSERT INTO %1$s.clv_features SELECT * FROM (SELECT %2$I, customer_features(%3$I::date, %4$I::double precision, %5$L::date) AS f '
                       'FROM %6$s WHERE %2$I IS NOT NULL GROUP BY %2$I) q WHERE f IS NOT NULL',
                       s, st.customer_column, st.time_column, st.amount_column, st.observation_end, st.source);
        timings := clv_pipeline_lap(timings, 'features', t0);
        t0 := clock_timestamp();
    END IF;

    RAISE NOTICE 'clv_pipeline: stage 3/6: fitting % and Gamma-Gamma on % customers', st.model, n;
    EXECUTE format('SELECT coalesce(max(run_id), 0) + 1 FROM %s.clv_models', s) INTO new_run;
    LOOP
        BEGIN
            EXECUTE format($f$INSERT INTO %1$s.clv_models (run_id, fitted_at, fit_seconds, source, observation_end, unit,
                    first_transaction, last_transaction, customers, model, bgnbd, pareto_nbd, spend, clusters,
                    horizon_months, discount_rate, penalizer, run_mode)
                SELECT %2$s, now(), 0, %3$L, %4$L, %5$L, min(first_purchase), max(last_purchase), count(*), %6$L,
                       %9$s, %10$s, gamma_gamma_fit(frequency, monetary_value, 1, %12$s), NULL, %7$s, %8$s, %11$s, %13$L
                FROM %1$s.clv_rfm$f$, s, new_run, st.source::text, st.observation_end, st.unit, st.model, st.horizon_months, st.discount_rate,
                CASE WHEN st.model = 'bgnbd' THEN format('bgnbd_fit(frequency, recency, tenure, 1, %s)', used_penalizer) ELSE 'NULL' END,
                CASE WHEN st.model = 'pareto_nbd' THEN format('pareto_nbd_fit(frequency, recency, tenure, 1, %s)', used_penalizer) ELSE 'NULL' END,
                used_penalizer, st.penalizer, run_mode);
            EXIT;
        EXCEPTION WHEN SQLSTATE '22000' THEN  -- the fits' "did not converge"
            IF used_penalizer > 0 THEN
                RAISE;
            END IF;
            GET STACKED DIAGNOSTICS fit_error = MESSAGE_TEXT;
            RAISE WARNING 'clv_pipeline: the % fit has no maximum without a penalizer (%); refitting with penalizer %',
                st.model, fit_error, fallback_penalizer
                USING HINT = 'pass penalizer => ... to choose it yourself; clv_models.penalizer records the one used';
            used_penalizer := fallback_penalizer;
        END;
    END LOOP;
    timings := clv_pipeline_lap(timings, 'fit', t0);
    t0 := clock_timestamp();

    IF ml_on THEN
        ml_start := (st.observation_end - make_interval(months => st.horizon_months))::date;
        RAISE NOTICE 'clv_pipeline: stage 3/6: ML (clv %, churn %) trained on features as of % and labels up to %',
            st.clv_method, coalesce(st.churn_method, 'none'), ml_start, st.observation_end;
        -- The data set goes into a temporary table first: an UPDATE whose CTE reads a distributed
        -- source is refused by Citus (0A000, STABLE functions with column references).
        EXECUTE 'DROP TABLE IF EXISTS pg_temp.clv_ml_data';
        EXECUTE 'CREATE TEMP TABLE clv_ml_data AS ' || clv_ml_dataset_query(st.source, st.customer_column, st.time_column,
                                                                          st.amount_column, ml_start, st.observation_end, st.seed);
        ml_sql := 'SELECT * FROM pg_temp.clv_ml_data';
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
            s, ml_sql, st.clv_method, st.churn_method,
            jsonb_build_object('feature_names', to_jsonb(customer_feature_names())) || CASE WHEN st.clv_method = 'linear' THEN '{"alpha": 1.0}'::jsonb ELSE '{}'::jsonb END,
            ml_start, st.observation_end, new_run);
        EXECUTE 'DROP TABLE pg_temp.clv_ml_data';
        timings := clv_pipeline_lap(timings, 'ml', t0);
        t0 := clock_timestamp();
    END IF;

    -- The CLV of a customer row r (clv_rfm) with its features f (clv_features) under model row m:
    -- BTYD's discounted CLV, or the ML model's predicted spend over the horizon (undiscounted).
    clv_expr := $e$CASE WHEN m.clv_method = 'btyd' THEN
                   coalesce(clv(m.bgnbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit),
                            clv(m.pareto_nbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit))
                   ELSE ml_predict(m.clv_model, f.features) END$e$;

    -- Fitted on the kmeans_sample customers with the smallest seeded hash of their key (all of
    -- them up to that size): deterministic, independent of row order, and a customer stays in the
    -- sample from run to run; everyone is assigned in the materialized view.
    RAISE NOTICE 'clv_pipeline: stage 4/6: K-means with % clusters on recency, frequency, monetary value and CLV%', st.clusters,
        CASE WHEN n > kmeans_sample THEN format(' (fitted on a sample of %s of the %s customers)', kmeans_sample, n) ELSE '' END;
    EXECUTE format($f$UPDATE %1$s.clv_models m SET clusters = (
        SELECT kmeans_fit(ARRAY[r.recency, r.frequency, r.monetary_value, %5$s], %2$s, %3$s::bigint)
        FROM (SELECT * FROM %1$s.clv_rfm ORDER BY hashtextextended(customer_id::text, %3$s), customer_id::text LIMIT %6$s) r
             LEFT JOIN %1$s.clv_features f USING (customer_id)) WHERE m.run_id = %4$s$f$,
        s, least(st.clusters, n), st.seed, new_run, clv_expr, kmeans_sample);
    EXECUTE format('UPDATE %s.clv_models SET fit_seconds = extract(epoch FROM clock_timestamp() - %L::timestamptz) WHERE run_id = %s',
                   s, fit_started, new_run);
    timings := clv_pipeline_lap(timings, 'kmeans', t0);
    t0 := clock_timestamp();

    RAISE NOTICE 'clv_pipeline: stage 5/6: scoring every customer (materialized view %.clv_customers)', s;
    mv_sql := format($f$
        WITH m AS (SELECT * FROM %1$s.clv_models ORDER BY run_id DESC LIMIT 1),
        -- MATERIALIZED, and the cluster assigned here: the window functions then sort rows of plain
        -- numbers. (Inlined, every sort carried the model values to recompute clv() in its key, and
        -- each spilled about 1.6 kB per customer to disk.)
        scored AS MATERIALIZED (
            SELECT r.customer_id, r.frequency, r.recency, r.tenure, r.monetary_value, r.transactions, r.total_amount,
                   r.first_purchase, r.last_purchase,
                   coalesce(p_alive(m.bgnbd, r.frequency, r.recency, r.tenure),
                            p_alive(m.pareto_nbd, r.frequency, r.recency, r.tenure)) AS p_alive,
                   coalesce(expected_purchases(m.bgnbd, m.horizon_months * clv_periods_per_month(m.unit), r.frequency, r.recency, r.tenure),
                            expected_purchases(m.pareto_nbd, m.horizon_months * clv_periods_per_month(m.unit), r.frequency, r.recency, r.tenure)) AS expected_purchases,
                   expected_spend(m.spend, r.frequency, r.monetary_value) AS expected_spend,
                   %2$s AS clv,
                   ml_predict_probability(m.churn_model, f.features) AS churn_probability,
                   d.discount_share,
                   kmeans_assign(m.clusters, ARRAY[r.recency, r.frequency, r.monetary_value, %2$s]) AS cluster
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
               cluster
        FROM scored$f$, s, clv_expr);
    mv_hash := md5(mv_sql);
    IF to_regclass(s || '.clv_customers') IS NOT NULL
       AND obj_description(to_regclass(s || '.clv_customers'), 'pg_class') = mv_hash THEN
        -- Concurrently (the default): readers keep seeing the last run's rows meanwhile, but every
        -- row changes (T moves), so the diff deletes and reinserts them all, about twice the cost
        -- of computing them. Off: PostgreSQL rebuilds the view as a new file, as fast as the first
        -- run's CREATE, and readers wait until the run commits (docs/refresh.md).
        IF clv_setting_on('clv.refresh_concurrently', true) THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s.clv_customers', s);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %s.clv_customers', s);
        END IF;
    ELSE
        IF to_regclass(s || '.clv_customers') IS NOT NULL THEN
            -- Written by another clv_ext version (or edited): re-created. CASCADE takes the
            -- pipeline's own clv_tier_summary with it (re-created below); anything else that
            -- depends on the view - a user's view, materialized view or SQL-bodied function - would
            -- be dropped silently, so the run stops and names it instead.
            SELECT string_agg(DISTINCT dep, ', ') INTO dependents FROM (
                SELECT format('view %s', r.ev_class::regclass) AS dep
                FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass(s || '.clv_customers')
                  AND r.ev_class <> to_regclass(s || '.clv_customers')
                  AND r.ev_class IS DISTINCT FROM to_regclass(s || '.clv_tier_summary')
                UNION ALL
                SELECT format('function %s', d.objid::regprocedure)
                FROM pg_depend d
                WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.refobjid = to_regclass(s || '.clv_customers')) q;
            IF dependents IS NOT NULL THEN
                RAISE EXCEPTION '%.clv_customers must be re-created (its definition changed), but other objects depend on it: %', s, dependents
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = 'drop them (or DROP MATERIALIZED VIEW ... CASCADE yourself), rerun, then create them again';
            END IF;
            EXECUTE format('DROP MATERIALIZED VIEW %s.clv_customers CASCADE', s);
        END IF;
        EXECUTE format('CREATE MATERIALIZED VIEW %s.clv_customers AS %s', s, mv_sql);
        EXECUTE format('CREATE UNIQUE INDEX ON %s.clv_customers (customer_id)', s);
        EXECUTE format('COMMENT ON MATERIALIZED VIEW %s.clv_customers IS %L', s, mv_hash);
    END IF;
    timings := clv_pipeline_lap(timings, 'scoring', t0);
    t0 := clock_timestamp();

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
    -- In key order: the run's rows then append to the right edge of the (run_id, customer_id) B-tree.
    EXECUTE format('INSERT INTO %1$s.clv_tier_history SELECT %2$s, customer_id, tier FROM %1$s.clv_customers ORDER BY customer_id', s, new_run);
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
    timings := clv_pipeline_lap(timings, 'history', t0);
    timings := clv_pipeline_lap(timings, 'total', started);
    EXECUTE format('UPDATE %s.clv_models SET stage_seconds = %L WHERE run_id = %s', s, timings, new_run);

    RETURN QUERY EXECUTE format('SELECT %s::bigint, count(*), sum(clv), extract(epoch FROM clock_timestamp() - %L::timestamptz)::float8 '
                                'FROM %s.clv_customers', new_run, started, s);
END $$;

-- lifetimes' monthly factor for a model time unit: 30 days, 4.345 weeks or 1 month per month.
CREATE FUNCTION clv_periods_per_month(unit text) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE lower(unit) WHEN 'day' THEN 30.0 WHEN 'week' THEN 4.345 WHEN 'month' THEN 1.0 END
$$;

-- Validation: fit on the calibration window, predict the holdout window, compare with what happened.
CREATE FUNCTION clv_holdout_predictions(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd')
RETURNS TABLE (customer_id text, frequency_cal double precision, recency_cal double precision, tenure_cal double precision,
               monetary_value_cal double precision, p_alive double precision, frequency_holdout double precision,
               duration_holdout double precision, predicted_purchases double precision,
               actual_spend double precision, predicted_spend double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    rfm_sql text := clv_rfm_query(source, customer_column, time_column, amount_column, calibration_end, observation_end, unit);
BEGIN
    model := lower(model);
    IF model NOT IN ('bgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'unknown model "%"; accepted models are ''bgnbd'', ''pareto_nbd''', model USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format($f$
        WITH r AS MATERIALIZED (%s),
        m AS (SELECT CASE WHEN %L = 'bgnbd' THEN bgnbd_fit(frequency, recency, tenure) END AS b,
                     CASE WHEN %L = 'pareto_nbd' THEN pareto_nbd_fit(frequency, recency, tenure) END AS p,
                     gamma_gamma_fit(frequency, monetary_value) AS g FROM r),
        pred AS (
            SELECT r.*, coalesce(p_alive(m.b, r.frequency, r.recency, r.tenure), p_alive(m.p, r.frequency, r.recency, r.tenure)) AS alive,
                   coalesce(expected_purchases(m.b, r.duration_holdout, r.frequency, r.recency, r.tenure),
                            expected_purchases(m.p, r.duration_holdout, r.frequency, r.recency, r.tenure)) AS purchases,
                   expected_spend(m.g, r.frequency, r.monetary_value) AS spend
            FROM r, m)
        SELECT customer_id::text, frequency, recency, tenure, monetary_value, alive, frequency_holdout, duration_holdout,
               purchases, total_amount_holdout, purchases * spend
        FROM pred$f$, rfm_sql, model, model);
END $$;

-- The holdout metrics and the calibration-vs-holdout table as queries over `predictions`, a
-- relation (or CTE) with clv_holdout_predictions' columns: the functions below run them over the
-- predictions, clv_report over predictions it computed once for both.
CREATE FUNCTION clv_holdout_metrics_query(predictions text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
    SELECT format($q$
    WITH hp AS (SELECT * FROM %s),
    tiers AS (SELECT clv_segment(actual_spend) OVER () AS actual_tier, clv_segment(predicted_spend) OVER () AS predicted_tier FROM hp)
    SELECT * FROM (VALUES
        ('customers', (SELECT count(*)::float8 FROM hp)),
        ('purchases_mae', (SELECT avg(abs(predicted_purchases - frequency_holdout)) FROM hp)),
        ('purchases_rmse', (SELECT sqrt(avg((predicted_purchases - frequency_holdout) ^ 2)) FROM hp)),
        ('purchases_bias', (SELECT avg(predicted_purchases - frequency_holdout) FROM hp)),
        ('spend_mae', (SELECT avg(abs(predicted_spend - actual_spend)) FROM hp)),
        ('spend_rmse', (SELECT sqrt(avg((predicted_spend - actual_spend) ^ 2)) FROM hp)),
        ('spend_bias', (SELECT avg(predicted_spend - actual_spend) FROM hp)),
        ('tier_hit_rate', (SELECT avg((predicted_tier = 'high')::int) FROM tiers WHERE actual_tier = 'high'))
    ) v(metric, value)$q$, predictions)
$f$;

CREATE FUNCTION clv_calibration_vs_holdout_query(predictions text, max_frequency integer)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
    SELECT format($q$
    SELECT p.frequency_cal::int AS frequency_cal, count(*) AS customers, avg(p.predicted_purchases) AS mean_predicted,
           avg(p.frequency_holdout) AS mean_actual
    FROM %s p
    WHERE p.frequency_cal <= %L::integer
    GROUP BY 1 ORDER BY 1$q$, predictions, max_frequency)
$f$;

-- MAE, RMSE and bias (mean predicted - actual) of holdout purchases and spend, and the tier hit
-- rate: the share of the actual top-20% holdout spenders that the model put in its top 20%.
CREATE FUNCTION clv_holdout_metrics(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd')
RETURNS TABLE (metric text, value double precision)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY EXECUTE clv_holdout_metrics_query('clv_holdout_predictions($1, $2, $3, $4, $5, $6, $7, $8)')
        USING source, customer_column, time_column, amount_column, calibration_end, observation_end, unit, model;
END $$;

-- lifetimes' plot_calibration_purchases_vs_holdout_purchases as a table: mean predicted and mean
-- actual holdout purchases by calibration frequency 0..max_frequency (lifetimes' default n = 7
-- shows 0..6; higher frequencies are left out, as there).
CREATE FUNCTION clv_calibration_vs_holdout(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd',
    max_frequency integer DEFAULT 6)
RETURNS TABLE (frequency_cal integer, customers bigint, mean_predicted double precision, mean_actual double precision)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY EXECUTE clv_calibration_vs_holdout_query('clv_holdout_predictions($1, $2, $3, $4, $5, $6, $7, $8)', max_frequency)
        USING source, customer_column, time_column, amount_column, calibration_end, observation_end, unit, model;
END $$;
