"""Stage moves and moving back: against a per-row filter, and blind to events at or after as_of."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.stage_history import stage_history_features
from tests.conftest import make_interactions, utc


def naive(interactions: pd.DataFrame, snapshots: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for deal_id, as_of in zip(snapshots["deal_id"], snapshots["as_of"], strict=True):
        past = interactions[
            (interactions["deal_id"] == deal_id)
            & (interactions["type"] == "stage_change")
            & (interactions["occurred_at"] < as_of)
        ].sort_values("occurred_at", kind="stable")
        recent = past["occurred_at"] >= as_of - pd.Timedelta(days=30)
        back = (past["value"].diff() < 0).any()
        rows.append({"stage_moves_30d": float(recent.sum()), "stage_moved_back": float(back)})
    return pd.DataFrame(rows, index=snapshots.index)


def test_moves_in_30_days_and_a_move_back_are_counted_before_as_of_only() -> None:
    events = make_interactions(
        [
            {"deal_id": "D1", "occurred_at": "2024-01-01", "type": "stage_change", "value": 1},
            {"deal_id": "D1", "occurred_at": "2024-02-20", "type": "stage_change", "value": 3},
            {"deal_id": "D1", "occurred_at": "2024-02-25", "type": "stage_change", "value": 2},
            {"deal_id": "D1", "occurred_at": "2024-03-01", "type": "email", "value": 9},
            {"deal_id": "D2", "occurred_at": "2024-02-28", "type": "stage_change", "value": 1},
        ]
    )
    snapshots = pd.DataFrame(
        {"deal_id": ["D1", "D1", "D2", "D3"], "as_of": [utc("2024-03-01"), utc("2024-02-25")] * 2}
    )
    features = stage_history_features(events, snapshots, "stage_change")
    assert features["stage_moves_30d"].tolist() == [2.0, 1.0, 1.0, 0.0]
    # The move back from 3 to 2 happened at 2024-02-25: not before that as_of.
    assert features["stage_moved_back"].tolist() == [1.0, 0.0, 0.0, 0.0]


event = st.tuples(
    st.sampled_from(["D1", "D2", "D3"]),
    st.integers(0, 120),
    st.sampled_from(["stage_change", "email"]),
    st.integers(1, 5),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event, max_size=25), st.lists(event, max_size=10), st.integers(10, 130))
def test_events_at_or_after_as_of_change_nothing_and_it_matches_a_per_row_filter(
    past: list[tuple[str, int, str, int]], later: list[tuple[str, int, str, int]], day: int
) -> None:
    as_of = utc("2024-01-01") + pd.Timedelta(days=day)

    def frame(rows: list[tuple[str, int, str, int]], shift: int) -> pd.DataFrame:
        return make_interactions(
            [
                {
                    "deal_id": d,
                    "occurred_at": utc("2024-01-01") + pd.Timedelta(days=t + shift),
                    "type": k,
                    "value": v,
                }
                for d, t, k, v in rows
            ]
        )

    before = frame(past, 0)
    before = before[before["occurred_at"] < as_of]
    after = frame(later, day)  # every one at or after as_of
    snapshots = pd.DataFrame({"deal_id": ["D1", "D2", "D3"], "as_of": as_of})
    alone = stage_history_features(before, snapshots, "stage_change")
    both = stage_history_features(pd.concat([before, after]), snapshots, "stage_change")
    pd.testing.assert_frame_equal(alone, both)
    pd.testing.assert_frame_equal(alone, naive(before, snapshots))
