//! BG/BB predictions (Fader, Hardie & Shang 2010; `lifetimes.BetaGeoBetaBinomFitter`), discrete
//! time: `x` transactions in `big_t` = n opportunities, the last at opportunity `tx`; horizons are
//! numbers of future opportunities. The history must be whole numbers with x <= tx <= n. Horizons
//! may be fractional in the expectation and P(alive) formulas (they are smooth in the number of
//! opportunities, which lets CLV use fractional opportunities per month); `prob_purchases` needs a
//! whole number.

use super::{check_horizon, PurchaseModel};
use crate::error::{finite, ClvError, Result};
use crate::params::{BgBbParams, ModelParams};
use crate::special::{ln_beta, ln_gamma, ln_gamma_difference_quotient, log_add_exp, log_sum_exp};

fn check_discrete_history(x: f64, tx: f64, n: f64) -> Result<()> {
    finite("frequency", x)?;
    finite("recency", tx)?;
    finite("number of opportunities", n)?;
    for (name, v) in [
        ("frequency", x),
        ("recency", tx),
        ("number of opportunities", n),
    ] {
        if v < 0.0 || v != v.floor() {
            return Err(ClvError::InvalidParameter(format!(
                "BG/BB {name} must be a whole number >= 0, got {v}"
            )));
        }
    }
    if tx > n {
        return Err(ClvError::InvalidParameter(format!(
            "recency ({tx}) must not exceed the number of opportunities ({n})"
        )));
    }
    if x > tx {
        return Err(ClvError::InvalidParameter(format!(
            "BG/BB frequency ({x}) must not exceed recency ({tx}): each transaction takes one opportunity"
        )));
    }
    if x == 0.0 && tx != 0.0 {
        return Err(ClvError::InvalidParameter(format!(
            "recency must be 0 when frequency is 0, got {tx}"
        )));
    }
    Ok(())
}

impl BgBbParams {
    /// ln of the likelihood of (x, tx, n) (FHS 2010 eq. 5):
    ///
    /// ```text
    /// B(al+x, be+n-x)/B(al,be) B(ga, de+n)/B(ga,de)
    ///   + sum_{j=0}^{n-tx-1} B(al+x, be+tx-x+j)/B(al,be) B(ga+1, de+tx+j)/B(ga,de)
    /// ```
    ///
    /// The empty sum (tx = n) is 0; lifetimes puts 1e-9 there, a perturbation we leave out.
    /// The sum runs by the ratio of consecutive terms.
    fn ln_likelihood_unchecked(&self, x: f64, tx: f64, n: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let norm = ln_beta(alpha, beta) + ln_beta(gamma, delta);
        let alive = ln_beta(alpha + x, beta + n - x) + ln_beta(gamma, delta + n) - norm;
        let m = (n - tx) as usize;
        if m == 0 {
            return alive;
        }
        let first = ln_beta(alpha + x, beta + tx - x) + ln_beta(gamma + 1.0, delta + tx) - norm;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        for j in 0..m - 1 {
            let jf = j as f64;
            term *= (beta + tx - x + jf) / (alpha + beta + tx + jf) * (delta + tx + jf)
                / (gamma + delta + 1.0 + tx + jf);
            sum += term;
        }
        log_add_exp(alive, first + sum.ln())
    }

    /// ln of the likelihood of one customer's history (x transactions in `big_t` opportunities,
    /// the last at `tx`), FHS 2010 eq. 5.
    pub fn ln_likelihood(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_discrete_history(x, tx, big_t)?;
        Ok(self.ln_likelihood_unchecked(x, tx, big_t))
    }

    /// ln P(alive at opportunity n + m | history) (FHS 2010 eq. A10; lifetimes
    /// `conditional_probability_alive(m, x, tx, n)`).
    fn ln_p_alive_at(&self, x: f64, tx: f64, n: f64, m: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        ln_beta(alpha + x, beta + n - x) - ln_beta(alpha, beta) + ln_beta(gamma, delta + n + m)
            - ln_beta(gamma, delta)
            - self.ln_likelihood_unchecked(x, tx, n)
    }

    /// Expected transactions in the next `m` opportunities given alive-compatible history,
    /// without validation. FHS 2010 eq. 13:
    /// `1/L B(al+x+1, be+n-x)/B(al,be) de/(ga-1) Gamma(ga+de)/Gamma(1+de)
    ///  [Gamma(1+de+n)/Gamma(ga+de+n) - Gamma(1+de+n+m)/Gamma(ga+de+n+m)]`.
    /// With e = ga - 1 and dl(y) = (lnGamma(y+e) - lnGamma(y))/e, the bracket over (ga - 1) is
    /// `Gamma(1+de+n)/Gamma(ga+de+n) * D * exprel(-e D)`, D = dl(1+de+n+m) - dl(1+de+n) >= 0,
    /// which is exact at ga = 1 (where the published form is 0/0).
    fn expected_unchecked(&self, m: f64, x: f64, n: f64, ln_l: f64) -> f64 {
        if m == 0.0 {
            return 0.0;
        }
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let e = gamma - 1.0;
        let y = 1.0 + delta + n;
        let d = ln_gamma_difference_quotient(y + m, e) - ln_gamma_difference_quotient(y, e);
        let ln = -ln_l + ln_beta(alpha + x + 1.0, beta + n - x) - ln_beta(alpha, beta)
            + delta.ln()
            + ln_gamma(gamma + delta)
            - ln_gamma(1.0 + delta)
            + ln_gamma(y)
            - ln_gamma(gamma + delta + n);
        ln.exp() * d * crate::special::exprel(-e * d)
    }

