-- Binary send/receive for every type: COPY (FORMAT binary) out and back in gives identical values;
-- every type has both functions; bad bytes are refused with 22P03 (invalid_binary_representation).
SET extra_float_digits = 0;
\getenv data CLV_TEST_DATA
\set binfile :data '/binary_io_roundtrip.bin'
CREATE TABLE typed AS
SELECT (SELECT rfm(ts, amount, '2024-06-30') FROM (VALUES (timestamp '2024-01-02', 10.0::float8), ('2024-02-03', 20), ('2024-03-04', 5)) v(ts, amount)) AS summary,
       (SELECT rfm_holdout(ts, amount, '2024-02-28', '2024-06-30', 'week') FROM (VALUES (timestamp '2024-01-02', 10.0::float8), ('2024-02-03', 20), ('2024-03-04', 5)) v(ts, amount)) AS split,
       bgnbd_model(0.243, 4.414, 0.793, 2.426) AS bgnbd,
       pareto_nbd_model(0.553, 10.578, 0.606, 11.669) AS pareto_nbd,
       mbgnbd_model(0.525, 6.183, 0.891, 1.614) AS mbgnbd,
       bgbb_model(1.204, 0.750, 0.657, 2.783) AS bgbb,
       gamma_gamma_model(6.25, 3.74, 15.44) AS spend,
       (SELECT kmeans_fit(ARRAY[x, x * x], 2, 7) FROM generate_series(1, 20) x) AS clusters;
INSERT INTO typed (summary, bgnbd, spend)
SELECT rfm(ts, amount, '2024-12-31'), bgnbd_fit(frequency, recency, tenure), gamma_gamma_fit(frequency, monetary_value)
FROM (SELECT * FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44), 500, 52, 12, 3)) c,
     LATERAL (VALUES (timestamp '2024-05-05', 1.5::float8)) v(ts, amount);
COPY typed TO :'binfile' (FORMAT binary);
CREATE TABLE typed_back (LIKE typed);
COPY typed_back FROM :'binfile' (FORMAT binary);
SELECT count(*) AS rows,
       bool_and(a.summary::text IS NOT DISTINCT FROM b.summary::text AND a.split::text IS NOT DISTINCT FROM b.split::text
                AND a.bgnbd::text IS NOT DISTINCT FROM b.bgnbd::text AND a.pareto_nbd::text IS NOT DISTINCT FROM b.pareto_nbd::text
                AND a.mbgnbd::text IS NOT DISTINCT FROM b.mbgnbd::text AND a.bgbb::text IS NOT DISTINCT FROM b.bgbb::text
                AND a.spend::text IS NOT DISTINCT FROM b.spend::text AND a.clusters::text IS NOT DISTINCT FROM b.clusters::text) AS identical
FROM (SELECT row_number() OVER () AS i, * FROM typed) a JOIN (SELECT row_number() OVER () AS i, * FROM typed_back) b USING (i);
-- Read back, the values still score: the same CLV and the same summary fields.
SELECT round(clv(b.bgnbd, b.spend, 2, 20, 30, 8)::numeric, 6) = round(clv(a.bgnbd, a.spend, 2, 20, 30, 8)::numeric, 6) AS same_clv,
       frequency(b.summary) = frequency(a.summary) AS same_frequency, frequency_holdout(b.split) AS frequency_holdout
FROM (SELECT * FROM typed LIMIT 1) a, (SELECT * FROM typed_back LIMIT 1) b;
-- The wire form is the versioned stored form: rfm_summary's layout starts with "RFM" and its
-- version byte, a model is its JSON with a "version" field.
SELECT substr(rfm_summary_send(summary), 1, 4) AS summary_header,
       convert_from(bgnbd_model_send(bgnbd), 'UTF8')::jsonb ->> 'version' AS model_version
FROM typed LIMIT 1;
-- Receive checks what it reads: bytes written as bytea and read back as a type (a binary COPY
-- frames every column the same way) are accepted when they are a valid stored form and refused
-- with 22P03 otherwise - garbage, a truncated summary, a model from a future format version.
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE TABLE wire (label text, bytes bytea);
INSERT INTO wire
SELECT 'valid summary', rfm_summary_send(summary) FROM typed LIMIT 1;
INSERT INTO wire VALUES
    ('garbage', '\x00ff00ff'),
    ('empty', ''),
    ('truncated summary', (SELECT substr(rfm_summary_send(summary), 1, 20) FROM typed LIMIT 1)),
    ('valid model', convert_to(bgnbd_model(0.243, 4.414, 0.793, 2.426)::text, 'UTF8')),
    ('future model', convert_to('{"version":99,"model":"bgnbd","params":{"r":0.243,"alpha":4.414,"a":0.793,"b":2.426}}', 'UTF8')),
    ('model with bad parameter', convert_to('{"version":1,"model":"bgnbd","params":{"r":-1,"alpha":4.414,"a":0.793,"b":2.426}}', 'UTF8'));
CREATE TABLE as_summary (s rfm_summary);
CREATE TABLE as_model (m bgnbd_model);
SELECT label,
       pg_temp.error_of(format('COPY (SELECT bytes FROM wire WHERE label = %L) TO %L (FORMAT binary); COPY as_summary FROM %L (FORMAT binary)',
                               label, :'binfile', :'binfile')) AS as_rfm_summary,
       pg_temp.error_of(format('COPY (SELECT bytes FROM wire WHERE label = %L) TO %L (FORMAT binary); COPY as_model FROM %L (FORMAT binary)',
                               label, :'binfile', :'binfile')) AS as_bgnbd_model
FROM wire ORDER BY label;
SELECT frequency(s) FROM as_summary;
SELECT m::jsonb -> 'params' AS params FROM as_model;

-- Every type of the extension has both functions.
SELECT t.typname, t.typsend::text, t.typreceive::text
FROM pg_type t JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clv_ext' WHERE t.typtype = 'b' AND t.typelem = 0 ORDER BY 1;  -- not the array types (PostgreSQL 18 lists them)
