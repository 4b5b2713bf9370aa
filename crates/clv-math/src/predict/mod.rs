//! Per-customer and population predictions of the purchase models and the Gamma-Gamma spend model,
//! with the semantics of `lifetimes` 0.11.3.
//!
//! Every model offers the same inherent methods (and the [`PurchaseModel`] trait, so CLV can be
//! generic):
//! * `conditional_expected_purchases(t, x, tx, big_t)`: expected repeat purchases in the next `t`
//!   periods of a customer with frequency `x`, recency `tx` and age `big_t`
//!   (`conditional_expected_number_of_purchases_up_to_time`);
//! * `p_alive(x, tx, big_t)` (`conditional_probability_alive`) and
//!   `p_alive_at(x, tx, big_t, t_future)`: probability of still being alive `t_future` periods
//!   after the end of observation;
//! * `prob_purchases(n, t)`: P(X(t) = n) for a new customer
//!   (`probability_of_n_purchases_up_to_time`);
//! * `expected_purchases_new(t)`: E[X(t)] for a new customer
//!   (`expected_number_of_purchases_up_to_time`).
//!
//! For BG/BB (discrete time) `x`, `tx`, `big_t` are counts of transaction opportunities and `t` is
//! a number of future opportunities.
//!
//! Inputs are validated (finite, non-negative, whole frequencies, recency <= age, recency 0 when
//! frequency is 0, as `lifetimes.utils._check_inputs` demands); parameters with
//! [`ModelParams::validate`]. All formulas are evaluated in log space where terms can overflow
//! (large frequencies and ages) and written so that removable singularities of the published
//! formulas (a = 1 for BG/NBD, s = 1 for Pareto/NBD, gamma = 1 for BG/BB) are evaluated by their
//! limits instead of producing NaN.

pub mod bgbb;
pub mod bgnbd;
pub mod charts;
pub mod distribution;
pub mod gamma_gamma;
pub mod mbgnbd;
pub mod paretonbd;
#[cfg(test)]
mod properties;

pub(crate) use crate::error::finite_result;
use crate::error::{finite, ClvError, Num, Result};
use crate::special::{exprel, ln_hyp2f1_near_one};

/// What CLV and scoring need from a purchase model. Implemented by the four purchase models by
/// delegating to their inherent methods of the same names.
pub trait PurchaseModel {
    /// Expected repeat purchases in (T, T + t] given the history (x, tx, T).
    fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, big_t: f64) -> Result<f64>;

    /// Probability that the customer is alive at the end of observation T.
    fn p_alive(&self, x: f64, tx: f64, big_t: f64) -> Result<f64>;

    /// Probability that the customer is alive at T + t_future.
    fn p_alive_at(&self, x: f64, tx: f64, big_t: f64, t_future: f64) -> Result<f64>;

    /// P(X(t) = n) for a customer who made the first purchase at time 0.
    fn prob_purchases(&self, n: u32, t: f64) -> Result<f64>;

    /// E[X(t)] for a customer who made the first purchase at time 0.
    fn expected_purchases_new(&self, t: f64) -> Result<f64>;

    /// P(X(t) = n | alive at T): exactly n purchases in (T, T + t] for a customer with frequency
    /// `x` and age `big_t` who is alive at T. Given alive, every model's posterior is the prior
    /// with updated parameters (see [`distribution`]), so this is `prob_purchases` of a new
    /// customer under those parameters.
    fn prob_purchases_if_alive(&self, n: u32, t: f64, x: f64, big_t: f64) -> Result<f64>;

    /// P(X(t) = n | x, tx, T): exactly n purchases in (T, T + t] given the history (lifetimes
    /// `conditional_probability_of_n_purchases_up_to_time` for Pareto/NBD):
    /// `P(alive) P(X(t) = n | alive) + (1 - P(alive)) [n = 0]`.
    fn conditional_prob_purchases(
        &self,
        n: u32,
        t: f64,
        x: f64,
        tx: f64,
        big_t: f64,
    ) -> Result<f64> {
        distribution::conditional_pmf(self, n, t, x, tx, big_t)
    }

    /// Cumulative conditional expected purchases at each horizon of `horizons` (written to `out`,
    /// same length), for one customer. Models override it to validate once and share the
    /// customer-level terms (P(alive), gamma functions) across horizons: it is the hot path of CLV.
    fn conditional_expected_purchases_many(
        &self,
        x: f64,
        tx: f64,
        big_t: f64,
        horizons: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = self.conditional_expected_purchases(t, x, tx, big_t)?;
        }
        Ok(())
    }

    /// E[purchases in (T, T + t] | alive at T] at each horizon: the conditional expectation is
    /// `p_alive(x, tx, T)` times this, and this depends on (x, T) only - given that the customer is
    /// alive, recency carries no further information. CLV over many customers shares it between
    /// customers of the same frequency and age (a million customers summarised in days have a few
    /// thousand such pairs). `None` for a model whose expectation is not written in this form.
    fn expected_purchases_if_alive_many(
        &self,
        _x: f64,
        _big_t: f64,
        _horizons: &[f64],
        _out: &mut [f64],
    ) -> Option<Result<()>> {
        None
    }
}