    /// Expected transactions in the next `t` opportunities for a customer with `x` transactions
    /// in `big_t` opportunities, the last at `tx` (lifetimes
    /// `conditional_expected_number_of_purchases_up_to_time(m, x, tx, n)`).
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        x: f64,
        tx: f64,
        big_t: f64,
    ) -> Result<f64> {
        self.validate()?;
        check_discrete_history(x, tx, big_t)?;
        check_horizon("t", t)?;
        let ln_l = self.ln_likelihood_unchecked(x, tx, big_t);
        Ok(self.expected_unchecked(t, x, big_t, ln_l))
    }

    /// Probability of being alive at the last observed opportunity n (lifetimes
    /// `conditional_probability_alive(0, x, tx, n)`).
    pub fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.p_alive_at(x, tx, big_t, 0.0)
    }

    /// Probability of being alive `t_future` opportunities later (lifetimes
    /// `conditional_probability_alive(m, x, tx, n)`, FHS 2010 eq. A10).
    pub fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        self.validate()?;
        check_discrete_history(x, tx, big_t)?;
        check_horizon("t_future", t_future)?;
        Ok(self
            .ln_p_alive_at(x, tx, big_t, t_future)
            .exp()
            .clamp(0.0, 1.0))
    }

    /// P(X(t) = n) transactions in the first `t` opportunities for a new customer (FHS 2010
    /// eq. 7; the per-x term of lifetimes `expected_number_of_transactions_in_first_n_periods`):
    ///
    /// ```text
    /// C(t,n) B(al+n, be+t-n)/B(al,be) B(ga, de+t)/B(ga,de)
    ///   + sum_{i=n}^{t-1} C(i,n) B(al+n, be+i-n)/B(al,be) B(ga+1, de+i)/B(ga,de)
    /// ```
    pub fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        if t != t.floor() {
            return Err(ClvError::InvalidParameter(format!(
                "BG/BB number of opportunities must be a whole number, got {t}"
            )));
        }
        let nf = n as f64;
        if nf > t {
            return Ok(0.0);
        }
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let norm = ln_beta(alpha, beta) + ln_beta(gamma, delta);
        let ln_choose = |i: f64| ln_gamma(i + 1.0) - ln_gamma(nf + 1.0) - ln_gamma(i - nf + 1.0);
        let mut terms = Vec::with_capacity((t - nf) as usize + 1);
        terms.push(
            ln_choose(t) + ln_beta(alpha + nf, beta + t - nf) + ln_beta(gamma, delta + t) - norm,
        );
        let mut i = nf;
        while i < t {
            terms.push(
                ln_choose(i) + ln_beta(alpha + nf, beta + i - nf) + ln_beta(gamma + 1.0, delta + i)
                    - norm,
            );
            i += 1.0;
        }
        Ok(log_sum_exp(&terms).exp().clamp(0.0, 1.0))
    }

    /// E[X(t)] transactions in the first `t` opportunities for a new customer (FHS 2010 eq. 8):
    /// `al/(al+be) de/(ga-1) [1 - Gamma(ga+de)Gamma(1+de+t)/(Gamma(ga+de+t)Gamma(1+de))]`, the
    /// conditional expectation with empty history.
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        Ok(self.expected_unchecked(t, 0.0, 0.0, 0.0))
    }
}

