"""How a deal has moved through the pipeline: stage changes in the last 30 days and whether it
ever moved back, from its own stage-change events strictly before `as_of`.

Both read only the deal's own events, so they are computed the same way wherever a deal's
events are (one Spark bucket holds all of a deal's events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.timeline import SECONDS_PER_DAY, SPAN, to_seconds

MOVES_WINDOW_DAYS = 30


def stage_history_features(
    interactions: pd.DataFrame, snapshots: pd.DataFrame, stage_type: str
) -> pd.DataFrame:
    """One row per snapshot row (`deal_id`, `as_of`), in its order and index:
    `stage_moves_30d`, stage changes in [as_of − 30 days, as_of); `stage_moved_back`, 1 if any
    stage change before `as_of` went to a lower stage than the one before it, else 0. Events at
    or after `as_of` are never read."""
    # Types compared case-folded, as the timeline compares them.
    kind = interactions["type"].astype("str").str.strip().str.casefold()
    stages = interactions[(kind == stage_type.casefold()) & interactions["value"].notna()]
    deal_ids = pd.Index(pd.unique(snapshots["deal_id"]))
    code = deal_ids.get_indexer(pd.Index(stages["deal_id"]))
    stages = stages[code >= 0]
    code = code[code >= 0].astype(np.int64)
    seconds = to_seconds(stages["occurred_at"])
    as_of = to_seconds(snapshots["as_of"])
    origin = (
        int(min(seconds.min(initial=as_of.min()), as_of.min()))
        - MOVES_WINDOW_DAYS * SECONDS_PER_DAY
    )
    keys = code * SPAN + (seconds - origin)
    order = np.argsort(keys, kind="stable")
    keys, values, code = keys[order], stages["value"].to_numpy(dtype=float)[order], code[order]
    # A move back: a lower stage than the deal's previous stage event.
    previous = np.r_[np.nan, values[:-1]]
    same_deal = np.r_[False, code[1:] == code[:-1]]
    back = (same_deal & (values < previous)).astype(np.int64)
    backs_before = np.r_[0, np.cumsum(back)]
    query_code = deal_ids.get_indexer(pd.Index(snapshots["deal_id"])).astype(np.int64)
    end = np.searchsorted(keys, query_code * SPAN + (as_of - origin), side="left")
    start = np.searchsorted(
        keys,
        query_code * SPAN + (as_of - origin - MOVES_WINDOW_DAYS * SECONDS_PER_DAY),
        side="left",
    )
    first = np.searchsorted(keys, query_code * SPAN, side="left")
    return pd.DataFrame(
        {
            "stage_moves_30d": (end - start).astype(float),
            "stage_moved_back": ((backs_before[end] - backs_before[first]) > 0).astype(float),
        },
        index=snapshots.index,
    )
