"""The deployed model's rows, the deal bootstrap, calibration slope and intercept, and the
rules that refuse or hold back a model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.models.metrics import calibration_intercept_slope, deal_bootstrap
from closeprob.models.promotion import implausible_reason, untrusted_reason
from closeprob.models.split import deal_buckets, deployment_split


def _snapshots(n_deals: int, n_dates: int, seed: int) -> pd.DataFrame:
    """Each deal open for a random run of consecutive weekly dates."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_dates, freq="7D", tz="UTC")
    rows = []
    for deal in range(n_deals):
        first = int(rng.integers(0, n_dates))
        last = int(rng.integers(first, n_dates))
        rows += [{"deal_id": f"D{deal}", "as_of": dates[k]} for k in range(first, last + 1)]
    return pd.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(
    n_deals=st.integers(1, 60),
    n_dates=st.integers(1, 30),
    seed=st.integers(0, 1000),
    window=st.floats(0.05, 0.9),
    holdout=st.floats(0.01, 0.5),
)
def test_comparison_deals_never_have_a_row_in_the_fit_and_every_other_recent_row_calibrates(
    n_deals: int, n_dates: int, seed: int, window: float, holdout: float
) -> None:
    """Calibration rows are the window's rows of every fitted deal (scored out of fold by
    cross-fitting, so they are fit rows too); comparison deals are in no fit."""
    snapshots = _snapshots(n_deals, n_dates, seed)
    split = deployment_split(snapshots, window, holdout)
    fit_deals = set(snapshots.loc[split.fit, "deal_id"])
    assert not fit_deals & set(snapshots.loc[split.comparison, "deal_id"])
    in_window = snapshots["as_of"].isin(split.window)
    assert (split.calibration == (in_window & split.fit)).all()
    assert not (split.calibration & split.comparison).any()
    assert snapshots.loc[split.calibration | split.comparison, "as_of"].isin(split.window).all()
    assert split.window[-1] == snapshots["as_of"].max()


def test_the_fit_reaches_the_last_labelled_date() -> None:
    snapshots = _snapshots(400, 20, 0)
    split = deployment_split(snapshots, 0.15, 0.25)
    assert snapshots.loc[split.fit, "as_of"].max() == snapshots["as_of"].max()


def test_a_deal_falls_in_the_same_bucket_in_every_run_and_frame() -> None:
    ids = pd.Series(["D1", "D2", "deal-17"])
    assert (
        deal_buckets(ids).tolist() == deal_buckets(ids[::-1].reset_index(drop=True))[::-1].tolist()
    )
    assert deal_buckets(pd.Series(["D2"]))[0] == deal_buckets(ids)[1]


def test_the_deal_bootstrap_draws_all_rows_of_a_deal_together() -> None:
    deal_ids = np.array(["A", "A", "B", "B", "C", "C"])

    def rows_per_deal(rows: np.ndarray) -> dict[str, float]:
        counts = pd.Series(deal_ids[rows]).value_counts()
        return {"uneven": float((counts % 2 != 0).any())}

    assert deal_bootstrap(deal_ids, rows_per_deal, resamples=50) == {"uneven": (0.0, 0.0)}


def test_the_deal_bootstrap_interval_of_a_mean_covers_it_and_narrows_with_deals() -> None:
    rng = np.random.default_rng(0)

    def width(n: int) -> float:
        values = rng.normal(size=n)
        low, high = deal_bootstrap(
            np.arange(n), lambda rows: {"mean": float(values[rows].mean())}, resamples=200
        )["mean"]
        assert low < values.mean() < high
        return high - low

    assert width(4000) < width(100) / 3


def test_calibration_of_true_probabilities_has_slope_one_and_intercept_zero() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.98, 40_000)
    y = (rng.random(len(p)) < p).astype(int)
    fit = calibration_intercept_slope(y, p)
    assert fit["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert fit["calibration_intercept"] == pytest.approx(0.0, abs=0.05)


def test_too_extreme_probabilities_have_a_slope_below_one_and_low_ones_a_positive_intercept() -> (
    None
):
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, 40_000)
    y = (rng.random(len(p)) < p).astype(int)
    logit = np.log(p / (1 - p))
    assert calibration_intercept_slope(y, 1 / (1 + np.exp(-2 * logit)))["calibration_slope"] < 0.6
    assert calibration_intercept_slope(y, p / 2)["calibration_intercept"] > 0.3


