"""Account purchase histories for customer lifetime value, from won deals closed before `as_of`.

An account's purchases are its won deals; wins closed on the same (UTC) day are one purchase
worth their summed amounts, as in the BG/NBD literature's transaction summaries.
"""

from __future__ import annotations

import pandas as pd

SUMMARY_COLUMNS = ["frequency", "recency_days", "age_days", "monetary"]
DAY_SECONDS = 86_400.0


def account_summaries(deals: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per account_id with a won deal closed strictly before `as_of`.

    frequency: purchase days after the first; recency_days: first to last purchase day;
    age_days: first purchase day to `as_of` (days, fractional); monetary: mean value of the
    repeat purchases (the first excluded; NaN without a repeat or with no amount on any
    repeat; a purchase day on which no win has an amount has no value).
    """
    won = deals[
        (deals["outcome"] == "won") & (deals["closed_at"] < as_of) & deals["account_id"].notna()
    ]
    if won.empty:
        empty = pd.Index([], dtype=deals["account_id"].dtype, name="account_id")
        return pd.DataFrame({c: pd.Series(dtype=float) for c in SUMMARY_COLUMNS}, index=empty)
    days = won.assign(day=won["closed_at"].dt.floor("D"))
    purchases = (
        days.groupby(["account_id", "day"])["amount"].sum(min_count=1).reset_index(name="value")
    )
    by_account = purchases.groupby("account_id")["day"]
    first, last = by_account.min(), by_account.max()
    repeat = purchases[purchases["day"] > purchases["account_id"].map(first)]
    summaries = pd.DataFrame(
        {
            "frequency": by_account.count().astype(float) - 1.0,
            "recency_days": (last - first).dt.total_seconds() / DAY_SECONDS,
            "age_days": (as_of - first).dt.total_seconds() / DAY_SECONDS,
        }
    )
    summaries["monetary"] = repeat.groupby("account_id")["value"].mean()
    summaries["monetary"] = summaries["monetary"].astype(float)
    return summaries.rename_axis("account_id")


def summaries_at(
    deals: pd.DataFrame, as_of_dates: pd.Series | pd.DatetimeIndex
) -> dict[pd.Timestamp, pd.DataFrame]:
    """`account_summaries` at each distinct `as_of` (the summaries for a queue of that date)."""
    return {
        pd.Timestamp(as_of): account_summaries(deals, pd.Timestamp(as_of))
        for as_of in pd.DatetimeIndex(as_of_dates).unique().sort_values()
    }
