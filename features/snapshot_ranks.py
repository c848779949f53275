"""Where a deal stands among the deals open at the same `as_of`: percentile ranks of its age,
quiet time, activity and track records within its snapshot date.

Why: trees cannot extrapolate. When deals that never close pile up, or a season quietens every
deal at once, later dates bring ages and quiet spells beyond any seen in training, and a tree
reads them as its last leaf. A rank within the date stays in (0, 1] whatever the level, so a
model fitted on it compares a deal with its contemporaries instead.

Point in time: each rank compares one row's feature with those of the other rows of the same
`as_of` only, and every one of them was computed from what was known before that `as_of`; the
rows of a date are the deals open then (`features/point_in_time.py`), decided by creations and
closes before it. So the ranks see nothing at or after `as_of` either. They assume the rows of a
date are all of its open deals, as training's snapshots and a local queue are (not a sample).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Features ranked where present: age, quiet time, activity, stage time, track records.
RANKED = (
    "deal_age_days",
    "days_since_last_touch",
    "days_in_stage",
    "touches_total",
    "touches_per_30d",
    "owner_win_rate",
    "account_win_rate",
)


def ranked_columns(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The features of `columns` that get a rank, in `RANKED` order."""
    present = set(columns)
    return [name for name in RANKED if name in present]


def snapshot_rank_features(features: pd.DataFrame, as_of: np.ndarray) -> pd.DataFrame:
    """One row per feature row (same order and index): `<feature>_pct`, the row's percentile
    rank (ties share their average rank; 1 = highest) among the rows with the same `as_of`
    that have the feature. Missing stays missing."""
    names = ranked_columns(list(features.columns))
    ranks = (
        features[names]
        .groupby(np.asarray(as_of), sort=False)
        .rank(method="average", pct=True, na_option="keep")
    )
    return ranks.astype(float).add_suffix("_pct")
