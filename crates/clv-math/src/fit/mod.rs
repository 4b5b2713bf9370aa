//! Maximum-likelihood fitting of the five models, with the likelihoods of `lifetimes` 0.11.3.
//!
//! Every model is fitted the way `lifetimes` does it: over log-parameters, minimising the mean
//! negative log-likelihood `-sum(w * ll) / sum(w)` plus `penalizer * sum(params^2)`, where for the
//! continuous-time models (BG/NBD, MBG/NBD, Pareto/NBD) time is first rescaled so that the largest
//! `T` is 1 (`lifetimes.utils._scale_time` = `1 / max(T)`) and the penalty applies to the
//! parameters *in that scale* (alpha and beta multiplied by the scale factor). Without a penalty
//! the rescaling changes nothing but conditioning; with one it makes `penalizer` mean the same
//! thing whatever the time unit. Parameters are reported in the caller's time unit, and
//! `log_likelihood` is the likelihood in the caller's time unit too (the scaled one differs by
//! `sum(w * x) * ln(scale)`).
//!
//! Pareto/NBD quirk: `lifetimes` divides its Pareto/NBD objective by `mean(w)` instead of `sum(w)`,
//! so with one row per customer (w = 1, the usual call) its penalty weighs `1/N` as much as in the
//! other models. We reproduce that for one-row-per-customer data: the penalty is divided by the
//! number of customers `sum(w)`, so a compressed input (our rows) gives the same fit as the
//! expanded one - which lifetimes itself does not do for weighted Pareto/NBD input.
//!
//! These semantics were checked against lifetimes 0.11.3 itself: on CDNOW and the donations data,
//! unpenalised and penalised fits of all five models agree with its output to ~1e-6 relative
//! (the tests pin them at 1e-4).
//!
//! Models whose likelihood terms depend on the frequency `x` alone (gamma functions, digamma) sum
//! those terms per distinct `x` (weights added up), so an iteration costs one `ln`/`exp`-level pass
//! over the rows plus a few special-function calls per distinct frequency.

// `!(x > 0.0)` and friends are used on purpose throughout: unlike `x <= 0.0` they are also true
// for NaN, so a NaN can never pass a check.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod bgbb;
pub mod bgnbd;
pub mod gamma_gamma;
pub mod mbgnbd;
pub mod paretonbd;
pub mod patterns;

pub use bgbb::fit_bgbb;
pub use bgnbd::fit_bgnbd;
pub use gamma_gamma::fit_gamma_gamma;
pub use mbgnbd::fit_mbgnbd;
pub use paretonbd::fit_paretonbd;

use crate::error::{ClvError, Result};
use crate::fast_hash::FxBuild;
use crate::interrupt::{self, Ticker};
use crate::optimize::{bfgs_from, hessian_fd, invert_spd, Minimum};
use crate::params::ModelParams;
use std::collections::HashMap;

/// One distinct customer pattern; w = number of identical customers (weight, > 0).
/// For BG/BB, `t` is the number of transaction opportunities n and `x`, `tx` are counts of periods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerRow {
    pub x: f64,
    pub tx: f64,
    pub t: f64,
    pub w: f64,
}

/// One distinct spend pattern for Gamma-Gamma: frequency (repeat purchases), mean spend per repeat
/// purchase, weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendRow {
    pub x: f64,
    pub m: f64,
    pub w: f64,
}

/// Options of every fit.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// `lifetimes`' `penalizer_coef` (see the module docs for its exact meaning). >= 0.
    pub penalizer: f64,
    /// Hard cap on optimizer iterations per start.
    pub max_iter: usize,
    /// Convergence: infinity norm of the gradient of the mean objective (w.r.t. log-parameters).
    pub tol: f64,
    /// Called once per optimizer iteration and every few thousand rows inside likelihood loops;
    /// the SQL layer passes a function running `check_for_interrupts!()`.
    pub check: fn(),
}

fn no_check() {}

impl Default for FitOptions {
    fn default() -> Self {
        // tol = 1e-7 is lifetimes' default `tol`, which scipy's BFGS uses as its gradient tolerance.
        FitOptions {
            penalizer: 0.0,
            max_iter: 1000,
            tol: 1e-7,
            check: no_check,
        }
    }
}

impl FitOptions {
    fn validate(&self) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(invalid(format!(
                "penalizer_coef must be a finite number >= 0, got {}",
                self.penalizer
            )));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(invalid(format!(
                "tolerance must be a finite number > 0, got {}",
                self.tol
            )));
        }
        if self.max_iter == 0 {
            return Err(invalid("max_iter must be at least 1".to_string()));
        }
        Ok(())
    }
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fit<P> {
    pub params: P,
    /// Total weighted log-likelihood at `params`, without the penalty, in the caller's time unit.
    pub log_likelihood: f64,
    /// Sum of the weights of the rows used.
    pub n_customers: f64,
    pub n_params: usize,
    /// 2k - 2 LL.
    pub aic: f64,
    /// k ln(n_customers) - 2 LL.
    pub bic: f64,
    /// Standard errors of the natural parameters in `ModelParams::NAMES` order, from the inverse of
    /// the observed information (Hessian of the total penalised negative log-likelihood); `None`
    /// if that Hessian is not positive definite.
    pub std_errors: Option<Vec<f64>>,
    pub converged: bool,
    pub iterations: usize,
    /// Infinity norm of the gradient of the mean objective w.r.t. log-parameters at the end.
    pub gradient_norm: f64,
}

