"""Activity relative to the market: a deal's interactions against those of every deal open at
the same `as_of`.

Activity has seasons that say nothing about a deal: August, year-end and holidays quieten
every deal at once, quarter-ends and growth busy them. A model that reads only absolute counts
takes a quiet August for stalled deals (measured on the built-in data: p_close 2.6 points low
in the late-summer backtest weeks against the generator's true probabilities; README
"Activity relative to the market"). These features divide by the market's level at `as_of`:
interactions in [as_of − days, as_of) by deals open at `as_of`, per open deal and day. Open
means `point_in_time.open_at` (created before `as_of`, not closed before it), as for snapshot
rows, so the level is the same whether the caller passes every interaction or only the open
deals' (the batch job's), and the Spark engine adds per-bucket tables into the same figure.
Each deal's count is capped at what the busiest deals but a few logged (`capped_total`): one
deal logging thousands of events cannot move every other deal's features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.codes import parallel_map, row_ranges
from closeprob.features.timeline import SECONDS_PER_DAY, Timeline, deal_codes

NS_PER_DAY = SECONDS_PER_DAY * 1_000_000_000
SHORT_WINDOW_DAYS = 7
MARKET_RANGE_EVENTS = 2_000_000  # events a thread sorts at once: ~0.1 GB of temporaries
# The busiest share of open deals whose counts are capped in the robust level (at least one).
CAPPED_SHARE = 0.05


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


def window_touch_counts(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    dates: pd.DatetimeIndex,
    days: int,
    codes: np.ndarray | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Per date (`position` in `dates`) and count of interactions (`touches`, at least 1): how
    many `deals` open at the date logged that many in [date − days, date). Open deals with none
    are not rows (the open count says how many). Integers, so that the rows of per-bucket
    tables add up exactly to the whole table's. `codes`: each interaction's position in
    `deals` (`deal_codes`), when the caller has them; ranges of deals are counted in `threads`
    threads, as buckets are (every event of a deal in one range)."""
    if codes is None:
        codes = deal_codes(pd.Index(deals["deal_id"]), interactions["deal_id"], threads)
    occurred_at = interactions["occurred_at"]
    created, closed = _lifetimes(deals)
    parts = len(row_ranges(len(codes), threads, MARKET_RANGE_EVENTS))
    cuts = np.linspace(0, len(deals), parts + 1).astype(np.int64)

    def count(part: int) -> pd.DataFrame:
        inside = (codes >= cuts[part]) & (codes < cuts[part + 1])
        times = _ns(occurred_at[inside], np.iinfo(np.int64).max)
        order = np.argsort(times, kind="stable")
        times, part_codes = times[order], codes[inside][order]
        tables = []
        for position, date in enumerate(_ns(dates, 0)):
            start, stop = np.searchsorted(times, [date - days * NS_PER_DAY, date], side="left")
            window = part_codes[start:stop]
            window = window[(created[window] < date) & (closed[window] >= date)]
            per_deal = np.unique(window, return_counts=True)[1]
            touches, deals_with = np.unique(per_deal, return_counts=True)
            tables.append(
                pd.DataFrame({"position": position, "touches": touches, "deals": deals_with})
            )
        return pd.concat(tables, ignore_index=True) if tables else _no_touches()

    return pd.concat(
        [_no_touches(), *parallel_map(count, range(parts), threads)], ignore_index=True
    ).astype({"position": np.int64, "touches": np.int64, "deals": np.int64})


def _no_touches() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in ("position", "touches", "deals")})


def market_levels(
    touches: pd.DataFrame,
    open_deals: np.ndarray,
    dates: pd.DatetimeIndex,
    days: int,
    robust: bool = True,
) -> pd.Series:
    """Interactions per open deal and day, per date (NaN where no deal is open), from the rows
    of one or more `window_touch_counts` tables (rows of one date and count add up).

    Robust: each deal counts at most as many interactions as the busiest deals but a few
    (`capped_total`), so no single deal moves the level much however many events it logs
    (issue 20: one deal with 500,000 interactions moved 70 of 126 other deals' p_close); the
    total is still divided by every open deal, quiet ones included.
    Otherwise the plain mean, what models stored before the cap read."""
    table = touches.groupby(["position", "touches"])["deals"].sum()
    by_date = dict(iter(table.groupby(level="position")))  # numpy int keys hash as ints
    level = np.full(len(dates), np.nan)
    for position, n_open in enumerate(np.asarray(open_deals, dtype=np.int64)):
        if n_open <= 0:
            continue
        rows = by_date.get(position, pd.Series([], dtype=np.int64))
        # Ascending: the groupby sorted them.
        counts = np.asarray(rows.index.get_level_values(-1), dtype=np.int64)
        deals_with = rows.to_numpy(dtype=np.int64)
        total = capped_total(counts, deals_with) if robust else float(np.dot(counts, deals_with))
        level[position] = total / (n_open * days)
    return pd.Series(level, index=pd.DatetimeIndex(dates), name="market_level")


def capped_total(counts: np.ndarray, deals_with: np.ndarray) -> float:
    """The deals' interactions, each deal's count capped at the count of the deal ranked k-th
    quietest among the n deals that logged any, k = n − max(1, ⌊CAPPED_SHARE × n⌋): the
    busiest 5 %, and at least one deal, are capped (a deal alone in logging any counts 0).
    `counts` ascending and positive, with how many deals logged each.

    The cap is a count some other deal logged, so adding any number of events to one deal
    moves the total by at most (capped deals + 1) × the largest count among the other deals:
    the other deals' market features stay bounded (tests/features/test_market.py)."""
    active = int(deals_with.sum())
    rank = active - max(1, int(active * CAPPED_SHARE))
    if rank <= 0:
        return 0.0
    cap = counts[np.searchsorted(np.cumsum(deals_with), rank)]
    return float(np.dot(np.minimum(counts, cap), deals_with))


def levels_for(
    deals: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Series,
    days: int,
    codes: np.ndarray | None = None,
    threads: int = 1,
    robust: bool = True,
) -> pd.Series:
    """The market level of every distinct `as_of`, from these deals and interactions (`codes`
    and `threads` as for `window_touch_counts`; `robust` as for `market_levels`)."""
    dates = pd.DatetimeIndex(pd.Series(as_of).unique()).sort_values()
    touches = window_touch_counts(deals, interactions, dates, days, codes, threads)
    return market_levels(touches, open_deal_counts(deals, dates), dates, days, robust)


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
