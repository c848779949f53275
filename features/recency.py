"""RFM-style recency, frequency and monetary features, and the deal's age."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.timeline import SECONDS_PER_DAY, Timeline


def recency_features(
    timeline: Timeline, created_at: np.ndarray, amount: np.ndarray, stage_type: str
) -> pd.DataFrame:
    """One row per query (deal, as_of), from interactions strictly before `as_of`.

    Days are fractional. `created_at` is each query's deal creation in seconds past the log's
    origin; `amount` its declared value. Values on `stage_type` events are stage numbers, not
    money, and are left out.
    """
    log = timeline.log
    age_days = (timeline.queries.as_of - created_at) / SECONDS_PER_DAY
    touches = timeline.count(None, 0, np.inf)
    return pd.DataFrame(
        {
            "deal_age_days": age_days,
            "touches_total": touches,
            "touches_per_30d": touches / np.maximum(age_days, 1.0) * 30.0,
            "days_since_last_touch": timeline.days_since_last(None),
            "days_since_last_inbound": timeline.days_since_last(log.direction == "inbound"),
            "days_since_last_outbound": timeline.days_since_last(log.direction == "outbound"),
            "amount_declared": amount.astype(float),
            "interaction_value_total": _money_before(timeline, stage_type),
        }
    )


def _money_before(timeline: Timeline, stage_type: str) -> np.ndarray:
    log = timeline.log
    money = np.where(log.event_type == stage_type.casefold(), np.nan, log.value)
    return timeline.total(money)
