"""Pipeline stage: the value carried by the latest stage-change event before `as_of`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.timeline import SECONDS_PER_DAY, SPAN, Timeline


def stage_features(timeline: Timeline, created_at: np.ndarray, stage_type: str) -> pd.DataFrame:
    """One row per query: latest stage value strictly before `as_of` (NaN if none) and days in it.

    `created_at` is the deal creation in seconds past the log's origin; with no stage change
    yet, days in stage counts from creation.
    """
    log, as_of = timeline.log, timeline.queries.as_of
    if len(log.keys) == 0:
        age = (as_of - created_at) / SECONDS_PER_DAY
        return pd.DataFrame({"current_stage": np.full(len(age), np.nan), "days_in_stage": age})
    position, exists = timeline.last(log.event_type == stage_type.casefold())
    entered = np.where(exists, log.keys[position] % SPAN, created_at)
    return pd.DataFrame(
        {
            "current_stage": np.where(exists, log.value[position], np.nan),
            "days_in_stage": (as_of - entered) / SECONDS_PER_DAY,
        }
    )
