//! Unconstrained minimisation for the maximum-likelihood fits: BFGS with a strong-Wolfe line
//! search, plus the finite-difference Hessian and the SPD inverse used for standard errors.
//!
//! # Why our own BFGS and not `argmin`
//! `argmin` 0.11 was the candidate. It builds, but its default features pull `rand` 0.9 and
//! `rand_xoshiro` 0.7 beside the 0.8/0.6 this crate already uses, plus `anyhow`, `thiserror` 2,
//! `paste`, `web-time` and `argmin-math` - a lot of compile time on a 2-core machine for problems of
//! dimension 3 or 4, where a dense BFGS update is a few dozen flops. More importantly we need two
//! behaviours that are easiest to guarantee in ~250 lines we control:
//! * a trial point whose objective or gradient is not finite (lgamma/log overflow far out in log
//!   parameter space, a hypergeometric series that cannot converge) must mean "step too long,
//!   shrink", never an error that aborts the fit;
//! * the caller's interrupt check (`check`, which in PostgreSQL runs `CHECK_FOR_INTERRUPTS`) must
//!   run every iteration.
//!
//! The line search is Nocedal & Wright, *Numerical Optimization* (2nd ed.), Algorithms 3.5/3.6
//! (bracketing, then zoom with safeguarded cubic interpolation), with c1 = 1e-4, c2 = 0.9 - the
//! usual quasi-Newton constants, also scipy's. Near the optimum the decrease a step can achieve
//! falls below the rounding noise of a likelihood summed over 1e5 rows, and the Armijo test then
//! fails on noise; there we also accept Hager & Zhang's (2005) *approximate Wolfe* step
//! (`c2 phi'(0) <= phi'(a) <= (2 c1 - 1) phi'(0)` while `phi(a) <= phi(0) + eps |phi(0)|`), which
//! relies on the exact gradient instead of on differences of nearly equal values.

// `!(x > y)` is used on purpose (also true for NaN); dense n x n matrix code reads best indexed.
#![allow(clippy::neg_cmp_op_on_partial_ord, clippy::needless_range_loop)]

/// Outcome of [`bfgs`]. `converged` means the infinity norm of the gradient reached `tol`.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub f: f64,
    pub grad: Vec<f64>,
    /// Infinity norm of `grad`.
    pub grad_norm: f64,
    pub iterations: usize,
    pub converged: bool,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
/// Largest change of any coordinate in the first trial step of a line search. The coordinates are
/// log-parameters, so this caps a step at a factor e^4 ~ 55 per parameter; the bracketing phase
/// can still expand beyond it.
const MAX_FIRST_STEP: f64 = 4.0;
const MAX_LINE_EVALS: usize = 40;
/// Relative size of f changes treated as rounding noise by the approximate Wolfe test.
const F_NOISE: f64 = 1e-12;

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// One evaluated point of the line search, phi(a) = f(x + a d).
#[derive(Clone, Copy)]
struct Pt {
    a: f64,
    f: f64,
    /// phi'(a) = grad f(x + a d) . d; NaN when f is not finite.
    d: f64,
}

impl Pt {
    fn ok(&self) -> bool {
        self.f.is_finite() && self.d.is_finite()
    }
}

/// Minimiser of the cubic through (lo, hi) with slopes, or bisection when that is not defined;
/// kept inside the middle 80% of the interval so the bracket always shrinks.
fn interpolate(lo: &Pt, hi: &Pt) -> f64 {
    let (a0, a1) = (lo.a, hi.a);
    let width = (a1 - a0).abs();
    let (left, right) = (a0.min(a1) + 0.1 * width, a0.max(a1) - 0.1 * width);
    if !(lo.ok() && hi.ok()) {
        return 0.5 * (a0 + a1);
    }
    let d1 = lo.d + hi.d - 3.0 * (lo.f - hi.f) / (a0 - a1);
    let disc = d1 * d1 - lo.d * hi.d;
    if !(disc >= 0.0) {
        return 0.5 * (a0 + a1);
    }
    let d2 = (a1 - a0).signum() * disc.sqrt();
    let a = a1 - (a1 - a0) * (hi.d + d2 - d1) / (hi.d - lo.d + 2.0 * d2);
    if a.is_finite() {
        a.clamp(left, right)
    } else {
        0.5 * (a0 + a1)
    }
}

