"""Activity relative to the market: a naive reference, the level's independence from which
events the caller passes (all, only the open deals', or bucket by bucket as Spark adds them),
and its robustness: one deal's events move the other deals' features by a bounded amount."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from closeprob.features.build import build_features
from closeprob.features.market import (
    CAPPED_SHARE,
    levels_for,
    market_levels,
    open_deal_counts,
    window_touch_counts,
)
from closeprob.features.snapshots import open_deal_snapshots
from closeprob.features.spec import FeatureSpec
from closeprob.pipeline.synthetic import generate_crm
from tests.conftest import make_deals, make_interactions

SPEC = FeatureSpec(event_types=("email",), attributes=(), history_keys=(), market_window_days=30)
CRM = generate_crm(n_deals=200, n_interactions=4_000, start="2023-01-01", days=240, seed=11)
EVENTS = CRM.interactions.assign(occurred_at=CRM.interactions["occurred_at"].dt.floor("s"))
DATES = pd.date_range("2023-02-01", periods=10, freq="14D", tz="UTC")


def _open(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    closed = deals["closed_at"]
    return (deals["created_at"] < as_of) & (closed.isna() | (closed >= as_of))


def capped_level(counts: np.ndarray, open_deals: int, days: int) -> float:
    """Interactions per open deal and day, each deal's count capped at that of the deal ranked
    n − max(1, ⌊5 % × n⌋) among the n that logged any (sorted, by plain indexing)."""
    active = sorted(int(c) for c in counts if c > 0)
    rank = len(active) - max(1, int(len(active) * CAPPED_SHARE))
    cap = active[rank - 1] if rank >= 1 else 0
    return sum(min(c, cap) for c in active) / open_deals / days


def _naive(snapshot: pd.Series, deals: pd.DataFrame, events: pd.DataFrame) -> dict[str, float]:
    """One row's market features by plain filters, straight from their descriptions."""
    as_of = snapshot["as_of"]
    open_ids = deals.loc[_open(deals, as_of), "deal_id"]
    window = events[
        (events["occurred_at"] >= as_of - pd.Timedelta(days=30))
        & (events["occurred_at"] < as_of)
        & events["deal_id"].isin(open_ids)
    ]
    level = capped_level(window["deal_id"].value_counts().to_numpy(), len(open_ids), 30)
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
    tables = [
        window_touch_counts(CRM.deals, EVENTS[bucket == b], dates, 30) for b in range(buckets)
    ]
    added = market_levels(pd.concat(tables), open_deal_counts(CRM.deals, dates), dates, 30)
    pd.testing.assert_series_equal(added, everything)


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


def open_crm(counts: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deals D0.. open on 2024-03-01, deal i with counts[i] emails in the 30 days before."""
    start = pd.Timestamp("2024-01-01", tz="UTC")
    deals = make_deals([{"deal_id": f"D{i}", "created_at": start} for i in range(len(counts))])
    times = [
        (f"D{i}", start + pd.Timedelta(days=40, minutes=k))
        for i, c in enumerate(counts)
        for k in range(c)
    ]
    events = make_interactions(
        [{"deal_id": d, "occurred_at": t, "type": "email"} for d, t in times]
    )
    return deals, events


AS_OF = pd.Timestamp("2024-03-01", tz="UTC")


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=40),
    deal=st.integers(0, 39),
    extra=st.integers(1, 5_000),
)
def test_events_added_to_one_deal_move_the_others_market_level_by_a_bounded_amount(
    counts: list[int], deal: int, extra: int
) -> None:
    """However many events one deal logs, the level (interactions per open deal in 30 days)
    moves by at most (capped deals + 1) × the largest count of the other deals / open deals;
    and once the deal is the busiest, more events move nothing."""
    deal %= len(counts)
    more = [c + extra * (i == deal) for i, c in enumerate(counts)]
    level = {}
    for name, table in (("before", counts), ("after", more), ("far", [c * 10 for c in more])):
        deals, events = open_crm(
            table if name != "far" else [*more[:deal], more[deal] * 10, *more[deal + 1 :]]
        )
        level[name] = levels_for(deals, events, pd.Series([AS_OF]), 30).iloc[0] * 30
    others = [c for i, c in enumerate(counts) if i != deal]
    active = sum(c > 0 for c in more)
    capped = max(1, int(active * CAPPED_SHARE))
    bound = (capped + 1) * max(others, default=0) / len(counts)
    assert abs(level["after"] - level["before"]) <= bound + 1e-9
    assert level["before"] == pytest.approx(capped_level(np.array(counts), len(counts), 30) * 30)
    if more[deal] > max(others, default=0):
        assert level["far"] == level["after"]


def test_one_deal_with_thousands_of_events_leaves_the_other_deals_levels_nearly_as_they_were() -> (
    None
):
    """Issue 20's case at small scale: one open deal logs 20,000 emails. The plain mean moves
    every other deal's level ten times over; the capped one by under a tenth (its bound,
    (capped deals + 1) × the busiest other deal's count / open deals, with few open deals)."""
    snapshots = open_deal_snapshots(CRM.deals, DATES[-1:])
    busy = snapshots["deal_id"].iloc[0]
    flood = pd.DataFrame(
        {
            "deal_id": busy,
            "occurred_at": DATES[-1] - pd.to_timedelta(np.arange(20_000) % 86_400 + 1, unit="s"),
            "type": "email",
        }
    ).astype({"deal_id": EVENTS["deal_id"].dtype})
    flooded = pd.concat([EVENTS, flood], ignore_index=True)
    others = snapshots["deal_id"] != busy
    column = "market_touches_30d"
    for spec, most in ((SPEC, 0.1), (replace(SPEC, market_robust=False), None)):
        before = build_features(CRM.deals, EVENTS, snapshots, spec)[column][others]
        after = build_features(CRM.deals, flooded, snapshots, spec)[column][others]
        moved = (after / before - 1).abs().max()
        if most is None:
            assert moved > 10  # the plain mean: every other deal's level ten times or more
        else:
            assert moved <= most
