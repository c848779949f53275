"""Owner and account track records, from deals closed strictly before `as_of` only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.codes import parallel_map, row_ranges
from closeprob.features.timeline import SPAN, to_seconds

# Snapshot rows searched at once: a range's int64 temporaries stay a few MB (at 1 thread and
# a million rows they were ~0.1 GB beside the feature block).
SEARCH_RANGE_ROWS = 1 << 18


def history_features(
    deals: pd.DataFrame,
    row_deals: np.ndarray,
    as_of_seconds: np.ndarray,
    key: str,
    prior_strength: float,
    threads: int = 1,
) -> pd.DataFrame:
    """One row per snapshot row: the track record of the row's `key` (owner_id or account_id).

    `row_deals` holds each snapshot row's deal as a position in `deals` (aligned with
    `as_of_seconds`, Unix seconds). A deal counts once closed strictly before `as_of`; the win
    rate is smoothed toward the global win rate of deals closed before `as_of`, with
    `prior_strength` pseudo-deals. Rows without a `key` get NaN. Searches run on `threads`
    row ranges at once.
    """
    who = {"owner_id": "owner", "account_id": "account"}[key]
    deal_code = pd.factorize(deals[key], use_na_sentinel=True)[0].astype(np.int64)  # one pass
    row_code = deal_code[row_deals]
    is_closed = (deals["closed_at"].notna() & deals["outcome"].notna()).to_numpy()
    closed = deals.loc[is_closed, ["closed_at", "outcome", "amount"]]  # not every column
    created_seconds = to_seconds(deals["created_at"])
    origin = int(min(as_of_seconds.min(initial=created_seconds.min()), created_seconds.min()))
    closed_seconds = to_seconds(closed["closed_at"]) - origin
    query_seconds = as_of_seconds - origin
    won = (closed["outcome"] == "won").to_numpy()
    amount = closed["amount"].to_numpy(dtype=float, na_value=np.nan)
    won_value = np.where(won, np.nan_to_num(amount, nan=0.0), 0.0)
    valued_win = won & ~np.isnan(amount)

    everyone = np.zeros(len(closed), np.int64)
    global_n, (global_won,) = _running_totals(
        everyone, closed_seconds, [won], np.zeros(len(row_deals), np.int64), query_seconds, threads
    )
    global_rate = (global_won + 1.0) / (global_n + 2.0)
    n, (wins, value, valued_wins) = _running_totals(
        deal_code[is_closed],
        closed_seconds,
        [won, won_value, valued_win],
        row_code,
        query_seconds,
        threads,
    )
    created_n, _ = _running_totals(
        deal_code, created_seconds - origin, [], row_code, query_seconds, threads
    )
    columns = {
        f"{who}_win_rate": (wins + prior_strength * global_rate) / (n + prior_strength),
        f"{who}_closed_deals": n,
        f"{who}_avg_won_value": np.divide(
            value, valued_wins, out=np.full(len(value), np.nan), where=valued_wins > 0
        ),
        # The row's own deal is open at as_of: among the created, not among the closed.
        f"{who}_open_deals": created_n - n - 1.0,
    }
    unknown = row_code < 0
    for values in columns.values():  # each a new array: set in place, framed without a copy
        values[unknown] = np.nan
    return pd.DataFrame(columns, copy=False)


def _running_totals(
    codes: np.ndarray,
    seconds: np.ndarray,
    columns: list[np.ndarray],
    query_codes: np.ndarray,
    query_seconds: np.ndarray,
    threads: int,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per query: the count of items of the same code strictly before, and the sum of each of
    `columns` over them. One sort for all columns; the searches on row ranges in threads."""
    keep = codes >= 0
    keys = codes[keep] * SPAN + seconds[keep]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    running = [np.concatenate([[0.0], np.cumsum(c[keep][order])]) for c in columns]
    count = np.empty(len(query_codes))
    sums = [np.empty(len(query_codes)) for _ in columns]
    # Each code's first position, searched once per code rather than once per query (a
    # random walk over the keys for millions of snapshot rows).
    firsts = np.searchsorted(keys, np.arange(int(query_codes.max(initial=0)) + 1) * SPAN)

    def search(rows: slice) -> None:
        safe_codes = np.maximum(query_codes[rows], 0)
        hi = np.searchsorted(
            keys, safe_codes * SPAN + np.clip(query_seconds[rows], 0, SPAN - 1), side="left"
        )
        lo = firsts[safe_codes]
        count[rows] = hi - lo
        for total, cumulative in zip(sums, running, strict=True):
            total[rows] = cumulative[hi] - cumulative[lo]

    parallel_map(search, row_ranges(len(query_codes), threads, SEARCH_RANGE_ROWS), threads)
    return count, sums
