//! BG/NBD predictions (Fader, Hardie & Lee 2005; `lifetimes.BetaGeoFitter`).

use super::{
    check_history, check_horizon, finite_result, inv_one_plus_exp, nbd_bracket, nonneg, OneMinus,
    PurchaseModel,
};
use crate::error::Result;
use crate::params::{BgNbdParams, ModelParams};
use crate::special::{ln_beta, ln_gamma, ln_hyp2f1};

impl BgNbdParams {
    /// ln of the odds "dead : alive" at T; P(alive) = 1 / (1 + exp(this)). Only for x > 0 (with
    /// x = 0 a BG/NBD customer cannot have dropped out: dropout happens after repeat purchases).
    fn ln_dead_odds(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        // (r + x) ln((alpha + T) / (alpha + tx)) + ln(a / (b + x - 1)); ln_1p keeps T ~ tx exact.
        (self.r + x) * ((big_t - tx) / (self.alpha + tx)).ln_1p()
            + (self.a / (self.b + x - 1.0)).ln()
    }

    fn p_alive_unchecked(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        if x == 0.0 {
            1.0
        } else {
            inv_one_plus_exp(self.ln_dead_odds(x, tx, big_t))
        }
    }

    /// E[purchases in (T, T+t] | alive at T] * P(alive)^-1, i.e. lifetimes' numerator
    /// `(a+b+x-1)/(a-1) * [1 - 2F1(r+x, b+x; a+b+x-1; z) ((alpha+T)/(alpha+T+t))^(r+x)]`,
    /// z = t / (alpha + T + t).
    fn numerator(&self, t: f64, x: f64, big_t: f64) -> f64 {
        if t == 0.0 {
            return 0.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let c = a + b + x - 1.0;
        let z = OneMinus::of(t, alpha + big_t);
        if c == 0.0 {
            // Only for x = 0, a + b = 1: c * 2F1(.; c; z) -> r b z 2F1(r+1, b+1; 2; z) as c -> 0,
            // so the numerator is -(r b z / (a-1)) 2F1(r+1, b+1; 2; z) (1-z)^r.
            let ln = z.ln_hyp2f1(r + 1.0, b + 1.0, 2.0) + r * z.ln_w;
            return -(r * b * z.z / (a - 1.0)) * ln.exp();
        }
        c * nbd_bracket(a, a + b - 1.0 - r, c, z)
    }

    /// Expected number of repeat purchases in the next `t` periods for a customer with
    /// frequency `x`, recency `tx` and age `big_t` (FHL 2005 eq. 10; lifetimes
    /// `conditional_expected_number_of_purchases_up_to_time`).
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
            nonneg(self.numerator(t, x, big_t) * self.p_alive_unchecked(x, tx, big_t)),
        )
    }

    /// Probability of being alive at T (Fader, Hardie & Lee, note 021; lifetimes
    /// `conditional_probability_alive`): 1 for x = 0, otherwise
    /// `1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+tx))^(r+x))`.
    pub fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        finite_result("P(alive)", self.p_alive_unchecked(x, tx, big_t))
    }

    /// Probability of being alive at T + t_future.
    ///
    /// Given alive at T, the posterior is lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x)
    /// (independent: the likelihood of "alive at T" is lambda^x e^(-lambda T) (1-p)^x). A customer
    /// alive at T survives the next t_future periods iff none of the N ~ Poisson(lambda t_future)
    /// purchases there is followed by a dropout: E[(1-p)^N] = exp(-lambda p t_future). Averaging
    /// over lambda gives (1 + p u)^-(r+x), u = t_future/(alpha+T), and over p (Euler's integral)
    /// `2F1(r+x, a; a+b+x; -u)`. So P(alive at T+t) = P(alive at T) * 2F1(r+x, a; a+b+x; -u).
    pub fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        check_horizon("t_future", t_future)?;
        let BgNbdParams { r, alpha, a, b } = *self;
        let u = t_future / (alpha + big_t);
        let surv = ln_hyp2f1(r + x, a, a + b + x, -u).exp();
        finite_result(
            "P(alive)",
            (self.p_alive_unchecked(x, tx, big_t) * surv).clamp(0.0, 1.0),
        )
    }

    /// P(X(t) = n): probability of exactly n repeat purchases in (0, t] for a new customer
    /// (FHL 2005 eq. 8; lifetimes `probability_of_n_purchases_up_to_time`). The finite sum of the
    /// paper, `1 - (alpha/(alpha+t))^r sum_{j<n} ...`, is the upper tail P(NB >= n) of the
    /// negative binomial, computed without cancellation as `pmf(n) 2F1(r+n, 1; n+1; q)`,
    /// q = t/(alpha+t), in log space.
    pub fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        let BgNbdParams { r, alpha, a, b } = *self;
        if t == 0.0 {
            return Ok(if n == 0 { 1.0 } else { 0.0 });
        }
        let nf = n as f64;
        let q = OneMinus::of(t, alpha);
        let ln_pmf = nb_ln_pmf(r, alpha, nf, t);
        let lb = ln_beta(a, b);
        let mut p = (ln_beta(a, b + nf) - lb + ln_pmf).exp();
        if n > 0 {
            let ln_tail = ln_pmf + q.ln_hyp2f1(r + nf, 1.0, nf + 1.0);
            p += (ln_beta(a + 1.0, b + nf - 1.0) - lb + ln_tail).exp();
        }
        finite_result("the purchase probability", p.clamp(0.0, 1.0))
    }

    /// E[X(t)], expected repeat purchases in (0, t] for a new customer (FHL 2005 eq. 9; lifetimes
    /// `expected_number_of_purchases_up_to_time`): the conditional expectation at x = tx = T = 0.
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        finite_result("expected purchases", nonneg(self.numerator(t, 0.0, 0.0)))
    }
}

