"""BG/NBD and Gamma-Gamma: the paper's CDNOW figures, a naive reference, and invariants."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1

from closeprob.models.clv import (
    BgNbdParams,
    GammaGammaParams,
    _bgnbd_total_and_gradient,
    _expected_purchases_by_quadrature,
    bgnbd_log_likelihood,
    customer_lifetime_value,
    expected_purchases,
    expected_purchases_new_customer,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
)

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow" / "calibration.csv"
# Fader, Hardie & Lee (2005), Marketing Science 24(2), p. 280 and Table 1.
PAPER = BgNbdParams(
    r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4, n_customers=2357
)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


def test_bgnbd_reproduces_the_papers_cdnow_parameters_and_log_likelihood(cdnow) -> None:
    fitted = fit_bgnbd(cdnow["frequency"], cdnow["recency_weeks"], cdnow["T_weeks"])
    assert fitted.n_customers == 2357
    assert round(fitted.r, 3) == PAPER.r
    assert round(fitted.alpha, 3) == PAPER.alpha
    assert round(fitted.a, 3) == PAPER.a
    assert round(fitted.b, 3) == PAPER.b
    assert round(fitted.log_likelihood, 1) == PAPER.log_likelihood


def test_gamma_gamma_reproduces_the_published_cdnow_parameters(cdnow) -> None:
    repeat = cdnow[cdnow["frequency"] > 0]
    fitted = fit_gamma_gamma(repeat["frequency"], repeat["repeat_mean_spend"])
    assert fitted.n_customers == 946
    assert (round(fitted.p, 2), round(fitted.q, 2), round(fitted.v, 2)) == (6.25, 3.74, 15.44)


def test_the_papers_worked_customer_expects_1_226_purchases_in_39_weeks() -> None:
    # The paper's example (section 5): x = 2, t_x = 30.43, T = 38.86 -> 1.226.
    expected = expected_purchases(PAPER, 39.0, [2], [30.43], [38.86])
    assert round(float(expected[0]), 3) == 1.226


def _naive_expected_purchases(p: BgNbdParams, t: float, x: float, t_x: float, age: float) -> float:
    """Equation (10) as printed, without Euler's transformation."""
    z = t / (p.alpha + age + t)
    tail = ((p.alpha + age) / (p.alpha + age + t)) ** (p.r + x) * hyp2f1(
        p.r + x, p.b + x, p.a + p.b + x - 1, z
    )
    alive = 1 + (x > 0) * p.a / (p.b + x - 1) * ((p.alpha + age) / (p.alpha + t_x)) ** (p.r + x)
    return (p.a + p.b + x - 1) / (p.a - 1) * (1 - tail) / alive


@pytest.mark.parametrize("x,t_x,age", [(0, 0.0, 38.0), (1, 5.0, 20.0), (7, 30.0, 39.0)])
def test_expected_purchases_equal_the_printed_formula(x, t_x, age) -> None:
    ours = float(expected_purchases(PAPER, 52.0, [x], [t_x], [age])[0])
    assert ours == pytest.approx(_naive_expected_purchases(PAPER, 52.0, x, t_x, age), rel=1e-9)


@pytest.mark.parametrize("x,age", [(0, 38.0), (3, 20.0), (12, 39.0)])
def test_the_quadrature_fallback_equals_the_printed_formula(x, age) -> None:
    by_quadrature = _expected_purchases_by_quadrature(PAPER, 52.0, np.array([x]), np.array([age]))
    alive = probability_alive(PAPER, [x], [age], [age])[0]
    printed = _naive_expected_purchases(PAPER, 52.0, x, age, age)
    assert by_quadrature[0] * alive == pytest.approx(printed, rel=1e-7)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # the naive reference