def test_calibration_of_one_class_is_undefined() -> None:
    fit = calibration_intercept_slope(np.zeros(5), np.full(5, 0.2))
    assert np.isnan(fit["calibration_slope"]) and np.isnan(fit["calibration_intercept"])


def test_a_test_auc_at_the_oracles_is_implausible() -> None:
    reason = implausible_reason({"test_roc_auc": 0.95, "test_oracle_roc_auc": 0.93}, 0.98)
    assert reason is not None and "oracle's 0.9300" in reason


def test_a_test_auc_above_the_limit_is_implausible_without_an_oracle() -> None:
    reason = implausible_reason({"test_roc_auc": 0.991}, 0.98)
    assert reason is not None and "max_plausible_auc 0.98" in reason


def test_an_ordinary_test_auc_is_plausible() -> None:
    assert implausible_reason({"test_roc_auc": 0.89, "test_oracle_roc_auc": 0.92}, 0.98) is None


def test_a_constant_model_is_untrusted() -> None:
    assert "no split" in (untrusted_reason(0, 0.7, 0.8) or "")


def test_a_model_whose_auc_interval_reaches_one_half_is_untrusted() -> None:
    assert "0.4900" in (untrusted_reason(12, 0.49, 0.56) or "")
    assert untrusted_reason(12, 0.51, 0.56) is None


def test_on_small_data_the_window_widens_until_calibration_has_enough_rows() -> None:
    snapshots = _snapshots(120, 40, 1)
    narrow = deployment_split(snapshots, 0.05, 0.25, min_rows=1)
    wide = deployment_split(snapshots, 0.05, 0.25, min_rows=150)
    assert len(wide.window) > len(narrow.window)
    assert wide.calibration.sum() >= 150


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=60),
    seed=st.integers(min_value=0, max_value=10_000),
    capacity=st.integers(min_value=1, max_value=8),
)
def test_weighted_statistics_equal_the_statistics_of_the_rows_repeated(
    n: int, seed: int, capacity: int
) -> None:
    """A row of weight k counts as k copies: ROC-AUC (ties included), ECE and value captured
    from one sort equal scikit-learn's and `value_captured` on the expanded rows."""
    from sklearn.metrics import roc_auc_score

    from closeprob.models.metrics import (
        WeightedCapture,
        WeightedRanking,
        expected_calibration_error,
        value_captured,
        weighted_ece,
    )

    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(float)
    p = np.round(rng.random(n), 1)  # coarse: ties across rows
    score = rng.random(n)  # queue scores: continuous (ties broken by row order either way)
    won = y * rng.uniform(1.0, 100.0, n)
    groups = rng.integers(0, 3, n)
    weights = rng.integers(0, 4, n).astype(float)
    rows = np.repeat(np.arange(n), weights.astype(int))
    if len(rows) == 0:
        return
    if 0 < y[rows].sum() < len(rows):
        expected = roc_auc_score(y[rows], p[rows])
        assert WeightedRanking(y, p).roc_auc(weights) == pytest.approx(expected, abs=1e-12)
    assert weighted_ece(y, p, weights) == pytest.approx(
        expected_calibration_error(y[rows], p[rows]), abs=1e-12
    )
    captured = value_captured(won[rows], score[rows], groups[rows], capacity)
    weighted = WeightedCapture(won, score, groups, capacity).value_captured(weights)
    assert weighted == pytest.approx(captured, abs=1e-12, nan_ok=True)


def test_the_weighted_bootstrap_draws_the_same_deals_as_the_row_bootstrap() -> None:
    from closeprob.models.metrics import deal_bootstrap_weights

    rng = np.random.default_rng(0)
    deal_ids = rng.integers(0, 40, 300).astype(str)
    values = rng.normal(size=300)
    by_rows = deal_bootstrap(deal_ids, lambda rows: {"mean": values[rows].mean()}, 100, seed=3)
    by_weights = deal_bootstrap_weights(
        deal_ids, lambda w: {"mean": float((values * w).sum() / w.sum())}, 100, seed=3
    )
    assert by_weights["mean"] == pytest.approx(by_rows["mean"], abs=1e-12)
