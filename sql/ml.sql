-- ML or BTYD? One call that fits the buy-till-you-die models and every ML method on the same
-- customers and scores them on the same held-out customers (docs/ml.md).
--
-- Split: customers are split 80/20 by clv_in_training_set(customer, seed); everything is fitted
-- on the 80% (BG/NBD or Pareto/NBD + Gamma-Gamma on their calibration-period RFM, the ML models on
-- their features and holdout labels) and measured on the 20% never seen in fitting or tuning.
-- Features: customer_features as of calibration_end; labels: holdout_spend and churned_in_holdout
-- in (calibration_end, holdout_end].

CREATE FUNCTION clv_ml_dataset_query(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, holdout_end date, seed bigint)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    id_type regtype := clv_column_type(source, customer_column, NULL, 'customer');
    key text;
    args text := format('%I::date, %I::double precision, %L::date, %L::date', time_column, amount_column, calibration_end, holdout_end);
BEGIN
    key := CASE WHEN id_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)
                THEN format('clv_in_training_set(customer_id::bigint, %s)', seed)
                ELSE format('clv_in_training_set(customer_id::text, %s)', seed) END;
    RETURN format($q$
        SELECT f.*, %1$s AS in_training, r.frequency, r.recency, r.tenure, r.monetary_value, r.duration_holdout
        FROM (SELECT %2$I AS customer_id, customer_features(%3$s) AS features, holdout_spend(%3$s) AS holdout_spend,
                     churned_in_holdout(%3$s) AS churned
              FROM %4$s WHERE %2$I IS NOT NULL GROUP BY %2$I) f
        JOIN (%5$s) r USING (customer_id)
        WHERE f.features IS NOT NULL$q$,
        key, customer_column, args, source,
        clv_rfm_query(source, customer_column, time_column, amount_column, calibration_end, holdout_end, 'week'));
END $$;

CREATE FUNCTION clv_ml_comparison(
    source regclass,
    customer_column text,
    time_column text,
    amount_column text,
    calibration_end date,
    holdout_end date,
    seed bigint DEFAULT 0,
    tune boolean DEFAULT true,
    btyd_model text DEFAULT 'bgnbd')
