"""Yardsticks: equal-mass ECE, the Brier decomposition, weighted intercept and slope, paired
differences, and the base-rate check."""

from __future__ import annotations

import numpy as np
import pytest

from closeprob.models.base_rate import recent_won_rate
from closeprob.models.yardsticks import (
    base_rate_gap,
    brier_decomposition,
    equal_mass_ece,
    intercept_and_slope,
    paired_differences,
    pooled_chance_spread,
    yardsticks_with_intervals,
)
from tests.conftest import make_deals, utc


def _draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.9, n)
    return (rng.random(n) < p).astype(float), p


def test_equal_mass_ece_equals_ten_equal_chunks_of_the_sorted_rows() -> None:
    y, p = _draw(1_000, 0)
    order = np.argsort(p)
    naive = sum(abs(y[c].sum() - p[c].sum()) for c in np.array_split(order, 10)) / len(p)
    assert equal_mass_ece(y, p) == pytest.approx(naive, abs=1e-12)


def test_brier_is_reliability_minus_resolution_plus_uncertainty_when_p_is_constant_per_bin() -> (
    None
):
    rng = np.random.default_rng(1)
    p = np.repeat(np.linspace(0.05, 0.95, 10), 100)
    y = (rng.random(len(p)) < p).astype(float)
    parts = brier_decomposition(y, p)
    assert parts["brier"] == pytest.approx(
        parts["reliability"] - parts["resolution"] + parts["uncertainty"], abs=1e-12
    )


def test_a_constant_at_the_won_rate_has_zero_ece_and_zero_resolution() -> None:
    """Why ECE alone is no goal: the forecaster that tells no deal apart scores ECE 0."""
    y, _ = _draw(2_000, 2)
    constant = np.full(len(y), y.mean())
    assert equal_mass_ece(y, constant) == pytest.approx(0.0, abs=1e-12)
    assert brier_decomposition(y, constant)["resolution"] == pytest.approx(0.0, abs=1e-12)


def test_weighted_intercept_and_slope_equal_those_of_the_rows_repeated() -> None:
    y, p = _draw(300, 3)
    weights = np.random.default_rng(4).integers(0, 4, len(y)).astype(float)
    rows = np.repeat(np.arange(len(y)), weights.astype(int))
    weighted = intercept_and_slope(y, p, weights)
    repeated = intercept_and_slope(y[rows], p[rows])
    assert weighted["intercept"] == pytest.approx(repeated["intercept"], abs=1e-6)
    assert weighted["slope"] == pytest.approx(repeated["slope"], abs=1e-3)


def test_true_probabilities_have_intervals_around_intercept_zero_and_slope_one() -> None:
    y, p = _draw(4_000, 5)
    deals = np.arange(len(y)) // 4  # four rows per deal
    figures = yardsticks_with_intervals(y, p, deals, resamples=60, truth=p)
    assert figures["intercept_lo"] < 0 < figures["intercept_hi"]
    assert figures["slope_lo"] < 1 < figures["slope_hi"]
    assert figures["truth_mae"] == 0.0


def test_a_model_paired_with_itself_differs_by_exactly_zero() -> None:
    y, p = _draw(500, 6)
    figures = paired_differences(y, p, p, np.arange(len(y)), resamples=30)
    assert figures["roc_auc_diff"] == 0.0
    assert (figures["roc_auc_diff_lo"], figures["roc_auc_diff_hi"]) == (0.0, 0.0)


def test_the_recent_won_rate_counts_deals_open_at_the_last_dates_whose_horizon_ended() -> None:
    """as_of 2024-04-01, 30-day horizon: the last four weekly dates with a closed window are
    02-09 … 03-01. D1 is open on two of them and won within 30 days of each; D2 open on
    three, lost; D4 open on all four, won only after as_of; D3 created after them."""
    deals = make_deals(
        [
            {
                "deal_id": "D1",
                "created_at": "2024-02-01",
                "closed_at": "2024-02-20",
                "outcome": "won",
            },
            {
                "deal_id": "D2",
                "created_at": "2024-02-01",
                "closed_at": "2024-02-25",
                "outcome": "lost",
            },
            {"deal_id": "D3", "created_at": "2024-03-20"},
            {
                "deal_id": "D4",
                "created_at": "2024-01-01",
                "closed_at": "2024-05-01",
                "outcome": "won",
            },
        ]
    )
    rate, rows = recent_won_rate(deals, utc("2024-04-01"), horizon_days=30, every_days=7)
    assert (rate, rows) == (pytest.approx(2 / 9), 9)
    assert base_rate_gap(np.array([0.5, 0.7]), 0.4) == pytest.approx(0.2)
    assert np.isnan(recent_won_rate(deals, utc("2024-01-10"), 30, 7)[0])  # nothing labelled


def test_equal_mass_bins_keep_tied_probabilities_together() -> None:
    p = np.array([0.1] * 50 + [0.2] * 50)
    y = np.r_[np.zeros(45), np.ones(5), np.zeros(40), np.ones(10)]
    assert equal_mass_ece(y, p, bins=10) == pytest.approx(0.0, abs=1e-12)


def test_a_deals_weeks_as_one_outcome_raise_the_chance_floor_and_widen_the_slope_range() -> None:
    rng = np.random.default_rng(0)
    p_deal = rng.uniform(0.05, 0.6, 150)
    p = np.repeat(p_deal, 4)  # 150 deals, each queued in 4 weeks
    by_deal = pooled_chance_spread(p, np.repeat(np.arange(150), 4), draws=30, seed=0)
    by_row = pooled_chance_spread(p, np.arange(len(p)), draws=30, seed=0)
    assert by_deal["ece_floor_by_deal"] > 1.3 * by_row["ece_floor_by_deal"]
    assert by_deal["chance_slope_lo"] < 1.0 < by_deal["chance_slope_hi"]
    width = by_deal["chance_slope_hi"] - by_deal["chance_slope_lo"]
    assert width > 1.4 * (by_row["chance_slope_hi"] - by_row["chance_slope_lo"])
