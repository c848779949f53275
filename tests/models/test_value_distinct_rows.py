"""The value model predicts once per distinct attribute row, and each deal gets the number the
regressor gives its own row (an encoded frame, row by row)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.models.classifier import encode_features
from closeprob.models.value import DealValueModel, fit_value_model


def fitted_model() -> DealValueModel:
    rng = np.random.default_rng(0)
    n = 800
    size = rng.choice(["small", "mid", "enterprise"], n)
    product = rng.choice(["core", "suite", "pro"], n)
    seats = rng.integers(1, 50, n).astype(float)
    base = pd.Series(size).map({"small": 5e3, "mid": 3e4, "enterprise": 1.5e5}).to_numpy()
    amount = base * np.where(product == "suite", 3.0, 1.0) * (1 + seats / 50)
    deals = pd.DataFrame({"amount": amount, "size": size, "product": product, "seats": seats})
    model = fit_value_model(deals[:600], deals[600:], ["size", "product", "seats"], "size", 100, 0)
    assert model.regressor is not None
    return model


MODEL = fitted_model()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["small", "Mid ", "ENTERPRISE", "unseen", None]),
            st.sampled_from(["core", "suite", "pro", None]),
            st.sampled_from([1.0, 20.0, 49.0, np.nan, -0.0, 0.0]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_estimates_equal_the_regressors_prediction_of_each_encoded_row(
    rows: list[tuple[str | None, str | None, float]],
) -> None:
    deals = pd.DataFrame(rows, columns=["size", "product", "seats"], dtype=object).assign(
        seats=lambda frame: frame["seats"].astype(float)
    )
    encoded = encode_features(deals, MODEL.attributes, MODEL.categories)
    assert MODEL.regressor is not None
    expected = np.exp(np.asarray(MODEL.regressor.predict(encoded))) * MODEL.smearing - 1.0
    np.testing.assert_array_equal(MODEL.estimate(deals)[0], expected)
