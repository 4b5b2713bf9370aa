//! Gamma-Gamma spend predictions (Fader & Hardie 2013; `lifetimes.GammaGammaFitter`).
//!
//! Parameterisation (as in lifetimes): each transaction's value z ~ Gamma(shape p, rate nu), the
//! customer's nu ~ Gamma(shape q, rate gamma = `v`), so the customer's mean spend is p / nu and the
//! population mean is p v / (q - 1), finite only for q > 1. A repeat buyer's posterior mean spend
//! exists more often: whenever p x + q > 1.

use crate::error::{finite, finite_result, ClvError, Num, Result};
use crate::params::{GammaGammaParams, ModelParams};

impl GammaGammaParams {
    /// Population mean spend per transaction, p v / (q - 1); it exists only for q > 1.
    pub fn population_mean_spend(&self) -> Result<f64> {
        self.validate()?;
        let GammaGammaParams { p, q, v } = *self;
        if q <= 1.0 {
            return Err(ClvError::InvalidParameter(format!(
                "the Gamma-Gamma population mean spend p*v/(q - 1) is infinite: it needs q > 1, got q = {q}", q = Num(q))));
        }
        finite_result("the population mean spend", p * v / (q - 1.0))
    }

    /// Expected spend per transaction of a customer with `x` repeat purchases of mean value `m`
    /// (lifetimes `conditional_expected_average_profit`; Fader & Hardie 2013): the posterior mean
    /// of p / nu given x purchases with mean m,
    /// `E[p / nu | x, m] = (p v + p x m) / (p x + q - 1)`,
    /// which exists when p x + q > 1 - for every repeat buyer once p x > 1 - q, even with q <= 1.
    /// For x = 0 it is the population mean p v / (q - 1), which needs q > 1. lifetimes writes it
    /// as the credibility-weighted mix `(1 - w) p v/(q-1) + w m`, w = p x / (p x + q - 1): the
    /// same number, but that form divides by q - 1 and loses digits near q = 1.
    pub fn conditional_expected_spend(&self, x: f64, m: f64) -> Result<f64> {
        self.validate()?;
        finite("frequency", x)?;
        finite("monetary value", m)?;
        if x < 0.0 || x != x.floor() {
            return Err(ClvError::InvalidParameter(format!(
                "frequency must be a whole number >= 0, got {x}",
                x = Num(x)
            )));
        }
        if m < 0.0 {
            return Err(ClvError::InvalidParameter(format!(
                "monetary value must be >= 0, got {m}",
                m = Num(m)
            )));
        }
        let GammaGammaParams { p, q, v } = *self;
        if x == 0.0 && q <= 1.0 {
            return Err(ClvError::InvalidParameter(format!(
                "the Gamma-Gamma expected spend of a customer without repeat purchases (frequency 0) \
                 is the population mean p*v/(q - 1), which is infinite for q <= 1 (q = {q})", q = Num(q))));
        }
        let pxq = p * x + q;
        if pxq <= 1.0 {
            return Err(ClvError::InvalidParameter(format!(
                "the Gamma-Gamma expected spend (p*v + p*x*m)/(p*x + q - 1) is infinite for this \
                 customer: it needs p*x + q > 1, got p*x + q = {pxq} (p = {p}, q = {q}, frequency x = {x})", pxq = Num(pxq), p = Num(p), q = Num(q), x = Num(x))));
        }
        finite_result("the expected spend", (p * v + p * x * m) / (pxq - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::rel;
    use super::*;

    const FIT: GammaGammaParams = GammaGammaParams {
        p: 6.248802,
        q: 3.744588,
        v: 15.447748,
    };

    #[test]
    fn cdnow_reference_customers() {
        rel(
            FIT.conditional_expected_spend(2.0, 22.35).unwrap(),
            24.658616,
            1e-6,
        );
        rel(
            FIT.conditional_expected_spend(1.0, 11.77).unwrap(),
            18.911480,
            1e-6,
        );
        rel(
            FIT.conditional_expected_spend(0.0, 0.0).unwrap(),
            35.171002,
            1e-6,
        );
        rel(FIT.population_mean_spend().unwrap(), 35.171002, 1e-6);
    }

    #[test]
    fn spend_is_the_posterior_mean_of_p_over_nu() {
        // Posterior of nu given x transactions with mean m: Gamma(q + p x, v + x m), so
        // E[p / nu] = p (v + x m) / (q + p x - 1): the credibility form, written differently.
        for &(x, m) in &[(1.0, 5.0), (7.0, 120.0), (300.0, 0.5)] {
            let GammaGammaParams { p, q, v } = FIT;
            rel(
                FIT.conditional_expected_spend(x, m).unwrap(),
                p * (v + x * m) / (q + p * x - 1.0),
                1e-13,
            );
        }
    }

    #[test]
    fn heavy_tailed_population_still_has_repeat_buyer_means() {
        // q <= 1: no population mean, but a repeat buyer's posterior mean exists when p x + q > 1
        // (the public lifetimes issue: p = 6.25, q = 0.79, v = 15.44, x = 2, zbar = 22.35).
        let heavy = GammaGammaParams {
            p: 6.25,
            q: 0.79,
            v: 15.44,
        };
        let want = (6.25 * 15.44 + 6.25 * 2.0 * 22.35) / (6.25 * 2.0 + 0.79 - 1.0);
        rel(
            heavy.conditional_expected_spend(2.0, 22.35).unwrap(),
            want,
            1e-15,
        );
        rel(want, 30.583807973962575, 1e-14);
        // Continuous across q = 1 (where lifetimes' credibility form divides by q - 1 = 0).
        for q in [1.0 - 1e-9, 1.0 + 1e-9] {
            let g = GammaGammaParams { q, ..heavy };
            rel(
                g.conditional_expected_spend(3.0, 7.5).unwrap(),
                6.25 * (15.44 + 3.0 * 7.5) / (6.25 * 3.0 + q - 1.0),
                1e-12,
            );
        }
        // q = 1 exactly: p x + q - 1 = p x > 0.
        let one = GammaGammaParams { q: 1.0, ..heavy };
        rel(
            one.conditional_expected_spend(1.0, 10.0).unwrap(),
            15.44 + 10.0,
            1e-15,
        );
    }

    #[test]
    fn infinite_mean_and_bad_inputs_are_rejected() {
        let invalid = |r: Result<f64>| match r {
            Err(ClvError::InvalidParameter(m)) => m,
            other => panic!("{other:?}"),
        };
        // x = 0 with q <= 1: the population mean, infinite.
        let heavy = GammaGammaParams { q: 0.79, ..FIT };
        let msg = invalid(heavy.conditional_expected_spend(0.0, 0.0));
        assert!(
            msg.contains("frequency 0") && msg.contains("q <= 1"),
            "{msg}"
        );
        let msg = invalid(heavy.population_mean_spend());
        assert!(msg.contains("q > 1"), "{msg}");
        // p x + q <= 1: infinite for this customer too.
        let light = GammaGammaParams {
            p: 0.1,
            q: 0.5,
            v: 15.44,
        };
        let msg = invalid(light.conditional_expected_spend(2.0, 22.35));
        assert!(msg.contains("p*x + q > 1") && msg.contains("0.7"), "{msg}");
        assert!(light.conditional_expected_spend(6.0, 22.35).is_ok()); // 0.6 + 0.5 > 1
        invalid(GammaGammaParams { q: 1.0, ..FIT }.conditional_expected_spend(0.0, 10.0));
        invalid(FIT.conditional_expected_spend(-1.0, 10.0));
        invalid(FIT.conditional_expected_spend(1.0, f64::NAN));
        invalid(FIT.conditional_expected_spend(1.0, -3.0));
        // Valid inputs whose value overflows: out of range, not infinity.
        assert!(matches!(
            heavy.conditional_expected_spend(2.0, f64::MAX),
            Err(ClvError::OutOfRange(_))
        ));
    }
}
