"""The queue's invariants: monotone ranking, one row per deal, ABC shares, capacity, reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.models.ranker import (
    apply_capacity,
    assign_tiers,
    compare_with_previous,
    format_value,
    rank_deals,
    read_deals,
    reason_codes,
    urgency_factor,
)

probability = st.floats(min_value=0.0, max_value=1.0)
money = st.floats(min_value=0.0, max_value=1e7)
deals_strategy = st.lists(st.tuples(probability, money), min_size=1, max_size=30)


def _scored(rows: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": [f"D{i:03d}" for i in range(len(rows))],
            "p_close": [p for p, _ in rows],
            "deal_value": [v for _, v in rows],
        }
    )


def _rank_of(queue: pd.DataFrame, deal_id: str) -> int:
    return int(queue.loc[queue["deal_id"] == deal_id, "rank"].iloc[0])


@settings(max_examples=100, deadline=None)
@given(rows=deals_strategy, which=st.integers(0, 29), bump=st.floats(0.0, 1.0))
def test_raising_a_deals_probability_never_lowers_its_place(rows, which, bump) -> None:
    which %= len(rows)
    scored = _scored(rows)
    raised = scored.copy()
    raised.loc[which, "p_close"] = min(1.0, scored.loc[which, "p_close"] + bump)
    deal = scored.loc[which, "deal_id"]
    assert _rank_of(rank_deals(raised), deal) <= _rank_of(rank_deals(scored), deal)


@settings(max_examples=100, deadline=None)
@given(rows=deals_strategy, which=st.integers(0, 29), bump=st.floats(0.0, 1e6))
def test_raising_a_deals_value_never_lowers_its_place(rows, which, bump) -> None:
    which %= len(rows)
    scored = _scored(rows)
    raised = scored.copy()
    raised.loc[which, "deal_value"] = scored.loc[which, "deal_value"] + bump
    deal = scored.loc[which, "deal_id"]
    assert _rank_of(rank_deals(raised), deal) <= _rank_of(rank_deals(scored), deal)


@settings(max_examples=100, deadline=None)
@given(rows=deals_strategy)
def test_every_deal_appears_once_with_ranks_one_to_n(rows) -> None:
    queue = rank_deals(_scored(rows))
    assert sorted(queue["deal_id"]) == sorted(_scored(rows)["deal_id"])
    assert queue["rank"].tolist() == list(range(1, len(rows) + 1))
    assert (np.diff(queue["expected_value"].to_numpy()) <= 0).all()


def test_ties_break_by_probability_then_deal_id() -> None:
    scored = pd.DataFrame(
        {
            "deal_id": ["D3", "D1", "D2"],
            "p_close": [0.5, 0.25, 0.5],
            "deal_value": [100.0, 200.0, 100.0],
        }
    )
    assert rank_deals(scored)["deal_id"].tolist() == ["D2", "D3", "D1"]


def test_without_any_values_deals_rank_by_probability() -> None:
    scored = pd.DataFrame(
        {"deal_id": ["D1", "D2"], "p_close": [0.2, 0.9], "deal_value": [np.nan, np.nan]}
    )
    assert rank_deals(scored)["deal_id"].tolist() == ["D2", "D1"]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.one_of(st.just(0.0), st.floats(0.01, 1e6)), min_size=1, max_size=50),
    a=st.floats(0.05, 0.9),
)
def test_tier_a_is_the_shortest_prefix_reaching_the_a_share(values, a) -> None:
    ordered = np.sort(np.asarray(values))[::-1]
    b = (1 - a) / 2
    tiers = assign_tiers(ordered, a, b)
    total = ordered.sum()
    if total == 0:
        assert (tiers == "C").all()
        return
    in_a = ordered[tiers == "A"]
    assert tiers[0] == "A"
    assert in_a.sum() >= a * total - 1e-9 * total
    assert in_a.sum() - in_a[-1] < a * total + 1e-9 * total
    # tiers never go back up along the queue
    assert list(tiers) == sorted(tiers)


def test_capacity_keeps_only_each_owners_top_deals_in_a() -> None:
    tiers = np.array(["A", "A", "A", "A", "B", "C"], dtype=object)
    owners = pd.Series(["U1", "U1", "U2", "U1", "U1", "U2"])
    capped = apply_capacity(tiers, owners, per_owner=2)
    assert capped.tolist() == ["A", "A", "A", "B", "B", "C"]
    assert pd.Series(capped == "A").groupby(owners).sum().max() <= 2


def test_urgency_halves_value_per_half_life_of_silence_beyond_grace() -> None:
    factor = urgency_factor(np.array([0.0, 14.0, 44.0, np.nan]), grace_days=14, half_life_days=30)
    assert factor.tolist() == pytest.approx([1.0, 1.0, 0.5, 1.0])


def test_reason_codes_name_the_strongest_pushes_with_values() -> None:
    descriptions = {
        "days_quiet": "days since the customer last reached out",
        "stage": "current stage",
        "age": "deal age",
    }
    features = pd.DataFrame({"days_quiet": [41.0], "stage": [3.0], "age": [12.5]})
    contributions = np.array([[-0.8, 0.5, 0.0, -1.2]])  # last column: bias, ignored
    up, down = reason_codes(contributions, features, descriptions, top=3)
    assert list(up) == ["current stage: 3"]
    assert list(down) == ["days since the customer last reached out: 41"]


def _naive_reasons(
    effects: np.ndarray, values: np.ndarray, descriptions: dict[str, str], top: int
) -> tuple[list[str], list[str]]:
    """One row at a time: the strongest `top` positive and negative pushes, described."""
    names = list(descriptions)
    up, down = [], []
    for row in range(len(effects)):
        order = sorted(range(len(names)), key=lambda i: -effects[row, i])  # stable
        ups = [i for i in order[:top] if effects[row, i] > 0]
        downs = [i for i in order[::-1][:top] if effects[row, i] < 0]
        text = [f"{descriptions[names[i]]}: {format_value(values[row][i])}" for i in ups]
        up.append("; ".join(text))
        text = [f"{descriptions[names[i]]}: {format_value(values[row][i])}" for i in downs]
        down.append("; ".join(text))
    return up, down


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from([-1.5, -0.2, 0.0, 0.2, 0.7, 1.5]), min_size=4, max_size=4),
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
            st.one_of(st.none(), st.sampled_from(["web", "referral"])),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(min_value=0, max_value=4),
)
def test_vectorised_reasons_equal_a_row_by_row_loop(
    rows: list[tuple[list[float], float | None, str | None]], top: int
) -> None:
    descriptions = {"days": "days quiet", "amount": "amount", "source": "source", "n": "calls"}
    features = pd.DataFrame(
        {
            "days": [np.nan if amount is None else amount / 7 for _, amount, _ in rows],
            "amount": [np.nan if amount is None else amount for _, amount, _ in rows],
            "source": pd.Series([source for _, _, source in rows], dtype="str"),
            "n": [float(i % 3) for i in range(len(rows))],
        }
    )
    effects = np.array([e for e, _, _ in rows])
    contributions = np.column_stack([effects, np.ones(len(rows))])
    up, down = reason_codes(contributions, features, descriptions, top)
    values = features.astype(object).to_numpy()
    expected_up, expected_down = _naive_reasons(effects, values, descriptions, top)
    assert list(up) == expected_up
    assert list(down) == expected_down


def test_values_are_formatted_for_people() -> None:
    assert [format_value(v) for v in (41.0, 12500.0, 0.3456, 2.75, np.nan, "referral")] == [
        "41",
        "12,500",
        "0.35",
        "2.8",
        "none",
        "referral",
    ]


def test_changes_against_the_previous_queue() -> None:
    queue = pd.DataFrame(
        {"deal_id": ["D1", "D2", "D3"], "p_close": [0.5, 0.2, 0.1], "tier": ["A", "B", "C"]}
    )
    previous = pd.DataFrame({"deal_id": ["D1", "D2"], "p_close": [0.4, 0.2], "tier": ["B", "B"]})
    changed = compare_with_previous(queue, previous)
    assert changed["tier_change"].tolist() == ["B→A", "", "new"]
    assert changed["p_close_change"].iloc[:2].tolist() == pytest.approx([0.1, 0.0])
    assert np.isnan(changed["p_close_change"].iloc[2])


def test_the_deals_read_are_each_owners_first_deals_and_the_top_share_of_the_queue() -> None:
    owners = pd.Series(["U1", "U1", "U2", "U1", None, "U2", "U1", None, "U2", "U2"])
    read = read_deals(owners, per_owner=2, top_share=0.2)
    # top 20 %: rows 0-1; U1's first two: 0, 1; U2's first two: 2, 5; no owner: top share only
    assert np.flatnonzero(read).tolist() == [0, 1, 2, 5]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["U1", "U2", "U3"])), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=5),
    st.floats(min_value=0.01, max_value=1.0),
)
def test_read_deals_equal_a_row_by_row_count(
    owners: list[str | None], per_owner: int, share: float
) -> None:
    read = read_deals(pd.Series(owners, dtype=object), per_owner, share)
    seen: dict[str, int] = {}
    top = max(1, math.ceil(share * len(owners)))
    for position, owner in enumerate(owners):
        mine = owner is not None and seen.get(owner, 0) < per_owner
        if owner is not None:
            seen[owner] = seen.get(owner, 0) + 1
        assert read[position] == (position < top or mine)


def test_rank_change_counts_the_places_a_deal_moved_up() -> None:
    queue = pd.DataFrame(
        {"rank": [1, 2, 3], "deal_id": ["D2", "D1", "D3"], "p_close": [0.5, 0.4, 0.1],
         "tier": ["A", "B", "C"]}
    )  # fmt: skip
    previous = pd.DataFrame(
        {"rank": [1, 2], "deal_id": ["D1", "D2"], "p_close": [0.5, 0.4], "tier": ["A", "B"]}
    )
    moved = compare_with_previous(queue, previous)["rank_change"]
    assert moved.iloc[:2].tolist() == [1, -1] and moved.isna().iloc[2]
