//! Charts as SVG from SQL: each function computes the numbers with the models' own predictions
//! and hands them to `clv_charts` (plotters, SVG backend). Every one returns `text`, a complete
//! `<svg>` element of 760 x 480 px with a title, axis labels with units and a legend; save it
//! with `\copy (SELECT ...) TO 'chart.svg'` or embed it in HTML (`clv_report` does).
//! Errors: 22023 for arguments a chart cannot be drawn from (size limits, unknown unit, arrays
//! of different lengths, non-integer frequencies), 22004 for NULL array elements where a value
//! is required; the models' own checks as in scoring (22023 for impossible histories).

use crate::errors::{no_null_elements, raise_code, OrRaise};
use crate::grids::histories;
use crate::interrupts::each_row;
use crate::models::*;
use clv_charts::{Cell, Guide, Labels, Line, Note};
use clv_math::predict::charts::{alive_path, period_transactions};
use clv_math::predict::PurchaseModel;
use clv_math::rfm::{day_of, TimeUnit};
use clv_math::segment::concentration::concentration;
use clv_math::segment::tiers::TierSpec;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn invalid(msg: String) -> ! {
    raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg)
}

/// "weeks" for 'week': the plural a label needs. Day, week and month are the pipeline's units.
fn unit_plural(unit: &str) -> &'static str {
    match TimeUnit::parse(unit).or_raise() {
        TimeUnit::Day => "days",
        TimeUnit::Week => "weeks",
        TimeUnit::Month => "months",
        TimeUnit::Year => "years",
    }
}

/// 22023 unless the array arguments `names` have the same lengths `lens` (one element per row).
fn same_lengths(names: &[&str], lens: &[usize]) {
    if lens.windows(2).any(|w| w[0] != w[1]) {
        let got: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
        invalid(format!(
            "{} must have the same length, got {}",
            names.join(", "),
            got.join(", ")
        ));
    }
}

fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The grid's cells, each value computed by `value` (frequency, recency).
fn grid_cells(
    tenure: f64,
    max_frequency: i32,
    max_recency: f64,
    recency_steps: i32,
    value: impl Fn(f64, f64) -> f64,
) -> (Vec<Cell>, f64) {
    let cells = each_row(histories(tenure, max_frequency, max_recency, recency_steps))
        .map(|(f, r)| Cell {
            x: r,
            y: f as f64,
            value: value(f as f64, r),
        })
        .collect();
    let step = if max_recency > 0.0 {
        max_recency / recency_steps as f64
    } else {
        1.0
    };
    (cells, step)
}

fn timestamp_days(times: Vec<Option<Timestamp>>) -> Vec<i32> {
    let mut days: Vec<i32> = no_null_elements(Some(times), "purchase_times")
        .into_iter()
        .map(|t| {
            if !t.is_finite() {
                invalid("purchase times must be finite, got infinity".into());
            }
            day_of(pg_epoch_usecs(t))
        })
        .collect();
    if days.is_empty() {
        invalid("purchase_times is empty: a customer's history needs a first purchase".into());
    }
    if days.len() > clv_charts::MAX_ELEMENTS {
        invalid(format!(
            "purchase_times has {} elements, more than the {} one chart draws",
            days.len(),
            clv_charts::MAX_ELEMENTS
        ));
    }
    days.sort_unstable();
    days.dedup();
    days
}

/// Microseconds since 2000-01-01 (PostgreSQL's epoch, as clv_math::rfm counts days).
fn pg_epoch_usecs(t: Timestamp) -> i64 {
    pg_sys::Timestamp::from(t)
}

fn period_rows(
    model: &dyn PurchaseModel,
    frequency: Vec<Option<f64>>,
    tenure: Vec<Option<f64>>,
    max_frequency: i32,
) -> (Vec<f64>, Vec<f64>) {
    if !(1..=100).contains(&max_frequency) {
        invalid(format!(
            "max_frequency must be between 1 and 100, got {max_frequency}"
        ));
    }
    period_transactions(
        model,
        &no_null_elements(Some(frequency), "frequency"),
        &no_null_elements(Some(tenure), "tenure"),
        max_frequency as u32,
    )
    .or_raise()
}

