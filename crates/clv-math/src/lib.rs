//! The mathematics of clv_ext, free of PostgreSQL so it can be tested with plain `cargo test`.
//!
//! The pgrx layer (the `clv_ext` crate at the repository root) only converts SQL values into these
//! types and maps [`ClvError`] onto SQLSTATEs.

pub mod error;
pub mod interrupt;
pub mod params;
pub mod rfm;

// Fitting: optimizer and one likelihood per model.
pub mod fit;
pub mod optimize;

// Predictions given parameters, CLV, simulation.
pub mod clv;
pub mod fast_hash;
pub mod predict;
pub mod simulate;
pub mod special;

// Scores, tiers, K-means, named segments, validation metrics.
pub mod segment;

pub use error::ClvError;
pub use params::*;
