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

-- MAE, RMSE and bias (mean predicted - actual) of holdout purchases and spend, and the tier hit
-- rate: the share of the actual top-20% holdout spenders that the model put in its top 20%.
CREATE FUNCTION clv_holdout_metrics(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd')
RETURNS TABLE (metric text, value double precision)
LANGUAGE sql VOLATILE AS $$
    WITH p AS (SELECT * FROM clv_holdout_predictions(source, customer_column, time_column, amount_column,
                                                      calibration_end, observation_end, unit, model)),
    tiers AS (SELECT clv_segment(actual_spend) OVER () AS actual_tier, clv_segment(predicted_spend) OVER () AS predicted_tier FROM p)
    SELECT * FROM (VALUES
        ('customers', (SELECT count(*)::float8 FROM p)),
        ('purchases_mae', (SELECT avg(abs(predicted_purchases - frequency_holdout)) FROM p)),
        ('purchases_rmse', (SELECT sqrt(avg((predicted_purchases - frequency_holdout) ^ 2)) FROM p)),
        ('purchases_bias', (SELECT avg(predicted_purchases - frequency_holdout) FROM p)),
        ('spend_mae', (SELECT avg(abs(predicted_spend - actual_spend)) FROM p)),
        ('spend_rmse', (SELECT sqrt(avg((predicted_spend - actual_spend) ^ 2)) FROM p)),
        ('spend_bias', (SELECT avg(predicted_spend - actual_spend) FROM p)),
        ('tier_hit_rate', (SELECT avg((predicted_tier = 'high')::int) FROM tiers WHERE actual_tier = 'high'))
    ) v(metric, value)
$$;

-- lifetimes' plot_calibration_purchases_vs_holdout_purchases as a table: mean predicted and mean
-- actual holdout purchases by calibration frequency 0..max_frequency (lifetimes' default n = 7
-- shows 0..6; higher frequencies are left out, as there).
CREATE FUNCTION clv_calibration_vs_holdout(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd',
    max_frequency integer DEFAULT 6)
RETURNS TABLE (frequency_cal integer, customers bigint, mean_predicted double precision, mean_actual double precision)
LANGUAGE sql VOLATILE AS $$
    SELECT p.frequency_cal::int, count(*), avg(p.predicted_purchases), avg(p.frequency_holdout)
    FROM clv_holdout_predictions(source, customer_column, time_column, amount_column,
                                 calibration_end, observation_end, unit, model) p
    WHERE p.frequency_cal <= max_frequency
    GROUP BY 1 ORDER BY 1
$$;
