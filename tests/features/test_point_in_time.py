"""Features at `as_of` see only the past: property tests and a naive reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.labels import label_outcomes
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.synthetic import generate_crm
from tests.conftest import make_deals, make_interactions, utc

AS_OF = utc("2024-03-01")
TYPES = ("email", "call", "meeting", "stage_change")
SPEC = FeatureSpec(event_types=TYPES, windows_days=(7, 30, 90), attributes=("source",))
WITH_MARKET = FeatureSpec(
    event_types=TYPES, windows_days=(7, 30, 90), attributes=("source",), market_window_days=30
)

DEALS = make_deals(
    [
        {
            "deal_id": "D1",
            "created_at": "2023-12-01",
            "amount": 1000.0,
            "source": "web",
            "owner_id": "U1",
        },
        {
            "deal_id": "D2",
            "created_at": "2024-01-15",
            "source": "referral",
            "owner_id": "U1",
            "account_id": "A2",
        },
        {
            "deal_id": "D3",
            "created_at": "2023-10-01",
            "closed_at": "2024-01-10",
            "outcome": "won",
            "amount": 500.0,
            "source": "web",
            "owner_id": "U1",
        },
        {
            "deal_id": "D4",
            "created_at": "2023-09-01",
            "closed_at": "2024-04-10",
            "outcome": "lost",
            "source": "web",
            "owner_id": "U2",
        },
        {
            "deal_id": "D5",
            "created_at": "2023-11-01",
            "closed_at": "2024-02-01",
            "outcome": "lost",
            "source": "event",
            "owner_id": "U2",
            "account_id": "A2",
        },
    ]
)
SNAPSHOTS = pd.DataFrame({"deal_id": ["D1", "D2", "D4"], "as_of": [AS_OF] * 3})


def event_strategy(min_offset: int, max_offset: int) -> st.SearchStrategy[dict[str, object]]:
    """Events for deals D1..D5 at `as_of` + offset seconds, offset in [min_offset, max_offset]."""
    return st.fixed_dictionaries(
        {
            "deal_id": st.sampled_from(["D1", "D2", "D3", "D4", "D5"]),
            "offset_seconds": st.integers(min_value=min_offset, max_value=max_offset),
            "type": st.sampled_from([*TYPES, "web_visit"]),
            "direction": st.sampled_from(["inbound", "outbound", None]),
            "channel": st.sampled_from(["email", "phone", None]),
            "value": st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
        }
    )


PAST = event_strategy(-200 * 86_400, -1)
LATER = event_strategy(0, 60 * 86_400)


def _events(rows: list[dict[str, object]]) -> pd.DataFrame:
    return make_interactions(
        [
            {
                "deal_id": r["deal_id"],
                "occurred_at": AS_OF + pd.Timedelta(seconds=int(r["offset_seconds"])),
                "type": r["type"],
                "direction": r["direction"],
                "channel": r["channel"],
                "value": float("nan") if r["value"] is None else r["value"],
            }
            for r in rows
        ]
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    past=st.lists(PAST, max_size=25),
    future=st.lists(LATER, max_size=25),
    changed=st.lists(LATER, max_size=25),
)
def test_events_at_or_after_as_of_change_no_feature(
    past: list, future: list, changed: list
) -> None:
    """Adding events at/after `as_of`, or replacing them wholesale, leaves every feature
    unchanged."""
    baseline = _events(past + future)
    altered = _events(past + changed + [dict(r, offset_seconds=0) for r in changed[:3]])
    expected = build_features(DEALS, baseline, SNAPSHOTS, WITH_MARKET)
    actual = build_features(DEALS, altered, SNAPSHOTS, WITH_MARKET)
    pd.testing.assert_frame_equal(actual, expected)


@settings(max_examples=30, deadline=None)
@given(
    outcome=st.sampled_from(["won", "lost"]),
    close_offset_days=st.integers(min_value=0, max_value=120),
    amount=st.floats(min_value=0, max_value=1e7),
)
def test_deals_closing_at_or_after_as_of_do_not_move_history(
    outcome: str, close_offset_days: int, amount: float
) -> None:
    """Owner/account track records use only deals closed strictly before `as_of`."""
    events = _events(
        [
            {
                "deal_id": "D1",
                "offset_seconds": -86_400,
                "type": "email",
                "direction": "inbound",
                "channel": "email",
                "value": None,
            }
        ]
    )
    deals = DEALS.copy()
    deals.loc[deals["deal_id"] == "D4", ["closed_at", "outcome", "amount"]] = [
        AS_OF + pd.Timedelta(days=close_offset_days),
        outcome,
        amount,
    ]
    expected = build_features(DEALS, events, SNAPSHOTS.iloc[:2], SPEC)
    actual = build_features(deals, events, SNAPSHOTS.iloc[:2], SPEC)
    pd.testing.assert_frame_equal(actual, expected)


@pytest.mark.parametrize("spec", [SPEC, WITH_MARKET], ids=["without market", "with market"])
def test_every_built_column_has_a_registry_description(spec: FeatureSpec) -> None:
    built = build_features(DEALS, _events([]), SNAPSHOTS, spec)
    assert list(built.columns[2:]) == list(feature_descriptions(spec))
    assert all(text.strip() for text in feature_descriptions(spec).values())


def test_an_event_exactly_at_as_of_is_not_seen() -> None:
    events = _events(
        [
            {
                "deal_id": "D1",
                "offset_seconds": 0,
                "type": "email",
                "direction": "inbound",
                "channel": "email",
                "value": None,
            }
        ]
    )
    row = build_features(DEALS, events, SNAPSHOTS.iloc[:1], SPEC).iloc[0]
    assert row["touches_total"] == 0
    assert np.isnan(row["days_since_last_touch"])


def test_history_win_rate_is_smoothed_toward_the_global_rate() -> None:
    """U1 has one won deal (D3) before as_of; globally 1 won of 2 closed (D3 won, D5 lost)."""
    row = build_features(DEALS, _events([]), SNAPSHOTS.iloc[:1], SPEC).iloc[0]
    global_rate = (1 + 1) / (2 + 2)
    assert row["owner_win_rate"] == pytest.approx((1 + 20 * global_rate) / (1 + 20))
    assert row["owner_closed_deals"] == 1
    assert row["owner_avg_won_value"] == 500.0
    assert row["owner_open_deals"] == 1  # D2 is U1's other open deal


# --- the fast implementation against a naive one, on a small generated CRM -------------------


def _naive_row(
    deal: pd.Series, events: pd.DataFrame, as_of: pd.Timestamp, spec: FeatureSpec
) -> dict[str, float]:
    past = events[(events["deal_id"] == deal["deal_id"]) & (events["occurred_at"] < as_of)]

    def days_since(frame: pd.DataFrame) -> float:
        return (
            (as_of - frame["occurred_at"].max()).total_seconds() / 86_400 if len(frame) else np.nan
        )

    row = {
        "deal_age_days": (as_of - deal["created_at"]).total_seconds() / 86_400,
        "touches_total": float(len(past)),
        "days_since_last_touch": days_since(past),
        "days_since_last_inbound": days_since(past[past["direction"] == "inbound"]),
        "distinct_types_total": float(past["type"].nunique()),
        "distinct_channels_total": float(past["channel"].nunique()),
    }
    for days in spec.windows_days:
        window = past[past["occurred_at"] >= as_of - pd.Timedelta(days=days)]
        row[f"touches_{days}d"] = float(len(window))
        for event_type in spec.event_types:
            row[f"n_{event_type}_{days}d"] = float((window["type"] == event_type).sum())
    recent = past[past["occurred_at"] >= as_of - pd.Timedelta(days=30)]
    row["distinct_types_30d"] = float(recent["type"].nunique())
    stages = past[past["type"] == spec.stage_event_type]
    row["current_stage"] = (
        stages.sort_values("occurred_at")["value"].iloc[-1] if len(stages) else np.nan
    )
    return row


@pytest.mark.parametrize("selected", ["all types", "one type"])
def test_fast_features_equal_a_naive_per_snapshot_filter(selected: str) -> None:
    """With one type selected out of several, distinct_types_30d still counts every type."""
    crm = generate_crm(n_deals=150, n_interactions=3_000, start="2023-01-01", days=200, seed=7)
    events = crm.interactions.assign(occurred_at=crm.interactions["occurred_at"].dt.floor("s"))
    dates = pd.date_range("2023-02-01", periods=8, freq="14D", tz="UTC")
    snapshots = open_deal_snapshots(crm.deals, dates)
    types = tuple(sorted(events["type"].unique()))
    assert len(types) >= 3
    spec = FeatureSpec(event_types=types if selected == "all types" else types[:1], attributes=())
    fast = build_features(crm.deals, events, snapshots, spec)
    deals = crm.deals.set_index("deal_id", drop=False)
    naive = pd.DataFrame(
        [_naive_row(deals.loc[r.deal_id], events, r.as_of, spec) for r in snapshots.itertuples()]
    )
    pd.testing.assert_frame_equal(fast[naive.columns], naive, check_exact=False, rtol=1e-9)


def test_open_deal_snapshots_list_each_open_deal_once_per_date() -> None:
    dates = pd.DatetimeIndex([utc("2024-01-01"), utc("2024-02-01"), utc("2024-03-01")])
    rows = open_deal_snapshots(DEALS, dates)
    expected = []
    for as_of in dates:
        open_now = DEALS[(DEALS["created_at"] < as_of) & ~(DEALS["closed_at"] < as_of)]
        expected += [(d, as_of) for d in open_now["deal_id"]]
    assert sorted(zip(rows["deal_id"], rows["as_of"], strict=True)) == sorted(expected)
    assert not rows.duplicated().any()


def _naive_history(
    deals: pd.DataFrame, deal_id: str, as_of: pd.Timestamp, key: str, prior_strength: float
) -> dict[str, float]:
    """The track record of the deal's `key`, spelled out with a filter per snapshot row."""
    who = {"owner_id": "owner", "account_id": "account"}[key]
    names = [f"{who}_win_rate", f"{who}_closed_deals", f"{who}_avg_won_value", f"{who}_open_deals"]
    entity = deals.loc[deals["deal_id"] == deal_id, key].iloc[0]
    if pd.isna(entity):
        return dict.fromkeys(names, np.nan)
    closed = deals[(deals["closed_at"] < as_of) & deals["outcome"].notna()]
    global_rate = ((closed["outcome"] == "won").sum() + 1.0) / (len(closed) + 2.0)
    mine = closed[closed[key] == entity]
    won = mine[mine["outcome"] == "won"]
    valued = won["amount"].dropna()
    created = deals[(deals["created_at"] < as_of) & (deals[key] == entity)]
    return {
        names[0]: (len(won) + prior_strength * global_rate) / (len(mine) + prior_strength),
        names[1]: float(len(mine)),
        names[2]: float(valued.mean()) if len(valued) else np.nan,
        names[3]: float(len(created) - len(mine) - 1),
    }


