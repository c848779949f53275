"""The run's pace: the learning rate grows with the fit rows above a reference count, capped,
and the tree cap and early-stopping patience shrink by the same factor."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeprob.models.training import pace_for_rows

PARAMS = {
    "learning_rate": 0.03,
    "n_estimators": 3000,
    "early_stopping_round": 150,
    "num_leaves": 7,
}


def test_without_a_maximum_rate_the_configured_parameters_stand_at_any_size() -> None:
    assert pace_for_rows(PARAMS, 10**8, 200_000, None) == PARAMS


def test_up_to_the_reference_rows_the_configured_parameters_stand() -> None:
    assert pace_for_rows(PARAMS, 200_000, 200_000, 0.1) == PARAMS


def test_four_times_the_reference_rows_doubles_the_rate_and_halves_trees_and_patience() -> None:
    paced = pace_for_rows(PARAMS, 800_000, 200_000, 0.1)
    assert paced["learning_rate"] == pytest.approx(0.06)
    assert paced["n_estimators"] == 1500
    assert paced["early_stopping_round"] == 75
    assert paced["num_leaves"] == 7


def test_the_rate_stops_at_its_cap() -> None:
    paced = pace_for_rows(PARAMS, 3_000_000, 200_000, 0.1)
    assert paced["learning_rate"] == pytest.approx(0.1)
    assert paced["n_estimators"] == 900
    assert paced["early_stopping_round"] == 45


def test_a_cap_below_the_configured_rate_never_slows_it() -> None:
    assert pace_for_rows(PARAMS, 10**7, 200_000, 0.01)["learning_rate"] == 0.03


@given(rows=st.integers(1, 10**8), reference=st.integers(1, 10**7), cap=st.floats(0.001, 1.0))
def test_the_learning_distance_of_the_cap_and_the_patience_is_kept(
    rows: int, reference: int, cap: float
) -> None:
    paced = pace_for_rows(PARAMS, rows, reference, cap)
    rate = paced["learning_rate"]
    assert PARAMS["learning_rate"] <= rate <= max(cap, PARAMS["learning_rate"])
    distance = PARAMS["learning_rate"] * PARAMS["n_estimators"]
    assert paced["n_estimators"] * rate == pytest.approx(distance, rel=0.01, abs=rate)
    assert paced["early_stopping_round"] >= 1
