"""Engagement: counts per window and type, trend, breadth, and inbound/outbound balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.spec import FeatureSpec, slug
from closeprob.features.timeline import Timeline


def window_counts(timeline: Timeline, spec: FeatureSpec) -> pd.DataFrame:
    """One row per query: interactions in [as_of − w days, as_of) for each window w, by kind."""
    log = timeline.log
    subsets: dict[str, np.ndarray | None] = {
        "touches": None,
        "inbound": log.direction == "inbound",
        "outbound": log.direction == "outbound",
    }
    for event_type in spec.event_types:
        subsets[f"n_{slug(event_type)}"] = log.event_type == event_type.casefold()
    windows = [(0.0, float(days)) for days in spec.windows_days]
    by_subset = {prefix: timeline.counts(mask, windows) for prefix, mask in subsets.items()}
    # Keep the registry's order: per window, touches/inbound/outbound first, then types.
    return pd.DataFrame(
        {
            f"{prefix}_{days}d": by_subset[prefix][i]
            for i, days in enumerate(spec.windows_days)
            for prefix in subsets
        }
    )


def engagement_features(
    timeline: Timeline, counts: pd.DataFrame, spec: FeatureSpec
) -> pd.DataFrame:
    """One row per query: trend, breadth and balance, from interactions strictly before `as_of`."""
    log = timeline.log
    recent = timeline.count(None, 0, 30)
    before = timeline.count(None, 30, 60)
    in_total, in_90 = timeline.counts(log.direction == "inbound", [(0, np.inf), (0, 90)])
    out_total, out_90 = timeline.counts(log.direction == "outbound", [(0, np.inf), (0, 90)])
    distinct_30d = distinct_types_in_window(timeline, counts, spec, 30)
    return pd.DataFrame(
        {
            "engagement_trend_30d": np.log1p(recent) - np.log1p(before),
            "inbound_share_total": _share(in_total, out_total),
            "inbound_share_90d": _share(in_90, out_90),
            "distinct_types_total": timeline.distinct_before(log.event_type),
            "distinct_channels_total": timeline.distinct_before(log.channel),
            "distinct_types_30d": distinct_30d,
        }
    )


def _share(part: np.ndarray, other: np.ndarray) -> np.ndarray:
    total = part + other
    return np.divide(part, total, out=np.full(len(total), np.nan), where=total > 0)


def distinct_types_in_window(
    timeline: Timeline, counts: pd.DataFrame, spec: FeatureSpec, days: int
) -> np.ndarray:
    """Distinct interaction types in [as_of − days, as_of), counting every type in the log,
    not only the `spec.event_types` that get their own count columns (those counts are reused)."""
    event_type = timeline.log.event_type
    total = np.zeros(len(timeline.queries.as_of))
    counted: set[str] = set()
    for name in spec.event_types:
        column = f"n_{slug(name)}_{days}d"
        if column in counts:
            total += counts[column].to_numpy() > 0
            counted.add(name.casefold())
    for code, name in enumerate(event_type.categories):
        if name not in counted:
            total += timeline.count(event_type.codes == code, 0, days) > 0
    return total