pub(crate) fn invalid(msg: String) -> ClvError {
    ClvError::InvalidParameter(msg)
}

/// How often (in rows) likelihood loops call the interrupt check.
pub(crate) const CHECK_EVERY: usize = 4096;

/// Units of work (rows, continued-fraction steps) between interrupt checks, for loops whose rows
/// cost very different amounts: the check runs every [`CHECK_EVERY`] units.
pub(crate) struct Work {
    done: usize,
    check: fn(),
}

impl Work {
    pub(crate) fn new(check: fn()) -> Self {
        Work { done: 0, check }
    }

    #[inline]
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        if self.done.is_multiple_of(CHECK_EVERY) {
            (self.check)();
        }
    }
}

/// A log-likelihood over log-parameters, in the model's internal time scale.
pub(crate) trait Objective {
    fn dim(&self) -> usize;
    /// Sum of weights.
    fn total_weight(&self) -> f64;
    /// `sum(w * ll)` at log-parameters `y` and its gradient with respect to `y` (written to
    /// `grad`). May return a non-finite value where the likelihood cannot be evaluated.
    fn ll_grad(&self, y: &[f64], grad: &mut [f64], check: fn()) -> f64;
    /// Hessian of `sum(w * ll)` with respect to `y`, for models that have it in closed form: one
    /// pass over the rows instead of the 2k gradient passes of finite differences. `None`: use
    /// finite differences.
    fn ll_hessian(&self, _y: &[f64], _check: fn()) -> Option<Vec<Vec<f64>>> {
        None
    }
    /// Log of each parameter's natural magnitude in the internal scale (0 when time is scaled to
    /// max T = 1); estimates further than `LOG_LIMIT` from it are treated as divergence.
    fn typical_log(&self) -> Vec<f64> {
        vec![0.0; self.dim()]
    }
}

/// The optimum found by [`solve`], in log-parameters of the internal scale.
pub(crate) struct Solution {
    pub y: Vec<f64>,
    /// Variances of the log-parameters (diagonal of the inverse observed information).
    pub log_var: Option<Vec<f64>>,
    pub iterations: usize,
    pub converged: bool,
    pub gradient_norm: f64,
}

/// Log-parameters further than LOG_LIMIT (a factor 1e5) from their typical magnitude mean the
/// likelihood has no interior maximum for this data (a parameter runs off to 0 or infinity, e.g.
/// r and alpha together when every customer buys at the same rate: a shape parameter of 1e5 is a
/// population with no heterogeneity left). Such a fit is reported as NoConvergence.
const LOG_LIMIT: f64 = 11.5;
/// The optimizer is confined to a box a little wider than LOG_LIMIT (the objective is +inf beyond
/// it, which the line search treats as "too far"): without it a run drifting to a boundary
/// explores parameters like 1e-300, where every flop is on subnormal numbers and Pareto/NBD's
/// continued fractions need their maximum number of steps - minutes for a handful of rows.
const LOG_BOX: f64 = LOG_LIMIT + 1.5;
/// A run that stopped short of `tol` is still reported (with `converged = false`) when its
/// gradient is this small AND the Hessian there is positive definite: it is a strict maximum to
/// ~5 significant digits that failed only to gain the last ones against rounding noise. Without
/// the Hessian condition it is usually a drift along a ridge towards the boundary.
const LOOSE_TOL: f64 = 1e-5;
/// Starts run before giving up.
const MAX_STARTS: usize = 4;

/// How a model's messages name its own quantities (a spend model has no customer history, a
/// discrete-time model no time scale).
pub(crate) struct ModelText {
    /// "BG/NBD", "Gamma-Gamma", ...
    pub name: &'static str,
    /// The scale a runaway parameter is reported in, after "parameter r ran off to 1.2e6 ".
    pub scale: &'static str,
    /// What the likelihood is of, after "the likelihood has no maximum for ".
    pub data: &'static str,
    /// The HINT of the model's NoConvergence errors.
    pub hint: &'static str,
}

/// The continuous-time purchase models, fitted with time rescaled to max T = 1 (the longest
/// customer history).
pub(crate) const fn continuous_text(name: &'static str) -> ModelText {
    ModelText {
        name,
        scale: "(in the fitting scale, where the longest customer history is 1)",
        data: "this data",
        hint: "try a penalizer_coef such as 0.001, or check the input for a single customer with \
               extreme values",
    }
}

fn no_convergence(model: &ModelText, detail: String) -> ClvError {
    ClvError::NoConvergence {
        message: format!("{} fit did not converge: {detail}", model.name),
        hint: model.hint.to_string(),
    }
}

