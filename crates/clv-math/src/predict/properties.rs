//! Property tests: every prediction is finite and in range over frequencies 0..10,000, ages up to
//! 100,000 periods and parameters log-uniform in [1e-4, 1e4].

use super::PurchaseModel;
use crate::clv::customer_lifetime_value_with_spend;
use crate::params::{BgBbParams, BgNbdParams, GammaGammaParams, MbgNbdParams, ParetoNbdParams};
use proptest::prelude::*;

fn param() -> impl Strategy<Value = f64> {
    (-4.0f64..4.0).prop_map(|e| 10f64.powf(e))
}

/// (x, tx, T, t): frequency 0..10,000, T log-uniform-ish up to 1e5 (or 0), recency a fraction of T
/// (> 0 when x > 0).
fn history() -> impl Strategy<Value = (f64, f64, f64, f64)> {
    (
        0u32..=10_000,
        prop_oneof![Just(0.0), (-2.0f64..5.0).prop_map(|e| 10f64.powf(e))],
        0.0f64..=1.0,
        (-3.0f64..5.0),
    )
        .prop_map(|(x, big_t, u, te)| {
            // A repeat purchase comes after the first: frequency > 0 needs recency > 0.
            let x = if x % 3 == 0 || big_t == 0.0 {
                0.0
            } else {
                x as f64
            };
            let tx = if x == 0.0 { 0.0 } else { u.max(1e-3) * big_t };
            (x, tx, big_t, 10f64.powf(te))
        })
}

/// Checks shared by the continuous-time models.
fn check_continuous<M: PurchaseModel>(
    m: &M,
    (x, tx, big_t, t): (f64, f64, f64, f64),
) -> Result<(), TestCaseError> {
    let ce = m.conditional_expected_purchases(t, x, tx, big_t).unwrap();
    prop_assert!(ce.is_finite() && ce >= 0.0, "E[X(T, T+t)] = {}", ce);
    let ce2 = m
        .conditional_expected_purchases(2.0 * t, x, tx, big_t)
        .unwrap();
    prop_assert!(
        ce2 >= ce * (1.0 - 1e-9),
        "E not increasing in t: {} then {}",
        ce,
        ce2
    );

    let pa = m.p_alive(x, tx, big_t).unwrap();
    prop_assert!((0.0..=1.0).contains(&pa), "P(alive) = {}", pa);
    let older = m.p_alive(x, tx, big_t * 1.5 + 1.0).unwrap();
    prop_assert!(
        older <= pa + 1e-12,
        "P(alive) increased with T: {} then {}",
        pa,
        older
    );
    let pat = m.p_alive_at(x, tx, big_t, t).unwrap();
    prop_assert!(
        (0.0..=1.0).contains(&pat) && pat <= pa + 1e-12,
        "P(alive at T+t) = {} vs {}",
        pat,
        pa
    );

    let e = m.expected_purchases_new(t).unwrap();
    prop_assert!(e.is_finite() && e >= 0.0, "E[X(t)] = {}", e);
    let e2 = m.expected_purchases_new(2.0 * t).unwrap();
    prop_assert!(
        e2 >= e * (1.0 - 1e-9),
        "E[X(t)] not increasing: {} then {}",
        e,
        e2
    );

    let clv = customer_lifetime_value_with_spend(m, 10.0, x, tx, big_t, 12, 0.01, 4.345).unwrap();
    prop_assert!(clv.is_finite() && clv >= -1e-9 * clv.abs(), "CLV = {}", clv);
    Ok(())
}

fn check_pmf<M: PurchaseModel>(m: &M, n: u32, t: f64) -> Result<(), TestCaseError> {
    let p = m.prob_purchases(n, t).unwrap();
    prop_assert!((0.0..=1.0).contains(&p), "P(X({}) = {}) = {}", t, n, p);
    Ok(())
}

proptest! {
    // 300 cases by default; PROPTEST_CASES overrides (for longer stress runs).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn bgnbd_predictions_are_finite_and_in_range(r in param(), alpha in param(), a in param(), b in param(), h in history(), n in 0u32..200) {
        let m = BgNbdParams { r, alpha, a, b };
        check_continuous(&m, h)?;
        check_pmf(&m, n, h.3)?;
    }

    #[test]
    fn mbgnbd_predictions_are_finite_and_in_range(r in param(), alpha in param(), a in param(), b in param(), h in history(), n in 0u32..200) {
        let m = MbgNbdParams { r, alpha, a, b };
        check_continuous(&m, h)?;
        check_pmf(&m, n, h.3)?;
    }

    #[test]
    fn paretonbd_predictions_are_finite_and_in_range(r in param(), alpha in param(), s in param(), beta in param(), h in history()) {
        let m = ParetoNbdParams { r, alpha, s, beta };
        check_continuous(&m, h)?;
    }

    #[test]
    fn bgbb_predictions_are_finite_and_in_range(
        alpha in param(), beta in param(), gamma in param(), delta in param(),
        n in 0u32..=100_000, ufx in 0.0f64..=1.0, utx in 0.0f64..=1.0, t in 0u32..2_000, k in 0u32..50,
    ) {
        let m = BgBbParams { alpha, beta, gamma, delta };
        let tx = (utx * n as f64).floor();
        let x = (ufx * tx).floor().min(10_000.0);
        let x = if tx == 0.0 { 0.0 } else { x.max(1.0) };
        let (t, nf) = (t as f64, n as f64);
        let ce = m.conditional_expected_purchases(t, x, tx, nf).unwrap();
        prop_assert!(ce.is_finite() && ce >= 0.0 && ce <= t + 1e-9, "E = {}", ce);
        let pa = m.p_alive(x, tx, nf).unwrap();
        prop_assert!((0.0..=1.0).contains(&pa), "P(alive) = {}", pa);
        if tx < nf {
            prop_assert!(m.p_alive(x, tx, nf + 1.0).unwrap() <= pa + 1e-12);
        }
        let pat = m.p_alive_at(x, tx, nf, t).unwrap();
        prop_assert!(pat <= pa + 1e-12 && pat >= 0.0);
        let e = m.expected_purchases_new(t).unwrap();
        prop_assert!(e.is_finite() && e >= 0.0 && e <= t + 1e-9, "E[X(t)] = {}", e);
        let small_t = (t as u32) % 300;
        check_pmf(&m, k.min(small_t), small_t as f64)?;
    }

    #[test]
    fn gamma_gamma_spend_is_between_the_observed_and_population_means(p in param(), q in 1.0001f64..1e4, v in param(), x in 0u32..=10_000, m in 0.0f64..1e6) {
        let g = GammaGammaParams { p, q, v };
        let s = g.conditional_expected_spend(x as f64, m).unwrap();
        let pop = g.population_mean_spend().unwrap();
        let (lo, hi) = if m < pop { (m, pop) } else { (pop, m) };
        prop_assert!(s.is_finite() && s >= lo * (1.0 - 1e-12) && s <= hi * (1.0 + 1e-12), "{} not in [{}, {}]", s, lo, hi);
    }
}
