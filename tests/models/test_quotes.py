"""Quotes as a value source: the latest value on a deal's interactions before as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.models.quotes import latest_quotes
from closeprob.models.value import DECLARED, QUOTE, SEGMENT_MEDIAN, DealValueModel, deal_values

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")


def _events(rows: list[tuple[str, str, str, float | None]]) -> pd.DataFrame:
    deal_id, when, kind, value = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "deal_id": list(deal_id),
            "occurred_at": pd.to_datetime(list(when), utc=True),
            "type": list(kind),
            "value": pd.array(list(value), dtype="Float64"),
        }
    )


def _rows(*deal_ids: str) -> pd.DataFrame:
    return pd.DataFrame({"deal_id": list(deal_ids), "as_of": AS_OF})


def test_the_latest_quote_before_as_of_is_the_deals_own_and_never_a_stage_number() -> None:
    events = _events(
        [
            ("D1", "2024-01-10", "proposal_sent", 9_000.0),
            ("D1", "2024-02-10", "proposal_sent", 10_000.0),
            ("D1", "2024-02-20", "stage_change", 3.0),  # a stage number, not money
            ("D1", "2024-02-22", " Stage_Change ", 4.0),  # one too, as the timeline reads types
            ("D1", "2024-02-25", "email_out", None),
            ("D1", "2024-03-01", "proposal_sent", 99_000.0),  # at as_of: not known yet
            ("D2", "2024-02-28", "proposal_sent", 5_000.0),
        ]
    )
    quotes = latest_quotes(events, _rows("D1", "D3", "D2"), "stage_change")
    np.testing.assert_array_equal(quotes, [10_000.0, np.nan, 5_000.0])


def test_data_without_values_or_quotes_give_no_quote() -> None:
    events = _events([("D1", "2024-01-10", "stage_change", 2.0)])
    assert np.isnan(latest_quotes(events, _rows("D1"), "stage_change")).all()
    no_column = events.drop(columns="value")
    assert np.isnan(latest_quotes(no_column, _rows("D1"), "stage_change")).all()


@settings(max_examples=40, deadline=None)
@given(
    days=st.lists(st.integers(-60, 60), min_size=1, max_size=12),
    data=st.data(),
)
def test_events_on_or_after_as_of_change_no_quote(days: list[int], data: st.DataObject) -> None:
    deals = data.draw(
        st.lists(st.sampled_from(["D1", "D2"]), min_size=len(days), max_size=len(days))
    )
    when = [AS_OF + pd.Timedelta(days=d) for d in days]
    events = pd.DataFrame(
        {
            "deal_id": deals,
            "occurred_at": when,
            "type": "proposal_sent",
            "value": [float(1000 + i) for i in range(len(days))],
        }
    )
    known = events[events["occurred_at"] < AS_OF]
    rows = _rows("D1", "D2")
    np.testing.assert_array_equal(
        latest_quotes(events, rows, "stage_change"), latest_quotes(known, rows, "stage_change")
    )


def test_a_declared_amount_beats_a_quote_and_a_quote_beats_the_estimate() -> None:
    model = DealValueModel([], {}, None, None, {}, global_median=7_000.0)
    deals = pd.DataFrame({"amount": [1_234.0, np.nan, np.nan]})
    values = deal_values(deals, model, np.array([5_000.0, 6_000.0, np.nan]))
    assert values["deal_value"].tolist() == [1_234.0, 6_000.0, 7_000.0]
    assert values["value_source"].tolist() == [DECLARED, QUOTE, SEGMENT_MEDIAN]
