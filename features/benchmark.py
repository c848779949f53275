"""The benchmark feature set (see `features.reference`) computed by closeprob's own engine.

Same `Timeline` primitives and deal shards as `build_features`, restricted to the columns every
engine in `make bench` computes, so that the comparison times our code path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.reference import BENCHMARK_WINDOWS, DISTINCT_WINDOW, benchmark_columns
from closeprob.features.spec import slug
from closeprob.features.timeline import (
    SECONDS_PER_DAY,
    Timeline,
    default_threads,
    index_events,
    make_queries,
    map_shards,
    to_seconds,
)


def benchmark_features(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    event_types: tuple[str, ...],
    threads: int | None = None,
) -> pd.DataFrame:
    """The benchmark set for each snapshot row (`deal_id`, `as_of`), in the snapshots' order."""
    threads = threads or default_threads()
    deal_ids = pd.Index(deals["deal_id"])
    log = index_events(interactions, deal_ids, threads)
    queries = make_queries(snapshots, deal_ids, log.origin)
    created_at = to_seconds(deals["created_at"].iloc[queries.deal_code]) - log.origin

    def compute(timeline: Timeline, rows: slice) -> dict[str, np.ndarray]:
        return _benchmark_columns(timeline, created_at[rows], event_types)

    features = map_shards(log, queries, compute, threads)
    features.insert(0, "as_of", snapshots["as_of"].array)
    features.insert(0, "deal_id", snapshots["deal_id"].array)
    return features


def _benchmark_columns(
    timeline: Timeline, created_at: np.ndarray, event_types: tuple[str, ...]
) -> dict[str, np.ndarray]:
    log, as_of = timeline.log, timeline.queries.as_of
    windows = [(0.0, float(days)) for days in BENCHMARK_WINDOWS]
    type_counts = {t: timeline.counts(log.event_type == t, windows) for t in event_types}
    distinct = BENCHMARK_WINDOWS.index(DISTINCT_WINDOW)
    present = [type_counts[t][distinct] > 0 for t in event_types]
    present += [
        timeline.count(log.event_type == t, 0, DISTINCT_WINDOW) > 0
        for t in log.event_type.categories
        if t not in event_types
    ]
    columns = {
        "deal_age_days": (as_of - created_at) / SECONDS_PER_DAY,
        "days_since_last_touch": timeline.days_since_last(None),
        "days_since_last_inbound": timeline.days_since_last(log.direction == "inbound"),
        "distinct_types_30d": np.sum(present, axis=0, dtype=float)
        if present
        else np.zeros(len(as_of)),
    }
    for i, days in enumerate(BENCHMARK_WINDOWS):
        for event_type in event_types:
            columns[f"n_{slug(event_type)}_{days}d"] = type_counts[event_type][i]
    return {name: columns[name] for name in benchmark_columns(event_types)}
