//! Gamma-Gamma spend predictions (Fader & Hardie 2013; `lifetimes.GammaGammaFitter`).
//!
//! Parameterisation (as in lifetimes): each transaction's value z ~ Gamma(shape p, rate nu), the
//! customer's nu ~ Gamma(shape q, rate gamma = `v`), so the customer's mean spend is p / nu and the
//! population mean is p v / (q - 1), finite only for q > 1.

use crate::error::{finite, ClvError, Result};
use crate::params::{GammaGammaParams, ModelParams};

impl GammaGammaParams {
    fn check_finite_mean(&self) -> Result<()> {
        self.validate()?;
        if self.q <= 1.0 {
            return Err(ClvError::InvalidParameter(format!(
                "Gamma-Gamma parameter q must be > 1 for the expected spend to be finite, got {}",
                self.q
            )));
        }
        Ok(())
    }

    /// Population mean spend per transaction, p v / (q - 1).
    pub fn population_mean_spend(&self) -> Result<f64> {
        self.check_finite_mean()?;
        Ok(self.p * self.v / (self.q - 1.0))
    }

    /// Expected spend per transaction of a customer with `x` repeat purchases of mean value `m`
    /// (lifetimes `conditional_expected_average_profit`): the credibility-weighted mix
    /// `(1 - w) p v/(q-1) + w m`, w = p x / (p x + q - 1); the population mean for x = 0.
    pub fn conditional_expected_spend(&self, x: f64, m: f64) -> Result<f64> {
        self.check_finite_mean()?;
        finite("frequency", x)?;
        finite("monetary value", m)?;
        if x < 0.0 || x != x.floor() {
            return Err(ClvError::InvalidParameter(format!(
                "frequency must be a whole number >= 0, got {x}"
            )));
        }
        if m < 0.0 {
            return Err(ClvError::InvalidParameter(format!(
                "monetary value must be >= 0, got {m}"
            )));
        }
        let GammaGammaParams { p, q, v } = *self;
        let w = p * x / (p * x + q - 1.0);
        Ok((1.0 - w) * (p * v / (q - 1.0)) + w * m)
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
    fn infinite_mean_and_bad_inputs_are_rejected() {
        let heavy = GammaGammaParams { q: 1.0, ..FIT };
        match heavy.conditional_expected_spend(1.0, 10.0) {
            Err(ClvError::InvalidParameter(msg)) => assert!(msg.contains("q must be > 1"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(FIT.conditional_expected_spend(-1.0, 10.0).is_err());
        assert!(FIT.conditional_expected_spend(1.0, f64::NAN).is_err());
        assert!(FIT.conditional_expected_spend(1.0, -3.0).is_err());
    }
}
