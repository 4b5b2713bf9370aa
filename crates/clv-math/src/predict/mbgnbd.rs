//! MBG/NBD predictions (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008;
//! `lifetimes.ModifiedBetaGeoFitter`). Unlike BG/NBD, a customer may drop out right after the
//! first purchase too, so P(alive) < 1 even without repeat purchases.

use super::bgnbd::nb_ln_pmf;
use super::{
    check_history, check_horizon, finite_result, inv_one_plus_exp, nbd_bracket, nonneg, OneMinus,
    PurchaseModel,
};
use crate::error::Result;
use crate::params::{BgNbdParams, MbgNbdParams, ModelParams};
use crate::special::{ln_beta, ln_hyp2f1};

impl MbgNbdParams {
    fn p_alive_unchecked(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        // 1 / (1 + a/(b+x) ((alpha+T)/(alpha+tx))^(r+x)), in log space.
        let l = (self.r + x) * ((big_t - tx) / (self.alpha + tx)).ln_1p()
            + (self.a / (self.b + x)).ln();
        inv_one_plus_exp(l)
    }

    /// `(a+b+x)/(a-1) [1 - 2F1(r+x, b+x+1; a+b+x; z) ((alpha+T)/(alpha+T+t))^(r+x)]`,
    /// z = t/(alpha+T+t): expected purchases in the next t given alive at T.
    fn numerator(&self, t: f64, x: f64, big_t: f64) -> f64 {
        if t == 0.0 {
            return 0.0;
        }
        let MbgNbdParams { r, alpha, a, b } = *self;
        let c = a + b + x;
        // Euler: C - A = a + b - r, C - B = a - 1.
        c * nbd_bracket(a, a + b - r, c, OneMinus::of(t, alpha + big_t))
    }

    /// Expected repeat purchases in the next `t` periods given (x, tx, T) (lifetimes
    /// `conditional_expected_number_of_purchases_up_to_time`, Wagner & Hoppe 2008).
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

    /// Probability of being alive at T (Batislam et al. 2007, appendix A eq. 5; lifetimes
    /// `conditional_probability_alive`).
    pub fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        finite_result("P(alive)", self.p_alive_unchecked(x, tx, big_t))
    }

    /// Probability of being alive at T + t_future. As for BG/NBD (see
    /// [`BgNbdParams::p_alive_at`](crate::params::BgNbdParams)), but surviving to T means x + 1
    /// coin flips (one at the first purchase), so the posterior is p ~ Beta(a, b+x+1) and
    /// P(alive at T+t) = P(alive at T) * 2F1(r+x, a; a+b+x+1; -t/(alpha+T)).
    pub fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        self.validate()?;
        check_history(x, tx, big_t)?;
        check_horizon("t_future", t_future)?;
        let MbgNbdParams { r, alpha, a, b } = *self;
        let u = t_future / (alpha + big_t);
        let surv = ln_hyp2f1(r + x, a, a + b + x + 1.0, -u).exp();
        finite_result(
            "P(alive)",
            (self.p_alive_unchecked(x, tx, big_t) * surv).clamp(0.0, 1.0),
        )
    }

    /// P(X(t) = n) for a new customer (lifetimes `probability_of_n_purchases_up_to_time`):
    /// `B(a, b+n+1)/B(a,b) pmf(n) + B(a+1, b+n)/B(a,b) P(NB >= n)`, the negative binomial tail
    /// computed as `pmf(n) 2F1(r+n, 1; n+1; q)` (no cancellation), and 1 for n = 0.
    pub fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        let MbgNbdParams { r, alpha, a, b } = *self;
        let nf = n as f64;
        let lb = ln_beta(a, b);
        if t == 0.0 {
            return Ok(if n == 0 { 1.0 } else { 0.0 });
        }
        let q = OneMinus::of(t, alpha);
        let ln_pmf = nb_ln_pmf(r, alpha, nf, t);
        let ln_tail = if n == 0 {
            0.0
        } else {
            ln_pmf + q.ln_hyp2f1(r + nf, 1.0, nf + 1.0)
        };
        let p = (ln_beta(a, b + nf + 1.0) - lb + ln_pmf).exp()
            + (ln_beta(a + 1.0, b + nf) - lb + ln_tail).exp();
        finite_result("the purchase probability", p.clamp(0.0, 1.0))
    }

    /// E[X(t)] for a new customer (lifetimes `expected_number_of_purchases_up_to_time`):
    /// `b/(a-1) [1 - 2F1(r, b+1; a+b; q) (alpha/(alpha+t))^r]`, q = t/(alpha+t).
    pub fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        self.validate()?;
        check_horizon("t", t)?;
        if t == 0.0 {
            return Ok(0.0);
        }
        let MbgNbdParams { r, alpha, a, b } = *self;
        finite_result(
            "expected purchases",
            nonneg(b * nbd_bracket(a, a + b - r, a + b, OneMinus::of(t, alpha))),
        )
    }
}