/// Fits on more distinct rows than this search for their starting point on a sample first.
pub(crate) const PREVIEW_ROWS: usize = 4096;

/// A weighted systematic sample of about `n` rows (or `None` when there are not many more rows
/// than that): row i is taken k times when k of the equally spaced points `(j + 1/2) W / n` fall
/// in its share of the cumulative weight, and gets weight `k W / n`. The sample keeps the total
/// weight, so its mean objective approximates the full one; rows arrive sorted by their pattern,
/// so the sample is stratified over frequency and time. Deterministic: no random numbers.
pub(crate) fn preview_sample<R: Copy>(
    rows: &[R],
    n: usize,
    weight: impl Fn(&R) -> f64,
    with_weight: impl Fn(R, f64) -> R,
) -> Option<Vec<R>> {
    if rows.len() <= 4 * n {
        return None;
    }
    let total: f64 = rows.iter().map(&weight).sum();
    let step = total / n as f64;
    let (mut cum, mut taken) = (0.0, 0.0);
    let mut out = Vec::with_capacity(n + 1);
    let mut tick = Ticker::new();
    for r in rows {
        tick.tick();
        cum += weight(r);
        let k = ((cum / step) + 0.5).floor() - taken;
        if k > 0.0 {
            out.push(with_weight(*r, k * step));
            taken += k;
        }
    }
    Some(out)
}

/// [`preview_sample`] of customer rows.
pub(crate) fn customer_preview(rows: &[CustomerRow]) -> Option<Vec<CustomerRow>> {
    preview_sample(rows, PREVIEW_ROWS, |r| r.w, |r, w| CustomerRow { w, ..r })
}

/// [`preview_sample`] of spend rows.
pub(crate) fn spend_preview(rows: &[SpendRow]) -> Option<Vec<SpendRow>> {
    preview_sample(rows, PREVIEW_ROWS, |r| r.w, |r, w| SpendRow { w, ..r })
}

/// The Hessian with respect to log-parameters y = ln(theta) from the gradient `g` and Hessian `h`
/// (upper triangle used) in natural parameters: H_y = D H D + diag(theta * g), D = diag(theta).
pub(crate) fn log_parameter_hessian<const K: usize>(
    theta: [f64; K],
    g: [f64; K],
    h: [[f64; K]; K],
) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; K]; K];
    for j in 0..K {
        for k in j..K {
            let v = theta[j] * theta[k] * h[j][k] + if j == k { theta[j] * g[j] } else { 0.0 };
            out[j][k] = v;
            out[k][j] = v;
        }
    }
    out
}

/// One BFGS run that met the acceptance rules, with the variances of the log-parameters.
struct Accepted {
    m: Minimum,
    log_var: Option<Vec<f64>>,
    /// The inverse Hessian of the mean objective at the optimum (row-major), when computed.
    inv_hessian: Option<Vec<f64>>,
}

/// Minimise `-ll(y)/W + penalty * sum(exp(2 y))` from the most promising of `starts` (each a
/// vector of log-parameters), trying further starts if a run fails. `penalty` is the coefficient
/// on the mean scale.
///
/// With a `preview` (the objective on a [`preview_sample`] of the rows), the starts are ranked and
/// run on the sample, and the full data is fitted once from the sample's optimum: the full
/// objective is evaluated a few times instead of once per start plus a whole BFGS descent. The
/// answer is the full data's optimum either way (same tolerance, same acceptance rules); if the
/// warm run fails, the starts are tried on the full data as without a preview.
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve(
    obj: &dyn Objective,
    preview: Option<&dyn Objective>,
    starts: &[Vec<f64>],
    penalty: f64,
    o: &FitOptions,
    model: &ModelText,
    names: &[&str],
) -> Result<Solution> {
    let mut total_iterations = 0;
    let mut last_problem =
        String::from("the likelihood could not be evaluated at any starting point");
    let mut found = None;
    if let Some(p) = preview {
        let mut preview_iterations = 0;
        if let Ok(a) = search(
            p,
            starts,
            None,
            penalty,
            o,
            model,
            names,
            false,
            &mut preview_iterations,
        ) {
            let h0 = a.inv_hessian.as_deref();
            found = search(
                obj,
                &[a.m.x],
                h0,
                penalty,
                o,
                model,
                names,
                true,
                &mut total_iterations,
            )
            .ok();
        }
    }
    if found.is_none() {
        match search(
            obj,
            starts,
            None,
            penalty,
            o,
            model,
            names,
            true,
            &mut total_iterations,
        ) {
            Ok(a) => found = Some(a),
            Err(problem) => last_problem = problem,
        }
    }
    let Some(Accepted { m, log_var, .. }) = found else {
        return Err(no_convergence(model, last_problem));
    };
    Ok(Solution {
        y: m.x,
        log_var,
        iterations: total_iterations,
        converged: m.converged,
        gradient_norm: m.grad_norm,
    })
}

