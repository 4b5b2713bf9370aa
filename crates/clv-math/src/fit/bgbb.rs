//! BG/BB likelihood (Fader, Hardie & Shang 2010, eq. 5; `lifetimes.BetaGeoBetaBinomFitter`), for
//! x transactions in n opportunities, the last at opportunity t_x:
//!
//! ```text
//! L = B(alpha + x, beta + n - x) / B(alpha, beta) * B(gamma, delta + n) / B(gamma, delta)
//!   + sum_{j=0}^{n - t_x - 1} B(alpha + x, beta + t_x - x + j) / B(alpha, beta)
//!                            * B(gamma + 1, delta + t_x + j) / B(gamma, delta)
//! ```
//!
//! `lifetimes` adds 1e-15 inside the logarithm of the sum (so it is never log(0) when t_x = n); we
//! leave the empty sum out instead, which changes the log-likelihood by ~1e-12 and keeps it exact.
//! The sum is evaluated with the ratio of consecutive terms (no gamma function per term); terms
//! decrease with j, so the first one sets the scale. Gradient w.r.t. log-parameters by hand.

use super::{
    finish, grid, invalid, log_add_exp_w, solve, CustomerRow, Fit, FitOptions, ModelText,
    Objective, CHECK_EVERY,
};
use crate::error::Result;
use crate::interrupt::Ticker;
use crate::params::{BgBbParams, ModelParams};
use crate::special::{digamma, ln_beta};

const MODEL: &str = "BG/BB";
/// Its NoConvergence messages speak of opportunities, not of time.
const TEXT: ModelText = ModelText {
    name: MODEL,
    scale: "(alpha, beta, gamma and delta are fitted as they are, without rescaling)",
    data: "these transaction histories (frequency, recency, n_periods)",
    hint: "try a penalizer_coef such as 0.001, or check the input for a customer with an extreme \
           frequency, recency or number of opportunities n_periods",
};
/// The likelihood sums n - t_x terms per row and iteration; beyond this many opportunities (27
/// years of daily ones) the input is almost certainly not a discrete-opportunity count.
const MAX_PERIODS: f64 = 10_000.0;

pub(crate) struct BgBb {
    rows: Vec<CustomerRow>,
    total_w: f64,
}

impl Objective for BgBb {
    fn dim(&self) -> usize {
        4
    }

    fn total_weight(&self) -> f64 {
        self.total_w
    }

    fn ll_grad(&self, y: &[f64], grad: &mut [f64], check: fn()) -> f64 {
        let (al, be, ga, de) = (y[0].exp(), y[1].exp(), y[2].exp(), y[3].exp());
        let c = -ln_beta(al, be) - ln_beta(ga, de);
        let dc = [
            digamma(al + be) - digamma(al),
            digamma(al + be) - digamma(be),
            digamma(ga + de) - digamma(ga),
            digamma(ga + de) - digamma(de),
        ];
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        let mut work = 0usize;
        for row in &self.rows {
            // A row costs a dozen digamma calls plus one step per opportunity after t_x.
            work += 1;
            if work.is_multiple_of(CHECK_EVERY) {
                check();
            }
            let (x, tx, n, w) = (row.x, row.tx, row.t, row.w);
            // A: alive through all n opportunities.
            let a = ln_beta(al + x, be + n - x) + ln_beta(ga, de + n);
            let da = [
                digamma(al + x) - digamma(al + be + n),
                digamma(be + n - x) - digamma(al + be + n),
                digamma(ga) - digamma(ga + de + n),
                digamma(de + n) - digamma(ga + de + n),
            ];
            let (l, d) = if tx < n {
                // B: dropped out at one of the opportunities t_x + 1 .. n.
                let t0 = ln_beta(al + x, be + tx - x) + ln_beta(ga + 1.0, de + tx);
                let dt0 = [
                    digamma(al + x) - digamma(al + be + tx),
                    digamma(be + tx - x) - digamma(al + be + tx),
                    digamma(ga + 1.0) - digamma(ga + 1.0 + de + tx),
                    digamma(de + tx) - digamma(ga + 1.0 + de + tx),
                ];
                // sum of rho_j = term_j / term_0 and of rho_j * d ln rho_j.
                let (mut rho, mut dlr) = (1.0, [0.0; 4]);
                let (mut s, mut ds) = (1.0, [0.0; 4]);
                let terms = (n - tx) as usize;
                for j in 1..terms {
                    work += 1;
                    if work.is_multiple_of(CHECK_EVERY) {
                        check();
                    }
                    let k = (j - 1) as f64;
                    let (p1, q1) = (be + tx - x + k, al + be + tx + k);
                    let (p2, q2) = (de + tx + k, ga + 1.0 + de + tx + k);
                    rho *= (p1 / q1) * (p2 / q2);
                    dlr[0] -= 1.0 / q1;
                    dlr[1] += 1.0 / p1 - 1.0 / q1;
                    dlr[2] -= 1.0 / q2;
                    dlr[3] += 1.0 / p2 - 1.0 / q2;
                    s += rho;
                    for i in 0..4 {
                        ds[i] += rho * dlr[i];
                    }
                }
                let b = t0 + s.ln();
                let (l, pa) = log_add_exp_w(a, b);
                let mut d = [0.0; 4];
                for i in 0..4 {
                    d[i] = pa * da[i] + (1.0 - pa) * (dt0[i] + ds[i] / s);
                }
                (l, d)
            } else {
                (a, da)
            };
            ll += w * (c + l);
            for i in 0..4 {
                g[i] += w * (dc[i] + d[i]);
            }
        }
        for (i, p) in [al, be, ga, de].into_iter().enumerate() {
            grad[i] = g[i] * p;
        }
        ll
    }
}

