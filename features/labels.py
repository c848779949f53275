"""Outcome labels for snapshot rows."""

from __future__ import annotations

import pandas as pd


def label_outcomes(deals: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> pd.Series:
    """1 if the row's deal is won in (as_of, as_of + horizon_days], else 0; one per snapshot row.

    A win exactly at `as_of` is outside the window (`open_deal_snapshots` gives such a deal no
    row at `as_of`: it is closed then); a win exactly at `as_of + horizon_days` is inside.

    Callers keep only snapshots whose horizon ends inside the data (`training_dates`), where a
    deal still open at the end is a genuine 0.
    """
    closes = snapshots[["deal_id"]].merge(
        deals[["deal_id", "closed_at", "outcome"]], on="deal_id", how="left", validate="m:1"
    )
    horizon_end = snapshots["as_of"].reset_index(drop=True) + pd.Timedelta(days=horizon_days)
    as_of = snapshots["as_of"].reset_index(drop=True)
    closed_at = closes["closed_at"]
    won = (closes["outcome"] == "won") & (closed_at > as_of) & (closed_at <= horizon_end)
    return pd.Series(won.to_numpy(dtype=int), index=snapshots.index, name="label")
