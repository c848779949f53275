"""Engagement: counts per window and type, trend, breadth, and inbound/outbound balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.spec import FeatureSpec, slug
from features.timeline import EventLog, Queries, count_between, first_occurrence_keys


def window_counts(log: EventLog, queries: Queries, spec: FeatureSpec) -> pd.DataFrame:
    """One row per query: interactions in [as_of − w days, as_of) for each window w, by kind."""
    subsets = {
        "touches": log.keys,
        "inbound": log.subset(log.direction == "inbound"),
        "outbound": log.subset(log.direction == "outbound"),
    }
    for event_type in spec.event_types:
        subsets[f"n_{slug(event_type)}"] = log.subset(log.event_type == event_type)
    columns = {}
    for days in spec.windows_days:
        for prefix, keys in subsets.items():
            columns[f"{prefix}_{days}d"] = count_between(keys, queries, 0, days).astype(float)
    # Keep the registry's order: per window, touches/inbound/outbound first, then types.
    return pd.DataFrame(columns)


def engagement_features(
    log: EventLog, queries: Queries, counts: pd.DataFrame, spec: FeatureSpec
) -> pd.DataFrame:
    """One row per query: trend, breadth and balance, from interactions strictly before `as_of`."""
    recent = count_between(log.keys, queries, 0, 30)
    before = count_between(log.keys, queries, 30, 60)
    inbound = log.subset(log.direction == "inbound")
    outbound = log.subset(log.direction == "outbound")
    in_total = count_between(inbound, queries, 0, np.inf)
    out_total = count_between(outbound, queries, 0, np.inf)
    in_90 = count_between(inbound, queries, 0, 90)
    out_90 = count_between(outbound, queries, 0, 90)
    type_counts_30d = [f"n_{slug(t)}_30d" for t in spec.event_types if f"n_{slug(t)}_30d" in counts]
    distinct_30d = (
        (counts[type_counts_30d].to_numpy() > 0).sum(axis=1)
        if type_counts_30d
        else _distinct_types_in_window(log, queries, 30)
    )
    return pd.DataFrame(
        {
            "engagement_trend_30d": np.log1p(recent) - np.log1p(before),
            "inbound_share_total": _share(in_total, out_total),
            "inbound_share_90d": _share(in_90, out_90),
            "distinct_types_total": _distinct_before(log.keys, log.event_type, queries),
            "distinct_channels_total": _distinct_before(log.keys, log.channel, queries),
            "distinct_types_30d": np.asarray(distinct_30d, dtype=float),
        }
    )


def _share(part: np.ndarray, other: np.ndarray) -> np.ndarray:
    total = part + other
    return np.divide(part, total, out=np.full(len(total), np.nan), where=total > 0)


def _distinct_before(keys: np.ndarray, labels: np.ndarray, queries: Queries) -> np.ndarray:
    """Distinct labels among a deal's events strictly before `as_of`."""
    firsts = first_occurrence_keys(keys, labels)
    return count_between(firsts, queries, 0, np.inf).astype(float)


def _distinct_types_in_window(log: EventLog, queries: Queries, days: int) -> np.ndarray:
    """Fallback when the 30-day window is not among the configured windows."""
    total = np.zeros(len(queries.as_of))
    for event_type in pd.unique(log.event_type[pd.notna(log.event_type)]):
        keys = log.subset(log.event_type == event_type)
        total += count_between(keys, queries, 0, days) > 0
    return total