/// Row validation; returns the total weight.
fn validate(rows: &[CustomerRow]) -> Result<f64> {
    if rows.is_empty() {
        return Err(invalid(format!("{MODEL}: no customers to fit")));
    }
    let mut total_w = 0.0;
    let mut tick = Ticker::new();
    for (i, r) in rows.iter().enumerate() {
        tick.tick();
        let n = i + 1;
        for (name, v) in [
            ("frequency", r.x),
            ("recency", r.tx),
            ("n_periods", r.t),
            ("weight", r.w),
        ] {
            if !v.is_finite() {
                return Err(invalid(format!(
                    "{MODEL}: row {n}: {name} must be a finite number, got {v}"
                )));
            }
            if name != "weight" && (v < 0.0 || v != v.trunc()) {
                return Err(invalid(format!(
                    "{MODEL}: row {n}: {name} must be a whole number >= 0, got {v}"
                )));
            }
        }
        if !(r.x <= r.tx && r.tx <= r.t) {
            return Err(invalid(format!(
                "{MODEL}: row {n}: need frequency <= recency <= n_periods, got frequency {}, recency {}, n_periods {}",
                r.x, r.tx, r.t
            )));
        }
        if r.x == 0.0 && r.tx != 0.0 {
            return Err(invalid(format!(
                "{MODEL}: row {n}: recency {} must be 0 when frequency is 0",
                r.tx
            )));
        }
        if r.t > MAX_PERIODS {
            return Err(invalid(format!(
                "{MODEL}: row {n}: n_periods {} exceeds the supported maximum of {MAX_PERIODS}",
                r.t
            )));
        }
        if !(r.w > 0.0) {
            return Err(invalid(format!(
                "{MODEL}: row {n}: weight must be > 0, got {}",
                r.w
            )));
        }
        total_w += r.w;
    }
    if !total_w.is_finite() {
        return Err(invalid(format!(
            "{MODEL}: the total weight {total_w} is not finite"
        )));
    }
    Ok(total_w)
}

/// Total weighted BG/BB log-likelihood; in each row `x` = frequency, `tx` = recency (both in
/// periods) and `t` = number of opportunities n.
pub fn log_likelihood(params: &BgBbParams, rows: &[CustomerRow]) -> Result<f64> {
    params.validate()?;
    let total_w = validate(rows)?;
    let y: Vec<f64> = params.to_vec().iter().map(|v| v.ln()).collect();
    let ll = BgBb {
        rows: rows.to_vec(),
        total_w,
    }
    .ll_grad(&y, &mut [0.0; 4], crate::interrupt::check);
    if ll.is_finite() {
        Ok(ll)
    } else {
        Err(invalid(format!(
            "{MODEL}: the log-likelihood is not finite at {params:?}"
        )))
    }
}

