"""The point-in-time rule, defined once: what is known at `as_of`, which deals are open then,
and which outcome a snapshot row is labelled with.

One rule for every timestamp (a creation, a close, an interaction): **dated before `as_of` is
the past, dated at or after it is the future.** So

- an interaction is *known at* `as_of` when `occurred_at < as_of`;
- a deal is *closed by* `as_of` when `closed_at < as_of` (its outcome known then);
- a deal is *open at* `as_of` when `created_at < as_of` and it is not closed by then: a deal
  closed exactly at `as_of` is still open (its close is news of that instant, as an interaction
  at `as_of` is), and its outcome falls in the label window;
- a row is *won within the horizon* when its deal is won with `as_of <= closed_at < as_of +
  horizon`: the label window is the half-open future [as_of, as_of + horizon), the same
  intervals as the past [.., as_of), so every instant belongs to exactly one side.

CRM exports often date closes at midnight (a close *date*): with snapshots at midnight UTC, a
deal closed "on" the snapshot day closed during that day, after the snapshot, which is what the
rule says. Every module that draws the line (snapshots, labels, history, market, the data as
they stood at a date, the backtest) asks this module; the sorted-search helpers are the same
rule for code that works on sorted arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def known_before(occurred_at: pd.Series, as_of: pd.Timestamp | pd.Series) -> pd.Series:
    """True where an event dated `occurred_at` is in the past at `as_of` (missing: False)."""
    return (occurred_at < as_of).fillna(False).astype(bool)


def closed_by(closed_at: pd.Series, as_of: pd.Timestamp | pd.Series) -> pd.Series:
    """True where a deal's close is in the past at `as_of` (never closed: False)."""
    return (closed_at < as_of).fillna(False).astype(bool)


def open_at(
    created_at: pd.Series, closed_at: pd.Series, as_of: pd.Timestamp | pd.Series
) -> pd.Series:
    """True where a deal is open at `as_of`: created before it and not closed by it."""
    return known_before(created_at, as_of) & ~closed_by(closed_at, as_of)


def won_within(
    outcome: pd.Series,
    closed_at: pd.Series,
    as_of: pd.Timestamp | pd.Series,
    horizon_days: int,
) -> pd.Series:
    """True where a deal is won in [as_of, as_of + horizon_days)."""
    end = as_of + pd.Timedelta(days=horizon_days)
    inside = (closed_at >= as_of) & (closed_at < end)
    return ((outcome == "won") & inside).fillna(False).astype(bool)


def data_end(deals: pd.DataFrame, interactions: pd.DataFrame) -> pd.Timestamp:
    """The latest instant the data know about: the last creation, close or interaction."""
    candidates = [
        deals["created_at"].max(),
        deals["closed_at"].max(),
        interactions["occurred_at"].max(),
    ]
    return max(t for t in candidates if pd.notna(t))


def last_labelled_as_of(end: pd.Timestamp, horizon_days: int) -> pd.Timestamp:
    """The latest `as_of` whose label window [as_of, as_of + horizon) lies inside data ending
    at `end`: every outcome of that window is known."""
    return end - pd.Timedelta(days=horizon_days)


# The same rule on sorted arrays: `dates` ascending, `times` of events or closes.


def first_date_after(dates: pd.DatetimeIndex, times: pd.DatetimeIndex) -> np.ndarray:
    """Per time, the index of the first of the ascending `dates` that has it in its past
    (`time < date`); a missing time gives 0 (callers mask it). On int64 nanoseconds: numpy's
    search over objects reuses the previous key's bounds, which NaT comparisons corrupt."""
    date_ns = pd.DatetimeIndex(dates).as_unit("ns").asi8
    time_ns = pd.DatetimeIndex(times).as_unit("ns").asi8
    return np.asarray(np.searchsorted(date_ns, time_ns, side="right"))


def events_before(times: np.ndarray, as_of: object) -> np.ndarray:
    """Per `as_of`, how many of the ascending `times` are in its past (`time < as_of`)."""
    return np.asarray(np.searchsorted(times, np.asarray(as_of), side="left"))
