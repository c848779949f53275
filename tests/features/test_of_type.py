"""`of_type` (the stage features' type match, decided once per distinct type) against folding
every row's string, for plain and dictionary (categorical) columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.stage_win_rate import of_type

types = st.lists(
    st.sampled_from(["stage_change", " Stage_Change ", "STAGE_CHANGE", "email", "", None]),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(types)
def test_of_type_is_every_string_stripped_and_case_folded(values: list[str | None]) -> None:
    plain = pd.Series(values, dtype="str")
    expected = (plain.str.strip().str.casefold() == "stage_change").fillna(False).to_numpy(bool)
    for column in (plain, plain.astype("category")):
        assert np.array_equal(of_type(column, "Stage_Change"), expected)
