"""Maven Analytics' "CRM Sales Opportunities" (simulated B2B sales) on the data contract.

One opportunity is one deal, created when it was engaged and closed at its close date when Won or
Lost; Engaging opportunities are open. The deal value is the product's list price. The close
value is never used: it is 0 on every lost deal, so it would say how the deal ended. Attributes
known at creation come from the product and the agent's team. The only interaction is the move
to Engaging.

The account is not used as `account_id`. Every closed opportunity has one, and all 1,425 rows
without one are open (Engaging or Prospecting), so the account was evidently filled in by the
close. Whether a deal had its account at an `as_of` before its close is unknown, and an empty
account would mark a deal that never closes. The account and its profile stay in the table as
attributes (`ACCOUNT_ATTRIBUTES`) that the config leaves out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.adapters import Adapted, read_csv_columns
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.validate import validate_deals, validate_interactions

PIPELINE_FILE = "sales_pipeline.csv"
PRODUCTS_FILE = "products.csv"
TEAMS_FILE = "sales_teams.csv"
ACCOUNTS_FILE = "accounts.csv"
# Known when the opportunity is engaged.
ATTRIBUTES = ("product", "manager", "regional_office")
# Known only by the close (see the module docstring): kept for reference, not for features.
ACCOUNT_ATTRIBUTES = ("account", "sector", "office_location", "revenue_band", "employees_band")
PRODUCT_FIXES = {"GTXPro": "GTX Pro"}
SECTOR_FIXES = {"technolgy": "technology"}
# Stages with an engage date; Prospecting has none and is left out.
OUTCOMES = {"Won": "won", "Lost": "lost", "Engaging": None}
# Stage numbers for the `value` of stage_change interactions: Prospecting 1, Engaging 2.
ENGAGING_STAGE = 2.0
# Annual revenue in millions of USD, and head count: fixed edges, so a band never depends on
# which accounts happen to be in the file.
REVENUE_BANDS = (
    (0, 500, 1000, 2500, 5000, np.inf),
    ("<500M", "500M-1B", "1B-2.5B", "2.5B-5B", "5B+"),
)
EMPLOYEE_BANDS = (
    (0, 1000, 2500, 5000, 10000, np.inf),
    ("<1k", "1k-2.5k", "2.5k-5k", "5k-10k", "10k+"),
)


def band(values: pd.Series, bands: tuple[tuple[float, ...], tuple[str, ...]]) -> pd.Series:
    """Each number's band label as text (left-closed intervals); missing stays missing."""
    edges, labels = bands
    banded = pd.cut(pd.to_numeric(values), bins=list(edges), labels=list(labels), right=False)
    return banded.astype("str").where(banded.notna())


