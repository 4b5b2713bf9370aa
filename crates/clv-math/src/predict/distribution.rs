//! The conditional purchase distribution P(X(t) = n | x, tx, T): how many purchases a customer
//! with this history makes in the next `t` periods.
//!
//! Every purchase model splits the posterior the same way. The likelihood of a history is a term
//! "alive at T" plus a term "dropped out before T"; the alive term has the prior's form with
//! updated parameters (BG/NBD: lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x); MBG/NBD the same
//! with Beta(a, b+x+1); Pareto/NBD: Gamma(r+x, alpha+T) and Gamma(s, beta+T); BG/BB:
//! Beta(alpha+x, beta+T-x) and Beta(gamma, delta+T)), and the models are memoryless, so a customer
//! alive at T is, from then on, a new customer under those parameters. Hence
//!
//! ```text
//! P(X(t) = n | x, tx, T) = P(alive) P_new(X(t) = n; updated parameters) + (1 - P(alive)) [n = 0]
//! ```
//!
//! This reuses each model's new-customer pmf, which is computed without cancellation (negative
//! binomial tails by a hypergeometric series, the Pareto/NBD lifetime by quadrature), instead of
//! the closed form of lifetimes' `conditional_probability_of_n_purchases_up_to_time` (Pareto/NBD),
//! a difference of hypergeometric terms that loses every digit for heavy buyers. The mean of the
//! distribution is `conditional_expected_purchases` (tested for every model).

use super::{finite_result, PurchaseModel};
use crate::error::{ClvError, Result};

/// Where [`conditional_distribution`] stops: when the probability of more purchases than listed
/// is below this.
pub const TAIL: f64 = 1e-10;

/// P(X(t) = n | x, tx, T), see the module documentation.
pub fn conditional_pmf<M: PurchaseModel + ?Sized>(
    model: &M,
    n: u32,
    t: f64,
    x: f64,
    tx: f64,
    big_t: f64,
) -> Result<f64> {
    let alive = model.p_alive(x, tx, big_t)?;
    mix(alive, model.prob_purchases_if_alive(n, t, x, big_t)?, n)
}

/// P(alive) P(X = n | alive) + (1 - P(alive)) [n = 0].
fn mix(alive: f64, if_alive: f64, n: u32) -> Result<f64> {
    let dead = if n == 0 { 1.0 - alive } else { 0.0 };
    finite_result(
        "the purchase probability",
        (alive * if_alive + dead).clamp(0.0, 1.0),
    )
}

