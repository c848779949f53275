"""How a deal has moved through the pipeline: stage changes in the last 30 days and whether it
ever moved back, from its own stage-change events strictly before `as_of`.

Both read only the deal's own events, so they are computed the same way wherever a deal's
events are (one Spark bucket holds all of a deal's events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.timeline import SPAN, Timeline, index_events, make_queries, map_shards

MOVES_WINDOW_DAYS = 30


def stage_history_features(
    interactions: pd.DataFrame, snapshots: pd.DataFrame, stage_type: str
) -> pd.DataFrame:
    """One row per snapshot row (`deal_id`, `as_of`), in its order and index:
    `stage_moves_30d`, stage changes in [as_of − 30 days, as_of); `stage_moved_back`, 1 if any
    stage change before `as_of` went to a lower stage than the one before it, else 0. Events at
    or after `as_of` are never read. (`build_features` computes the same columns on its own
    event index, `stage_history_columns`.)"""
    deal_ids = pd.Index(pd.unique(snapshots["deal_id"]))
    log = index_events(interactions, deal_ids, threads=1)
    queries = make_queries(snapshots, deal_ids, log.origin)

    def compute(timeline: Timeline, rows: slice) -> dict[str, np.ndarray]:
        family = stage_history_columns(timeline, stage_type)
        return {str(c): family[c].to_numpy(dtype=float) for c in family.columns}

    return map_shards(log, queries, compute, threads=1).set_axis(snapshots.index)


def stage_history_columns(timeline: Timeline, stage_type: str) -> pd.DataFrame:
    """One row per query: the two columns of `stage_history_features`, from the timeline's
    events (a shard holds every event of its deals, so "the deal's previous stage event" is
    the previous one in the shard)."""
    log = timeline.log
    stage = np.asarray(log.event_type == stage_type.casefold()) & ~np.isnan(log.value)
    positions = np.flatnonzero(stage)
    values, deal = log.value[positions], log.keys[positions] // SPAN
    # A move back: a lower stage than the deal's previous stage event.
    back = np.zeros(len(stage), dtype=bool)
    back[positions[1:]] = (deal[1:] == deal[:-1]) & (values[1:] < values[:-1])
    return pd.DataFrame(
        {
            "stage_moves_30d": timeline.count(stage, 0, MOVES_WINDOW_DAYS),
            "stage_moved_back": (timeline.count(back, 0, np.inf) > 0).astype(float),
        }
    )