/// ln of the negative binomial (Poisson-Gamma) pmf: Gamma(r+n)/(Gamma(r) n!)
/// (alpha/(alpha+t))^r (t/(alpha+t))^n, for t > 0.
pub(crate) fn nb_ln_pmf(r: f64, alpha: f64, n: f64, t: f64) -> f64 {
    let ln_q = (t / (alpha + t)).ln();
    let ln_1mq = -(t / alpha).ln_1p();
    let lg = ln_gamma(r + n) - ln_gamma(r) - ln_gamma(n + 1.0);
    if n == 0.0 {
        lg + r * ln_1mq
    } else {
        lg + r * ln_1mq + n * ln_q
    }
}

impl PurchaseModel for BgNbdParams {
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        BgNbdParams::conditional_expected_purchases(self, t, x, tx, big_t)
    }
    fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        BgNbdParams::p_alive(self, x, tx, big_t)
    }
    fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        BgNbdParams::p_alive_at(self, x, tx, big_t, t_future)
    }
    fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        BgNbdParams::prob_purchases(self, n, t)
    }
    fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        BgNbdParams::expected_purchases_new(self, t)
    }
    fn prob_purchases_if_alive(&self, n: u32, t: f64, x: f64, big_t: f64) -> Result<f64> {
        // Alive at T: likelihood (1-p)^x lambda^x e^(-lambda T), so lambda ~ Gamma(r+x, alpha+T),
        // p ~ Beta(a, b+x), and the future is a new customer's under those parameters.
        self.validate()?;
        super::check_frequency_and_age(x, big_t)?;
        let BgNbdParams { r, alpha, a, b } = *self;
        BgNbdParams {
            r: r + x,
            alpha: alpha + big_t,
            a,
            b: b + x,
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
        let pa = self.p_alive_unchecked(x, tx, big_t);
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = self.numerator(t, x, big_t) * pa;
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
            self.numerator(t, x, big_t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lifetimes 0.11.3 maximum-likelihood fit on CDNOW (README).
    const FIT: BgNbdParams = BgNbdParams {
        r: 0.242593,
        alpha: 4.413532,
        a: 0.792886,
        b: 2.425752,
    };
    /// The rounded published fit (FHL 2005).
    const PUB: BgNbdParams = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    #[track_caller]
    fn rel(got: f64, want: f64, tol: f64) {
        assert!(((got - want) / want).abs() <= tol, "got {got}, want {want}");
    }

    #[test]
    fn cdnow_reference_customers() {
        // (x, t_x, T) of the first CDNOW customers and lifetimes' outputs (README).
        let customers = [(2.0, 30.43, 38.86), (1.0, 1.71, 38.86), (0.0, 0.0, 38.86)];
        let ce = [1.225910, 0.203251, 0.194781];
        let pa = [0.726609, 0.212227, 1.0];
        for (i, &(x, tx, tt)) in customers.iter().enumerate() {
            rel(
                FIT.conditional_expected_purchases(39.0, x, tx, tt).unwrap(),
                ce[i],
                1e-4,
            );
            rel(FIT.p_alive(x, tx, tt).unwrap(), pa[i], 1e-4);
        }
    }

    #[test]
    fn unconditional_expectation_and_pmf() {
        // E[X(t)] to the digits the README gives.
        for &(t, want, digits) in &[
            (1.0, 0.0532, 4),
            (3.0, 0.1506, 4),
            (32.0, 1.0437, 4),
            (78.0, 1.858, 3),
        ] {
            let got = FIT.expected_purchases_new(t).unwrap();
            let scale = 10f64.powi(digits);
            assert_eq!((got * scale).round() / scale, want, "E[X({t})] = {got}");
        }
        // R BTYD values with the rounded published parameters.
        rel(PUB.prob_purchases(0, 39.0).unwrap(), 0.5737864, 1e-6);
        rel(PUB.prob_purchases(10, 2.0).unwrap(), 1.07869e-07, 1e-5);
    }

    #[test]
    fn pmf_sums_to_one_and_its_mean_is_the_expectation() {
        for &t in &[0.5, 39.0, 500.0] {
            let mut total = 0.0;
            let mut mean = 0.0;
            for n in 0..20000u32 {
                let p = FIT.prob_purchases(n, t).unwrap();
                total += p;
                mean += n as f64 * p;
                if n > 50 && p < 1e-18 {
                    break;
                }
            }
            assert!((total - 1.0).abs() < 1e-9, "t={t}: sum {total}");
            rel(mean, FIT.expected_purchases_new(t).unwrap(), 1e-7);
        }
    }

    #[test]
    fn expectations_match_integration_over_the_dropout_probability() {
        // Given lambda and p, a customer alive now buys (1 - e^(-lambda p t)) / p times in the next
        // t; averaging over lambda ~ Gamma(r', alpha') gives (1 - (alpha'/(alpha'+p t))^r') / p,
        // then over p ~ Beta(a, b') by quadrature. New customer: r' = r, alpha' = alpha, b' = b;
        // given (x, tx, T) and alive: r + x, alpha + T, b + x, times P(alive).
        use super::super::testing::{beta_expectation, rel};
        for &p in &[
            FIT,
            BgNbdParams {
                r: 2.0,
                alpha: 0.5,
                a: 3.5,
                b: 0.7,
            },
        ] {
            let BgNbdParams { r, alpha, a, b } = p;
            for &t in &[0.3, 39.0, 1000.0] {
                let want = beta_expectation(a, b, |q| -(-r * (q * t / alpha).ln_1p()).exp_m1() / q);
                rel(p.expected_purchases_new(t).unwrap(), want, 1e-9);
                for &(x, tx, tt) in &[(2.0, 30.43, 38.86), (0.0, 0.0, 38.86), (40.0, 70.0, 71.0)] {
                    let pa = p.p_alive(x, tx, tt).unwrap();
                    let want = pa
                        * beta_expectation(a, b + x, |q| {
                            -(-(r + x) * (q * t / (alpha + tt)).ln_1p()).exp_m1() / q
                        });
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
    fn a_equal_to_one_is_the_limit() {
        // The published formula divides by a - 1; the value at a = 1 must sit between its
        // neighbours and agree with them to first order.
        let p = |a: f64| BgNbdParams {
            r: 0.5,
            alpha: 3.0,
            a,
            b: 2.0,
        };
        let at = p(1.0)
            .conditional_expected_purchases(20.0, 3.0, 15.0, 30.0)
            .unwrap();
        let lo = p(1.0 - 1e-3)
            .conditional_expected_purchases(20.0, 3.0, 15.0, 30.0)
            .unwrap();
        let hi = p(1.0 + 1e-3)
            .conditional_expected_purchases(20.0, 3.0, 15.0, 30.0)
            .unwrap();
        assert!(at.is_finite());
        rel(at, 0.5 * (lo + hi), 1e-5);
        let e = p(1.0).expected_purchases_new(52.0).unwrap();
        rel(
            e,
            0.5 * (p(1.0 + 1e-4).expected_purchases_new(52.0).unwrap()
                + p(1.0 - 1e-4).expected_purchases_new(52.0).unwrap()),
            1e-7,
        );
        // a + b = 1 with x = 0 makes the hypergeometric c parameter zero.
        let q = |b: f64| BgNbdParams {
            r: 0.5,
            alpha: 3.0,
            a: 0.4,
            b,
        };
        let at = q(0.6).expected_purchases_new(10.0).unwrap();
        rel(
            at,
            0.5 * (q(0.6 + 1e-6).expected_purchases_new(10.0).unwrap()
                + q(0.6 - 1e-6).expected_purchases_new(10.0).unwrap()),
            1e-8,
        );
    }

    #[test]
    fn p_alive_at_matches_simulation() {
        // Independent route for the 2F1: integrate (1 + p u)^-(r+x) numerically over the
        // posterior p ~ Beta(a, b+x). (simulate.rs checks the story itself by simulation.)
        let (x, tx, tt, tf) = (2.0, 30.43, 38.86, 26.0);
        let BgNbdParams { r, alpha, a, b } = FIT;
        let u = tf / (alpha + tt);
        let lb = ln_beta(a, b + x);
        // Substitute p = v^(1/a) to remove the p^(a-1) endpoint singularity.
        let f = |v: f64| {
            let p = v.powf(1.0 / a);
            ((b + x - 1.0) * (-p).ln_1p() - (r + x) * (p * u).ln_1p()).exp() / a
        };
        let integral = crate::special::integrate(f, 0.0, 1.0, 1e-12) / lb.exp();
        let want = FIT.p_alive(x, tx, tt).unwrap() * integral;
        rel(FIT.p_alive_at(x, tx, tt, tf).unwrap(), want, 1e-9);
        assert_eq!(
            FIT.p_alive_at(x, tx, tt, 0.0).unwrap(),
            FIT.p_alive(x, tx, tt).unwrap()
        );
    }

    #[test]
    fn invalid_inputs_are_rejected() {
        use crate::ClvError::InvalidParameter;
        let bad = |r: Result<f64>| assert!(matches!(r, Err(InvalidParameter(_))), "{r:?}");
        bad(FIT.p_alive(1.0, 40.0, 38.0));
        bad(FIT.p_alive(-1.0, 0.0, 38.0));
        bad(FIT.p_alive(1.5, 1.0, 38.0));
        bad(FIT.p_alive(0.0, 3.0, 38.0));
        bad(FIT.p_alive(f64::NAN, 0.0, 38.0));
        bad(FIT.conditional_expected_purchases(-1.0, 1.0, 1.0, 2.0));
        bad(FIT.conditional_expected_purchases(f64::INFINITY, 1.0, 1.0, 2.0));
        bad(FIT.prob_purchases(1, -2.0));
        bad(BgNbdParams { a: 0.0, ..FIT }.expected_purchases_new(1.0));
        bad(BgNbdParams { r: f64::NAN, ..FIT }.expected_purchases_new(1.0));
    }

    #[test]
    fn long_horizons_keep_their_digits_and_stay_finite() {
        use super::super::testing::beta_expectation;
        // issue 8: E[X(1e300)] was infinite, because t / (alpha + t) rounds to 1.
        let e = PUB.expected_purchases_new(1e300).unwrap();
        assert!(e.is_finite() && e > 1e60, "{e}");
        // a < 1: E[X(t)] grows like t^(1 - a).
        rel(
            e / PUB.expected_purchases_new(1e299).unwrap(),
            10f64.powf(1.0 - PUB.a),
            1e-6,
        );
        // a > 1: it tends to E[1/p] = (a + b - 1) / (a - 1), the mean number of purchases
        // before the geometric dropout.
        let p = BgNbdParams { a: 1.793, ..PUB };
        let limit = (p.a + p.b - 1.0) / (p.a - 1.0);
        rel(p.expected_purchases_new(1e300).unwrap(), limit, 1e-12);
        rel(p.expected_purchases_new(f64::MAX).unwrap(), limit, 1e-12);
        // Where 1 - z computed from z had lost half its digits: the integration route agrees.
        let BgNbdParams { r, alpha, a, b } = FIT;
        for t in [1e8, 1e12] {
            let want = beta_expectation(a, b, |q| -(-r * (q * t / alpha).ln_1p()).exp_m1() / q);
            rel(FIT.expected_purchases_new(t).unwrap(), want, 1e-9);
        }
        // P(alive at T + t) falls towards 0 (it was 1 past t ~ 1e17).
        let pa = |t: f64| PUB.p_alive_at(2.0, 30.43, 38.86, t).unwrap();
        assert!(pa(1e300) < pa(1e100) && pa(1e100) < pa(1e17) && pa(1e17) < 1e-11);
        assert!(PUB
            .conditional_expected_purchases(1e300, 2.0, 30.43, 38.86)
            .unwrap()
            .is_finite());
        // Only where t / alpha itself overflows: out of range, never NaN or infinity.
        let extreme = BgNbdParams {
            r: 1e4,
            alpha: 1e-4,
            a: 1e-4,
            b: 1e4,
        };
        assert!(matches!(
            extreme.expected_purchases_new(f64::MAX),
            Err(crate::ClvError::OutOfRange(_))
        ));
    }

    #[test]
    fn repeat_purchases_need_a_positive_recency() {
        // issue 8: frequency 2 at recency 0 is not a possible history.
        for r in [
            PUB.conditional_expected_purchases(39.0, 2.0, 0.0, 38.86),
            PUB.p_alive(2.0, 0.0, 38.86),
            PUB.p_alive_at(2.0, 0.0, 38.86, 5.0),
        ] {
            match r {
                Err(crate::ClvError::InvalidParameter(m)) => {
                    assert!(m.contains("not a possible history"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(PUB.p_alive(0.0, 0.0, 38.86).is_ok());
    }
}
