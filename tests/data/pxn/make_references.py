#!/usr/bin/env python3
"""Reference values of the conditional purchase distribution P(X(t) = n | x, t_x, T).

Computed by direct numerical integration over the individual-level parameters (lambda, p) or
(lambda, mu) weighted by prior x likelihood, with mpmath; no closed form of the conditional pmf is
used to produce the numbers. The closed forms that exist (P(alive), the conditional expectation,
the unconditional pmf, lifetimes' Pareto/NBD conditional pmf) are coded only as checks.
See README.md in this directory for the method and the formulas.

    build/ref-venv/bin/python tests/data/pxn/make_references.py            # writes reference.json
    build/ref-venv/bin/python tests/data/pxn/make_references.py --checks   # extra checks only

Deterministic: no randomness; the same mpmath version gives the same bytes.
"""
import json
import os
import sys
import time

import mpmath as mp
from mpmath import mpf

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
PARAMS = {
    "bgnbd": [dict(r="0.242594150135", alpha="4.41359212062", a="0.792919156875", b="2.42589249843")],
    "mbgnbd": [dict(r="0.525", alpha="6.183", a="0.891", b="1.614")],
    "paretonbd": [
        dict(r="0.553325", alpha="10.578474", s="0.606224", beta="11.669958"),
        dict(r="0.55", alpha="10.58", s="0.61", beta="11.67"),  # the validation set
    ],
}
CUSTOMERS = [  # (x, t_x, T), weeks
    (0, "0", "38.86"),
    (1, "1.71", "38.86"),
    (2, "30.43", "38.86"),
    (7, "29.43", "35.38"),
    (5, "10.0", "38.0"),
    (132, "200", "200"),
    (40, "38.0", "39.0"),
]
HORIZONS = ["1", "10", "39"]
LIST_TAIL = mpf("1e-12")  # list P(n) until the mass beyond the last listed n is below this
N_CAP = 400
COMPUTE_TAIL_LOG10 = -36  # compute P(n) as far as the NBD bound on P(X >= n) is above 1e-36

# Quadrature levels: 0 = coarse (used for the convergence checks), 1 = production.
KAPPA = {0: mpf(1), 1: mpf(1) / 2}  # panel width in sqrt-space, in units of 1/sqrt(rate)
TS_LEVEL = {0: 5, 1: 6}  # tanh-sinh step 2^-level on panels that touch a singular endpoint
GL_DEG = 4  # mpmath GaussLegendre degree 4 = 24 nodes per interior panel
V_PANELS = {0: 1, 1: 2}  # Gauss-Legendre panels for the future death time (Pareto/NBD)
TAU_PANELS = {0: 1, 1: 2}  # ... and for the past death time (Pareto/NBD dead term)
PROD_DPS = 40
CHECK_DPS = 60
PRUNE = 60 * mp.log(10)  # drop panels / nodes below 1e-60 x the integral
TINY = mpf(10) ** -90
PARETO_D_QUAD = False  # the nested-quad check of the Pareto/NBD dead term is slow (minutes)

# ----------------------------------------------------------------------------------------------
# Quadrature rules (all returned as (d_left, d_right, w) on [-1, 1]: x = -1 + d_left = 1 - d_right,
# so that distances to a singular endpoint are kept at full relative precision)
# ----------------------------------------------------------------------------------------------
_cache = {}


def gl_rule(m):
    key = ("gl", m, mp.mp.prec)
    if key not in _cache:
        with mp.workprec(mp.mp.prec + 30):
            X, W = mp.gauss_quadrature(m, "legendre")
            _cache[key] = [(1 + x, 1 - x, w) for x, w in zip(X, W)]
    return _cache[key]


def gl24():
    key = ("gl24", mp.mp.prec)
    if key not in _cache:
        from mpmath.calculus.quadrature import GaussLegendre

        nodes = GaussLegendre(mp.mp).calc_nodes(GL_DEG, mp.mp.prec + 30)
        _cache[key] = [(1 + x, 1 - x, w) for x, w in nodes]
    return _cache[key]


def ts_rule(level):
    """Tanh-sinh x = tanh(pi/2 sinh(kh)), h = 2^-level, continued until the distance to the
    endpoint is below 2^-(4 (prec + 60)), which keeps integrable endpoint singularities down to
    exponent -0.75 (we meet -0.52 at worst) negligible."""
    key = ("ts", level, mp.mp.prec)
    if key not in _cache:
        with mp.workprec(mp.mp.prec + 30):
            h = mpf(2) ** (-level)
            stop = mpf(2) ** (-4 * (mp.mp.prec + 60))
            out = []
            k = 0
            while True:
                t = k * h
                v = mp.pi / 2 * mp.sinh(t)
                e = mp.exp(-2 * v)
                dr = 2 * e / (1 + e)  # 1 - tanh v
                dl = 2 / (1 + e)  # 1 + tanh v
                w = h * mp.pi / 2 * mp.cosh(t) / mp.cosh(v) ** 2
                if dr < stop:
                    break
                out.append((dl, dr, w))
                if k:
                    out.append((dr, dl, w))
                k += 1
        _cache[key] = out
    return _cache[key]


