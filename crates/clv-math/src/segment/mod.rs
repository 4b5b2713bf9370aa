//! Segmentation: RFM scores and named RFM segments, value tiers, K-means clusters, rule-based named
//! segments over model outputs, and validation metrics of predictions against a holdout period.
//!
//! Every API takes plain collected values and returns cut points, assignments or small structs, so
//! the SQL layer can expose each as an aggregate (collect, then compute) plus a scalar function
//! (apply the stored result to one customer), or as a window function over a whole partition.

pub mod concentration;
pub mod kmeans;
pub mod named;
pub mod rfm_scores;
pub mod tiers;
pub mod validation;

pub use kmeans::{
    assign, fit_kmeans, kmeans_k_sweep, model_silhouette, silhouette_score, KMeansFit, KMeansModel,
    KSweepPoint,
};
pub use named::{named_segment, percent_ranks, CustomerSignals, NamedSegment, SegmentRules};
pub use rfm_scores::{
    quantile_cut_points, rfm_cut_points, rfm_segment, score_all, score_value, RfmSegment,
    ScoreDirection, RFM_BINS,
};
pub use tiers::{
    assign_tier, assign_tiers, check_shares, tier_cut_points, FixedTiers, TierSpec,
    DEFAULT_TIER_LABELS, DEFAULT_TIER_SHARES,
};
pub use validation::{
    calibration_vs_holdout, error_metrics, fnv1a64, in_training_set, in_training_set_str,
    splitmix64, tier_hit_rate, validation_report, CalibrationGroup, CalibrationTail,
    ErrorAccumulator, ErrorMetrics, TierHitRate, ValidationReport, ValidationRow,
    DEFAULT_TOP_SHARE, LIFETIMES_CALIBRATION_GROUPS,
};
