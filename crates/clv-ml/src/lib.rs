//! Supervised learning for customer lifetime value, without PostgreSQL: the features and labels
//! of a customer (`features`), the training rows an aggregate collects (`rows`), the learners
//! (`learners`, over linfa-linear, linfa-logistic, smartcore and forust-ml), the stored model
//! (`model`), validation metrics (`metrics`) and a training runner that a host can cancel
//! (`runner`); and the unsupervised methods beside K-means - DBSCAN, agglomerative clustering,
//! PCA (`unsupervised`).
//!
//! The learners are libraries, not ours: this crate chooses them, fixes their hyperparameters
//! and seeds, orders the rows so a model depends on the set of rows only, and reports errors as
//! `clv_math::ClvError` so the SQL layer maps them to SQLSTATEs in one place.

pub mod features;
pub mod learners;
pub mod metrics;
pub mod model;
pub mod options;
pub mod rows;
pub mod runner;
pub mod unsupervised;

pub use clv_math::ClvError;
pub type Result<T> = std::result::Result<T, ClvError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(ClvError::InvalidParameter(msg.into()))
}
