//! clv_ext: customer-lifetime-value analytics inside PostgreSQL.
//!
//! This crate is the thin SQL layer: it converts SQL values into `clv_math` types, calls the maths,
//! and turns `ClvError`s into SQLSTATEs (all in `errors.rs`). The maths lives in `crates/clv-math`.

pgrx::pg_module_magic!();

mod agg_state;
mod agg_state_io;
mod binary_io;
mod binary_type;
mod charts_sql;
mod cluster_sql;
mod compat;
mod errors;
mod framed;

mod grids;
mod interrupts;
mod kmeans_sql;
mod ml_features_sql;
mod ml_metrics_sql;
mod ml_sql;
mod model_fit;
mod models;
mod named_segments;
mod pipeline;
mod purchase_distribution;
mod rfm_aggregate;
mod rfm_scores;
mod rfm_summary;
mod scoring;
mod simulation;
mod tiers;
mod v1;
mod validation_sql;
mod window;

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    // Tests run inside a PostgreSQL backend; one file per concept, included so they share the
    // `tests` schema that pgrx's harness looks in.
    include!("tests/rfm_tests.rs");
    include!("tests/model_tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
