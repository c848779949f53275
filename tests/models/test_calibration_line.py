"""The calibration line a bootstrap refits for every draw (`WeightedCalibrationLine`): the
maximum likelihood intercept and slope, a row counted k times as k rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import expit, logit

from closeprob.models.metrics import (
    WeightedCalibrationLine,
    calibration_intercept_slope,
    fit_calibration_line,
)


def outcomes(seed: int, n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores p and outcomes drawn from logit P(won) = a + b · logit p."""
    rng = np.random.default_rng(seed)
    score = rng.normal(-1.0, 1.5, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(a + b * score)))).astype(float)
    return y, 1.0 / (1.0 + np.exp(-score))


def tight_slope(y: np.ndarray, p: np.ndarray) -> float:
    """The slope of y ~ a + b · logit p by a general optimiser run to a tight tolerance (a
    reference independent of ours; scikit-learn's lbfgs stops up to ~0.003 short)."""
    score = logit(np.clip(p, 1e-6, 1 - 1e-6))

    def loss(ab: np.ndarray) -> float:
        eta = ab[0] + ab[1] * score
        return float((np.logaddexp(0.0, eta) - y * eta).sum())

    def gradient(ab: np.ndarray) -> np.ndarray:
        residual = expit(ab[0] + ab[1] * score) - y
        return np.array([residual.sum(), (residual * score).sum()])

    fitted = minimize(loss, np.array([0.0, 1.0]), jac=gradient, method="BFGS", tol=1e-12)
    return float(fitted.x[1])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(200, 3000),
    a=st.floats(-1.0, 1.0),
    b=st.floats(0.3, 2.0),
)
def test_the_exact_line_is_the_maximum_likelihood_fit(
    seed: int, n: int, a: float, b: float
) -> None:
    y, p = outcomes(seed, n, a, b)
    ours = WeightedCalibrationLine.exact(y, p)
    reference = calibration_intercept_slope(y, p)  # brentq for the intercept
    assert ours["calibration_intercept"] == pytest.approx(
        reference["calibration_intercept"], abs=1e-8
    )
    assert ours["calibration_slope"] == pytest.approx(tight_slope(y, p), abs=1e-5)
    # scikit-learn's solver lands near it, not on it
    assert ours["calibration_slope"] == pytest.approx(reference["calibration_slope"], abs=0.05)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(50, 400))
def test_a_row_counted_k_times_is_k_rows(seed: int, n: int) -> None:
    y, p = outcomes(seed, n, 0.2, 0.8)
    weights = np.random.default_rng(seed + 1).integers(0, 4, n)
    repeated = np.repeat(np.arange(n), weights)
    weighted = WeightedCalibrationLine(y, p).fit(weights.astype(float))
    expanded = WeightedCalibrationLine.exact(y[repeated], p[repeated])
    for name, value in expanded.items():
        assert weighted[name] == pytest.approx(value, abs=1e-8, nan_ok=True)


def test_grouped_scores_move_the_line_by_far_less_than_its_interval() -> None:
    y, p = outcomes(7, 200_000, 0.3, 0.8)
    exact = WeightedCalibrationLine.exact(y, p)
    grouped = WeightedCalibrationLine(y, p, max_groups=512).fit(np.ones(len(y)))
    assert grouped["calibration_intercept"] == pytest.approx(
        exact["calibration_intercept"], abs=1e-3
    )
    assert grouped["calibration_slope"] == pytest.approx(exact["calibration_slope"], abs=1e-3)
    assert exact["calibration_slope"] == pytest.approx(0.8, abs=0.03)


def test_one_class_or_separated_classes_give_no_slope() -> None:
    nan = fit_calibration_line(np.array([-1.0, 1.0]), np.array([3.0, 3.0]), np.array([0.0, 0.0]))
    assert np.isnan(nan["calibration_slope"]) and np.isnan(nan["calibration_intercept"])
    separated = fit_calibration_line(
        np.array([-2.0, -1.0, 1.0, 2.0]), np.array([5.0, 5.0, 5.0, 5.0]), np.array([0, 0, 5, 5.0])
    )
    assert np.isnan(separated["calibration_slope"])
    assert np.isfinite(separated["calibration_intercept"])
