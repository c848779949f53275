"""Owner and account track records, from deals closed strictly before `as_of` only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.timeline import SPAN, to_seconds


def history_features(
    deals: pd.DataFrame,
    rows: pd.DataFrame,
    as_of_seconds: np.ndarray,
    key: str,
    prior_strength: float,
) -> pd.DataFrame:
    """One row per snapshot row: the track record of the row's `key` (owner_id or account_id).

    `rows` holds each snapshot row's deal (aligned with `as_of_seconds`, Unix seconds). A deal
    counts once closed strictly before `as_of`; the win rate is smoothed toward the global win
    rate of deals closed before `as_of`, with `prior_strength` pseudo-deals. Rows without a
    `key` get NaN.
    """
    who = {"owner_id": "owner", "account_id": "account"}[key]
    entities = pd.Index(deals[key].dropna().unique())
    row_code = entities.get_indexer(rows[key]).astype(np.int64)
    closed = deals[deals["closed_at"].notna() & deals["outcome"].notna()]
    created_seconds = to_seconds(deals["created_at"])
    origin = int(min(as_of_seconds.min(initial=created_seconds.min()), created_seconds.min()))
    closed_seconds = to_seconds(closed["closed_at"]) - origin
    query_seconds = as_of_seconds - origin
    won = (closed["outcome"] == "won").to_numpy()
    amount = closed["amount"].to_numpy(dtype=float, na_value=np.nan)
    won_value = np.where(won, np.nan_to_num(amount, nan=0.0), 0.0)
    valued_win = won & ~np.isnan(amount)

    everyone = np.zeros(len(closed), np.int64)
    global_n, global_won, _ = _running_totals(
        everyone, closed_seconds, won, won_value, np.zeros(len(rows), np.int64), query_seconds
    )
    global_rate = (global_won + 1.0) / (global_n + 2.0)
    closed_code = entities.get_indexer(closed[key]).astype(np.int64)
    n, wins, value = _running_totals(
        closed_code, closed_seconds, won, won_value, row_code, query_seconds
    )
    _, valued_wins, _ = _running_totals(
        closed_code, closed_seconds, valued_win, won_value, row_code, query_seconds
    )
    created_code = entities.get_indexer(deals[key]).astype(np.int64)
    no_flags = np.zeros(len(deals))
    created_n, _, _ = _running_totals(
        created_code, created_seconds - origin, no_flags, no_flags, row_code, query_seconds
    )
    frame = pd.DataFrame(
        {
            f"{who}_win_rate": (wins + prior_strength * global_rate) / (n + prior_strength),
            f"{who}_closed_deals": n,
            f"{who}_avg_won_value": np.divide(
                value, valued_wins, out=np.full(len(value), np.nan), where=valued_wins > 0
            ),
            # The row's own deal is open at as_of: among the created, not among the closed.
            f"{who}_open_deals": created_n - n - 1.0,
        }
    )
    return frame.mask(pd.Series(row_code < 0, index=frame.index), np.nan)


def _running_totals(
    codes: np.ndarray,
    seconds: np.ndarray,
    flags: np.ndarray,
    amounts: np.ndarray,
    query_codes: np.ndarray,
    query_seconds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: count, flagged count and amount sum of items of the same code strictly before."""
    keep = codes >= 0
    keys = codes[keep] * SPAN + seconds[keep]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cum_flags = np.concatenate([[0.0], np.cumsum(flags[keep][order])])
    cum_amounts = np.concatenate([[0.0], np.cumsum(amounts[keep][order])])
    safe_codes = np.maximum(query_codes, 0)
    hi = np.searchsorted(keys, safe_codes * SPAN + np.clip(query_seconds, 0, SPAN - 1), side="left")
    lo = np.searchsorted(keys, safe_codes * SPAN, side="left")
    return (hi - lo).astype(float), cum_flags[hi] - cum_flags[lo], cum_amounts[hi] - cum_amounts[lo]