def gamma_grid(c, b, B, level):
    """Nodes (lam, W) with sum W F(lam) ~= int_0^inf lam^(c-1) e^(-b lam) F(lam) dlam for any
    0 <= F <= 1 that varies on the scale of e^(-B lam) (B >= b). Variable y = sqrt(lam): there a
    kernel lam^k e^(-B lam) is a bump of width ~ 1/(2 sqrt(B)) whatever k, so fixed panels of
    width KAPPA/sqrt(B) resolve every integrand of the family. Panels whose density is below
    1e-60 of the integral are skipped; the panel at y = 0 (singular when c < 1/2) uses tanh-sinh."""
    c, b, B = mpf(c), mpf(b), mpf(B)
    h = KAPPA[level] / mp.sqrt(B)
    cut = mp.loggamma(c) - c * mp.log(b) - PRUNE  # only to decide what to skip

    def g(y):  # log density in y (Jacobian 2y included)
        return (2 * c - 1) * mp.log(y) - b * y * y + mp.log(2)

    ystar = mp.sqrt((2 * c - 1) / (2 * b)) if c > mpf(1) / 2 else mpf(0)
    nodes = []
    k = 0
    while True:
        y0, y1 = k * h, (k + 1) * h
        if y0 > ystar and g(y0) < cut:
            break
        if y0 == 0:
            gmax = mp.inf if c < mpf(1) / 2 else g(min(max(ystar, h / 2), y1))
        else:
            gmax = max(g(y0), g(y1), g(ystar) if y0 < ystar < y1 else -mp.inf)
        if gmax >= cut:
            rule = ts_rule(TS_LEVEL[level]) if y0 == 0 else gl24()
            for dl, dr, w in rule:
                y = y0 + (y1 - y0) * dl / 2
                lam = y * y
                lw = mp.log(w * (y1 - y0)) + (2 * c - 1) * mp.log(y) - b * lam
                if lw > cut:  # a node below 1e-60 of the integral contributes nothing
                    nodes.append((lam, mp.exp(lw)))
        k += 1
    return nodes


def beta_grid(a, b, B, level):
    """Nodes (p, 1-p, W) with sum W F(p) ~= int_0^1 p^(a-1) (1-p)^(b-1) F(p) dp for 0 <= F <= 1
    varying like (1-p)^k, k <= B. Variable y = sqrt(p) on [0, 1]; the panels at y = 0 and y = 1
    use tanh-sinh (p^(a-1) and (1-p)^(b-1) are not smooth there), the others Gauss-Legendre."""
    a, b, B = mpf(a), mpf(b), mpf(B)
    h = KAPPA[level] / mp.sqrt(B)
    npan = max(2, int(mp.ceil(1 / h)))
    h = mpf(1) / npan
    cut = mp.log(mp.beta(a, b)) - PRUNE

    def g(y, om):  # om = 1 - y
        v = mp.log(2)
        if y > 0:
            v += (2 * a - 1) * mp.log(y)
        elif 2 * a - 1 != 0:
            v = mp.inf if 2 * a - 1 < 0 else -mp.inf
            return v
        if om > 0:
            v += (b - 1) * mp.log(om * (1 + y))
        elif b - 1 != 0:
            return mp.inf if b - 1 < 0 else -mp.inf
        return v

    ystar = None
    if a > mpf(1) / 2 and b > 1:
        ystar = mp.sqrt((2 * a - 1) / (2 * a - 1 + 2 * b - 2))
    nodes = []
    for k in range(npan):
        y0, y1 = k * h, (k + 1) * h if k + 1 < npan else mpf(1)
        vals = [g(y0, 1 - y0), g(y1, 1 - y1)]
        if ystar is not None and y0 < ystar < y1:
            vals.append(g(ystar, 1 - ystar))
        if max(vals) < cut:
            continue
        rule = ts_rule(TS_LEVEL[level]) if (k == 0 or k == npan - 1) else gl24()
        for dl, dr, w in rule:
            y = y0 + (y1 - y0) * dl / 2
            om = (1 - y1) + (y1 - y0) * dr / 2
            p, q = y * y, om * (1 + y)
            lw = mp.log(w * (y1 - y0)) + (2 * a - 1) * mp.log(y) + (b - 1) * mp.log(q)
            if lw > cut:  # a node below 1e-60 of the integral contributes nothing
                nodes.append((p, q, mp.exp(lw)))
    return nodes


