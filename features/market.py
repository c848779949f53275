"""Activity relative to the market: a deal's interactions against those of every deal open at
the same `as_of`.

Activity has seasons that say nothing about a deal: August, year-end and holidays quieten
every deal at once, quarter-ends and growth busy them. A model that reads only absolute counts
takes a quiet August for stalled deals (measured on the built-in data: p_close 2.6 points low
in the late-summer backtest weeks against the generator's true probabilities; README
"Activity relative to the market"). These features divide by the market's level at `as_of`:
interactions in [as_of − days, as_of) by deals open at `as_of`, per open deal and day. Open
means `point_in_time.open_at` (created before `as_of`, not closed before it), as for snapshot
rows, so the
level is the same whether the caller passes every interaction or only the open deals' (the
batch job's), and the Spark engine sums per-bucket counts into the same figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.codes import parallel_map, row_ranges
from closeprob.features.timeline import SECONDS_PER_DAY, Timeline, deal_codes

NS_PER_DAY = SECONDS_PER_DAY * 1_000_000_000
SHORT_WINDOW_DAYS = 7
MARKET_RANGE_EVENTS = 2_000_000  # events a thread sorts at once: ~0.1 GB of temporaries


def _ns(times: pd.Series | pd.DatetimeIndex, missing: int) -> np.ndarray:
    index = pd.DatetimeIndex(times).as_unit("ns")
    return np.where(index.isna(), missing, index.asi8)


def _lifetimes(deals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Creation and close of each deal in ns (a deal not closed: closes never)."""
    never = np.iinfo(np.int64).max
    return _ns(deals["created_at"], never), _ns(deals["closed_at"], never)


def open_deal_counts(deals: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """Per date, the deals open at it."""
    created, closed = _lifetimes(deals)
    return np.array(
        [int(((created < d) & (closed >= d)).sum()) for d in _ns(dates, 0)], dtype=np.int64
    )


def window_event_counts(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    dates: pd.DatetimeIndex,
    days: int,
    codes: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Per date, the interactions in [date − days, date) of deals open at the date (integers, so
    that per-bucket counts add up exactly). `codes`: each interaction's position in `deals`
    (`deal_codes`), when the caller has them. Ranges of events are counted in `threads` threads
    and added up, as buckets are."""
    if codes is None:
        codes = deal_codes(pd.Index(deals["deal_id"]), interactions["deal_id"], threads)
    occurred_at = interactions["occurred_at"]
    created, closed = _lifetimes(deals)
    starts, stops = _ns(dates, 0) - days * NS_PER_DAY, _ns(dates, 0)

    def count(rows: slice) -> np.ndarray:
        part_codes = codes[rows]
        part_times = _ns(occurred_at.iloc[rows], np.iinfo(np.int64).max)
        known = part_codes >= 0
        if not known.all():
            part_times, part_codes = part_times[known], part_codes[known]
        order = np.argsort(part_times, kind="stable")
        part_times, part_codes = part_times[order], part_codes[order]
        del order
        counts = np.zeros(len(stops), dtype=np.int64)
        for i, (start, stop) in enumerate(zip(starts, stops, strict=True)):
            begin, end = np.searchsorted(part_times, [start, stop], side="left")
            window = part_codes[begin:end]
            counts[i] = int(((created[window] < stop) & (closed[window] >= stop)).sum())
        return counts

    ranges = row_ranges(len(occurred_at), threads, MARKET_RANGE_EVENTS)
    parts = parallel_map(count, ranges, threads)
    total = np.zeros(len(stops), dtype=np.int64)
    for part in parts:
        total += part
    return total


def market_levels(
    events: np.ndarray, open_deals: np.ndarray, dates: pd.DatetimeIndex, days: int
) -> pd.Series:
    """Interactions per open deal and day, per date (NaN where no deal is open)."""
    level = np.divide(
        events.astype(float),
        open_deals.astype(float) * days,
        out=np.full(len(events), np.nan),
        where=open_deals > 0,
    )
    return pd.Series(level, index=pd.DatetimeIndex(dates), name="market_level")


def levels_for(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Series,
    days: int,
    codes: np.ndarray | None = None,
    threads: int = 1,
) -> pd.Series:
    """The market level of every distinct `as_of`, from these deals and interactions (`codes`
    and `threads` as for `window_event_counts`)."""
    dates = pd.DatetimeIndex(pd.Series(as_of).unique()).sort_values()
    events = window_event_counts(deals, interactions, dates, days, codes, threads)
    return market_levels(events, open_deal_counts(deals, dates), dates, days)


def market_features(
    timeline: Timeline, created_at: np.ndarray, level: np.ndarray, days: int
) -> pd.DataFrame:
    """One row per query: the market's level and the deal's activity against it. `level` is
    per query (interactions per open deal and day at its `as_of`); `created_at` each query's
    deal creation in seconds past the log's origin."""
    age_days = np.maximum((timeline.queries.as_of - created_at) / SECONDS_PER_DAY, 1.0)
    columns = {
        f"market_touches_{days}d": level * days,
        f"touches_{days}d_vs_market": _ratio(timeline.count(None, 0, days), level * days),
    }
    if days > SHORT_WINDOW_DAYS:
        columns[f"touches_{SHORT_WINDOW_DAYS}d_vs_market"] = _ratio(
            timeline.count(None, 0, SHORT_WINDOW_DAYS), level * SHORT_WINDOW_DAYS
        )
    columns["lifetime_touches_vs_market"] = _ratio(
        timeline.count(None, 0, np.inf) / age_days, level
    )
    columns["quiet_vs_market"] = timeline.days_since_last(None) * level
    return pd.DataFrame(columns)


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.divide(part, whole, out=np.full(len(part), np.nan), where=whole > 0)
