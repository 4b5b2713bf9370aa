//! Customer lifetime value as `lifetimes` computes it (`GammaGammaFitter.customer_lifetime_value`
//! -> `utils._customer_lifetime_value`): the horizon is cut into monthly steps of
//! `periods_per_month` model periods (lifetimes' `factor`: 30 for days, 4.345 for weeks, 1 for
//! months), and each month contributes
//! `expected spend * (E[X(k f)] - E[X((k-1) f)]) / (1 + rate)^k`, with E[X(t)] the conditional
//! expected purchases of the customer in the next t periods and k = 1..months.

use crate::error::{finite, finite_result, ClvError, Result};
use crate::params::GammaGammaParams;
use crate::predict::PurchaseModel;

/// Upper bound on the number of months, so that a typo cannot make a query loop for hours.
pub const MAX_MONTHS: u32 = 12_000;

/// CLV of one customer with the Gamma-Gamma expected spend
/// (`spend.conditional_expected_spend(x, mean_spend)`) as the value of each future purchase.
#[allow(clippy::too_many_arguments)]
pub fn customer_lifetime_value<M: PurchaseModel + ?Sized>(
    m: &M,
    spend: &GammaGammaParams,
    x: f64,
    tx: f64,
    big_t: f64,
    mean_spend: f64,
    months: u32,
    monthly_discount_rate: f64,
    periods_per_month: f64,
) -> Result<f64> {
    let value = spend.conditional_expected_spend(x, mean_spend)?;
    customer_lifetime_value_with_spend(
        m,
        value,
        x,
        tx,
        big_t,
        months,
        monthly_discount_rate,
        periods_per_month,
    )
}

/// CLV of one customer with an explicit expected value per future purchase.
#[allow(clippy::too_many_arguments)]
pub fn customer_lifetime_value_with_spend<M: PurchaseModel + ?Sized>(
    m: &M,
    expected_spend: f64,
    x: f64,
    tx: f64,
    big_t: f64,
    months: u32,
    monthly_discount_rate: f64,
    periods_per_month: f64,
) -> Result<f64> {
    check_spend(expected_spend)?;
    let plan = Horizon::new(months, monthly_discount_rate, periods_per_month)?;
    finite_result(
        "CLV",
        expected_spend * plan.discounted_purchases(m, x, tx, big_t)?,
    )
}

fn check_spend(expected_spend: f64) -> Result<()> {
    finite("expected spend", expected_spend)?;
    if expected_spend < 0.0 {
        return Err(ClvError::InvalidParameter(format!(
            "expected spend must be >= 0, got {expected_spend}"
        )));
    }
    Ok(())
}

/// The CLV horizon: `months` monthly steps of `periods_per_month` model periods, discounted by
/// `(1 + monthly_discount_rate)^k`. CLV = expected spend * [`Horizon::discounted_purchases`],
/// and for models that split their expectation (see
/// [`PurchaseModel::expected_purchases_if_alive_many`]) = expected spend * P(alive) *
/// [`Horizon::discounted_purchases_if_alive`], whose value depends on (x, T) only - which is what
/// lets scoring a million customers share it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    pub months: u32,
    pub monthly_discount_rate: f64,
    pub periods_per_month: f64,
}

impl Horizon {
    pub fn new(months: u32, monthly_discount_rate: f64, periods_per_month: f64) -> Result<Self> {
        finite("discount rate", monthly_discount_rate)?;
        finite("periods per month", periods_per_month)?;
        if monthly_discount_rate <= -1.0 {
            return Err(ClvError::InvalidParameter(format!(
                "monthly discount rate must be > -1 (e.g. 0.01 for 1%), got {monthly_discount_rate}"
            )));
        }
        if periods_per_month <= 0.0 {
            return Err(ClvError::InvalidParameter(format!(
                "periods per month must be > 0 (30 for days, 4.345 for weeks, 1 for months), got {periods_per_month}"
            )));
        }
        if months > MAX_MONTHS {
            return Err(ClvError::InvalidParameter(format!(
                "months must be at most {MAX_MONTHS}, got {months}"
            )));
        }
        Ok(Horizon {
            months,
            monthly_discount_rate,
            periods_per_month,
        })
    }

    /// sum over k = 1..months of (E[X(k f)] - E[X((k-1) f)]) / (1 + rate)^k, with E the
    /// customer's conditional expected purchases (lifetimes' CLV per unit of spend).
    pub fn discounted_purchases<M: PurchaseModel + ?Sized>(
        &self,
        m: &M,
        x: f64,
        tx: f64,
        big_t: f64,
    ) -> Result<f64> {
        // Models that split their expectation: P(alive) once, times the alive part (for BG/BB
        // this evaluates the opportunity sum of the likelihood once, not once per chunk).
        if let Some(alive) = self.discounted_purchases_if_alive(m, x, big_t) {
            let alive = alive?;
            return finite_result(
                "the discounted expected purchases",
                m.p_alive(x, tx, big_t)? * alive,
            );
        }
        self.discount(|h, out| m.conditional_expected_purchases_many(x, tx, big_t, h, out))
    }