def interval_rule(lo, hi, m, panels):
    """Gauss-Legendre with m nodes on each of `panels` equal panels of [lo, hi]: (point, weight)."""
    out = []
    for k in range(panels):
        a = lo + (hi - lo) * k / panels
        b = lo + (hi - lo) * (k + 1) / panels
        for dl, dr, w in gl_rule(m):
            out.append((a + (b - a) * dl / 2, w * (b - a) / 2))
    return out


# ----------------------------------------------------------------------------------------------
# How far to compute: given alive, X(t) <= N(t) stochastically and N(t) | alive-data is NBD
# (shape r + x, success prob (alpha + T)/(alpha + T + t)) for all three models.
# ----------------------------------------------------------------------------------------------
def n_compute(c, bT, t):
    pr = bT / (bT + t)
    lp = c * mp.log(pr)
    n = 0
    mode = (c - 1) * (1 - pr) / pr
    while True:
        if n > mode and lp < COMPUTE_TAIL_LOG10 * mp.log(10) + mp.log(1 - (1 - pr)) - 2:
            return n
        lp += mp.log((c + n) / (n + 1) * (1 - pr))
        n += 1


# ----------------------------------------------------------------------------------------------
# The models. Each returns dict(num=[...], A=..., D=...): P(n) = (num[n] + [n==0] D) / (A + D).
# Prior normalising constants are dropped (common to everything).
# ----------------------------------------------------------------------------------------------
def bg_like(model, P, x, tx, T, t, N, level):
    """BG/NBD and MBG/NBD.
    alive term A: BG (1-p)^x lam^x e^(-lam T); MBG (1-p)^(x+1) lam^x e^(-lam T)
    dead term  D: BG [x>0] p (1-p)^(x-1) lam^x e^(-lam t_x); MBG p (1-p)^x lam^x e^(-lam t_x)
    future given alive: f_0 = e^(-lam t), f_n = (1-p)^(n-1) [p P(N>=n) + (1-p) P(N=n)]."""
    r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
    bp = b + x if model == "bgnbd" else b + x + 1  # (1-p) exponent + 1 in the alive term
    lam = gamma_grid(r + x, al + T, al + T + t, level)
    pg = beta_grid(a, bp, a + bp + N, level)
    # The alive-term weight factorises, W(lam, p) = Wl(lam) Wp(p), and f_n is a sum of products,
    # so the tensor-product rule sum_ij Wl_i Wp_j f_n(lam_i, p_j) is evaluated as sums of
    # products of one-dimensional sums (identical to the 2-D sum; see --checks for the brute force).
    E1 = [mpf(0)] * (N + 1)  # sum Wp q^(n-1) p
    E2 = [mpf(0)] * (N + 1)  # sum Wp q^n
    for p, q, W in pg:
        qq = W
        E2[0] += qq
        for n in range(1, N + 1):
            E1[n] += qq * p
            qq *= q
            E2[n] += qq
    Lpi = [mpf(0)] * (N + 1)  # sum Wl P(N = n)
    LS = [mpf(0)] * (N + 1)  # sum Wl P(N >= n)
    tt = mpf(t)
    for lm, W in lam:
        z = lm * tt
        pi = mp.exp(-z)
        up = W  # W * P(N >= n), updated by subtraction (absolute error ~ 10^-dps W)
        for n in range(N + 1):
            wp = W * pi
            Lpi[n] += wp
            LS[n] += up
            up -= wp
            pi = pi * z / (n + 1)
    num = [E2[0] * Lpi[0]] + [E1[n] * LS[n] + E2[n] * Lpi[n] for n in range(1, N + 1)]
    A = E2[0] * LS[0]
    # dead term (also a product of two one-dimensional integrals)
    if model == "bgnbd" and x == 0:
        D = mpf(0)
    else:
        lamD = gamma_grid(r + x, al + tx, al + tx, level)
        pD = beta_grid(a + 1, bp - 1, a + bp, level)
        D = mp.fsum(W for _, W in lamD) * mp.fsum(W for _, _, W in pD)
    return dict(num=num, A=A, D=D)


