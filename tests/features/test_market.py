"""Activity relative to the market: a naive reference, and the level's independence from which
events the caller passes (all, only the open deals', or bucket by bucket as Spark sums them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.market import levels_for, window_event_counts
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.synthetic import generate_crm

SPEC = FeatureSpec(event_types=("email",), attributes=(), history_keys=(), market_window_days=30)
CRM = generate_crm(n_deals=200, n_interactions=4_000, start="2023-01-01", days=240, seed=11)
EVENTS = CRM.interactions.assign(occurred_at=CRM.interactions["occurred_at"].dt.floor("s"))
DATES = pd.date_range("2023-02-01", periods=10, freq="14D", tz="UTC")


def _open(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    closed = deals["closed_at"]
    return (deals["created_at"] < as_of) & (closed.isna() | (closed >= as_of))


def _naive(snapshot: pd.Series, deals: pd.DataFrame, events: pd.DataFrame) -> dict[str, float]:
    """One row's market features by plain filters, straight from their descriptions."""
    as_of = snapshot["as_of"]
    open_ids = deals.loc[_open(deals, as_of), "deal_id"]
    window = events[
        (events["occurred_at"] >= as_of - pd.Timedelta(days=30))
        & (events["occurred_at"] < as_of)
        & events["deal_id"].isin(open_ids)
    ]
    level = len(window) / len(open_ids) / 30  # per open deal and day
    mine = events[(events["deal_id"] == snapshot["deal_id"]) & (events["occurred_at"] < as_of)]
    created = deals.set_index("deal_id").loc[snapshot["deal_id"], "created_at"]
    age = max((as_of - created).total_seconds() / 86_400, 1.0)
    last = mine["occurred_at"].max()
    quiet = (as_of - last).total_seconds() / 86_400 if len(mine) else np.nan

    def ratio(part: float, whole: float) -> float:
        return part / whole if whole > 0 else np.nan

    def recent(days: int) -> int:
        return int((mine["occurred_at"] >= as_of - pd.Timedelta(days=days)).sum())

    return {
        "market_touches_30d": level * 30,
        "touches_30d_vs_market": ratio(recent(30), level * 30),
        "touches_7d_vs_market": ratio(recent(7), level * 7),
        "lifetime_touches_vs_market": ratio(len(mine) / age, level),
        "quiet_vs_market": quiet * level,
    }


def test_market_features_equal_a_naive_per_snapshot_filter() -> None:
    snapshots = open_deal_snapshots(CRM.deals, DATES)
    fast = build_features(CRM.deals, EVENTS, snapshots, SPEC)
    naive = pd.DataFrame([_naive(row, CRM.deals, EVENTS) for _, row in snapshots.iterrows()])
    assert naive["touches_30d_vs_market"].notna().all()
    pd.testing.assert_frame_equal(
        fast[naive.columns].reset_index(drop=True), naive, check_exact=False, rtol=1e-9
    )


@settings(max_examples=25, deadline=None)
@given(date=st.sampled_from(list(DATES)), buckets=st.integers(min_value=1, max_value=7))
def test_the_level_is_the_same_from_all_events_open_deals_events_or_summed_buckets(
    date: pd.Timestamp, buckets: int
) -> None:
    """The batch job passes only the open deals' events, the Spark engine sums bucket counts:
    both give training's figure, so a deal's features never depend on the engine."""
    dates = pd.DatetimeIndex([date])
    everything = levels_for(CRM.deals, EVENTS, pd.Series(dates), 30)
    open_ids = CRM.deals.loc[_open(CRM.deals, date), "deal_id"]
    only_open = levels_for(
        CRM.deals, EVENTS[EVENTS["deal_id"].isin(open_ids)], pd.Series(dates), 30
    )
    pd.testing.assert_series_equal(only_open, everything)
    bucket = EVENTS["deal_id"].map(lambda deal: hash(deal) % buckets)
    summed = sum(
        window_event_counts(CRM.deals, EVENTS[bucket == b], dates, 30) for b in range(buckets)
    )
    assert summed.tolist() == window_event_counts(CRM.deals, EVENTS, dates, 30).tolist()


def test_features_of_one_deal_do_not_depend_on_which_rows_are_asked_for() -> None:
    """The level comes from the deals and events, not from the snapshot rows passed."""
    snapshots = open_deal_snapshots(CRM.deals, DATES[-1:])
    every = build_features(CRM.deals, EVENTS, snapshots, SPEC)
    one = build_features(CRM.deals, EVENTS, snapshots.iloc[:1], SPEC)
    pd.testing.assert_frame_equal(one, every.iloc[:1])


def test_a_model_pickled_before_the_family_existed_reads_no_market_features() -> None:
    """Its spec has no `market_window_days`: it reads the class default, 0, so the columns it
    is scored on are exactly those it was fitted on."""
    from pathlib import Path

    from closeprob.features.registry import feature_descriptions
    from closeprob.pipeline.jobs.migrate_model import unpickle_legacy

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "model_closeprob_0_1" / "model"
    close, _ = unpickle_legacy(fixture / "python_model.pkl")
    assert close.spec.market_window_days == 0
    assert list(feature_descriptions(close.spec)) == close.feature_names
