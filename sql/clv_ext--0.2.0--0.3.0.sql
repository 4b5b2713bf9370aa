-- clv_ext 0.2.0 -> 0.3.0 (issue 8):
-- * binary send/receive functions for every type (COPY ... (FORMAT binary), binary-protocol
--   clients, Citus); the wire form is the versioned stored form;
-- * kmeans_k_sweep_rows(jsonb) as SQL over kmeans_k_sweep_rows_from_text (no XX000 on 1e400);
-- * monetary_value_holdout_per_transaction (lifetimes' per-row holdout mean; monetary_value_holdout
--   is now per purchase period, a change of the library, not of its SQL definition);
-- * clv_pipeline gains a penalizer argument with a documented fallback, and clv_models a penalizer
--   column (added by the pipeline itself to schemas written by 0.2.0).
\echo Use "ALTER EXTENSION clv_ext UPDATE TO '0.3.0'" to load this file. \quit

CREATE  FUNCTION "rfm_summary_send"(
	"value" rfm_summary /* rfm_summary */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rfm_summary_send_wrapper';

CREATE  FUNCTION "rfm_summary_recv"(
	"buf" internal /* Internal */
) RETURNS rfm_summary /* rfm_summary */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rfm_summary_recv_wrapper';

CREATE  FUNCTION "bgnbd_model_send"(
	"value" bgnbd_model /* bgnbd_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgnbd_model_send_wrapper';

CREATE  FUNCTION "bgnbd_model_recv"(
	"buf" internal /* Internal */
) RETURNS bgnbd_model /* bgnbd_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgnbd_model_recv_wrapper';

CREATE  FUNCTION "pareto_nbd_model_send"(
	"value" pareto_nbd_model /* pareto_nbd_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pareto_nbd_model_send_wrapper';

CREATE  FUNCTION "pareto_nbd_model_recv"(
	"buf" internal /* Internal */
) RETURNS pareto_nbd_model /* pareto_nbd_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'pareto_nbd_model_recv_wrapper';

CREATE  FUNCTION "mbgnbd_model_send"(
	"value" mbgnbd_model /* mbgnbd_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mbgnbd_model_send_wrapper';

CREATE  FUNCTION "mbgnbd_model_recv"(
	"buf" internal /* Internal */
) RETURNS mbgnbd_model /* mbgnbd_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mbgnbd_model_recv_wrapper';

CREATE  FUNCTION "bgbb_model_send"(
	"value" bgbb_model /* bgbb_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgbb_model_send_wrapper';

CREATE  FUNCTION "bgbb_model_recv"(
	"buf" internal /* Internal */
) RETURNS bgbb_model /* bgbb_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'bgbb_model_recv_wrapper';

CREATE  FUNCTION "gamma_gamma_model_send"(
	"value" gamma_gamma_model /* gamma_gamma_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gamma_gamma_model_send_wrapper';

CREATE  FUNCTION "gamma_gamma_model_recv"(
	"buf" internal /* Internal */
) RETURNS gamma_gamma_model /* gamma_gamma_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'gamma_gamma_model_recv_wrapper';

CREATE  FUNCTION "kmeans_model_send"(
	"value" kmeans_model /* kmeans_model */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kmeans_model_send_wrapper';

CREATE  FUNCTION "kmeans_model_recv"(
	"buf" internal /* Internal */
) RETURNS kmeans_model /* kmeans_model */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kmeans_model_recv_wrapper';

CREATE  FUNCTION "monetary_value_holdout_per_transaction"(
	"summary" rfm_summary /* rfm_summary */
) RETURNS double precision /* Option < f64 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'monetary_value_holdout_per_transaction_wrapper';

CREATE  FUNCTION "kmeans_k_sweep_rows_from_text"(
	"sweep" TEXT /* & str */
) RETURNS TABLE (
	"k" INT,  /* i32 */
	"inertia" double precision,  /* f64 */
	"silhouette" double precision  /* Option < f64 > */
)
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'kmeans_k_sweep_rows_from_text_wrapper';