/// [`PurchaseModel::expected_purchases_if_alive_many`] for a model whose alive-expectation at one
/// horizon is `at(t)`: validates the parameters (`valid`), frequency, age and horizons once.
pub(crate) fn if_alive_many(
    valid: Result<()>,
    x: f64,
    big_t: f64,
    horizons: &[f64],
    out: &mut [f64],
    at: impl Fn(f64) -> f64,
) -> Option<Result<()>> {
    let checked = valid.and_then(|_| {
        check_frequency_and_age(x, big_t)?;
        horizons.iter().try_for_each(|&t| check_horizon("t", t))
    });
    Some(checked.map(|_| {
        for (o, &t) in out.iter_mut().zip(horizons) {
            *o = at(t);
        }
    }))
}

fn invalid(msg: String) -> ClvError {
    ClvError::InvalidParameter(msg)
}

/// Validate a frequency and an age (the part of a history that does not involve recency).
fn check_frequency_and_age(x: f64, big_t: f64) -> Result<()> {
    finite("frequency", x)?;
    finite("T", big_t)?;
    if x < 0.0 || x != x.floor() {
        return Err(invalid(format!(
            "frequency must be a whole number >= 0, got {x}",
            x = Num(x)
        )));
    }
    if big_t < 0.0 {
        return Err(invalid(format!(
            "T (customer age) must be >= 0, got {big_t}",
            big_t = Num(big_t)
        )));
    }
    Ok(())
}

/// Validate a continuous-time history (frequency, recency, age): whole frequency >= 0,
/// 0 <= recency <= T, recency 0 exactly when frequency is 0. In continuous time a repeat purchase
/// happens strictly after the first one, so frequency > 0 with recency 0 is not a possible
/// history (and with it the formulas return nonsense, e.g. infinity for a huge frequency).
pub(crate) fn check_history(x: f64, tx: f64, big_t: f64) -> Result<()> {
    check_frequency_and_age(x, big_t)?;
    finite("recency", tx)?;
    if tx < 0.0 {
        return Err(invalid(format!(
            "recency must be >= 0, got {tx}",
            tx = Num(tx)
        )));
    }
    if tx > big_t {
        return Err(invalid(format!(
            "recency ({tx}) must not exceed T ({big_t})",
            tx = Num(tx),
            big_t = Num(big_t)
        )));
    }
    if x == 0.0 && tx != 0.0 {
        return Err(invalid(format!(
            "recency must be 0 when frequency is 0 (no repeat purchase), got {tx}",
            tx = Num(tx)
        )));
    }
    if x > 0.0 && tx == 0.0 {
        return Err(invalid(format!(
            "recency must be > 0 when frequency is > 0: a repeat purchase comes after the first \
             one, so frequency {x} with recency 0 is not a possible history",
            x = Num(x)
        )));
    }
    Ok(())
}

/// An expectation that rounding may have pushed just below 0 (e.g. -1e-319); NaN passes
/// through, for [`finite_result`] to report.
pub(crate) fn nonneg(v: f64) -> f64 {
    if v <= 0.0 {
        0.0
    } else {
        v
    }
}

/// Validate a prediction horizon (a duration >= 0).
pub(crate) fn check_horizon(name: &str, t: f64) -> Result<()> {
    finite(name, t)?;
    if t < 0.0 {
        return Err(invalid(format!("{name} must be >= 0, got {t}", t = Num(t))));
    }
    Ok(())
}

/// 1 / (1 + exp(l)), accurate in both tails.
pub(crate) fn inv_one_plus_exp(l: f64) -> f64 {
    if l > 0.0 {
        let e = (-l).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + l.exp())
    }
}

