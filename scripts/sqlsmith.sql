-- The database that scripts/sqlsmith.sh lets sqlsmith loose on: tables with typed clv_ext columns
-- (rfm_summary and every model type), a few rows each, normal and extreme values.
CREATE EXTENSION clv_ext;

CREATE TABLE smith_tx(customer_id text, ts timestamp, day date, tstz timestamptz, amount float8, amount_num numeric, unit text);
INSERT INTO smith_tx
SELECT 'c' || c, timestamp '1997-01-01' + ((c * 37 + i * 11) % 270) * interval '1 day',
       date '1997-01-01' + (c * 37 + i * 11) % 270, timestamptz '1997-01-01 00:00+00' + ((c * 37 + i * 11) % 270) * interval '1 day',
       5 + (c * i) % 40, (5 + (c * i) % 40)::numeric, (ARRAY['day', 'week', 'month'])[1 + c % 3]
FROM generate_series(1, 8) c, generate_series(1, 1 + c % 4) i;
INSERT INTO smith_tx VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('edge', 'infinity', 'infinity', '-infinity', 'NaN', 'NaN', 'fortnight'),
  ('edge', '1997-02-01', '1997-02-01', '1997-02-01+00', 1e300, 1e300, ''),
  ('edge', '1997-03-01', '1997-03-01', '1997-03-01+00', -5, -5, 'week');

CREATE TABLE smith_customers(id int, frequency float8, recency float8, tenure float8, monetary_value float8,
                             n_periods float8, t float8, n int, months int, seed bigint, features float8[]);
INSERT INTO smith_customers VALUES
  (1, 2, 30.43, 38.86, 22.35, 6, 39, 2, 12, 1, '{2,30.43}'),
  (2, 0, 0, 38.86, 0, 6, 52, 0, 6, 2, '{0,0}'),
  (3, 5, 35, 40, 100, 10, 10, 1, 24, 3, '{5,35}'),
  (4, 1, 10, 20, 15.5, 4, 1, 5, 1, 4, '{1,10}'),
  (5, 1e300, 1e300, 1e300, 1e300, 1e300, 1e300, 2147483647, 2147483647, 9223372036854775807, '{1e300,-1e300}'),
  (6, 'NaN', 'Infinity', '-Infinity', 'NaN', 'Infinity', 'NaN', -2147483648, -1, -1, '{NaN,Infinity}'),
  (7, -1, -0.0, 1e-300, -22.35, 0, 0, -1, 0, 0, '{}'),
  (8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE smith_models(id int, bgnbd bgnbd_model, pareto pareto_nbd_model, mbg mbgnbd_model, bgbb bgbb_model,
                          gg gamma_gamma_model, km kmeans_model);
INSERT INTO smith_models VALUES
  (1, bgnbd_model(0.243, 4.414, 0.793, 2.426), pareto_nbd_model(0.553, 10.578, 0.606, 11.669),
      mbgnbd_model(0.525, 6.183, 0.891, 1.614), bgbb_model(1.204, 0.750, 0.657, 2.783), gamma_gamma_model(6.25, 3.74, 15.44),
      (SELECT kmeans_fit(ARRAY[x, x * 2]::float8[], 2) FROM generate_series(1, 10) x)),
  (2, bgnbd_model(1e-4, 1e4, 1e4, 1e-4), pareto_nbd_model(1e4, 1e-4, 1e-4, 1e4),
      mbgnbd_model(1e4, 1e-4, 1e4, 1e-4), bgbb_model(1e-4, 1e4, 1e4, 1e-4), gamma_gamma_model(1e4, 1e-4, 1e4),
      (SELECT kmeans_fit(ARRAY[x % 7, x % 3, x]::float8[], 3, 7) FROM generate_series(1, 200) x)),
  (3, bgnbd_model(1e4, 1e4, 1e-4, 1e4), pareto_nbd_model(1e-4, 1e4, 1e4, 1e-4),
      mbgnbd_model(1e-4, 1e4, 1e-4, 1e4), bgbb_model(1e4, 1e-4, 1e-4, 1e4), gamma_gamma_model(6.25, 0.79, 15.44),
      (SELECT kmeans_fit(ARRAY[1, 1]::float8[], 1) FROM generate_series(1, 5) x)),
  (4, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE smith_summaries(customer_id text, s rfm_summary, unit text);
INSERT INTO smith_summaries
SELECT customer_id, rfm(ts, amount, '1997-09-30', 'week'), 'week' FROM smith_tx
WHERE customer_id LIKE 'c%' GROUP BY customer_id;
INSERT INTO smith_summaries
SELECT customer_id, rfm_holdout(ts, amount, '1997-06-30', '1997-09-30', 'day'), 'day' FROM smith_tx
WHERE customer_id LIKE 'c%' GROUP BY customer_id;
INSERT INTO smith_summaries VALUES (NULL, NULL, NULL),
  ('big', (SELECT rfm(ts, amount, '2024-06-30', 'day') FROM (VALUES (timestamp '0001-01-01', 1e300::float8), ('2024-06-30', -1e300)) v(ts, amount)), 'fortnight');

-- sqlsmith connects as a plain role: as a superuser its random calls of pg_terminate_backend,
-- pg_reload_conf, lo_import... would test PostgreSQL's administration, not clv_ext.
DO $$ BEGIN CREATE ROLE smith LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON smith_tx, smith_customers, smith_models, smith_summaries TO smith;
ANALYZE;

-- Focus (CLV_SMITH_FOCUS=1, the default): sqlsmith reads its routines from an unqualified
-- `pg_proc`; with the role's search_path = smith_focus, public, pg_catalog it reads this table (a
-- snapshot: a view over the catalogs would make every query that samples it costly enough for JIT),
-- which keeps every function of clv_ext and a few dozen common ones of PostgreSQL (arithmetic,
-- dates, text, arrays, jsonb, the usual aggregates and window functions) out of the ~3,000.
-- Without it, about 1 query in 30 calls a clv_ext function.
CREATE SCHEMA smith_focus;
CREATE TABLE smith_focus.pg_proc AS
SELECT p.* FROM pg_catalog.pg_proc p
WHERE EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clv_ext'
              WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
   OR (p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN (
       'abs', 'sqrt', 'exp', 'ln', 'log', 'power', 'round', 'trunc', 'ceil', 'floor', 'sign', 'random',
       'float8', 'int4', 'int8', 'numeric', 'float8pl', 'float8mi', 'float8mul', 'float8div', 'int4pl',
       'now', 'clock_timestamp', 'date_trunc', 'date_part', 'make_date', 'to_timestamp', 'age', 'date',
       'upper', 'lower', 'length', 'substr', 'concat', 'repeat', 'left', 'right', 'md5', 'to_char',
       'array_length', 'array_append', 'array_cat', 'cardinality', 'array_fill', 'array_upper',
       'to_jsonb', 'jsonb_typeof', 'jsonb_extract_path', 'jsonb_array_length', 'jsonb_pretty',
       'sum', 'avg', 'count', 'min', 'max', 'stddev', 'string_agg', 'array_agg', 'bool_and', 'jsonb_agg',
       'row_number', 'rank', 'ntile', 'lag', 'lead', 'first_value', 'percent_rank', 'cume_dist'));
GRANT USAGE ON SCHEMA smith_focus TO smith;
GRANT SELECT ON smith_focus.pg_proc TO smith;