/// The distribution of X(t) given the history: P(X(t) = 0), P(X(t) = 1), ... up to the first n
/// after which less than [`TAIL`] probability remains. An expected number of purchases above
/// `max_n`, or more than `max_n + 1` values needed, is an error (the caller asks for a horizon so
/// long that the list would be huge).
pub fn conditional_distribution<M: PurchaseModel + ?Sized>(
    model: &M,
    t: f64,
    x: f64,
    tx: f64,
    big_t: f64,
    max_n: u32,
) -> Result<Vec<f64>> {
    let alive = model.p_alive(x, tx, big_t)?;
    // A mean beyond max_n means the list cannot end by max_n: say so before computing thousands
    // of terms (each a series or a quadrature).
    let mean = model.conditional_expected_purchases(t, x, tx, big_t)?;
    if mean > max_n as f64 {
        return Err(ClvError::InvalidParameter(format!(
            "the expected number of purchases ({mean:.1}) exceeds max_n ({max_n}); raise max_n or shorten the horizon"
        )));
    }
    let mut out = Vec::new();
    let mut total = 0.0;
    for n in 0..=max_n {
        crate::interrupt::check();
        let p = mix(alive, model.prob_purchases_if_alive(n, t, x, big_t)?, n)?;
        out.push(p);
        total += p;
        if 1.0 - total < TAIL {
            return Ok(out);
        }
    }
    Err(ClvError::InvalidParameter(format!(
        "more than {max_n} + 1 purchase counts are needed to reach probability 1 - {TAIL:e} \
         (P(X <= {max_n}) = {total}); raise max_n or shorten the horizon"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{BgBbParams, BgNbdParams, MbgNbdParams, ParetoNbdParams};

    /// The check values of issue 11 (computed elsewhere at 50 digits).
    #[test]
    fn pareto_nbd_heavy_buyer() {
        let m = ParetoNbdParams {
            r: 0.55,
            alpha: 10.58,
            s: 0.61,
            beta: 11.67,
        };
        for (n, want) in [
            (0, 0.0066232),
            (3, 0.0805734),
            (6, 0.1536087),
            (9, 0.0766865),
        ] {
            let got = m
                .conditional_prob_purchases(n, 10.0, 132.0, 200.0, 200.0)
                .unwrap();
            assert!((got - want).abs() < 5e-8, "P({n}) = {got}, want {want}");
        }
    }

    fn models() -> Vec<(&'static str, Box<dyn PurchaseModel>)> {
        vec![
            (
                "bgnbd",
                Box::new(BgNbdParams {
                    r: 0.242594150135,
                    alpha: 4.41359212062,
                    a: 0.792919156875,
                    b: 2.42589249843,
                }),
            ),
            (
                "mbgnbd",
                Box::new(MbgNbdParams {
                    r: 0.525,
                    alpha: 6.183,
                    a: 0.891,
                    b: 1.614,
                }),
            ),
            (
                "paretonbd",
                Box::new(ParetoNbdParams {
                    r: 0.553325,
                    alpha: 10.578474,
                    s: 0.606224,
                    beta: 11.669958,
                }),
            ),
        ]
    }

    /// Sums to 1, and its mean is the model's conditional expectation, for light and heavy
    /// buyers and short and long horizons.
    #[test]
    fn sums_to_one_with_the_conditional_mean() {
        for (name, m) in models() {
            for &(x, tx, big_t) in &[
                (0.0, 0.0, 38.86),
                (2.0, 30.43, 38.86),
                (5.0, 10.0, 38.0),
                (132.0, 200.0, 200.0),
                (40.0, 38.0, 39.0),
            ] {
                for &t in &[1.0, 10.0, 39.0] {
                    let d = conditional_distribution(m.as_ref(), t, x, tx, big_t, 10_000).unwrap();
                    let total: f64 = d.iter().sum();
                    let mean: f64 = d.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
                    let want = m.conditional_expected_purchases(t, x, tx, big_t).unwrap();
                    assert!((total - 1.0).abs() < 2e-10, "{name} {x} {t}: sum {total}");
                    assert!(
                        (mean - want).abs() < 1e-7 * want.max(1.0),
                        "{name} ({x}, {tx}, {big_t}) t={t}: mean {mean}, expected {want}"
                    );
                    assert_eq!(
                        d[3.min(d.len() - 1)],
                        m.conditional_prob_purchases(3.min(d.len() as u32 - 1), t, x, tx, big_t)
                            .unwrap()
                    );
                }
            }
        }
    }

    /// BG/BB in opportunities: the same identities, and nothing beyond t purchases.
    #[test]
    fn bgbb_distribution() {
        let m = BgBbParams {
            alpha: 1.204,
            beta: 0.750,
            gamma: 0.657,
            delta: 2.783,
        };
        for &(x, tx, n) in &[(0.0, 0.0, 6.0), (3.0, 5.0, 6.0), (6.0, 6.0, 6.0)] {
            let d = conditional_distribution(&m, 5.0, x, tx, n, 100).unwrap();
            assert!(d.len() <= 6);
            let mean: f64 = d.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
            let want = m.conditional_expected_purchases(5.0, x, tx, n).unwrap();
            assert!(
                (mean - want).abs() < 1e-9,
                "({x}, {tx}, {n}): {mean} vs {want}"
            );
        }
    }

    /// Every value of an independent table (tests/data/pxn: direct numerical integration over
    /// the posterior at 40 digits with mpmath, not our closed form): 70 cases of BG/NBD, MBG/NBD
    /// and Pareto/NBD, seven customers from no repeat purchase to x = 132, horizons 1, 10, 39.
    #[test]
    fn agrees_with_posterior_integration() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/pxn/reference.json"
        );
        let cases: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let f = |v: &serde_json::Value| v.as_f64().unwrap();
        let mut checked = 0;
        for c in cases.as_array().unwrap() {
            let p = &c["params"];
            let model: Box<dyn PurchaseModel> = match c["model"].as_str().unwrap() {
                "bgnbd" => Box::new(BgNbdParams {
                    r: f(&p["r"]),
                    alpha: f(&p["alpha"]),
                    a: f(&p["a"]),
                    b: f(&p["b"]),
                }),
                "mbgnbd" => Box::new(MbgNbdParams {
                    r: f(&p["r"]),
                    alpha: f(&p["alpha"]),
                    a: f(&p["a"]),
                    b: f(&p["b"]),
                }),
                _ => Box::new(ParetoNbdParams {
                    r: f(&p["r"]),
                    alpha: f(&p["alpha"]),
                    s: f(&p["s"]),
                    beta: f(&p["beta"]),
                }),
            };
            let (x, tx, big_t, t) = (f(&c["x"]), f(&c["t_x"]), f(&c["T"]), f(&c["t"]));
            let want_alive = f(&c["p_alive"]);
            let got_alive = model.p_alive(x, tx, big_t).unwrap();
            assert!(
                (got_alive - want_alive).abs() < 1e-12,
                "{c}: P(alive) {got_alive}"
            );
            for (n, want) in c["pmf"].as_array().unwrap().iter().enumerate() {
                let want = f(want);
                let got = model
                    .conditional_prob_purchases(n as u32, t, x, tx, big_t)
                    .unwrap();
                assert!(
                    (got - want).abs() <= 1e-10 * want + 1e-13,
                    "{} ({x}, {tx}, {big_t}) t={t} n={n}: {got} vs {want}",
                    c["model"]
                );
                checked += 1;
            }
        }
        assert!(checked > 1000, "{checked} probabilities checked");
    }

    /// An impossible history or horizon is refused, and a list longer than max_n is an error.
    #[test]
    fn bad_input() {
        let (_, m) = models().remove(0);
        assert!(m
            .conditional_prob_purchases(1, 10.0, 2.0, 40.0, 38.0)
            .is_err());
        assert!(m
            .conditional_prob_purchases(1, -1.0, 2.0, 30.0, 38.0)
            .is_err());
        assert!(m
            .conditional_prob_purchases(1, f64::NAN, 2.0, 30.0, 38.0)
            .is_err());
        assert!(conditional_distribution(m.as_ref(), 1e4, 40.0, 38.0, 39.0, 5).is_err());
    }
}
