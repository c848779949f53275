"""UCI Bank Marketing (a Portuguese bank's term-deposit telemarketing) on the data contract.

One row of `bank-full.csv` (`;`-separated, 45,211 rows in time order, May 2008 – Nov 2010) is
one deal: a client's last contact of a campaign, won if the client subscribed (`y` = yes).
There are no events: the features come from attributes known before the call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_source_csv
from closeprob.pipeline.validate import (
    INTERACTION_COLUMNS,
    INTERACTION_OPTIONAL,
    parse_numbers,
    require_columns,
    validate_deals,
    validate_interactions,
)

CONTACTS_FILE = "bank-full.csv"
FIRST_YEAR = 2008
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CATEGORICAL = ("job", "marital", "education", "default", "housing", "loan", "contact", "poutcome")
# Numbers become readable bands, because configured attributes are categorical features.
# Each band is (lower bound inclusive, label), in increasing order.
BANDS: dict[str, tuple[tuple[float, str], ...]] = {
    "age": (
        (-np.inf, "<25"),
        (25, "25-29"),
        (30, "30-39"),
        (40, "40-49"),
        (50, "50-59"),
        (60, "60+"),
    ),
    "balance": (
        (-np.inf, "<0"),
        (0, "0"),
        (1, "1-499"),
        (500, "500-1999"),
        (2000, "2000-9999"),
        (10_000, "10000+"),
    ),
    "campaign": ((-np.inf, "1"), (2, "2"), (3, "3"), (4, "4-5"), (6, "6-10"), (11, "11+")),
    "pdays": ((-np.inf, "never"), (0, "0-90"), (91, "91-180"), (181, "181-365"), (366, "366+")),
    "previous": ((-np.inf, "0"), (1, "1"), (2, "2-3"), (4, "4+")),
}
ATTRIBUTES = (
    "age",
    "job",
    "marital",
    "education",
    "default",
    "balance",
    "housing",
    "loan",
    "contact",
    "campaign",
    "pdays",
    "previous",
    "poutcome",
)
# `duration` (the call's length) is known only once the call is over: it is never read.
LEAKING = ("duration",)
REQUIRED = ("day", "month", "y", *CATEGORICAL, *BANDS)

NOTES = [
    "one deal per row (a client's last contact of a campaign); won if y == 'yes'",
    "dates rebuilt from day and month: the year starts at 2008 and goes up each time the month "
    "goes back in row order; created_at is that day at 12:00 UTC, closed_at one day later",
    "no amount: the data have no deal value, so the queue ranks by probability",
    "no events: features come from attributes only",
    "no owner_id or account_id: no track-record features",
    "duration is dropped: it is known only after the call (the authors say so too)",
    "age, balance, campaign, pdays and previous are binned into readable bands ('30-39'), "
    "because configured attributes are categorical features",
]


def read_contacts(source: Path) -> pd.DataFrame:
    """The raw contacts, one row per client and campaign, in the file's (time) order, as text;
    the LEAKING columns are not read."""
    path = source / CONTACTS_FILE
    if not path.is_file():
        raise DataContractError(
            f"{path}: file not found; the bank_marketing adapter reads the UCI file "
            f"{CONTACTS_FILE!r} from the source folder (pass --source to the folder holding it)"
        )
    contacts = read_source_csv(path, sep=";", usecols=lambda column: column not in LEAKING)
    require_columns(contacts, REQUIRED, str(path))
    return contacts


def contact_dates(contacts: pd.DataFrame, source: str) -> pd.Series:
    """Midnight UTC of each row's contact day; the year is inferred from the row order.

    The year starts at FIRST_YEAR and goes up by one each time the month is earlier than the
    previous row's month. The result must be non-decreasing in row order.
    """
    month = contacts["month"].str.strip().str.lower().map({m: i + 1 for i, m in enumerate(MONTHS)})
    if month.isna().any():
        raise DataContractError(
            f"{source}: column 'month' has unknown values "
            f"{sorted(contacts.loc[month.isna(), 'month'].astype(str).unique())[:5]!r}; "
            f"expected one of {list(MONTHS)}"
        )
    year = FIRST_YEAR + (month.diff() < 0).cumsum()
    day = pd.to_numeric(contacts["day"], errors="coerce")
    parts = pd.DataFrame({"year": year, "month": month, "day": day})
    dates = pd.to_datetime(parts, errors="coerce").dt.tz_localize("UTC")
    bad = dates.isna() | (dates.diff() < pd.Timedelta(0))
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataContractError(
            f"{source}: columns 'day'/'month' do not give valid dates in non-decreasing row order "
            f"(first bad data row: {row + 1}, day={contacts['day'].iloc[row]!r}, "
            f"month={contacts['month'].iloc[row]!r}); the adapter relies on the file's time "
            "order to infer the year"
        )
    return dates


def band(values: pd.Series, bands: tuple[tuple[float, str], ...]) -> pd.Series:
    """The label of the band each number falls in (lower bound inclusive); NaN stays missing."""
    bounds = np.array([lower for lower, _ in bands])
    labels = np.array([label for _, label in bands], dtype=object)
    numbers = values.to_numpy(dtype=float)
    position = np.searchsorted(bounds, numbers, side="right") - 1
    banded = pd.Series(labels[position], index=values.index, dtype="str")
    return banded.where(~np.isnan(numbers))


def build_attributes(contacts: pd.DataFrame, deal_ids: pd.Series, source: str) -> pd.DataFrame:
    """One row per contact: the attributes known before the call, all as text; the numbers
    binned by BANDS."""
    columns = {
        name: band(parse_numbers(contacts, name, source, deal_ids), BANDS[name]) for name in BANDS
    }
    columns |= {name: contacts[name].str.strip() for name in CATEGORICAL}
    return pd.DataFrame(columns, index=contacts.index)[list(ATTRIBUTES)]


def build_deals(contacts: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per contact, `deal_id` 'C' and its 1-based row number ('C00001'): created at
    noon UTC of its day, closed a day later, won if y == 'yes'."""
    contacts = contacts.reset_index(drop=True)
    deal_id = pd.Series([f"C{i:05d}" for i in range(1, len(contacts) + 1)], dtype="str")
    created_at = contact_dates(contacts, source) + pd.Timedelta(hours=12)
    subscribed = contacts["y"].str.strip().str.lower()
    if not subscribed.isin(("yes", "no")).all():
        raise DataContractError(
            f"{source}: column 'y' has values other than 'yes'/'no' "
            f"({sorted(subscribed[~subscribed.isin(('yes', 'no'))].astype(str).unique())[:5]!r})"
        )
    raw = pd.DataFrame(
        {
            "deal_id": deal_id,
            "created_at": created_at,
            "closed_at": created_at + pd.Timedelta(days=1),
            "outcome": np.where(subscribed == "yes", "won", "lost"),
            "amount": np.nan,
        }
    )
    attributes = build_attributes(contacts, deal_id, source)
    return validate_deals(pd.concat([raw, attributes], axis=1), source, ATTRIBUTES)


def no_interactions(deal_ids: pd.Series, source: str) -> pd.DataFrame:
    """An empty interactions table with the contract's columns and types."""
    columns = (*INTERACTION_COLUMNS, *INTERACTION_OPTIONAL)
    return validate_interactions(
        pd.DataFrame({c: pd.Series(dtype="str") for c in columns}), source, deal_ids
    )


def adapt(source: Path) -> Adapted:
    """Bank Marketing on the data contract: 45,211 closed deals, no interactions."""
    contacts = read_contacts(source)
    path = str(source / CONTACTS_FILE)
    deals = build_deals(contacts, path)
    return Adapted(
        deals=deals, interactions=no_interactions(deals["deal_id"], path), notes=list(NOTES)
    )