/// Scratch space and objective shared by the line search, so no allocation happens per trial.
struct Line<'a, F: FnMut(&[f64], &mut [f64]) -> f64> {
    f: &'a mut F,
    x: &'a [f64],
    d: &'a [f64],
    xt: Vec<f64>,
    gt: Vec<f64>,
    evals: usize,
}

impl<F: FnMut(&[f64], &mut [f64]) -> f64> Line<'_, F> {
    fn eval(&mut self, a: f64) -> Pt {
        self.evals += 1;
        for i in 0..self.x.len() {
            self.xt[i] = self.x[i] + a * self.d[i];
        }
        let f = (self.f)(&self.xt, &mut self.gt);
        if f.is_finite() && all_finite(&self.gt) {
            Pt {
                a,
                f,
                d: dot(&self.gt, self.d),
            }
        } else {
            Pt {
                a,
                f: f64::INFINITY,
                d: f64::NAN,
            }
        }
    }
}

/// Strong-Wolfe line search from phi(0) = `p0` (with p0.d < 0). Returns the accepted point; the
/// objective's state (`xt`, `gt`) then holds that point. Falls back to the best point with
/// sufficient decrease if the zoom runs out of evaluations; `None` if there is none.
fn line_search<F: FnMut(&[f64], &mut [f64]) -> f64>(
    ls: &mut Line<F>,
    p0: Pt,
    a_init: f64,
) -> Option<Pt> {
    let armijo = |p: &Pt| p.f <= p0.f + C1 * p.a * p0.d;
    let curvature = |p: &Pt| p.d.abs() <= -C2 * p0.d;
    let approx_wolfe = |p: &Pt| {
        p.ok()
            && p.f <= p0.f + F_NOISE * p0.f.abs()
            && C2 * p0.d <= p.d
            && p.d <= (2.0 * C1 - 1.0) * p0.d
    };
    let mut prev = p0;
    let mut a = a_init;
    let (mut lo, mut hi);
    loop {
        let p = ls.eval(a);
        if approx_wolfe(&p) {
            return Some(p);
        }
        if !p.ok() || !armijo(&p) || (prev.a > 0.0 && p.f >= prev.f) {
            lo = prev;
            hi = p;
            break;
        }
        if curvature(&p) {
            return Some(p);
        }
        if p.d >= 0.0 {
            lo = p;
            hi = prev;
            break;
        }
        if ls.evals >= MAX_LINE_EVALS {
            return Some(p);
        }
        prev = p;
        a *= 2.0;
    }
    // Zoom: lo always satisfies Armijo and has the lowest f seen among such points.
    loop {
        if ls.evals >= MAX_LINE_EVALS || (hi.a - lo.a).abs() <= 1e-14 * lo.a.abs().max(1e-300) {
            return if lo.a > 0.0 {
                // Re-evaluate so the caller's scratch holds lo's gradient.
                Some(ls.eval(lo.a))
            } else {
                None
            };
        }
        let a = interpolate(&lo, &hi);
        let p = ls.eval(a);
        if approx_wolfe(&p) {
            return Some(p);
        }
        if !p.ok() || !armijo(&p) || p.f >= lo.f {
            hi = p;
        } else {
            if curvature(&p) {
                return Some(p);
            }
            if p.d * (hi.a - lo.a) >= 0.0 {
                hi = lo;
            }
            lo = p;
        }
    }
}

/// Minimise `f` from `x0` with BFGS. `f(x, grad)` returns the objective and writes its gradient;
/// it may return a non-finite value where it is undefined. Stops when the infinity norm of the
/// gradient is <= `tol`, after `max_iter` iterations, or when no step makes progress. `check` is
/// called once per iteration (it may not return, e.g. a PostgreSQL cancel).
///
/// Never fails: the caller judges the returned [`Minimum`] (converged flag, gradient norm, x).
pub fn bfgs<F>(f: F, x0: &[f64], max_iter: usize, tol: f64, check: fn()) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    bfgs_from(f, x0, None, max_iter, tol, check)
}

