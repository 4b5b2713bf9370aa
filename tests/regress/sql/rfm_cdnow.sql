-- Acceptance: the 2,357 CDNOW customers of lifetimes' reference summary are reproduced from the
-- raw transactions (observation end 1997-09-30, day periods, recency and T in weeks) within 0.005.
SET extra_float_digits = 0;
\getenv data CLV_TEST_DATA
\set raw :data '/cdnow/CDNOW_sample.txt'
\set reference :data '/cdnow/cdnow_customers_summary_with_transactions.csv'
CREATE TABLE cdnow_raw (line text);
COPY cdnow_raw FROM :'raw';
CREATE TABLE cdnow AS
SELECT f[2]::int AS customer, to_date(f[3], 'YYYYMMDD') AS ts, f[5]::numeric AS amount
FROM (SELECT regexp_split_to_array(trim(line), '\s+') AS f FROM cdnow_raw) q;
CREATE TABLE cdnow_reference (id int, x float8, t_x float8, t float8, zbar float8);
COPY cdnow_reference FROM :'reference' (FORMAT csv, HEADER);

SELECT count(*) AS transactions, count(DISTINCT customer) AS customers FROM cdnow;

CREATE TABLE cdnow_summary AS
SELECT customer, frequency(s) AS x, recency(s, 'week') AS t_x, tenure(s, 'week') AS t, monetary_value(s) AS zbar
FROM (SELECT customer, rfm(ts, amount, '1997-09-30') AS s FROM cdnow GROUP BY customer) q;

SELECT count(*) AS compared,
       count(*) FILTER (WHERE abs(s.x - r.x) > 0.005 + 1e-9 OR abs(s.t_x - r.t_x) > 0.005 + 1e-9
                         OR abs(s.t - r.t) > 0.005 + 1e-9 OR abs(s.zbar - r.zbar) > 0.005 + 1e-9) AS mismatches,
       max(greatest(abs(s.x - r.x), abs(s.t_x - r.t_x), abs(s.t - r.t), abs(s.zbar - r.zbar))) <= 0.005 + 1e-9 AS max_error_ok
FROM cdnow_reference r JOIN cdnow_summary s ON s.customer = r.id;

-- Calibration to 1997-09-30, holdout to 1998-06-30, checked against the same semantics written
-- in plain SQL (distinct holdout days, spend per holdout day, the raw mean of holdout amounts as
-- lifetimes computes it, customers known at calibration).
CREATE TABLE cdnow_split AS
SELECT customer, rfm_holdout(ts, amount, '1997-09-30', '1998-06-30', 'day') AS s FROM cdnow GROUP BY customer;
WITH native AS (
    SELECT customer, count(DISTINCT ts) AS f_h, sum(amount) / count(DISTINCT ts) AS m_h, avg(amount) AS m_h_row
    FROM cdnow WHERE ts > '1997-09-30' AND ts <= '1998-06-30' GROUP BY customer)
SELECT count(*) AS customers, sum(frequency_holdout(s)) AS holdout_purchase_days,
       count(*) FILTER (WHERE frequency_holdout(s) <> coalesce(n.f_h, 0)
                         OR abs(monetary_value_holdout(s) - coalesce(n.m_h, 0)) > 1e-9
                         OR abs(monetary_value_holdout_per_transaction(s) - coalesce(n.m_h_row, 0)) > 1e-9) AS mismatches,
       count(*) FILTER (WHERE abs(monetary_value_holdout(s) - monetary_value_holdout_per_transaction(s)) > 1e-9) AS per_period_differs,
       min(duration_holdout(s, 'week'))::numeric(8,4) AS duration_weeks
FROM cdnow_split c LEFT JOIN native n USING (customer);