def pareto(P, x, tx, T, t, N, level):
    """Pareto/NBD.
    A = lam^x e^(-(lam+mu) T)
    D = lam^x mu/(lam+mu) (e^(-(lam+mu) t_x) - e^(-(lam+mu) T))
      = lam^x mu int_{t_x}^T e^(-(lam+mu) tau) dtau          (tau = time of death)
    future given alive: f_n = e^(-mu t) Pois(n; lam t) + int_0^t mu e^(-mu s) Pois(n; lam s) ds.
    The s- and tau-integrals are done numerically (Gauss-Legendre) together with lam and mu."""
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]
    tt = mpf(t)
    bl, bm = al + T, be + T
    lam = gamma_grid(r + x, bl, bl + tt, level)
    muM = gamma_grid(s, bm, bm + tt, level)  # kernel mu^(s-1) e^(-bm mu)
    muN = gamma_grid(s + 1, bm, bm + tt, level)  # kernel mu^s e^(-bm mu) (the extra mu of the density)
    M0 = mp.fsum(W for _, W in muM)
    Mt = mp.fsum(W * mp.exp(-m * tt) for m, W in muM)
    lam_v = [l for l, _ in lam]
    lam_w = [W for _, W in lam]

    def pois_moments(sig):
        """sum_i Wl_i Pois(n; lam_i sig), n = 0..N"""
        cur = [W * mp.exp(-l * sig) for l, W in zip(lam_v, lam_w)]
        out = [mp.fsum(cur)]
        lv = lam_v
        fac = mpf(1)  # sig^n / n!
        for n in range(1, N + 1):
            cur = [cv * l for cv, l in zip(cur, lv)]
            fac = fac * sig / n
            if n == 1:
                # nodes below the largest term's lam whose term is < 1e-90 of it stay so for all
                # larger n (the deep tanh-sinh nodes near lam = 0 only matter for n = 0): drop them
                imax = max(range(len(cur)), key=lambda i: cur[i])
                keep = [i for i in range(len(cur)) if lv[i] >= lv[imax] or cur[i] > cur[imax] * TINY]
                cur = [cur[i] for i in keep]
                lv = [lv[i] for i in keep]
            out.append(mp.fsum(cur) * fac)
        return out

    term1 = [Mt * v for v in pois_moments(tt)]
    # s-integral in v = s / (bl + s) (there the lam-average is v^n times a smooth function)
    vt = tt / (bl + tt)
    panels = V_PANELS[level]
    m = int(8 * ((N // (2 * panels) + 32 + 7) // 8))
    term2 = [mpf(0)] * (N + 1)
    for v, wv in interval_rule(mpf(0), vt, m, panels):
        sig = bl * v / (1 - v)
        ws = wv * bl / (1 - v) ** 2
        Ns = mp.fsum(W * mp.exp(-mu * sig) for mu, W in muN)
        L = pois_moments(sig)
        f = ws * Ns
        for n in range(N + 1):
            term2[n] += f * L[n]
    num = [a_ + b_ for a_, b_ in zip(term1, term2)]
    A = M0 * mp.fsum(lam_w)
    if tx == T:
        D = mpf(0)
    else:
        lamD = gamma_grid(r + x, al + tx, al + T, level)
        muD = gamma_grid(s + 1, be + tx, be + T, level)
        D = mpf(0)
        for tau, wt in interval_rule(tx, T, 48, TAU_PANELS[level]):
            d = tau - tx
            D += wt * mp.fsum(W * mp.exp(-l * d) for l, W in lamD) * mp.fsum(W * mp.exp(-u * d) for u, W in muD)
    return dict(num=num, A=A, D=D)


def compute(model, P, x, tx, T, t, N, level, dps):
    with mp.workdps(dps):
        Pm = {k: mpf(v) for k, v in P.items()}
        tx, T, t = mpf(tx), mpf(T), mpf(t)
        if model == "paretonbd":
            res = pareto(Pm, x, tx, T, t, N, level)
        else:
            res = bg_like(model, Pm, x, tx, T, t, N, level)
        den = res["A"] + res["D"]
        pmf = [v / den for v in res["num"]]
        pmf[0] += res["D"] / den
        return dict(pmf=pmf, p_alive=res["A"] / den, A=res["A"], D=res["D"])


# ----------------------------------------------------------------------------------------------
# Closed forms (checks only), coded from lifetimes 0.11.3 / the papers
# ----------------------------------------------------------------------------------------------
def closed_p_alive(model, P, x, tx, T, variant=None):
    if model == "bgnbd":
        r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
        if x == 0:
            return mpf(1)
        return 1 / (1 + a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))
    if model == "mbgnbd":
        r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
        k = a / (a + b + x) if variant == "alive(1-p)^x" else a / (b + x)
        return 1 / (1 + k * ((al + T) / (al + tx)) ** (r + x))
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]
    return 1 / (1 + s / (r + s + x) * (al + T) ** (r + x) * (be + T) ** s * _pareto_A0(P, x, tx, T))


def _pareto_A0(P, x, tx, T):  # lifetimes ParetoNBDFitter._log_A_0, exponentiated
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]
    if al < be:
        mn, mx, tt = al, be, r + x
    else:
        mn, mx, tt = be, al, s + 1
    d = mx - mn
    rsf = r + s + x
    p1 = mp.hyp2f1(rsf, tt, rsf + 1, d / (mx + tx))
    p2 = mp.hyp2f1(rsf, tt, rsf + 1, d / (mx + T))
    return p1 / (mx + tx) ** rsf - p2 / (mx + T) ** rsf


