"""The built-in synthetic CRM's truth: the true close probability of a snapshot row from the
generator's hidden parameters (truth.csv). Used to report how far a model is from the best
possible."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)


def oracle_close_probability(
    truth: pd.DataFrame, snapshots: pd.DataFrame, deals: pd.DataFrame, horizon_days: int
) -> pd.Series:
    """P(won within `horizon_days` after `as_of` | open at `as_of`, hidden truth), one per snapshot.

    `snapshots` has one row per (deal_id, as_of). Uses the generator's duration laws:
    p·[S_w(a) − S_w(a+h)] / [p·S_w(a) + (1−p)·S_l(a)], with a the deal's age in days.
    """
    rows = snapshots[["deal_id", "as_of"]].merge(truth, on="deal_id", how="left", validate="m:1")
    created = snapshots[["deal_id"]].merge(
        deals[["deal_id", "created_at"]], on="deal_id", how="left"
    )
    age = (rows["as_of"] - created["created_at"]).dt.total_seconds().to_numpy() / 86_400.0
    age = np.maximum(age, 1e-9)
    p = rows["p_win"].to_numpy()
    won_law = stats.lognorm(
        s=rows["won_sigma"].to_numpy(), scale=rows["won_median_days"].to_numpy()
    )
    lost_law = stats.lognorm(
        s=rows["lost_sigma"].to_numpy(), scale=rows["lost_median_days"].to_numpy()
    )
    won_alive = won_law.sf(age)
    numerator = p * (won_alive - won_law.sf(age + horizon_days))
    denominator = p * won_alive + (1.0 - p) * lost_law.sf(age)
    return pd.Series(
        np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0),
        index=snapshots.index,
        name="p_oracle",
    )
