"""The current stage's win rate: against a per-row filter, blind to anything at or after as_of,
and the same from every deal's events or from the scored deals' events plus every deal's
stage entries (how predict and the Spark buckets call it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.spec import FeatureSpec
from closeprob.features.stage_win_rate import first_stage_entries, stage_win_rate_features
from tests.conftest import make_deals, make_interactions, utc

PRIOR = 2.0
START = utc("2024-01-01")


def naive(deals: pd.DataFrame, interactions: pd.DataFrame, snapshots: pd.DataFrame) -> list[float]:
    """Each row straight from the description, with plain filters."""
    rates = []
    stage_events = interactions[interactions["type"] == "stage_change"]
    for deal_id, as_of in zip(snapshots["deal_id"], snapshots["as_of"], strict=True):
        past = stage_events[stage_events["occurred_at"] < as_of]
        own = past[past["deal_id"] == deal_id].sort_values("occurred_at", kind="stable")
        if own.empty or pd.isna(own["value"].iloc[-1]):
            rates.append(np.nan)
            continue
        closed = deals[(deals["closed_at"] < as_of) & deals["outcome"].notna()]
        overall = ((closed["outcome"] == "won").sum() + 1.0) / (len(closed) + 2.0)
        were_in = past.loc[past["value"] == own["value"].iloc[-1], "deal_id"]
        counted = closed[closed["deal_id"].isin(were_in)]
        won = (counted["outcome"] == "won").sum()
        rates.append((won + PRIOR * overall) / (len(counted) + PRIOR))
    return rates


def compute(deals: pd.DataFrame, events: pd.DataFrame, snapshots: pd.DataFrame) -> list[float]:
    entries = first_stage_entries(events, "stage_change")
    family = stage_win_rate_features(deals, events, snapshots, entries, "stage_change", PRIOR)
    return family["stage_win_rate"].tolist()


def small_crm() -> tuple[pd.DataFrame, pd.DataFrame]:
    closes = [
        ("W1", "2024-02-01", "won"),
        ("L1", "2024-02-10", "lost"),
        ("W2", "2024-03-20", "won"),
    ]
    deals = make_deals(
        [
            {"deal_id": d, "created_at": "2024-01-01", "closed_at": t, "outcome": o}
            for d, t, o in closes
        ]
        + [{"deal_id": "O1", "created_at": "2024-01-05"}]
    )
    stage = [
        ("W1", "2024-01-02", 1), ("W1", "2024-01-10", 2),
        ("L1", "2024-01-03", 1), ("L1", "2024-01-20", 2),
        ("W2", "2024-01-04", 2),
        ("O1", "2024-01-06", 1), ("O1", "2024-02-15", 2),
    ]  # fmt: skip
    events = make_interactions(
        [{"deal_id": d, "occurred_at": t, "type": "stage_change", "value": v} for d, t, v in stage]
        + [{"deal_id": "O1", "occurred_at": "2024-01-07", "type": "email"}]
    )
    return deals, events


def test_the_rate_counts_deals_that_were_in_the_stage_and_closed_before_as_of() -> None:
    deals, events = small_crm()
    snapshots = pd.DataFrame(
        {"deal_id": "O1", "as_of": [utc("2024-01-06"), utc("2024-02-05"), utc("2024-03-01")]}
    )
    rates = compute(deals, events, snapshots)
    # No stage yet at 01-06 (its first change is at that instant).
    assert np.isnan(rates[0])
    # 02-05, stage 1: W1 (won) closed, L1 still open; overall (1 + 1) / (1 + 2).
    assert rates[1] == (1 + PRIOR * 2 / 3) / (1 + PRIOR)
    # 03-01, stage 2: W1 won, L1 lost, W2 closes only later; overall (1 + 1) / (2 + 2).
    assert rates[2] == (1 + PRIOR * 2 / 4) / (2 + PRIOR)
    assert rates[1:] == naive(deals, events, snapshots)[1:]


deal_rows = st.lists(
    st.tuples(st.integers(0, 100), st.sampled_from(["won", "lost", None])), min_size=1, max_size=6
)
stage_rows = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 120), st.sampled_from([1.0, 2.0, 3.0, None])),
    max_size=20,
)


def crm(
    deal_spec: list[tuple[int, str | None]], stage_spec: list[tuple[int, int, float | None]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    deals = make_deals(
        [
            {
                "deal_id": f"D{i}",
                "created_at": START,
                "closed_at": None if outcome is None else START + pd.Timedelta(days=close),
                "outcome": outcome,
            }
            for i, (close, outcome) in enumerate(deal_spec)
        ]
    )
    events = make_interactions(
        [
            {
                "deal_id": f"D{deal % len(deal_spec)}",
                "occurred_at": START + pd.Timedelta(days=day, hours=1),
                "type": "stage_change",
                "value": value,
            }
            for deal, day, value in stage_spec
        ]
    )
    return deals, events


@settings(max_examples=80, deadline=None)
@given(deal_rows, stage_rows, stage_rows, st.integers(1, 110), st.data())
def test_outcomes_closes_and_stage_changes_at_or_after_as_of_change_nothing(
    deal_spec: list[tuple[int, str | None]],
    stage_spec: list[tuple[int, int, float | None]],
    later_spec: list[tuple[int, int, float | None]],
    day: int,
    data: st.DataObject,
) -> None:
    deals, events = crm(deal_spec, stage_spec)
    as_of = START + pd.Timedelta(days=day)
    events = events[events["occurred_at"] < as_of]
    snapshots = pd.DataFrame({"deal_id": deals["deal_id"], "as_of": as_of})
    before = compute(deals, events, snapshots)
    np.testing.assert_allclose(before, naive(deals, events, snapshots), rtol=1e-12)

    # The future rewritten: stage changes at or after as_of, and every deal not closed before
    # as_of closed at any later time with any outcome (or left open).
    later = crm(deal_spec, later_spec)[1]
    later = later.assign(occurred_at=later["occurred_at"] + pd.Timedelta(days=day))
    future = ~(deals["closed_at"] < as_of)
    shift = data.draw(st.lists(st.integers(0, 60), min_size=len(deals), max_size=len(deals)))
    outcome = data.draw(
        st.lists(st.sampled_from(["won", "lost", None]), min_size=len(deals), max_size=len(deals))
    )
    new_close = as_of + pd.to_timedelta(shift, unit="D")
    rewritten = deals.assign(
        closed_at=deals["closed_at"].where(~future, new_close.where(pd.notna(outcome))),
        outcome=deals["outcome"].where(~future, pd.Series(outcome, dtype="str")),
    )
    after = compute(rewritten, pd.concat([events, later], ignore_index=True), snapshots)
    np.testing.assert_array_equal(after, before)


def test_the_scored_deals_events_and_every_deals_entries_give_what_all_events_give() -> None:
    """Predict keeps the open deals' events: the closed deals' stage history reaches the
    feature through the entries table alone (as on the Spark engine)."""
    deals, events = small_crm()
    spec = FeatureSpec(event_types=("email",), history_keys=(), stage_history=True)
    snapshots = pd.DataFrame({"deal_id": ["O1"], "as_of": [utc("2024-03-25")]})
    everything = build_features(deals, events, snapshots, spec)
    entries = first_stage_entries(events, spec.stage_event_type)
    own = events[events["deal_id"] == "O1"]
    scored = build_features(deals, own, snapshots, spec, stage_entries=entries)
    pd.testing.assert_frame_equal(scored, everything)
    # Stage 2: W1 and W2 won, L1 lost; overall (2 + 1) / (3 + 2).
    assert everything["stage_win_rate"].iloc[0] == (2 + 20.0 * 3 / 5) / (3 + 20.0)
    without = build_features(deals, own, snapshots, spec)  # the closed deals' history unseen
    assert without["stage_win_rate"].iloc[0] != everything["stage_win_rate"].iloc[0]