/// The customer's distinct purchase days, their P(alive) path (T in units, P(alive)) and the
/// unit's length in days.
fn alive_rows(
    model: &dyn PurchaseModel,
    purchase_times: Vec<Option<Timestamp>>,
    observation_end: Timestamp,
    unit: &str,
) -> (Vec<i32>, Vec<(f64, f64)>, f64) {
    let unit_days = TimeUnit::parse(unit).or_raise().days();
    let days = timestamp_days(purchase_times);
    if !observation_end.is_finite() {
        invalid("observation_end must be finite, got infinity".into());
    }
    let end_day = day_of(pg_epoch_usecs(observation_end));
    let path = alive_path(
        &mut |f, r, t| {
            pgrx::check_for_interrupts!();
            model.p_alive(f, r, t)
        },
        &days,
        end_day,
        unit_days,
        2000,
    )
    .or_raise();
    (days, path, unit_days)
}

macro_rules! model_charts {
    ($t:ident, $fr:ident, $pa:ident, $pt:ident, $ptd:ident, $hist:ident, $histd:ident, $name:literal) => {
        /// lifetimes' `plot_frequency_recency_matrix`: expected purchases in the next `t` periods
        /// for every (frequency, recency) history of a customer of age `tenure`, as a heatmap
        /// (frequency down, recency across; histories no customer can have are blank). `t`,
        /// `tenure`, `max_recency` in `unit`s (day, week or month: labels only, the model's
        /// own unit); grid as `expected_purchases_grid`, at most 200,000 cells.
        #[pg_extern(immutable, strict, parallel_safe, name = "frequency_recency_chart")]
        fn $fr(
            model: $t,
            t: f64,
            tenure: f64,
            max_frequency: i32,
            max_recency: f64,
            recency_steps: default!(i32, 20),
            unit: default!(&str, "'week'"),
        ) -> String {
            let units = unit_plural(unit);
            let p = *model.params();
            p.conditional_expected_purchases(t, 0.0, 0.0, tenure)
                .or_raise();
            let (cells, step) =
                grid_cells(tenure, max_frequency, max_recency, recency_steps, |f, r| {
                    p.conditional_expected_purchases(t, f, r, tenure).or_raise()
                });
            let title = format!(
                "{}: expected purchases in the next {} {units} (customer age {} {units})",
                $name,
                num(t),
                num(tenure)
            );
            let x = format!("recency: age at last purchase ({units})");
            clv_charts::heatmap(
                Labels {
                    title: &title,
                    x: &x,
                    y: "frequency (repeat purchases)",
                },
                "purchases",
                &cells,
                step,
                1.0,
            )
            .or_raise()
        }

        /// lifetimes' `plot_probability_alive_matrix`: P(alive) for every (frequency, recency)
        /// history of a customer of age `tenure` (in `unit`s), as a heatmap over [0, 1].
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive_chart")]
        fn $pa(
            model: $t,
            tenure: f64,
            max_frequency: i32,
            max_recency: f64,
            recency_steps: default!(i32, 20),
            unit: default!(&str, "'week'"),
        ) -> String {
            let units = unit_plural(unit);
            let p = *model.params();
            let (cells, step) =
                grid_cells(tenure, max_frequency, max_recency, recency_steps, |f, r| {
                    p.p_alive(f, r, tenure).or_raise()
                });
            let title = format!(
                "{}: probability a customer is alive (customer age {} {units})",
                $name,
                num(tenure)
            );
            let x = format!("recency: age at last purchase ({units})");
            clv_charts::heatmap(
                Labels {
                    title: &title,
                    x: &x,
                    y: "frequency (repeat purchases)",
                },
                "P(alive)",
                &cells,
                step,
                1.0,
            )
            .or_raise()
        }

        /// The numbers of `period_transactions_chart`: customers by repeat purchases, one row per
        /// bucket (`frequency` 0 .. max_frequency, the last meaning "max_frequency or more"):
        /// `actual_customers` counted from `frequency`, `expected_customers` the model's
        /// expectation for customers of the ages `tenure`, sum_i P(X(T_i) = k) (lifetimes
        /// simulates it). Both sum to the number of customers.
        #[pg_extern(immutable, strict, parallel_safe, name = "period_transactions")]
        fn $ptd(
            model: $t,
            frequency: Vec<Option<f64>>,
            tenure: Vec<Option<f64>>,
            max_frequency: default!(i32, 7),
        ) -> TableIterator<
            'static,
            (
                name!(frequency, i32),
                name!(or_more, bool),
                name!(actual_customers, f64),
                name!(expected_customers, f64),
            ),
        > {
            let (actual, expected) = period_rows(model.params(), frequency, tenure, max_frequency);
            TableIterator::new(
                actual
                    .into_iter()
                    .zip(expected)
                    .enumerate()
                    .map(move |(k, (a, e))| (k as i32, k as i32 == max_frequency, a, e)),
            )
        }

        /// lifetimes' `plot_period_transactions`: customers by number of repeat purchases
        /// (0 .. max_frequency - 1 and "max_frequency+"), actual against the model's expectation
        /// for customers of the same ages. One element per customer in `frequency` and `tenure`
        /// (e.g. `array_agg(frequency)`, `array_agg(tenure)` of a pipeline's `clv_customers`).
        #[pg_extern(immutable, strict, parallel_safe, name = "period_transactions_chart")]
        fn $pt(
            model: $t,
            frequency: Vec<Option<f64>>,
            tenure: Vec<Option<f64>>,
            max_frequency: default!(i32, 7),
        ) -> String {
            let (actual, expected) = period_rows(model.params(), frequency, tenure, max_frequency);
            let categories: Vec<String> = (0..=max_frequency)
                .map(|k| {
                    if k == max_frequency {
                        format!("{k}+")
                    } else {
                        k.to_string()
                    }
                })
                .collect();
            let title = format!("{}: customers by number of repeat purchases", $name);
            clv_charts::grouped_bars(
                Labels {
                    title: &title,
                    x: "repeat purchases per customer (frequency)",
                    y: "customers",
                },
                &categories,
                &[("actual".into(), actual), ("model".into(), expected)],
            )
            .or_raise()
        }

        /// The numbers of `p_alive_history_chart`: one customer's P(alive) at day resolution from
        /// the first purchase (`t` = 0, in `unit`s) to `observation_end`, at most 2,000 evenly
        /// spaced days plus each purchase day and the day before it, with the frequency so far.
        /// The last row is the customer's P(alive) at `observation_end` (as `p_alive` of their
        /// RFM summary in the pipeline's semantics).
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive_history")]
        fn $histd(
            model: $t,
            purchase_times: Vec<Option<Timestamp>>,
            observation_end: Timestamp,
            unit: default!(&str, "'week'"),
        ) -> TableIterator<'static, (name!(t, f64), name!(p_alive, f64))> {
            let (_, path, _) = alive_rows(model.params(), purchase_times, observation_end, unit);
            TableIterator::new(path)
        }

        /// lifetimes' `plot_history_alive`: one customer's P(alive) from the first purchase to
        /// `observation_end`, with a dashed line at each purchase day. `purchase_times`: the
        /// customer's transaction times (any order; same-day purchases count once, as in the
        /// pipeline); x axis in `unit`s since the first purchase, the model's unit.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive_history_chart")]
        fn $hist(
            model: $t,
            purchase_times: Vec<Option<Timestamp>>,
            observation_end: Timestamp,
            unit: default!(&str, "'week'"),
        ) -> String {
            let units = unit_plural(unit);
            let (days, path, unit_days) =
                alive_rows(model.params(), purchase_times, observation_end, unit);
            let guides: Vec<Guide> = days
                .iter()
                .map(|&d| Guide {
                    x: (d - days[0]) as f64 / unit_days,
                    label: None,
                })
                .collect();
            let title = format!(
                "{}: P(alive) over time ({} purchase days)",
                $name,
                days.len()
            );
            let x = format!("time since first purchase ({units})");
            clv_charts::lines(
                Labels {
                    title: &title,
                    x: &x,
                    y: "P(alive)",
                },
                &[Line {
                    name: "P(alive)".into(),
                    points: path,
                    markers: false,
                }],
                &guides,
                &[],
                None,
                Some((0.0, 1.02)),
            )
            .or_raise()
        }
    };
}