/// [`bfgs`] with an initial inverse Hessian approximation (row-major n x n, symmetric positive
/// definite), e.g. the inverse of a Hessian computed near `x0`: from a good start and a good
/// matrix the first steps are already Newton steps, so a warm start converges in a few iterations.
pub fn bfgs_from<F>(
    mut f: F,
    x0: &[f64],
    h0: Option<&[f64]>,
    max_iter: usize,
    tol: f64,
    check: fn(),
) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let failed = |x: Vec<f64>, g: Vec<f64>, iterations| Minimum {
        x,
        f: f64::INFINITY,
        grad: g,
        grad_norm: f64::INFINITY,
        iterations,
        converged: false,
    };
    if !fx.is_finite() || !all_finite(&g) {
        return failed(x, g, 0);
    }
    // Inverse Hessian approximation, row-major n x n.
    let mut h = vec![0.0; n * n];
    let set_identity = |h: &mut [f64], scale: f64| {
        h.iter_mut().for_each(|v| *v = 0.0);
        (0..n).for_each(|i| h[i * n + i] = scale);
    };
    set_identity(&mut h, 1.0);
    let mut h_is_identity = true;
    let mut first_update = true;
    if let Some(h0) = h0.filter(|h0| h0.len() == n * n && all_finite(h0)) {
        h.copy_from_slice(h0);
        h_is_identity = false;
        first_update = false;
    }
    let mut d = vec![0.0; n];
    let mut s = vec![0.0; n];
    let mut y = vec![0.0; n];
    let mut hy = vec![0.0; n];
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    let mut iterations = 0;
    while iterations < max_iter {
        if inf_norm(&g) <= tol {
            break;
        }
        check();
        iterations += 1;
        for i in 0..n {
            d[i] = -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&g, &d);
        if !(slope < 0.0) {
            // Not a descent direction (the approximation lost positive definiteness): restart.
            set_identity(&mut h, 1.0);
            h_is_identity = true;
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            slope = dot(&g, &d);
        }
        let a0 = (MAX_FIRST_STEP / inf_norm(&d)).min(1.0);
        let mut line = Line {
            f: &mut f,
            x: &x,
            d: &d,
            xt: std::mem::take(&mut xt),
            gt: std::mem::take(&mut gt),
            evals: 0,
        };
        let found = line_search(
            &mut line,
            Pt {
                a: 0.0,
                f: fx,
                d: slope,
            },
            a0,
        );
        xt = std::mem::take(&mut line.xt);
        gt = std::mem::take(&mut line.gt);
        let Some(p) = found else {
            if h_is_identity {
                break; // steepest descent cannot progress either: we are at the noise floor
            }
            set_identity(&mut h, 1.0);
            h_is_identity = true;
            continue;
        };
        for i in 0..n {
            s[i] = xt[i] - x[i];
            y[i] = gt[i] - g[i];
        }
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if first_update {
                // Nocedal & Wright (6.20): scale the initial matrix before the first update.
                set_identity(&mut h, sy / dot(&y, &y));
                first_update = false;
            }
            // H+ = (I - rho s y') H (I - rho y s') + rho s s'
            let rho = 1.0 / sy;
            for i in 0..n {
                hy[i] = (0..n).map(|j| h[i * n + j] * y[j]).sum();
            }
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
            h_is_identity = false;
        }
        let improved = p.f < fx;
        x.copy_from_slice(&xt);
        g.copy_from_slice(&gt);
        fx = p.f;
        if !improved && h_is_identity {
            break;
        }
    }
    let grad_norm = inf_norm(&g);
    Minimum {
        x,
        f: fx,
        grad: g,
        grad_norm,
        iterations,
        converged: grad_norm <= tol,
    }
}

/// Hessian by central differences of an analytic gradient, symmetrised. `h` is the absolute step
/// in each coordinate. Returns `None` if any gradient evaluation is not finite.
pub fn hessian_fd<F>(mut grad: F, x: &[f64], h: f64) -> Option<Vec<Vec<f64>>>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x.len();
    let mut m = vec![vec![0.0; n]; n];
    let (mut xp, mut gp, mut gm) = (x.to_vec(), vec![0.0; n], vec![0.0; n]);
    for j in 0..n {
        xp[j] = x[j] + h;
        let fp = grad(&xp, &mut gp);
        xp[j] = x[j] - h;
        let fm = grad(&xp, &mut gm);
        xp[j] = x[j];
        if !(fp.is_finite() && fm.is_finite() && all_finite(&gp) && all_finite(&gm)) {
            return None;
        }
        for i in 0..n {
            m[i][j] = (gp[i] - gm[i]) / (2.0 * h);
        }
    }
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (m[i][j] + m[j][i]);
            m[i][j] = v;
            m[j][i] = v;
        }
    }
    Some(m)
}

