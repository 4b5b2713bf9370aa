//! Row-level scoring: the same function names for every model, `IMMUTABLE STRICT PARALLEL SAFE`.
//! Each is a one-liner over the maths crate; models are decoded once per distinct value (see
//! models.rs), so scoring a million rows pays for the arithmetic only.

use crate::binary_type::BinaryForm;
use crate::errors::{finite_or_raise, nonnegative, raise_code, OrRaise};
use crate::models::*;
use crate::v1::{arg, function_info_v1, varlena_bytes};
use clv_math::clv::Horizon;
use clv_math::fast_hash::FxBuild;
use clv_math::predict::PurchaseModel;
use clv_math::{GammaGammaParams, ModelParams};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;

/// Memo of the costly part of CLV. CLV = expected spend * P(alive) * D, where D, the discounted
/// sum of the monthly increments of E[purchases | alive at T] (a hypergeometric function per
/// month), depends on (frequency, T) only for BG/NBD, MBG/NBD and Pareto/NBD: a million customers
/// summarised in days have a few thousand distinct (frequency, T) pairs. For BG/BB, whose
/// expectation is not split, the memo holds the discounted expected purchases per (x, t_x, n).
/// Entries are grouped by context (model kind and parameters, horizon), so a hit is always the
/// value the computation would give; bounded (cleared when full).
type Context = [u64; 8];
type PatternKey = [u64; 3];
const MEMO_LIMIT: usize = 1 << 20;
const MEMO_CONTEXTS: usize = 8;

#[derive(Default)]
struct ClvMemo {
    /// Most recently used context first.
    contexts: Vec<(Context, HashMap<PatternKey, f64, FxBuild>)>,
    entries: usize,
}

impl ClvMemo {
    fn get_or(&mut self, ctx: &Context, key: PatternKey, compute: impl FnOnce() -> f64) -> f64 {
        let pos = match self.contexts.iter().position(|(c, _)| c == ctx) {
            Some(p) => p,
            None => {
                if self.contexts.len() >= MEMO_CONTEXTS {
                    let (_, evicted) = self.contexts.pop().expect("full");
                    self.entries -= evicted.len();
                }
                self.contexts.push((*ctx, HashMap::default()));
                self.contexts.len() - 1
            }
        };
        if pos != 0 {
            self.contexts[..=pos].rotate_right(1);
        }
        if let Some(v) = self.contexts[0].1.get(&key) {
            return *v;
        }
        let v = compute();
        if self.entries >= MEMO_LIMIT {
            self.contexts.iter_mut().for_each(|(_, m)| m.clear());
            self.entries = 0;
        }
        self.contexts[0].1.insert(key, v);
        self.entries += 1;
        v
    }
}

thread_local! {
    static CLV_MEMO: RefCell<ClvMemo> = RefCell::new(ClvMemo::default());
}

fn context(kind: u64, params: &[f64], h: &Horizon) -> Context {
    let mut c = [0u64; 8];
    c[0] = kind;
    for (slot, v) in c[1..5].iter_mut().zip(params) {
        *slot = v.to_bits();
    }
    c[5] = h.months as u64;
    c[6] = h.monthly_discount_rate.to_bits();
    c[7] = h.periods_per_month.to_bits();
    c
}

