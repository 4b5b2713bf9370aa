-- clv_aggregate_state: the real state type of every clv_ext aggregate (0.6.0), which Citus ships
-- between nodes as text and parallel workers as flat values. Its input validates the payload;
-- its functions refuse states of another aggregate; transitions run only inside aggregates.
SET extra_float_digits = 0;
-- Every clv_ext aggregate has it as its state type.
SELECT a.aggtranstype::regtype AS state_type, count(*) AS aggregates, count(a.aggserialfn) FILTER (WHERE a.aggserialfn <> 0) AS with_serialfunc
FROM pg_aggregate a JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = a.aggfnoid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clv_ext' GROUP BY 1;
-- A prediction_errors state in its text form (version 1, kind 7; n = 2, each sum 2.0): combined
-- with itself and finished, as coord_combine_agg does on a Citus coordinator.
\set pe '''0107010200000000000000000000000000004000000000000000400000000000000040'''
SELECT prediction_errors_final(prediction_errors_combine(:pe, :pe)) AS combined_twice;
SELECT :pe::clv_aggregate_state::text = :pe AS text_round_trip;
-- Malformed text: 22P02; a payload its kind cannot read: 22P03.
SELECT 'xyz'::clv_aggregate_state;
SELECT '010'::clv_aggregate_state;
SELECT ''::clv_aggregate_state;
SELECT '02070102'::clv_aggregate_state;
SELECT '01ff'::clv_aggregate_state;
SELECT '0107ff'::clv_aggregate_state;
SELECT '0102010000000000000000ffffffffffffffff'::clv_aggregate_state;
-- A state of another aggregate: 42804, never a misread.
SELECT bgnbd_fit_final(:pe);
SELECT rfm_combine(:pe, :pe);
-- Transition functions only inside their aggregate: 0A000.
SELECT rfm_trans(NULL, date '2024-01-01', 1.0::float8, date '2024-12-31');
SELECT bgnbd_fit_trans(NULL, 1, 2, 3);
-- Serial and parallel plans give the same summaries and fits (partial states travel flat).
CREATE TABLE state_tx AS
SELECT i % 500 AS customer_id, date '2024-01-01' + (i * 37 % 300) AS day, (i % 23)::float8 AS amount
FROM generate_series(1, 20000) i;
ANALYZE state_tx;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TABLE state_par AS SELECT customer_id, rfm(day, amount, '2024-12-31') AS s FROM state_tx GROUP BY customer_id;
SELECT rfm(day, amount, '2024-12-31')::text AS global_parallel FROM state_tx \gset
SET max_parallel_workers_per_gather = 0;
CREATE TABLE state_ser AS SELECT customer_id, rfm(day, amount, '2024-12-31') AS s FROM state_tx GROUP BY customer_id;
SELECT count(*) AS customers, count(*) FILTER (WHERE p.s::text = s.s::text) AS same_summary
FROM state_par p JOIN state_ser s USING (customer_id);
SELECT rfm(day, amount, '2024-12-31')::text = :'global_parallel' AS same_global_summary FROM state_tx;
DROP TABLE state_tx, state_par, state_ser;
