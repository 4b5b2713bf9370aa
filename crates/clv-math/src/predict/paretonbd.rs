//! Pareto/NBD predictions (Schmittlein, Morrison & Colombo 1987; Fader & Hardie note 009;
//! `lifetimes.ParetoNBDFitter`).

use super::bgnbd::nb_ln_pmf;
use super::{
    check_history, check_horizon, finite_result, inv_one_plus_exp, nonneg, one_minus_pow_over,
    OneMinus, PurchaseModel,
};
use crate::error::Result;
use crate::params::{ModelParams, ParetoNbdParams};
use crate::special::{integrate, ln_gamma, log_add_exp, log_sub_exp};

impl ParetoNbdParams {
    /// ln A_0 of Fader & Hardie note 009 eqs. (19)-(20) (lifetimes `_log_A_0`):
    /// `A_0 = 2F1(r+s+x, t; r+s+x+1; |alpha-beta|/(max+tx)) / (max+tx)^(r+s+x)
    ///      - 2F1(r+s+x, t; r+s+x+1; |alpha-beta|/(max+T)) / (max+T)^(r+s+x)`
    /// with (max, t) = (beta, r+x) if alpha < beta, else (alpha, s+1). A_0 * s/(r+s+x) is the
    /// probability density part "dropped out between tx and T", so A_0 >= 0 and it is -inf when
    /// tx = T.
    fn ln_a0(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let (min_ab, max_ab, t) = if alpha < beta {
            (alpha, beta, r + x)
        } else {
            (beta, alpha, s + 1.0)
        };
        let d = max_ab - min_ab;
        let rsf = r + s + x;
        // z = d / (max + y), 1 - z = (min + y) / (max + y): tiny when min << max.
        let at = |y: f64| OneMinus::of(d, min_ab + y).ln_hyp2f1(rsf, t, rsf + 1.0);
        let l1 = at(tx) - rsf * (max_ab + tx).ln();
        let l2 = at(big_t) - rsf * (max_ab + big_t).ln();
        if l1 <= l2 {
            // tx == T (or rounding at tx ~ T, where A_0 is negligible anyway).
            return f64::NEG_INFINITY;
        }
        log_sub_exp(l1, l2)
    }

    /// ln of one customer's likelihood (note 009 eq. 18; lifetimes `_conditional_log_likelihood`).
    pub fn ln_likelihood(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        finite_result(
            "the log-likelihood",
            self.ln_likelihood_unchecked(x, tx, big_t),
        )
    }

    fn ln_likelihood_unchecked(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        let alive = -(r + x) * (alpha + big_t).ln() - s * (beta + big_t).ln();
        let dead = s.ln() + self.ln_a0(x, tx, big_t) - (r + s + x).ln();
        a1 + log_add_exp(alive, dead)
    }

    fn p_alive_unchecked(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let l = s.ln() - (r + s + x).ln()
            + (r + x) * (alpha + big_t).ln()
            + s * (beta + big_t).ln()
            + self.ln_a0(x, tx, big_t);
        inv_one_plus_exp(l)
    }

    /// E[purchases in the next t | alive at T] = (r+x)(beta+T)/(alpha+T) * (1 - y^(s-1))/(s-1),
    /// y = (beta+T)/(beta+T+t); the s = 1 limit (-ln y) is taken continuously.
    fn alive_expectation(&self, t: f64, x: f64, big_t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        let ln_y = -(t / (beta + big_t)).ln_1p();
        (r + x) * (beta + big_t) / (alpha + big_t) * one_minus_pow_over(ln_y, s - 1.0)
    }

