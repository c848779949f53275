"""`model.booster_rows`: a booster is fitted on at most that many of its fit rows, a seeded
sample of them; fewer rows are all kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from closeprob.models.training import sample_rows


def test_without_a_cap_or_under_it_the_mask_stands() -> None:
    rows = pd.Series([True, False, True, True], index=[10, 11, 12, 13])
    assert sample_rows(rows, None, 1) is rows
    assert sample_rows(rows, 3, 1) is rows


@given(
    mask=st.lists(st.booleans(), min_size=1, max_size=400),
    cap=st.integers(1, 400),
    seed=st.integers(0, 2**31),
)
def test_a_sample_keeps_only_chosen_rows_at_most_the_cap_and_the_same_for_a_seed(
    mask: list[bool], cap: int, seed: int
) -> None:
    rows = pd.Series(mask, index=np.arange(len(mask)) * 3)
    sampled = sample_rows(rows, cap, seed)
    assert sampled.index.equals(rows.index)
    assert not (sampled & ~rows).any()
    assert int(sampled.sum()) == min(cap, int(rows.sum()))
    pd.testing.assert_series_equal(sampled, sample_rows(rows, cap, seed))