model_charts!(
    bgnbd_model,
    bgnbd_frequency_recency_chart,
    bgnbd_p_alive_chart,
    bgnbd_period_transactions_chart,
    bgnbd_period_transactions,
    bgnbd_p_alive_history_chart,
    bgnbd_p_alive_history,
    "BG/NBD"
);
model_charts!(
    pareto_nbd_model,
    pareto_nbd_frequency_recency_chart,
    pareto_nbd_p_alive_chart,
    pareto_nbd_period_transactions_chart,
    pareto_nbd_period_transactions,
    pareto_nbd_p_alive_history_chart,
    pareto_nbd_p_alive_history,
    "Pareto/NBD"
);
model_charts!(
    mbgnbd_model,
    mbgnbd_frequency_recency_chart,
    mbgnbd_p_alive_chart,
    mbgnbd_period_transactions_chart,
    mbgnbd_period_transactions,
    mbgnbd_p_alive_history_chart,
    mbgnbd_p_alive_history,
    "MBG/NBD"
);

/// lifetimes' `plot_calibration_purchases_vs_holdout_purchases`: mean purchases in the holdout
/// period by purchases in the calibration period, predicted and actual (the columns of
/// `clv_calibration_vs_holdout`, one element per calibration frequency).
#[pg_extern(immutable, strict, parallel_safe)]
fn calibration_vs_holdout_chart(
    frequency_cal: Vec<Option<f64>>,
    mean_predicted: Vec<Option<f64>>,
    mean_actual: Vec<Option<f64>>,
) -> String {
    same_lengths(
        &["frequency_cal", "mean_predicted", "mean_actual"],
        &[frequency_cal.len(), mean_predicted.len(), mean_actual.len()],
    );
    let x = no_null_elements(Some(frequency_cal), "frequency_cal");
    let top = mean_predicted
        .iter()
        .chain(&mean_actual)
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let line = |name: &str, y: Vec<Option<f64>>| {
        let mut points: Vec<(f64, f64)> = x
            .iter()
            .copied()
            .zip(no_null_elements(Some(y), name))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Line {
            name: name.replace('_', " "),
            points,
            markers: true,
        }
    };
    clv_charts::lines(
        Labels {
            title: "Actual vs predicted purchases in the holdout period",
            x: "purchases in the calibration period (frequency)",
            y: "mean purchases in the holdout period",
        },
        &[
            line("mean_predicted", mean_predicted),
            line("mean_actual", mean_actual),
        ],
        &[],
        &[],
        None,
        // From 0 purchases: the gap between the lines reads true.
        Some((0.0, top * 1.08)),
    )
    .or_raise()
}

