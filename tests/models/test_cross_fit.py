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
    out_of_fold_raw,
)

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
