"""Customer lifetime value: BG/NBD for repeat purchases, Gamma-Gamma for spend per purchase.

BG/NBD: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to
the Pareto/NBD model", Marketing Science 24(2), equations (6) (likelihood), (9) (expected
purchases of a new customer) and (10) (conditional expectation); P(alive) from Hardie's note
021. Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer
base analysis", JMR 42(4), and Fader & Hardie's note 025 (likelihood; conditional mean spend,
equation 5). Formulas checked against the `lifetimes` 0.11.3 source.

A customer is summarised by `frequency` (x: repeat purchases, i.e. purchase days after the
first), `recency` (t_x: time from the first to the last purchase) and `age` (the paper's T:
time from the first purchase to the end of observation), all in one time unit of the
caller's choice; predictions for a period `t` use that unit. Everything is computed in log
space with `gammaln`; the optimiser works on log-parameters so they stay positive.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import IntegrationWarning, quad
from scipy.optimize import OptimizeResult, minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD population parameters: purchase rates ~ Gamma(r, alpha) (alpha in the time unit
    of the data), dropout probability after each purchase ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma spend parameters: a purchase's value ~ Gamma(p, nu), nu ~ Gamma(q, v)."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n_customers: int

    @property
    def population_mean_spend(self) -> float:
        """E[spend per purchase] of a new customer: p * v / (q - 1) (infinite when q <= 1)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def _as_floats(values: ArrayLike) -> Floats:
    return np.asarray(values, dtype=float)


def check_rfm(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> None:
    """Raise a ValueError naming the first bad customer unless 0 <= recency <= age, frequency is
    a whole number >= 0, and recency = 0 when frequency = 0."""
    x, t_x, t_obs = _as_floats(frequency), _as_floats(recency), _as_floats(age)
    checks = {
        "frequency is a whole number >= 0": (x >= 0) & (x == np.round(x)),
        "0 <= recency <= age": (t_x >= 0) & (t_x <= t_obs),
        "recency is 0 when frequency is 0": (x > 0) | (t_x == 0),
    }
    for rule, ok in checks.items():
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(
                f"BG/NBD inputs: {int((~ok).sum())} customers break '{rule}' (first: row {bad}, "
                f"frequency={float(x[bad])!r}, recency={float(t_x[bad])!r}, "
                f"age={float(t_obs[bad])!r})"
            )


def bgnbd_log_likelihood(
    log_params: Floats, frequency: Floats, recency: Floats, age: Floats
) -> Floats:
    """Each customer's log-likelihood under BG/NBD (paper's equation 6, A1 + A2 + log(A3 + A4))."""
    r, alpha, a, b = np.exp(log_params)
    x = frequency
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    # A4 exists only for customers with a repeat purchase; b + max(x, 1) - 1 avoids log(b - 1).
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + recency)
    a4 = np.where(x > 0, a4, -np.inf)
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=float)


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for customers summarised by (x, t_x, T).

    Customers with the same summary share one likelihood term, so the sum runs over the
    distinct rows weighted by their count (the fit's cost grows with distinct summaries)."""
    check_rfm(frequency, recency, age)
    rows = np.column_stack([_as_floats(frequency), _as_floats(recency), _as_floats(age)])
    if len(rows) == 0:
        raise ValueError("BG/NBD needs at least one customer; got none")
    unique, repeats = np.unique(rows, axis=0, return_counts=True)
    counts = repeats.astype(float)
    x, t_x, t_obs = unique.T
    # Scale alpha's start to the data's time unit so the start is unit-free.
    start = np.log([1.0, max(float(np.mean(rows[:, 2])), 1e-9), 1.0, 1.0])

    def loss(log_params: Floats) -> tuple[float, Floats]:
        total, gradient = _bgnbd_total_and_gradient(log_params, x, t_x, t_obs, counts)
        return -total, -gradient

    found = _minimise(loss, start)
    r, alpha, a, b = np.exp(found.x)
    return BgNbdParams(float(r), float(alpha), float(a), float(b), -float(found.fun), len(rows))


def _bgnbd_total_and_gradient(
    log_params: Floats, x: Floats, t_x: Floats, age: Floats, counts: Floats
) -> tuple[float, Floats]:
    """Summed log-likelihood and its gradient in the log-parameters (chain rule: theta * d/dtheta).
    w3 and w4 are the shares of A3 and A4 in A3 + A4."""
    r, alpha, a, b = np.exp(log_params)
    with np.errstate(all="ignore"):
        per_customer = bgnbd_log_likelihood(log_params, x, t_x, age)
        a3 = -(r + x) * np.log(alpha + age)
        a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
        w4 = np.where(x > 0, expit(a4 - a3), 0.0)
    w3 = 1 - w4
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + age)
    d_r = d_r - w4 * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + age) + w4 / (alpha + t_x))
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x)
    d_b = d_b - w4 / (b + np.maximum(x, 1) - 1)
    gradient = np.array([r, alpha, a, b]) * np.array([counts @ d for d in (d_r, d_alpha, d_a, d_b)])
    return float(counts @ per_customer), gradient


