-- clv_ext 0.3.0 -> 0.4.0: supervised ML (issue 9) - customer features and holdout labels, the
-- ml_model type with binary I/O, the training aggregates, scoring and readers, metrics
-- aggregates, the ML-versus-BTYD comparison, and clv_pipeline's clv_method / churn_method.
-- Generated from `cargo pgrx schema` (scripts/extract-sql.py) so every definition is exactly a
-- fresh install's.
\echo Use "ALTER EXTENSION clv_ext UPDATE TO '0.4.0'" to load this file. \quit

-- src/ml_features_sql.rs:122
-- clv_ext::ml_features_sql::churned_in_holdout_final
CREATE  FUNCTION "churned_in_holdout_final"(
	"state" internal /* Internal */
) RETURNS bool /* Option < bool > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'churned_in_holdout_final_wrapper';

-- src/ml_metrics_sql.rs:133
-- clv_ext::ml_metrics_sql::classification_metrics_final
CREATE  FUNCTION "classification_metrics_final"(
	"state" internal /* Internal */
) RETURNS jsonb /* Option < JsonB > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'classification_metrics_final_wrapper';

-- src/ml_metrics_sql.rs:47
-- clv_ext::ml_metrics_sql::classification_metrics_trans
CREATE  FUNCTION "classification_metrics_trans"(
	"state" internal, /* Internal */
	"probability" double precision, /* Option < f64 > */
	"label" bool /* Option < bool > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'classification_metrics_trans_wrapper';

-- src/ml_features_sql.rs:128
-- clv_ext::ml_features_sql::customer_feature_names
CREATE  FUNCTION "customer_feature_names"() RETURNS TEXT[] /* Vec < & '_ str > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_feature_names_wrapper';

-- src/ml_features_sql.rs:107
-- clv_ext::ml_features_sql::customer_features_final
CREATE  FUNCTION "customer_features_final"(
	"state" internal /* Internal */
) RETURNS double precision[] /* :: std :: option :: Option < Vec < f64 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_features_final_wrapper';

-- src/ml_features_sql.rs:78
-- clv_ext::ml_features_sql::customer_history_combine
CREATE  FUNCTION "customer_history_combine"(
	"a" internal, /* Internal */
	"b" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_history_combine_wrapper';