def test_history_features_equal_a_naive_per_snapshot_filter() -> None:
    """Owner and account track records against a filter of the deals table per snapshot row,
    on a CRM where owners and accounts have many deals closing between snapshots."""
    crm = generate_crm(n_deals=300, n_interactions=2_000, start="2023-01-01", days=300, seed=11)
    deals = crm.deals.copy()
    # Some deals without an account (NaN rows) and some closes exactly on a snapshot date.
    deals.loc[deals.index[::17], "account_id"] = None
    dates = pd.date_range("2023-03-01", periods=10, freq="21D", tz="UTC")
    closed = deals["closed_at"].notna()
    on_date = deals.index[closed][::9]
    deals.loc[on_date, "closed_at"] = [
        dates[dates.searchsorted(t) % len(dates)] for t in deals.loc[on_date, "closed_at"]
    ]
    deals["closed_at"] = deals[["closed_at", "created_at"]].max(axis=1).where(closed)
    snapshots = open_deal_snapshots(deals, dates)
    spec = FeatureSpec(event_types=(), attributes=(), prior_strength=7.0)
    fast = build_features(deals, crm.interactions, snapshots, spec)
    naive = pd.DataFrame(
        [
            _naive_history(deals, r.deal_id, r.as_of, "owner_id", 7.0)
            | _naive_history(deals, r.deal_id, r.as_of, "account_id", 7.0)
            for r in snapshots.itertuples()
        ]
    )
    assert naive["account_win_rate"].isna().any() and (naive["owner_closed_deals"] > 3).any()
    pd.testing.assert_frame_equal(fast[naive.columns], naive, check_exact=False, rtol=1e-9)