def closed_expected(model, P, x, tx, T, t):
    if model == "bgnbd":  # Fader, Hardie & Lee (2005) eq. (10)
        r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
        h = mp.hyp2f1(r + x, b + x, a + b + x - 1, t / (al + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ((al + T) / (al + T + t)) ** (r + x) * h)
        return num * closed_p_alive(model, P, x, tx, T)
    if model == "mbgnbd":  # lifetimes / Wagner & Hoppe (2008)
        r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
        h = mp.hyp2f1(r + x, b + x + 1, a + b + x, t / (al + T + t))
        num = (a + b + x) / (a - 1) * (1 - h * ((al + T) / (al + t + T)) ** (r + x))
        return num * closed_p_alive(model, P, x, tx, T)
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]  # lifetimes (Fader & Hardie note 009 eq. 41)
    return (closed_p_alive(model, P, x, tx, T) * (r + x) * (be + T) / ((al + T) * (s - 1))
            * (1 - ((be + T) / (be + T + t)) ** (s - 1)))


def closed_pareto_pmf(P, n, t, x, tx, T):
    """lifetimes ParetoNBDFitter.conditional_probability_of_n_purchases_up_to_time (Fader & Hardie
    note 028 eq. 16), in mpmath."""
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]
    lg, lb, log = mp.loggamma, lambda u, v: mp.log(mp.beta(u, v)), mp.log
    if al < be:
        mn, mx, pp = al, be, r + x + n
    else:
        mn, mx, pp = be, al, s + 1
    d = mx - mn
    rsf = r + s + x
    A0 = _pareto_A0(P, x, tx, T)
    log_l = (lg(r + x) - lg(r) + r * log(al) + s * log(be)
             + log(mp.exp(-(r + x) * log(al + T) - s * log(be + T)) + s / rsf * A0))
    log_p_zero = lg(r + x) + r * log(al) + s * log(be) - (lg(r) + (r + x) * log(al + T) + s * log(be + T) + log_l)
    log_B_one = lg(r + x + n) + r * log(al) + s * log(be) - (lg(r) + (r + x + n) * log(al + T + t) + s * log(be + T + t))
    log_B_two = (r * log(al) + s * log(be) + lg(rsf) + lb(r + x + n, s + 1)
                 + log(mp.hyp2f1(rsf, pp, rsf + n + 1, d / (mx + T))) - (lg(r) + lg(s) + rsf * log(mx + T)))

    def log_B_three(i):
        return (r * log(al) + s * log(be) + lg(rsf + i) + lb(r + x + n, s + 1)
                + log(mp.hyp2f1(rsf + i, pp, rsf + n + 1, d / (mx + T + t))) - (lg(r) + lg(s) + (rsf + i) * log(mx + T + t)))

    zeroth = (1 - mp.exp(log_p_zero)) if n == 0 else 0
    first = mp.exp(n * log(t) - lg(n + 1) + log_B_one - log_l)
    second = mp.exp(log_B_two - log_l)
    third = mp.fsum(mp.exp(i * log(t) - lg(i + 1) + log_B_three(i) - log_l) for i in range(n + 1))
    return zeroth + first + second - third


def closed_unconditional_pmf(model, P, n, t):
    """lifetimes probability_of_n_purchases_up_to_time (BG/NBD: FHL 2005 eq. 8)."""
    r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
    B, G = mp.beta, mp.gamma
    fs = mp.fsum(G(r + j) / G(r) / G(j + 1) * (t / (al + t)) ** j for j in range(n))
    if model == "bgnbd":
        first = B(a, b + n) / B(a, b) * G(r + n) / G(r) / G(n + 1) * (al / (al + t)) ** r * (t / (al + t)) ** n
        second = B(a + 1, b + n - 1) / B(a, b) * (1 - (al / (al + t)) ** r * fs) if n > 0 else 0
    else:
        first = B(a, b + n + 1) / B(a, b) * G(r + n) / G(r) / G(n + 1) * (al / (al + t)) ** r * (t / (al + t)) ** n
        second = B(a + 1, b + n) / B(a, b) * (1 - (al / (al + t)) ** r * fs)
    return first + second


_quad_cache = {}


def quad_integrals(model, P, x, tx, T):
    """A and D integrals by mpmath.quad (adaptive tanh-sinh, a second, independent rule)."""
    key = (model, tuple(sorted(P.items())), x, tx, T, mp.mp.prec)
    if key not in _quad_cache:
        _quad_cache[key] = _quad_integrals(model, P, x, tx, T)
    return _quad_cache[key]


