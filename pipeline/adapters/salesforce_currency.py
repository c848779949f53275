"""Amounts of a multi-currency Salesforce org in its corporate currency, at the org's own rates
when the export has them (Salesforce object reference: CurrencyType, DatedConversionRate):

- `DatedConversionRate.csv` (advanced currency management): `IsoCode`, `ConversionRate`
  against the corporate currency, in force from `StartDate` until `NextStartDate`; an
  opportunity converts at the rate in force on its `CloseDate`, as Salesforce converts it.
- else `CurrencyType.csv`: one `ConversionRate` per `IsoCode`; `IsCorporate` names the
  corporate currency.

An amount in the corporate currency is `Amount / ConversionRate`. Without either file the
deals keep their `currency` and `check` asks for `data.currency_rates`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.adapters.crm_export import read_export
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.values import parse_flags

DATED, TYPES = "DatedConversionRate.csv", "CurrencyType.csv"


def corporate_amounts(
    source: Path, amount: pd.Series, currency: pd.Series, close_date: pd.Series, ids: pd.Series
) -> tuple[pd.Series, pd.Series, str | None]:
    """(amounts, currencies, note): the amounts in the corporate currency and that currency on
    every row when the export has the rates; else the amounts and currencies as they are."""
    if currency.dropna().nunique() <= 1 or not (
        (source / DATED).is_file() or (source / TYPES).is_file()
    ):
        return amount, currency, None
    corporate, flat = _currency_types(source)
    rate = pd.Series(np.nan, index=amount.index)
    if (source / DATED).is_file():
        rate = _dated_rates(source / DATED, currency, close_date)
    missing = rate.isna() & currency.notna()
    rate[missing] = currency[missing].map(flat)
    unknown = rate.isna() & currency.notna() & amount.notna()
    if unknown.any():
        files = " or ".join(f for f in (DATED, TYPES) if (source / f).is_file())
        raise DataContractError(
            f"{source / 'Opportunity.csv'}: column 'CurrencyIsoCode' has {int(unknown.sum())} "
            f"opportunities in a currency with no rate in {files} (first: "
            f"{currency[unknown].iloc[0]!r}, CloseDate {close_date[unknown].iloc[0]}, Id "
            f"{ids[unknown].iloc[0]!r}); export the rates again with every currency (and "
            "period) your opportunities use"
        )
    converted = amount / rate.where(currency.notna(), 1.0)
    label = corporate or "the corporate currency"
    note = (
        f"amounts converted into {label} at the org's rates "
        f"({DATED if (source / DATED).is_file() else TYPES}: Amount / ConversionRate"
        f"{', the rate in force on the CloseDate' if (source / DATED).is_file() else ''})"
    )
    return converted, pd.Series(corporate, index=amount.index, dtype="str"), note


def _currency_types(source: Path) -> tuple[str | None, dict[str, float]]:
    """The corporate currency (IsCorporate) and each currency's rate, from CurrencyType.csv."""
    path = source / TYPES
    if not path.is_file():
        return None, {}
    types = read_export(path, ["IsoCode", "ConversionRate"], ["IsCorporate"], "CurrencyType")
    rates = dict(zip(types["IsoCode"].str.strip(), _rates(types, path), strict=True))
    if "IsCorporate" not in types.columns:
        return None, rates
    corporate = parse_flags(types["IsCorporate"], str(path), "IsCorporate", types["IsoCode"])
    return (
        str(types.loc[corporate, "IsoCode"].iloc[0]).strip() if corporate.any() else None
    ), rates


def _dated_rates(path: Path, currency: pd.Series, close_date: pd.Series) -> pd.Series:
    """Per opportunity, the rate of its currency in force on its CloseDate (NaN when none)."""
    dated = read_export(
        path, ["IsoCode", "ConversionRate", "StartDate"], ["NextStartDate"], "DatedConversionRate"
    )
    periods = pd.DataFrame(
        {
            "code": dated["IsoCode"].str.strip(),
            "start": pd.to_datetime(dated["StartDate"], utc=True, format="ISO8601").dt.as_unit(
                "ns"
            ),
            "rate": _rates(dated, path),
        }
    ).sort_values("start")
    at = pd.to_datetime(close_date, utc=True).dt.as_unit("ns")
    rows = pd.DataFrame({"code": currency, "at": at, "row": np.arange(len(currency))})
    known = rows.dropna(subset=["code", "at"]).sort_values("at")
    matched = pd.merge_asof(
        known, periods, left_on="at", right_on="start", by="code", direction="backward"
    )
    rate = np.full(len(currency), np.nan)
    rate[matched["row"].to_numpy(dtype=np.int64)] = matched["rate"].to_numpy(dtype=float)
    return pd.Series(rate, index=currency.index)


def _rates(frame: pd.DataFrame, path: Path) -> np.ndarray:
    rate = pd.to_numeric(frame["ConversionRate"].str.strip(), errors="coerce")
    bad = ~(rate > 0)
    if bad.any():
        raise DataContractError(
            f"{path}: column 'ConversionRate' has {int(bad.sum())} values that are not a "
            f"positive rate (first: {frame['ConversionRate'][bad].iloc[0]!r}, IsoCode "
            f"{frame['IsoCode'][bad].iloc[0]!r})"
        )
    return rate.to_numpy(dtype=float)
