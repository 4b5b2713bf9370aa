//! The conditional purchase distribution in SQL: P(X(t) = n | frequency, recency, T) for every
//! purchase model, as a scalar (`purchase_probability` with a history) and as rows over n
//! (`purchase_distribution`). The maths and its derivation: `clv_math::predict::distribution`.

use crate::errors::{nonnegative, OrRaise};
use crate::models::*;
use clv_math::predict::distribution::conditional_distribution;
use clv_math::predict::PurchaseModel;
use pgrx::prelude::*;

macro_rules! distribution_functions {
    ($t:ident, $pp:ident, $pd:ident) => {
        /// P(X(t) = n | frequency, recency, T): probability that a customer with this history
        /// makes exactly `n` repeat purchases in the next `t` periods (same time unit as the
        /// history; BG/BB: opportunities). lifetimes' Pareto/NBD
        /// `conditional_probability_of_n_purchases_up_to_time`; 22023 for an impossible history,
        /// a negative or non-finite horizon, or n < 0.
        #[pg_extern(immutable, strict, parallel_safe, name = "purchase_probability")]
        fn $pp(model: $t, n: i32, t: f64, frequency: f64, recency: f64, tenure: f64) -> f64 {
            model
                .params()
                .conditional_prob_purchases(nonnegative("n", n), t, frequency, recency, tenure)
                .or_raise()
        }

        /// The distribution of the number of repeat purchases in the next `t` periods given the
        /// history: one row per n = 0, 1, ... until less than 1e-10 probability is left, with
        /// the running sum. Its mean is `expected_purchases(model, t, frequency, recency, tenure)`.
        /// More than `max_n` + 1 rows needed: 22023 (raise `max_n` or shorten `t`).
        #[pg_extern(immutable, strict, parallel_safe, name = "purchase_distribution")]
        fn $pd(
            model: $t,
            t: f64,
            frequency: f64,
            recency: f64,
            tenure: f64,
            max_n: default!(i32, 10000),
        ) -> TableIterator<
            'static,
            (
                name!(n, i32),
                name!(probability, f64),
                name!(cumulative_probability, f64),
            ),
        > {
            let d = conditional_distribution(
                model.params(),
                t,
                frequency,
                recency,
                tenure,
                nonnegative("max_n", max_n),
            )
            .or_raise();
            let mut total = 0.0;
            TableIterator::new(d.into_iter().enumerate().map(move |(n, p)| {
                total += p;
                (n as i32, p, total.min(1.0))
            }))
        }
    };
}

distribution_functions!(
    bgnbd_model,
    bgnbd_conditional_purchase_probability,
    bgnbd_purchase_distribution
);
distribution_functions!(
    pareto_nbd_model,
    pareto_nbd_conditional_purchase_probability,
    pareto_nbd_purchase_distribution
);
distribution_functions!(
    mbgnbd_model,
    mbgnbd_conditional_purchase_probability,
    mbgnbd_purchase_distribution
);
distribution_functions!(
    bgbb_model,
    bgbb_conditional_purchase_probability,
    bgbb_purchase_distribution
);