/// Maximum-likelihood BG/BB fit (`t` = number of opportunities; no time scaling, the penalty
/// applies to alpha, beta, gamma, delta as they are).
pub fn fit_bgbb(rows: &[CustomerRow], o: &FitOptions) -> Result<Fit<BgBbParams>> {
    o.validate()?;
    let total_w = validate(rows)?;
    if !rows.iter().any(|r| r.x > 0.0) {
        return Err(invalid(format!(
            "{MODEL}: no customer made a transaction (all frequencies are 0); the transaction probability cannot be estimated"
        )));
    }
    let obj = BgBb {
        rows: rows.to_vec(),
        total_w,
    };
    let starts = grid(&[&[0.5, 2.0], &[0.5, 2.0], &[0.5, 2.0], &[0.5, 2.0]]);
    // Few rows (one per distinct history over n opportunities): no preview needed.
    let sol = solve(
        &obj,
        None,
        &starts,
        o.penalizer,
        o,
        &TEXT,
        BgBbParams::NAMES,
    )?;
    let e: Vec<f64> = sol.y.iter().map(|v| v.exp()).collect();
    let params = BgBbParams {
        alpha: e[0],
        beta: e[1],
        gamma: e[2],
        delta: e[3],
    };
    let ll = log_likelihood(&params, rows).unwrap_or(f64::NAN);
    finish(params, ll, total_w, sol, &TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ClvError;
    use crate::fit::testdata::{assert_rel, check_gradient, donations};

    #[test]
    fn donations_match_published_fit() {
        let rows = donations();
        assert_eq!(rows.len(), 22);
        let fit = fit_bgbb(&rows, &FitOptions::default()).unwrap();
        let p = fit.params;
        // Precise maximum from lifetimes 0.11.3 (numpy 2.4.6, scipy 1.17.1) on the same data.
        for (got, want) in p.to_vec().iter().zip([
            1.2035223936080381,
            0.7497163581757634,
            0.6567181695499512,
            2.7834419828876076,
        ]) {
            assert_rel("parameter vs lifetimes", *got, want, 1e-4);
        }
        for (name, got, want) in [
            ("alpha", p.alpha, 1.204),
            ("beta", p.beta, 0.750),
            ("gamma", p.gamma, 0.657),
            ("delta", p.delta, 2.783),
        ] {
            assert!(
                (got - want).abs() <= 0.0005 + 1e-9,
                "{name}: got {got}, want {want}"
            );
        }
        assert!(
            (fit.log_likelihood - -33225.6).abs() < 0.1,
            "{}",
            fit.log_likelihood
        );
        assert_eq!(fit.n_customers, 11104.0);
        assert!(fit.converged && fit.std_errors.is_some(), "{fit:?}");
    }

    /// The likelihood summed over every possible (x, t_x) history of n opportunities is 1.
    #[test]
    fn likelihood_is_a_distribution_over_histories() {
        let n = 7.0;
        let mut rows = vec![CustomerRow {
            x: 0.0,
            tx: 0.0,
            t: n,
            w: 1.0,
        }];
        for tx in 1..=7 {
            for x in 1..=tx {
                rows.push(CustomerRow {
                    x: x as f64,
                    tx: tx as f64,
                    t: n,
                    w: 1.0,
                });
            }
        }
        let p = BgBbParams {
            alpha: 1.3,
            beta: 0.7,
            gamma: 0.6,
            delta: 2.5,
        };
        // Each (x, t_x) stands for C(t_x - 1, x - 1) distinct purchase strings.
        let binom =
            |a: u64, b: u64| (0..b).fold(1.0, |acc, i| acc * (a - i) as f64 / (i + 1) as f64);
        let total: f64 = rows
            .iter()
            .map(|r| {
                let count = if r.x == 0.0 {
                    1.0
                } else {
                    binom(r.tx as u64 - 1, r.x as u64 - 1)
                };
                count * log_likelihood(&p, &[*r]).unwrap().exp()
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let obj = BgBb {
            rows: donations(),
            total_w: 11104.0,
        };
        for p in [
            [1.204, 0.750, 0.657, 2.783],
            [0.1, 5.0, 3.0, 0.2],
            [20.0, 0.3, 0.05, 40.0],
        ] {
            let y: Vec<f64> = p.iter().map(|v: &f64| v.ln()).collect();
            check_gradient(&obj, &y, 1e-6);
        }
    }

    #[test]
    fn weights_equal_expanded_rows() {
        // Expand the 22 patterns into one row per donor (11,104 rows).
        let rows = donations();
        let expanded: Vec<CustomerRow> = rows
            .iter()
            .flat_map(|r| std::iter::repeat_n(CustomerRow { w: 1.0, ..*r }, r.w as usize))
            .collect();
        assert_eq!(expanded.len(), 11104);
        let a = fit_bgbb(&rows, &FitOptions::default()).unwrap();
        let b = fit_bgbb(&expanded, &FitOptions::default()).unwrap();
        for (x, y) in a.params.to_vec().iter().zip(b.params.to_vec()) {
            assert_rel("param", y, *x, 1e-6);
        }
        assert!((a.log_likelihood - b.log_likelihood).abs() < 1e-5);
    }

    #[test]
    fn penalizer_shrinks_parameters() {
        let rows = donations();
        let free = fit_bgbb(&rows, &FitOptions::default()).unwrap();
        let pen = fit_bgbb(
            &rows,
            &FitOptions {
                penalizer: 0.1,
                ..FitOptions::default()
            },
        )
        .unwrap();
        // Reference: lifetimes 0.11.3 (numpy 2.4.6, scipy 1.17.1) fitted to the same data with
        // penalizer_coef = 0.1; agreement to 1e-4 relative checks the time scaling and
        // the penalty's exact meaning.
        for (got, want) in pen.params.to_vec().iter().zip([
            0.5347855710844229,
            0.39138703054881885,
            0.16668062898959546,
            0.4922130915884588,
        ]) {
            assert_rel("penalised parameter", *got, want, 1e-4);
        }
        let norm = |p: &BgBbParams| p.to_vec().iter().map(|v| v * v).sum::<f64>();
        assert!(
            norm(&pen.params) < 0.9 * norm(&free.params),
            "{:?} vs {:?}",
            pen.params,
            free.params
        );
        assert!(pen.log_likelihood < free.log_likelihood);
    }

    #[test]
    fn invalid_inputs_are_rejected() {
        let ok = CustomerRow {
            x: 2.0,
            tx: 4.0,
            t: 6.0,
            w: 10.0,
        };
        let o = FitOptions::default();
        for r in [
            CustomerRow { x: 2.5, ..ok },
            CustomerRow { tx: 4.5, ..ok },
            CustomerRow { t: 6.5, ..ok },
            CustomerRow { x: 5.0, ..ok },
            CustomerRow { tx: 7.0, ..ok },
            CustomerRow {
                x: 0.0,
                tx: 2.0,
                ..ok
            },
            CustomerRow { x: -1.0, ..ok },
            CustomerRow { w: 0.0, ..ok },
            CustomerRow { t: f64::NAN, ..ok },
            CustomerRow { t: 1e7, ..ok },
        ] {
            assert!(
                matches!(fit_bgbb(&[ok, r], &o), Err(ClvError::InvalidParameter(_))),
                "{r:?} accepted"
            );
        }
        let none = [CustomerRow {
            x: 0.0,
            tx: 0.0,
            t: 6.0,
            w: 100.0,
        }];
        assert!(matches!(
            fit_bgbb(&none, &o),
            Err(ClvError::InvalidParameter(_))
        ));
        assert!(matches!(
            fit_bgbb(&[], &o),
            Err(ClvError::InvalidParameter(_))
        ));
    }
}
