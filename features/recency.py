"""RFM-style recency, frequency and monetary features, and the deal's age."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.timeline import (
    SECONDS_PER_DAY,
    EventLog,
    Queries,
    count_between,
    days_since_last,
    sum_before,
)


def recency_features(
    log: EventLog, queries: Queries, created_at: np.ndarray, amount: np.ndarray, stage_type: str
) -> pd.DataFrame:
    """One row per query (deal, as_of), from interactions strictly before `as_of`.

    Days are fractional. `created_at` is each row's deal creation in seconds past `log.origin`;
    `amount` its declared value. Values on `stage_type` events are stage numbers, not money, and
    are left out.
    """
    age_days = (queries.as_of - created_at) / SECONDS_PER_DAY
    touches = count_between(log.keys, queries, 0, np.inf).astype(float)
    inbound = log.direction == "inbound"
    outbound = log.direction == "outbound"
    return pd.DataFrame(
        {
            "deal_age_days": age_days,
            "touches_total": touches,
            "touches_per_30d": touches / np.maximum(age_days, 1.0) * 30.0,
            "days_since_last_touch": days_since_last(log.keys, queries),
            "days_since_last_inbound": days_since_last(log.subset(inbound), queries),
            "days_since_last_outbound": days_since_last(log.subset(outbound), queries),
            "amount_declared": amount.astype(float),
            "interaction_value_total": _money_before(log, queries, stage_type),
        }
    )


def _money_before(log: EventLog, queries: Queries, stage_type: str) -> np.ndarray:
    money = np.where(log.event_type == stage_type, np.nan, log.value)
    return sum_before(log.keys, money, queries)
