"""Account purchase histories: wins closed before `as_of` only, one purchase per day."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.accounts import account_summaries
from tests.conftest import make_deals, utc

AS_OF = utc("2024-03-01")


def _win(deal_id: str, account: str, closed: str, amount: float = 100.0) -> dict[str, object]:
    return {
        "deal_id": deal_id,
        "account_id": account,
        "created_at": "2023-01-01",
        "closed_at": closed,
        "outcome": "won",
        "amount": amount,
    }


def test_an_accounts_wins_become_frequency_recency_age_and_repeat_mean_spend() -> None:
    deals = make_deals(
        [
            _win("D1", "A1", "2024-01-01 10:00", 50.0),
            _win("D2", "A1", "2024-01-11 09:00", 100.0),
            _win("D3", "A1", "2024-01-11 15:00", 20.0),  # same day: one purchase of 120
            _win("D4", "A1", "2024-01-31 00:00", 180.0),
            _win("D5", "A2", "2024-02-20 00:00"),
            {**_win("D6", "A2", "2024-02-25 00:00"), "outcome": "lost"},
            _win("D7", "A3", "2024-03-01 00:00"),  # closed at as_of: not before it
        ]
    )
    summaries = account_summaries(deals, AS_OF)
    assert summaries.index.tolist() == ["A1", "A2"]
    a1 = summaries.loc["A1"]
    assert (a1["frequency"], a1["recency_days"], a1["age_days"]) == (2.0, 30.0, 60.0)
    assert a1["monetary"] == 150.0  # (120 + 180) / 2, the first purchase excluded
    a2 = summaries.loc["A2"]
    assert (a2["frequency"], a2["recency_days"], a2["age_days"]) == (0.0, 0.0, 10.0)
    assert np.isnan(a2["monetary"])


def test_wins_without_an_account_are_left_out() -> None:
    deals = make_deals([{**_win("D1", "A1", "2024-01-01 00:00"), "account_id": None}])
    assert account_summaries(deals, AS_OF).empty


_DAYS = st.integers(-120, 60)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["A1", "A2", "A3"]), _DAYS, st.booleans()), max_size=12),
    st.lists(st.tuples(st.sampled_from(["A1", "A2", "A4"]), st.integers(0, 60)), max_size=6),
)
def test_deals_closed_on_or_after_as_of_change_nothing(past, later) -> None:
    rows = [
        {
            **_win(f"D{i}", account, (AS_OF + pd.Timedelta(days=day)).strftime("%Y-%m-%d %H:%M")),
            "outcome": outcome,
        }
        for i, (account, day, won) in enumerate(past)
        for outcome in ["won" if won else "lost"]
    ]
    before = make_deals(rows) if rows else make_deals([_win("D-", "A9", "2020-01-01 00:00")])
    extra = [
        _win(f"L{i}", account, (AS_OF + pd.Timedelta(days=day)).strftime("%Y-%m-%d %H:%M"))
        for i, (account, day) in enumerate(later)
    ]
    after = pd.concat([before, make_deals(extra)]) if extra else before
    pd.testing.assert_frame_equal(account_summaries(before, AS_OF), account_summaries(after, AS_OF))
