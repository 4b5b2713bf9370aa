//! Row-level scoring: the same function names for every model, `IMMUTABLE STRICT PARALLEL SAFE`.
//! Each is a one-liner over the maths crate; models are decoded once per distinct value (see
//! models.rs), so scoring a million rows pays for the arithmetic only.

use crate::errors::{raise_code, OrRaise};
use crate::models::*;
use clv_math::clv::customer_lifetime_value;
use clv_math::ModelParams;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;
use crate::fast_hash::FxBuild;

/// Memo of CLV results: many customers share (frequency, recency, T, spend) - a million customers
/// summarised in days have ~150k distinct patterns - and CLV is the costly score (a hypergeometric
/// function per month). The key holds every input, model parameters included, so a hit is always
/// the value the computation would give. Bounded: cleared when it reaches MEMO_LIMIT entries.
type MemoKey = [u64; 16];
const MEMO_LIMIT: usize = 1 << 21;

thread_local! {
    static CLV_MEMO: RefCell<HashMap<MemoKey, f64, FxBuild>> = RefCell::new(HashMap::default());
}

fn memo_key(model: &[f64], spend: &[f64], inputs: [f64; 4], months: i32, rate: f64, ppm: f64) -> MemoKey {
    let mut k = [0u64; 16];
    let tail = [rate, ppm, months as f64];
    let all = model.iter().chain(spend).chain(&inputs).chain(&tail);
    for (slot, v) in k.iter_mut().zip(all) {
        *slot = v.to_bits();
    }
    k
}

fn memoized(key: MemoKey, compute: impl FnOnce() -> f64) -> f64 {
    if let Some(v) = CLV_MEMO.with(|m| m.borrow().get(&key).copied()) {
        return v;
    }
    let v = compute();
    CLV_MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_LIMIT {
            m.clear();
        }
        m.insert(key, v);
    });
    v
}

/// lifetimes' `factor`: model periods per month for the unit the model was fitted in.
fn periods_per_month(time_unit: &str) -> f64 {
    match time_unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "day" => 30.0,
        "week" => 4.345,
        "month" => 1.0,
        _ => raise_code(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown time unit \"{time_unit}\" for clv; accepted units are 'day' (30 per month), 'week' (4.345 per month), 'month'"),
        ),
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("number of purchases must be >= 0, got {n}")))
}

fn months(m: i32) -> u32 {
    u32::try_from(m).unwrap_or_else(|_| raise_code(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("months must be >= 0, got {m}")))
}

macro_rules! purchase_model_scoring {
    ($t:ident, $ep:ident, $pa:ident, $paf:ident, $pp:ident, $epn:ident, $clv:ident) => {
        /// Expected purchases in the next `t` periods of a customer with this history.
        #[pg_extern(immutable, strict, parallel_safe, name = "expected_purchases")]
        fn $ep(model: $t, t: f64, frequency: f64, recency: f64, tenure: f64) -> f64 {
            model.params().conditional_expected_purchases(t, frequency, recency, tenure).or_raise()
        }

        /// Probability that the customer is alive at the end of observation.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive")]
        fn $pa(model: $t, frequency: f64, recency: f64, tenure: f64) -> f64 {
            model.params().p_alive(frequency, recency, tenure).or_raise()
        }

        /// Probability that the customer is still alive `t_future` periods after the end of observation.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive")]
        fn $paf(model: $t, frequency: f64, recency: f64, tenure: f64, t_future: f64) -> f64 {
            model.params().p_alive_at(frequency, recency, tenure, t_future).or_raise()
        }

        /// P(X(t) = n): probability that a new customer makes exactly n repeat purchases in (0, t].
        #[pg_extern(immutable, strict, parallel_safe, name = "purchase_probability")]
        fn $pp(model: $t, n: i32, t: f64) -> f64 {
            model.params().prob_purchases(count(n), t).or_raise()
        }

        /// E[X(t)]: expected repeat purchases of a new customer by t.
        #[pg_extern(immutable, strict, parallel_safe, name = "expected_purchases_new_customer")]
        fn $epn(model: $t, t: f64) -> f64 {
            model.params().expected_purchases_new(t).or_raise()
        }

        /// Discounted CLV as lifetimes' `customer_lifetime_value`: monthly steps of 30 days or
        /// 4.345 weeks, Gamma-Gamma expected spend per purchase, discounted by (1 + rate)^month.
        #[pg_extern(immutable, strict, parallel_safe, name = "clv")]
        #[allow(clippy::too_many_arguments)]
        fn $clv(
            model: $t,
            spend: gamma_gamma_model,
            frequency: f64,
            recency: f64,
            tenure: f64,
            monetary_value: f64,
            months: default!(i32, 12),
            discount_rate: default!(f64, 0.01),
            time_unit: default!(&str, "'week'"),
        ) -> f64 {
            let ppm = periods_per_month(time_unit);
            let key = memo_key(&model.params().to_vec(), &spend.params().to_vec(), [frequency, recency, tenure, monetary_value], months, discount_rate, ppm);
            memoized(key, || {
                customer_lifetime_value(
                    model.params(),
                    spend.params(),
                    frequency,
                    recency,
                    tenure,
                    monetary_value,
                    self::months(months),
                    discount_rate,
                    ppm,
                )
                .or_raise()
            })
        }
    };
}

purchase_model_scoring!(bgnbd_model, bgnbd_expected_purchases, bgnbd_p_alive, bgnbd_p_alive_at, bgnbd_purchase_probability, bgnbd_expected_purchases_new_customer, bgnbd_clv);
purchase_model_scoring!(pareto_nbd_model, pareto_nbd_expected_purchases, pareto_nbd_p_alive, pareto_nbd_p_alive_at, pareto_nbd_purchase_probability, pareto_nbd_expected_purchases_new_customer, pareto_nbd_clv);
purchase_model_scoring!(mbgnbd_model, mbgnbd_expected_purchases, mbgnbd_p_alive, mbgnbd_p_alive_at, mbgnbd_purchase_probability, mbgnbd_expected_purchases_new_customer, mbgnbd_clv);
purchase_model_scoring!(bgbb_model, bgbb_expected_purchases, bgbb_p_alive, bgbb_p_alive_at, bgbb_purchase_probability, bgbb_expected_purchases_new_customer, bgbb_clv);

/// Gamma-Gamma expected spend per purchase given the customer's repeat frequency and mean spend
/// (the population mean p*v/(q-1) when frequency is 0).
#[pg_extern(immutable, strict, parallel_safe)]
fn expected_spend(model: gamma_gamma_model, frequency: f64, monetary_value: f64) -> f64 {
    model.params().conditional_expected_spend(frequency, monetary_value).or_raise()
}