def _quad_integrals(model, P, x, tx, T):
    # mpmath.quad stops on an absolute error below eps, so every integrand is first scaled to O(1)
    # by its value at the mean (returned as log scale L: integral = value * e^L).
    def gam(c, b):  # int_0^inf lam^(c-1) e^(-b lam)
        mean, sd = c / b, mp.sqrt(c) / b
        L = (c - 1) * mp.log(mean) - b * mean
        pts = sorted({mpf(0)} | {mean + k * sd for k in range(-12, 13, 2) if mean + k * sd > 0})
        if c < 1:  # v = lam^c removes the endpoint singularity: lam^(c-1) dlam = dv / c
            v = mp.quad(lambda u: mp.exp(-b * u ** (1 / c)) / c, [q ** c for q in pts] + [mp.inf])
            return v, mpf(0)
        v = mp.quad(lambda l: mp.exp((c - 1) * mp.log(l) - b * l - L), pts + [mp.inf])
        return v, L

    def bet(a, b):
        mean = a / (a + b)
        sd = mp.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        L = (a - 1) * mp.log(mean) + (b - 1) * mp.log(1 - mean)
        pts = sorted({mpf(0), mpf(1)} | {mean + k * sd for k in range(-12, 13, 2) if 0 < mean + k * sd < 1})
        if a < 1:  # v = p^a: p^(a-1) dp = dv / a
            v = mp.quad(lambda u: mp.exp((b - 1) * mp.log1p(-u ** (1 / a))) / a if u < 1 else mpf(0),
                        [q ** a for q in pts])
            return v, mpf(0)
        v = mp.quad(lambda p: mp.exp((a - 1) * mp.log(p) + (b - 1) * mp.log1p(-p) - L), pts)
        return v, L

    def prod(*vl):
        return mp.fprod(v for v, _ in vl) * mp.exp(mp.fsum(L for _, L in vl))

    if model != "paretonbd":
        r, al, a, b = P["r"], P["alpha"], P["a"], P["b"]
        bp = b + x if model == "bgnbd" else b + x + 1
        A = prod(gam(r + x, al + T), bet(a, bp))
        D = mpf(0) if (model == "bgnbd" and x == 0) else prod(gam(r + x, al + tx), bet(a + 1, bp - 1))
        return A, D
    r, al, s, be = P["r"], P["alpha"], P["s"], P["beta"]
    A = prod(gam(r + x, al + T), gam(s, be + T))
    if tx == T or not PARETO_D_QUAD:
        return A, mpf(0)  # D is checked through P(alive) against lifetimes' closed form instead
    ref = prod(gam(r + x, al + tx), gam(s + 1, be + tx))
    D = ref * mp.quad(lambda tau: prod(gam(r + x, al + tau), gam(s + 1, be + tau)) / ref, [tx, (tx + T) / 2, T])
    return A, D


# ----------------------------------------------------------------------------------------------
def rel(a, b):
    return abs(a - b) / max(abs(b), mpf(10) ** -300)


def fmt(v):
    return "%.17g" % float(v)


def run_case(model, P, cust, t, log):
    x, tx, T = cust
    mp.mp.dps = PROD_DPS
    Pm = {k: mpf(v) for k, v in P.items()}
    txm, Tm, tm = mpf(tx), mpf(T), mpf(t)
    c = Pm["r"] + x
    N = min(n_compute(c, Pm["alpha"] + Tm, tm), N_CAP + 60)
    t0 = time.time()
    prod = compute(model, P, x, tx, T, t, N, 1, PROD_DPS)
    coarse = compute(model, P, x, tx, T, t, N, 0, PROD_DPS)
    coarse_hi = compute(model, P, x, tx, T, t, N, 0, CHECK_DPS)
    mp.mp.dps = PROD_DPS
    pmf = prod["pmf"]
    # list until the mass beyond is < 1e-12 (or the cap)
    tails = [mpf(0)] * (N + 2)
    for n in range(N, -1, -1):
        tails[n] = tails[n + 1] + pmf[n]  # tails[n] = sum_{k >= n}
    nl = 0
    while nl < N and tails[nl + 1] >= LIST_TAIL and nl < N_CAP:
        nl += 1
    listed = pmf[: nl + 1]
    tail_beyond = tails[nl + 1]
    total = mp.fsum(pmf)
    mean = mp.fsum(n * v for n, v in enumerate(pmf))
    # convergence: listed entries, relative
    disc = max(rel(a_, b_) for a_, b_ in zip(listed, coarse["pmf"]))
    roun = max(rel(a_, b_) for a_, b_ in zip(coarse["pmf"][: nl + 1], coarse_hi["pmf"]))
    Aq, Dq = quad_integrals(model, Pm, x, txm, Tm)
    pa_closed = closed_p_alive(model, Pm, x, txm, Tm)
    e_closed = closed_expected(model, Pm, x, txm, Tm, tm)
    chk = dict(
        N=N, nl=nl, secs=time.time() - t0, sum_minus_1=total - 1, disc=disc, round=roun,
        A_vs_quad=rel(prod["A"], Aq), D_vs_quad=rel(prod["D"], Dq) if Dq else mpf(0),
        palive_vs_closed=rel(prod["p_alive"], pa_closed), mean_vs_closed=rel(mean, e_closed),
    )
    log.append((model, P, cust, t, chk, mean, e_closed))
    print("%-9s %-8s x=%-3d tx=%-6s T=%-6s t=%-3s N=%3d listed=%3d %6.1fs | sum-1 %.1e disc %.1e round %.1e "
          "A/quad %.1e D/quad %.1e Palive/closed %.1e mean/closed %.1e" % (
              model, P["r"], x, tx, T, t, N, nl, chk["secs"], float(chk["sum_minus_1"]), float(disc), float(roun),
              float(chk["A_vs_quad"]), float(chk["D_vs_quad"]), float(chk["palive_vs_closed"]),
              float(chk["mean_vs_closed"])), flush=True)
    return dict(
        model=model, params={k: float(v) for k, v in P.items()}, x=x, t_x=float(tx), T=float(T), t=float(t),
        p_alive=prod["p_alive"], expected_purchases=mean, pmf=listed, tail_beyond=tail_beyond,
    )


