-- Upgrade path: a database on 0.1.0 (the previous release's install script, tests/upgrade/) keeps
-- working with this release's library, its stored values stay readable, and after
-- ALTER EXTENSION clv_ext UPDATE its functions and aggregates are exactly those of a fresh install.
SET extra_float_digits = 0;
SELECT current_database() AS home \gset
\set fingerprint 'SELECT count(*) AS objects, md5(string_agg(d, E''\n'' ORDER BY d)) AS fp FROM (SELECT CASE WHEN p.prokind = ''a'' THEN p.oid::regprocedure::text || '' aggregate '' || (SELECT concat_ws('' '', a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure, a.aggcombinefn::regprocedure, a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure, a.aggtranstype::regtype, a.aggtransspace, a.aggkind, a.aggfinalmodify) FROM pg_aggregate a WHERE a.aggfnoid = p.oid) ELSE pg_get_functiondef(p.oid) END AS d FROM pg_proc p JOIN pg_depend dep ON dep.classid = ''pg_proc''::regclass AND dep.objid = p.oid AND dep.refclassid = ''pg_extension''::regclass AND dep.deptype = ''e'' JOIN pg_extension e ON e.oid = dep.refobjid AND e.extname = ''clv_ext'') q'

CREATE DATABASE clv_upgrade;
\c clv_upgrade
CREATE EXTENSION clv_ext VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'clv_ext';
-- Values stored under 0.1.0, and 0.1.0's SQL definitions running on the new library.
CREATE TABLE sim AS SELECT * FROM simulate_customers(bgnbd_model(0.243, 4.414, 0.793, 2.426), gamma_gamma_model(6.25, 3.74, 15.44),
                                                     5000, horizon => 52, acquisition => 12, seed => 3);
CREATE TABLE stored AS
SELECT bgnbd_fit(frequency, recency, tenure) AS model, gamma_gamma_fit(frequency, monetary_value) AS spend,
       (SELECT rfm(ts, amount, '2024-06-30') FROM (VALUES (timestamp '2024-01-02', 10.0::float8), ('2024-02-03', 20), ('2024-03-04', 5)) v(ts, amount)) AS summary
FROM sim;
SELECT round(clv(model, spend, 2, 20, 30, 8)::numeric, 6) AS clv_on_010 FROM stored \gset
-- Through every shipped script (0.1.0 -> 0.2.0 -> 0.3.0 ...) to this release.
ALTER EXTENSION clv_ext UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'clv_ext';
-- 0.3.0 gave every type binary send/receive functions: a stored value goes out and back in binary.
SELECT string_agg(t.typname || ':' || (t.typsend <> 0 AND t.typreceive <> 0), ' ' ORDER BY t.typname) AS binary_io
FROM pg_type t JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'clv_ext' WHERE t.typtype = 'b' AND t.typelem = 0;
SELECT round(clv(model, spend, 2, 20, 30, 8)::numeric, 6) = :clv_on_010 AS same_clv_after_update,
       frequency(summary) AS frequency, model::text = (model::text)::bgnbd_model::text AS model_readable
FROM stored;
:fingerprint \gset upgraded_
\c :home
:fingerprint \gset fresh_
SELECT :upgraded_objects = :fresh_objects AS same_count, :'upgraded_fp' = :'fresh_fp' AS same_definitions;
DROP DATABASE clv_upgrade;