/// The "80/20" curve: customers ranked by predicted CLV, highest first, against the cumulative
/// share of total CLV they hold, with a dashed line at each tier cut point (clv_segment's tiers,
/// top tier first) labelled with that tier's share of CLV, the diagonal of equal value, and the
/// Gini coefficient in the title. NULL elements (customers without a CLV) are left out; CLV
/// values must be >= 0.
#[pg_extern(immutable, strict, parallel_safe)]
fn clv_concentration_chart(
    clv: Vec<Option<f64>>,
    tier_shares: default!(Vec<Option<f64>>, "ARRAY[0.2, 0.5, 0.3]"),
    tier_labels: default!(Vec<Option<String>>, "ARRAY['high', 'medium', 'low']"),
) -> String {
    let spec = TierSpec::new(
        no_null_elements(Some(tier_shares), "tier_shares"),
        no_null_elements(Some(tier_labels), "tier_labels"),
    )
    .or_raise();
    let values: Vec<f64> = clv.into_iter().flatten().collect();
    let c = concentration(&values, 1000).or_raise();
    // A dashed line at each cut and, centred in each tier's band in a strip below 0 (where
    // neither curve goes), the tier's name and its share of the CLV.
    let mut guides = Vec::new();
    let mut notes = Vec::new();
    let (mut from, mut held) = (0.0, 0.0);
    for (share, label) in spec.shares().iter().zip(spec.labels()) {
        let to = (from + share).min(1.0);
        let at = c.value_share_at(to);
        if to < 1.0 - 1e-9 {
            guides.push(Guide {
                x: 100.0 * to,
                label: None,
            });
        }
        notes.push(Note {
            x: 50.0 * (from + to),
            y: -4.5,
            text: format!("{label}: {:.0}% of CLV", at - held),
        });
        from = to;
        held = at;
    }
    notes.push(Note {
        x: 78.0,
        y: 60.0,
        text: "equal CLV for everyone".into(),
    });
    let gini = c
        .gini
        .map(|g| format!("Gini {g:.2}"))
        .unwrap_or_else(|| "all CLV zero".into());
    let title = format!(
        "Share of predicted CLV by customer rank ({} customers, {gini})",
        c.customers
    );
    clv_charts::lines(
        Labels {
            title: &title,
            x: "customers, highest CLV first (% of customers)",
            y: "cumulative share of predicted CLV (%)",
        },
        // No legend: the diagonal carries its own words, so nothing covers the tier labels.
        &[
            Line {
                name: String::new(),
                points: c.points,
                markers: false,
            },
            Line {
                name: String::new(),
                points: vec![(0.0, 0.0), (100.0, 100.0)],
                markers: false,
            },
        ],
        &guides,
        &notes,
        Some((0.0, 100.0)),
        Some((-9.0, 102.0)),
    )
    .or_raise()
}

