"""Maven Analytics' "CRM Sales Opportunities" (simulated B2B sales) on the data contract.

One opportunity is one deal, created when it was engaged and closed at its close date when Won or
Lost; Engaging opportunities are open. The deal value is the product's list price. The close
value is never used: it is 0 on every lost deal, so it would say how the deal ended. Attributes
known at creation come from the product, the agent's team and the account. The only interaction
is the move to Engaging.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.adapters import Adapted
from pipeline.errors import DataContractError
from pipeline.validate import validate_deals, validate_interactions

PIPELINE_FILE = "sales_pipeline.csv"
PRODUCTS_FILE = "products.csv"
TEAMS_FILE = "sales_teams.csv"
ACCOUNTS_FILE = "accounts.csv"
ATTRIBUTES = (
    "product",
    "manager",
    "regional_office",
    "sector",
    "office_location",
    "revenue_band",
    "employees_band",
)
PRODUCT_FIXES = {"GTXPro": "GTX Pro"}
SECTOR_FIXES = {"technolgy": "technology"}
OUTCOMES = {"Won": "won", "Lost": "lost", "Engaging": None}
# Stage numbers for the `value` of stage_change interactions: Prospecting 1, Engaging 2.
ENGAGING_STAGE = 2.0
# Annual revenue in millions of USD, and head count: fixed edges, so a band never depends on
# which accounts happen to be in the file.
REVENUE_BANDS = ((0, 500, 1000, 2500, 5000, np.inf), ("<500M", "500M-1B", "1B-2.5B", "2.5B-5B", "5B+"))
EMPLOYEE_BANDS = ((0, 1000, 2500, 5000, 10000, np.inf), ("<1k", "1k-2.5k", "2.5k-5k", "5k-10k", "10k+"))


def read_csv_text(path: Path, columns: list[str]) -> pd.DataFrame:
    """`columns` of a CSV as text; only empty cells are missing."""
    if not path.is_file():
        raise DataContractError(f"{path}: file not found; expected the CRM sales CSVs")
    frame = pd.read_csv(path, dtype="str", keep_default_na=False, na_values=[""])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{path}: missing column(s) {missing}; found {[str(c) for c in frame.columns]}"
        )
    return frame[columns]


def band(values: pd.Series, bands: tuple[tuple[float, ...], tuple[str, ...]]) -> pd.Series:
    """Each number's band label as text (left-closed intervals); missing stays missing."""
    edges, labels = bands
    banded = pd.cut(pd.to_numeric(values), bins=list(edges), labels=list(labels), right=False)
    return banded.astype("str").where(banded.notna())


def account_attributes(source: Path) -> pd.DataFrame:
    """One row per account: sector (spelling fixed), office location, revenue and size bands."""
    accounts = read_csv_text(
        source / ACCOUNTS_FILE, ["account", "sector", "office_location", "revenue", "employees"]
    )
    return pd.DataFrame(
        {
            "account": accounts["account"],
            "sector": accounts["sector"].replace(SECTOR_FIXES),
            "office_location": accounts["office_location"],
            "revenue_band": band(accounts["revenue"], REVENUE_BANDS),
            "employees_band": band(accounts["employees"], EMPLOYEE_BANDS),
        }
    )


def list_prices(source: Path) -> pd.Series:
    """The sales price of each product (float), indexed by product name."""
    products = read_csv_text(source / PRODUCTS_FILE, ["product", "sales_price"])
    return pd.Series(
        pd.to_numeric(products["sales_price"]).astype(float).to_numpy(),
        index=pd.Index(products["product"]),
    )


def check_known(values: pd.Series, known: pd.Index, path: Path, column: str) -> None:
    """Every non-empty value of `column` is in `known` (the lookup file's keys)."""
    unknown = values.notna() & ~values.isin(known)
    if unknown.any():
        raise DataContractError(
            f"{path}: column {column!r} has {int(unknown.sum())} values missing from the lookup "
            f"file (first: {values[unknown].iloc[0]!r}); expected one of {sorted(known)}"
        )


