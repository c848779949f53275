"""Where a snapshot date falls in the sales calendar: whole days from `as_of` to the last day
of its quarter.

Why: where sales teams work to quarterly targets, closes bunch up in a quarter's last month,
so the share of open deals that close within the horizon rises and falls with the quarter.
On CRM sales (docs/model-quality.md, round 7) wins closed in June, September and December
number 431, 503 and 511 against 264-446 in the other months, and the 60-day won rate of the
open deals swings from 0.14 to 0.45 with the date; deal age and activity alone cannot see it.

Point in time: a function of `as_of` alone, nothing about any deal, so nothing at or after
`as_of` can reach it (`features/point_in_time.py`).
"""

from __future__ import annotations

import pandas as pd

CALENDAR = {
    "days_to_quarter_end": "whole days from the snapshot date to the last day of its quarter",
}


def calendar_features(as_of: pd.Series) -> pd.DataFrame:
    """One row per `as_of` (UTC timestamps, in order): days to the quarter's last day, 0 on
    that day."""
    dates = pd.DatetimeIndex(as_of)
    dates = (dates.tz_convert(None) if dates.tz is not None else dates).normalize()  # UTC days
    quarter_end = dates.to_period("Q").end_time.normalize()
    days = (quarter_end - dates).days.to_numpy(dtype=float)
    return pd.DataFrame({"days_to_quarter_end": days})
