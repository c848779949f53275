"""The vectorised paths of validation against the naive pandas they replace: repeated rows
against `DataFrame.duplicated`, the Arrow id lookup against `isin`, typed Parquet columns
against the same values written as text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.pipeline.validate import (
    deal_positions,
    is_known,
    repeated_rows,
    validate_deals,
    validate_interactions,
)
from tests.conftest import utc

ids = st.sampled_from(["D1", "D2", "D3", None])
times = st.sampled_from([utc("2024-01-01"), utc("2024-01-02"), pd.NaT])
kinds = st.sampled_from(["email", "call", None])
rows = st.lists(st.tuples(ids, times, kinds, st.sampled_from([1.0, 2.0, np.nan])), max_size=30)


@settings(max_examples=60, deadline=None)
@given(rows)
def test_repeated_rows_are_exactly_pandas_duplicated(table: list[tuple[object, ...]]) -> None:
    typed = pd.DataFrame(table, columns=["deal_id", "occurred_at", "type", "value"])
    typed = typed.astype({"deal_id": "str", "type": "str"}).assign(
        occurred_at=pd.to_datetime(typed["occurred_at"], utc=True)
    )
    position = pd.factorize(typed["deal_id"])[0].astype(np.int64)
    expected = typed.duplicated(keep="first")
    assert repeated_rows(typed, position).tolist() == expected.tolist()
    # Deal codes so large that one integer key per (deal, time) would overflow.
    assert repeated_rows(typed, position + 2**61).tolist() == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(ids, max_size=20), st.lists(ids, max_size=10))
def test_known_ids_are_exactly_isin_and_positions_find_the_first_match(
    events: list[str | None], deals: list[str | None]
) -> None:
    event_ids, deal_ids = pd.Series(events, dtype="str"), pd.Series(deals, dtype="str")
    expected = event_ids.notna() & event_ids.isin(deal_ids.dropna())
    assert is_known(event_ids, deal_ids).tolist() == expected.tolist()
    position = deal_positions(event_ids, deal_ids.dropna().reset_index(drop=True))
    for found, deal in zip(position, event_ids, strict=True):
        listed = deal_ids.dropna().tolist()
        assert found == (listed.index(deal) if isinstance(deal, str) and deal in listed else -1)


def test_typed_parquet_columns_validate_as_the_same_values_written_as_text() -> None:
    deals = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3"],
            "created_at": [utc("2024-01-01"), utc("2024-01-01"), pd.NaT],
            "closed_at": [utc("2024-02-01"), pd.NaT, pd.NaT],
            "outcome": ["won", "lost", None],
            "amount": [10.0, np.nan, 5.0],
        }
    )
    as_text = deals.astype({"created_at": "str", "closed_at": "str", "amount": "str"})
    messages = []
    for frame in (deals, as_text):
        try:
            validate_deals(frame, "deals.csv")
        except ValueError as exc:
            messages.append(str(exc))
    assert len(messages) == 2 and messages[0] == messages[1]
    assert "column 'created_at' is empty in 1 row (first deal_id: 'D3')" in messages[0]


def test_an_outcome_on_an_open_parquet_deal_is_refused() -> None:
    deals = pd.DataFrame(
        {
            "deal_id": ["D1"],
            "created_at": [utc("2024-01-01")],
            "closed_at": pd.Series([pd.NaT], dtype="datetime64[ns, UTC]"),
            "outcome": ["won"],
        }
    )
    try:
        validate_deals(deals, "deals.parquet")
    except ValueError as exc:
        assert "is set on an open deal" in str(exc)
    else:
        raise AssertionError("an outcome on an open deal passed")


def test_dropped_unknown_and_repeated_interactions_leave_one_copy_of_the_rest() -> None:
    events = pd.DataFrame(
        {
            "deal_id": ["D1", "D9", "D1", "D2"],
            "occurred_at": [utc("2024-01-02")] * 4,
            "type": ["email", "email", "email", "call"],
        }
    )
    with pytest.warns(UserWarning) as caught:
        typed = validate_interactions(
            events, "events.csv", pd.Series(["D1", "D2"]), "drop", duplicates="drop"
        )
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "events.csv: dropped 1 interactions of deals missing from the deals table",
        "events.csv: dropped 1 rows that repeat an earlier row in every column",
    ]
    assert typed["deal_id"].tolist() == ["D1", "D2"]
    assert typed.index.tolist() == [0, 1]
