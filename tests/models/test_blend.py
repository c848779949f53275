"""The booster blended with a logistic regression in log-odds: contributions that add up to the
blended score, a weight of 1 that is today's booster, and a weight chosen on validation only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.spec import FeatureSpec
from closeprob.models.baselines import fit_logistic, logistic_contributions, logistic_logit
from closeprob.models.classifier import CloseModel, encode_features, fit_categories
from closeprob.models.native import booster_text, close_model_document, close_model_from_document
from closeprob.models.training import (
    BLEND_WEIGHTS,
    calibrate_booster,
    choose_blend_weight,
    fit_evaluated_model,
    fit_fixed_trees,
    varying_terms,
    varying_terms_over,
)

PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 20,
    "n_estimators": 200,
    "early_stopping_round": 20,
    "num_threads": 1,
}
NAMES = ["a", "b", "kind"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A numeric signal, a numeric with gaps, and a categorical with a rare level."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    kind = rng.choice(["x", "y", "z", "rare"], size=n, p=[0.4, 0.3, 0.28, 0.02])
    logit = 1.5 * a + 0.8 * (kind == "x") - 0.5 * np.nan_to_num(b)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame({"a": a, "b": b, "kind": pd.Series(kind, dtype=object)})
    return features, pd.Series(y)


def _blend(weight: float, method: str = "sigmoid") -> tuple[CloseModel, pd.DataFrame]:
    features, y = _frame(900, 0)
    categories = fit_categories(features[:600], ["kind"])
    encoded = encode_features(features, NAMES, categories)
    booster = fit_fixed_trees(encoded[:600], y[:600], PARAMS, 30, seed=1)
    linear = fit_logistic(encoded[:600], y[:600], ["kind"], seed=1)
    model = calibrate_booster(
        booster, encoded[600:], y[600:], method, FeatureSpec(()), categories, linear, weight
    )
    return model, features


@settings(max_examples=15, deadline=None)
@given(weight=st.sampled_from(BLEND_WEIGHTS), start=st.integers(0, 880))
def test_contributions_sum_to_the_blended_raw_score(weight: float, start: int) -> None:
    model, features = _blend(weight)
    encoded = model.encode(features.iloc[start : start + 20])
    contributions = model.contributions(encoded)
    assert contributions.shape == (len(encoded), len(NAMES) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.raw_score(encoded), atol=1e-9)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_proba_from_the_raw_score_equals_predict_proba(method: str, weight: float) -> None:
    model, features = _blend(weight, method)
    raw = model.raw_score(model.encode(features))
    np.testing.assert_allclose(model.proba_from_raw(raw), model.predict_proba(features), atol=0)


def test_the_blended_raw_score_is_the_weighted_sum_of_the_two_log_odds() -> None:
    model, features = _blend(0.3)
    encoded = model.encode(features)
    assert model.linear is not None
    booster = model.booster.predict(encoded, raw_score=True)
    linear = model.linear.logit(encoded)
    np.testing.assert_allclose(model.raw_score(encoded), 0.3 * booster + 0.7 * linear)


def test_a_blend_weight_of_one_is_the_booster_alone_exactly() -> None:
    features, y = _frame(900, 0)
    categories = fit_categories(features[:600], ["kind"])
    encoded = encode_features(features, NAMES, categories)
    booster = fit_fixed_trees(encoded[:600], y[:600], PARAMS, 30, seed=1)
    linear = fit_logistic(encoded[:600], y[:600], ["kind"], seed=1)
    args = (encoded[600:], y[600:], "sigmoid", FeatureSpec(()), categories)
    alone = calibrate_booster(booster, *args)
    blended = calibrate_booster(booster, *args, linear, 1.0)
    assert blended.linear is None and blended.blend_weight == 1.0
    np.testing.assert_array_equal(blended.predict_proba(features), alone.predict_proba(features))
    np.testing.assert_array_equal(blended.contributions(encoded), alone.contributions(encoded))
    raw = np.asarray(booster.predict(encoded, raw_score=True))
    np.testing.assert_array_equal(blended.raw_score(encoded), raw)


def test_each_logistic_contribution_moves_only_with_its_own_feature() -> None:
    features, y = _frame(600, 2)
    categories = fit_categories(features, ["kind"])
    encoded = encode_features(features, NAMES, categories)
    linear = fit_logistic(encoded, y, ["kind"], seed=1)
    before = logistic_contributions(linear, encoded, ["kind"])
    changed = encoded.assign(b=encoded["b"].fillna(0.0) + 1.0)  # gaps filled: indicator moves
    after = logistic_contributions(linear, changed, ["kind"])
    np.testing.assert_array_equal(after[:, [0, 2, 3]], before[:, [0, 2, 3]])
    assert not np.allclose(after[:, 1], before[:, 1])
    np.testing.assert_allclose(after.sum(axis=1), logistic_logit(linear, changed, ["kind"]))


def test_a_logistic_part_with_weight_keeps_a_model_without_splits_from_being_constant() -> None:
    features, y = _frame(900, 0)
    categories = fit_categories(features[:600], ["kind"])
    encoded = encode_features(features, NAMES, categories)
    flat = encoded.assign(a=0.0, b=0.0, kind=pd.Categorical(["x"] * 900, categories=["x"]))
    stump = fit_fixed_trees(flat[:600], y[:600], PARAMS, 5, seed=1)  # no variation: no split
    linear = fit_logistic(encoded[:600], y[:600], ["kind"], seed=1)
    args = (encoded[600:], y[600:], "sigmoid", FeatureSpec(()), categories)
    assert varying_terms(calibrate_booster(stump, *args), encoded[:600]) == 0
    assert varying_terms(calibrate_booster(stump, *args, linear, 0.5), encoded[:600]) > 0
    flat_linear = fit_logistic(flat[:600], y[:600], ["kind"], seed=1)
    assert varying_terms(calibrate_booster(stump, *args, flat_linear, 0.5), flat[:600]) == 0


@pytest.mark.parametrize("weight", [1.0, 0.5, 0.0])
def test_varying_terms_over_a_feature_tables_rows_equal_those_of_the_encoded_rows(
    weight: float,
) -> None:
    model, features = _blend(weight)
    flat = features.assign(b=np.nan, kind="x")  # a column that does not vary, gaps everywhere
    for table in (features, flat):
        for rows in (np.arange(900) < 600, np.arange(900) >= 600, np.zeros(900, dtype=bool)):
            mask = pd.Series(rows, index=table.index)
            expected = varying_terms(model, model.encode(table[mask]))
            assert varying_terms_over(model, table, mask) == expected


def test_the_blend_weight_follows_the_part_that_predicts_the_rows() -> None:
    rng = np.random.default_rng(3)
    signal = rng.normal(size=2000)
    labels = (rng.random(2000) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    noise = rng.normal(size=2000)
    assert choose_blend_weight(2 * signal, noise, labels) == 1.0
    assert choose_blend_weight(noise, 2 * signal, labels) == 0.0
    assert choose_blend_weight(signal, signal, labels) == 1.0  # a tie keeps the booster


def _slices(n: int) -> dict[str, pd.Series]:
    position = pd.Series(np.arange(n))
    return {
        "train": position < 0.5 * n,
        "validation": (position >= 0.5 * n) & (position < 0.7 * n),
        "calibration": (position >= 0.7 * n) & (position < 0.85 * n),
    }


def test_the_blend_weight_is_chosen_without_the_calibration_and_test_labels() -> None:
    features, y = _frame(1600, 4)
    rows = _slices(len(features))
    later = ~(rows["train"] | rows["validation"])  # calibration and test rows
    args = (rows, FeatureSpec(()), NAMES, ["kind"], PARAMS, 1, "sigmoid")
    chosen = fit_evaluated_model(features, y, *args)
    assert chosen.blend_weight < 1.0  # the truth is linear: the logistic part is used
    for seed in range(3):
        shuffled = y.copy()
        shuffled[later] = np.random.default_rng(seed).permutation(y[later].to_numpy())
        assert fit_evaluated_model(features, shuffled, *args).blend_weight == chosen.blend_weight


def test_a_blended_model_read_back_from_its_documents_scores_exactly_the_same() -> None:
    model, features = _blend(0.6)
    again = close_model_from_document(close_model_document(model), booster_text(model.booster))
    assert again.blend_weight == 0.6
    np.testing.assert_array_equal(again.predict_proba(features), model.predict_proba(features))
    encoded = model.encode(features)
    np.testing.assert_array_equal(again.contributions(encoded), model.contributions(encoded))