def test_a_fit_with_a_plus_b_below_1_still_gives_bounded_expectations() -> None:
    # a + b - 1 < 0 puts SciPy's 2F1 outside its accurate range for x = 0 (seen on the
    # built-in data, whose accounts hardly drop out).
    params = BgNbdParams(r=0.40, alpha=138.5, a=0.070, b=0.666, log_likelihood=0, n_customers=0)
    expected = expected_purchases(params, 365.0, [0, 0, 5], [0.0, 0.0, 100.0], [41.4, 318.4, 300])
    assert np.isfinite(expected).all() and (expected > 0).all()
    bound = (params.r + np.array([0, 0, 5])) * 365 / (params.alpha + np.array([41.4, 318.4, 300]))
    assert (expected <= bound).all()
    # Naive reference: the posterior expectation integrated with the Beta density written out.
    x, age = 0, 41.4

    def integrand(p: float) -> float:
        not_bought = ((params.alpha + age) / (params.alpha + age + p * 365)) ** (params.r + x)
        log_density = (
            (params.a - 1) * np.log(p)
            + (params.b + x - 1) * np.log1p(-p)
            - betaln(params.a, params.b + x)
        )
        return (1 - not_bought) / p * np.exp(log_density)

    assert expected[0] == pytest.approx(quad(integrand, 0, 1, limit=200)[0], rel=1e-6)


def test_a_fit_where_nobody_drops_out_expects_the_no_dropout_purchases() -> None:
    # a -> 0, b huge (crm_sales): p is a spike at 0; the limit is Poisson-Gamma's (r+x)t/(alpha+T).
    params = BgNbdParams(r=13.0, alpha=105.0, a=2e-9, b=9e4, log_likelihood=0, n_customers=0)
    expected = expected_purchases(params, 365.0, [0, 4], [0.0, 90.0], [100.0, 120.0])
    limit = (params.r + np.array([0, 4])) * 365.0 / (params.alpha + np.array([100.0, 120.0]))
    np.testing.assert_allclose(expected, limit, rtol=1e-3)


def test_expected_purchases_stay_finite_for_heavy_buyers() -> None:
    # The printed 2F1 overflows here; the transformed one does not.
    expected = expected_purchases(PAPER, 52.0, [400], [38.0], [39.0])
    assert np.isfinite(expected).all() and expected[0] > 0


def test_a_new_customer_expects_what_equation_9_says_and_a_zero_history_agrees() -> None:
    new = expected_purchases_new_customer(PAPER, 39.0)
    assert new == pytest.approx(float(expected_purchases(PAPER, 39.0, [0], [0.0], [0.0])[0]))


def test_expected_spend_shrinks_towards_the_population_mean() -> None:
    params = GammaGammaParams(p=6.25, q=3.74, v=15.44, log_likelihood=0.0, n_customers=946)
    spend = expected_spend(params, [0, 1, 50], [0.0, 100.0, 100.0])
    assert spend[0] == pytest.approx(params.population_mean_spend)
    assert params.population_mean_spend < spend[1] < spend[2] < 100.0


def test_clv_without_discount_is_spend_times_expected_purchases() -> None:
    clv = customer_lifetime_value(PAPER, [20.0], [2], [30.0], [38.0], 52.0, 4.0, 0.0)
    purchases = expected_purchases(PAPER, 52.0, [2], [30.0], [38.0])
    assert clv[0] == pytest.approx(20.0 * purchases[0])
    assert customer_lifetime_value(PAPER, [20.0], [2], [30.0], [38.0], 52.0, 4.0, 0.1)[0] < clv[0]


def test_inputs_with_recency_beyond_age_are_refused_naming_the_customer() -> None:
    with pytest.raises(ValueError, match=r"0 <= recency <= age.*row 1, frequency=2.0"):
        fit_bgnbd([0, 2], [0.0, 40.0], [39.0, 39.0])


def test_gamma_gamma_refuses_customers_without_a_repeat_purchase() -> None:
    with pytest.raises(ValueError, match=r"first: row 0, frequency=0.0.*repeat customers only"):
        fit_gamma_gamma([0, 2], [10.0, 10.0])


@st.composite
def _customers(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(20, 60))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    age = rng.uniform(1.0, 52.0, n)
    x = rng.poisson(rng.gamma(0.5, 1.0, n) * age / 8)
    t_x = np.where(x > 0, np.round(rng.uniform(0, 1, n) * age, 2), 0.0)
    return pd.DataFrame({"x": x, "t_x": t_x, "age": age})


