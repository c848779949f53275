"""Rolling-origin selection: folds that never fit on a label unknown at their validation start,
a tie that goes to the simpler model, and a choice that averages the folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeprob.models.selection import (
    Selection,
    judging_deals,
    rolling_folds,
    select_by_rolling_origin,
    simplest_within_one_se,
)
from closeprob.models.training import BLEND_WEIGHTS

WEEKS = pd.date_range("2024-01-01", periods=30, freq="7D", tz="UTC")
PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 20,
    "n_estimators": 200,
    "early_stopping_round": 20,
    "num_threads": 1,
}


def test_folds_validate_on_earlier_runs_and_fit_only_on_labels_known_before_them() -> None:
    train, validation = WEEKS[:26], WEEKS[26:]
    folds = rolling_folds(train, validation, horizon_days=28, folds=3)
    assert len(folds) == 3
    assert list(folds[0].validation) == list(validation)  # the latest is the validation slice
    assert list(folds[1].validation) == list(WEEKS[22:26])
    for fold in folds:
        assert len(fold.validation) == len(validation)
        assert (fold.train + pd.Timedelta(days=28) < fold.validation[0]).all()
        assert fold.train[-1] + pd.Timedelta(days=35) >= fold.validation[0]  # no wider gap


def test_a_short_history_fits_each_fold_on_every_earlier_date_and_stops_when_none_is_left() -> None:
    folds = rolling_folds(WEEKS[:6], WEEKS[6:10], horizon_days=28, folds=5)
    assert len(folds) == 2  # the second run has 2 earlier dates, the third none
    assert list(folds[0].train) == list(WEEKS[:6])  # only 2 dates a horizon before: no embargo
    assert list(folds[1].train) == list(WEEKS[:2])


def test_a_booster_weight_within_one_standard_error_of_the_best_loses_to_the_simpler() -> None:
    weights = np.asarray(BLEND_WEIGHTS)
    noisy = np.vstack([0.40 + 0.01 * weights * s for s in (-1.0, 0.5, 0.3)])  # best at 1.0
    assert simplest_within_one_se(noisy) == 0.0  # the folds disagree: the linear model
    clear = np.vstack([0.40 - 0.02 * weights + 0.001 * s for s in (0.0, 1.0, 2.0)])
    assert simplest_within_one_se(clear) == 1.0  # every fold prefers the booster


def test_selection_averages_the_folds_tree_counts_and_reports_the_spread() -> None:
    rng = np.random.default_rng(0)
    rows = 3_000
    as_of = WEEKS[rng.integers(0, 30, rows)]
    a = rng.normal(size=rows)
    kind = rng.choice(["x", "y", "z"], size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(1.5 * a + 0.8 * (kind == "x"))))).astype(int)
    features = _frame(as_of, a, kind)
    folds = rolling_folds(WEEKS[:26], WEEKS[26:], horizon_days=14, folds=3)
    selection = select_by_rolling_origin(
        features, pd.Series(y), folds, ["a", "kind"], ["kind"], PARAMS, seed=1
    )
    assert selection.losses.shape == (3, len(BLEND_WEIGHTS))
    assert selection.trees == round(float(np.mean(selection.trees_by_fold)))
    figures = selection.figures()
    assert figures["selection_folds"] == 3.0
    assert figures["selection_trees_min"] <= figures["selection_trees"]
    assert figures["selection_trees"] <= figures["selection_trees_max"]
    assert figures["selection_log_loss_sd"] >= 0.0


def _frame(as_of: pd.DatetimeIndex, a: np.ndarray, kind: np.ndarray) -> pd.DataFrame:
    deal_id = [f"D{i}" for i in range(len(a))]
    return pd.DataFrame(
        {"as_of": as_of, "a": a, "kind": pd.Series(kind, dtype=object), "deal_id": deal_id}
    )


def test_only_the_judging_deals_rows_on_validation_dates_choose_trees_and_weight() -> None:
    """The other half's labels on the latest fold's validation dates (which no fold fits on)
    change nothing: they judged nothing, so they may fit the calibration map
    (`Selection.judged_rows`)."""
    rng = np.random.default_rng(2)
    rows = 2_000
    features = _frame(WEEKS[rng.integers(0, 30, rows)], rng.normal(size=rows), np.full(rows, "x"))
    y = pd.Series((rng.random(rows) < 1 / (1 + np.exp(-1.5 * features["a"]))).astype(int))
    folds = rolling_folds(WEEKS[:26], WEEKS[26:], horizon_days=14, folds=2)
    args = (folds, ["a"], [], PARAMS)
    before = select_by_rolling_origin(features, y, *args, seed=1)
    on_dates = features["as_of"].isin(before.judged_dates)
    latest = features["as_of"].isin(folds[0].validation)
    free = latest & ~judging_deals(features["deal_id"])
    after = select_by_rolling_origin(features, y.mask(free, 1 - y), *args, seed=1)
    np.testing.assert_array_equal(after.losses, before.losses)
    assert after.trees_by_fold == before.trees_by_fold
    judged = before.judged_rows(features)
    assert 0.3 < judged.sum() / on_dates.sum() < 0.7 and not (judged & ~on_dates).any()
    flipped = select_by_rolling_origin(features, y.mask(judged & latest, 1 - y), *args, seed=1)
    assert not np.array_equal(flipped.losses, before.losses)


def test_the_judged_dates_are_every_used_folds_validation_dates_and_no_others() -> None:
    folds = rolling_folds(WEEKS[:26], WEEKS[26:], horizon_days=14, folds=3)
    used = [folds[0], folds[2]]  # fold 1 skipped (too few rows)
    selection = Selection(1, 1.0, [1, 1], np.zeros((2, len(BLEND_WEIGHTS))), used)
    expected = sorted({*folds[0].validation, *folds[2].validation})
    assert list(selection.judged_dates) == expected
    assert not selection.judged_dates.isin(folds[1].validation).any()


def test_no_usable_fold_is_an_error_that_says_what_to_do() -> None:
    features = pd.DataFrame(
        {"as_of": WEEKS[:10], "a": np.arange(10.0), "deal_id": [f"D{i}" for i in range(10)]}
    )
    folds = rolling_folds(WEEKS[:6], WEEKS[6:10], horizon_days=7, folds=2)
    with pytest.raises(ValueError, match="no rolling-origin fold has 50\\+ rows"):
        select_by_rolling_origin(
            features, pd.Series(np.arange(10) % 2), folds, ["a"], [], PARAMS, seed=1
        )