# The optimiser stays within e^-20..e^20 for every parameter, so exp() never overflows. A
# parameter at a bound is one the data cannot pin down (e.g. b when nobody seems to drop out):
# its limit is then the estimate, and the predictions are those of that limit.
LOG_BOUND = 20.0


def _minimise(loss: Callable[[Floats], tuple[float, Floats]], start: Floats) -> OptimizeResult:
    """L-BFGS-B on the log-parameters with the analytic gradient."""
    best = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
        options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 2000},
    )
    if not np.all(np.isfinite(best.x)) or not np.isfinite(best.fun):
        raise ValueError(f"CLV fit did not converge: {best.message!r}")
    return best


def probability_alive(
    params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> Floats:
    """P(customer still active at T | x, t_x, T); 1 for a customer with no repeat purchase."""
    x, t_x, t_obs = _as_floats(frequency), _as_floats(recency), _as_floats(age)
    log_odds_dead = (params.r + x) * np.log((params.alpha + t_obs) / (params.alpha + t_x)) + np.log(
        params.a / (params.b + np.maximum(x, 1) - 1)
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def expected_purchases(
    params: BgNbdParams, t: float, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> Floats:
    """E[repeat purchases in (T, T + t] | x, t_x, T] (paper's equation 10).

    The printed 2F1(r+x, b+x; a+b+x-1; z) overflows as x grows; there Euler's transformation
    folds its (1 - z)^(c-a-b) factor into the ((alpha+T)/(alpha+T+t))^(r+x) term, leaving
    (1 - z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z) (lifetimes does the same). Where neither
    gives a value inside its bounds (SciPy's 2F1 loses accuracy when a + b + x - 1 is near 0
    or negative, as for fits with a and b near 0), the expectation is integrated over the
    posterior dropout probability instead (`_expected_purchases_by_quadrature`)."""
    x, t_x, t_obs = _as_floats(frequency), _as_floats(recency), _as_floats(age)
    x, t_x, t_obs = np.broadcast_arrays(x, t_x, t_obs)
    if t <= 0:
        return np.zeros(x.shape)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t_obs + t)
    c = a + b + x - 1
    with np.errstate(all="ignore"):
        printed = (r + x) * np.log1p(-z) + np.log(hyp2f1(r + x, b + x, c, z))
        euler = (a - 1) * np.log1p(-z) + np.log(hyp2f1(a + b - 1 - r, a - 1, c, z))
        log_tail = np.where(np.isfinite(printed), printed, euler)
        # (1 - e^u) / (a - 1) with u -> 0 as a -> 1: -expm1 keeps the digits.
        mean_if_alive = c * -np.expm1(log_tail) / (a - 1)
    # Alive with rate lambda and dropout p: (1 - e^(-lambda p t)) / p <= lambda t.
    most = (r + x) * t / (alpha + t_obs)
    bad = ~((mean_if_alive >= 0) & (mean_if_alive <= most * (1 + 1e-9)))
    if bad.any():
        mean_if_alive = mean_if_alive.copy()
        mean_if_alive[bad] = _expected_purchases_by_quadrature(params, t, x[bad], t_obs[bad])
    return np.asarray(mean_if_alive * probability_alive(params, x, t_x, t_obs), dtype=float)


def _expected_purchases_by_quadrature(
    params: BgNbdParams, t: float, frequency: Floats, age: Floats
) -> Floats:
    """E[purchases in t | alive] = E[g(p)], g(p) = (1 - E[e^(-lambda p t)]) / p, lambda ~
    Gamma(r + x, alpha + T) and p ~ Beta(a, b + x) given alive: one integral over p per
    distinct (x, T), with QUADPACK's algebraic weight for the Beta density's endpoints.

    Where QUADPACK fails (a fit with a near 0 and b huge: hardly anyone drops out, the Beta
    density a spike at 0), g(E[p]) is used: g is convex and decreasing, so the expectation lies
    between g(E[p]) and g(0), which meet as E[p] = a / (a + b + x) goes to 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    pairs, inverse = np.unique(np.column_stack([frequency, age]), axis=0, return_inverse=True)
    means = np.empty(len(pairs))
    for i, (x, t_obs) in enumerate(pairs):
        scale = t / (alpha + t_obs)

        def not_yet_bought(p: float, x: float = x, scale: float = scale) -> float:
            # (1 - (1 + p t / (alpha + T))^-(r+x)) / p, finite as p -> 0.
            return (
                float(-np.expm1(-(r + x) * np.log1p(p * scale)) / p) if p > 0 else (r + x) * scale
            )

        with warnings.catch_warnings():
            warnings.simplefilter("error", IntegrationWarning)
            try:
                integral, _ = quad(not_yet_bought, 0.0, 1.0, weight="alg", wvar=(a - 1, b + x - 1))
                mean = integral / np.exp(betaln(a, b + x))
            except IntegrationWarning:
                mean = np.nan
        if not 0 <= mean <= (r + x) * scale * (1 + 1e-9):
            mean = not_yet_bought(a / (a + b + x))
        means[i] = mean
    return np.asarray(means[inverse.ravel()], dtype=float)


def expected_purchases_new_customer(params: BgNbdParams, t: float) -> float:
    """E[repeat purchases in (0, t]] of a customer who just made a first purchase (equation 9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t)
    tail = (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)
    return float((a + b - 1) / (a - 1) * (1 - tail))


def gamma_gamma_log_likelihood(log_params: Floats, frequency: Floats, monetary: Floats) -> Floats:
    """Each customer's log-likelihood of their mean spend `monetary` over `frequency` purchases."""
    p, q, v = np.exp(log_params)
    x, m = frequency, monetary
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v),
        dtype=float,
    )


