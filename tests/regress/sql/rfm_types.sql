-- The same transactions as date, timestamp and timestamptz, with numeric and double precision
-- amounts, give the same summary; timestamptz days are UTC days whatever the session TimeZone.
SET extra_float_digits = 0;
CREATE TABLE tt (customer int, ts timestamp, amount float8);
INSERT INTO tt VALUES (1, '2024-01-01 08:00', 10), (1, '2024-01-01 23:59', 5), (1, '2024-01-03 00:00', 7),
                      (1, '2024-02-10 12:00', 3), (1, '2024-03-31 23:00', 4), (1, '2024-04-01 00:00', 100);

SELECT 'date/numeric' AS input, frequency(s), recency(s), tenure(s), monetary_value(s)
  FROM (SELECT rfm(ts::date, amount::numeric, '2024-03-31') s FROM tt) q
UNION ALL
SELECT 'timestamp/float8', frequency(s), recency(s), tenure(s), monetary_value(s)
  FROM (SELECT rfm(ts, amount, '2024-03-31') s FROM tt) q
UNION ALL
SELECT 'timestamptz/float8', frequency(s), recency(s), tenure(s), monetary_value(s)
  FROM (SELECT rfm(ts AT TIME ZONE 'UTC', amount, '2024-03-31') s FROM tt) q
UNION ALL
SELECT 'timestamptz/numeric', frequency(s), recency(s), tenure(s), monetary_value(s)
  FROM (SELECT rfm(ts AT TIME ZONE 'UTC', amount::numeric, '2024-03-31') s FROM tt) q;

-- The session time zone does not move day boundaries of timestamptz input (UTC decides) ...
SET TimeZone = 'Asia/Tokyo';
SELECT frequency(s), recency(s) FROM (SELECT rfm(ts AT TIME ZONE 'UTC', amount, '2024-03-31') s FROM tt) q;
-- ... and local days are one cast away.
SELECT frequency(s), recency(s) FROM (SELECT rfm((ts AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Tokyo', amount, '2024-03-31') s FROM tt) q;
RESET TimeZone;

-- Holdout: calibration to 2024-01-31, holdout to 2024-03-31 (lifetimes calibration_and_holdout_data):
-- holdout frequency counts distinct holdout days, monetary value is the spend per holdout day.
SELECT frequency(s), recency(s), tenure(s), frequency_holdout(s), monetary_value_holdout(s),
       monetary_value_holdout_per_transaction(s), total_amount_holdout(s),
       duration_holdout(s), duration_holdout(s, 'week') AS duration_weeks
FROM (SELECT rfm_holdout(ts, amount, '2024-01-31', '2024-03-31', 'day') s FROM tt) q;

-- The public lifetimes bug report (fixed in PyMC-Marketing): c4 bought (2015-01-16, 6),
-- (2015-02-02, 3), (2015-02-05, 3), (2015-02-05, 6); calibration end 2015-02-01, observation end
-- 2015-02-07. Two holdout days, so the mean spend per holdout day is (3 + 9) / 2 = 6.0; lifetimes'
-- raw-row mean (3 + 3 + 6) / 3 = 4.0 stays available under its own name.
SELECT frequency_holdout(s), monetary_value_holdout(s), monetary_value_holdout_per_transaction(s),
       total_amount_holdout(s)
FROM (SELECT rfm_holdout(ts, amount, '2015-02-01', '2015-02-07', 'day') s
      FROM (VALUES (timestamp '2015-01-16', 6.0::float8), ('2015-02-02', 3), ('2015-02-05', 3), ('2015-02-05', 6)) c4(ts, amount)) q;

-- Summaries re-aggregate: rolling up monthly partial summaries equals one pass.
SELECT rollup(s)::text = (SELECT rfm(ts, amount, '2024-03-31')::text FROM tt) AS rollup_equals_direct
FROM (SELECT date_trunc('month', ts) AS mon, rfm(ts, amount, '2024-03-31') s FROM tt GROUP BY 1) q;
