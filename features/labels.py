"""Outcome labels for snapshot rows."""

from __future__ import annotations

import pandas as pd

from closeprob.features.point_in_time import won_within


def label_outcomes(deals: pd.DataFrame, snapshots: pd.DataFrame, horizon_days: int) -> pd.Series:
    """1 if the row's deal is won in [as_of, as_of + horizon_days), else 0; one per snapshot row.

    The window is `point_in_time.won_within`'s: a win exactly at `as_of` is inside (the deal is
    still open at `as_of`), a win exactly at `as_of + horizon_days` is outside.

    Callers keep only snapshots whose horizon ends inside the data (`training_dates`), where a
    deal still open at the end is a genuine 0.
    """
    closes = snapshots[["deal_id"]].merge(
        deals[["deal_id", "closed_at", "outcome"]], on="deal_id", how="left", validate="m:1"
    )
    as_of = snapshots["as_of"].reset_index(drop=True)
    won = won_within(closes["outcome"], closes["closed_at"], as_of, horizon_days)
    return pd.Series(won.to_numpy(dtype=int), index=snapshots.index, name="label")
