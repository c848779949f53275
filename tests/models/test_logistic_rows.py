"""`model.logistic_rows`: above that many rows the blend's logistic regression is fitted on a
seeded sample of them, the same sample for a seed, and exactly the fit on those rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from closeprob.models.baselines import fit_logistic, logistic_logit, logistic_rows_sample
from closeprob.models.classifier import encode_features, fit_categories


def _encoded(n: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    a = rng.normal(size=n)
    kind = rng.choice(["x", "y", "z"], size=n)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-(a + (kind == "x"))))).astype(int))
    features = pd.DataFrame({"a": a, "kind": pd.Series(kind, dtype=object)})
    return encode_features(features, ["a", "kind"], fit_categories(features, ["kind"])), y


def test_at_or_below_the_cap_every_row_is_fitted() -> None:
    assert logistic_rows_sample(500, None, 1) is None
    assert logistic_rows_sample(500, 500, 1) is None


@given(rows=st.integers(2, 5000), cap=st.integers(1, 4999), seed=st.integers(0, 2**31))
def test_above_the_cap_the_sample_is_that_many_distinct_sorted_rows_fixed_by_the_seed(
    rows: int, cap: int, seed: int
) -> None:
    sample = logistic_rows_sample(rows, cap, seed)
    if rows <= cap:
        assert sample is None
        return
    assert sample is not None
    assert len(sample) == cap == len(np.unique(sample))
    assert (np.diff(sample) > 0).all() and sample[0] >= 0 and sample[-1] < rows
    np.testing.assert_array_equal(sample, logistic_rows_sample(rows, cap, seed))


def test_a_capped_fit_is_the_fit_on_its_sampled_rows() -> None:
    encoded, y = _encoded(2000)
    capped = fit_logistic(encoded, y, ["kind"], seed=5, max_rows=600)
    sample = logistic_rows_sample(2000, 600, 5)
    assert sample is not None
    on_sample = fit_logistic(encoded.iloc[sample], y.iloc[sample], ["kind"], seed=5)
    np.testing.assert_array_equal(
        logistic_logit(capped, encoded, ["kind"]), logistic_logit(on_sample, encoded, ["kind"])
    )
    whole = fit_logistic(encoded, y, ["kind"], seed=5)
    assert not np.array_equal(
        logistic_logit(capped, encoded, ["kind"]), logistic_logit(whole, encoded, ["kind"])
    )
