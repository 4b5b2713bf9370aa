//! Gamma-Gamma spend likelihood (Fader & Hardie 2013, eq. 1a; `lifetimes.GammaGammaFitter`), for a
//! customer with x repeat purchases of mean value m:
//!
//! ```text
//! ll = lnG(p x + q) - lnG(p x) - lnG(q) + q ln(v) + (p x - 1) ln(m) + p x ln(x) - (p x + q) ln(x m + v)
//! ```
//!
//! Rows with x = 0 carry no spend information and are ignored (lifetimes users filter them out
//! before fitting). No time scaling: the penalty applies to p, q, v as they are.
//! Gradient w.r.t. log-parameters by hand.

use super::{
    finish, frequency_groups, grid, invalid, log_parameter_hessian, solve, spend_preview, Fit,
    FitOptions, ModelText, Objective, SpendRow, CHECK_EVERY,
};
use crate::error::Result;
use crate::interrupt::Ticker;
use crate::params::{GammaGammaParams, ModelParams};
use crate::special::{digamma, ln_gamma, trigamma};

const MODEL: &str = "Gamma-Gamma";
/// Its NoConvergence messages speak of spend: a spend model has no customer history or time.
const TEXT: ModelText = ModelText {
    name: MODEL,
    scale: "(p and q are unitless, v is in the currency of the monetary values)",
    data: "these repeat buyers' frequencies and mean spends (monetary values)",
    hint: "try a penalizer_coef such as 0.001, or check the input for a customer with an extreme \
           frequency or mean spend (monetary value); the model needs repeat buyers whose mean \
           spends differ",
};

struct Row {
    x: f64,
    m: f64,
    w: f64,
}

pub(crate) struct GammaGamma {
    rows: Vec<Row>,
    groups: Vec<(f64, f64)>,
    total_w: f64,
    // Constant sums over rows: sum w x (ln m + ln x), sum w ln m.
    s_wx_lnmx: f64,
    s_w_lnm: f64,
}

impl GammaGamma {
    /// `rows` must be validated; rows with x = 0 are dropped here.
    pub(crate) fn new(rows: &[SpendRow]) -> Self {
        let rows: Vec<Row> = rows
            .iter()
            .filter(|r| r.x > 0.0)
            .map(|r| Row {
                x: r.x,
                m: r.m,
                w: r.w,
            })
            .collect();
        let groups = frequency_groups(rows.iter().map(|r| (r.x, r.w)));
        let (mut total_w, mut s_wx_lnmx, mut s_w_lnm) = (0.0, 0.0, 0.0);
        let mut tick = Ticker::new();
        for r in &rows {
            tick.tick();
            total_w += r.w;
            s_wx_lnmx += r.w * r.x * (r.m.ln() + r.x.ln());
            s_w_lnm += r.w * r.m.ln();
        }
        GammaGamma {
            total_w,
            s_wx_lnmx,
            s_w_lnm,
            rows,
            groups,
        }
    }
}

impl Objective for GammaGamma {
    fn dim(&self) -> usize {
        3
    }

    fn total_weight(&self) -> f64 {
        self.total_w
    }

    fn ll_grad(&self, y: &[f64], grad: &mut [f64], check: fn()) -> f64 {
        let (ll, g, _) = self.pass::<false>(y, check);
        // Natural-parameter derivatives to log-parameters.
        for i in 0..3 {
            grad[i] = g[i] * y[i].exp();
        }
        ll
    }

    /// In closed form, from the same pass as the gradient (see [`GammaGamma::pass`]).
    fn ll_hessian(&self, y: &[f64], check: fn()) -> Option<Vec<Vec<f64>>> {
        let (_, g, h) = self.pass::<true>(y, check);
        Some(log_parameter_hessian(
            [y[0].exp(), y[1].exp(), y[2].exp()],
            g,
            h,
        ))
    }

    /// v is in currency units (not rescaled, to keep lifetimes' penalty): its magnitude follows
    /// the spend level.
    fn typical_log(&self) -> Vec<f64> {
        let mean_m = self.rows.iter().map(|r| r.w * r.m).sum::<f64>() / self.total_w;
        vec![0.0, 0.0, mean_m.ln()]
    }
}