def test_a_snapshot_row_whose_deal_is_not_in_deals_is_refused() -> None:
    """It used to take the last deal's data (code −1 used as an index)."""
    snapshots = pd.DataFrame({"deal_id": ["D1", "D9", "D9"], "as_of": [AS_OF] * 3})
    with pytest.raises(
        ValueError,
        match=r"snapshots: 2 row\(s\) have a deal_id not in the deals table \(first: \['D9'\]\)",
    ):
        build_features(DEALS, _events([]), snapshots, SPEC)


def test_the_label_window_is_closed_at_as_of_and_open_at_the_horizon() -> None:
    """[as_of, as_of + horizon): a win exactly at as_of is inside (the deal is still open then,
    so it has a snapshot row), one exactly at the horizon outside."""
    horizon = 30
    end = AS_OF + pd.Timedelta(days=horizon)
    deals = make_deals(
        [
            {"deal_id": "AT", "created_at": "2024-01-01", "closed_at": AS_OF, "outcome": "won"},
            {"deal_id": "END", "created_at": "2024-01-01", "closed_at": end, "outcome": "won"},
            {
                "deal_id": "AFTER",
                "created_at": "2024-01-01",
                "closed_at": end + pd.Timedelta(seconds=1),
                "outcome": "won",
            },
            {
                "deal_id": "JUST",
                "created_at": "2024-01-01",
                "closed_at": AS_OF + pd.Timedelta(seconds=1),
                "outcome": "won",
            },
        ]
    )
    rows = open_deal_snapshots(deals, pd.DatetimeIndex([AS_OF]))
    assert sorted(rows["deal_id"]) == ["AFTER", "AT", "END", "JUST"]
    every = pd.DataFrame({"deal_id": ["AT", "END", "AFTER", "JUST"], "as_of": [AS_OF] * 4})
    assert label_outcomes(deals, every, horizon).tolist() == [1, 0, 0, 1]


