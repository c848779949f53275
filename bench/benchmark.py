"""The benchmark feature set, and closeprob's own engine computing it (bench-only code).

The benchmark set is a fixed subset of closeprob's features, the one `make bench` computes with
every engine (ours, the pandas reference in tests/features/reference.py, DuckDB, Featuretools)
on the same snapshots:

- `deal_age_days`: days from the deal's creation to `as_of`;
- `days_since_last_touch`, `days_since_last_inbound`: days from the latest interaction (inbound
  only, for the second) strictly before `as_of`; NaN when there is none;
- `distinct_types_30d`: distinct interaction types in [as_of − 30 d, as_of), all types;
- `n_<type>_<w>d`: interactions of each type in [as_of − w d, as_of), w in 7, 30, 90.

`benchmark_features` uses the same `Timeline` primitives and deal shards as `build_features`,
restricted to those columns, so that the comparison times our code path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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

BENCHMARK_WINDOWS = (7, 30, 90)
DISTINCT_WINDOW = 30


def benchmark_columns(event_types: tuple[str, ...]) -> list[str]:
    """Feature columns of the benchmark set, in order (after `deal_id`, `as_of`)."""
    counts = [f"n_{slug(t)}_{w}d" for w in BENCHMARK_WINDOWS for t in event_types]
    return [
        "deal_age_days",
        "days_since_last_touch",
        "days_since_last_inbound",
        "distinct_types_30d",
        *counts,
    ]


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
    queries = make_queries(snapshots, deal_ids, log.origin, threads)
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
    # Types compared case-folded, as the pipeline's features compare them.
    type_counts = {t: timeline.counts(log.event_type == t.casefold(), windows) for t in event_types}
    distinct = BENCHMARK_WINDOWS.index(DISTINCT_WINDOW)
    present = [type_counts[t][distinct] > 0 for t in event_types]
    present += [
        timeline.count(log.event_type == t, 0, DISTINCT_WINDOW) > 0
        for t in log.event_type.categories
        if t not in {e.casefold() for e in event_types}
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
