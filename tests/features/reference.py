"""A straightforward pandas version of the benchmark feature set (defined in bench/benchmark.py):
the oracle for the fast path, and the bench's "pandas reference" engine.

This module joins every snapshot to every interaction of its deal and filters: simple enough to
trust by reading, and memory-hungry by design (rows = snapshots × events per deal). Tests compare
the fast path against it on random data; nothing in the product package calls it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.benchmark import BENCHMARK_WINDOWS, DISTINCT_WINDOW, benchmark_columns
from closeprob.features.spec import slug

DAY = 86_400.0  # seconds


def reference_features(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    snapshots: pd.DataFrame,
    event_types: tuple[str, ...],
) -> pd.DataFrame:
    """The benchmark set for each snapshot row (`deal_id`, `as_of`), in the snapshots' order."""
    rows = snapshots[["deal_id", "as_of"]].reset_index(drop=True)
    rows["row"] = np.arange(len(rows))
    created = rows.merge(deals[["deal_id", "created_at"]], on="deal_id", how="left")
    out = pd.DataFrame({"deal_id": rows["deal_id"], "as_of": rows["as_of"]})
    out["deal_age_days"] = (created["as_of"] - created["created_at"]).dt.total_seconds() / DAY

    events = interactions[["deal_id", "occurred_at", "type", "direction"]]
    joined = rows.merge(events, on="deal_id", how="inner")
    past = joined[joined["occurred_at"] < joined["as_of"]]
    age = (past["as_of"] - past["occurred_at"]).dt.total_seconds() / DAY

    last_touch = age.groupby(past["row"]).min()
    out["days_since_last_touch"] = last_touch.reindex(rows["row"]).to_numpy()
    inbound = past["direction"] == "inbound"
    last_inbound = age[inbound].groupby(past.loc[inbound, "row"]).min()
    out["days_since_last_inbound"] = last_inbound.reindex(rows["row"]).to_numpy()

    recent = past[(age <= DISTINCT_WINDOW) & past["type"].notna()]
    distinct = recent.groupby("row")["type"].nunique()
    out["distinct_types_30d"] = distinct.reindex(rows["row"], fill_value=0).to_numpy(float)

    for days in BENCHMARK_WINDOWS:
        window = past[age <= days]
        table = pd.crosstab(window["row"], window["type"])
        for event_type in event_types:
            column = table[event_type] if event_type in table.columns else pd.Series(dtype=float)
            values = column.reindex(rows["row"], fill_value=0).to_numpy(float)
            out[f"n_{slug(event_type)}_{days}d"] = values
    return out[["deal_id", "as_of", *benchmark_columns(event_types)]]
