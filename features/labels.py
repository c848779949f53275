"""Outcome labels for snapshot rows."""

from __future__ import annotations

import pandas as pd


def label_outcomes(deals: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> pd.Series:
    """1 if the row's deal is won in (as_of, as_of + horizon_days], else 0; one per snapshot row.

    Callers keep only snapshots whose horizon ends inside the data (`training_dates`), where a
    deal still open at the end is a genuine 0.
    """
    closes = snapshots[["deal_id"]].merge(
        deals[["deal_id", "closed_at", "outcome"]], on="deal_id", how="left", validate="m:1"
    )
    horizon_end = snapshots["as_of"].reset_index(drop=True) + pd.Timedelta(days=horizon_days)
    won = (closes["outcome"] == "won") & (closes["closed_at"] <= horizon_end)
    return pd.Series(won.to_numpy(dtype=int), index=snapshots.index, name="label")