DAY_STEPS = st.integers(min_value=-20, max_value=20)


@settings(max_examples=80, deadline=None)
@given(
    deals=st.lists(
        st.tuples(DAY_STEPS, st.one_of(st.none(), st.integers(0, 40)), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    horizon=st.integers(min_value=1, max_value=15),
)
def test_every_snapshot_row_is_open_and_labelled_on_the_half_open_window(
    deals: list[tuple[int, int | None, bool]], horizon: int
) -> None:
    """Whole-day times, so closes land exactly on snapshot dates and horizon ends often: a row
    exists iff created < as_of <= closed (or still open), and its label is a win in
    [as_of, as_of + horizon)."""
    start = utc("2024-01-01")
    frame = make_deals(
        [
            {
                "deal_id": f"D{i}",
                "created_at": start + pd.Timedelta(days=created),
                "closed_at": None if life is None else start + pd.Timedelta(days=created + life),
                "outcome": None if life is None else ("won" if won else "lost"),
            }
            for i, (created, life, won) in enumerate(deals)
        ]
    )
    dates = pd.date_range(start - pd.Timedelta(days=20), periods=15, freq="3D", tz="UTC")
    rows = open_deal_snapshots(frame, dates)
    expected = [
        (deal.deal_id, as_of)
        for as_of in dates
        for deal in frame.itertuples()
        if deal.created_at < as_of and not (deal.closed_at < as_of)
    ]
    assert sorted(zip(rows["deal_id"], rows["as_of"], strict=True)) == sorted(expected)
    labels = label_outcomes(frame, rows, horizon)
    by_id = frame.set_index("deal_id")
    for (deal_id, as_of), label in zip(rows.itertuples(index=False), labels, strict=True):
        closed, outcome = by_id.loc[deal_id, "closed_at"], by_id.loc[deal_id, "outcome"]
        window_end = as_of + pd.Timedelta(days=horizon)
        assert label == int(outcome == "won" and as_of <= closed < window_end)
