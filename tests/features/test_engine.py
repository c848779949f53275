"""The fast feature engine against its oracles: the pandas reference, one thread, other engines.

Window bounds, shards, threads, sort paths and input order must never change a value.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import closeprob.features.timeline as timeline
from bench.benchmark import benchmark_columns, benchmark_features
from closeprob.features.build import build_features
from closeprob.features.snapshots import open_deal_snapshots, snapshot_dates
from closeprob.features.spec import FeatureSpec, select_event_types
from closeprob.pipeline.synthetic import generate_crm
from tests.conftest import make_deals, make_interactions, utc
from tests.features.reference import reference_features

ROOT = Path(__file__).resolve().parents[2]
AS_OF = utc("2024-03-01")
DAY = 86_400
TYPES = ("call", "email", "Web Visit")
DEAL_IDS = [f"D{i}" for i in range(6)]
DEALS = make_deals(
    [{"deal_id": deal, "created_at": f"2023-0{1 + i}-01"} for i, deal in enumerate(DEAL_IDS)]
)
# Offsets from an as_of that sit on and beside every window bound (0, 7, 30, 90 days).
EDGES = [o for d in (0, 7, 30, 90) for o in (-d * DAY - 1, -d * DAY, -d * DAY + 1)]
EVENT = st.fixed_dictionaries(
    {
        "deal_id": st.sampled_from(DEAL_IDS),
        "week": st.integers(min_value=0, max_value=3),
        "offset": st.one_of(st.sampled_from(EDGES), st.integers(-120 * DAY, DAY)),
        "type": st.sampled_from([*TYPES, "note", None]),
        "direction": st.sampled_from(["inbound", "outbound", None]),
    }
)
SNAPSHOT = st.tuples(st.sampled_from(DEAL_IDS), st.integers(min_value=0, max_value=3))


def _events(rows: list[dict[str, object]]) -> pd.DataFrame:
    return make_interactions(
        [
            {
                "deal_id": r["deal_id"],
                "occurred_at": AS_OF + pd.Timedelta(weeks=int(r["week"]), seconds=int(r["offset"])),
                "type": r["type"],
                "direction": r["direction"],
            }
            for r in rows
        ]
    )


def _snapshots(pairs: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deal_id": [deal for deal, _ in pairs],
            "as_of": [AS_OF + pd.Timedelta(weeks=week) for _, week in pairs],
        }
    )


@pytest.fixture
def tiny_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards and the parallel sort on any input size, so that small examples exercise them."""
    monkeypatch.setattr(timeline, "SHARD_MIN_EVENTS", 0)
    monkeypatch.setattr(timeline, "PARALLEL_SORT_MIN_EVENTS", 0)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    events=st.lists(EVENT, max_size=60),
    pairs=st.lists(SNAPSHOT, min_size=1, max_size=20),
    threads=st.integers(min_value=1, max_value=4),
    as_category=st.booleans(),
)
def test_fast_engine_equals_the_pandas_reference(
    tiny_thresholds: None,
    events: list[dict[str, object]],
    pairs: list[tuple[str, int]],
    threads: int,
    as_category: bool,
) -> None:
    """Any events (on window bounds, unsorted, missing labels), any snapshot rows (unsorted,
    repeated), any threads, labels as strings or as Parquet-style categoricals."""
    interactions = _events(events)
    if as_category:
        interactions = interactions.astype({"deal_id": "category", "type": "category"})
    snapshots = _snapshots(pairs)
    fast = benchmark_features(DEALS, interactions, snapshots, TYPES, threads=threads)
    expected = reference_features(DEALS, _events(events), snapshots, TYPES)
    pd.testing.assert_frame_equal(fast, expected, check_exact=False, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_build_features_do_not_depend_on_threads_or_row_order(tiny_thresholds: None) -> None:
    crm = generate_crm(n_deals=400, n_interactions=8_000, start="2023-01-01", days=300, seed=3)
    dates = snapshot_dates(crm.deals["created_at"].min(), crm.end, 14)
    snapshots = open_deal_snapshots(crm.deals, dates)
    spec = FeatureSpec(
        event_types=select_event_types(crm.interactions, crm.end, 20),
        attributes=("industry", "source"),
    )
    one = build_features(crm.deals, crm.interactions, snapshots, spec, threads=1)
    shuffled = snapshots.sample(frac=1.0, random_state=0)
    many = build_features(crm.deals, crm.interactions.iloc[::-1], shuffled, spec, threads=3)
    pd.testing.assert_frame_equal(many.loc[one.index], one)


@pytest.mark.parametrize("selected", ["all types", "one type"])
def test_the_benchmark_set_is_what_training_computes(selected: str) -> None:
    """The columns the bench compares are the pipeline's own, not a lookalike, and equal the
    reference's; with one type selected out of several, distinct_types_30d still counts all."""
    crm = generate_crm(n_deals=200, n_interactions=4_000, start="2023-01-01", days=200, seed=5)
    snapshots = open_deal_snapshots(
        crm.deals, snapshot_dates(crm.deals["created_at"].min(), crm.end, 14)
    )
    every = tuple(sorted(crm.interactions["type"].unique()))
    assert len(every) >= 3
    types = every if selected == "all types" else every[:1]
    spec = FeatureSpec(event_types=types, history_keys=())
    built = build_features(crm.deals, crm.interactions, snapshots, spec)
    bench = benchmark_features(crm.deals, crm.interactions, snapshots, types)
    reference = reference_features(crm.deals, crm.interactions, snapshots, types)
    shared = [c for c in benchmark_columns(types) if c in built.columns]
    assert len(shared) == len(benchmark_columns(types))
    pd.testing.assert_frame_equal(bench[shared], built[shared].reset_index(drop=True))
    pd.testing.assert_frame_equal(
        reference[shared], built[shared].reset_index(drop=True), check_exact=False, rtol=1e-9
    )


def test_sort_order_in_parts_equals_a_stable_argsort(tiny_thresholds: None) -> None:
    keys = np.random.default_rng(0).integers(0, 50, 5_000)
    for parts in (1, 2, 3, 7):
        np.testing.assert_array_equal(
            timeline.sort_order(keys, parts), np.argsort(keys, kind="stable")
        )


def _write_bench_data(folder: Path) -> tuple[str, ...]:
    crm = generate_crm(n_deals=300, n_interactions=6_000, start="2023-01-01", days=200, seed=11)
    crm.deals.to_parquet(folder / "deals.parquet")
    crm.interactions.to_parquet(folder / "interactions.parquet")
    dates = snapshot_dates(crm.end - pd.Timedelta(weeks=8), crm.end, 7)
    open_deal_snapshots(crm.deals, dates).to_parquet(folder / "snapshots.parquet")
    types = tuple(sorted(crm.interactions["type"].unique()))
    (folder / "types.json").write_text(json.dumps(types), encoding="utf-8")
    return types


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("duckdb") is None, reason="duckdb not installed")
@pytest.mark.parametrize("variant", ["straightforward", "tuned"])
def test_duckdb_engine_equals_the_reference(tmp_path: Path, variant: str) -> None:
    """The bench's DuckDB queries compute the same features (so its ratios compare like with
    like)."""
    types = _write_bench_data(tmp_path)
    out = tmp_path / "duckdb.parquet"
    command = [sys.executable, "bench/engines/duckdb_features.py", "--data", str(tmp_path)]
    subprocess.run([*command, "--variant", variant, "--out", str(out)], cwd=ROOT, check=True)
    expected = reference_features(
        pd.read_parquet(tmp_path / "deals.parquet"),
        pd.read_parquet(tmp_path / "interactions.parquet"),
        pd.read_parquet(tmp_path / "snapshots.parquet"),
        types,
    )
    actual = pd.read_parquet(out)
    pd.testing.assert_frame_equal(
        actual.drop(columns="as_of"), expected.drop(columns="as_of"), atol=1e-9, rtol=0
    )
    assert (actual["as_of"] == expected["as_of"]).all()


def test_feature_threads_follow_the_cpu_affinity_not_the_host_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timeline.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(timeline.os, "cpu_count", lambda: 64)
    assert timeline.default_threads() == 3
