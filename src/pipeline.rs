//! The one-call pipeline and the holdout validation, written in PL/pgSQL (sql/pipeline.sql): they
//! orchestrate SQL (tables, materialized views, refreshes) and run with the caller's privileges.

pgrx::extension_sql_file!("../sql/pipeline.sql", name = "pipeline", finalize);

// The ML-versus-BTYD comparison (sql/ml.sql) uses the pipeline's helpers, so it comes after them.
pgrx::extension_sql_file!(
    "../sql/ml.sql",
    name = "ml_comparison",
    requires = ["pipeline"]
);

// Cohort analysis (sql/cohorts.sql) checks its columns with the pipeline's helpers.
pgrx::extension_sql_file!(
    "../sql/cohorts.sql",
    name = "cohorts",
    requires = ["pipeline"]
);

// Segment profiles (sql/profiles.sql) read a pipeline schema; the pipeline makes a view of them.
pgrx::extension_sql_file!(
    "../sql/profiles.sql",
    name = "profiles",
    requires = ["pipeline"]
);

// Charts of a pipeline schema and the HTML report (sql/report.sql) use all of the above.
pgrx::extension_sql_file!(
    "../sql/report.sql",
    name = "report",
    requires = ["pipeline", "profiles", "cohorts", "ml_comparison"]
);
