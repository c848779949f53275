"""Models as plain documents: the logistic part's numbers give the scikit-learn pipeline's terms,
and a model read back from its JSON and LightGBM text scores exactly as the one in memory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from closeprob.features.spec import FeatureSpec
from closeprob.models import classifier
from closeprob.models.baselines import (
    fit_logistic,
    logistic_contributions,
    logistic_logit,
    varying_logistic_terms,
)
from closeprob.models.classifier import CloseModel, encode_features, fit_categories
from closeprob.models.linear import linear_part_from_pipeline
from closeprob.models.native import (
    booster_text,
    close_model_document,
    close_model_from_document,
    spec_from_document,
    value_model_document,
    value_model_from_document,
)
from closeprob.models.training import calibrate_booster, fit_fixed_trees
from closeprob.models.value import DealValueModel, fit_value_model

PARAMS = {"learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20, "num_threads": 1}
NAMES = ["a", "b", "gappy", "kind"]


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A numeric signal, a numeric with gaps, one missing in training only, a categorical
    with a rare level and gaps."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    gappy = np.where(np.arange(n) < n // 2, np.nan, rng.normal(size=n))
    kind = rng.choice(["x", "y", "z", "rare", None], size=n, p=[0.4, 0.3, 0.2, 0.02, 0.08])
    logit = 1.5 * a + 0.8 * (kind == "x") - 0.5 * np.nan_to_num(b)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame({"a": a, "b": b, "gappy": gappy, "kind": pd.Series(kind, dtype=object)})
    return features, pd.Series(y)


def _encoded(n: int = 900) -> tuple[pd.DataFrame, pd.Series, dict[str, list[str]]]:
    features, y = _frame(n, 0)
    categories = fit_categories(features[: n * 2 // 3], ["kind"])
    return encode_features(features, NAMES, categories), y, categories


def test_the_logistic_parts_numbers_give_the_pipelines_terms_logit_and_varying_count() -> None:
    encoded, y, _ = _encoded()
    pipeline = fit_logistic(encoded[:600], y[:600], ["kind"], seed=1)
    part = linear_part_from_pipeline(pipeline, ["kind"])
    unseen = encoded.assign(kind=pd.Categorical([None] * len(encoded), categories=["x", "y"]))
    for rows in (encoded, unseen):
        expected = logistic_contributions(pipeline, rows, ["kind"])
        np.testing.assert_allclose(part.contributions(rows), expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            part.logit(rows), logistic_logit(pipeline, rows, ["kind"]), rtol=0, atol=1e-12
        )
    assert part.varying_terms(encoded[:600]) == varying_logistic_terms(
        pipeline, encoded[:600], ["kind"]
    )
    assert part.varying_terms(encoded[:0]) == 0


def _model(method: str, weight: float) -> tuple[CloseModel, pd.DataFrame]:
    encoded, y, categories = _encoded()
    booster = fit_fixed_trees(encoded[:600], y[:600], PARAMS, 30, seed=1)
    linear = fit_logistic(encoded[:600], y[:600], ["kind"], seed=1)
    spec = FeatureSpec(("email", "call"), attributes=("kind",), market_window_days=30)
    model = calibrate_booster(
        booster, encoded[600:], y[600:], method, spec, categories, linear, weight
    )
    return model, encoded


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("weight", [1.0, 0.4, 0.0])
def test_a_model_read_back_from_its_documents_scores_exactly_as_the_one_in_memory(
    method: str, weight: float
) -> None:
    model, encoded = _model(method, weight)
    document = json.loads(json.dumps(close_model_document(model), allow_nan=False))
    again = close_model_from_document(document, booster_text(model.booster))
    assert again.spec == model.spec
    features = encoded.astype({"kind": object})
    np.testing.assert_allclose(
        again.predict_proba(features), model.predict_proba(features), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        again.contributions(encoded), model.contributions(encoded), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("weight", [1.0, 0.4])
def test_scoring_in_chunks_gives_each_row_exactly_its_whole_frame_score(
    weight: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, encoded = _model("sigmoid", weight)
    features = encoded.astype({"kind": object})
    whole, whole_raw = model.predict_proba(features), model.predict_both(features)[1]
    monkeypatch.setattr(classifier, "PREDICT_CHUNK_ROWS", 128)
    np.testing.assert_array_equal(model.predict_proba(features), whole)
    np.testing.assert_array_equal(model.predict_both(features)[1], whole_raw)


def test_an_unknown_feature_spec_key_is_refused_and_a_missing_one_takes_its_default() -> None:
    with pytest.raises(ValueError, match=r"feature spec keys \['future_knob'\] are unknown"):
        spec_from_document({"event_types": ["email"], "future_knob": 1})
    assert spec_from_document({"event_types": ["email"]}).market_window_days == 0


def _deals(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["smb", "ent"], size=n)
    size = rng.normal(size=n)
    # The amount follows size within a segment, so the regressor beats segment medians.
    base = np.where(segment == "ent", 50_000.0, 5_000.0) * np.exp(0.8 * size)
    amount = base * rng.lognormal(0, 0.3, size=n)
    return pd.DataFrame(
        {"amount": amount, "segment": pd.Series(segment, dtype=object), "size": size}
    )


@pytest.mark.parametrize("regressor", [True, False])
def test_a_value_model_read_back_from_its_documents_estimates_the_same(regressor: bool) -> None:
    deals = _deals(400, 1)
    model = fit_value_model(deals[:300], deals[300:], ["segment", "size"], "segment", 50, 1)
    if not regressor:
        model = DealValueModel(model.attributes, {}, None, "segment", {"smb": 1.0}, float("nan"))
    assert (model.regressor is not None) == regressor
    document = json.loads(json.dumps(value_model_document(model), allow_nan=False))
    text = booster_text(model.regressor) if model.regressor is not None else None
    again = value_model_from_document(document, text)
    (expected, how), (found, how_again) = model.estimate(deals), again.estimate(deals)
    assert how == how_again
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-9)
