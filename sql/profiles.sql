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
