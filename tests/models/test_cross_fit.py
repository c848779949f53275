"""The deployed model's cross-fitted calibration: every recent deal calibrates it, scored by a
model that never saw that deal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from closeprob.features.spec import FeatureSpec
from closeprob.models import cross_fit
from closeprob.models.cross_fit import (
    calibration_folds,
    fit_cross_fitted_model,
    map_rows,
    out_of_fold_raw,
)
from closeprob.models.recent_calibration import intercept_for_slope
from closeprob.models.training import fit_platt

PARAMS = {"learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20, "num_threads": 1}
NAMES = ["a", "kind"]


def _rows(n_deals: int, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Three weekly rows per deal; the last week's rows calibrate."""
    rng = np.random.default_rng(seed)
    deal_id = np.repeat([f"D{i}" for i in range(n_deals)], 3)
    week = np.tile([0, 1, 2], n_deals)
    a = rng.normal(size=len(deal_id))
    kind = rng.choice(["x", "y"], size=len(deal_id))
    y = (rng.random(len(a)) < 1 / (1 + np.exp(-1.5 * a))).astype(int)
    features = pd.DataFrame(
        {"deal_id": deal_id, "a": a, "kind": pd.Series(kind, dtype=object), "week": week}
    )
    return features, pd.Series(y), pd.Series(week == 2)


def test_a_deals_out_of_fold_score_does_not_depend_on_its_own_labels() -> None:
    features, y, calibration = _rows(300, 0)
    fit = pd.Series(True, index=features.index)
    args = (NAMES, ["kind"], PARAMS, 20, 1, 0.5, 3)
    before = out_of_fold_raw(features, y, fit, calibration, *args)
    deal = features["deal_id"] == "D7"
    flipped = y.mask(deal, 1 - y)
    after = out_of_fold_raw(features, flipped, fit, calibration, *args)
    scored = features.loc[calibration, "deal_id"].to_numpy()
    np.testing.assert_array_equal(after[scored == "D7"], before[scored == "D7"])
    assert not np.array_equal(after, before)  # other folds' models saw D7's flipped labels


def test_every_calibration_row_gets_an_out_of_fold_score_and_the_map_ranks_forwards() -> None:
    features, y, calibration = _rows(300, 1)
    fit = pd.Series(True, index=features.index)
    raw = out_of_fold_raw(features, y, fit, calibration, NAMES, ["kind"], PARAMS, 20, 1, 1.0, 3)
    assert len(raw) == int(calibration.sum()) and np.isfinite(raw).all()
    model = fit_cross_fitted_model(
        features,
        y,
        fit,
        calibration,
        FeatureSpec(()),
        NAMES,
        ["kind"],
        PARAMS,
        20,
        1,
        "sigmoid",
        0.5,
        3,
    )
    assert model.calibrator.slope > 0
    assert model.uses_linear and model.blend_weight == 0.5


def test_cross_fitting_needs_two_folds() -> None:
    with pytest.raises(ValueError, match="at least 2 folds, got 1"):
        calibration_folds(pd.Series(["D1", "D2"]), 1)


@pytest.mark.parametrize("weight", [1.0, 0.5])
def test_out_of_fold_scores_in_chunks_are_exactly_the_whole_folds_scores(
    weight: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    features, y, _ = _rows(200, 2)
    fit = pd.Series(True, index=features.index)
    args = (NAMES, ["kind"], PARAMS, 20, 1, weight, 3)
    whole = out_of_fold_raw(features, y, fit, fit, *args)
    monkeypatch.setattr(cross_fit, "PREDICT_CHUNK_ROWS", 64)
    np.testing.assert_array_equal(out_of_fold_raw(features, y, fit, fit, *args), whole)


def test_no_row_on_a_date_that_chose_the_tree_count_fits_the_calibration_map() -> None:
    """Week 1's rows stand for the rows that judged the rolling-origin folds: they
    early-stopped the selection's boosters, so the map comes from weeks 0 and 2 alone."""
    features, y, calibration = _rows(300, 3)
    fit = pd.Series(True, index=features.index)
    judged = pd.Series(features["week"] == 1)
    args = (FeatureSpec(()), NAMES, ["kind"], PARAMS, 20, 1, "sigmoid", 0.5, 3)
    model = fit_cross_fitted_model(features, y, fit, calibration, *args, judged=judged)
    kept = fit & ~judged
    raw = out_of_fold_raw(features, y, fit, kept, NAMES, ["kind"], PARAMS, 20, 1, 0.5, 3)
    slope = float(fit_platt(raw, y[kept].to_numpy()).coef_[0, 0])
    recent = calibration[kept].to_numpy()
    assert model.slope_choice is not None and model.slope_choice.rows == int(kept.sum())
    assert model.calibrator.slope == pytest.approx(slope, abs=1e-12)
    intercept = intercept_for_slope(raw[recent], y[kept].to_numpy()[recent], slope)
    assert model.calibrator.intercept == pytest.approx(intercept, abs=1e-12)
    everything = fit_cross_fitted_model(features, y, fit, calibration, *args)
    assert everything.slope_choice is not None
    assert everything.slope_choice.rows == len(features)
    assert everything.calibrator.slope != pytest.approx(slope, abs=1e-6)


def test_calibration_rows_all_on_judged_dates_are_an_error_that_says_what_to_do() -> None:
    calibration = pd.Series([False, True, True])
    fit = pd.Series(True, index=calibration.index)
    with pytest.raises(ValueError, match="all 2 calibration rows chose the tree count"):
        map_rows(fit, calibration, calibration, pooled=True)


def test_the_map_rows_are_the_fit_rows_off_judged_dates_or_the_recent_ones_alone() -> None:
    fit = pd.Series([True, True, True, True, False])
    calibration = pd.Series([False, False, True, True, False])
    judged = pd.Series([False, True, False, True, False])
    pooled, recent = map_rows(fit, calibration, judged, pooled=True)
    assert pooled.tolist() == [True, False, True, False, False]
    assert recent.tolist() == [False, False, True, False, False]
    alone, _ = map_rows(fit, calibration, judged, pooled=False)
    assert alone.tolist() == recent.tolist()
    assert map_rows(fit, calibration, None, pooled=True)[0].tolist() == fit.tolist()