-- kmeans_k_sweep_rows(jsonb) becomes SQL over kmeans_k_sweep_rows_from_text(text): pgrx's jsonb
-- conversion raised XX000 on numbers a float cannot hold (1e400); the text parser answers 22023.
CREATE OR REPLACE FUNCTION kmeans_k_sweep_rows(sweep jsonb) RETURNS TABLE (k integer, inertia double precision, silhouette double precision)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT * FROM kmeans_k_sweep_rows_from_text(sweep::text) $$;

ALTER TYPE rfm_summary SET (SEND = rfm_summary_send, RECEIVE = rfm_summary_recv);
ALTER TYPE bgnbd_model SET (SEND = bgnbd_model_send, RECEIVE = bgnbd_model_recv);
ALTER TYPE pareto_nbd_model SET (SEND = pareto_nbd_model_send, RECEIVE = pareto_nbd_model_recv);
ALTER TYPE mbgnbd_model SET (SEND = mbgnbd_model_send, RECEIVE = mbgnbd_model_recv);
ALTER TYPE bgbb_model SET (SEND = bgbb_model_send, RECEIVE = bgbb_model_recv);
ALTER TYPE gamma_gamma_model SET (SEND = gamma_gamma_model_send, RECEIVE = gamma_gamma_model_recv);
ALTER TYPE kmeans_model SET (SEND = kmeans_model_send, RECEIVE = kmeans_model_recv);

DROP FUNCTION clv_pipeline(regclass, text, text, text, date, text, text, integer, double precision, name, integer, bigint);
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
    penalizer double precision DEFAULT 0
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
BEGIN
    model := lower(model);
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
        penalizer double precision NOT NULL DEFAULT 0)$f$, s);
    ELSIF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(s || '.clv_models')
                      AND attname = 'penalizer' AND NOT attisdropped) THEN
        -- A schema written by clv_ext 0.2.0.
        EXECUTE format('ALTER TABLE %s.clv_models ADD COLUMN penalizer double precision NOT NULL DEFAULT 0', s);
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

    RAISE NOTICE 'clv_pipeline: stage 4/6: K-means with % clusters on recency, frequency, monetary value and CLV', clusters;
    EXECUTE format($f$UPDATE %1$s.clv_models m SET clusters = (
        SELECT kmeans_fit(ARRAY[r.recency, r.frequency, r.monetary_value,
                   coalesce(clv(m.bgnbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit),
                            clv(m.pareto_nbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit))],
               %2$s, %3$s::bigint)
        FROM %1$s.clv_rfm r) WHERE m.run_id = %4$s$f$, s, least(clusters, n), seed, new_run);
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
                   coalesce(clv(m.bgnbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit),
                            clv(m.pareto_nbd, m.spend, r.frequency, r.recency, r.tenure, r.monetary_value, m.horizon_months, m.discount_rate, m.unit)) AS clv,
                   m.clusters
            FROM %1$s.clv_rfm r CROSS JOIN m)
        SELECT customer_id, frequency, recency, tenure, monetary_value, transactions, total_amount, first_purchase, last_purchase,
               p_alive, expected_purchases, expected_spend, clv,
               clv_segment(clv) OVER () AS tier,
               rfm_segment(rfm_score(tenure - recency, false) OVER (), rfm_score(frequency) OVER (),
                           rfm_score(total_amount) OVER ()) AS rfm_segment,
               clv_named_segment(frequency, p_alive, percent_rank() OVER (ORDER BY clv),
                                 percent_rank() OVER (ORDER BY total_amount),
                                 percent_rank() OVER (ORDER BY expected_purchases)) AS named_segment,
               kmeans_assign(clusters, ARRAY[recency, frequency, monetary_value, clv]) AS cluster
        FROM scored$f$, s);
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