impl PurchaseModel for MbgNbdParams {
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        MbgNbdParams::conditional_expected_purchases(self, t, x, tx, big_t)
    }
    fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64> {
        MbgNbdParams::p_alive(self, x, tx, big_t)
    }
    fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64> {
        MbgNbdParams::p_alive_at(self, x, tx, big_t, t_future)
    }
    fn prob_purchases(&self, n: u32, t: f64) -> Result<f64> {
        MbgNbdParams::prob_purchases(self, n, t)
    }
    fn expected_purchases_new(&self, t: f64) -> Result<f64> {
        MbgNbdParams::expected_purchases_new(self, t)
    }
    fn prob_purchases_if_alive(&self, n: u32, t: f64, x: f64, big_t: f64) -> Result<f64> {
        // Alive at T means x + 1 survived coin flips (one at the first purchase): p ~
        // Beta(a, b+x+1), lambda ~ Gamma(r+x, alpha+T). From T on a customer drops out only after
        // purchases, as a BG/NBD customer does, so the future is BG/NBD's new-customer pmf.
        self.validate()?;
        super::check_frequency_and_age(x, big_t)?;
        let MbgNbdParams { r, alpha, a, b } = *self;
        BgNbdParams {
            r: r + x,
            alpha: alpha + big_t,
            a,
            b: b + x + 1.0,
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
    use super::super::testing::{beta_expectation, rel};
    use super::*;

    /// BTYDplus' MBG/NBD fit on CDNOW (README).
    const PUB: MbgNbdParams = MbgNbdParams {
        r: 0.525,
        alpha: 6.183,
        a: 0.891,
        b: 1.614,
    };

    #[test]
    fn expectations_match_integration_over_the_dropout_probability() {
        // Given lambda and p, a new customer survives the first purchase with probability 1 - p and
        // then buys (1 - e^(-lambda p t)) / p times on average; lambda ~ Gamma(r, alpha) turns the
        // exponential into (alpha/(alpha + p t))^r; p ~ Beta(a, b) by quadrature. Given (x, tx, T)
        // and alive: r + x, alpha + T, p ~ Beta(a, b + x + 1), no first-purchase factor.
        for &p in &[
            PUB,
            MbgNbdParams {
                r: 3.0,
                alpha: 0.2,
                a: 2.5,
                b: 0.3,
            },
        ] {
            let MbgNbdParams { r, alpha, a, b } = p;
            for &t in &[0.3, 39.0, 1000.0] {
                let want = beta_expectation(a, b, |q| {
                    (1.0 - q) * -(-r * (q * t / alpha).ln_1p()).exp_m1() / q
                });
                rel(p.expected_purchases_new(t).unwrap(), want, 1e-9);
                for &(x, tx, tt) in &[(2.0, 30.43, 38.86), (0.0, 0.0, 38.86), (40.0, 70.0, 71.0)] {
                    let pa = p.p_alive(x, tx, tt).unwrap();
                    let want = pa
                        * beta_expectation(a, b + x + 1.0, |q| {
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
    fn p_alive_and_its_future() {
        // x = 0, T = 0: alive iff the first-purchase coin flip spared the customer: b / (a + b).
        rel(
            PUB.p_alive(0.0, 0.0, 0.0).unwrap(),
            PUB.b / (PUB.a + PUB.b),
            1e-15,
        );
        let (x, tx, tt, tf) = (2.0, 30.43, 38.86, 26.0);
        let MbgNbdParams { r, alpha, a, b } = PUB;
        let want = PUB.p_alive(x, tx, tt).unwrap()
            * beta_expectation(a, b + x + 1.0, |q| {
                (-(r + x) * (q * tf / (alpha + tt)).ln_1p()).exp()
            });
        rel(PUB.p_alive_at(x, tx, tt, tf).unwrap(), want, 1e-9);
    }

    #[test]
    fn pmf_sums_to_one_and_its_mean_is_the_expectation() {
        for &t in &[0.5, 39.0, 500.0] {
            let (mut total, mut mean) = (0.0, 0.0);
            for n in 0..20000u32 {
                let p = PUB.prob_purchases(n, t).unwrap();
                total += p;
                mean += n as f64 * p;
                if n > 50 && p < 1e-18 {
                    break;
                }
            }
            assert!((total - 1.0).abs() < 1e-9, "t={t}: sum {total}");
            rel(mean, PUB.expected_purchases_new(t).unwrap(), 1e-7);
        }
    }

    #[test]
    fn long_horizons_stay_finite() {
        // a < 1: grows like t^(1 - a); a > 1: tends to E[(1 - p) / p] = b / (a - 1).
        let e = PUB.expected_purchases_new(1e300).unwrap();
        rel(
            e / PUB.expected_purchases_new(1e299).unwrap(),
            10f64.powf(1.0 - PUB.a),
            1e-6,
        );
        let p = MbgNbdParams { a: 2.5, ..PUB };
        rel(
            p.expected_purchases_new(1e300).unwrap(),
            p.b / (p.a - 1.0),
            1e-12,
        );
        let pa = |t: f64| PUB.p_alive_at(2.0, 30.43, 38.86, t).unwrap();
        assert!(pa(1e300) < pa(1e100) && pa(1e100) < 1e-30);
        // P(X(t) = n) tends to the geometric E[p (1 - p)^n] = B(a + 1, b + n) / B(a, b).
        rel(
            PUB.prob_purchases(3, 1e300).unwrap(),
            (ln_beta(PUB.a + 1.0, PUB.b + 3.0) - ln_beta(PUB.a, PUB.b)).exp(),
            1e-9,
        );
        assert!(matches!(
            PUB.conditional_expected_purchases(39.0, 2.0, 0.0, 38.86),
            Err(crate::ClvError::InvalidParameter(_))
        ));
    }
}