/// The bracket shared by the BG/NBD and MBG/NBD expectations:
///
/// `[1 - 2F1(A, B; C; z) (1 - z)^(r+x)] / (a - 1)` with `C - B = a - 1`, written through Euler's
/// transform as `[1 - (1 - z)^(a-1) 2F1(p, a - 1; C; z)] / (a - 1)`, `p = C - A`, where
/// `(1 - z)^(c-A-B+r+x) = (1 - z)^(a-1)`. In that form the cancellation `1 - Y` is done by `expm1`
/// on ln Y, which is itself O(a - 1), so the bracket keeps its digits near a = 1; at a = 1 (a
/// removable singularity of the published formula) it is evaluated by Richardson extrapolation
/// of the symmetric values a = 1 +- d, 1 +- 2d.
///
/// `z` = t / (A + t) comes with `w` = 1 - z = A / (A + t) and `ln_w` = -ln(1 + t / A), computed
/// by the caller without cancellation (see [`OneMinus`]), so that long horizons keep their digits.
pub(crate) fn nbd_bracket(a: f64, p: f64, c: f64, z: OneMinus) -> f64 {
    let OneMinus { z, w, ln_w } = z;
    let ln1mz = ln_w;
    // p and C both contain a (p = a+b-1-r or a+b-r, C = a+b+x-1 or a+b+x), so evaluating at
    // another a' = 1 + am1 shifts them by a' - a.
    let f = |am1: f64| -> f64 {
        let shift = am1 - (a - 1.0);
        // 2F1 is positive for c > 0; it can be negative when c = a + b - 1 < 0 (x = 0, a + b < 1).
        let (ln_f, sign) = ln_hyp2f1_near_one(p + shift, am1, c + shift, z, w, ln_w);
        let ln_y = am1 * ln1mz + ln_f;
        if sign > 0.0 {
            -ln_y.exp_m1() / am1
        } else {
            (1.0 + ln_y.exp()) / am1
        }
    };
    let am1 = a - 1.0;
    if am1.abs() > 1e-5 {
        return f(am1);
    }
    let d = 1e-3;
    let g = |h: f64| 0.5 * (f(h) + f(-h));
    let at_one = (4.0 * g(d) - g(2.0 * d)) / 3.0;
    let slope = (f(d) - f(-d)) / (2.0 * d);
    at_one + am1 * slope
}

/// z = t / (A + t) in [0, 1] together with 1 - z = A / (A + t) and ln(1 - z) = -ln(1 + t / A),
/// each computed directly: for t much larger than A, 1 - z computed from z would lose its digits
/// (and be 0 once t > 2^53 A), which made long horizons infinite or NaN.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneMinus {
    pub z: f64,
    pub w: f64,
    pub ln_w: f64,
}

impl OneMinus {
    /// For t >= 0 and A > 0.
    pub(crate) fn of(t: f64, big_a: f64) -> Self {
        OneMinus {
            z: t / (big_a + t),
            w: big_a / (big_a + t),
            ln_w: -(t / big_a).ln_1p(),
        }
    }

    /// 2F1(a, b; c; z) in log space (see [`ln_hyp2f1_near_one`]).
    pub(crate) fn ln_hyp2f1(self, a: f64, b: f64, c: f64) -> f64 {
        ln_hyp2f1_near_one(a, b, c, self.z, self.w, self.ln_w).0
    }
}

/// `(1 - y^k) / k` for y in (0, 1], continuous at k = 0 (value -ln y).
pub(crate) fn one_minus_pow_over(y_ln: f64, k: f64) -> f64 {
    -y_ln * exprel(k * y_ln)
}

/// Test helpers shared by the model files: independent numerical routes.
#[cfg(test)]
pub(crate) mod testing {
    use crate::special::{integrate, ln_beta};

    /// E[g(p)] for p ~ Beta(a, b), by quadrature. The endpoint singularities p^(a-1) and
    /// (1-p)^(b-1) are removed by the substitutions p = v^(1/a) on [0, 1/2] and
    /// 1 - p = w^(1/b) on [1/2, 1].
    pub fn beta_expectation<G: Fn(f64) -> f64>(a: f64, b: f64, g: G) -> f64 {
        let lb = ln_beta(a, b);
        let lo = integrate(
            |v| {
                let p = v.powf(1.0 / a);
                ((b - 1.0) * (-p).ln_1p() - lb).exp() / a * g(p)
            },
            0.0,
            0.5f64.powf(a),
            1e-13,
        );
        let hi = integrate(
            |w| {
                let q = w.powf(1.0 / b);
                ((a - 1.0) * (-q).ln_1p() - lb).exp() / b * g(1.0 - q)
            },
            0.0,
            0.5f64.powf(b),
            1e-13,
        );
        lo + hi
    }

    fn read(rel: &str) -> String {
        let path = format!("{}/../../tests/data/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// (x, t_x, T, zbar) of the 2,357 CDNOW customers (weeks), see tests/data/README.md.
    pub fn cdnow() -> Vec<(f64, f64, f64, f64)> {
        read("cdnow/cdnow_customers_summary_with_transactions.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<f64> = l.split(',').map(|s| s.trim().parse().unwrap()).collect();
                (f[1], f[2], f[3], f[4])
            })
            .collect()
    }

    /// (frequency, recency, periods, weight) rows of the BG/BB donations benchmark.
    pub fn donations() -> Vec<(f64, f64, f64, f64)> {
        read("donations/donations.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<f64> = l.split(',').map(|s| s.trim().parse().unwrap()).collect();
                (f[0], f[1], f[2], f[3])
            })
            .collect()
    }

    #[track_caller]
    pub fn rel(got: f64, want: f64, tol: f64) {
        assert!(
            ((got - want) / want).abs() <= tol,
            "got {got}, want {want}, rel err {:e}",
            ((got - want) / want).abs()
        );
    }
}
