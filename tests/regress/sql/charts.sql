-- Charts as SVG and the HTML report, on CDNOW. Each chart is checked for being a well-formed SVG
-- document with its title, axis labels and units; the numbers behind it against their definition
-- (period_transactions, p_alive_history) or against plain SQL (tier shares, Gini, migration
-- counts). The report is written to the data folder, where scripts/test.sh renders it in
-- headless Chromium.
SET extra_float_digits = 0;
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- Matches of a pattern (regexp_count needs PostgreSQL 15; the suite also runs on 13).
CREATE FUNCTION pg_temp.matches(s text, pattern text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM regexp_matches(s, pattern, 'g')
$$;
-- Well-formed SVG with every word given. A server built without libxml (PostgreSQL 18's
-- embedded build) cannot parse XML: there, every start tag that is not self-closing must have its
-- end tag (headless Chromium renders the report in scripts/test.sh either way).
CREATE FUNCTION pg_temp.svg_ok(svg text, words text[]) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    well_formed boolean;
BEGIN
    BEGIN
        well_formed := xml_is_well_formed_document(svg);
    EXCEPTION WHEN feature_not_supported THEN
        well_formed := pg_temp.matches(svg, '<[a-zA-Z]([^>]*[^/])?>') = pg_temp.matches(svg, '</');
    END;
    RETURN svg LIKE '<svg %' AND well_formed AND (SELECT bool_and(strpos(svg, w) > 0) FROM unnest(words) w);
END $$;

\getenv data CLV_TEST_DATA
\set raw :data '/cdnow/CDNOW_sample.txt'
CREATE TABLE cdnow_lines (line text);
COPY cdnow_lines FROM :'raw';
CREATE TABLE cdnow_tx AS
SELECT f[2]::int AS customer, to_date(f[3], 'YYYYMMDD') AS day, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_lines) q;
-- Two runs, so that there is tier migration: 1998-03-31, then the end of the data.
SELECT run_id, customers FROM clv_pipeline('cdnow_tx', 'customer', 'day', 'amount', '1998-03-31', target_schema => 'charts');
SELECT run_id, customers FROM clv_pipeline('cdnow_tx', 'customer', 'day', 'amount', '1998-06-30', target_schema => 'charts');
CREATE TABLE m AS SELECT * FROM charts.clv_models ORDER BY run_id DESC LIMIT 1;

