//! The one-call pipeline and the holdout validation, written in PL/pgSQL (sql/pipeline.sql): they
//! orchestrate SQL (tables, materialized views, refreshes) and run with the caller's privileges.

pgrx::extension_sql_file!("../sql/pipeline.sql", name = "pipeline", finalize);

// The ML-versus-BTYD comparison (sql/ml.sql) uses the pipeline's helpers, so it comes after them.
pgrx::extension_sql_file!(
    "../sql/ml.sql",
    name = "ml_comparison",
    requires = ["pipeline"]
);