impl GammaGamma {
    /// One pass at log-parameters `y`: the log-likelihood, its gradient with respect to the
    /// natural parameters (p, q, v) and, with `HESSIAN`, the upper triangle of their Hessian
    /// (trigamma per frequency group; per row, derivatives of -(p x + q) ln(x m + v)).
    fn pass<const HESSIAN: bool>(&self, y: &[f64], check: fn()) -> (f64, [f64; 3], [[f64; 3]; 3]) {
        let (p, q, v) = (y[0].exp(), y[1].exp(), y[2].exp());
        let w = self.total_w;
        // Terms that do not involve the per-row ln(x m + v).
        let mut ll = w * (q * v.ln() - ln_gamma(q)) + p * self.s_wx_lnmx - self.s_w_lnm;
        let mut g = [self.s_wx_lnmx, w * (v.ln() - digamma(q)), w * q / v];
        let mut h = [[0.0; 3]; 3];
        if HESSIAN {
            h[1][1] = -w * trigamma(q);
            h[1][2] = w / v;
            h[2][2] = -w * q / (v * v);
        }
        for (i, &(x, wx)) in self.groups.iter().enumerate() {
            // Distinct frequencies are few in practice, but as many as the rows at worst.
            if i % CHECK_EVERY == CHECK_EVERY - 1 {
                check();
            }
            let dg_pxq = digamma(p * x + q);
            ll += wx * (ln_gamma(p * x + q) - ln_gamma(p * x));
            g[0] += wx * x * (dg_pxq - digamma(p * x));
            g[1] += wx * dg_pxq;
            if HESSIAN {
                let tg_pxq = trigamma(p * x + q);
                h[0][0] += wx * x * x * (tg_pxq - trigamma(p * x));
                h[0][1] += wx * x * tg_pxq;
                h[1][1] += wx * tg_pxq;
            }
        }
        for (i, r) in self.rows.iter().enumerate() {
            if i % CHECK_EVERY == CHECK_EVERY - 1 {
                check();
            }
            let xm_v = r.x * r.m + v;
            let l = xm_v.ln();
            let pxq = p * r.x + q;
            ll -= r.w * pxq * l;
            g[0] -= r.w * r.x * l;
            g[1] -= r.w * l;
            g[2] -= r.w * pxq / xm_v;
            if HESSIAN {
                let inv = 1.0 / xm_v;
                h[0][2] -= r.w * r.x * inv;
                h[1][2] -= r.w * inv;
                h[2][2] += r.w * pxq * inv * inv;
            }
        }
        (ll, g, h)
    }
}

/// Row validation; returns the total weight of the rows with x > 0.
fn validate(rows: &[SpendRow]) -> Result<f64> {
    if rows.is_empty() {
        return Err(invalid(format!("{MODEL}: no customers to fit")));
    }
    let mut total_w = 0.0;
    let mut tick = Ticker::new();
    for (i, r) in rows.iter().enumerate() {
        tick.tick();
        let n = i + 1;
        for (name, v) in [("frequency", r.x), ("monetary value", r.m), ("weight", r.w)] {
            if !v.is_finite() {
                return Err(invalid(format!(
                    "{MODEL}: row {n}: {name} must be a finite number, got {v}"
                )));
            }
        }
        if r.x < 0.0 || r.x != r.x.trunc() {
            return Err(invalid(format!(
                "{MODEL}: row {n}: frequency must be a whole number >= 0, got {}",
                r.x
            )));
        }
        if !(r.w > 0.0) {
            return Err(invalid(format!(
                "{MODEL}: row {n}: weight must be > 0, got {}",
                r.w
            )));
        }
        if r.x > 0.0 {
            if !(r.m > 0.0) {
                return Err(invalid(format!(
                    "{MODEL}: row {n}: monetary value must be > 0 for a repeat buyer, got {} (frequency {})",
                    r.m, r.x
                )));
            }
            total_w += r.w;
        }
    }
    if total_w == 0.0 {
        return Err(invalid(format!(
            "{MODEL}: no customer made a repeat purchase (all frequencies are 0); the spend model needs repeat buyers"
        )));
    }
    if !total_w.is_finite() {
        return Err(invalid(format!(
            "{MODEL}: the total weight {total_w} is not finite"
        )));
    }
    Ok(total_w)
}

/// Total weighted Gamma-Gamma log-likelihood of the rows with x > 0 at `params`.
pub fn log_likelihood(params: &GammaGammaParams, rows: &[SpendRow]) -> Result<f64> {
    params.validate()?;
    validate(rows)?;
    let y: Vec<f64> = params.to_vec().iter().map(|v| v.ln()).collect();
    let ll = GammaGamma::new(rows).ll_grad(&y, &mut [0.0; 3], crate::interrupt::check);
    if ll.is_finite() {
        Ok(ll)
    } else {
        Err(invalid(format!(
            "{MODEL}: the log-likelihood is not finite at {params:?}"
        )))
    }
}