-- lifetimes' frequency/recency and P(alive) matrices: one rectangle per possible history of the
-- grid (expected_purchases_grid's rows), plus a fixed number for the background and the colour
-- bar, whatever the grid's size.
WITH g(mf, steps) AS (VALUES (5, 10), (20, 30), (40, 40)),
c AS (
    SELECT mf, steps,
           pg_temp.matches(frequency_recency_chart(m.bgnbd, 52, 78, mf, 78, steps), '<rect') AS rects,
           pg_temp.matches(p_alive_chart(m.bgnbd, 78, mf, 78, steps), '<rect') AS p_rects,
           (SELECT count(*) FROM expected_purchases_grid(m.bgnbd, 52, 78, mf, 78, steps)) AS cells
    FROM g, m)
SELECT count(DISTINCT rects - cells) AS fixed_extra, count(DISTINCT p_rects - cells) AS p_fixed_extra,
       min(rects - cells) AS extra_rects
FROM c;
SELECT pg_temp.svg_ok(frequency_recency_chart(bgnbd, 52, 78, 20, 78, unit => 'week'),
                      ARRAY['BG/NBD: expected purchases in the next 52 weeks (customer age 78 weeks)',
                            'recency: age at last purchase (weeks)', 'frequency (repeat purchases)', '>purchases<']) AS frequency_recency,
       pg_temp.svg_ok(p_alive_chart(bgnbd, 78, 20, 78, unit => 'week'),
                      ARRAY['BG/NBD: probability a customer is alive (customer age 78 weeks)', 'P(alive)']) AS p_alive,
       pg_temp.svg_ok(frequency_recency_chart((SELECT pareto_nbd_fit(frequency, recency, tenure) FROM charts.clv_customers),
                                              30, 100, 10, 100, 10, 'day'),
                      ARRAY['Pareto/NBD: expected purchases in the next 30 days', '(days)']) AS pareto_days,
       pg_temp.svg_ok(p_alive_chart((SELECT mbgnbd_fit(frequency, recency, tenure) FROM charts.clv_customers), 12, 8, 12, 12, 'month'),
                      ARRAY['MBG/NBD', 'customer age 12 months']) AS mbgnbd_months
FROM m;

-- Period transactions: the actual counts are the customers by frequency; the model's are
-- sum_i P(X(T_i) = k), which at k = 0 is sum_i (alpha / (alpha + T_i))^r for BG/NBD (Fader,
-- Hardie and Lee 2005, eq. 8); both sum to the customers.
CREATE TABLE pt AS
SELECT p.* FROM m, LATERAL (SELECT array_agg(frequency) f, array_agg(tenure) t FROM charts.clv_customers) a,
     LATERAL period_transactions(m.bgnbd, a.f, a.t) p;
SELECT frequency, or_more, actual_customers,
       actual_customers = (SELECT count(*) FROM charts.clv_customers c
                           WHERE CASE WHEN pt.or_more THEN c.frequency >= pt.frequency ELSE c.frequency = pt.frequency END) AS actual_ok,
       round(expected_customers::numeric, 1) AS expected_customers
FROM pt ORDER BY frequency;
SELECT sum(actual_customers) AS customers, round(sum(expected_customers)::numeric, 9) AS expected_total,
       abs((SELECT expected_customers FROM pt WHERE frequency = 0)
           - (SELECT sum(power(alpha / (alpha + tenure), r))
              FROM charts.clv_customers, (SELECT (bgnbd::jsonb->'params'->>'r')::float8 AS r,
                                                 (bgnbd::jsonb->'params'->>'alpha')::float8 AS alpha FROM m) p)) < 1e-9 AS zero_bucket_is_eq_8
FROM pt;
SELECT pg_temp.svg_ok(period_transactions_chart(m.bgnbd, a.f, a.t),
                      ARRAY['BG/NBD: customers by number of repeat purchases', '>actual<', '>model<', '>7+<',
                            'repeat purchases per customer (frequency)']) AS period_transactions_chart
FROM m, LATERAL (SELECT array_agg(frequency) f, array_agg(tenure) t FROM charts.clv_customers) a;

-- One customer's P(alive) over time: the path ends at the customer's scored P(alive); before
-- the first repeat purchase the customer is alive; at most 2,000 + 2 per purchase day points.
CREATE TABLE top AS
SELECT customer_id, frequency, p_alive, (SELECT array_agg(day) FROM cdnow_tx WHERE customer = customer_id) AS days
FROM charts.clv_customers ORDER BY clv DESC, customer_id LIMIT 1;
SELECT top.frequency, count(*) > 100 AS many_points, count(*) <= 2001 + 2 * cardinality(top.days) AS bounded,
       abs((array_agg(h.p_alive ORDER BY h.t DESC))[1] - top.p_alive) < 1e-12 AS ends_at_p_alive,
       round(max(h.t)::numeric, 4) AS last_t, (array_agg(h.p_alive ORDER BY h.t))[1] AS first_p_alive
FROM top, m, LATERAL p_alive_history(m.bgnbd, top.days, m.observation_end) h
GROUP BY top.frequency, top.p_alive, top.days;
SELECT pg_temp.svg_ok(p_alive_history_chart(m.bgnbd, top.days, m.observation_end),
                      ARRAY['BG/NBD: P(alive) over time', 'time since first purchase (weeks)']) AS history_chart,
       -- timestamptz times and a day unit
       pg_temp.svg_ok(p_alive_history_chart(m.bgnbd, top.days::timestamptz[], m.observation_end, 'day'),
                      ARRAY['(days)']) AS history_tz
FROM top, m;

-- The CLV concentration curve: the tier labels hold each tier's share of CLV and the title the
-- Gini coefficient, both as plain SQL computes them (shares interpolated at the cut, so within
-- one rounding step).
CREATE TABLE conc AS SELECT clv_concentration_chart(array_agg(clv)) AS svg FROM charts.clv_customers;
WITH r AS (SELECT clv, row_number() OVER (ORDER BY clv DESC) AS rank, count(*) OVER () AS n, sum(clv) OVER () AS total
           FROM charts.clv_customers),
sql_share AS (SELECT 100 * sum(clv) FILTER (WHERE rank <= 0.2 * n) / max(total) AS high,
                     100 * sum(clv) FILTER (WHERE rank > 0.2 * n AND rank <= 0.7 * n) / max(total) AS medium,
                     100 * sum(clv) FILTER (WHERE rank > 0.7 * n) / max(total) AS low FROM r),
gini AS (SELECT 2 * sum(rank_asc * clv) / (count(*) * sum(clv)) - (count(*) + 1.0) / count(*) AS g
         FROM (SELECT clv, row_number() OVER (ORDER BY clv) AS rank_asc FROM charts.clv_customers) a),
drawn AS (SELECT (regexp_match(svg, '>high: ([0-9]+)% of CLV<'))[1]::float8 AS high,
                 (regexp_match(svg, '>medium: ([0-9]+)% of CLV<'))[1]::float8 AS medium,
                 (regexp_match(svg, 'Gini ([0-9.]+)'))[1]::float8 AS gini FROM conc)
SELECT pg_temp.svg_ok(conc.svg, ARRAY['Share of predicted CLV by customer rank (2357 customers',
                                      'customers, highest CLV first (% of customers)', 'equal CLV for everyone']) AS svg_ok,
       abs(drawn.high - sql_share.high) <= 0.6 AS high_share_ok, abs(drawn.medium - sql_share.medium) <= 1.1 AS medium_share_ok,
       strpos(conc.svg, format('>low: %s%% of CLV<', round(sql_share.low::numeric))) > 0 AS low_share_ok,
       drawn.gini = round(gini.g::numeric, 2) AS gini_ok, round(gini.g::numeric, 2) AS gini
FROM conc, drawn, sql_share, gini;
-- Custom tiers, NULL CLVs left out: 5, 3, 1, 0 of 9; shares interpolated between ranks (gold, the top 5%
-- of 4 customers, holds 5/25 of the top customer's 5/9 = 11%).
SELECT pg_temp.svg_ok(clv_concentration_chart(ARRAY[5, 1, NULL, 3, 0]::float8[], ARRAY[0.05, 0.15, 0.8], ARRAY['gold', 'silver', 'rest']),
                      ARRAY['(4 customers, Gini 0.47)', '>gold: 11% of CLV<', '>silver: 33% of CLV<', '>rest: 56% of CLV<']) AS custom_tiers;

-- Tier migration: each cell says "customers (share of the earlier tier)" as the view counts them.
WITH v AS (SELECT from_tier, to_tier, customers, sum(customers) OVER (PARTITION BY from_tier) AS row_total FROM charts.clv_tier_migration)
SELECT count(*) AS cells, bool_and(strpos(tier_migration_chart('charts'),
                                          format('>%s (%s%%)<', customers, round(100.0 * customers / row_total)))> 0) AS counts_drawn
FROM v WHERE customers < 10000;
SELECT pg_temp.svg_ok(tier_migration_chart('charts'), ARRAY['Tier migration between the last two runs', 'tier in the later run', '>medium<']) AS migration_ok;

-- Calibration vs holdout (lifetimes' split of CDNOW; the numbers are checked in the pipeline test).
SELECT pg_temp.svg_ok(calibration_vs_holdout_chart('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30'),
                      ARRAY['Actual vs predicted purchases in the holdout period', 'mean predicted', 'mean actual']) AS calibration_chart,
       pg_temp.matches(calibration_vs_holdout_chart('cdnow_tx', 'customer', 'day', 'amount', '1997-09-30', '1998-06-30'), '<circle') AS markers;

-- The report: one page, every chart inline, nothing fetched; saved for the browser check.
CREATE TABLE report AS SELECT clv_report('charts') AS html;
SELECT html LIKE '<!DOCTYPE html>%</html>' AS is_html, pg_temp.matches(html, '<svg ') AS charts,
       pg_temp.matches(html, '<table>') AS tables,
       strpos(html, 'Value tiers') > 0 AND strpos(html, 'Tier migration between') > 0 AND strpos(html, 'Validation') > 0
           AND strpos(html, 'purchases_mae') > 0 AND strpos(html, 'The most valuable customer') > 0 AS sections,
       html !~ '(src|href)=' AS nothing_fetched, html !~ '<script' AS no_script,
       -- nothing that text-format COPY would escape: \copy writes the page as it is
       html !~ E'[\\n\\r\\t\\\\]' AS copy_verbatim
FROM report;
SELECT clv_html_escape(E'<a href="x">Tom\\''s\n&co</a>') AS escaped;
\set report :data '/clv_report.html'
COPY report TO :'report';
SELECT pg_temp.matches(clv_report('charts', validation => false), '<svg ') AS charts_without_validation;

-- Bad input: the SQLSTATE of each.
SELECT pg_temp.error_of(format('SELECT frequency_recency_chart(%L::bgnbd_model, 52, 78, 20, 78, 20, %L)', bgnbd, 'fortnight')) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_chart(%L::bgnbd_model, 78, 999, 78, 999)', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_chart(%L::bgnbd_model, 10, 5, -20)', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT period_transactions(%L::bgnbd_model, ARRAY[1, 2], ARRAY[3])', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT period_transactions(%L::bgnbd_model, ARRAY[1.5], ARRAY[3])', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT period_transactions(%L::bgnbd_model, ARRAY[1, NULL], ARRAY[3, 4])', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT period_transactions(%L::bgnbd_model, ARRAY[1], ARRAY[''NaN'']::float8[])', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT period_transactions_chart(%L::bgnbd_model, ARRAY[1], ARRAY[3], 0)', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_history(%L::bgnbd_model, ARRAY[]::timestamp[], ''1998-01-01'')', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_history(%L::bgnbd_model, ARRAY[''1999-01-01'']::timestamp[], ''1998-01-01'')', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_history(%L::bgnbd_model, ARRAY[''infinity'']::timestamp[], ''1998-01-01'')', bgnbd)) FROM m;
SELECT pg_temp.error_of(format('SELECT p_alive_history_chart(%L::bgnbd_model, ARRAY[''1997-01-01'']::timestamp[], ''infinity'')', bgnbd)) FROM m;
SELECT pg_temp.error_of('SELECT clv_concentration_chart(ARRAY[1, -1])');
SELECT pg_temp.error_of('SELECT clv_concentration_chart(ARRAY[1, ''NaN'']::float8[])');
SELECT pg_temp.error_of('SELECT clv_concentration_chart(ARRAY[NULL]::float8[])');
SELECT pg_temp.error_of('SELECT clv_concentration_chart(ARRAY[1, 2], ARRAY[0.5, 0.6], ARRAY[''a'', ''b''])');
SELECT pg_temp.error_of('SELECT tier_migration_chart(ARRAY[''high''], ARRAY[''low''], ARRAY[1, 2])');
SELECT pg_temp.error_of('SELECT tier_migration_chart(ARRAY[''high''], ARRAY[''low''], ARRAY[-1])');
SELECT pg_temp.error_of('SELECT calibration_vs_holdout_chart(ARRAY[0, 1], ARRAY[0.1, NULL], ARRAY[0.2, 0.3])');
SELECT pg_temp.error_of('SELECT calibration_vs_holdout_chart(ARRAY[]::float8[], ARRAY[]::float8[], ARRAY[]::float8[])');
SELECT pg_temp.error_of('SELECT clv_report(''no_such_schema'')');
SELECT pg_temp.error_of('SELECT clv_report(NULL)');
SELECT pg_temp.error_of('SELECT tier_migration_chart(''no_such_schema''::name)');
-- One run only: the report says so instead of a migration chart.
SELECT run_id FROM clv_pipeline('cdnow_tx', 'customer', 'day', 'amount', '1998-06-30', target_schema => 'charts_once');
SELECT strpos(clv_report('charts_once', false), 'One run so far') > 0 AS one_run_note;
SELECT pg_temp.error_of('SELECT tier_migration_chart(''charts_once''::name)');
SELECT pg_temp.error_of('SELECT clv_report(''charts_once'', NULL)');
-- An ML run: a linear regression predicts negative spend for some customers; the report counts
-- them as 0 in the concentration curve (and says so) and shows the ML models' holdout metrics.
SELECT run_id FROM clv_pipeline('cdnow_tx', 'customer', 'day', 'amount', '1998-06-30', target_schema => 'charts_ml',
                                clv_method => 'linear', churn_method => 'logistic');
SELECT (SELECT count(*) FROM charts_ml.clv_customers WHERE clv < 0) > 0 AS some_negative,
       strpos(r, format('%s customers with a negative predicted CLV count as 0', (SELECT count(*) FROM charts_ml.clv_customers WHERE clv < 0))) > 0 AS negative_note,
       strpos(r, 'The ML models on held-out customers') > 0 AS ml_section,
       pg_temp.matches(r, '<td>(CLV|churn)</td>') >= 4 AS ml_metrics,
       pg_temp.matches(r, '<svg ') AS charts
FROM (SELECT clv_report('charts_ml', false) AS r) q;
-- The tests share a database: leave nothing behind.
DROP SCHEMA charts, charts_once, charts_ml CASCADE;
DROP TABLE cdnow_lines, cdnow_tx, m, pt, top, conc, report;