    /// The same sum for E[X | alive at T] (`None` if the model does not split its expectation);
    /// times `m.p_alive(x, tx, T)` it is [`Horizon::discounted_purchases`].
    pub fn discounted_purchases_if_alive<M: PurchaseModel + ?Sized>(
        &self,
        m: &M,
        x: f64,
        big_t: f64,
    ) -> Option<Result<f64>> {
        // Probe with an empty horizon list: validation only, and tells whether the model splits.
        if let Err(e) = m.expected_purchases_if_alive_many(x, big_t, &[], &mut [])? {
            return Some(Err(e));
        }
        Some(self.discount(|h, out| {
            m.expected_purchases_if_alive_many(x, big_t, h, out)
                .expect("the model splits its expectation")
        }))
    }

    /// Cumulative expectations at k * periods_per_month, a chunk of months at a time so the
    /// buffers live on the stack; the model shares its per-customer terms within a chunk.
    fn discount(
        &self,
        mut cumulative: impl FnMut(&[f64], &mut [f64]) -> Result<()>,
    ) -> Result<f64> {
        const CHUNK: usize = 32;
        let mut horizons = [0.0f64; CHUNK];
        let mut cum = [0.0f64; CHUNK];
        let discount = 1.0 + self.monthly_discount_rate;
        let mut total = 0.0;
        let mut prev = 0.0;
        let mut k0 = 1u32;
        while k0 <= self.months {
            let len = ((self.months - k0 + 1) as usize).min(CHUNK);
            for (i, h) in horizons[..len].iter_mut().enumerate() {
                *h = (k0 as usize + i) as f64 * self.periods_per_month;
            }
            cumulative(&horizons[..len], &mut cum[..len])?;
            for (i, &c) in cum[..len].iter().enumerate() {
                let k = k0 as i32 + i as i32;
                total += (c - prev) / discount.powi(k);
                prev = c;
            }
            k0 += len as u32;
        }
        finite_result("the discounted expected purchases", total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{BgBbParams, BgNbdParams, MbgNbdParams, ParetoNbdParams};

    const BG: BgNbdParams = BgNbdParams {
        r: 0.242593,
        alpha: 4.413532,
        a: 0.792886,
        b: 2.425752,
    };
    const MB: MbgNbdParams = MbgNbdParams {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    };
    const PN: ParetoNbdParams = ParetoNbdParams {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    };
    const BB: BgBbParams = BgBbParams {
        alpha: 1.204,
        beta: 0.750,
        gamma: 0.657,
        delta: 2.783,
    };
    const GG: GammaGammaParams = GammaGammaParams {
        p: 6.248802,
        q: 3.744588,
        v: 15.447748,
    };

    #[test]
    fn cdnow_reference_customers() {
        // README: 12 months, 1% monthly, 4.345 weeks per month, lifetimes 0.11.3.
        let cases = [
            ((2.0, 30.43, 38.86, 22.35), 36.278496),
            ((1.0, 1.71, 38.86, 11.77), 4.637466),
            ((0.0, 0.0, 38.86, 0.0), 8.344093),
        ];
        for &((x, tx, tt, m), want) in &cases {
            let got = customer_lifetime_value(&BG, &GG, x, tx, tt, m, 12, 0.01, 4.345).unwrap();
            assert!(((got - want) / want).abs() < 1e-4, "got {got}, want {want}");
        }
    }

    /// The definition, written out with one prediction call per month boundary.
    #[allow(clippy::too_many_arguments)]
    fn naive<M: PurchaseModel>(
        m: &M,
        v: f64,
        x: f64,
        tx: f64,
        tt: f64,
        months: u32,
        rate: f64,
        f: f64,
    ) -> f64 {
        (1..=months)
            .map(|k| {
                let k = k as f64;
                let inc = m.conditional_expected_purchases(k * f, x, tx, tt).unwrap()
                    - m.conditional_expected_purchases((k - 1.0) * f, x, tx, tt)
                        .unwrap();
                v * inc / (1.0 + rate).powf(k)
            })
            .sum()
    }

    #[test]
    fn every_model_matches_the_month_by_month_definition() {
        // 40 months crosses a chunk boundary.
        let close =
            |a: f64, b: f64| assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-300), "{a} vs {b}");
        close(
            customer_lifetime_value_with_spend(&BG, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345)
                .unwrap(),
            naive(&BG, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345),
        );
        close(
            customer_lifetime_value_with_spend(&MB, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345)
                .unwrap(),
            naive(&MB, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345),
        );
        close(
            customer_lifetime_value_with_spend(&PN, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345)
                .unwrap(),
            naive(&PN, 20.0, 2.0, 30.43, 38.86, 40, 0.02, 4.345),
        );
        close(
            customer_lifetime_value_with_spend(&BB, 20.0, 3.0, 5.0, 6.0, 40, 0.02, 1.0).unwrap(),
            naive(&BB, 20.0, 3.0, 5.0, 6.0, 40, 0.02, 1.0),
        );
    }