-- src/ml_features_sql.rs:102
-- clv_ext::ml_features_sql::customer_history_deserialize
CREATE  FUNCTION "customer_history_deserialize"(
	"bytes" bytea, /* & [u8] */
	"_unused" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_history_deserialize_wrapper';

-- src/ml_features_sql.rs:97
-- clv_ext::ml_features_sql::customer_history_serialize
CREATE  FUNCTION "customer_history_serialize"(
	"state" internal /* Internal */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_history_serialize_wrapper';

-- src/ml_features_sql.rs:54
-- clv_ext::ml_features_sql::customer_history_trans
CREATE  FUNCTION "customer_history_trans"(
	"state" internal, /* Internal */
	"ts" date, /* Option < Date > */
	"amount" double precision, /* Option < f64 > */
	"calibration_end" date, /* Option < Date > */
	"holdout_end" date /* Option < Date > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_history_trans_wrapper';

-- src/ml_features_sql.rs:67
-- clv_ext::ml_features_sql::customer_history_trans
CREATE  FUNCTION "customer_history_trans"(
	"state" internal, /* Internal */
	"ts" date, /* Option < Date > */
	"amount" double precision, /* Option < f64 > */
	"calibration_end" date /* Option < Date > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'customer_history_trans_c_wrapper';

-- src/ml_features_sql.rs:117
-- clv_ext::ml_features_sql::holdout_purchases_final
CREATE  FUNCTION "holdout_purchases_final"(
	"state" internal /* Internal */
) RETURNS bigint /* Option < i64 > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'holdout_purchases_final_wrapper';

-- src/ml_features_sql.rs:112
-- clv_ext::ml_features_sql::holdout_spend_final
CREATE  FUNCTION "holdout_spend_final"(
	"state" internal /* Internal */
) RETURNS double precision /* Option < f64 > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'holdout_spend_final_wrapper';

-- src/ml_features_sql.rs:133
-- requires:
--   customer_history_trans
--   customer_history_trans_c
--   customer_history_combine
--   customer_history_serialize
--   customer_history_deserialize
--   customer_features_final
--   holdout_spend_final
--   holdout_purchases_final
--   churned_in_holdout_final


CREATE AGGREGATE customer_features(ts date, amount double precision, calibration_end date) (
    sfunc = customer_history_trans,
    stype = internal,
    finalfunc = customer_features_final,
    combinefunc = customer_history_combine,
    serialfunc = customer_history_serialize,
    deserialfunc = customer_history_deserialize,
    parallel = safe
);
CREATE AGGREGATE customer_features(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = internal,
    finalfunc = customer_features_final,
    combinefunc = customer_history_combine,
    serialfunc = customer_history_serialize,
    deserialfunc = customer_history_deserialize,
    parallel = safe
);
CREATE AGGREGATE holdout_spend(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = internal,
    finalfunc = holdout_spend_final,
    combinefunc = customer_history_combine,
    serialfunc = customer_history_serialize,
    deserialfunc = customer_history_deserialize,
    parallel = safe
);
CREATE AGGREGATE holdout_purchases(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = internal,
    finalfunc = holdout_purchases_final,
    combinefunc = customer_history_combine,
    serialfunc = customer_history_serialize,
    deserialfunc = customer_history_deserialize,
    parallel = safe
);
CREATE AGGREGATE churned_in_holdout(ts date, amount double precision, calibration_end date, holdout_end date) (
    sfunc = customer_history_trans,
    stype = internal,
    finalfunc = churned_in_holdout_final,
    combinefunc = customer_history_combine,
    serialfunc = customer_history_serialize,
    deserialfunc = customer_history_deserialize,
    parallel = safe
);

-- src/ml_metrics_sql.rs:62
-- clv_ext::ml_metrics_sql::metrics_pairs_combine
CREATE  FUNCTION "metrics_pairs_combine"(
	"a" internal, /* Internal */
	"b" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'metrics_pairs_combine_wrapper';

-- src/ml_metrics_sql.rs:92
-- clv_ext::ml_metrics_sql::metrics_pairs_deserialize
CREATE  FUNCTION "metrics_pairs_deserialize"(
	"bytes" bytea, /* & [u8] */
	"_unused" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'metrics_pairs_deserialize_wrapper';

-- src/ml_metrics_sql.rs:81
-- clv_ext::ml_metrics_sql::metrics_pairs_serialize
CREATE  FUNCTION "metrics_pairs_serialize"(
	"state" internal /* Internal */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'metrics_pairs_serialize_wrapper';

-- src/ml_sql.rs:318
-- clv_ext::ml_sql::ml_classifier_fit_trans
CREATE  FUNCTION "ml_classifier_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"label" bool, /* Option < bool > */
	"method" TEXT /* Option < & str > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_classifier_fit_trans_wrapper';

-- src/ml_sql.rs:489
-- clv_ext::ml_sql::ml_classifier_fit_trans_o
CREATE FUNCTION ml_classifier_fit_trans(internal, double precision[], boolean, text, jsonb) RETURNS internal IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ml_classifier_fit_trans_o_wrapper';

-- src/ml_sql.rs:330
-- clv_ext::ml_sql::ml_fit_combine
CREATE  FUNCTION "ml_fit_combine"(
	"a" internal, /* Internal */
	"b" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_fit_combine_wrapper';

-- src/ml_sql.rs:363
-- clv_ext::ml_sql::ml_fit_deserialize
CREATE  FUNCTION "ml_fit_deserialize"(
	"bytes" bytea, /* & [u8] */
	"_unused" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_fit_deserialize_wrapper';

-- src/ml_sql.rs:349
-- clv_ext::ml_sql::ml_fit_serialize
CREATE  FUNCTION "ml_fit_serialize"(
	"state" internal /* Internal */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_fit_serialize_wrapper';

-- src/ml_sql.rs:34
-- ml_model
CREATE TYPE ml_model;

-- src/ml_sql.rs:34
-- clv_ext::ml_sql::ml_model_in
CREATE  FUNCTION "ml_model_in"(
	"input" cstring /* Option < & :: core :: ffi :: CStr > */
) RETURNS ml_model /* Option < ml_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_model_in_wrapper';

-- src/ml_sql.rs:34
-- clv_ext::ml_sql::ml_model_out
CREATE  FUNCTION "ml_model_out"(
	"input" ml_model /* ml_model */
) RETURNS cstring /* :: pgrx :: ffi :: CString */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_model_out_wrapper';

-- src/ml_sql.rs:34
-- ml_model
CREATE TYPE ml_model (
	INTERNALLENGTH = variable,
	INPUT = ml_model_in, /* clv_ext::ml_sql::ml_model_in */
	OUTPUT = ml_model_out, /* clv_ext::ml_sql::ml_model_out */
	STORAGE = extended
);

-- src/ml_sql.rs:407
-- clv_ext::ml_sql::ml_fit_final
CREATE  FUNCTION "ml_fit_final"(
	"state" internal /* Internal */
) RETURNS ml_model /* Option < ml_model > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_fit_final_wrapper';

-- src/ml_sql.rs:578
-- clv_ext::ml_sql::ml_coefficients
CREATE  FUNCTION "ml_coefficients"(
	"model" ml_model /* ml_model */
) RETURNS TABLE (
	"term" TEXT,  /* String */
	"coefficient" double precision,  /* f64 */
	"standard_error" double precision  /* Option < f64 > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_coefficients_wrapper';

-- src/ml_sql.rs:551
-- clv_ext::ml_sql::ml_feature_importance
CREATE  FUNCTION "ml_feature_importance"(
	"model" ml_model /* ml_model */
) RETURNS TABLE (
	"feature" TEXT,  /* String */
	"importance" double precision,  /* f64 */
	"rank" INT  /* i32 */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_feature_importance_wrapper';

-- src/binary_io.rs:86
-- clv_ext::binary_io::ml_model_recv
CREATE  FUNCTION "ml_model_recv"(
	"buf" internal /* Internal */
) RETURNS ml_model /* ml_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_model_recv_wrapper';

-- src/binary_io.rs:86
-- clv_ext::binary_io::ml_model_send
CREATE  FUNCTION "ml_model_send"(
	"value" ml_model /* ml_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_model_send_wrapper';

-- src/ml_sql.rs:540
-- clv_ext::ml_sql::ml_model_summary
CREATE  FUNCTION "ml_model_summary"(
	"model" ml_model /* ml_model */
) RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_model_summary_wrapper';

-- src/ml_sql.rs:513
-- clv_ext::ml_sql::ml_predict
CREATE  FUNCTION "ml_predict"(
	"model" ml_model, /* ml_model */
	"features" double precision[] /* Vec < Option < f64 > > */
) RETURNS double precision /* Option < f64 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_predict_wrapper';

-- src/ml_sql.rs:524
-- clv_ext::ml_sql::ml_predict_probability
CREATE  FUNCTION "ml_predict_probability"(
	"model" ml_model, /* ml_model */
	"features" double precision[] /* Vec < Option < f64 > > */
) RETURNS double precision /* Option < f64 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_predict_probability_wrapper';

-- src/ml_sql.rs:307
-- clv_ext::ml_sql::ml_regression_fit_trans
CREATE  FUNCTION "ml_regression_fit_trans"(
	"state" internal, /* Internal */
	"features" double precision[], /* :: std :: option :: Option < Vec < Option < f64 > > > */
	"label" double precision, /* Option < f64 > */
	"method" TEXT /* Option < & str > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'ml_regression_fit_trans_wrapper';

-- src/ml_sql.rs:473
-- clv_ext::ml_sql::ml_regression_fit_trans_o
CREATE FUNCTION ml_regression_fit_trans(internal, double precision[], double precision, text, jsonb) RETURNS internal IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'ml_regression_fit_trans_o_wrapper';

-- src/ml_sql.rs:432
-- requires:
--   ml_model
--   ml_regression_fit_trans
--   ml_regression_fit_trans_o
--   ml_classifier_fit_trans
--   ml_classifier_fit_trans_o
--   ml_fit_combine
--   ml_fit_serialize
--   ml_fit_deserialize
--   ml_fit_final


CREATE CAST (ml_model AS jsonb) WITH INOUT;

CREATE AGGREGATE ml_regression_fit(features double precision[], label double precision, method text) (
    sfunc = ml_regression_fit_trans, stype = internal, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine, serialfunc = ml_fit_serialize, deserialfunc = ml_fit_deserialize,
    parallel = safe
);
CREATE AGGREGATE ml_regression_fit(features double precision[], label double precision, method text, options jsonb) (
    sfunc = ml_regression_fit_trans, stype = internal, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine, serialfunc = ml_fit_serialize, deserialfunc = ml_fit_deserialize,
    parallel = safe
);
CREATE AGGREGATE ml_classifier_fit(features double precision[], label boolean, method text) (
    sfunc = ml_classifier_fit_trans, stype = internal, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine, serialfunc = ml_fit_serialize, deserialfunc = ml_fit_deserialize,
    parallel = safe
);
CREATE AGGREGATE ml_classifier_fit(features double precision[], label boolean, method text, options jsonb) (
    sfunc = ml_classifier_fit_trans, stype = internal, finalfunc = ml_fit_final,
    combinefunc = ml_fit_combine, serialfunc = ml_fit_serialize, deserialfunc = ml_fit_deserialize,
    parallel = safe
);

-- src/ml_metrics_sql.rs:125
-- clv_ext::ml_metrics_sql::regression_metrics_final
CREATE  FUNCTION "regression_metrics_final"(
	"state" internal /* Internal */
) RETURNS jsonb /* Option < JsonB > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'regression_metrics_final_wrapper';

-- src/ml_metrics_sql.rs:37
-- clv_ext::ml_metrics_sql::regression_metrics_trans
CREATE  FUNCTION "regression_metrics_trans"(
	"state" internal, /* Internal */
	"predicted" double precision, /* Option < f64 > */
	"actual" double precision /* Option < f64 > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'regression_metrics_trans_wrapper';

-- src/ml_metrics_sql.rs:141
-- requires:
--   regression_metrics_trans
--   classification_metrics_trans
--   metrics_pairs_combine
--   metrics_pairs_serialize
--   metrics_pairs_deserialize
--   regression_metrics_final
--   classification_metrics_final


CREATE AGGREGATE regression_metrics(predicted double precision, actual double precision) (
    sfunc = regression_metrics_trans, stype = internal, finalfunc = regression_metrics_final,
    combinefunc = metrics_pairs_combine, serialfunc = metrics_pairs_serialize,
    deserialfunc = metrics_pairs_deserialize, parallel = safe
);
CREATE AGGREGATE classification_metrics(probability double precision, label boolean) (
    sfunc = classification_metrics_trans, stype = internal, finalfunc = classification_metrics_final,
    combinefunc = metrics_pairs_combine, serialfunc = metrics_pairs_serialize,
    deserialfunc = metrics_pairs_deserialize, parallel = safe
);

ALTER TYPE ml_model SET (SEND = ml_model_send, RECEIVE = ml_model_recv);

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

-- clv_pipeline gained clv_method and churn_method.
DROP FUNCTION clv_pipeline(regclass, text, text, text, date, text, text, integer, double precision, name, integer, bigint, double precision);
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
    churn_method text DEFAULT NULL
) RETURNS TABLE (run_id bigint, customers bigint, total_clv double precision, seconds double precision)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    -- When the purchase model's likelihood has no interior maximum (regular buyers, no visible
    -- drop-out) and the caller gave no penalizer, the fit is retried once with this one (the
    -- value lifetimes' docs suggest) and the run says so in a WARNING and in clv_models.penalizer.
    fallback_penalizer CONSTANT double precision := 0.001;
    used_penalizer double precision := penalizer;
    fit_error text;
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
                   m.clusters
            FROM %1$s.clv_rfm r CROSS JOIN m LEFT JOIN %1$s.clv_features f USING (customer_id))
        SELECT customer_id, frequency, recency, tenure, monetary_value, transactions, total_amount, first_purchase, last_purchase,
               p_alive, expected_purchases, expected_spend, clv, churn_probability,
               clv_segment(clv) OVER () AS tier,
               rfm_segment(rfm_score(tenure - recency, false) OVER (), rfm_score(frequency) OVER (),
                           rfm_score(total_amount) OVER ()) AS rfm_segment,
               clv_named_segment(frequency, p_alive, percent_rank() OVER (ORDER BY clv),
                                 percent_rank() OVER (ORDER BY total_amount),
                                 percent_rank() OVER (ORDER BY expected_purchases)) AS named_segment,
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