impl PurchaseModel for BgBbParams {
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        BgBbParams::conditional_expected_purchases(self, t, x, tx, big_t)
    }
    fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        BgBbParams::p_alive(self, x, tx, big_t)
    }
    fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        BgBbParams::p_alive_at(self, x, tx, big_t, t_future)
    }
    fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        BgBbParams::prob_purchases(self, n, t)
    }
    fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        BgBbParams::expected_purchases_new(self, t)
    }
    fn conditional_expected_purchases_many(
        &self,
        x: f64,
        tx: f64,
        big_t: f64,
        horizons: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        self.validate()?;
        check_discrete_history(x, tx, big_t)?;
        for &t in horizons {
            check_horizon("t", t)?;
        }
        let ln_l = self.ln_likelihood_unchecked(x, tx, big_t);
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = self.expected_unchecked(t, x, big_t, ln_l);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{donations, rel};
    use super::*;

    /// Published BG/BB fit on the donations data (FHS 2010, README).
    const PUB: BgBbParams = BgBbParams {
        alpha: 1.204,
        beta: 0.750,
        gamma: 0.657,
        delta: 2.783,
    };

    #[test]
    fn donations_log_likelihood_matches_the_published_value() {
        let ll: f64 = donations()
            .iter()
            .map(|&(x, tx, n, w)| w * PUB.ln_likelihood_unchecked(x, tx, n))
            .sum();
        assert!((ll - -33225.6).abs() < 0.5, "ll = {ll}");
    }

    /// Brute force over the latent path: P(history, alive at n+m) and E[future transactions],
    /// integrating p ~ Beta(alpha, beta) and theta ~ Beta(gamma, delta) numerically. For a customer
    /// alive at opportunity k (the customer may die at the start of each opportunity with prob.
    /// theta, then buys with prob. p), as in FHS 2010.
    fn brute(p: &BgBbParams, x: f64, tx: f64, n: f64, m: f64) -> (f64, f64) {
        use super::super::testing::beta_expectation;
        // Given (p, theta): L = p^x (1-p)^(n-x) (1-theta)^n
        //   + sum_{j=0}^{n-tx-1} p^x (1-p)^(tx-x+j) theta (1-theta)^(tx+j).
        let lik = |q: f64, th: f64| {
            let mut l = q.powf(x) * (1.0 - q).powf(n - x) * (1.0 - th).powf(n);
            let mut j = 0.0;
            while j < n - tx {
                l += q.powf(x) * (1.0 - q).powf(tx - x + j) * th * (1.0 - th).powf(tx + j);
                j += 1.0;
            }
            l
        };
        let alive_n = |q: f64, th: f64| q.powf(x) * (1.0 - q).powf(n - x) * (1.0 - th).powf(n);
        let total = beta_expectation(p.alpha, p.beta, |q| {
            beta_expectation(p.gamma, p.delta, |th| lik(q, th))
        });
        let alive_later = beta_expectation(p.alpha, p.beta, |q| {
            beta_expectation(p.gamma, p.delta, |th| alive_n(q, th) * (1.0 - th).powf(m))
        });
        // Alive at n: over the next m opportunities, each one reached alive w.p. (1-theta)^k.
        let expect = beta_expectation(p.alpha, p.beta, |q| {
            beta_expectation(p.gamma, p.delta, |th| {
                let reach: f64 = (1..=m as usize).map(|k| (1.0 - th).powi(k as i32)).sum();
                alive_n(q, th) * q * reach
            })
        });
        (alive_later / total, expect / total)
    }

    #[test]
    fn predictions_match_brute_force_integration() {
        for &(x, tx, n) in &[
            (3.0, 5.0, 6.0),
            (0.0, 0.0, 6.0),
            (6.0, 6.0, 6.0),
            (1.0, 1.0, 6.0),
        ] {
            for &m in &[0.0, 1.0, 5.0] {
                let (pa, ce) = brute(&PUB, x, tx, n, m);
                rel(PUB.p_alive_at(x, tx, n, m).unwrap(), pa, 1e-8);
                if m > 0.0 {
                    rel(
                        PUB.conditional_expected_purchases(m, x, tx, n).unwrap(),
                        ce,
                        1e-8,
                    );
                }
            }
        }
    }

    #[test]
    fn pmf_sums_to_one_and_its_mean_is_the_expectation() {
        for &t in &[1.0, 6.0, 50.0] {
            let (mut total, mut mean) = (0.0, 0.0);
            for n in 0..=(t as u32) {
                let p = PUB.prob_purchases(n, t).unwrap();
                total += p;
                mean += n as f64 * p;
            }
            assert!((total - 1.0).abs() < 1e-12, "t={t}: sum {total}");
            rel(mean, PUB.expected_purchases_new(t).unwrap(), 1e-12);
        }
        assert_eq!(PUB.prob_purchases(7, 6.0).unwrap(), 0.0);
    }

    #[test]
    fn gamma_equal_to_one_is_the_limit() {
        let p = |gamma: f64| BgBbParams { gamma, ..PUB };
        let at = p(1.0)
            .conditional_expected_purchases(10.0, 3.0, 5.0, 6.0)
            .unwrap();
        let lo = p(1.0 - 1e-6)
            .conditional_expected_purchases(10.0, 3.0, 5.0, 6.0)
            .unwrap();
        let hi = p(1.0 + 1e-6)
            .conditional_expected_purchases(10.0, 3.0, 5.0, 6.0)
            .unwrap();
        rel(at, 0.5 * (lo + hi), 1e-10);
        assert!(lo > at && at > hi);
    }

    #[test]
    fn invalid_histories_are_rejected() {
        assert!(PUB.p_alive(3.0, 2.0, 6.0).is_err());
        assert!(PUB.p_alive(1.0, 7.0, 6.0).is_err());
        assert!(PUB.p_alive(1.5, 2.0, 6.0).is_err());
        assert!(PUB.prob_purchases(1, 2.5).is_err());
    }
}
