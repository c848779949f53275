"""Why a score changed: the difference of contributions between two scorings, in words."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.models.ranker import format_value
from closeprob.pipeline.history import describe_changes
from closeprob.pipeline.jobs.history import history_rows
from tests.conftest import utc

DESCRIBED = {
    "meetings_30d": lambda v: f"{format_value(v)} meetings in the last 30 days",
    "days_quiet": lambda v: f"last contact {format_value(v)} days ago",
}


def test_a_feature_whose_value_changed_comes_first_with_the_direction_of_its_move() -> None:
    before = np.array([[0.10, 0.50, -1.0]])  # the last column is the bias, ignored
    now = np.array([[0.40, 0.49, -1.0]])
    values_before = pd.DataFrame({"meetings_30d": [1], "days_quiet": [3]})
    values_now = pd.DataFrame({"meetings_30d": [4], "days_quiet": [3]})
    texts = describe_changes(before, now, values_before, values_now, DESCRIBED, top=1)
    assert texts == [
        "1 meetings in the last 30 days → 4 meetings in the last 30 days (raised the score)"
    ]


def test_a_feature_that_lowered_the_score_says_so() -> None:
    before, now = np.array([[0.0, 0.3]]), np.array([[0.0, -0.2]])
    values_before = pd.DataFrame({"meetings_30d": [2], "days_quiet": [2]})
    values_now = pd.DataFrame({"meetings_30d": [2], "days_quiet": [40]})
    texts = describe_changes(before, now, values_before, values_now, DESCRIBED, top=2)
    assert texts == ["last contact 2 days ago → last contact 40 days ago (lowered the score)"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=4, max_size=4))
def test_every_change_reads_in_the_direction_of_its_contribution(moves: list[float]) -> None:
    before = np.zeros((2, 2))
    now = np.array(moves).reshape(2, 2)
    values = pd.DataFrame({"meetings_30d": [1, 2], "days_quiet": [5, 6]})
    texts = describe_changes(before, now, values, values + 1, DESCRIBED, top=2)
    for row, text in enumerate(texts):
        for name, column in zip(DESCRIBED, range(2), strict=True):
            new_text = DESCRIBED[name](values[name].iloc[row] + 1)
            part = [p for p in text.split("; ") if f"→ {new_text} (" in p]
            moved = now[row, column]
            if moved == 0:
                assert not part
            else:
                assert part[0].endswith(
                    "(raised the score)" if moved > 0 else "(lowered the score)"
                )


def test_history_keeps_the_last_scoring_of_each_day_oldest_first() -> None:
    scores = pd.DataFrame(
        {
            "as_of": [utc("2024-06-08T05:00"), utc("2024-06-01"), utc("2024-06-08T01:00")],
            "model_version": ["4", "3", "3"],
            "p_close": [0.3, 0.2, 0.25],
            "tier": ["A", "B", "B"],
            "rank": [1, 9, 4],
            "expected_value": [300.0, 200.0, 250.0],
        }
    )
    rows = history_rows(scores)
    assert rows["model_version"].tolist() == ["3", "4"] and rows["rank"].tolist() == [9, 1]
