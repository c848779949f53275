"""A queue far below history is not believed: the rule against a naive per-band loop."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from closeprob.models.queue_plausibility import (
    AGE_EDGES,
    expected_win_rate,
    queue_shortfall_reason,
)


def naive_expected(open_ages: list[float], past_ages: list[float], won: list[float]) -> float:
    overall = sum(won) / len(won)
    rates = []
    for age in open_ages:
        band = max(i for i, edge in enumerate(AGE_EDGES) if edge <= age)
        same = [
            w
            for a, w in zip(past_ages, won, strict=True)
            if max(i for i, e in enumerate(AGE_EDGES) if e <= a) == band
        ]
        rates.append(sum(same) / len(same) if same else overall)
    return sum(rates) / len(rates)


@given(
    st.lists(st.floats(0, 800), min_size=1, max_size=8),
    st.lists(st.tuples(st.floats(0, 800), st.sampled_from([0.0, 1.0])), min_size=1, max_size=30),
)
def test_the_expected_rate_matches_a_per_band_loop(
    open_ages: list[float], past: list[tuple[float, float]]
) -> None:
    ages, won = [a for a, _ in past], [w for _, w in past]
    fast = expected_win_rate(np.array(open_ages), np.array(ages), np.array(won))
    assert np.isclose(fast, naive_expected(open_ages, ages, won))


def test_open_deals_scored_near_zero_against_a_30_percent_history_are_not_believed() -> None:
    reason = queue_shortfall_reason(
        np.full(10, 0.01),
        np.full(10, 20.0),
        np.full(100, 20.0),
        np.r_[np.ones(30), np.zeros(70)],
        0.2,
    )
    assert reason is not None
    assert "10 open deals' mean p_close 0.010 is under 20% of what history says" in reason
    assert "(0.300 won within the horizon)" in reason


def test_a_queue_like_history_and_an_empty_one_pass() -> None:
    history = (np.full(100, 20.0), np.r_[np.ones(30), np.zeros(70)])
    assert queue_shortfall_reason(np.full(10, 0.25), np.full(10, 20.0), *history, 0.2) is None
    assert queue_shortfall_reason(np.array([]), np.array([]), *history, 0.2) is None
    # Old open deals are judged against old deals' history, not the young ones'.
    ages = np.r_[np.full(50, 10.0), np.full(50, 400.0)]
    won = np.r_[np.ones(25), np.zeros(25), np.ones(1), np.zeros(49)]
    assert queue_shortfall_reason(np.full(5, 0.01), np.full(5, 400.0), ages, won, 0.2) is None