/// CLV of one customer (lifetimes' `customer_lifetime_value`), through the memo.
#[allow(clippy::too_many_arguments)]
fn memoized_clv<M: PurchaseModel + ModelParams>(
    kind: u64,
    model: &M,
    spend: &GammaGammaParams,
    x: f64,
    tx: f64,
    big_t: f64,
    monetary_value: f64,
    h: &Horizon,
) -> f64 {
    let value = spend
        .conditional_expected_spend(x, monetary_value)
        .or_raise();
    let ctx = context(kind, &model.to_vec(), h);
    // -0.0 and 0.0 are the same customer.
    let bits = |v: f64| (v + 0.0).to_bits();
    let pa = model.p_alive(x, tx, big_t).or_raise();
    let probe = model.expected_purchases_if_alive_many(x, big_t, &[], &mut []);
    let per_unit = match probe {
        Some(checked) => {
            checked.or_raise();
            let d = CLV_MEMO.with(|m| {
                m.borrow_mut().get_or(&ctx, [bits(x), 0, bits(big_t)], || {
                    h.discounted_purchases_if_alive(model, x, big_t)
                        .expect("splits")
                        .or_raise()
                })
            });
            pa * d
        }
        None => CLV_MEMO.with(|m| {
            m.borrow_mut()
                .get_or(&ctx, [bits(x), bits(tx), bits(big_t)], || {
                    h.discounted_purchases(model, x, tx, big_t).or_raise()
                })
        }),
    };
    value * per_unit
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

macro_rules! purchase_model_scoring {
    ($t:ident, $ep:ident, $pa:ident, $paf:ident, $pp:ident, $epn:ident) => {
        /// Expected purchases in the next `t` periods of a customer with this history.
        #[pg_extern(immutable, strict, parallel_safe, name = "expected_purchases")]
        fn $ep(model: $t, t: f64, frequency: f64, recency: f64, tenure: f64) -> f64 {
            model
                .params()
                .conditional_expected_purchases(t, frequency, recency, tenure)
                .or_raise()
        }

        /// Probability that the customer is alive at the end of observation.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive")]
        fn $pa(model: $t, frequency: f64, recency: f64, tenure: f64) -> f64 {
            model
                .params()
                .p_alive(frequency, recency, tenure)
                .or_raise()
        }

        /// Probability that the customer is still alive `t_future` periods after the end of observation.
        #[pg_extern(immutable, strict, parallel_safe, name = "p_alive")]
        fn $paf(model: $t, frequency: f64, recency: f64, tenure: f64, t_future: f64) -> f64 {
            model
                .params()
                .p_alive_at(frequency, recency, tenure, t_future)
                .or_raise()
        }

        /// P(X(t) = n): probability that a new customer makes exactly n repeat purchases in (0, t].
        #[pg_extern(immutable, strict, parallel_safe, name = "purchase_probability")]
        fn $pp(model: $t, n: i32, t: f64) -> f64 {
            model
                .params()
                .prob_purchases(nonnegative("number of purchases", n), t)
                .or_raise()
        }

        /// E[X(t)]: expected repeat purchases of a new customer by t.
        #[pg_extern(
            immutable,
            strict,
            parallel_safe,
            name = "expected_purchases_new_customer"
        )]
        fn $epn(model: $t, t: f64) -> f64 {
            model.params().expected_purchases_new(t).or_raise()
        }
    };
}

purchase_model_scoring!(
    bgnbd_model,
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    bgnbd_p_alive_at,
    bgnbd_purchase_probability,
    bgnbd_expected_purchases_new_customer
);
purchase_model_scoring!(
    pareto_nbd_model,
    pareto_nbd_expected_purchases,
    pareto_nbd_p_alive,
    pareto_nbd_p_alive_at,
    pareto_nbd_purchase_probability,
    pareto_nbd_expected_purchases_new_customer
);
purchase_model_scoring!(
    mbgnbd_model,
    mbgnbd_expected_purchases,
    mbgnbd_p_alive,
    mbgnbd_p_alive_at,
    mbgnbd_purchase_probability,
    mbgnbd_expected_purchases_new_customer
);
purchase_model_scoring!(
    bgbb_model,
    bgbb_expected_purchases,
    bgbb_p_alive,
    bgbb_p_alive_at,
    bgbb_purchase_probability,
    bgbb_expected_purchases_new_customer
);

/// Gamma-Gamma expected spend per purchase given the customer's repeat frequency and mean spend
/// (the population mean p*v/(q-1) when frequency is 0).
#[pg_extern(immutable, strict, parallel_safe)]
fn expected_spend(model: gamma_gamma_model, frequency: f64, monetary_value: f64) -> f64 {
    model
        .params()
        .conditional_expected_spend(frequency, monetary_value)
        .or_raise()
}