/// Maximum-likelihood Gamma-Gamma fit on the rows with x > 0 (see the [module docs](super)).
pub fn fit_gamma_gamma(rows: &[SpendRow], o: &FitOptions) -> Result<Fit<GammaGammaParams>> {
    o.validate()?;
    let total_w = validate(rows)?;
    let obj = GammaGamma::new(rows);

    // E[m] = p v / (q - 1) for q > 1: start v so the population mean matches the data's.
    let mean_m = obj.rows.iter().map(|r| r.w * r.m).sum::<f64>() / total_w;
    let mut starts = Vec::new();
    for (p0, q0) in [(1.0, 2.0), (1.0, 5.0), (5.0, 2.0), (5.0, 5.0), (0.5, 1.5)] {
        starts.extend(grid(&[&[p0], &[q0], &[mean_m * (q0 - 1.0) / p0]]));
    }
    starts.push(vec![0.1; 3]);

    let preview = spend_preview(rows).map(|s| GammaGamma::new(&s));
    let sol = solve(
        &obj,
        preview.as_ref().map(|p| p as &dyn Objective),
        &starts,
        o.penalizer,
        o,
        &TEXT,
        GammaGammaParams::NAMES,
    )?;
    let e: Vec<f64> = sol.y.iter().map(|v| v.exp()).collect();
    let params = GammaGammaParams {
        p: e[0],
        q: e[1],
        v: e[2],
    };
    // Spend is not rescaled: the objective's likelihood is the caller's.
    let ll = obj.ll_grad(&sol.y, &mut [0.0; 3], o.check);
    finish(params, ll, total_w, sol, &TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ClvError;
    use crate::fit::testdata::{assert_rel, cdnow, cdnow_spend, check_gradient, check_hessian};

    #[test]
    fn cdnow_matches_lifetimes() {
        let rows = cdnow_spend();
        assert_eq!(rows.len(), 946);
        let fit = fit_gamma_gamma(&rows, &FitOptions::default()).unwrap();
        assert_rel("p", fit.params.p, 6.248802, 1e-3);
        assert_rel("q", fit.params.q, 3.744588, 1e-3);
        assert_rel("v", fit.params.v, 15.447748, 1e-3);
        assert!(
            (fit.log_likelihood - -4055.9).abs() < 0.1,
            "{}",
            fit.log_likelihood
        );
        assert_eq!(fit.n_customers, 946.0);
        assert!(fit.converged && fit.std_errors.is_some(), "{fit:?}");
    }

    /// 100,000 simulated repeat buyers (seeded): parameters within 5% (standard errors ~2%) and a
    /// fast fit.
    #[test]
    fn recovers_simulated_parameters() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Gamma};
        let truth = GammaGammaParams {
            p: 6.0,
            q: 3.7,
            v: 15.0,
        };
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let nu_d = Gamma::new(truth.q, 1.0 / truth.v).unwrap();
        let rows: Vec<SpendRow> = (0..100_000)
            .map(|_| {
                let x = rng.gen_range(1..20) as f64;
                let nu = nu_d.sample(&mut rng);
                // The mean of x Gamma(p, rate nu) spends is Gamma(p x, rate x nu).
                let m = Gamma::new(truth.p * x, 1.0 / (x * nu))
                    .unwrap()
                    .sample(&mut rng);
                SpendRow { x, m, w: 1.0 }
            })
            .collect();
        let fit = fit_gamma_gamma(&rows, &FitOptions::default()).unwrap();
        for ((name, got), want) in GammaGammaParams::NAMES
            .iter()
            .zip(fit.params.to_vec())
            .zip(truth.to_vec())
        {
            assert_rel(name, got, want, 0.05);
        }
    }

    #[test]
    fn zero_frequency_rows_are_ignored() {
        let all: Vec<SpendRow> = cdnow()
            .into_iter()
            .map(|(x, _, _, m)| SpendRow { x, m, w: 1.0 })
            .collect();
        assert_eq!(all.len(), 2357);
        let a = fit_gamma_gamma(&all, &FitOptions::default()).unwrap();
        let b = fit_gamma_gamma(&cdnow_spend(), &FitOptions::default()).unwrap();
        assert_eq!(a.params, b.params);
        assert_eq!(a.n_customers, 946.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let obj = GammaGamma::new(&cdnow_spend());
        for p in [[6.25, 3.74, 15.44], [0.3, 1.2, 200.0], [40.0, 20.0, 0.5]] {
            let y: Vec<f64> = p.iter().map(|v: &f64| v.ln()).collect();
            check_hessian(&obj, &y, 1e-6);
            check_gradient(&obj, &y, 1e-6);
        }
    }

    #[test]
    fn weights_equal_expanded_rows() {
        let rows = cdnow_spend();
        let mut compressed: Vec<SpendRow> = Vec::new();
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| (a.x, a.m).partial_cmp(&(b.x, b.m)).unwrap());
        for r in sorted {
            match compressed.last_mut() {
                Some(l) if (l.x, l.m) == (r.x, r.m) => l.w += 1.0,
                _ => compressed.push(r),
            }
        }
        assert!(compressed.len() < rows.len());
        let a = fit_gamma_gamma(&rows, &FitOptions::default()).unwrap();
        let b = fit_gamma_gamma(&compressed, &FitOptions::default()).unwrap();
        for (x, y) in a.params.to_vec().iter().zip(b.params.to_vec()) {
            assert_rel("param", y, *x, 1e-6);
        }
        assert!((a.log_likelihood - b.log_likelihood).abs() < 1e-6);
    }

    #[test]
    fn penalizer_shrinks_parameters() {
        let rows = cdnow_spend();
        let free = fit_gamma_gamma(&rows, &FitOptions::default()).unwrap();
        let pen = fit_gamma_gamma(
            &rows,
            &FitOptions {
                penalizer: 0.01,
                ..FitOptions::default()
            },
        )
        .unwrap();
        // Reference: lifetimes 0.11.3 (numpy 2.4.6, scipy 1.17.1) fitted to the same data with
        // penalizer_coef = 0.01; agreement to 1e-4 relative checks the time scaling and
        // the penalty's exact meaning.
        for (got, want) in pen.params.to_vec().iter().zip([
            4.109250257153253,
            0.9683854158553924,
            3.7808014233041174,
        ]) {
            assert_rel("penalised parameter", *got, want, 1e-4);
        }
        let norm = |p: &GammaGammaParams| p.p.powi(2) + p.q.powi(2) + p.v.powi(2);
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
        let ok = SpendRow {
            x: 2.0,
            m: 10.0,
            w: 1.0,
        };
        let o = FitOptions::default();
        for r in [
            SpendRow { m: f64::NAN, ..ok },
            SpendRow { m: 0.0, ..ok },
            SpendRow { m: -3.0, ..ok },
            SpendRow { x: -1.0, ..ok },
            SpendRow { x: 1.5, ..ok },
            SpendRow { w: 0.0, ..ok },
            SpendRow {
                x: 0.0,
                m: f64::INFINITY,
                ..ok
            },
        ] {
            assert!(
                matches!(
                    fit_gamma_gamma(&[ok, r], &o),
                    Err(ClvError::InvalidParameter(_))
                ),
                "{r:?} accepted"
            );
        }
        // A zero-frequency row's spend is irrelevant, even if it is 0 or negative.
        let ll = log_likelihood(
            &GammaGammaParams {
                p: 1.0,
                q: 2.0,
                v: 3.0,
            },
            &[
                ok,
                SpendRow {
                    x: 0.0,
                    m: -1.0,
                    w: 1.0,
                },
            ],
        );
        assert!(ll.unwrap().is_finite());
        let only_zero = [SpendRow {
            x: 0.0,
            m: 0.0,
            w: 5.0,
        }];
        assert!(matches!(
            fit_gamma_gamma(&only_zero, &o),
            Err(ClvError::InvalidParameter(_))
        ));
        assert!(matches!(
            fit_gamma_gamma(&[], &o),
            Err(ClvError::InvalidParameter(_))
        ));
    }

    #[test]
    fn no_convergence_speaks_of_spend_not_of_histories() {
        // Every repeat buyer spends exactly 10 per purchase: no heterogeneity to estimate, the
        // likelihood grows without bound as p and q run off.
        let rows: Vec<SpendRow> = (1..=6)
            .map(|x| SpendRow {
                x: x as f64,
                m: 10.0,
                w: 1.0,
            })
            .collect();
        match fit_gamma_gamma(&rows, &FitOptions::default()) {
            Err(ClvError::NoConvergence { message, hint }) => {
                assert!(
                    message.starts_with("Gamma-Gamma fit did not converge"),
                    "{message}"
                );
                assert!(!message.contains("history"), "{message}");
                assert!(!hint.contains("history"), "{hint}");
                assert!(hint.contains("mean spend (monetary value)"), "{hint}");
                assert!(message.contains("ran off"), "{message}");
                assert!(
                    message.contains("mean spends (monetary values)"),
                    "{message}"
                );
                assert!(message.contains("v is in the currency"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