@settings(max_examples=10, deadline=None)
@given(_customers())
def test_fitted_parameters_are_positive_and_finite(customers) -> None:
    fitted = fit_bgnbd(customers["x"], customers["t_x"], customers["age"])
    values = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    assert (values > 0).all() and np.isfinite(values).all()


@settings(max_examples=50, deadline=None)
@given(st.floats(1.0, 50.0), st.integers(0, 30))
def test_expected_purchases_grow_with_frequency_for_a_customer_who_just_bought(age, x) -> None:
    t_x = age if x > 0 else 0.0
    low, high = expected_purchases(PAPER, 26.0, [x, x + 1], [t_x, age], [age, age])
    assert high >= low * (1 - 1e-12)


def test_more_purchases_long_ago_mean_fewer_expected_the_papers_frequency_paradox() -> None:
    # Not monotone at every recency: a frequent buyer silent since week 10 has likely
    # dropped out (BTYD's bgnbd.PAlive example); the property above holds at recency = T.
    silent = expected_purchases(PAPER, 26.0, [1, 10], [10.0, 10.0], [39.0, 39.0])
    assert silent[1] < silent[0]


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 500.0))
def test_a_customer_without_a_repeat_purchase_is_alive(age) -> None:
    assert probability_alive(PAPER, [0], [0.0], [age])[0] == 1.0


_UNITS = st.sampled_from([7.0, 1 / 7, 24.0, 1 / 52])


@settings(max_examples=30, deadline=None)
@given(_customers(), _UNITS)
def test_a_change_of_time_unit_scales_alpha_and_changes_no_prediction(customers, unit) -> None:
    x, t_x, age = customers["x"], customers["t_x"], customers["age"]
    scaled = replace(PAPER, alpha=PAPER.alpha * unit)
    weeks_ll = bgnbd_log_likelihood(_log(PAPER), x.to_numpy(), t_x.to_numpy(), age.to_numpy())
    unit_ll = bgnbd_log_likelihood(
        _log(scaled), x.to_numpy(), (t_x * unit).to_numpy(), (age * unit).to_numpy()
    )
    # Densities of times scale by the Jacobian: x purchase times, each 1 / unit.
    np.testing.assert_allclose(unit_ll, weeks_ll - x * np.log(unit), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(
        expected_purchases(scaled, 13.0 * unit, x, t_x * unit, age * unit),
        expected_purchases(PAPER, 13.0, x, t_x, age),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        probability_alive(scaled, x, t_x * unit, age * unit), probability_alive(PAPER, x, t_x, age)
    )


def test_the_cdnow_fit_in_days_is_the_fit_in_weeks_with_alpha_times_7(cdnow) -> None:
    weeks = fit_bgnbd(cdnow["frequency"], cdnow["recency_weeks"], cdnow["T_weeks"])
    days = fit_bgnbd(cdnow["frequency"], cdnow["recency_weeks"] * 7, cdnow["T_weeks"] * 7)
    for name in ["r", "a", "b"]:
        assert getattr(days, name) == pytest.approx(getattr(weeks, name), rel=1e-4)
    assert days.alpha == pytest.approx(weeks.alpha * 7, rel=1e-4)
    total_repeat = cdnow["frequency"].sum()
    assert days.log_likelihood == pytest.approx(weeks.log_likelihood - total_repeat * np.log(7))


def test_the_likelihood_gradient_matches_finite_differences(cdnow) -> None:
    x, t_x, age = (
        cdnow[c].to_numpy(dtype=float) for c in ["frequency", "recency_weeks", "T_weeks"]
    )
    counts = np.ones(len(x))
    at = _log(PAPER) + np.array([0.1, -0.2, 0.3, -0.1])
    _, gradient = _bgnbd_total_and_gradient(at, x, t_x, age, counts)
    step = 1e-6
    for i in range(4):
        shift = np.eye(4)[i] * step
        up = bgnbd_log_likelihood(at + shift, x, t_x, age).sum()
        down = bgnbd_log_likelihood(at - shift, x, t_x, age).sum()
        assert gradient[i] == pytest.approx((up - down) / (2 * step), rel=1e-5)


def _log(params: BgNbdParams) -> np.ndarray:
    return np.log([params.r, params.alpha, params.a, params.b])
