"""Features at `as_of` see only the past: property tests and a naive reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.registry import feature_descriptions
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.synthetic import generate_crm
from tests.conftest import make_deals, make_interactions, utc

AS_OF = utc("2024-03-01")
TYPES = ("email", "call", "meeting", "stage_change")
SPEC = FeatureSpec(event_types=TYPES, windows_days=(7, 30, 90), attributes=("source",))

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
    expected = build_features(DEALS, baseline, SNAPSHOTS, SPEC)
    actual = build_features(DEALS, altered, SNAPSHOTS, SPEC)
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


def test_every_built_column_has_a_registry_description() -> None:
    built = build_features(DEALS, _events([]), SNAPSHOTS, SPEC)
    assert list(built.columns[2:]) == list(feature_descriptions(SPEC))
    assert all(text.strip() for text in feature_descriptions(SPEC).values())


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
    stages = past[past["type"] == spec.stage_event_type]
    row["current_stage"] = (
        stages.sort_values("occurred_at")["value"].iloc[-1] if len(stages) else np.nan
    )
    return row


def test_fast_features_equal_a_naive_per_snapshot_filter() -> None:
    crm = generate_crm(n_deals=150, n_interactions=3_000, start="2023-01-01", days=200, seed=7)
    events = crm.interactions.assign(occurred_at=crm.interactions["occurred_at"].dt.floor("s"))
    dates = pd.date_range("2023-02-01", periods=8, freq="14D", tz="UTC")
    snapshots = open_deal_snapshots(crm.deals, dates)
    spec = FeatureSpec(event_types=tuple(sorted(events["type"].unique())), attributes=())
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