def to_json(cases):
    def val(v):
        if isinstance(v, (mp.mpf, float)):
            return fmt(v)
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, dict):
            return "{" + ", ".join("%s: %s" % (json.dumps(k), val(x)) for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        raise TypeError(type(v))

    return "[\n" + ",\n".join(val(c) for c in cases) + "\n]\n"


def validation():
    """The issue's check: Pareto/NBD (0.55, 10.58, 0.61, 11.67), (132, 200, 200), t = 10."""
    P = PARAMS["paretonbd"][1]
    mp.mp.dps = PROD_DPS
    N = n_compute(mpf(P["r"]) + 132, mpf(P["alpha"]) + 200, mpf(10))
    res = compute("paretonbd", P, 132, "200", "200", "10", N, 1, PROD_DPS)
    want = {0: "0.0066232", 3: "0.0805734", 6: "0.1536087", 9: "0.0766865"}
    ok = True
    Pm = {k: mpf(v) for k, v in P.items()}
    for n, w in want.items():
        got = res["pmf"][n]
        cf = closed_pareto_pmf(Pm, n, mpf(10), 132, mpf(200), mpf(200))
        good = abs(got - mpf(w)) <= mpf("5e-8")
        ok &= good
        print("validation P(%d) = %s   expected %s   %s   (lifetimes closed form in mpmath: %s)"
              % (n, mp.nstr(got, 20), w, "OK" if good else "MISMATCH", mp.nstr(cf, 20)))
    return ok


def extra_checks():
    mp.mp.dps = PROD_DPS
    print("-- MBG/NBD P(alive): numerical A/(A+D) with lifetimes' terms, lifetimes' closed form, and the"
          " variant with A = (1-p)^x")
    P = PARAMS["mbgnbd"][0]
    Pm = {k: mpf(v) for k, v in P.items()}
    for x, tx, T in CUSTOMERS[:5]:
        res = compute("mbgnbd", P, x, tx, T, "1", 5, 1, PROD_DPS)
        print("  x=%d tx=%s T=%s numeric %s  lifetimes %s  variant %s" % (
            x, tx, T, mp.nstr(res["p_alive"], 20), mp.nstr(closed_p_alive("mbgnbd", Pm, x, mpf(tx), mpf(T)), 20),
            mp.nstr(closed_p_alive("mbgnbd", Pm, x, mpf(tx), mpf(T), "alive(1-p)^x"), 20)))
    print("-- unconditional pmf: (x, t_x, T) = (0, 0, 0) against lifetimes probability_of_n_purchases_up_to_time")
    for model in ("bgnbd", "mbgnbd"):
        P = PARAMS[model][0]
        Pm = {k: mpf(v) for k, v in P.items()}
        res = compute(model, P, 0, "0", "0", "39", 40, 1, PROD_DPS)
        worst = max(rel(res["pmf"][n], closed_unconditional_pmf(model, Pm, n, mpf(39))) for n in range(41))
        print("  %s t=39 n=0..40: max relative difference %.2e" % (model, float(worst)))
    print("-- Pareto/NBD against lifetimes' conditional pmf (Fader & Hardie note 028 eq. 16) in mpmath")
    for P in PARAMS["paretonbd"]:
        Pm = {k: mpf(v) for k, v in P.items()}
        for x, tx, T in CUSTOMERS:
            for t in ("1", "39"):
                N = n_compute(Pm["r"] + x, Pm["alpha"] + mpf(T), mpf(t))
                res = compute("paretonbd", P, x, tx, T, t, N, 0, PROD_DPS)
                worst = mpf(0)
                for n in range(0, N + 1, max(1, N // 12)):
                    cf = closed_pareto_pmf(Pm, n, mpf(t), x, mpf(tx), mpf(T))
                    if res["pmf"][n] > mpf("1e-13"):
                        worst = max(worst, rel(res["pmf"][n], cf))
                print("  r=%s x=%d t=%s: max relative difference over sampled n with P > 1e-13: %.2e"
                      % (P["r"], x, t, float(worst)))
    print("-- brute-force 2-D tensor rule (f_n evaluated per (lam, p) or (lam, mu) node from its own formula)")
    brute_force()


def brute_force():
    mp.mp.dps = 30
    x, tx, T, t = 7, mpf("29.43"), mpf("35.38"), mpf(10)
    for model in ("bgnbd", "mbgnbd", "paretonbd"):
        P = PARAMS[model][0]
        Pm = {k: mpf(v) for k, v in P.items()}
        N = n_compute(Pm["r"] + x, Pm["alpha"] + T, t)
        ref = compute(model, P, x, "29.43", "35.38", "10", N, 0, 30)
        mp.mp.dps = 30
        lam = gamma_grid(Pm["r"] + x, Pm["alpha"] + T, Pm["alpha"] + T + t, 0)
        num = [mpf(0)] * (N + 1)
        if model != "paretonbd":
            a, b = Pm["a"], Pm["b"]
            bp = b + x if model == "bgnbd" else b + x + 1
            for p, q, Wp in beta_grid(a, bp, a + bp + N, 0):
                for lm, Wl in lam:
                    W = Wl * Wp
                    z = lm * t
                    pois = [mp.exp(-z)]
                    for n in range(1, N + 1):
                        pois.append(pois[-1] * z / n)
                    num[0] += W * pois[0]
                    cdf = mpf(0)
                    qn = mpf(1)  # q^(n-1)
                    for n in range(1, N + 1):
                        cdf += pois[n - 1]
                        num[n] += W * qn * (p * (1 - cdf) + q * pois[n])
                        qn *= q
        else:
            s, be = Pm["s"], Pm["beta"]
            # f_n = e^(-mu t) Pois(n; lam t) + mu/(lam+mu) (lam/(lam+mu))^n P(Pois((lam+mu) t) >= n+1)
            for mu, Wm in gamma_grid(s, be + T, be + T + t, 0):
                for lm, Wl in lam:
                    W = Wl * Wm
                    z, rho = lm * t, (lm + mu) * t
                    om = lm / (lm + mu)
                    pz, pr = mp.exp(-z), mp.exp(-rho)
                    cdf = mpf(0)
                    k = mu / (lm + mu)
                    emt = mp.exp(-mu * t)
                    for n in range(N + 1):
                        cdf += pr
                        num[n] += W * (emt * pz + k * (1 - cdf))
                        pz = pz * z / (n + 1)
                        pr = pr * rho / (n + 1)
                        k = k * om
        A = mp.fsum(W for _, W in lam) * (mp.fsum(W for _, _, W in beta_grid(Pm["a"], bp, Pm["a"] + bp + N, 0))
                                          if model != "paretonbd" else
                                          mp.fsum(W for _, W in gamma_grid(Pm["s"], Pm["beta"] + T, Pm["beta"] + T + t, 0)))
        D = ref["D"]  # the dead term is not what this check is about (see the per-case checks)
        pmf = [v / (A + D) for v in num]
        pmf[0] += D / (A + D)
        worst = max(rel(pmf[n], ref["pmf"][n]) for n in range(N + 1) if ref["pmf"][n] > mpf("1e-13"))
        print("  %s x=7 t=10: brute-force 2-D vs production (both coarse grid, 30 digits): max rel diff %.2e"
              % (model, float(worst)))


def main():
    if "--brute" in sys.argv:
        brute_force()
        return
    if "--checks" in sys.argv:
        extra_checks()
        return
    if not validation():
        print("validation failed")
        sys.exit(1)
    cases, log = [], []
    only = os.environ.get("PXN_ONLY")
    for model in ("bgnbd", "mbgnbd", "paretonbd"):
        if only and model != only:
            continue
        for P in PARAMS[model]:
            for cust in CUSTOMERS:
                for t in HORIZONS:
                    if model == "paretonbd" and P is PARAMS["paretonbd"][1] and t != "10":
                        continue  # the validation set: t = 10 only (time budget)
                    cases.append(run_case(model, P, cust, t, log))
    worst = {k: max(float(c[4][k]) if k != "sum_minus_1" else abs(float(c[4][k])) for c in log)
             for k in ("sum_minus_1", "disc", "round", "A_vs_quad", "D_vs_quad", "palive_vs_closed", "mean_vs_closed")}
    print("worst over all cases:", {k: "%.1e" % v for k, v in worst.items()})
    out = os.environ.get("PXN_OUT", os.path.join(HERE, "reference.json"))
    with open(out, "w") as f:
        f.write(to_json(cases))
    print("wrote", out, len(cases), "cases")


if __name__ == "__main__":
    main()
