"""The batch's model input, encoded once, reads as `CloseModel.encode` does: the same levels, the
same raw scores and the same TreeSHAP contributions, to the last bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.spec import FeatureSpec
from closeprob.models.baselines import fit_logistic
from closeprob.models.classifier import CloseModel, known_levels
from closeprob.models.model_input import (
    category_codes,
    encode_input,
    input_contributions,
    input_raw_score,
)
from closeprob.models.training import calibrate_booster, fit_fixed_trees

LEVELS = ["inbound", "outbound", "partner web"]
SPELLINGS = ["inbound", " Inbound", "OUTBOUND", "partner  web", "Partner Web ", "event", ""]


def reference_codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """The codes `encode_features` gives: every row matched on its own."""
    return np.asarray(pd.Categorical(known_levels(column, levels), categories=levels).codes)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([*SPELLINGS, None]), min_size=1, max_size=30),
    st.sampled_from(["object", "str"]),
)
def test_category_codes_match_the_levels_each_row_gets_on_its_own(
    values: list[str | None], dtype: str
) -> None:
    column = pd.Series(values, dtype=dtype)
    np.testing.assert_array_equal(category_codes(column, LEVELS), reference_codes(column, LEVELS))


def test_values_that_compare_equal_but_print_apart_are_matched_each_on_its_own() -> None:
    column = pd.Series([1, 1.0, "1", None], dtype=object)
    levels = ["1", "1.0"]
    np.testing.assert_array_equal(category_codes(column, levels), [0, 1, 0, -1])
    np.testing.assert_array_equal(category_codes(column, levels), reference_codes(column, levels))


def small_model(blend_weight: float) -> tuple[CloseModel, pd.DataFrame]:
    """A booster (blended with a logistic part below weight 1) on a number and a category,
    and feature rows with unseen and missing levels and missing numbers."""
    rng = np.random.default_rng(3)
    size = 600
    source = rng.choice(["inbound", "outbound", "partner"], size)
    x = pd.DataFrame(
        {
            "touches": rng.poisson(3, size).astype(float),
            "attr_source": pd.Categorical(source, categories=["inbound", "outbound", "partner"]),
        }
    )
    odds = x["touches"] - 3 + np.where(source == "inbound", 1.0, -0.5)
    y = pd.Series((rng.random(size) < 1 / (1 + np.exp(-odds))).astype(int))
    params = {"num_leaves": 4, "min_child_samples": 10, "num_threads": 1}
    booster = fit_fixed_trees(x[:400], y[:400], params, 15, seed=1)
    categories = {"attr_source": ["inbound", "outbound", "partner"]}
    linear = fit_logistic(x[:400], y[:400], ["attr_source"], seed=1) if blend_weight < 1 else None
    model = calibrate_booster(
        booster, x[400:], y[400:], "sigmoid", FeatureSpec(()), categories, linear, blend_weight
    )
    touches = rng.poisson(3, 50).astype(float)
    touches[::7] = np.nan
    spelled = rng.choice(["Inbound ", "OUTBOUND", "partner", "event", None], 50)
    features = pd.DataFrame(
        {"deal_id": [f"D{i}" for i in range(50)], "touches": touches, "attr_source": spelled},
        index=pd.RangeIndex(100, 150),
    )
    return model, features


@pytest.mark.parametrize("blend_weight", [1.0, 0.6], ids=["booster", "blend"])
def test_raw_scores_and_contributions_equal_those_of_the_encoded_frame(
    blend_weight: float,
) -> None:
    model, features = small_model(blend_weight)
    inputs = encode_input(features, model)
    pd.testing.assert_frame_equal(inputs.frame(model), model.encode(features))
    np.testing.assert_array_equal(
        input_raw_score(model, inputs), model.raw_score(model.encode(features))
    )
    rows = np.array([40, 3, 7, 7, 0])
    np.testing.assert_array_equal(
        input_contributions(model, inputs.take(rows)),
        model.contributions(model.encode(features.iloc[rows])),
    )
    np.testing.assert_array_equal(
        input_raw_score(model, inputs.take(slice(10, 30))),
        model.raw_score(model.encode(features.iloc[10:30])),
    )
