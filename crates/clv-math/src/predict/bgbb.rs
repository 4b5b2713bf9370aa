//! BG/BB predictions (Fader, Hardie & Shang 2010; `lifetimes.BetaGeoBetaBinomFitter`), discrete
//! time: `x` transactions in `big_t` = n opportunities, the last at opportunity `tx`; horizons are
//! numbers of future opportunities. The history must be whole numbers with x <= tx <= n. Horizons
//! may be fractional in the expectation and P(alive) formulas (they are smooth in the number of
//! opportunities, which lets CLV use fractional opportunities per month); `prob_purchases` needs a
//! whole number.
//!
//! # Cost and the cap on opportunities
//! The likelihood of a history (needed by every conditional prediction) and P(X(t) = k) are sums
//! over the opportunities (n - t_x, resp. t - k terms) with no closed form: each term is a product
//! of two beta functions. The terms decay only like j^-(alpha + x + gamma + 1), so for the common
//! alpha + gamma ~ 1..2 the sum is not within 1e-12 of its limit before ~10^8 terms, and an
//! asymptotic tail would have to be evaluated with gamma-function differences at 10^300. Both
//! sums therefore run term by term (a few nanoseconds per term, by the ratio of consecutive
//! terms, checking for interrupts) and stop early when a rigorous bound shows the rest is below
//! 1e-17 of the sum; the number of opportunities of a history and the `t` of `prob_purchases` are
//! capped at [`MAX_OPPORTUNITIES`] = 10^7 (InvalidParameter beyond), ~50 ms of summing and 27,000
//! years of daily opportunities (the fit accepts 10^4). Future horizons (the `t` of the
//! expectations, `t_future` of P(alive)) have closed forms and any finite value is accepted.

use super::{check_horizon, finite_result, nonneg, PurchaseModel};
use crate::error::{finite, ClvError, Num, Result};
use crate::interrupt::{self, Ticker};
use crate::params::{BgBbParams, ModelParams};
use crate::special::{ln_beta, ln_gamma, ln_gamma_difference_quotient, log_add_exp};

/// Largest number of opportunities in a BG/BB history (n) and in `prob_purchases` (t); see the
/// module documentation.
pub const MAX_OPPORTUNITIES: f64 = 1e7;