/// Tier migration between two pipeline runs as a matrix: customers by tier in the earlier run
/// (rows, with "(new)" for customers who were not there) and in the later one (columns, "(gone)"
/// for customers who left), each cell shaded by its share of its row. One element per
/// (from_tier, to_tier) pair, as in the pipeline's `clv_tier_migration` view.
#[pg_extern(immutable, strict, parallel_safe)]
fn tier_migration_chart(
    from_tier: Vec<Option<String>>,
    to_tier: Vec<Option<String>>,
    customers: Vec<Option<i64>>,
) -> String {
    let n = from_tier.len();
    same_lengths(
        &["from_tier", "to_tier", "customers"],
        &[n, to_tier.len(), customers.len()],
    );
    let from = no_null_elements(Some(from_tier), "from_tier");
    let to = no_null_elements(Some(to_tier), "to_tier");
    let counts = no_null_elements(Some(customers), "customers");
    if n == 0 {
        invalid("there is no migration to draw: the arrays are empty (a pipeline schema has migration after its second run)".into());
    }
    // Tiers top first as clv_segment names them, other labels in their first order, and the
    // customers who came or went last.
    let order = |names: &[String]| {
        let mut v: Vec<String> = Vec::new();
        for known in ["high", "medium", "low"] {
            if names.iter().any(|s| s == known) {
                v.push(known.into());
            }
        }
        for s in names {
            if !v.contains(s) && s != "(new)" && s != "(gone)" {
                v.push(s.clone());
            }
        }
        for last in ["(new)", "(gone)"] {
            if names.iter().any(|s| s == last) {
                v.push(last.into());
            }
        }
        v
    };
    let rows = order(&from);
    let columns = order(&to);
    let mut matrix = vec![vec![0.0; columns.len()]; rows.len()];
    for ((f, t), c) in from.iter().zip(&to).zip(&counts) {
        if *c < 0 {
            invalid(format!("customers must be >= 0, got {c}"));
        }
        let i = rows.iter().position(|r| r == f).unwrap();
        let j = columns.iter().position(|r| r == t).unwrap();
        matrix[i][j] += *c as f64;
    }
    clv_charts::count_matrix(
        Labels {
            title: "Tier migration between the last two runs (customers, % of the earlier tier)",
            x: "tier in the later run",
            y: "tier in the earlier run",
        },
        &rows,
        &columns,
        &matrix,
    )
    .or_raise()
}
