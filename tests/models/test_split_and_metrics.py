"""Time splits never let a fitting label window reach the test period; metrics on hand examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.metrics import classification_metrics, expected_calibration_error
from models.split import SplitError, split_dates


@settings(max_examples=50, deadline=None)
@given(
    n_dates=st.integers(min_value=40, max_value=150),
    every=st.integers(1, 14),
    horizon=st.integers(7, 120),
)
def test_slices_are_ordered_and_fitting_labels_end_before_test(
    n_dates: int, every: int, horizon: int
) -> None:
    dates = pd.date_range("2022-01-03", periods=n_dates, freq=f"{every}D", tz="UTC")
    try:
        split = split_dates(
            dates, horizon, test_share=0.2, calibration_share=0.15, validation_share=0.15
        )
    except SplitError:
        return
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
