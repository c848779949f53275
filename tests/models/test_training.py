"""Fitting and calibration as one unit: capacity that follows the rows, a public calibrator on
the raw score, and `proba_from_raw` equal to `predict_proba`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import CloseModel
from closeprob.models.training import (
    calibrate_booster,
    capacity_for_rows,
    fit_calibrator,
    fit_early_stopped,
    fit_fixed_trees,
    split_count,
)

PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 100,
    "n_estimators": 200,
    "early_stopping_round": 150,
    "num_threads": 1,
}


def _rows(n: int, seed: int, signal: float = 2.0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-signal * x["a"]))).astype(int))
    return x, y


def _model(method: str) -> tuple[CloseModel, pd.DataFrame]:
    x, y = _rows(600, 0)
    booster = fit_fixed_trees(x[:400], y[:400], PARAMS, 30, seed=1)
    model = calibrate_booster(booster, x[400:], y[400:], method, FeatureSpec(()), {})
    return model, x


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_proba_from_raw_equals_predict_proba(method: str) -> None:
    model, x = _model(method)
    raw = model.contributions(x).sum(axis=1)
    np.testing.assert_allclose(model.proba_from_raw(raw), model.predict_proba(x), atol=1e-12)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_the_calibrator_keeps_the_numbers_of_scikit_learns_estimator_and_predicts_as_it_does(
    method: str,
) -> None:
    rng = np.random.default_rng(5)
    raw = rng.normal(scale=2.0, size=3000)
    labels = (rng.random(len(raw)) < 1 / (1 + np.exp(-raw))).astype(int)
    if method == "sigmoid":
        fitted = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
        fitted.fit(raw.reshape(-1, 1), labels)
        expected = fitted.predict_proba(raw.reshape(-1, 1))[:, 1]
    else:
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, labels)
        expected = fitted.predict(raw)
    new = np.concatenate([raw, [-50.0, 50.0]])  # beyond the fitted range too
    expected = np.concatenate([expected, fitted_ends(fitted, method)])
    calibrator = fit_calibrator(raw, labels, method)
    np.testing.assert_allclose(calibrator.predict(new), expected, rtol=0, atol=1e-12)


def fitted_ends(fitted: LogisticRegression | IsotonicRegression, method: str) -> np.ndarray:
    ends = np.array([-50.0, 50.0])
    if method == "sigmoid":
        return np.asarray(fitted.predict_proba(ends.reshape(-1, 1))[:, 1])
    return np.asarray(fitted.predict(ends))


def test_sigmoid_calibration_on_the_raw_score_is_platt_scaling() -> None:
    """A raw score that is already the true log-odds gets slope 1 and intercept 0."""
    rng = np.random.default_rng(3)
    raw = rng.normal(scale=2.0, size=20_000)
    labels = (rng.random(len(raw)) < 1 / (1 + np.exp(-raw))).astype(int)
    fitted = fit_calibrator(raw, labels, "sigmoid")
    assert fitted.slope == pytest.approx(1.0, abs=0.05)
    assert fitted.intercept == pytest.approx(0.0, abs=0.05)


def test_platt_never_reverses_the_ranking_a_backwards_score_gets_the_base_rate() -> None:
    """A score that ranks backwards on the calibration rows (shuffled labels, noise) would get a
    negative unconstrained slope; constrained, the map is flat at the rows' won rate."""
    rng = np.random.default_rng(4)
    raw = rng.normal(scale=2.0, size=4_000)
    labels = (rng.random(len(raw)) < 1 / (1 + np.exp(raw))).astype(int)  # backwards
    calibrator = fit_calibrator(raw, labels, "sigmoid")
    assert calibrator.slope == 0.0
    p = calibrator.predict(np.array([-5.0, 0.0, 5.0]))
    np.testing.assert_allclose(p, labels.mean(), atol=1e-3)


def test_an_unknown_calibration_method_is_refused() -> None:
    with pytest.raises(ValueError, match="'beta' is not 'sigmoid' or 'isotonic'"):
        fit_calibrator(np.zeros(4), np.array([0, 1, 0, 1]), "beta")


def test_capacity_at_200_rows_lets_leaves_of_10_rows_split() -> None:
    scaled = capacity_for_rows(PARAMS, 200)
    assert scaled["min_child_samples"] == 10
    assert scaled["num_leaves"] == 7
    assert scaled["early_stopping_round"] == 20
    assert scaled["learning_rate"] == PARAMS["learning_rate"]


def test_capacity_on_many_rows_keeps_the_configured_values() -> None:
    assert capacity_for_rows(PARAMS, 1_000_000) == PARAMS


@given(rows=st.integers(1, 10**7), leaves=st.integers(2, 255), child=st.integers(1, 10**4))
def test_scaled_capacity_never_exceeds_the_configured_and_stays_valid(
    rows: int, leaves: int, child: int
) -> None:
    scaled = capacity_for_rows(PARAMS | {"num_leaves": leaves, "min_child_samples": child}, rows)
    assert 2 <= scaled["num_leaves"] <= leaves
    assert scaled["min_child_samples"] <= max(child, 2)
    assert 1 <= scaled["early_stopping_round"] <= PARAMS["early_stopping_round"]


def test_a_model_on_200_rows_of_40_won_deals_splits() -> None:
    """With the configured min_child_samples of 100, 200 rows would give a constant model."""
    x, y = _rows(260, 5, signal=1.0)
    booster = fit_early_stopped(x[:200], y[:200], x[200:], y[200:], PARAMS, seed=1)
    assert split_count(booster) > 0


def test_a_booster_on_features_without_variation_makes_no_split() -> None:
    x = pd.DataFrame({"a": np.ones(300)})
    y = pd.Series(np.arange(300) % 2)
    assert split_count(fit_fixed_trees(x, y, PARAMS, 5, seed=1)) == 0
