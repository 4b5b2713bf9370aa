//! Plot-ready grids for a BI tool: expected purchases and P(alive) over a (frequency, recency) grid
//! for a customer of a given tenure, the data behind lifetimes' `plot_frequency_recency_matrix` and
//! `plot_probability_alive_matrix`.
//!
//! Frequency runs over 0..max_frequency, recency over `max_recency * i / recency_steps` for
//! i = 0..recency_steps. Only histories that can exist are returned: recency <= tenure, a
//! customer without repeat purchases (frequency 0) has recency 0, and one with repeat purchases
//! has recency > 0 (lifetimes' matrix also plots recency 0 for frequency > 0, a history no
//! customer can have; the scoring functions refuse it with 22023). lifetimes' own matrix is
//! `tenure = max_recency` with `recency_steps = max_recency` (integer recencies).

use crate::errors::{raise_code, OrRaise};
use crate::interrupts::each_row;
use crate::models::*;
use clv_math::error::Num;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Largest grid accepted, in cells (frequencies x recencies before dropping impossible histories).
pub const MAX_GRID_CELLS: i64 = 1_000_000;

fn invalid(msg: String) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

/// The (frequency, recency) histories of the grid, in frequency then recency order.
pub(crate) fn histories(
    tenure: f64,
    max_frequency: i32,
    max_recency: f64,
    recency_steps: i32,
) -> impl Iterator<Item = (i32, f64)> {
    if !(tenure.is_finite() && tenure >= 0.0) {
        invalid(format!(
            "tenure must be a finite number >= 0, got {}",
            Num(tenure)
        ));
    }
    if max_frequency < 0 {
        invalid(format!("max_frequency must be >= 0, got {max_frequency}"));
    }
    if !(max_recency.is_finite() && max_recency >= 0.0) {
        invalid(format!(
            "max_recency must be a finite number >= 0, got {}",
            Num(max_recency)
        ));
    }
    if recency_steps < 1 {
        invalid(format!("recency_steps must be >= 1, got {recency_steps}"));
    }
    let cells = (max_frequency as i64 + 1) * (recency_steps as i64 + 1);
    if cells > MAX_GRID_CELLS {
        invalid(format!(
            "the grid would have {cells} cells ({} frequencies x {} recencies), more than {MAX_GRID_CELLS}: lower max_frequency or recency_steps",
            max_frequency as i64 + 1,
            recency_steps as i64 + 1
        ));
    }
    (0..=max_frequency).flat_map(move |f| {
        (0..=recency_steps).filter_map(move |i| {
            let r = if i == recency_steps {
                max_recency
            } else {
                max_recency * i as f64 / recency_steps as f64
            };
            // A repeat purchase comes after the first: recency > 0 exactly when frequency > 0.
            (r <= tenure && ((f > 0 && r > 0.0) || (f == 0 && i == 0))).then_some((f, r))
        })
    })
}

macro_rules! grids {
    ($t:ident, $ep:ident, $pa:ident) => {
        /// Expected purchases in the next `t` periods over the (frequency, recency) grid, for a
        /// customer of age `tenure`.
        #[pg_extern(immutable, strict, parallel_safe, name = "expected_purchases_grid")]
        fn $ep(
            model: $t,
            t: f64,
            tenure: f64,
            max_frequency: i32,
            max_recency: f64,
            recency_steps: default!(i32, 20),
        ) -> TableIterator<
            'static,
            (
                name!(frequency, i32),
                name!(recency, f64),
                name!(expected_purchases, f64),
            ),
        > {
            let p = *model.params();
            let cells = histories(tenure, max_frequency, max_recency, recency_steps);
            // Checked once here, so an invalid horizon fails even when the grid is empty.
            p.conditional_expected_purchases(t, 0.0, 0.0, tenure)
                .or_raise();
            TableIterator::new(each_row(cells).map(move |(f, r)| {
                (
                    f,
                    r,
                    p.conditional_expected_purchases(t, f as f64, r, tenure)
                        .or_raise(),
                )
            }))
        }

        /// P(alive) over the (frequency, recency) grid, for a customer of age `tenure`.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive_grid")]
        fn $pa(
            model: $t,
            tenure: f64,
            max_frequency: i32,
            max_recency: f64,
            recency_steps: default!(i32, 20),
        ) -> TableIterator<
            'static,
            (
                name!(frequency, i32),
                name!(recency, f64),
                name!(p_alive, f64),
            ),
        > {
            let p = *model.params();
            TableIterator::new(
                each_row(histories(tenure, max_frequency, max_recency, recency_steps))
                    .map(move |(f, r)| (f, r, p.p_alive(f as f64, r, tenure).or_raise())),
            )
        }
    };
}

grids!(
    bgnbd_model,
    bgnbd_expected_purchases_grid,
    bgnbd_p_alive_grid
);
grids!(
    pareto_nbd_model,
    pareto_nbd_expected_purchases_grid,
    pareto_nbd_p_alive_grid
);
grids!(
    mbgnbd_model,
    mbgnbd_expected_purchases_grid,
    mbgnbd_p_alive_grid
);
