-- Charts from a pipeline schema and the HTML report (docs/report.md). The charts themselves are
-- C functions over clv_charts (plotters' SVG backend, src/charts_sql.rs); what is here reads a
-- pipeline schema and puts the pieces together.

-- p_alive_history_chart and p_alive_history for timestamptz purchase times (the C functions take
-- timestamp; date arrays cast implicitly). The times are read in the session's time zone, as the
-- rfm aggregates read timestamptz. The bodies name the extension's schema so that they also work
-- where PostgreSQL 17+ restricts search_path (materialized views, index expressions).
CREATE FUNCTION p_alive_history_chart(model bgnbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS text LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT @extschema@.p_alive_history_chart(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;
CREATE FUNCTION p_alive_history_chart(model pareto_nbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS text LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT @extschema@.p_alive_history_chart(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;
CREATE FUNCTION p_alive_history_chart(model mbgnbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS text LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT @extschema@.p_alive_history_chart(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;

CREATE FUNCTION p_alive_history(model bgnbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS TABLE (t double precision, p_alive double precision) LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT * FROM @extschema@.p_alive_history(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;
CREATE FUNCTION p_alive_history(model pareto_nbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS TABLE (t double precision, p_alive double precision) LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT * FROM @extschema@.p_alive_history(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;
CREATE FUNCTION p_alive_history(model mbgnbd_model, purchase_times timestamptz[], observation_end date, unit text DEFAULT 'week')
RETURNS TABLE (t double precision, p_alive double precision) LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT * FROM @extschema@.p_alive_history(model, purchase_times::timestamp[], observation_end::timestamp, unit) $$;

-- lifetimes' plot_calibration_purchases_vs_holdout_purchases from the transactions: fits on the
-- calibration window, predicts the holdout (clv_calibration_vs_holdout) and draws both.
CREATE FUNCTION calibration_vs_holdout_chart(
    source regclass, customer_column text, time_column text, amount_column text,
    calibration_end date, observation_end date, unit text DEFAULT 'week', model text DEFAULT 'bgnbd',
    max_frequency integer DEFAULT 6)
RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT calibration_vs_holdout_chart(coalesce(array_agg(frequency_cal::float8 ORDER BY frequency_cal), '{}'),
                                        coalesce(array_agg(mean_predicted ORDER BY frequency_cal), '{}'),
                                        coalesce(array_agg(mean_actual ORDER BY frequency_cal), '{}'))
    FROM clv_calibration_vs_holdout(source, customer_column, time_column, amount_column,
                                    calibration_end, observation_end, unit, model, max_frequency)
$$;

-- The pipeline schema's latest run, or 42P01/55000 with what to do.
CREATE FUNCTION clv_report_check(target_schema name)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF target_schema IS NULL THEN
        RAISE EXCEPTION 'target_schema must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_regclass(quote_ident(target_schema) || '.clv_models') IS NULL
       OR to_regclass(quote_ident(target_schema) || '.clv_customers') IS NULL THEN
        RAISE EXCEPTION 'schema % has no clv_pipeline output', quote_ident(target_schema)
            USING ERRCODE = 'undefined_table',
                  HINT = format('run clv_pipeline(..., target_schema => %L) first', target_schema);
    END IF;
END $$;

-- Tier migration between a pipeline schema's last two runs (its clv_tier_migration view).
CREATE FUNCTION tier_migration_chart(target_schema name)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    svg text;
BEGIN
    PERFORM clv_report_check(target_schema);
    EXECUTE format('SELECT tier_migration_chart(coalesce(array_agg(from_tier), ''{}''), coalesce(array_agg(to_tier), ''{}''), '
                   'coalesce(array_agg(customers), ''{}'')) FROM %I.clv_tier_migration', target_schema) INTO svg;
    RETURN svg;
END $$;

-- Text as HTML. Backslashes become a character reference and line breaks and tabs spaces, so
-- that the page has none of the characters text-format COPY escapes: \copy writes it verbatim.
CREATE FUNCTION clv_html_escape(value text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT translate(replace(replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
                                       '''', '&#39;'), '\', '&#92;'), E'\n\r\t', '   ') $$;

-- An HTML table of a query's rows, columns in the query's order; numbers right-aligned.
CREATE FUNCTION clv_html_table(query text)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r record;
    head text;
    body text := '';
BEGIN
    FOR r IN EXECUTE query LOOP
        IF head IS NULL THEN
            SELECT string_agg('<th>' || clv_html_escape(key) || '</th>', '' ORDER BY ord) INTO head
            FROM json_each_text(row_to_json(r)) WITH ORDINALITY AS e(key, value, ord);
        END IF;
        body := body || (SELECT '<tr>' || string_agg(CASE WHEN value ~ '^-?[0-9][0-9.,e+-]*%?$' THEN '<td class="n">' ELSE '<td>' END
                                                     || coalesce(clv_html_escape(value), '') || '</td>', '' ORDER BY ord) || '</tr>'
                         FROM json_each_text(row_to_json(r)) WITH ORDINALITY AS e(key, value, ord));
    END LOOP;
    IF head IS NULL THEN
        RETURN '<p class="note">(no rows)</p>';
    END IF;
    RETURN '<table><thead><tr>' || head || '</tr></thead><tbody>' || body || '</tbody></table>';
END $$;

-- One self-contained HTML page (inline SVG and CSS, no script, no network) of a pipeline schema's
-- latest run: run details, tier summary, the CLV concentration curve, the model's
-- frequency/recency and P(alive) matrices, period transactions, the P(alive) history of the most
-- valuable customer, tier migration, segment sizes, and (validation => true) calibration against
-- holdout with the holdout metrics. Save it with
--     \copy (SELECT clv_report('clv')) TO 'report.html'
-- Validation refits the model on the source's calibration window: the last horizon_months of
-- history are held out when the history is at least twice as long, otherwise the last third; it
-- reads the whole source once more (validation => false skips it).
CREATE FUNCTION clv_report(target_schema name DEFAULT 'clv', validation boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s text := quote_ident(target_schema);
    m record;
    st record;
    c record;
    purchase_model text;
    html text;
    sections text := '';
    svg text;
    calibration_end date;
    first_day date;
    top_times timestamp[];
    metric_names text[];
    metric_values numeric[];
    version text;
BEGIN
    PERFORM clv_report_check(target_schema);
    IF validation IS NULL THEN
        RAISE EXCEPTION 'validation must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SELECT * FROM %s.clv_models ORDER BY run_id DESC LIMIT 1', s) INTO m;
    IF m IS NULL THEN
        RAISE EXCEPTION 'schema % has no pipeline run', s USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    purchase_model := CASE WHEN m.bgnbd IS NOT NULL THEN 'bgnbd' ELSE 'pareto_nbd' END;
    -- The matrices reach the 99th percentile of frequency: the few heaviest buyers would otherwise
    -- stretch the colour scale over cells no one else occupies. An ML regression can predict a
    -- negative spend; the concentration curve counts it as 0 and says how many.
    EXECUTE format($q$SELECT count(*) AS customers, max(tenure) AS max_tenure,
                             least(greatest(percentile_disc(0.99) WITHIN GROUP (ORDER BY frequency), 1), 100)::int AS max_frequency,
                             array_agg(frequency) AS frequencies, array_agg(tenure) AS tenures,
                             array_agg(greatest(clv, 0)) AS clvs, count(*) FILTER (WHERE clv < 0) AS negative
                      FROM %s.clv_customers$q$, s) INTO c;
    SELECT extversion INTO version FROM pg_extension WHERE extname = 'clv_ext';

    -- One run: a two-column table reads better than one wide row.
    sections := sections || '<h2>Run</h2>' || clv_html_table(format($q$
        SELECT key AS "setting", value FROM json_each_text((SELECT row_to_json(r) FROM (
        SELECT run_id AS "run", run_mode AS "mode", to_char(fitted_at, 'YYYY-MM-DD HH24:MI') AS "fitted at",
               source, first_transaction::date AS "first transaction", observation_end AS "observation end",
               unit AS "time unit", customers, model AS "purchase model", clv_method AS "CLV method",
               horizon_months AS "horizon (months)", discount_rate AS "monthly discount rate",
               (SELECT round(sum(clv)::numeric, 2) FROM %1$s.clv_customers) AS "total predicted CLV"
        FROM %1$s.clv_models WHERE run_id = %2$s) r))$q$, s, m.run_id));

    sections := sections || '<h2>Value tiers</h2>' || clv_html_table(format($q$
        SELECT tier, customers, customer_share_pct AS "customers %%", round(predicted_clv::numeric, 2) AS "predicted CLV",
               clv_share_pct AS "CLV %%", round(mean_p_alive::numeric, 3) AS "mean P(alive)",
               round(mean_expected_purchases::numeric, 3) AS "mean expected purchases"
        FROM %s.clv_tier_summary$q$, s));
    sections := sections || '<figure>' || clv_concentration_chart(c.clvs) || '</figure>'
        || CASE WHEN c.negative > 0 THEN format('<p class="note">%s customers with a negative predicted CLV count as 0 in the curve.</p>', c.negative) ELSE '' END;

    sections := sections || '<h2>The purchase model</h2>';
    IF purchase_model = 'bgnbd' THEN
        sections := sections
            || '<figure>' || frequency_recency_chart(m.bgnbd, m.horizon_months * clv_periods_per_month(m.unit), c.max_tenure,
                                                     c.max_frequency, c.max_tenure, 40, m.unit) || '</figure>'
            || '<figure>' || p_alive_chart(m.bgnbd, c.max_tenure, c.max_frequency, c.max_tenure, 40, m.unit) || '</figure>'
            || '<figure>' || period_transactions_chart(m.bgnbd, c.frequencies, c.tenures) || '</figure>';
    ELSE
        sections := sections
            || '<figure>' || frequency_recency_chart(m.pareto_nbd, m.horizon_months * clv_periods_per_month(m.unit), c.max_tenure,
                                                     c.max_frequency, c.max_tenure, 40, m.unit) || '</figure>'
            || '<figure>' || p_alive_chart(m.pareto_nbd, c.max_tenure, c.max_frequency, c.max_tenure, 40, m.unit) || '</figure>'
            || '<figure>' || period_transactions_chart(m.pareto_nbd, c.frequencies, c.tenures) || '</figure>';
    END IF;

    -- The source rows of the most valuable customer, when the source is still there.
    IF to_regclass(s || '.clv_pipeline_state') IS NOT NULL THEN
        EXECUTE format('SELECT * FROM %s.clv_pipeline_state', s) INTO st;
    END IF;
    IF st.source IS NOT NULL AND EXISTS (SELECT 1 FROM pg_class WHERE oid = st.source) THEN
        EXECUTE format('SELECT array_agg(%1$I::timestamp) FROM %2$s WHERE %3$I = (SELECT customer_id FROM %4$s.clv_customers '
                       'ORDER BY clv DESC NULLS LAST, customer_id LIMIT 1) AND %1$I < %5$L::date + 1 AND %6$I IS NOT NULL',
                       st.time_column, st.source, st.customer_column, s, m.observation_end, st.amount_column)
            INTO top_times;
        IF top_times IS NOT NULL THEN
            sections := sections || '<h3>The most valuable customer</h3><figure>'
                || CASE purchase_model WHEN 'bgnbd' THEN p_alive_history_chart(m.bgnbd, top_times, m.observation_end::timestamp, m.unit)
                                       ELSE p_alive_history_chart(m.pareto_nbd, top_times, m.observation_end::timestamp, m.unit) END
                || '</figure>';
        END IF;
    END IF;

    sections := sections || '<h2>Tier migration</h2>';
    EXECUTE format('SELECT count(*) FROM %s.clv_tier_migration', s) INTO svg;
    IF svg::bigint > 0 THEN
        sections := sections || '<figure>' || tier_migration_chart(target_schema) || '</figure>';
    ELSE
        sections := sections || '<p class="note">One run so far: migration appears after the next run.</p>';
    END IF;

    sections := sections || '<h2>Segments</h2>' || clv_html_table(format($q$
        SELECT segmentation, segment, customers, round((100 * customer_share)::numeric, 2) AS "customers %%",
               round((100 * clv_share)::numeric, 2) AS "CLV %%", defining_traits AS "defining traits"
        FROM %s.clv_segment_profiles ORDER BY segmentation, customers DESC, segment$q$, s));

    IF validation AND st.source IS NOT NULL AND EXISTS (SELECT 1 FROM pg_class WHERE oid = st.source) THEN
        first_day := m.first_transaction::date;
        calibration_end := CASE WHEN m.observation_end - make_interval(months => 2 * m.horizon_months) >= first_day
                                THEN (m.observation_end - make_interval(months => m.horizon_months))::date
                                ELSE first_day + (2 * (m.observation_end - first_day)) / 3 END;
        -- One fit and one read of the source for both the chart and the metrics.
        EXECUTE format($q$
            WITH p AS MATERIALIZED (SELECT * FROM clv_holdout_predictions($1, $2, $3, $4, $5, $6, $7, $8)),
                 c AS (%s), v AS (%s)
            SELECT (SELECT calibration_vs_holdout_chart(coalesce(array_agg(frequency_cal::float8 ORDER BY frequency_cal), '{}'),
                                                        coalesce(array_agg(mean_predicted ORDER BY frequency_cal), '{}'),
                                                        coalesce(array_agg(mean_actual ORDER BY frequency_cal), '{}')) FROM c),
                   x.names, x.vals
            FROM (SELECT array_agg(metric) AS names, array_agg(round(value::numeric, 4)) AS vals FROM v) x$q$,
            clv_calibration_vs_holdout_query('p', 6), clv_holdout_metrics_query('p'))
            INTO svg, metric_names, metric_values
            USING st.source, st.customer_column, st.time_column, st.amount_column, calibration_end, m.observation_end, m.unit, purchase_model;
        sections := sections || format('<h2>Validation</h2><p>Fitted on the transactions until %s, predicted %s to %s.</p>',
                                       calibration_end, calibration_end + 1, m.observation_end)
            || '<figure>' || svg || '</figure>'
            || clv_html_table(format('SELECT * FROM unnest(%L::text[], %L::numeric[]) AS t(metric, value)', metric_names, metric_values));
    END IF;
    IF m.ml_validation IS NOT NULL THEN
        sections := sections || '<h3>The ML models on held-out customers</h3>'
            || format('<p>Features as of %s, labels until %s (docs/ml.md).</p>',
                      clv_html_escape(m.ml_validation->'trained_on'->>'features_as_of'),
                      clv_html_escape(m.ml_validation->'trained_on'->>'labels_until'))
            || clv_html_table(format($q$
                SELECT model, metric, CASE jsonb_typeof(value) WHEN 'number' THEN round(value::text::numeric, 4)::text ELSE value #>> '{}' END AS value
                FROM (VALUES ('CLV', 'clv'), ('churn', 'churn')) k(model, key),
                     jsonb_each(CASE WHEN jsonb_typeof(%1$L::jsonb -> k.key) = 'object' THEN %1$L::jsonb -> k.key END) e(metric, value)
                ORDER BY 1, 2$q$, m.ml_validation));
    END IF;

    html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        || '<title>' || clv_html_escape(format('CLV report: %s, run %s', target_schema, m.run_id)) || '</title>'
        || '<style>body{font-family:sans-serif;max-width:800px;margin:2em auto;color:#222}'
        || 'table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:3px 8px}'
        || 'th{background:#f0f0f0}td.n{text-align:right}figure{margin:1em 0}figure svg{max-width:100%;height:auto}'
        || '.note{color:#666}footer{color:#666;font-size:12px;margin-top:3em}</style></head><body>'
        || '<h1>' || clv_html_escape(format('Customer lifetime value: %s', target_schema)) || '</h1>'
        || sections
        || '<footer>' || clv_html_escape(format('clv_ext %s, generated %s', version, to_char(now(), 'YYYY-MM-DD HH24:MI TZ'))) || '</footer>'
        || '</body></html>';
    RETURN html;
END $$;
