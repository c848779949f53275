"""The vectorised paths of validation against the naive pandas they replace: repeated rows
against `DataFrame.duplicated` (at every time resolution), the Arrow id lookup against `isin`,
typed Parquet columns against the same values written as text, the same-stamp warning against
the commonest count, the id-format check on distinct ids against every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.pipeline.config import DataConfig
from closeprob.pipeline.plausibility import dominant_deals, id_format_mismatch, placeholder_dates
from closeprob.pipeline.validate import (
    Problems,
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


# Times one unit (ns, µs, ms, s) after another, missing ones, and (`far`) times so far apart
# that counting them in nanoseconds would overflow the pair key.
BASE = pd.Timestamp("2024-01-01", tz="UTC")
near_times = st.sampled_from(
    [BASE, pd.NaT]
    + [BASE + pd.Timedelta(1, unit=u) for u in ("ns", "us", "ms", "s")]
    + [BASE - pd.Timedelta(1, unit=u) for u in ("us", "s")]
)
far_times = st.sampled_from([utc("1900-01-01"), utc("2199-12-31"), BASE, pd.NaT])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["D1", "D2", None]), near_times), max_size=25),
    st.lists(st.tuples(st.sampled_from(["D1", "D2"]), far_times), max_size=3),
)
def test_repeated_rows_are_pandas_duplicated_at_every_time_resolution(
    near: list[tuple[object, ...]], far: list[tuple[object, ...]]
) -> None:
    typed = pd.DataFrame(near + far, columns=["deal_id", "occurred_at"])
    typed = typed.astype({"deal_id": "str"}).assign(
        occurred_at=pd.to_datetime(typed["occurred_at"], utc=True).astype("datetime64[ns, UTC]")
    )
    position = pd.factorize(typed["deal_id"])[0].astype(np.int64)
    expected = typed.duplicated(keep="first")
    assert repeated_rows(typed, position).tolist() == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 12), st.integers(40, 200), st.booleans())
def test_the_same_stamp_warning_follows_the_commonest_count(
    repeats: int, rows: int, with_missing: bool
) -> None:
    stamp = utc("2024-03-01 09:00")
    spread = [stamp + pd.Timedelta(seconds=i + 1) for i in range(rows - repeats)]
    times = pd.Series([stamp] * repeats + spread + [pd.NaT] * with_missing)
    times = times.astype("datetime64[ns, UTC]")
    problems = Problems(strict=False)
    placeholder_dates(times, pd.Series(["D1"] * len(times)), "events.csv", "t", problems)
    warns = repeats > 0.05 * rows and repeats > 1
    assert len(problems.warnings) == warns
    if warns:
        assert (
            f"same timestamp '2024-03-01 09:00:00+00:00' on {repeats:,} of {rows:,}"
            in (problems.warnings[0])
        )


def test_padded_ids_of_known_deals_pass_and_number_like_ids_count_every_row() -> None:
    deals = pd.DataFrame({"deal_id": pd.Series(["D1", "7"], dtype="str")})
    padded = pd.DataFrame({"deal_id": [" D1", "D1 ", "7"]})
    problems = Problems(strict=False)
    id_format_mismatch(padded, deals, "events.csv", problems)
    assert problems.errors == []
    zeros = pd.DataFrame({"deal_id": ["007", " D1", "007", "7.0", None]})
    id_format_mismatch(zeros, deals, "events.csv", problems)
    assert len(problems.errors) == 1
    assert "3 interaction deal ids match a deal only after stripping" in problems.errors[0]
    assert "(first: '007' for deal '7')" in problems.errors[0]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from([0, 1, 2, 3, 30, 60]), min_size=4, max_size=4),
    st.sampled_from([0.05, 0.3, 0.5, 0.9]),
    st.booleans(),
)
def test_dominant_deals_counted_by_position_warn_as_counting_the_ids(
    counts: list[int], share: float, unknown: bool
) -> None:
    deals = pd.Series(["D1", "D2", "D3", "D4"], dtype="str")
    events = [f"D{i + 1}" for i, n in enumerate(counts) for _ in range(n)] + ["D9"] * unknown
    ids = pd.Series(events, dtype="str")
    interactions = pd.DataFrame({"deal_id": ids})
    data = DataConfig(deals=Path("d.csv"), interactions=Path("i.csv"), max_deal_event_share=share)
    by_ids, by_position = Problems(strict=False), Problems(strict=False)
    dominant_deals(interactions, data, "events.csv", by_ids)
    dominant_deals(interactions, data, "events.csv", by_position, deal_positions(ids, deals))
    assert by_position.warnings == by_ids.warnings