/// The text of a unit argument, cached by content: per row this is a comparison of a few bytes,
/// not a lower-casing allocation.
fn periods_per_month_cached(unit: &[u8]) -> f64 {
    thread_local! {
        static LAST: RefCell<(Vec<u8>, f64)> = const { RefCell::new((Vec::new(), 0.0)) };
    }
    if let Some(v) = LAST.with(|c| {
        let c = c.borrow();
        (c.0 == unit).then_some(c.1)
    }) {
        return v;
    }
    let v = periods_per_month(&String::from_utf8_lossy(unit));
    LAST.with(|c| *c.borrow_mut() = (unit.to_vec(), v));
    v
}

/// `clv(model, spend, frequency, recency, tenure, monetary_value [, months [, discount_rate
/// [, time_unit]]])`: discounted CLV as lifetimes' `customer_lifetime_value` - monthly steps of
/// 30 days or 4.345 weeks, Gamma-Gamma expected spend per purchase, discounted by
/// (1 + rate)^month. A plain V1 C function (declared STRICT, so no argument is NULL): it is called
/// once per customer, and reading the datums directly keeps the per-row cost near that of the
/// arithmetic - see bench/README.md.
unsafe fn clv_call<T: BinaryForm, M: PurchaseModel + ModelParams>(
    fcinfo: pg_sys::FunctionCallInfo,
    kind: u64,
    params: impl Fn(&T) -> &M,
) -> pg_sys::Datum {
    unsafe {
        // STRICT: no argument is NULL.
        let datum = |i: usize| arg(fcinfo, i).expect("clv is STRICT");
        let bytes = |i: usize| varlena_bytes(datum(i));
        let float = |i: usize| f64::from_bits(datum(i).value() as u64);
        let model = T::decode(bytes(0)).or_raise();
        let spend = gamma_gamma_model::decode(bytes(1)).or_raise();
        let months = nonnegative("months", datum(6).value() as i32);
        let h = Horizon::new(months, float(7), periods_per_month_cached(bytes(8))).or_raise();
        let v = memoized_clv(
            kind,
            params(&model),
            spend.params(),
            float(2),
            float(3),
            float(4),
            float(5),
            &h,
        );
        pg_sys::Datum::from(finite_or_raise(v, "CLV").to_bits() as usize)
    }
}

macro_rules! clv_fn {
    ($name:ident, $finfo:ident, $t:ident, $kind:literal) => {
        function_info_v1!($finfo);
        #[pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
            unsafe { clv_call::<$t, _>(fcinfo, $kind, |m: &$t| m.params()) }
        }
    };
}
clv_fn!(clv_bgnbd, pg_finfo_clv_bgnbd, bgnbd_model, 1);
clv_fn!(clv_pareto_nbd, pg_finfo_clv_pareto_nbd, pareto_nbd_model, 2);
clv_fn!(clv_mbgnbd, pg_finfo_clv_mbgnbd, mbgnbd_model, 3);
clv_fn!(clv_bgbb, pg_finfo_clv_bgbb, bgbb_model, 4);

extension_sql!(
    r#"
CREATE FUNCTION clv(model bgnbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_bgnbd';
CREATE FUNCTION clv(model pareto_nbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_pareto_nbd';
CREATE FUNCTION clv(model mbgnbd_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_mbgnbd';
CREATE FUNCTION clv(model bgbb_model, spend gamma_gamma_model, frequency double precision, recency double precision, tenure double precision, monetary_value double precision, months integer DEFAULT 12, discount_rate double precision DEFAULT 0.01, time_unit text DEFAULT 'week') RETURNS double precision
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_bgbb';
"#,
    name = "clv_functions",
    requires = [
        bgnbd_model,
        pareto_nbd_model,
        mbgnbd_model,
        bgbb_model,
        gamma_gamma_model
    ]
);
