"""Platt's map with the recent window's intercept and the slope of every labelled row; the
recent window's own slope and interval beside it, logged only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from closeprob.models.metrics import deal_bootstrap_weights
from closeprob.models.recent_calibration import (
    calibration_record,
    choose_slope,
    fit_recent_calibrator,
    intercept_for_slope,
    slope_interval,
)
from closeprob.models.training import fit_calibrator


def _rows(n: int, slope: float, intercept: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=n)
    return raw, (rng.random(n) < expit(intercept + slope * raw)).astype(int)


def _pooled(
    old: tuple[np.ndarray, np.ndarray], recent: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    raw = np.concatenate([old[0], recent[0]])
    labels = np.concatenate([old[1], recent[1]])
    is_recent = np.arange(len(raw)) >= len(old[0])
    deal_ids = np.array([f"D{i // 2}" for i in range(len(raw))])  # two rows per deal
    return raw, labels, is_recent, deal_ids


def test_a_recent_window_whose_interval_holds_the_pooled_slope_gets_the_pooled_slope() -> None:
    raw, labels, recent, deals = _pooled(_rows(6000, 1.0, -1.0, 0), _rows(400, 1.0, 0.0, 1))
    choice = choose_slope(raw, labels, recent, deals)
    assert choice.recent_lo <= choice.pooled <= choice.recent_hi and not choice.recent_differs
    assert choice.used == choice.pooled != choice.recent


def test_a_recent_slope_beyond_its_noise_is_flagged_but_the_pooled_slope_is_used() -> None:
    """The backtests (docs/model-quality.md, round 6) found the switch to the recent slope no
    better than the pooled one: the difference is a logged drift signal, not a new map."""
    raw, labels, recent, deals = _pooled(_rows(6000, 1.0, -1.0, 0), _rows(3000, 3.0, 0.0, 1))
    choice = choose_slope(raw, labels, recent, deals)
    assert choice.recent_differs and choice.recent > 2.0
    assert choice.used == choice.pooled == pytest.approx(_platt_slope(raw, labels))
    assert choice.source == "pooled"


def _platt_slope(raw: np.ndarray, labels: np.ndarray) -> float:
    fitted = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    return float(fitted.fit(raw.reshape(-1, 1), labels).coef_[0, 0])


def test_the_intercept_tracks_the_recent_base_rate_not_the_pooled_one() -> None:
    raw, labels, recent, deals = _pooled(_rows(6000, 1.0, -2.0, 0), _rows(400, 1.0, 0.5, 1))
    calibrator, choice = fit_recent_calibrator(raw, labels, recent, deals, "sigmoid")
    assert choice is not None and calibrator.slope == choice.used
    assert calibrator.predict(raw[recent]).mean() == pytest.approx(labels[recent].mean())


@settings(max_examples=30, deadline=None)
@given(
    slope=st.floats(0.0, 3.0),
    raw=st.lists(st.floats(-5.0, 5.0), min_size=2, max_size=30),
    data=st.data(),
)
def test_the_fixed_slope_intercept_matches_the_won_rate(
    slope: float, raw: list[float], data: st.DataObject
) -> None:
    labels = np.array(data.draw(st.lists(st.integers(0, 1), min_size=len(raw), max_size=len(raw))))
    if labels.min() == labels.max():
        labels[0] = 1 - labels[0]
    scores = np.asarray(raw)
    intercept = intercept_for_slope(scores, labels, slope)
    assert expit(intercept + slope * scores).mean() == pytest.approx(labels.mean(), abs=1e-6)


def test_isotonic_and_pool_slope_off_fit_the_recent_rows_alone() -> None:
    raw, labels, recent, deals = _pooled(_rows(2000, 1.0, -1.0, 0), _rows(400, 2.0, 0.0, 1))
    for method, pool in (("isotonic", True), ("sigmoid", False)):
        calibrator, choice = fit_recent_calibrator(raw, labels, recent, deals, method, pool)
        assert choice is None
        assert calibrator == fit_calibrator(raw[recent], labels[recent], method)


def test_the_run_record_says_which_slope_was_used_with_both_slopes_and_the_interval() -> None:
    for recent_slope, differs in ((1.0, 0.0), (3.0, 1.0)):
        rows = _pooled(_rows(6000, 1.0, -1.0, 0), _rows(3000, recent_slope, 0.0, 1))
        calibrator, choice = fit_recent_calibrator(*rows, "sigmoid")
        assert choice is not None
        params, metrics = calibration_record(calibrator, choice, "deployed")
        assert params == {"deployed.calibration_slope_source": "pooled"}
        assert metrics["deployed_calibration_slope_recent_differs"] == differs
        assert metrics["deployed_calibration_slope"] == calibrator.slope == choice.used
        assert metrics["deployed_calibration_intercept"] == calibrator.intercept
        assert metrics["deployed_calibration_slope_pooled"] == choice.pooled
        assert metrics["deployed_calibration_slope_recent"] == choice.recent
        low, high = metrics["deployed_calibration_slope_recent_lo"], choice.recent_hi
        assert low < choice.recent < high == metrics["deployed_calibration_slope_recent_hi"]
        assert (low <= choice.pooled <= high) == (differs == 0.0)


def test_the_run_record_of_a_recent_only_or_isotonic_map_names_it_and_has_no_choice() -> None:
    raw, labels, recent, deals = _pooled(_rows(2000, 1.0, -1.0, 0), _rows(400, 2.0, 0.0, 1))
    for method, pool, source in (("isotonic", True, "isotonic"), ("sigmoid", False, "recent_only")):
        calibrator, choice = fit_recent_calibrator(raw, labels, recent, deals, method, pool)
        params, metrics = calibration_record(calibrator, choice, "evaluated")
        assert params == {"evaluated.calibration_slope_source": source}
        assert not any("pooled" in name or "recent" in name for name in metrics)
        assert ("evaluated_calibration_slope" in metrics) == (method == "sigmoid")


def test_recent_rows_of_one_label_are_refused() -> None:
    with pytest.raises(ValueError, match="the recent rows have only label 0; both are needed"):
        intercept_for_slope(np.array([0.1, 0.2]), np.array([0, 0]), 1.0)


def test_the_clustered_slope_interval_is_about_as_wide_as_a_deal_bootstrap() -> None:
    rng = np.random.default_rng(3)
    deal_raw = rng.normal(size=150)
    raw = np.repeat(deal_raw, 4) + rng.normal(scale=0.1, size=600)  # 4 alike rows per deal
    labels = np.repeat((rng.random(150) < expit(deal_raw)).astype(int), 4)
    deals = np.repeat(np.arange(150), 4)
    low, high = slope_interval(raw, labels, deals)

    def slope(weights: np.ndarray) -> dict[str, float]:
        kept = weights > 0
        fitted = LogisticRegression(C=np.inf).fit(
            raw[kept].reshape(-1, 1), labels[kept], sample_weight=weights[kept]
        )
        return {"slope": float(fitted.coef_[0, 0])}

    boot_low, boot_high = deal_bootstrap_weights(deals, slope, 60, 0)["slope"]
    assert (high - low) == pytest.approx(boot_high - boot_low, rel=0.35)
    # Rows taken as independent would give an interval about half as wide (4 rows per deal).
    naive_low, naive_high = slope_interval(raw, labels, np.arange(600))
    assert naive_high - naive_low < 0.7 * (high - low)


@st.composite
def _calibration_rows(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold raw scores of 2–4 rows per deal, labels from a random slope (backwards too)
    and base rate, the last deals' rows recent; both labels among the recent rows."""
    deals = draw(st.integers(12, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    slope, shift = draw(st.floats(-2.0, 4.0)), draw(st.floats(-2.0, 2.0))
    rng = np.random.default_rng(seed)
    per_deal = rng.integers(2, 5, size=deals)
    deal_ids = np.repeat([f"D{i}" for i in range(deals)], per_deal)
    raw = rng.normal(scale=draw(st.floats(0.2, 3.0)), size=len(deal_ids))
    labels = (rng.random(len(raw)) < expit(shift + slope * raw)).astype(int)
    recent = np.isin(deal_ids, [f"D{i}" for i in range(deals - draw(st.integers(4, 10)), deals)])
    labels[np.flatnonzero(recent)[:2]] = [0, 1]
    return raw, labels, recent, deal_ids


@settings(max_examples=40, deadline=None)
@given(rows=_calibration_rows())
def test_the_deployed_map_ranks_forwards_takes_the_pooled_slope_and_the_recent_won_rate(
    rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Whatever the rows (a backwards score included): slope >= 0, a monotone map, the slope of
    every row (the constrained Platt fit's), and the recent rows' won rate as its mean there."""
    raw, labels, recent, deal_ids = rows
    calibrator, choice = fit_recent_calibrator(raw, labels, recent, deal_ids, "sigmoid")
    assert choice is not None and np.isfinite([choice.used, calibrator.intercept]).all()
    assert calibrator.slope == choice.used == choice.pooled >= 0.0  # never a reversed ranking
    assert calibrator.slope == fit_calibrator(raw, labels, "sigmoid").slope
    grid = np.linspace(raw.min() - 1.0, raw.max() + 1.0, 50)
    assert (np.diff(calibrator.predict(grid)) >= 0.0).all()  # a monotone map
    recent_p = calibrator.predict(raw[recent])
    assert recent_p.mean() == pytest.approx(labels[recent].mean(), abs=1e-6)
    assert choice.recent_differs == (not choice.recent_lo <= choice.pooled <= choice.recent_hi)