/// The multi-start search of [`solve`] on one objective; `Err` describes the last failure.
/// `h0`: initial inverse Hessian for BFGS. `hessian`: compute the variances (and use the Hessian
/// to accept loosely converged runs); otherwise only the inverse Hessian of a cheap (preview)
/// objective is returned, for a warm start.
#[allow(clippy::too_many_arguments)]
fn search(
    obj: &dyn Objective,
    starts: &[Vec<f64>],
    h0: Option<&[f64]>,
    penalty: f64,
    o: &FitOptions,
    model: &ModelText,
    names: &[&str],
    hessian: bool,
    total_iterations: &mut usize,
) -> std::result::Result<Accepted, String> {
    let w = obj.total_weight();
    let k = obj.dim();
    let typical = obj.typical_log();
    let mean_objective = |y: &[f64], g: &mut [f64]| -> f64 {
        if (0..k).any(|i| !((y[i] - typical[i]).abs() <= LOG_BOX)) {
            g.iter_mut().for_each(|v| *v = f64::NAN);
            return f64::INFINITY;
        }
        let ll = obj.ll_grad(y, g, o.check);
        let mut f = -ll / w;
        for i in 0..k {
            let p2 = (2.0 * y[i]).exp();
            f += penalty * p2;
            g[i] = -g[i] / w + 2.0 * penalty * p2;
        }
        f
    };
    // Rank the starts by objective value; unusable ones last. A single start needs no ranking.
    let mut g = vec![0.0; k];
    let mut ranked: Vec<(f64, &Vec<f64>)> = starts
        .iter()
        .map(|s| {
            if starts.len() == 1 {
                return (0.0, s);
            }
            (o.check)();
            let f = mean_objective(s, &mut g);
            (
                if f.is_finite() && g.iter().all(|v| v.is_finite()) {
                    f
                } else {
                    f64::INFINITY
                },
                s,
            )
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut last_problem =
        String::from("the likelihood could not be evaluated at any starting point");
    for (f0, start) in ranked.iter().take(MAX_STARTS) {
        if !f0.is_finite() {
            break;
        }
        let m = bfgs_from(mean_objective, start, h0, o.max_iter, o.tol, o.check);
        *total_iterations += m.iterations;
        if let Some(i) = (0..k).position(|i| !((m.x[i] - typical[i]).abs() <= LOG_LIMIT)) {
            last_problem = format!(
                "parameter {} ran off to {:.3e} {}; the likelihood has no maximum for {}",
                names[i],
                m.x[i].exp(),
                model.scale,
                model.data
            );
            continue;
        }
        if !(m.f.is_finite() && m.grad_norm <= LOOSE_TOL.max(o.tol)) {
            last_problem = format!(
                "gradient norm {:.3e} after {} iterations (tolerance {:.1e})",
                m.grad_norm, m.iterations, o.tol
            );
            continue;
        }
        (o.check)();
        let hess = match obj.ll_hessian(&m.x, o.check) {
            // Of the mean penalised objective: -H/W plus the penalty's 4 p e^(2y) on the diagonal.
            Some(h) if h.iter().flatten().all(|v| v.is_finite()) => Some(
                (0..k)
                    .map(|i| {
                        (0..k)
                            .map(|j| {
                                let pen = if i == j {
                                    4.0 * penalty * (2.0 * m.x[i]).exp()
                                } else {
                                    0.0
                                };
                                -h[i][j] / w + pen
                            })
                            .collect()
                    })
                    .collect::<Vec<Vec<f64>>>(),
            ),
            Some(_) => None,
            None => hessian_fd(mean_objective, &m.x, 1e-4),
        };
        let inv = hess.and_then(|h| invert_spd(&h));
        if !hessian {
            // A preview only proposes a start (and a matrix): good enough near a maximum.
            let inv_hessian = inv.map(|inv| inv.concat());
            return Ok(Accepted {
                m,
                log_var: None,
                inv_hessian,
            });
        }
        // Observed information of the TOTAL penalised objective = W * Hessian of the mean one.
        let log_var = inv
            .map(|inv| (0..k).map(|i| inv[i][i] / w).collect::<Vec<_>>())
            .filter(|v| v.iter().all(|x| x.is_finite() && *x >= 0.0));
        if !m.converged && log_var.is_none() {
            last_problem = format!(
                "gradient norm {:.3e} after {} iterations (tolerance {:.1e}) at a point that is not a strict maximum",
                m.grad_norm, m.iterations, o.tol
            );
            continue;
        }
        // A strict maximum (or a converged run) is the answer; other starts are only for runs
        // that failed.
        return Ok(Accepted {
            m,
            log_var,
            inv_hessian: None,
        });
    }
    Err(last_problem)
}

/// Assemble the public result from natural parameters and the solution.
pub(crate) fn finish<P: ModelParams>(
    params: P,
    log_likelihood: f64,
    n_customers: f64,
    sol: Solution,
    model: &ModelText,
) -> Result<Fit<P>> {
    let v = params.to_vec();
    if !v.iter().all(|p| p.is_finite() && *p > 0.0) || !log_likelihood.is_finite() {
        return Err(no_convergence(
            model,
            format!("non-finite result: parameters {v:?}, log-likelihood {log_likelihood}"),
        ));
    }
    let k = v.len();
    // Var(theta) = theta^2 Var(log theta) (delta method; exact for the inverse Hessian at a
    // stationary point, where the Jacobian terms with the gradient vanish).
    let std_errors = sol
        .log_var
        .map(|lv| v.iter().zip(lv).map(|(p, s2)| p * s2.sqrt()).collect());
    Ok(Fit {
        params,
        log_likelihood,
        n_customers,
        n_params: k,
        aic: 2.0 * k as f64 - 2.0 * log_likelihood,
        bic: k as f64 * n_customers.ln() - 2.0 * log_likelihood,
        std_errors,
        converged: sol.converged,
        iterations: sol.iterations,
        gradient_norm: sol.gradient_norm,
    })
}

fn is_integer(v: f64) -> bool {
    v == v.trunc()
}

/// Row validation shared by the continuous-time models (BG/NBD, MBG/NBD, Pareto/NBD). Returns the
/// total weight and the largest T.
pub(crate) fn validate_continuous(rows: &[CustomerRow], model: &str) -> Result<(f64, f64)> {
    if rows.is_empty() {
        return Err(invalid(format!("{model}: no customers to fit")));
    }
    let (mut total_w, mut max_t) = (0.0, 0.0_f64);
    let mut tick = Ticker::new();
    for (i, r) in rows.iter().enumerate() {
        tick.tick();
        let n = i + 1;
        for (name, v) in [
            ("frequency", r.x),
            ("recency", r.tx),
            ("T", r.t),
            ("weight", r.w),
        ] {
            if !v.is_finite() {
                return Err(invalid(format!(
                    "{model}: row {n}: {name} must be a finite number, got {v}"
                )));
            }
        }
        if r.x < 0.0 || !is_integer(r.x) {
            return Err(invalid(format!(
                "{model}: row {n}: frequency must be a whole number >= 0, got {}",
                r.x
            )));
        }
        if r.tx < 0.0 {
            return Err(invalid(format!(
                "{model}: row {n}: recency must be >= 0, got {}",
                r.tx
            )));
        }
        if r.t < 0.0 {
            return Err(invalid(format!(
                "{model}: row {n}: T must be >= 0, got {}",
                r.t
            )));
        }
        if r.tx > r.t {
            return Err(invalid(format!(
                "{model}: row {n}: recency {} is larger than T {} (recency must be <= T)",
                r.tx, r.t
            )));
        }
        if r.x == 0.0 && r.tx != 0.0 {
            return Err(invalid(format!(
                "{model}: row {n}: recency {} must be 0 when frequency is 0",
                r.tx
            )));
        }
        if !(r.w > 0.0) {
            return Err(invalid(format!(
                "{model}: row {n}: weight must be > 0, got {}",
                r.w
            )));
        }
        total_w += r.w;
        max_t = max_t.max(r.t);
    }
    if !total_w.is_finite() {
        return Err(invalid(format!(
            "{model}: the total weight {total_w} is not finite"
        )));
    }
    Ok((total_w, max_t))
}

/// What a fit needs beyond valid rows: an observation period and at least one repeat purchase
/// (without one the likelihood increases without bound as the purchase rate goes to 0).
pub(crate) fn require_fittable(rows: &[CustomerRow], max_t: f64, model: &str) -> Result<()> {
    if !(max_t > 0.0) {
        return Err(invalid(format!(
            "{model}: every customer has T = 0; there is no observation period to fit"
        )));
    }
    if !rows.iter().any(|r| r.x > 0.0) {
        return Err(invalid(format!(
            "{model}: no customer made a repeat purchase (all frequencies are 0); the purchase rate cannot be estimated"
        )));
    }
    Ok(())
}

/// Distinct values of the (integer) frequency with their summed weights, ascending. Few distinct
/// values among many rows: summed in a hash map, then only the distinct values are sorted. The
/// weights of a value are summed in row order, so the result does not depend on the hasher.
pub(crate) fn frequency_groups(xw: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut sums: HashMap<u64, f64, FxBuild> = HashMap::default();
    let mut tick = Ticker::new();
    for (x, w) in xw {
        tick.tick();
        *sums.entry((x + 0.0).to_bits()).or_insert(0.0) += w;
    }
    let mut out: Vec<(f64, f64)> = sums
        .into_iter()
        .map(|(x, w)| (f64::from_bits(x), w))
        .collect();
    interrupt::sort_by(&mut out, |a, b| a.0.total_cmp(&b.0));
    out
}

/// Indices into the frequency groups for each row (rows' x values must all be in `groups`).
pub(crate) fn group_index(groups: &[(f64, f64)], x: f64) -> usize {
    groups.partition_point(|g| g.0 < x)
}

/// ln(e^a + e^b) without overflow, and the weight e^a / (e^a + e^b). `ln(1 + e)` rather than
/// `ln_1p(e)`: e <= 1, so the absolute error is at most an ulp of 1 either way (all a
/// log-likelihood sum needs), and ln is about twice as fast - this is the inner loop of the fits.
#[inline]
pub(crate) fn log_add_exp_w(a: f64, b: f64) -> (f64, f64) {
    if a >= b {
        let e = (b - a).exp();
        let s = 1.0 + e;
        (a + s.ln(), 1.0 / s)
    } else {
        let e = (a - b).exp();
        let s = 1.0 + e;
        (b + s.ln(), e / s)
    }
}

/// Distinct values of a column and, per row, the index of its value: per-row terms like
/// ln(alpha + T) are then computed once per distinct time and looked up (a million customers
/// summarised in days have a few hundred distinct T and recency values, not a million).
pub(crate) struct Distinct {
    pub values: Vec<f64>,
    pub index: Vec<u32>,
}

impl Distinct {
    pub(crate) fn new(column: impl Iterator<Item = f64>) -> Self {
        // First-seen ids through a hash map (the distinct values are few and stay in cache), then
        // the ids renumbered in value order.
        let mut ids: HashMap<u64, u32, FxBuild> = HashMap::default();
        let mut first_seen: Vec<f64> = Vec::new();
        let mut tick = Ticker::new();
        let raw: Vec<u32> = column
            .map(|v| {
                tick.tick();
                let v = v + 0.0;
                *ids.entry(v.to_bits()).or_insert_with(|| {
                    first_seen.push(v);
                    (first_seen.len() - 1) as u32
                })
            })
            .collect();
        let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
        interrupt::sort_unstable_by(&mut order, |a, b| {
            first_seen[*a as usize].total_cmp(&first_seen[*b as usize])
        });
        let mut rank = vec![0u32; order.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        Distinct {
            values: order.iter().map(|&id| first_seen[id as usize]).collect(),
            index: raw.into_iter().map(|id| rank[id as usize]).collect(),
        }
    }
}

/// Grids of starting points in log space, as the cartesian product of per-parameter candidates.
pub(crate) fn grid(candidates: &[&[f64]]) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new()];
    for c in candidates {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                c.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.ln());
                    p
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
pub(crate) mod testdata {
    //! The reference data sets of tests/data (see its README).
    use super::{CustomerRow, SpendRow};

    fn read(rel: &str) -> String {
        let path = format!("{}/../../tests/data/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// (x, t_x, T, zbar) of the 2,357 CDNOW customers, weeks.
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

    pub fn cdnow_rows() -> Vec<CustomerRow> {
        cdnow()
            .into_iter()
            .map(|(x, tx, t, _)| CustomerRow { x, tx, t, w: 1.0 })
            .collect()
    }

    pub fn cdnow_spend() -> Vec<SpendRow> {
        cdnow()
            .into_iter()
            .filter(|r| r.0 > 0.0)
            .map(|(x, _, _, m)| SpendRow { x, m, w: 1.0 })
            .collect()
    }

    /// The 22 weighted BG/BB donation patterns (x, t_x, n, weight).
    pub fn donations() -> Vec<CustomerRow> {
        read("donations/donations.csv")
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<f64> = l.split(',').map(|s| s.trim().parse().unwrap()).collect();
                CustomerRow {
                    x: f[0],
                    tx: f[1],
                    t: f[2],
                    w: f[3],
                }
            })
            .collect()
    }

    /// Merge identical patterns into weighted rows (what the SQL layer does).
    pub fn compress(rows: &[CustomerRow]) -> Vec<CustomerRow> {
        let mut v = rows.to_vec();
        v.sort_by(|a, b| (a.x, a.tx, a.t).partial_cmp(&(b.x, b.tx, b.t)).unwrap());
        let mut out: Vec<CustomerRow> = Vec::new();
        for r in v {
            match out.last_mut() {
                Some(l) if (l.x, l.tx, l.t) == (r.x, r.tx, r.t) => l.w += r.w,
                _ => out.push(r),
            }
        }
        out
    }

    /// Finite-difference check of an objective's gradient: fourth-order central stencil (error
    /// O(h^4) + rounding eps * |ll| / h), compared relative to max(|g|, 1e-4 |ll|, 1).
    pub fn check_gradient(obj: &dyn super::Objective, y: &[f64], rel_tol: f64) {
        let k = y.len();
        let mut g = vec![0.0; k];
        let mut scratch = vec![0.0; k];
        let f0 = obj.ll_grad(y, &mut g, || {});
        assert!(f0.is_finite(), "ll at {y:?} = {f0}");
        let h = 1e-4;
        for i in 0..k {
            let mut f_at = |d: f64| {
                let mut yp = y.to_vec();
                yp[i] += d;
                obj.ll_grad(&yp, &mut scratch, || {})
            };
            let fd = (8.0 * (f_at(h) - f_at(-h)) - (f_at(2.0 * h) - f_at(-2.0 * h))) / (12.0 * h);
            let scale = g[i].abs().max(1e-4 * f0.abs()).max(1.0);
            assert!(
                (fd - g[i]).abs() <= rel_tol * scale,
                "d/dy{i} at {y:?}: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }

    /// A closed-form Hessian (`ll_hessian`) against central differences of the analytic gradient,
    /// every entry within `rel_tol` of the largest.
    pub fn check_hessian(obj: &dyn super::Objective, y: &[f64], rel_tol: f64) {
        let h = obj.ll_hessian(y, || {}).expect("closed-form Hessian");
        let fd = crate::optimize::hessian_fd(|y, g| obj.ll_grad(y, g, || {}), y, 1e-5).unwrap();
        let scale = fd.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
        for (i, (hr, fr)) in h.iter().zip(&fd).enumerate() {
            for (j, (a, b)) in hr.iter().zip(fr).enumerate() {
                assert!(
                    (a - b).abs() <= rel_tol * scale,
                    "H[{i}][{j}] at {y:?}: {a} vs {b}"
                );
            }
        }
    }

    /// Seeded BG/NBD customers: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b), T ~ U(t_min, t_max);
    /// after each repeat purchase the customer drops out with probability p.
    pub fn simulate_bgnbd(
        n: usize,
        r: f64,
        alpha: f64,
        a: f64,
        b: f64,
        t_range: (f64, f64),
        seed: u64,
    ) -> Vec<CustomerRow> {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let (lambda_d, p_d) = (
            Gamma::new(r, 1.0 / alpha).unwrap(),
            Beta::new(a, b).unwrap(),
        );
        (0..n)
            .map(|_| {
                let (lambda, p, t) = (
                    lambda_d.sample(&mut rng),
                    p_d.sample(&mut rng),
                    rng.gen_range(t_range.0..t_range.1),
                );
                let gap = Exp::new(lambda).unwrap();
                let (mut x, mut tx, mut now) = (0.0, 0.0, 0.0);
                loop {
                    now += gap.sample(&mut rng);
                    if now > t {
                        break;
                    }
                    x += 1.0;
                    tx = now;
                    if rng.gen::<f64>() < p {
                        break;
                    }
                }
                CustomerRow { x, tx, t, w: 1.0 }
            })
            .collect()
    }

    /// Seeded Pareto/NBD customers: lambda ~ Gamma(r, rate alpha), mu ~ Gamma(s, rate beta),
    /// lifetime ~ Exp(mu), purchases Poisson(lambda) until min(lifetime, T), T ~ U(t_min, t_max).
    pub fn simulate_paretonbd(
        n: usize,
        r: f64,
        alpha: f64,
        s: f64,
        beta: f64,
        t_range: (f64, f64),
        seed: u64,
    ) -> Vec<CustomerRow> {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, Exp, Gamma};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let (lambda_d, mu_d) = (
            Gamma::new(r, 1.0 / alpha).unwrap(),
            Gamma::new(s, 1.0 / beta).unwrap(),
        );
        (0..n)
            .map(|_| {
                let (lambda, mu, t) = (
                    lambda_d.sample(&mut rng),
                    mu_d.sample(&mut rng),
                    rng.gen_range(t_range.0..t_range.1),
                );
                let end = Exp::new(mu).unwrap().sample(&mut rng).min(t);
                let gap = Exp::new(lambda).unwrap();
                let (mut x, mut tx, mut now) = (0.0, 0.0, 0.0);
                loop {
                    now += gap.sample(&mut rng);
                    if now > end {
                        break;
                    }
                    x += 1.0;
                    tx = now;
                }
                CustomerRow { x, tx, t, w: 1.0 }
            })
            .collect()
    }

    pub fn assert_rel(name: &str, got: f64, want: f64, rel: f64) {
        assert!(
            ((got - want) / want).abs() <= rel,
            "{name}: got {got}, want {want} (rel tol {rel})"
        );
    }
}

#[cfg(test)]
mod preview_tests {
    use super::testdata::simulate_bgnbd;
    use super::*;

    #[test]
    fn sample_keeps_the_total_weight_and_the_order() {
        let rows: Vec<CustomerRow> = (0..50_000)
            .map(|i| CustomerRow {
                x: (i % 7) as f64,
                tx: 0.0,
                t: i as f64,
                w: 1.0 + (i % 3) as f64,
            })
            .collect();
        let s = customer_preview(&rows).expect("many rows");
        let total: f64 = rows.iter().map(|r| r.w).sum();
        let got: f64 = s.iter().map(|r| r.w).sum();
        assert!((got - total).abs() <= 1e-9 * total, "{got} vs {total}");
        assert!(
            s.len() <= PREVIEW_ROWS && s.len() > PREVIEW_ROWS / 2,
            "{}",
            s.len()
        );
        assert!(
            s.windows(2).all(|w| w[0].t < w[1].t),
            "a subsequence of the rows"
        );
        // A row heavier than the sampling step is taken with its weight kept.
        let mut heavy = rows.clone();
        heavy[10].w = total;
        let s = customer_preview(&heavy).unwrap();
        let w10 = s.iter().find(|r| r.t == 10.0).unwrap().w;
        assert!(
            (w10 - total).abs() < total / PREVIEW_ROWS as f64 * 1.01,
            "{w10}"
        );
        assert!(
            customer_preview(&rows[..4 * PREVIEW_ROWS]).is_none(),
            "small fits need no preview"
        );
    }

    #[test]
    fn warm_start_from_the_preview_reaches_the_full_optimum() {
        let rows = simulate_bgnbd(60_000, 0.5, 4.0, 0.8, 2.5, (30.0, 90.0), 7);
        let scale = 1.0 / rows.iter().fold(0.0_f64, |m, r| m.max(r.t));
        let obj = bgnbd::BgNbd::new(&rows, scale);
        let sample = customer_preview(&rows).expect("continuous T: every row distinct");
        let preview = bgnbd::BgNbd::new(&sample, scale);
        let starts = grid(&[&[0.25, 1.0], &[0.1, 1.0], &[0.5, 2.0], &[1.0, 5.0]]);
        let o = FitOptions::default();
        let names = ["r", "alpha", "a", "b"];
        let text = continuous_text("BG/NBD");
        let cold = solve(&obj, None, &starts, 0.0, &o, &text, &names).unwrap();
        let warm = solve(&obj, Some(&preview), &starts, 0.0, &o, &text, &names).unwrap();
        assert!(cold.converged && warm.converged);
        for i in 0..4 {
            assert!(
                (cold.y[i] - warm.y[i]).abs() < 1e-5,
                "{:?} vs {:?}",
                cold.y,
                warm.y
            );
            let (c, w) = (
                cold.log_var.as_ref().unwrap()[i],
                warm.log_var.as_ref().unwrap()[i],
            );
            assert!((c - w).abs() <= 1e-3 * c, "variances {c} vs {w}");
        }
        assert!(
            warm.iterations < cold.iterations,
            "{} vs {}",
            warm.iterations,
            cold.iterations
        );
    }
}

#[cfg(test)]
mod robustness {
    //! Whatever the rows, a fit returns parameters that are finite and positive with a finite
    //! log-likelihood, or an error - never a panic, never NaN.
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 0.0..60.0,
            1 => Just(0.0),
            1 => prop_oneof![Just(1e-300), Just(1e-12), Just(1e12), Just(1e300), Just(f64::NAN), Just(-1.0)],
        ]
    }

    fn rows() -> impl Strategy<Value = Vec<CustomerRow>> {
        prop::collection::vec(
            (
                0u32..30,
                value(),
                value(),
                prop_oneof![4 => Just(1.0), 1 => value()],
            )
                .prop_map(|(x, a, b, w)| {
                    let (tx, t) = if x == 0 {
                        (0.0, a.max(b))
                    } else {
                        (a.min(b), a.max(b))
                    };
                    CustomerRow {
                        x: x as f64,
                        tx,
                        t,
                        w,
                    }
                }),
            1..8,
        )
    }

    fn sane<P: ModelParams + std::fmt::Debug>(
        r: Result<Fit<P>>,
    ) -> std::result::Result<(), String> {
        match r {
            Ok(f)
                if f.params.to_vec().iter().all(|v| v.is_finite() && *v > 0.0)
                    && f.log_likelihood.is_finite() =>
            {
                Ok(())
            }
            Ok(f) => Err(format!("bad fit {f:?}")),
            Err(ClvError::InvalidParameter(_)) | Err(ClvError::NoConvergence { .. }) => Ok(()),
            Err(e) => Err(format!("unexpected error {e:?}")),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn continuous_models_never_panic(rows in rows()) {
            let o = FitOptions::default();
            prop_assert!(sane(fit_bgnbd(&rows, &o)).is_ok(), "{:?}", sane(fit_bgnbd(&rows, &o)));
            prop_assert!(sane(fit_mbgnbd(&rows, &o)).is_ok(), "{:?}", sane(fit_mbgnbd(&rows, &o)));
            prop_assert!(sane(fit_paretonbd(&rows, &o)).is_ok(), "{:?}", sane(fit_paretonbd(&rows, &o)));
        }

        #[test]
        fn bgbb_never_panics(raw in prop::collection::vec((0u32..8, 0u32..8, 0u32..8, 1u32..500), 1..8)) {
            let rows: Vec<CustomerRow> = raw.iter().map(|&(a, b, c, w)| {
                let mut v = [a, b, c];
                v.sort();
                let x = if v[1] == 0 { 0 } else { v[0] };
                CustomerRow { x: x as f64, tx: v[1] as f64, t: v[2] as f64, w: w as f64 }
            }).collect();
            prop_assert!(sane(fit_bgbb(&rows, &FitOptions::default())).is_ok());
        }

        #[test]
        fn gamma_gamma_never_panics(raw in prop::collection::vec((0u32..30, value(), prop_oneof![4 => Just(1.0), 1 => value()]), 1..8)) {
            let rows: Vec<SpendRow> = raw.iter().map(|&(x, m, w)| SpendRow { x: x as f64, m, w }).collect();
            prop_assert!(sane(fit_gamma_gamma(&rows, &FitOptions::default())).is_ok());
        }
    }
}
