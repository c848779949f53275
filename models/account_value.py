"""Each account's expected future value at `as_of`: BG/NBD and Gamma-Gamma fitted on the
purchase histories (won deals) known before `as_of`, in days."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.accounts import account_summaries
from closeprob.models.clv import (
    customer_lifetime_value,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    probability_alive,
)
from closeprob.models.ranker import assign_tiers

ACCOUNT_COLUMNS = ["account_p_alive", "account_expected_purchases", "account_clv"]
# CLV is discounted month by month (30-day periods), as lifetimes' customer_lifetime_value.
PERIOD_DAYS = 30.0


def value_accounts(
    summaries: pd.DataFrame, horizon_days: float, annual_discount_rate: float, min_accounts: int
) -> pd.DataFrame:
    """One row per account of `summaries` (features/accounts.py): P(alive), expected purchases
    in the next `horizon_days` and their discounted expected value (spend from Gamma-Gamma).

    Empty when fewer than `min_accounts` accounts have a purchase or none has a repeat: BG/NBD
    is not identified there. With fewer than `min_accounts` repeat accounts with a value, the
    spend per purchase is their plain mean instead of Gamma-Gamma's."""
    empty = pd.DataFrame(columns=ACCOUNT_COLUMNS, index=summaries.index[:0], dtype=float)
    if len(summaries) < min_accounts or not (summaries["frequency"] > 0).any():
        return empty
    x, t_x, age = (
        summaries[c].to_numpy(dtype=float) for c in ["frequency", "recency_days", "age_days"]
    )
    bgnbd = fit_bgnbd(x, t_x, age)
    spend = _spend(summaries, min_accounts)
    period_rate = (1.0 + annual_discount_rate) ** (PERIOD_DAYS / 365.0) - 1.0
    return pd.DataFrame(
        {
            "account_p_alive": probability_alive(bgnbd, x, t_x, age),
            "account_expected_purchases": expected_purchases(bgnbd, horizon_days, x, t_x, age),
            "account_clv": customer_lifetime_value(
                bgnbd, spend, x, t_x, age, horizon_days, PERIOD_DAYS, period_rate
            ),
        },
        index=summaries.index,
    )


def _spend(summaries: pd.DataFrame, min_accounts: int) -> np.ndarray:
    """Expected value of each account's next purchase."""
    valued = summaries[(summaries["frequency"] > 0) & (summaries["monetary"] > 0)]
    if len(valued) == 0:
        return np.full(len(summaries), np.nan)
    if len(valued) >= min_accounts:
        params = fit_gamma_gamma(valued["frequency"], valued["monetary"])
        if params.q > 1:  # q <= 1: the population mean spend is infinite; use the plain mean
            monetary = summaries["monetary"].fillna(0.0).clip(lower=0.0)
            return expected_spend(params, summaries["frequency"].where(monetary > 0, 0), monetary)
    return np.full(len(summaries), float(valued["monetary"].mean()))


def account_values_for_rows(
    deals: pd.DataFrame,
    rows: pd.DataFrame,
    horizon_days: float,
    annual_discount_rate: float,
    min_accounts: int,
) -> pd.DataFrame:
    """ACCOUNT_COLUMNS for each snapshot row (`deal_id`, `as_of`), aligned with `rows`: its
    deal's account valued at the row's `as_of` from wins closed strictly before it. NaN for
    a deal without an account, an account without a win before `as_of`, or an `as_of`
    without enough history."""
    account = rows["deal_id"].map(deals.set_index("deal_id")["account_id"])
    values = pd.DataFrame(np.nan, index=rows.index, columns=ACCOUNT_COLUMNS)
    as_of_dates = pd.DatetimeIndex(rows["as_of"])
    for as_of in as_of_dates.unique().sort_values():
        at = rows.index[as_of_dates == as_of]
        summaries = account_summaries(deals, as_of)
        valued = value_accounts(summaries, horizon_days, annual_discount_rate, min_accounts)
        looked_up = valued.reindex(account.loc[at].to_numpy())
        values.loc[at, ACCOUNT_COLUMNS] = looked_up.to_numpy(dtype=float)
    return values


CLV = "clv"


def add_account_value(values: pd.DataFrame, account_clv: np.ndarray) -> pd.DataFrame:
    """`deal_value` and `value_source` (models/value.py's `deal_values`) with the account's
    CLV added where the deal's account has one: value = deal value (0 if unknown) + CLV,
    source `clv`. Other rows are unchanged."""
    clv = np.asarray(account_clv, dtype=float)
    has_clv = np.isfinite(clv)
    deal_value = values["deal_value"].to_numpy(dtype=float)
    value = np.where(has_clv, np.nan_to_num(deal_value, nan=0.0) + np.nan_to_num(clv), deal_value)
    source = np.where(has_clv, CLV, values["value_source"].to_numpy(dtype=object))
    return values.assign(deal_value=value, value_source=source)


def realised_account_value(
    deals: pd.DataFrame, rows: pd.DataFrame, horizon_days: float
) -> np.ndarray:
    """For each snapshot row (`deal_id`, `as_of`): the amounts of its account's other deals
    won in (as_of, as_of + horizon_days], the realised counterpart of `account_clv`. 0 for a
    deal without an account. Outcomes, not features: used only to score rankings."""
    won = deals[(deals["outcome"] == "won") & deals["account_id"].notna()]
    won = won[["deal_id", "account_id", "closed_at", "amount"]].rename(
        columns={"deal_id": "other_id"}
    )
    keyed = rows[["deal_id", "as_of"]].reset_index(drop=True).rename_axis("row").reset_index()
    keyed["account_id"] = keyed["deal_id"].map(deals.set_index("deal_id")["account_id"])
    pairs = keyed.dropna(subset=["account_id"]).merge(won, on="account_id")
    inside = (
        (pairs["other_id"] != pairs["deal_id"])
        & (pairs["closed_at"] > pairs["as_of"])
        & (pairs["closed_at"] <= pairs["as_of"] + pd.Timedelta(days=horizon_days))
    )
    totals = pairs[inside].groupby("row")["amount"].sum()
    return totals.reindex(keyed["row"], fill_value=0.0).to_numpy(dtype=float)


def tiers_by_account_clv(account_clv: np.ndarray, a_share: float, b_share: float) -> np.ndarray:
    """A/B/C tiers of queue rows by their account's CLV (`ranking.tier_by: account_clv`): A
    holds the rows making up the first `a_share` of total CLV in descending CLV order, as
    `assign_tiers` does with expected value. Rows without a CLV count 0 (tier C)."""
    clv = np.nan_to_num(np.asarray(account_clv, dtype=float), nan=0.0)
    order = np.argsort(-clv, kind="stable")
    tiers = np.empty(len(clv), dtype=object)
    tiers[order] = assign_tiers(clv[order], a_share, b_share)
    return tiers
