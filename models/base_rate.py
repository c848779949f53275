"""The present base rate a queue's probabilities should track: how often deals open at recent
dates were won within the horizon, from closes known before `as_of`."""

from __future__ import annotations

import pandas as pd

from closeprob.features.labels import label_outcomes
from closeprob.features.snapshots import open_deal_snapshots, snapshot_dates

RECENT_DATES = 4  # snapshot dates averaged: a month of weekly queues


def recent_won_rate(
    deals: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int, every_days: int
) -> tuple[float, int]:
    """(won rate, rows) of the deals open at the last `RECENT_DATES` snapshot dates whose label
    window (date, date + horizon] ended before `as_of`: every close it counts was known then.
    NaN and 0 rows when the data hold no such date."""
    last = as_of - pd.Timedelta(days=horizon_days) - pd.Timedelta(seconds=1)
    known = deals[deals["created_at"] < as_of]
    if len(known) == 0:
        return float("nan"), 0
    dates = snapshot_dates(known["created_at"].min(), last, every_days)[-RECENT_DATES:]
    snapshots = open_deal_snapshots(known, dates)
    if len(snapshots) == 0:
        return float("nan"), 0
    labels = label_outcomes(known, snapshots, horizon_days)
    return float(labels.mean()), len(labels)
