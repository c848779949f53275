"""Codes computed once on row ranges in threads equal pandas' one-pass answers, and a feature
build on every parallel path (codes, gathers, history, market, shards) equals one thread's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import closeprob.features.codes as codes
import closeprob.features.timeline as timeline
from closeprob.features.build import build_features
from closeprob.features.market import window_touch_counts
from closeprob.features.snapshots import open_deal_snapshots, snapshot_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.pipeline.synthetic import generate_crm

LABELS = st.lists(st.sampled_from(["a", "b", "B", "", "zz", None]), max_size=40)


@pytest.fixture
def every_path_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Row ranges, shards and the parallel sort on any input size."""
    monkeypatch.setattr(codes, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(timeline, "SHARD_MIN_EVENTS", 0)
    monkeypatch.setattr(timeline, "SHARD_MAX_EVENTS", 500)
    monkeypatch.setattr(timeline, "PARALLEL_SORT_MIN_EVENTS", 0)


@settings(max_examples=60, deadline=None)
@given(values=LABELS, threads=st.integers(min_value=1, max_value=4))
def test_label_codes_on_row_ranges_keep_every_value(values: list, threads: int) -> None:
    column = pd.Series(values, dtype="str")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codes, "PARALLEL_MIN_ROWS", 0)
        coded = codes.label_codes(column, threads)
    assert coded is not None
    decoded = pd.Series(coded, dtype="object").astype("str").where(coded.codes >= 0)
    pd.testing.assert_series_equal(decoded, column.astype("str"), check_dtype=False)
    assert len(set(coded.categories)) == len(coded.categories)


@settings(max_examples=60, deadline=None)
@given(values=LABELS, threads=st.integers(min_value=1, max_value=4))
def test_deal_positions_on_row_ranges_equal_pandas_lookup(values: list, threads: int) -> None:
    deal_ids = pd.Index(["zz", "a", "", "b"], dtype="str")
    column = pd.Series(values, dtype="str")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codes, "PARALLEL_MIN_ROWS", 0)
        found = timeline.deal_codes(deal_ids, column, threads)
    expected = deal_ids.get_indexer(column.fillna("\0missing"))
    np.testing.assert_array_equal(found, expected)
    assert found.dtype == np.int64


def test_gather_on_row_ranges_equals_fancy_indexing(every_path_parallel: None) -> None:
    values = np.random.default_rng(0).normal(size=1_000)
    positions = np.random.default_rng(1).integers(0, 1_000, 777)
    np.testing.assert_array_equal(codes.gather(values, positions, 3), values[positions])


def test_market_event_counts_in_threads_equal_one_pass(every_path_parallel: None) -> None:
    crm = generate_crm(n_deals=150, n_interactions=3_000, start="2023-01-01", days=200, seed=4)
    dates = pd.DatetimeIndex(snapshot_dates(crm.deals["created_at"].min(), crm.end, 10))
    one = window_touch_counts(crm.deals, crm.interactions, dates, 30, threads=1)
    many = window_touch_counts(crm.deals, crm.interactions, dates, 30, threads=3)
    key = ["position", "touches"]
    assert many.groupby(key)["deals"].sum().equals(one.groupby(key)["deals"].sum())
    assert (one["touches"] * one["deals"]).sum() > 0


@pytest.mark.slow
def test_every_family_in_threads_equals_one_thread(
    every_path_parallel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = generate_crm(n_deals=300, n_interactions=6_000, start="2023-01-01", days=300, seed=8)
    snapshots = open_deal_snapshots(
        crm.deals, snapshot_dates(crm.deals["created_at"].min(), crm.end, 14)
    )
    spec = FeatureSpec(
        event_types=select_event_types(crm.interactions, crm.end, 20),
        attributes=("industry", "source"),
        market_window_days=30,
        stage_history=True,
    )
    many = build_features(crm.deals, crm.interactions, snapshots, spec, threads=3)
    monkeypatch.undo()  # one thread on the plain paths: one shard, no row ranges
    one = build_features(crm.deals, crm.interactions, snapshots, spec, threads=1)
    pd.testing.assert_frame_equal(many, one, check_exact=True)
    assert one["stage_moves_30d"].sum() > 0
    assert one["market_touches_30d"].notna().all()
