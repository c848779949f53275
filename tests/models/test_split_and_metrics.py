"""Time splits never let a fitting label window reach the test period; metrics on hand examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from closeprob.models.metrics import (
    classification_metrics,
    expected_calibration_error,
    value_captured,
    value_captured_curve,
)
from closeprob.models.split import SplitError, split_dates


@settings(max_examples=50, deadline=None)
@given(
    n_dates=st.integers(min_value=40, max_value=150),
    every=st.integers(1, 14),
    horizon=st.integers(7, 120),
)
def test_slices_are_ordered_and_fitting_labels_end_before_test(
    n_dates: int, every: int, horizon: int
) -> None:
    """Every history is either refused (only when it is too short for the embargoes) or split
    with each fitting label window ending before the next slice and the test slice."""
    dates = pd.date_range("2022-01-03", periods=n_dates, freq=f"{every}D", tz="UTC")
    try:
        split = split_dates(
            dates, horizon, test_share=0.2, calibration_share=0.15, validation_share=0.15
        )
    except SplitError as exc:
        # Refusing is right only when the embargoes take a large part of the history: one that
        # spans more than four horizons is always split.
        span_days = (dates[-1] - dates[0]).days
        assert 4 * horizon > span_days, (span_days, horizon, str(exc))
        assert "horizon" in str(exc)
        return
    event(f"split ({n_dates} dates)")
    for part in (split.train, split.validation, split.calibration, split.test):
        assert len(part) >= 1
    window = pd.Timedelta(days=horizon)
    assert split.train[-1] < split.validation[0] <= split.validation[-1] < split.calibration[0]
    assert split.calibration[-1] + window < split.test[0]
    assert split.train[-1] + window < split.calibration[0]


def test_too_short_a_history_is_refused_with_advice() -> None:
    dates = pd.date_range("2024-01-01", periods=10, freq="7D", tz="UTC")
    with pytest.raises(SplitError, match="horizon"):
        split_dates(dates, 90, test_share=0.2, calibration_share=0.15, validation_share=0.15)


def test_ece_is_the_weighted_gap_between_predicted_and_observed_per_bin() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.05, 0.05, 0.95, 0.55])  # bins 0, 0, 9, 5
    # bin 0: |0 - 0.1|, bin 9: |1 - 0.95|, bin 5: |1 - 0.55|
    assert expected_calibration_error(y, p) == pytest.approx((0.1 + 0.05 + 0.45) / 4)


def test_perfectly_calibrated_constant_scores_have_zero_ece() -> None:
    y = np.array([1, 0, 0, 0] * 25)
    assert expected_calibration_error(y, np.full(100, 0.25)) == pytest.approx(0.0)


def test_metrics_report_the_five_test_figures() -> None:
    metrics = classification_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.3, 0.6]))
    assert set(metrics) == {"roc_auc", "pr_auc", "log_loss", "brier", "ece"}
    assert metrics["roc_auc"] == 1.0


def _value_captured_by_sorting(
    won: np.ndarray, score: np.ndarray, groups: np.ndarray, capacity: int
) -> float:
    """The definition, spelled out with pandas: top `capacity` per group by score, over the
    top `capacity` per group by won value."""
    frame = pd.DataFrame({"won": won, "score": score, "group": groups})
    by_score = frame.sort_values(["group", "score"], ascending=[True, False], kind="stable")
    captured = by_score.groupby("group", sort=False).head(capacity)["won"].sum()
    by_value = frame.sort_values(["group", "won"], ascending=[True, False], kind="stable")
    best = by_value.groupby("group", sort=False).head(capacity)["won"].sum()
    return float(captured / best) if best > 0 else float("nan")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 1.0, 5.0]),
            st.one_of(st.just(float("nan")), st.sampled_from([0.1, 0.5, 0.5, 0.9])),
            st.integers(min_value=0, max_value=3),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_value_captured_curve_equals_sorting_each_group(
    rows: list[tuple[float, float, int]],
) -> None:
    """Ties keep row order and NaN scores go last, at every capacity."""
    won, score, groups = (np.array(column) for column in zip(*rows, strict=True))
    capacities = np.array([1, 2, 3, 7, 100])
    curve = value_captured_curve(won, score, groups, capacities)
    for k, got in zip(capacities, curve, strict=True):
        expected = _value_captured_by_sorting(won, score, groups, int(k))
        assert got == pytest.approx(expected, nan_ok=True)
        assert value_captured(won, score, groups, int(k)) == pytest.approx(expected, nan_ok=True)


def test_the_ece_noise_floor_is_what_calibrated_outcomes_score_by_chance() -> None:
    from closeprob.models.metrics import ece_noise_floor, expected_calibration_error

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.6, 400)
    floor = ece_noise_floor(p, seed=1)
    # Outcomes truly drawn from p (other seeds) score about the floor, not zero.
    observed = [expected_calibration_error(rng.random(400) < p, p) for _ in range(200)]
    assert abs(np.mean(observed) - floor) < 0.005 and floor > 0.02
    many = rng.uniform(0.05, 0.6, 40_000)
    assert ece_noise_floor(many, draws=20) < floor / 5  # 100× the rows: ~1/10 the floor
    assert ece_noise_floor(p, seed=1) == floor  # seeded
    assert np.isnan(ece_noise_floor(np.array([])))