fn check_opportunities(name: &str, n: f64) -> Result<()> {
    if n > MAX_OPPORTUNITIES {
        return Err(ClvError::InvalidParameter(format!(
            "BG/BB {name} must be at most 10000000 (10^7), got {n}: the prediction sums over \
             every opportunity",
            n = Num(n)
        )));
    }
    Ok(())
}

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
                "BG/BB {name} must be a whole number >= 0, got {v}",
                v = Num(v)
            )));
        }
    }
    check_opportunities("number of opportunities", n)?;
    if tx > n {
        return Err(ClvError::InvalidParameter(format!(
            "recency ({tx}) must not exceed the number of opportunities ({n})",
            tx = Num(tx),
            n = Num(n)
        )));
    }
    if x > tx {
        return Err(ClvError::InvalidParameter(format!(
            "BG/BB frequency ({x}) must not exceed recency ({tx}): each transaction takes one opportunity", x = Num(x), tx = Num(tx))));
    }
    if x == 0.0 && tx != 0.0 {
        return Err(ClvError::InvalidParameter(format!(
            "recency must be 0 when frequency is 0, got {tx}",
            tx = Num(tx)
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
        // Every ratio term_{j+1} / term_j = (b0 + j)/(a' + b0 + j) (d0 + j)/(c' + d0 + j) is below 1
        // (b0 = beta + tx - x, a' = alpha + x, d0 = delta + tx, c' = gamma + 1), and
        // ln(y / (y + a)) <= -a / (y + a), so term_{J+u} <= term_J (K / (K + u))^s with
        // s = a' + c' > 1 and K = max(a' + b0, c' + d0) + J: the rest of the sum after term J is
        // at most term_J K / (s - 1). Tested every 2^14 terms, with the interrupt check.
        let s_minus_1 = alpha + x + gamma;
        let k0 = (alpha + beta + tx).max(gamma + delta + 1.0 + tx) + 1.0;
        let (mut term, mut sum) = (1.0f64, 1.0f64);
        for j in 0..m - 1 {
            let jf = j as f64;
            term *= (beta + tx - x + jf) / (alpha + beta + tx + jf) * (delta + tx + jf)
                / (gamma + delta + 1.0 + tx + jf);
            sum += term;
            if j & (interrupt::EVERY as usize - 1) == interrupt::EVERY as usize - 1 {
                interrupt::check();
                if term * (k0 + jf) <= 1e-17 * s_minus_1 * sum {
                    break;
                }
            }
        }
        log_add_exp(alive, first + sum.ln())
    }

    /// ln of the likelihood of one customer's history (x transactions in `big_t` opportunities,
    /// the last at `tx`), FHS 2010 eq. 5.
    pub fn ln_likelihood(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_discrete_history(x, tx, big_t)?;
        finite_result(
            "the log-likelihood",
            self.ln_likelihood_unchecked(x, tx, big_t),
        )
    }

    /// ln P(alive at opportunity n + m | history) (FHS 2010 eq. A10; lifetimes
    /// `conditional_probability_alive(m, x, tx, n)`). The survival over the m future
    /// opportunities, ln B(gamma, delta + n + m) - ln B(gamma, delta + n), is written as
    /// -gamma [dl(delta + n + m) - dl(delta + n)] with dl(y) = (lnG(y + gamma) - lnG(y)) / gamma,
    /// so it keeps its digits for any m (a difference of lnG at 1e300 would be all rounding).
    fn ln_p_alive_at(&self, x: f64, tx: f64, n: f64, m: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        let future = if m == 0.0 {
            0.0
        } else {
            -gamma
                * (ln_gamma_difference_quotient(delta + n + m, gamma)
                    - ln_gamma_difference_quotient(delta + n, gamma))
        };
        ln_beta(alpha + x, beta + n - x) - ln_beta(alpha, beta) + ln_beta(gamma, delta + n)
            - ln_beta(gamma, delta)
            - self.ln_likelihood_unchecked(x, tx, n)
            + future
    }

    /// P(alive at opportunity n | history), without validation.
    fn p_alive_unchecked(&self, x: f64, tx: f64, n: f64) -> f64 {
        self.ln_p_alive_at(x, tx, n, 0.0).exp().clamp(0.0, 1.0)
    }

    /// Expected transactions in the next `m` opportunities of a customer alive at opportunity n
    /// with x transactions (recency carries no further information once alive is given):
    /// `(al+x)/(al+be+n) (de+n) D exprel(-e D)`, e = ga - 1, D = dl(1+de+n+m) - dl(1+de+n),
    /// dl(y) = (lnG(y+e) - lnG(y))/e. FHS 2010 eq. 13 is this times P(alive): its
    /// `1/L B(al+x+1, be+n-x)/B(al,be) de/(ga-1) G(ga+de)/G(1+de) [G(1+de+n)/G(ga+de+n) -
    /// G(1+de+n+m)/G(ga+de+n+m)]` divided by P(alive) = B(al+x, be+n-x)/B(al,be) B(ga, de+n)/B(ga,de)/L
    /// simplifies to the posterior mean of p, (al+x)/(al+be+n), times the expected number of
    /// the m opportunities survived, (de+n)/(ga-1) [1 - G(ga+de+n)G(1+de+n+m)/(G(1+de+n)G(ga+de+n+m))].
    /// Written with D it is exact at ga = 1 (where the published form is 0/0) and keeps its
    /// digits for any m.
    fn alive_expectation(&self, m: f64, x: f64, n: f64) -> f64 {
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
        (alpha + x) / (alpha + beta + n) * (delta + n) * d * crate::special::exprel(-e * d)
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
        finite_result(
            "expected purchases",
            nonneg(self.p_alive_unchecked(x, tx, big_t) * self.alive_expectation(t, x, big_t)),
        )
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
        finite_result(
            "P(alive)",
            self.ln_p_alive_at(x, tx, big_t, t_future)
                .exp()
                .clamp(0.0, 1.0),
        )
    }

    /// P(X(t) = n) transactions in the first `t` opportunities for a new customer (FHS 2010
    /// eq. 7; the per-x term of lifetimes `expected_number_of_transactions_in_first_n_periods`):
    ///
    /// ```text
    /// C(t,n) B(al+n, be+t-n)/B(al,be) B(ga, de+t)/B(ga,de)
    ///   + sum_{i=n}^{t-1} C(i,n) B(al+n, be+i-n)/B(al,be) B(ga+1, de+i)/B(ga,de)
    /// ```
    ///
    /// `t` is at most [`MAX_OPPORTUNITIES`]. The sum runs by the ratio of consecutive terms,
    /// `(i+1)/(i+1-n) (be+i-n)/(al+be+i) (de+i)/(ga+1+de+i)`, restarted from the exact term every
    /// 1024 terms (so rounding does not accumulate) and rescaled when it grows (the terms may rise
    /// by e^5000 before they fall); O(1) per term and an interrupt check every 2^14 terms.
    pub fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        if t != t.floor() {
            return Err(ClvError::InvalidParameter(format!(
                "BG/BB number of opportunities must be a whole number, got {t}",
                t = Num(t)
            )));
        }
        check_opportunities("number of opportunities t", t)?;
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
        let ln_term = |i: f64| {
            ln_choose(i) + ln_beta(alpha + nf, beta + i - nf) + ln_beta(gamma + 1.0, delta + i)
                - norm
        };
        // Alive through all t opportunities.
        let mut total =
            ln_choose(t) + ln_beta(alpha + nf, beta + t - nf) + ln_beta(gamma, delta + t) - norm;
        const BLOCK: f64 = 1024.0;
        const BIG: f64 = 1e250;
        let mut tick = Ticker::new();
        let mut i = nf;
        while i < t {
            let end = (i + BLOCK).min(t);
            let ln_start = ln_term(i);
            let (mut term, mut sum, mut ln_scale) = (1.0f64, 0.0f64, 0.0f64);
            while i < end {
                tick.tick();
                sum += term;
                term *= (i + 1.0) / (i + 1.0 - nf) * (beta + i - nf) / (alpha + beta + i)
                    * (delta + i)
                    / (gamma + 1.0 + delta + i);
                if term > BIG {
                    term /= BIG;
                    sum /= BIG;
                    ln_scale += BIG.ln();
                }
                i += 1.0;
            }
            total = log_add_exp(total, ln_start + ln_scale + sum.ln());
        }
        finite_result("the purchase probability", total.exp().clamp(0.0, 1.0))
    }

    /// E[X(t)] transactions in the first `t` opportunities for a new customer (FHS 2010 eq. 8):
    /// `al/(al+be) de/(ga-1) [1 - Gamma(ga+de)Gamma(1+de+t)/(Gamma(ga+de+t)Gamma(1+de))]`, the
    /// conditional expectation with empty history.
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        finite_result(
            "expected purchases",
            nonneg(self.alive_expectation(t, 0.0, 0.0)),
        )
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
    fn prob_purchases_if_alive(&self, n: u32, t: f64, x: f64, big_t: f64) -> Result<f64> {
        // Alive at opportunity T after x transactions: p ~ Beta(alpha+x, beta+T-x) and
        // theta ~ Beta(gamma, delta+T) (FHS 2010 sec. 3), and the next t opportunities are a new
        // customer's under those parameters.
        self.validate()?;
        // Recency does not matter given alive; any recency valid with x checks x and T.
        check_discrete_history(x, if x == 0.0 { 0.0 } else { big_t }, big_t)?;
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *self;
        BgBbParams {
            alpha: alpha + x,
            beta: beta + big_t - x,
            gamma,
            delta: delta + big_t,
        }
        .prob_purchases(n, t)
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
        let pa = self.p_alive_unchecked(x, tx, big_t);
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = pa * self.alive_expectation(t, x, big_t);
        }
        Ok(())
    }

    /// Split like the continuous models: E[purchases | alive at n] depends on (x, n) only, so
    /// CLV needs the opportunity sum of the likelihood once per customer (for P(alive)), not
    /// once per chunk of months.
    fn expected_purchases_if_alive_many(
        &self,
        x: f64,
        big_t: f64,
        horizons: &[f64],
        out: &mut [f64],
    ) -> Option<Result<()>> {
        let checked = self.validate().and_then(|_| {
            // Without a recency, x <= n is all a history must satisfy: check it as the history
            // whose last transaction is at n (or with none).
            check_discrete_history(x, if x == 0.0 { 0.0 } else { big_t }, big_t)?;
            horizons.iter().try_for_each(|&t| check_horizon("t", t))
        });
        Some(checked.map(|_| {
            for (o, &t) in out.iter_mut().zip(horizons) {
                *o = self.alive_expectation(t, x, big_t);
            }
        }))
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

    /// The sums as they were written before (a gamma function per term, all terms kept): the
    /// reference for the ratio recurrences, the early stop and the blocks.
    fn ln_likelihood_plain(p: &BgBbParams, x: f64, tx: f64, n: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *p;
        let norm = ln_beta(alpha, beta) + ln_beta(gamma, delta);
        let mut terms = vec![ln_beta(alpha + x, beta + n - x) + ln_beta(gamma, delta + n) - norm];
        let mut j = 0.0;
        while j < n - tx {
            terms.push(
                ln_beta(alpha + x, beta + tx - x + j) + ln_beta(gamma + 1.0, delta + tx + j) - norm,
            );
            j += 1.0;
        }
        crate::special::log_sum_exp(&terms)
    }

    fn prob_purchases_plain(p: &BgBbParams, n: f64, t: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = *p;
        let norm = ln_beta(alpha, beta) + ln_beta(gamma, delta);
        let ln_choose = |i: f64| ln_gamma(i + 1.0) - ln_gamma(n + 1.0) - ln_gamma(i - n + 1.0);
        let mut terms = vec![
            ln_choose(t) + ln_beta(alpha + n, beta + t - n) + ln_beta(gamma, delta + t) - norm,
        ];
        let mut i = n;
        while i < t {
            terms.push(
                ln_choose(i) + ln_beta(alpha + n, beta + i - n) + ln_beta(gamma + 1.0, delta + i)
                    - norm,
            );
            i += 1.0;
        }
        crate::special::log_sum_exp(&terms).exp()
    }

    const EXTREME: BgBbParams = BgBbParams {
        alpha: 1e-4,
        beta: 1e4,
        gamma: 1e4,
        delta: 1e-4,
    };

    #[test]
    fn opportunity_sums_match_the_plain_sums() {
        // With extreme parameters the terms are differences of gamma functions of 1e4 and more,
        // whose rounding (~1e-16 of 1e5 in the logarithm) both routes share.
        for (p, tol) in [
            (PUB, 1e-12),
            (EXTREME, 1e-10),
            (BgBbParams { alpha: 40.0, ..PUB }, 1e-12),
        ] {
            for &(x, tx, n) in &[
                (0.0, 0.0, 6.0),
                (3.0, 5.0, 6.0),
                (1.0, 1.0, 20_000.0),
                (60.0, 80.0, 200_000.0),
                (2.0, 9.0, 50_000.0),
            ] {
                let got = p.ln_likelihood(x, tx, n).unwrap();
                let want = ln_likelihood_plain(&p, x, tx, n);
                assert!(
                    (got - want).abs() <= tol * want.abs().max(1.0),
                    "{p:?} {x} {tx} {n}: {got} vs {want}"
                );
            }
            for &(k, t) in &[
                (0.0, 6.0),
                (2.0, 6.0),
                (0.0, 5000.0),
                (5.0, 3000.0),
                (40.0, 2500.0),
            ] {
                let got = p.prob_purchases(k as u32, t).unwrap();
                let want = prob_purchases_plain(&p, k, t);
                assert!(
                    (got - want).abs() <= tol * want.max(1e-300),
                    "{p:?} P(X({t}) = {k}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn huge_opportunity_counts_are_refused_at_once() {
        use std::time::Instant;
        let start = Instant::now();
        // The calls of issue 8 that ran until SIGKILL.
        for r in [
            PUB.prob_purchases(0, 1e300),
            EXTREME.prob_purchases(5, 1e300),
            PUB.p_alive_at(1.0, 10000.0, 1e300, 0.0),
            PUB.p_alive(1.0, 1.0, 1e7 + 1.0),
            PUB.conditional_expected_purchases(1.0, 1.0, 5.0, 1e300),
        ] {
            match r {
                Err(ClvError::InvalidParameter(m)) => assert!(m.contains("10^7"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(start.elapsed().as_millis() < 50);
        // At the cap: a value, in well under a second.
        let start = Instant::now();
        let pa = PUB.p_alive(1.0, 1.0, 1e7).unwrap();
        let pp = PUB.prob_purchases(0, 1e7).unwrap();
        let took = start.elapsed();
        assert!(took.as_millis() < 1000, "{took:?}");
        assert!(pa > 0.0 && pa < 1e-3, "{pa}");
        assert!(pp > 0.0 && pp < 1.0, "{pp}");
        // A heavy buyer's sum stops early: its terms fall fast.
        let start = Instant::now();
        let ll = PUB.ln_likelihood(500.0, 600.0, 1e7).unwrap();
        assert!(start.elapsed().as_millis() < 20, "{:?}", start.elapsed());
        let want = ln_likelihood_plain(&PUB, 500.0, 600.0, 1e5);
        assert!(ll.is_finite());
        // The terms past 10^5 do not matter at this precision; the alive term at 1e7 is tiny.
        assert!((ll - want).abs() <= 1e-12 * want.abs(), "{ll} vs {want}");
    }

    #[test]
    fn long_horizons_have_finite_values() {
        // P(alive m opportunities later) decays like m^-gamma; the expectation grows like
        // m^(1 - gamma) for gamma < 1.
        let (x, tx, n) = (3.0, 5.0, 6.0);
        let pa = |m: f64| PUB.p_alive_at(x, tx, n, m).unwrap();
        let old = |m: f64| {
            (ln_beta(PUB.alpha + x, PUB.beta + n - x) - ln_beta(PUB.alpha, PUB.beta)
                + ln_beta(PUB.gamma, PUB.delta + n + m)
                - ln_beta(PUB.gamma, PUB.delta)
                - PUB.ln_likelihood_unchecked(x, tx, n))
            .exp()
        };
        for m in [1.0, 10.0, 1000.0] {
            rel(pa(m), old(m), 1e-12);
        }
        // (The old form differences lnG(1e6), itself ~1e7: 1e-9 of rounding.)
        rel(pa(1e6), old(1e6), 1e-8);
        rel(pa(1e300) / pa(1e299), 10f64.powf(-PUB.gamma), 1e-9);
        assert!(pa(f64::MAX) > 0.0);
        let e = |m: f64| PUB.conditional_expected_purchases(m, x, tx, n).unwrap();
        rel(e(1e300) / e(1e299), 10f64.powf(1.0 - PUB.gamma), 1e-9);
        assert!(PUB.expected_purchases_new(1e300).unwrap().is_finite());
        // gamma > 1: the expectation has a finite limit.
        let g2 = BgBbParams { gamma: 2.5, ..PUB };
        rel(
            g2.expected_purchases_new(1e300).unwrap(),
            g2.expected_purchases_new(1e200).unwrap(),
            1e-12,
        );
        // Where the value itself overflows: out of range, not infinity.
        let tiny_gamma = BgBbParams {
            gamma: 1e-3,
            delta: 1e-3,
            ..PUB
        };
        match tiny_gamma.expected_purchases_new(f64::MAX) {
            Ok(v) => assert!(v.is_finite()),
            Err(e) => assert!(matches!(e, ClvError::OutOfRange(_)), "{e:?}"),
        }
    }

    #[test]
    fn long_sums_stop_on_interrupt() {
        use crate::interrupt::testing::cancelled_within;
        let (cancelled, took) = cancelled_within(|| PUB.p_alive(0.0, 0.0, 1e7));
        assert!(cancelled && took.as_millis() < 100, "{took:?}");
        let (cancelled, took) = cancelled_within(|| PUB.prob_purchases(3, 1e7));
        assert!(cancelled && took.as_millis() < 100, "{took:?}");
    }
}
