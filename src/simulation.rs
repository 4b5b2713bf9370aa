//! Seeded simulation of customers and transactions from BG/NBD, MBG/NBD or Pareto/NBD parameters
//! with Gamma-Gamma spend: for demos, tests and benchmarks. Same seed, same rows.

use crate::errors::{finite_or_raise, raise_code, OrRaise};
use crate::interrupts::each_row;
use crate::models::*;
use clv_math::simulate::{SimModel, Simulation};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

fn simulation(
    model: SimModel,
    spend: &gamma_gamma_model,
    customers: i64,
    horizon: f64,
    acquisition: f64,
    seed: i64,
) -> Simulation {
    let n_customers = u64::try_from(customers).unwrap_or_else(|_| {
        raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("customers must be >= 0, got {customers}"),
        )
    });
    let sim = Simulation {
        model,
        spend: Some(*spend.params()),
        n_customers,
        acquisition,
        horizon,
        seed: seed as u64,
    };
    sim.validate().or_raise();
    sim
}

type TransactionRows =
    TableIterator<'static, (name!(customer_id, i64), name!(t, f64), name!(amount, f64))>;
type CustomerRows = TableIterator<
    'static,
    (
        name!(customer_id, i64),
        name!(birth, f64),
        name!(frequency, f64),
        name!(recency, f64),
        name!(tenure, f64),
        name!(monetary_value, f64),
        name!(dropout, Option<f64>),
    ),
>;

fn transactions(sim: Simulation) -> TransactionRows {
    TableIterator::new(
        each_row(sim.transactions().or_raise())
            .map(|(id, t, amount)| (id, t, finite_or_raise(amount, "a simulated amount"))),
    )
}

fn customers(sim: Simulation) -> CustomerRows {
    TableIterator::new(each_row(sim.customers().or_raise()).map(|c| {
        (
            c.customer_id,
            c.birth,
            c.x,
            c.tx,
            c.t,
            finite_or_raise(c.mean_spend, "a simulated mean spend"),
            c.dropout.is_finite().then_some(c.dropout),
        )
    }))
}

macro_rules! simulators {
    ($t:ident, $variant:ident, $tx:ident, $cu:ident) => {
        /// Transactions (customer_id, time since the start in model periods, amount), ordered by
        /// customer then time. Births are uniform in [0, acquisition); observation ends at horizon.
        #[pg_extern(immutable, strict, parallel_safe, name = "simulate_transactions")]
        fn $tx(
            model: $t,
            spend: gamma_gamma_model,
            customers: i64,
            horizon: f64,
            acquisition: default!(f64, 0.0),
            seed: default!(i64, 1),
        ) -> TableIterator<'static, (name!(customer_id, i64), name!(t, f64), name!(amount, f64))> {
            transactions(simulation(
                SimModel::$variant(*model.params()),
                &spend,
                customers,
                horizon,
                acquisition,
                seed,
            ))
        }

        /// The same customers summarised at the horizon (frequency, recency, T, mean repeat spend),
        /// plus the latent dropout time (NULL when still alive).
        #[pg_extern(immutable, strict, parallel_safe, name = "simulate_customers")]
        fn $cu(
            model: $t,
            spend: gamma_gamma_model,
            customers: i64,
            horizon: f64,
            acquisition: default!(f64, 0.0),
            seed: default!(i64, 1),
        ) -> TableIterator<
            'static,
            (
                name!(customer_id, i64),
                name!(birth, f64),
                name!(frequency, f64),
                name!(recency, f64),
                name!(tenure, f64),
                name!(monetary_value, f64),
                name!(dropout, Option<f64>),
            ),
        > {
            self::customers(simulation(
                SimModel::$variant(*model.params()),
                &spend,
                customers,
                horizon,
                acquisition,
                seed,
            ))
        }
    };
}

simulators!(
    bgnbd_model,
    BgNbd,
    simulate_bgnbd_transactions,
    simulate_bgnbd_customers
);
simulators!(
    mbgnbd_model,
    MbgNbd,
    simulate_mbgnbd_transactions,
    simulate_mbgnbd_customers
);
simulators!(
    pareto_nbd_model,
    ParetoNbd,
    simulate_pareto_nbd_transactions,
    simulate_pareto_nbd_customers
);