def account_attributes(source: Path) -> pd.DataFrame:
    """One row per account: sector (spelling fixed), office location, revenue and size bands."""
    accounts = read_csv_columns(
        source / ACCOUNTS_FILE,
        ["account", "sector", "office_location", "revenue", "employees"],
        "CRM sales CSVs",
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
    products = read_csv_columns(
        source / PRODUCTS_FILE, ["product", "sales_price"], "CRM sales CSVs"
    )
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


def read_pipeline(source: Path) -> pd.DataFrame:
    """The opportunities file as text, one row per opportunity, stages checked."""
    path = source / PIPELINE_FILE
    columns = ["opportunity_id", "sales_agent", "product", "account", "deal_stage"]
    rows = read_csv_columns(path, [*columns, "engage_date", "close_date"], "CRM sales CSVs")
    check_known(rows["deal_stage"], pd.Index([*OUTCOMES, "Prospecting"]), path, "deal_stage")
    return rows


def opportunities(rows: pd.DataFrame, source: Path) -> pd.DataFrame:
    """Engaged opportunities as contract columns plus attributes (not yet validated).

    `rows` are pipeline rows with an engage date. Dates become midnight UTC. The product's name
    is fixed to match products.csv before its price is looked up.
    """
    path = source / PIPELINE_FILE
    product = rows["product"].replace(PRODUCT_FIXES)
    prices = list_prices(source)
    check_known(product, prices.index, path, "product")
    teams = read_csv_columns(
        source / TEAMS_FILE, ["sales_agent", "manager", "regional_office"], "CRM sales CSVs"
    )
    check_known(rows["sales_agent"], pd.Index(teams["sales_agent"]), path, "sales_agent")
    accounts = account_attributes(source)
    check_known(rows["account"], pd.Index(accounts["account"]), path, "account")
    deals = pd.DataFrame(
        {
            "deal_id": rows["opportunity_id"],
            "created_at": pd.to_datetime(rows["engage_date"], utc=True, format="%Y-%m-%d"),
            "closed_at": pd.to_datetime(rows["close_date"], utc=True, format="%Y-%m-%d"),
            "outcome": rows["deal_stage"].map(OUTCOMES),
            "amount": product.map(prices),
            "owner_id": rows["sales_agent"],
            "product": product,
            "account": rows["account"],
        }
    )
    deals = deals.merge(teams, left_on="owner_id", right_on="sales_agent", how="left")
    return deals.drop(columns="sales_agent").merge(accounts, on="account", how="left")


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
    rows = read_pipeline(source)
    dated = rows["engage_date"].notna()
    if (dated & (rows["deal_stage"] == "Prospecting")).any():
        raise DataContractError(
            f"{source / PIPELINE_FILE}: a Prospecting row has an engage date; expected none"
        )
    engaged = opportunities(rows[dated], source)
    # Closes are recorded only from the first close date: an opportunity engaged earlier is in the
    # file only if it was still open then, a survivor sample whose early wins are missing.
    recorded_from = engaged["closed_at"].min()
    early = engaged["created_at"] < recorded_from
    deals = validate_deals(
        engaged[~early], str(source / PIPELINE_FILE), (*ATTRIBUTES, *ACCOUNT_ATTRIBUTES)
    )
    interactions = validate_interactions(
        engagements(deals), f"{source / PIPELINE_FILE} (engagements)", deals["deal_id"]
    )
    counts = {
        "no_engage_date": int((~dated).sum()),
        "prospecting": int((rows["deal_stage"] == "Prospecting").sum()),
        "early": int(early.sum()),
        "renamed": int(rows["product"].isin(list(PRODUCT_FIXES)).sum()),
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
    no_account = deals["account"].isna()
    return [
        f"{counts['no_engage_date']:,} opportunities without an engage date dropped "
        f"({counts['prospecting']:,} are in Prospecting): they have no date at all",
        f"{counts['early']:,} opportunities engaged before {recorded_from.date()} (the first "
        "recorded close) dropped: the file holds only those still open on that day",
        f"{outcome.get('won', 0):,} won, {outcome.get('lost', 0):,} lost, "
        f"{int(open_deals.sum()):,} open (Engaging)",
        "amount = the product's sales_price from products.csv (a list price, the same for won "
        "and lost); close_value is never used: it is 0 on lost deals",
        f"product 'GTXPro' renamed 'GTX Pro' ({counts['renamed']:,} rows of the file); sector "
        "'technolgy' spelled 'technology'",
        f"{int(no_account.sum()):,} deals have no account, {int((no_account & open_deals).sum()):,}"
        f" of them open and {int((no_account & ~open_deals).sum())} closed: the account is filled "
        "in by the close, so it is not known at creation. No account_id (an account's track "
        f"record would read the end state); {', '.join(ACCOUNT_ATTRIBUTES)} are kept as "
        "attributes for reference, not for features",
        f"{int(stale.sum()):,} open deals are older than the longest time to close of any closed "
        f"deal ({longest.days} days): stale deals no one closed",
        "interactions: one stage_change to Engaging (stage 2) at the engage date; the data log "
        "nothing between engage and close",
        "dates are days, taken as midnight UTC",
    ]