def opportunities(source: Path) -> pd.DataFrame:
    """Engaged opportunities as contract columns plus attributes (un-validated).

    Dates become midnight UTC. Prospecting rows have no engage date and are left out here.
    """
    path = source / PIPELINE_FILE
    rows = read_csv_text(
        path,
        ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "engage_date"]
        + ["close_date"],
    )
    rows = rows[rows["engage_date"].notna()].assign(product=rows["product"].replace(PRODUCT_FIXES))
    check_known(rows["deal_stage"], pd.Index(list(OUTCOMES)), path, "deal_stage")
    prices = list_prices(source)
    check_known(rows["product"], prices.index, path, "product")
    teams = read_csv_text(source / TEAMS_FILE, ["sales_agent", "manager", "regional_office"])
    check_known(rows["sales_agent"], pd.Index(teams["sales_agent"]), path, "sales_agent")
    accounts = account_attributes(source)
    check_known(rows["account"], pd.Index(accounts["account"]), path, "account")
    outcome = rows["deal_stage"].map(OUTCOMES)
    deals = pd.DataFrame(
        {
            "deal_id": rows["opportunity_id"],
            "created_at": pd.to_datetime(rows["engage_date"], utc=True, format="%Y-%m-%d"),
            "closed_at": pd.to_datetime(rows["close_date"], utc=True, format="%Y-%m-%d"),
            "outcome": outcome,
            "amount": rows["product"].map(prices),
            "account_id": rows["account"],
            "owner_id": rows["sales_agent"],
            "product": rows["product"],
        }
    )
    deals = deals.merge(teams, left_on="owner_id", right_on="sales_agent", how="left")
    deals = deals.merge(accounts, left_on="account_id", right_on="account", how="left")
    return deals.drop(columns=["sales_agent", "account"])


def engagements(deals: pd.DataFrame) -> pd.DataFrame:
    """One interaction per deal: the stage change to Engaging, at creation; nothing at close."""
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"],
            "occurred_at": deals["created_at"],
            "type": "stage_change",
            "channel": None,
            "direction": None,
            "value": ENGAGING_STAGE,
        }
    )


def adapt(source: Path) -> Adapted:
    """CRM sales opportunities as typed, validated deals and interactions, with notes."""
    raw = read_csv_text(source / PIPELINE_FILE, ["deal_stage", "engage_date", "product"])
    engaged = opportunities(source)
    # Closes are recorded only from the first close date: an opportunity engaged earlier is in the
    # file only if it was still open then, a survivor sample whose early wins are missing.
    recorded_from = engaged["closed_at"].min()
    early = engaged["created_at"] < recorded_from
    deals = validate_deals(engaged[~early], str(source / PIPELINE_FILE), ATTRIBUTES)
    interactions = validate_interactions(
        engagements(deals), f"{source / PIPELINE_FILE} (engagements)", deals["deal_id"]
    )
    counts = {
        "no_engage_date": int(raw["engage_date"].isna().sum()),
        "prospecting": int((raw["deal_stage"] == "Prospecting").sum()),
        "early": int(early.sum()),
        "renamed": int(raw["product"].isin(list(PRODUCT_FIXES)).sum()),
    }
    return Adapted(deals, interactions, describe(deals, counts, recorded_from))


def describe(deals: pd.DataFrame, counts: dict[str, int], recorded_from: pd.Timestamp) -> list[str]:
    """The notes: what was dropped, fixed or decided, with counts, and what the data lack."""
    outcome = deals["outcome"].value_counts()
    open_deals = deals["outcome"].isna()
    closed = deals[~open_deals]
    longest = (closed["closed_at"] - closed["created_at"]).max()
    end = max(deals["closed_at"].max(), deals["created_at"].max())
    stale = open_deals & (deals["created_at"] + longest < end)
    no_account = deals["account_id"].isna()
    return [
        f"{counts['no_engage_date']:,} opportunities without an engage date dropped "
        f"({counts['prospecting']:,} are in Prospecting): they have no date at all",
        f"{counts['early']:,} opportunities engaged before {recorded_from.date()} (the first "
        "recorded close) dropped: the file holds only those still open on that day",
        f"{outcome.get('won', 0):,} won, {outcome.get('lost', 0):,} lost, "
        f"{int(open_deals.sum()):,} open (Engaging)",
        "amount = the product's sales_price from products.csv (a list price, the same for won "
        "and lost); close_value is never used: it is 0 on lost deals",
        f"product 'GTXPro' renamed 'GTX Pro' in {counts['renamed']:,} rows; sector 'technolgy' "
        "spelled 'technology'",
        f"{int(no_account.sum()):,} deals have no account (account_id and account attributes "
        f"empty); all of them are open ({int((no_account & ~open_deals).sum())} closed): the "
        "account looks filled in at close, so its absence hints at the outcome",
        f"{int(stale.sum()):,} open deals are older than the longest time to close of any closed "
        f"deal ({longest.days} days): stale deals no one closed",
        "interactions: one stage_change to Engaging (stage 2) at the engage date; the data log "
        "nothing between engage and close",
        "dates are days, taken as midnight UTC",
    ]