    /// Expected repeat purchases in the next `t` periods given (x, tx, T) (note 009 eq. 41;
    /// lifetimes `conditional_expected_number_of_purchases_up_to_time`).
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        x: f64,
        tx: f64,
        big_t: f64,
    ) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        check_horizon("t", t)?;
        finite_result(
            "expected purchases",
            nonneg(self.alive_expectation(t, x, big_t) * self.p_alive_unchecked(x, tx, big_t)),
        )
    }

    /// Probability of being alive at T (note 009 eqs. 36-37; lifetimes
    /// `conditional_probability_alive`).
    pub fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        finite_result("P(alive)", self.p_alive_unchecked(x, tx, big_t))
    }

    /// Probability of being alive at T + t_future. Given alive at T the dropout rate is
    /// mu ~ Gamma(s, beta+T) (independent of the purchase rate), so surviving t_future more
    /// periods has probability E[e^(-mu t)] = ((beta+T)/(beta+T+t_future))^s:
    /// P(alive at T+t) = P(alive at T) ((beta+T)/(beta+T+t))^s.
    pub fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        check_horizon("t_future", t_future)?;
        let surv = (-self.s * (t_future / (self.beta + big_t)).ln_1p()).exp();
        finite_result("P(alive)", self.p_alive_unchecked(x, tx, big_t) * surv)
    }

    /// P(X(t) = n) for a new customer. `lifetimes` has no unconditional version for Pareto/NBD;
    /// this is the model's definition evaluated directly: the lifetime tau has survival
    /// (beta/(beta+u))^s and, given tau, X(t) ~ NB(r, alpha/(alpha + min(t, tau))), so
    /// `P = (beta/(beta+t))^s NB_n(t) + int_0^t f_tau(u) NB_n(u) du`. Substituting
    /// v = P(tau <= u) turns the integral into `int_0^{F(t)} NB_n(u(v)) dv` with a bounded
    /// integrand, evaluated by adaptive Gauss-Kronrod to 1e-11 relative. (The closed form of
    /// note 009 is a difference of hypergeometric terms and cancels badly for large n.)
    pub fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        if t == 0.0 {
            return Ok(if n == 0 { 1.0 } else { 0.0 });
        }
        let nf = n as f64;
        let ln_surv_t = -s * (t / beta).ln_1p();
        let at_t = (ln_surv_t + nb_ln_pmf(r, alpha, nf, t)).exp();
        let f_t = -ln_surv_t.exp_m1(); // P(tau <= t)
        let pmf_at_v = |v: f64| {
            // u = F^-1(v) = beta ((1-v)^(-1/s) - 1)
            let u = beta * (-(-v).ln_1p() / s).exp_m1();
            if u <= 0.0 {
                return if n == 0 { 1.0 } else { 0.0 };
            }
            nb_ln_pmf(r, alpha, nf, u).exp()
        };
        let integral = integrate(pmf_at_v, 0.0, f_t, 1e-11);
        finite_result(
            "the purchase probability",
            (at_t + integral).clamp(0.0, 1.0),
        )
    }

    /// E[X(t)] for a new customer (note 009 eq. 27; lifetimes
    /// `expected_number_of_purchases_up_to_time`): `r beta/(alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]`.
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        finite_result(
            "expected purchases",
            nonneg(self.alive_expectation(t, 0.0, 0.0)),
        )
    }
}