def fit_gamma_gamma(frequency: ArrayLike, monetary: ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters from customers with at least one repeat
    purchase: `frequency` > 0 purchases and `monetary` > 0 their mean value."""
    x, m = _as_floats(frequency), _as_floats(monetary)
    bad = ~((x > 0) & (m > 0) & np.isfinite(m))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Gamma-Gamma inputs: {int(bad.sum())} customers without frequency > 0 and a "
            f"monetary value > 0 (first: row {first}, frequency={float(x[first])!r}, "
            f"monetary={float(m[first])!r}); pass repeat customers only"
        )
    if len(x) == 0:
        raise ValueError("Gamma-Gamma needs at least one repeat customer; got none")
    start = np.log([1.0, 1.0, max(float(np.mean(m)), 1e-9)])

    def loss(log_params: Floats) -> tuple[float, Floats]:
        p, q, v = np.exp(log_params)
        with np.errstate(all="ignore"):
            total = float(gamma_gamma_log_likelihood(log_params, x, m).sum())
        log_ratio = np.log(v) - np.log(x * m + v)
        d_p = x * (digamma(p * x + q) - digamma(p * x) + np.log(m) + np.log(x) - np.log(x * m + v))
        d_q = digamma(p * x + q) - digamma(q) + log_ratio
        d_v = q / v - (p * x + q) / (x * m + v)
        gradient = np.array([p * d_p.sum(), q * d_q.sum(), v * d_v.sum()])
        return -total, -gradient

    found = _minimise(loss, start)
    p, q, v = np.exp(found.x)
    return GammaGammaParams(float(p), float(q), float(v), -float(found.fun), len(x))


def expected_spend(params: GammaGammaParams, frequency: ArrayLike, monetary: ArrayLike) -> Floats:
    """E[value of a purchase | x purchases of mean value m]: the population mean shrunk
    towards the customer's own mean by weight p x / (p x + q - 1) (note 025, equation 5).
    A customer with x = 0 (monetary ignored) gets the population mean."""
    x, m = _as_floats(frequency), _as_floats(monetary)
    p, q = params.p, params.q
    weight = p * x / (p * x + q - 1)
    own = np.where(x > 0, m, 0.0)
    return np.asarray((1 - weight) * params.population_mean_spend + weight * own, dtype=float)


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    spend: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    age: ArrayLike,
    horizon: float,
    period: float,
    discount_rate: float,
) -> Floats:
    """Discounted expected value of each customer's purchases in (T, T + horizon].

    The horizon is cut into periods of length `period` (same unit as age; the last may be
    shorter); purchases expected in period k are worth `spend` each, discounted by
    (1 + discount_rate) ** k, `discount_rate` being per period."""
    ends = np.append(np.arange(period, horizon, period), horizon)
    cumulative = [expected_purchases(bgnbd, 0.0, frequency, recency, age)]
    cumulative += [expected_purchases(bgnbd, float(end), frequency, recency, age) for end in ends]
    value = np.zeros_like(cumulative[0])
    for k in range(1, len(cumulative)):
        value = value + (cumulative[k] - cumulative[k - 1]) / (1 + discount_rate) ** k
    return np.asarray(value * _as_floats(spend), dtype=float)
