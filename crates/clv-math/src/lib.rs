//! The mathematics of clv_ext, free of PostgreSQL so it can be tested with plain `cargo test`.
//!
//! The pgrx layer (the `clv_ext` crate at the repository root) only converts SQL values into these
//! types and maps [`ClvError`] onto SQLSTATEs.

pub mod error;
pub mod params;
pub mod rfm;

pub use error::ClvError;
