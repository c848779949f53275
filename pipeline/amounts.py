"""Declared amounts far above their segment's: counted and named for `check` and `predict`."""

from __future__ import annotations

import logging

import pandas as pd

from closeprob.features.attributes import normalise_levels
from closeprob.pipeline.validate import (
    first_ids,
)

log = logging.getLogger(__name__)


def outlier_amounts(deals: pd.DataFrame, segment: str | None, multiple: float) -> pd.DataFrame:
    """Deals whose declared amount exceeds `multiple` × the median amount of their segment
    (`value.segment`, else all deals): deal_id, amount, median. A typo such as 1.2e9 would
    otherwise put one deal in tier A and every other one in C."""
    amount = deals["amount"]
    if segment and segment in deals.columns:
        median = amount.groupby(normalise_levels(deals[segment]).fillna("")).transform("median")
    else:
        median = pd.Series(amount.median(), index=deals.index)
    flagged = (median > 0) & (amount > multiple * median)
    return pd.DataFrame({"deal_id": deals["deal_id"], "amount": amount, "median": median})[
        flagged.to_numpy()
    ]


def describe_outliers(outliers: pd.DataFrame, multiple: float, segment: str | None) -> str | None:
    if outliers.empty:
        return None
    first = outliers.iloc[0]
    where = f"their {segment} median" if segment else "the median"
    return (
        f"column 'amount' is above {multiple:g}× {where} in {len(outliers)} "
        f"deal{'s' * (len(outliers) != 1)} (first deal_id: {first_ids(outliers['deal_id'])}; "
        f"{first['amount']:,.0f} against a median of {first['median']:,.0f}); check for a typo "
        "(data.amount_outlier_multiple sets the threshold)"
    )


def amount_outliers(
    deals: pd.DataFrame, segment: str | None, multiple: float, among: pd.Series | None = None
) -> str | None:
    """The outlier warning for `deals` (medians over all of them; flagged only `among` these
    deal ids when given), or None."""
    flagged = outlier_amounts(deals, segment, multiple)
    if among is not None:
        flagged = flagged[flagged["deal_id"].isin(among)]
    return describe_outliers(flagged, multiple, segment)