impl PurchaseModel for ParetoNbdParams {
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        ParetoNbdParams::conditional_expected_purchases(self, t, x, tx, big_t)
    }
    fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        ParetoNbdParams::p_alive(self, x, tx, big_t)
    }
    fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        ParetoNbdParams::p_alive_at(self, x, tx, big_t, t_future)
    }
    fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        ParetoNbdParams::prob_purchases(self, n, t)
    }
    fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        ParetoNbdParams::expected_purchases_new(self, t)
    }
    fn prob_purchases_if_alive(&self, n: u32, t: f64, x: f64, big_t: f64) -> Result<f64> {
        // Alive at T: lambda^x e^(-(lambda+mu) T), so lambda ~ Gamma(r+x, alpha+T) and
        // mu ~ Gamma(s, beta+T), independent; lifetimes are memoryless, so the future is a new
        // customer's under those parameters.
        self.validate()?;
        super::check_frequency_and_age(x, big_t)?;
        let ParetoNbdParams { r, alpha, s, beta } = *self;
        ParetoNbdParams {
            r: r + x,
            alpha: alpha + big_t,
            s,
            beta: beta + big_t,
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
        check_history(x, tx, big_t)?;
        for &t in horizons {
            check_horizon("t", t)?;
        }
        // The hypergeometric functions are all in P(alive): once per customer.
        let pa = self.p_alive_unchecked(x, tx, big_t);
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = self.alive_expectation(t, x, big_t) * pa;
        }
        Ok(())
    }

    fn expected_purchases_if_alive_many(
        &self,
        x: f64,
        big_t: f64,
        horizons: &[f64],
        out: &mut [f64],
    ) -> Option<Result<()>> {
        super::if_alive_many(self.validate(), x, big_t, horizons, out, |t| {
            self.alive_expectation(t, x, big_t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{cdnow, rel};
    use super::*;

    /// Published Pareto/NBD fit on CDNOW (FHL 2005, README).
    const PUB: ParetoNbdParams = ParetoNbdParams {
        r: 0.553,
        alpha: 10.578,
        s: 0.606,
        beta: 11.669,
    };

    #[test]
    fn cdnow_log_likelihood_matches_the_published_value() {
        // The sum of per-customer log-likelihoods at the published parameters is -9595.0 (README);
        // this exercises A_0 (the hypergeometric part of P(alive)) on 2,357 real histories.
        let ll: f64 = cdnow()
            .iter()
            .map(|&(x, tx, tt, _)| PUB.ln_likelihood(x, tx, tt).unwrap())
            .sum();
        assert!((ll - -9595.0).abs() < 0.05, "ll = {ll}");
    }

    #[test]
    fn p_alive_matches_the_integral_form_of_a0() {
        // A_0 s/(r+s+x) = s int_tx^T (alpha+u)^-(r+x) (beta+u)^-(s+1) du (dropout between the last
        // purchase and T); P(alive) = alive / (alive + that), both without hypergeometric functions.
        for &p in &[
            PUB,
            ParetoNbdParams {
                r: 2.0,
                alpha: 0.01,
                s: 3.0,
                beta: 50.0,
            },
        ] {
            let ParetoNbdParams { r, alpha, s, beta } = p;
            for &(x, tx, tt) in &[
                (2.0, 30.43, 38.86),
                (1.0, 1.71, 38.86),
                (0.0, 0.0, 38.86),
                (25.0, 10.0, 70.0),
            ] {
                // Scale by the value at tx to keep the integrand O(1).
                let ln_at = |u: f64| -(r + x) * (alpha + u).ln() - (s + 1.0) * (beta + u).ln();
                let l0 = ln_at(tx);
                let dead = s * integrate(|u| (ln_at(u) - l0).exp(), tx, tt, 1e-13);
                let alive = (-(r + x) * (alpha + tt).ln() - s * (beta + tt).ln() - l0).exp();
                rel(p.p_alive(x, tx, tt).unwrap(), alive / (alive + dead), 1e-10);
            }
        }
    }

    #[test]
    fn expectations_match_integration_over_the_dropout_rate() {
        // Given alive at T: lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T), and the expected
        // purchases in the next t are E[lambda] E[(1 - e^(-mu t)) / mu].
        for &p in &[
            PUB,
            ParetoNbdParams {
                r: 2.0,
                alpha: 0.5,
                s: 1.0,
                beta: 3.0,
            },
        ] {
            let ParetoNbdParams { r, alpha, s, beta } = p;
            for &(x, tx, tt) in &[(2.0, 30.43, 38.86), (0.0, 0.0, 0.0)] {
                for &t in &[1.0, 39.0, 5000.0] {
                    let rate = beta + tt;
                    let lg = ln_gamma(s);
                    // E over mu ~ Gamma(s, rate): mu = y / rate with y ~ Gamma(s, 1); y = v^(1/s)
                    // on [0, 1] removes the y^(s-1) endpoint singularity, the tail is cut at 80.
                    let g = |y: f64| -(-y * t / rate).exp_m1() / (y / rate);
                    let head = integrate(
                        |v| {
                            let y = v.powf(1.0 / s);
                            (-y - lg).exp() / s * g(y)
                        },
                        0.0,
                        1.0,
                        1e-13,
                    );
                    let tail = integrate(
                        |y| ((s - 1.0) * y.ln() - y - lg).exp() * g(y),
                        1.0,
                        80.0,
                        1e-13,
                    );
                    let want =
                        p.p_alive(x, tx, tt).unwrap() * (r + x) / (alpha + tt) * (head + tail);
                    rel(
                        p.conditional_expected_purchases(t, x, tx, tt).unwrap(),
                        want,
                        1e-9,
                    );
                }
            }
        }
    }

    #[test]
    fn pmf_sums_to_one_and_its_mean_is_the_expectation() {
        for &t in &[0.5, 39.0, 500.0] {
            let (mut total, mut mean) = (0.0, 0.0);
            for n in 0..20000u32 {
                let p = PUB.prob_purchases(n, t).unwrap();
                total += p;
                mean += n as f64 * p;
                if n > 50 && p < 1e-16 {
                    break;
                }
            }
            assert!((total - 1.0).abs() < 1e-9, "t={t}: sum {total}");
            rel(mean, PUB.expected_purchases_new(t).unwrap(), 1e-7);
        }
    }

    #[test]
    fn p_alive_at_is_survival_times_p_alive() {
        let (x, tx, tt) = (2.0, 30.43, 38.86);
        let now = PUB.p_alive(x, tx, tt).unwrap();
        let later = PUB.p_alive_at(x, tx, tt, 52.0).unwrap();
        rel(
            later,
            now * ((PUB.beta + tt) / (PUB.beta + tt + 52.0)).powf(PUB.s),
            1e-14,
        );
        assert!(later < now);
    }

    #[test]
    fn impossible_histories_and_overflow_are_errors_not_infinity() {
        use crate::ClvError;
        let extreme = ParetoNbdParams {
            r: 1e4,
            alpha: 1e-4,
            s: 1e-4,
            beta: 1e4,
        };
        // issue 8: frequency 1e300 at recency 0 and T 0 returned a non-finite value.
        match extreme.conditional_expected_purchases(1e6, 1e300, 0.0, 0.0) {
            Err(ClvError::InvalidParameter(m)) => assert!(m.contains("not a possible history")),
            other => panic!("{other:?}"),
        }
        // E[X(t)] = r/alpha * (beta/(s-1)) [1 - (beta/(beta+t))^(s-1)]: 1e8 * t for t << beta^...;
        // finite up to 1e300, out of range (not infinity) at f64::MAX.
        assert!(extreme.expected_purchases_new(1e300).unwrap() > 1e307);
        assert!(matches!(
            extreme.expected_purchases_new(f64::MAX),
            Err(ClvError::OutOfRange(_))
        ));
        assert!(matches!(
            extreme.conditional_expected_purchases(f64::MAX, 2.0, 1.0, 2.0),
            Err(ClvError::OutOfRange(_))
        ));
        // Long horizons of the published fit: finite and decreasing survival.
        let pa = |t: f64| PUB.p_alive_at(2.0, 30.43, 38.86, t).unwrap();
        assert!(pa(1e300) < pa(1e100) && pa(1e300) > 0.0);
    }
}
