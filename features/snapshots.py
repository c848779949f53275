"""Snapshot dates and the (deal, as_of) rows a model is trained and scored on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.point_in_time import data_end, first_date_after, last_labelled_as_of


def snapshot_dates(first: pd.Timestamp, last: pd.Timestamp, every_days: int) -> pd.DatetimeIndex:
    """Midnight UTC dates every `every_days`, counted back from `last` to after `first`.

    `last` is floored to a day before counting back.

    Anchoring on the latest date keeps the most recent labelled snapshot as recent as possible.
    """
    end = last.floor("D")
    count = int((end - first).days // every_days)
    if count < 0:
        return pd.DatetimeIndex([], tz="UTC")
    offsets = pd.to_timedelta(np.arange(count, -1, -1) * every_days, unit="D")
    dates = pd.DatetimeIndex(end - offsets)
    return dates[dates > first]


def training_dates(
    deals: pd.DataFrame, interactions: pd.DataFrame, every_days: int, horizon_days: int
) -> pd.DatetimeIndex:
    """Snapshot dates whose label window [as_of, as_of + horizon) lies inside the data."""
    last_labelled = last_labelled_as_of(data_end(deals, interactions), horizon_days)
    return snapshot_dates(deals["created_at"].min(), last_labelled, every_days)


def open_deal_snapshots(deals: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per (deal_id, as_of) for every deal open at `as_of`.

    Open as `point_in_time.open_at` says: created before `as_of` and not closed before it (a deal
    closed exactly at `as_of` is still open then, its outcome in the label window [as_of,
    as_of + horizon)). Vectorised with sorted searches over `dates`; rows come sorted by as_of,
    then deal order.
    """
    dates = pd.DatetimeIndex(dates).sort_values().as_unit("ns")
    created = pd.DatetimeIndex(deals["created_at"]).as_unit("ns")
    closed = pd.DatetimeIndex(deals["closed_at"]).as_unit("ns")
    first = first_date_after(dates, created)
    stop = np.where(closed.isna(), len(dates), first_date_after(dates, closed))
    counts = np.maximum(stop - first, 0)
    deal_pos = np.repeat(np.arange(len(deals)), counts)
    date_pos = (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + first[deal_pos]
    )
    rows = pd.DataFrame(
        {"deal_id": deals["deal_id"].to_numpy()[deal_pos], "as_of": dates[date_pos]}
    )
    order = np.lexsort((deal_pos, date_pos))
    return rows.iloc[order].reset_index(drop=True)
