"""The backtest trains only on what was known at each as_of."""

from __future__ import annotations

import pandas as pd

from closeprob.pipeline.backtest import known_at, tier_churn
from closeprob.pipeline.dataset import Dataset
from tests.conftest import make_deals, make_interactions, utc


def test_known_at_hides_later_closes_outcomes_deals_and_events() -> None:
    deals = make_deals(
        [
            {
                "deal_id": "D1",
                "created_at": "2024-01-01",
                "closed_at": "2024-02-01",
                "outcome": "won",
            },
            {
                "deal_id": "D2",
                "created_at": "2024-01-05",
                "closed_at": "2024-04-01",
                "outcome": "lost",
            },
            {"deal_id": "D3", "created_at": "2024-03-05"},
        ]
    )
    events = make_interactions(
        [
            {"deal_id": "D2", "occurred_at": "2024-02-10", "type": "call"},
            {"deal_id": "D2", "occurred_at": "2024-03-01", "type": "call"},
        ]
    )
    past = known_at(Dataset(deals, events, None), utc("2024-03-01"))
    assert past.deals["deal_id"].tolist() == ["D1", "D2"]
    assert past.deals["outcome"].tolist()[0] == "won"
    assert pd.isna(past.deals["outcome"].iloc[1]) and pd.isna(past.deals["closed_at"].iloc[1])
    assert past.interactions["occurred_at"].tolist() == [utc("2024-02-10")]
    assert past.truth is None


def test_tier_churn_counts_changes_among_deals_in_both_weeks() -> None:
    before = pd.Series({"D1": "A", "D2": "B", "D3": "C"})
    after = pd.Series({"D1": "A", "D2": "A", "D4": "C"})
    assert tier_churn(before, after) == 0.5