    #[test]
    fn split_models_factor_through_p_alive() {
        let plan = Horizon::new(40, 0.02, 4.345).unwrap();
        let continuous: [&dyn PurchaseModel; 3] = [&BG, &MB, &PN];
        let cases = continuous
            .iter()
            .flat_map(|&m| {
                [
                    (0.0, 0.0, 38.86),
                    (2.0, 30.43, 38.86),
                    (1.0, 1.71, 38.86),
                    (25.0, 70.0, 71.0),
                ]
                .map(|h| (m, h))
            })
            .chain(
                [(0.0, 0.0, 6.0), (3.0, 5.0, 6.0), (6.0, 6.0, 6.0)]
                    .map(|h| (&BB as &dyn PurchaseModel, h)),
            );
        for (m, (x, tx, tt)) in cases {
            // The month-by-month sum of the conditional expectations, without the split.
            let direct = plan
                .discount(|h, out| m.conditional_expected_purchases_many(x, tx, tt, h, out))
                .unwrap();
            let split = m.p_alive(x, tx, tt).unwrap()
                * plan
                    .discounted_purchases_if_alive(m, x, tt)
                    .unwrap()
                    .unwrap();
            assert!(
                (direct - split).abs() <= 1e-13 * direct,
                "{direct} vs {split}"
            );
            assert_eq!(plan.discounted_purchases(m, x, tx, tt).unwrap(), split);
            assert!(matches!(
                plan.discounted_purchases_if_alive(m, 1.5, 38.86),
                Some(Err(ClvError::InvalidParameter(_)))
            ));
        }
        // BG/BB: whole numbers, frequency <= opportunities.
        for (x, n) in [(7.0, 6.0), (1.0, 2.5), (1.0, 1e8)] {
            assert!(matches!(
                plan.discounted_purchases_if_alive(&BB, x, n),
                Some(Err(ClvError::InvalidParameter(_)))
            ));
        }
    }

    #[test]
    fn huge_values_are_out_of_range_not_infinite() {
        // A discount rate near -100% makes the discount factors overflow.
        match customer_lifetime_value_with_spend(
            &BG, 10.0, 2.0, 30.43, 38.86, MAX_MONTHS, -0.999, 4.345,
        ) {
            Err(ClvError::OutOfRange(m)) => assert!(m.contains("discounted"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            customer_lifetime_value_with_spend(&BG, 1e308, 2.0, 30.43, 38.86, 120, 0.0, 4.345),
            Err(ClvError::OutOfRange(_))
        ));
    }

    #[test]
    fn no_discount_telescopes_to_the_total_expectation() {
        let v = customer_lifetime_value_with_spend(&BG, 10.0, 2.0, 30.43, 38.86, 12, 0.0, 4.345)
            .unwrap();
        let e = BG
            .conditional_expected_purchases(12.0 * 4.345, 2.0, 30.43, 38.86)
            .unwrap();
        assert!((v - 10.0 * e).abs() < 1e-12 * v);
        assert_eq!(
            customer_lifetime_value_with_spend(&BG, 10.0, 2.0, 30.43, 38.86, 0, 0.01, 4.345)
                .unwrap(),
            0.0
        );
    }

    #[test]
    fn invalid_inputs_are_rejected() {
        let bad =
            |r: Result<f64>| assert!(matches!(r, Err(ClvError::InvalidParameter(_))), "{r:?}");
        bad(customer_lifetime_value_with_spend(
            &BG, 10.0, 2.0, 30.43, 38.86, 12, -1.0, 4.345,
        ));
        bad(customer_lifetime_value_with_spend(
            &BG, 10.0, 2.0, 30.43, 38.86, 12, 0.01, 0.0,
        ));
        bad(customer_lifetime_value_with_spend(
            &BG, -1.0, 2.0, 30.43, 38.86, 12, 0.01, 4.345,
        ));
        bad(customer_lifetime_value_with_spend(
            &BG, 10.0, 2.0, 40.0, 38.86, 12, 0.01, 4.345,
        ));
        bad(customer_lifetime_value_with_spend(
            &BG,
            10.0,
            2.0,
            30.0,
            38.86,
            MAX_MONTHS + 1,
            0.01,
            4.345,
        ));
        // q <= 1: no population mean, so no expected spend for a customer without repeat
        // purchases; a repeat buyer's exists (p x + q > 1).
        let heavy = GammaGammaParams { q: 0.9, ..GG };
        bad(customer_lifetime_value(
            &BG, &heavy, 0.0, 0.0, 38.86, 0.0, 12, 0.01, 4.345,
        ));
        assert!(
            customer_lifetime_value(&BG, &heavy, 2.0, 30.0, 38.86, 5.0, 12, 0.01, 4.345).unwrap()
                > 0.0
        );
    }
}
