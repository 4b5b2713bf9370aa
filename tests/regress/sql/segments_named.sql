-- Named segments: each rule, inclusive thresholds, precedence, named threshold parameters, NULLs,
-- a percent_rank pipeline, and bad input with SQLSTATEs.
-- Own schema: the regression tests share one database, so table names must not collide.
CREATE SCHEMA segments_named;
SET search_path = segments_named, public;
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Arguments: frequency, p_alive, clv_rank, past_value_rank, expected_purchases_rank [, discount_share].
-- Each rule on its own, at exactly its (inclusive) default thresholds.
SELECT label, clv_named_segment(f, pa, cr, pr, er, ds) AS segment
FROM (VALUES ('no rule matches',        3, 0.6, 0.6, 0.6, 0.6, NULL),
             ('frequency 0',            0, 0.6, 0.6, 0.6, 0.6, NULL),
             ('past >= 0.7, alive <= 0.3', 3, 0.3, 0.6, 0.7, 0.6, NULL),
             ('clv >= 0.8, alive >= 0.7',  3, 0.7, 0.8, 0.6, 0.6, NULL),
             ('discount share >= 0.5',  3, 0.6, 0.6, 0.6, 0.6, 0.5),
             ('past <= 0.5, alive >= 0.8, expected >= 0.5', 3, 0.8, 0.6, 0.5, 0.5, NULL))
     t(label, f, pa, cr, pr, er, ds);

-- Just outside each threshold: Regulars.
SELECT label, clv_named_segment(f, pa, cr, pr, er, ds) AS segment
FROM (VALUES ('past 0.699999',          3, 0.3, 0.6, 0.699999, 0.6, NULL),
             ('alive 0.300001',         3, 0.300001, 0.6, 0.7, 0.6, NULL),
             ('clv 0.799999',           3, 0.7, 0.799999, 0.6, 0.6, NULL),
             ('alive 0.699999',         3, 0.699999, 0.8, 0.6, 0.6, NULL),
             ('discount 0.499999',      3, 0.6, 0.6, 0.6, 0.6, 0.499999),
             ('silent past 0.500001',   3, 0.9, 0.6, 0.500001, 0.9, NULL),
             ('silent alive 0.799999',  3, 0.799999, 0.6, 0.2, 0.9, NULL),
             ('silent expected 0.499999', 3, 0.9, 0.6, 0.2, 0.499999, NULL))
     t(label, f, pa, cr, pr, er, ds);

-- Precedence: One-Timers > At Risk > Champions > Discount Seekers > Silent Potentials > Regulars.
-- With every threshold at 0.5 the first customer matches every rule; each next one drops the winner.
SELECT label, clv_named_segment(f, pa, cr, pr, er, ds,
                                at_risk_min_past_value_rank => 0.5, at_risk_max_p_alive => 0.5,
                                champion_min_clv_rank => 0.5, champion_min_p_alive => 0.5, discount_min_share => 0.5,
                                silent_max_past_value_rank => 0.5, silent_min_p_alive => 0.5,
                                silent_min_expected_purchases_rank => 0.5) AS segment
FROM (VALUES (1, 'matches all',           0, 0.5, 0.9, 0.5, 0.9, 0.9),
             (2, 'repeat buyer',          2, 0.5, 0.9, 0.5, 0.9, 0.9),
             (3, 'past value 0.4',        2, 0.5, 0.9, 0.4, 0.9, 0.9),
             (4, 'clv 0.4',               2, 0.5, 0.4, 0.4, 0.9, 0.9),
             (5, 'no discount data',      2, 0.5, 0.4, 0.4, 0.9, NULL),
             (6, 'alive 0.4',             2, 0.4, 0.4, 0.4, 0.9, NULL))
     t(i, label, f, pa, cr, pr, er, ds) ORDER BY i;
-- A valuable customer who always uses discounts is a Champion first (default thresholds).
SELECT clv_named_segment(3, 0.9, 0.95, 0.6, 0.6, 1.0) AS champion_with_discounts;
-- Thresholds are parameters: a stricter champion rule.
SELECT clv_named_segment(3, 0.9, 0.85, 0.6, 0.6) AS default_rule, clv_named_segment(3, 0.9, 0.85, 0.6, 0.6, champion_min_clv_rank => 0.9) AS stricter;

-- NULL inputs: NULL segment; a NULL discount share just skips the Discount Seekers rule.
SELECT clv_named_segment(NULL, 0.5, 0.5, 0.5, 0.5) IS NULL AS null_frequency, clv_named_segment(3, NULL, 0.5, 0.5, 0.5) IS NULL AS null_p_alive,
       clv_named_segment(3, 0.5, NULL, 0.5, 0.5) IS NULL AS null_clv_rank, clv_named_segment(3, 0.5, 0.5, NULL, 0.5) IS NULL AS null_past_rank,
       clv_named_segment(3, 0.5, 0.5, 0.5, NULL) IS NULL AS null_expected_rank, clv_named_segment(3, 0.6, 0.6, 0.6, 0.6, NULL) AS null_discount;

-- docs/segments.md example: ranks from percent_rank() over model outputs.
CREATE TABLE scored (id int, frequency float8, p_alive float8, clv float8, past_value float8, expected float8, discount_share float8);
INSERT INTO scored VALUES
    (1, 0, 1.00,   5, 10,  0.1, NULL),
    (2, 8, 0.95, 900, 800, 6.0, 0.1),
    (3, 6, 0.10, 150, 700, 0.3, 0.0),
    (4, 2, 0.90, 120, 40,  2.5, 0.2),
    (5, 3, 0.60, 200, 300, 1.0, 0.9),
    (6, 4, 0.65, 250, 350, 1.5, 0.0);
SELECT id, round(clv_rank::numeric, 1) AS clv_rank, round(past_value_rank::numeric, 1) AS past_rank,
       round(expected_rank::numeric, 1) AS expected_rank,
       clv_named_segment(frequency, p_alive, clv_rank, past_value_rank, expected_rank, discount_share) AS segment
FROM (SELECT *, percent_rank() OVER (ORDER BY clv) AS clv_rank,
                percent_rank() OVER (ORDER BY past_value) AS past_value_rank,
                percent_rank() OVER (ORDER BY expected) AS expected_rank
      FROM scored) r
ORDER BY id;

-- Bad input.
SELECT pg_temp.error_of($$SELECT clv_named_segment(-1, 0.5, 0.5, 0.5, 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment('NaN', 0.5, 0.5, 0.5, 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment('Infinity', 0.5, 0.5, 0.5, 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 1.1, 0.5, 0.5, 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, -0.1, 0.5, 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, 0.5, 'NaN', 0.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, 0.5, 0.5, 2)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, 0.5, 0.5, 0.5, 1.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, 0.5, 0.5, 0.5, champion_min_clv_rank => 1.5)$$);
SELECT pg_temp.error_of($$SELECT clv_named_segment(1, 0.5, 0.5, 0.5, 0.5, silent_min_p_alive => NULL)$$);
-- Thresholds are checked even when an input is NULL.
SELECT pg_temp.error_of($$SELECT clv_named_segment(NULL, 0.5, 0.5, 0.5, 0.5, at_risk_max_p_alive => -0.5)$$);
