"""Pipeline stage: the value carried by the latest stage-change event before `as_of`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.timeline import SECONDS_PER_DAY, SPAN, EventLog, Queries, last_before


def stage_features(
    log: EventLog, queries: Queries, created_at: np.ndarray, stage_type: str
) -> pd.DataFrame:
    """One row per query: latest stage value strictly before `as_of` (NaN if none) and days in it.

    `created_at` is the deal creation in seconds past `log.origin`; with no stage change yet,
    days in stage counts from creation.
    """
    is_stage = log.event_type == stage_type
    keys = log.subset(is_stage)
    values = log.value[is_stage]
    if len(keys) == 0:
        age = (queries.as_of - created_at) / SECONDS_PER_DAY
        return pd.DataFrame({"current_stage": np.full(len(age), np.nan), "days_in_stage": age})
    position, exists = last_before(keys, queries)
    entered = np.where(exists, keys[position] % SPAN, created_at)
    return pd.DataFrame(
        {
            "current_stage": np.where(exists, values[position], np.nan),
            "days_in_stage": (queries.as_of - entered) / SECONDS_PER_DAY,
        }
    )