RETURNS TABLE (model text, target text, test_customers bigint,
               mae double precision, rmse double precision, r2 double precision,
               normalized_gini double precision, top_20_capture double precision,
               tier_hit_rate_top_20 double precision, tier_hit_rate_middle_50 double precision,
               tier_hit_rate_bottom_30 double precision, mean_predicted double precision,
               mean_actual double precision, auc double precision, log_loss double precision,
               brier double precision, fit_seconds double precision, score_seconds double precision,
               hyperparameters jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz;
    fit_s double precision;
    b record;
    m ml_model;
    opts jsonb;
    meth text;
    met jsonb;
    n bigint;
BEGIN
    btyd_model := lower(btyd_model);
    IF btyd_model IS NULL OR btyd_model NOT IN ('bgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'unknown btyd_model "%"; accepted models are ''bgnbd'', ''pareto_nbd''', btyd_model
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF calibration_end IS NULL OR holdout_end IS NULL OR holdout_end <= calibration_end OR seed IS NULL OR tune IS NULL THEN
        RAISE EXCEPTION 'calibration_end and holdout_end must be given with holdout_end after calibration_end, and seed and tune not NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DROP TABLE IF EXISTS pg_temp.clv_ml_data;
    EXECUTE format('CREATE TEMP TABLE clv_ml_data AS %s',
                   clv_ml_dataset_query(source, customer_column, time_column, amount_column, calibration_end, holdout_end, seed));
    SELECT count(*) FILTER (WHERE NOT in_training) INTO n FROM pg_temp.clv_ml_data;
    IF n = 0 OR NOT EXISTS (SELECT 1 FROM pg_temp.clv_ml_data WHERE in_training) THEN
        RAISE EXCEPTION 'the comparison needs customers on both sides of the split (got % test customers)', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- BTYD: purchases x spend per purchase, the same product clv_holdout_predictions forms.
    t0 := clock_timestamp();
    SELECT CASE WHEN btyd_model = 'bgnbd' THEN bgnbd_fit(frequency, recency, tenure) END AS bg,
           CASE WHEN btyd_model = 'pareto_nbd' THEN pareto_nbd_fit(frequency, recency, tenure) END AS pn,
           gamma_gamma_fit(frequency, monetary_value) AS gg
    INTO b FROM pg_temp.clv_ml_data WHERE in_training;
    fit_s := extract(epoch FROM clock_timestamp() - t0);
    t0 := clock_timestamp();
    SELECT regression_metrics(p.spend, d.holdout_spend),
           -- A ranking for the AUC only: fewer expected holdout purchases, more likely no purchase.
           classification_metrics(1 / (1 + p.purchases), d.churned)
    INTO met, opts
    FROM pg_temp.clv_ml_data d,
         LATERAL (SELECT coalesce(expected_purchases(b.bg, d.duration_holdout, d.frequency, d.recency, d.tenure),
                                  expected_purchases(b.pn, d.duration_holdout, d.frequency, d.recency, d.tenure)) AS purchases) e,
         LATERAL (SELECT e.purchases, e.purchases * expected_spend(b.gg, d.frequency, d.monetary_value) AS spend) p
    WHERE NOT d.in_training;
    RETURN QUERY SELECT btyd_model || ' + gamma_gamma', 'holdout spend', (met->>'n')::bigint,
        (met->>'mae')::float8, (met->>'rmse')::float8, (met->>'r2')::float8, (met->>'normalized_gini')::float8,
        (met->>'top_20_capture')::float8, (met->>'tier_hit_rate_top_20')::float8,
        (met->>'tier_hit_rate_middle_50')::float8, (met->>'tier_hit_rate_bottom_30')::float8,
        (met->>'mean_predicted')::float8, (met->>'mean_actual')::float8,
        (opts->>'auc')::float8, NULL::float8, NULL::float8,
        fit_s, extract(epoch FROM clock_timestamp() - t0)::float8, NULL::jsonb;

    -- Regression of holdout spend.
    FOREACH meth IN ARRAY ARRAY['linear', 'tweedie', 'decision_tree', 'random_forest', 'gradient_boosting'] LOOP
        opts := jsonb_build_object('feature_names', to_jsonb(customer_feature_names()), 'tune', tune);
        IF meth = 'linear' AND NOT tune THEN
            -- The features are collinear (T - recency, the trends): least squares needs a penalty.
            opts := opts || '{"alpha": 1.0}';
        END IF;
        t0 := clock_timestamp();
        SELECT ml_regression_fit(features, holdout_spend, meth, opts) INTO m FROM pg_temp.clv_ml_data WHERE in_training;
        fit_s := extract(epoch FROM clock_timestamp() - t0);
        t0 := clock_timestamp();
        SELECT regression_metrics(ml_predict(m, features), holdout_spend) INTO met FROM pg_temp.clv_ml_data WHERE NOT in_training;
        RETURN QUERY SELECT meth, 'holdout spend', (met->>'n')::bigint,
            (met->>'mae')::float8, (met->>'rmse')::float8, (met->>'r2')::float8, (met->>'normalized_gini')::float8,
            (met->>'top_20_capture')::float8, (met->>'tier_hit_rate_top_20')::float8,
            (met->>'tier_hit_rate_middle_50')::float8, (met->>'tier_hit_rate_bottom_30')::float8,
            (met->>'mean_predicted')::float8, (met->>'mean_actual')::float8,
            NULL::float8, NULL::float8, NULL::float8,
            fit_s, extract(epoch FROM clock_timestamp() - t0)::float8, ml_model_summary(m)->'hyperparameters';
    END LOOP;

    -- Churn: no purchase in the holdout window.
    FOREACH meth IN ARRAY ARRAY['logistic', 'decision_tree', 'random_forest', 'gradient_boosting'] LOOP
        opts := jsonb_build_object('feature_names', to_jsonb(customer_feature_names()), 'tune', tune);
        t0 := clock_timestamp();
        SELECT ml_classifier_fit(features, churned, meth, opts) INTO m FROM pg_temp.clv_ml_data WHERE in_training;
        fit_s := extract(epoch FROM clock_timestamp() - t0);
        t0 := clock_timestamp();
        SELECT classification_metrics(ml_predict_probability(m, features), churned) INTO met FROM pg_temp.clv_ml_data WHERE NOT in_training;
        RETURN QUERY SELECT meth, 'churn', (met->>'n')::bigint,
            NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
            (met->>'mean_predicted')::float8, (met->>'share_true')::float8,
            (met->>'auc')::float8, (met->>'log_loss')::float8, (met->>'brier')::float8,
            fit_s, extract(epoch FROM clock_timestamp() - t0)::float8, ml_model_summary(m)->'hyperparameters';
    END LOOP;
    DROP TABLE pg_temp.clv_ml_data;
END $$;
