"""One point-in-time rule (features/point_in_time.py), and every module that draws the line
agrees with it: snapshots, labels, owner/account history, the market level, the data as they
stood at a date. Whole-day times put closes and events exactly on snapshot dates and horizon
ends, where the modules used to disagree."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.market import open_deal_counts, window_touch_counts
from closeprob.features.point_in_time import (
    closed_by,
    first_date_after,
    known_before,
    open_at,
    won_within,
)
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.core import Dataset
from closeprob.pipeline.dataset import known_at, rows_after
from tests.conftest import make_deals, make_interactions, utc

AS_OF = utc("2024-03-01")
HORIZON = 30


def boundary_deals() -> pd.DataFrame:
    end = AS_OF + pd.Timedelta(days=HORIZON)
    return make_deals(
        [
            {"deal_id": "AT", "created_at": "2024-01-01", "closed_at": AS_OF, "outcome": "won"},
            {"deal_id": "END", "created_at": "2024-01-01", "closed_at": end, "outcome": "won"},
            {"deal_id": "BORN", "created_at": AS_OF},
            {
                "deal_id": "BEFORE",
                "created_at": "2024-01-01",
                "closed_at": AS_OF - pd.Timedelta(seconds=1),
                "outcome": "won",
            },
        ]
    )


def test_a_deal_closed_exactly_at_as_of_is_open_then_and_its_win_is_labelled() -> None:
    deals = boundary_deals()
    is_open = open_at(deals["created_at"], deals["closed_at"], AS_OF)
    assert dict(zip(deals["deal_id"], is_open, strict=True)) == {
        "AT": True,
        "END": True,
        "BORN": False,
        "BEFORE": False,
    }
    rows = open_deal_snapshots(deals, pd.DatetimeIndex([AS_OF]))
    assert sorted(rows["deal_id"]) == ["AT", "END"]
    assert label_outcomes(deals, rows, HORIZON).tolist() == [1, 0]  # AT inside, END outside


def test_an_event_exactly_at_as_of_is_not_known_then() -> None:
    times = pd.Series([AS_OF - pd.Timedelta(seconds=1), AS_OF, pd.NaT], dtype="datetime64[ns, UTC]")
    assert known_before(times, AS_OF).tolist() == [True, False, False]
    assert closed_by(times, AS_OF).tolist() == [True, False, False]


def test_a_win_exactly_at_the_horizon_end_is_outside_the_window() -> None:
    end = AS_OF + pd.Timedelta(days=HORIZON)
    closed = pd.Series([AS_OF, end - pd.Timedelta(seconds=1), end], dtype="datetime64[ns, UTC]")
    won = won_within(pd.Series(["won"] * 3), closed, AS_OF, HORIZON)
    assert won.tolist() == [True, True, False]


def test_the_data_as_of_a_date_keep_a_close_at_that_date_open_and_name_it_as_later() -> None:
    deals = boundary_deals()
    events = make_interactions(
        [
            {"deal_id": "AT", "occurred_at": AS_OF, "type": "email"},
            {"deal_id": "AT", "occurred_at": AS_OF - pd.Timedelta(days=1), "type": "email"},
        ]
    )
    dataset = Dataset(deals=deals, interactions=events, truth=None)
    past = known_at(dataset, AS_OF)
    by_id = past.deals.set_index("deal_id")
    assert pd.isna(by_id.loc["AT", "closed_at"]) and pd.isna(by_id.loc["AT", "outcome"])
    assert by_id.loc["BEFORE", "outcome"] == "won"
    assert "BORN" not in by_id.index
    assert len(past.interactions) == 1
    later = rows_after(dataset, AS_OF) or ""
    assert "1 deals created" in later and "2 closes" in later and "1 interactions" in later


WHOLE_DAYS = st.integers(min_value=0, max_value=12)


@settings(max_examples=60, deadline=None)
@given(
    lives=st.lists(
        st.tuples(WHOLE_DAYS, st.one_of(st.none(), WHOLE_DAYS), st.booleans(), st.booleans()),
        min_size=1,
        max_size=10,
    ),
    event_days=st.lists(st.tuples(st.integers(0, 9), WHOLE_DAYS), max_size=25),
)
def test_snapshots_history_and_market_agree_with_the_rule_on_every_boundary(
    lives: list[tuple[int, int | None, bool, bool]], event_days: list[tuple[int, int]]
) -> None:
    """Per as_of: the snapshot rows are the deals open_at it; the market's open-deal count is
    their number; each row's owner_open_deals is the other open deals of its owner; its
    owner_closed_deals the owner's deals closed_by as_of; the market's window counts only
    events known_before as_of of open deals."""
    start = utc("2024-01-01")
    deals = make_deals(
        [
            {
                "deal_id": f"D{i}",
                "created_at": start + pd.Timedelta(days=created),
                "closed_at": None if life is None else start + pd.Timedelta(days=created + life),
                "outcome": None if life is None else ("won" if won else "lost"),
                "owner_id": "U1" if first_owner else "U2",
            }
            for i, (created, life, won, first_owner) in enumerate(lives)
        ]
    )
    events = make_interactions(
        [
            {"deal_id": f"D{deal % len(lives)}", "occurred_at": start + pd.Timedelta(days=day)}
            | {"type": "email"}
            for deal, day in event_days
        ]
    )
    dates = pd.date_range(start, periods=14, freq="D", tz="UTC")
    rows = open_deal_snapshots(deals, dates)
    opens = {d: open_at(deals["created_at"], deals["closed_at"], d) for d in dates}
    expected = sorted((i, d) for d in dates for i in deals["deal_id"][opens[d]])
    assert sorted(zip(rows["deal_id"], rows["as_of"], strict=True)) == expected
    assert open_deal_counts(deals, dates).tolist() == [int(opens[d].sum()) for d in dates]
    touches = window_touch_counts(deals, events, dates, 3)
    per_date = (touches["touches"] * touches["deals"]).groupby(touches["position"]).sum()
    window = per_date.reindex(range(len(dates)), fill_value=0).tolist()
    for k, d in enumerate(dates):
        seen = events[known_before(events["occurred_at"], d)]
        seen = seen[seen["occurred_at"] >= d - pd.Timedelta(days=3)]
        open_ids = set(deals["deal_id"][opens[d]])
        assert window[k] == int(seen["deal_id"].isin(open_ids).sum())
    if rows.empty:
        return
    spec = FeatureSpec(event_types=("email",), windows_days=(7,), history_keys=("owner_id",))
    features = build_features(deals, events, rows, spec)
    owners = deals.set_index("deal_id")["owner_id"]
    for row in features.itertuples(index=False):
        mine = deals["owner_id"] == owners[row.deal_id]
        others_open = (mine & opens[row.as_of]).sum() - 1
        assert row.owner_open_deals == others_open
        assert row.owner_closed_deals == (mine & closed_by(deals["closed_at"], row.as_of)).sum()


def test_the_sorted_search_is_right_with_missing_closes_between_real_ones() -> None:
    """NaT among the closes once made numpy's object search reuse corrupt bounds: deals got
    snapshot rows after their close (a leak: test ROC-AUC above the true probabilities')."""
    dates = pd.date_range("2024-01-01", periods=6, freq="7D", tz="UTC")
    closes = pd.DatetimeIndex(
        ["2024-01-20", None, "2024-01-02", None, "2024-02-01", "2024-01-08"], tz="UTC"
    )
    expected = [sum(c < d for d in dates) for c in closes]  # dates strictly after each close
    got = first_date_after(dates, closes)
    assert [len(dates) - g for g, c in zip(got, closes, strict=True) if pd.notna(c)] == [
        e for e, c in zip(expected, closes, strict=True) if pd.notna(c)
    ]
