-- The cluster scripts/citus.sh starts: a coordinator (no shards) and two workers; clv_ext created
-- on the coordinator only and propagated by Citus to the workers, in the installed version; and
-- the state types of clv_ext's aggregates, on every node. Citus pushes an aggregate down as
-- partial states (worker_partial_agg on the workers, coord_combine_agg on the coordinator) only
-- when it has a combine function and its state type is not a pseudo-type such as `internal`
-- (multi_logical_optimizer.c); the partial states travel as text (the state type's output and
-- input functions). Helpers (citus_test.*): tests/citus/helpers.sql.
SELECT count(*) FILTER (WHERE groupid = 0 AND NOT shouldhaveshards) AS coordinator,
       count(*) FILTER (WHERE groupid > 0 AND shouldhaveshards AND isactive) AS workers
FROM pg_dist_node;
SELECT extname, extversion = (SELECT default_version FROM pg_available_extensions WHERE name = extname) AS installed_version
FROM pg_extension WHERE extname IN ('citus', 'clv_ext') ORDER BY extname;
SELECT row_number() OVER (ORDER BY nodeport) AS worker, success, result AS clv_ext_installed_version
FROM run_command_on_workers($$SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'clv_ext')
                              FROM pg_extension WHERE extname = 'clv_ext'$$)
ORDER BY nodeport;
-- Creating it on a worker as well fails: it is there already.
SELECT row_number() OVER (ORDER BY nodeport) AS worker, success, result
FROM run_command_on_workers($$CREATE EXTENSION clv_ext$$) ORDER BY nodeport;

-- clv_ext's aggregates by state type, and those without a combine function.
CREATE VIEW clv_aggregates AS
SELECT a.aggfnoid::regprocedure::text AS aggregate, a.aggtranstype::regtype::text AS state_type, t.typtype,
       a.aggcombinefn <> 0 AS has_combine
FROM pg_aggregate a
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = a.aggfnoid AND d.deptype = 'e'
JOIN pg_type t ON t.oid = a.aggtranstype
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'clv_ext');
SELECT state_type, typtype, count(*) AS aggregates, count(*) FILTER (WHERE NOT has_combine) AS without_combine
FROM clv_aggregates GROUP BY 1, 2 ORDER BY 1;
SELECT aggregate FROM clv_aggregates WHERE typtype = 'p' OR NOT has_combine ORDER BY 1;
-- The same on the workers.
SELECT row_number() OVER (ORDER BY nodeport) AS worker, success, result AS pseudo_type_states
FROM run_command_on_workers($$SELECT count(*) FROM pg_aggregate a
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = a.aggfnoid AND d.deptype = 'e'
    JOIN pg_type t ON t.oid = a.aggtranstype
    WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'clv_ext') AND t.typtype = 'p'$$)
ORDER BY nodeport;