/// Inverse of a symmetric positive definite matrix by Cholesky; `None` if it is not (numerically)
/// positive definite - for an observed information matrix that means the maximum is not strict
/// and standard errors do not exist.
pub fn invert_spd(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    let max_diag = (0..n).map(|i| a[i][i].abs()).fold(0.0, f64::max);
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let v = a[i][i] - sum;
                if !(v > 1e-13 * max_diag) || !v.is_finite() {
                    return None;
                }
                l[i][i] = v.sqrt();
            } else {
                l[i][j] = (a[i][j] - sum) / l[j][j];
            }
        }
    }
    // inv(A) = inv(L)' inv(L); invert the lower triangle column by column.
    let mut li = vec![vec![0.0; n]; n];
    for j in 0..n {
        li[j][j] = 1.0 / l[j][j];
        for i in j + 1..n {
            let sum: f64 = (j..i).map(|k| l[i][k] * li[k][j]).sum();
            li[i][j] = -sum / l[i][i];
        }
    }
    let mut inv = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            inv[i][j] = (i.max(j)..n).map(|k| li[k][i] * li[k][j]).sum();
        }
    }
    inv.iter().flatten().all(|v| v.is_finite()).then_some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() {}

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn bfgs_solves_rosenbrock() {
        let m = bfgs(rosenbrock, &[-1.2, 1.0], 500, 1e-10, noop);
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8,
            "{m:?}"
        );
        assert!(m.iterations < 100, "{m:?}");
    }

    #[test]
    fn bfgs_backs_off_from_non_finite_regions() {
        // Undefined (infinite) for x >= 2, log barrier before it; the unconstrained part pulls to
        // 2.5, so full steps from the far-away start overshoot into the undefined region.
        let f = |x: &[f64], g: &mut [f64]| {
            if x[0] >= 2.0 {
                g[0] = f64::NAN;
                return f64::INFINITY;
            }
            g[0] = 2.0 * (x[0] - 2.5) + 0.01 / (2.0 - x[0]);
            (x[0] - 2.5).powi(2) - 0.01 * (2.0 - x[0]).ln()
        };
        let m = bfgs(f, &[-30.0], 200, 1e-10, noop);
        assert!(m.converged, "{m:?}");
        // Stationary point: 2 (2.5 - x)(2 - x) = 0.01, x ~ 1.99.
        let x = m.x[0];
        assert!(
            x < 2.0 && (2.0 * (2.5 - x) * (2.0 - x) - 0.01).abs() < 1e-9,
            "{m:?}"
        );
    }

    #[test]
    fn bfgs_reports_failure_on_unbounded_problem() {
        // f = exp(-x) has no minimum: the gradient never reaches the tolerance within the cap.
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = -(-x[0]).exp();
            (-x[0]).exp()
        };
        let m = bfgs(f, &[0.0], 30, 1e-300, noop);
        assert!(!m.converged);
        assert!(m.x[0] > 10.0);
    }

    #[test]
    fn bfgs_calls_check_every_iteration() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn count() {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let m = bfgs(rosenbrock, &[-1.2, 1.0], 500, 1e-10, count);
        assert_eq!(CALLS.load(Ordering::SeqCst), m.iterations);
    }

    #[test]
    fn hessian_and_inverse() {
        // f = x'Ax/2 + sum x^4 / 4 at x = (0.3, -0.2): Hessian A + diag(3x^2).
        let a = [[4.0, 1.0], [1.0, 3.0]];
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = a[0][0] * x[0] + a[0][1] * x[1] + x[0].powi(3);
            g[1] = a[1][0] * x[0] + a[1][1] * x[1] + x[1].powi(3);
            0.0
        };
        let hess = hessian_fd(f, &[0.3, -0.2], 1e-4).unwrap();
        let exact = [[4.0 + 3.0 * 0.09, 1.0], [1.0, 3.0 + 3.0 * 0.04]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((hess[i][j] - exact[i][j]).abs() < 1e-7);
            }
        }
        let inv = invert_spd(&hess).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                let p: f64 = (0..2).map(|k| hess[i][k] * inv[k][j]).sum();
                assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(invert_spd(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
        assert!(invert_spd(&[vec![1.0, 1.0], vec![1.0, 1.0]]).is_none());
    }
}
