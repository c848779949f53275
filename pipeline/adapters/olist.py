"""Olist's marketing funnel (B2B leads of a Brazilian marketplace) on the data contract.

One marketing-qualified lead is one deal, created at its first-contact date. A lead is won when it
appears in the closed-deals file. The data have no lost date, so this adapter applies a rule:
a lead not won within LOST_AFTER_DAYS of first contact is lost at that moment. The only
interaction is the first contact.

The closed-deals file describes won leads only (segment, lead type, behaviour profile, catalogue
size, revenue, seller and reps). Only its mql_id and won_date are read: any other column, as a
feature, would say "this lead was won".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.adapters import Adapted, read_csv_columns
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.validate import validate_deals, validate_interactions

LEADS_FILE = "olist_marketing_qualified_leads_dataset.csv"
WON_FILE = "olist_closed_deals_dataset.csv"
ATTRIBUTES = ("origin", "landing_page_id")
# A business rule, not a fitted figure: about the 95th percentile of the observed days to a win.
# A fixed number keeps the rule free of the data's future.
LOST_AFTER_DAYS = 180
# Columns of the closed-deals file that exist only for won leads; never read, never a feature.
WON_ONLY_COLUMNS = (
    "seller_id",
    "sdr_id",
    "sr_id",
    "business_segment",
    "lead_type",
    "lead_behaviour_profile",
    "has_company",
    "has_gtin",
    "average_stock",
    "business_type",
    "declared_product_catalog_size",
    "declared_monthly_revenue",
)


def read_leads(source: Path) -> pd.DataFrame:
    """One row per lead: deal_id, created_at and the attributes known when it came in.

    `first_contact_date` is a date; it becomes midnight UTC (the contact happened some time that
    day, and midnight keeps a same-day win after the creation). The source's clock is Brazil's;
    taking it as UTC shifts creations and wins alike.
    """
    leads = read_csv_columns(
        source / LEADS_FILE,
        ["mql_id", "first_contact_date", *ATTRIBUTES],
        "Olist marketing funnel CSVs",
    )
    created_at = pd.to_datetime(leads["first_contact_date"], utc=True, format="%Y-%m-%d")
    return pd.DataFrame(
        {"deal_id": leads["mql_id"], "created_at": created_at, **{a: leads[a] for a in ATTRIBUTES}}
    )


def read_wins(source: Path) -> pd.Series:
    """The win time of each won lead (UTC), indexed by mql_id; no other column is read."""
    path = source / WON_FILE
    won = read_csv_columns(path, ["mql_id", "won_date"], "Olist marketing funnel CSVs")
    duplicated = won["mql_id"].duplicated(keep=False)
    if duplicated.any():
        raise DataContractError(
            f"{path}: column 'mql_id' is duplicated in {int(duplicated.sum())} rows "
            f"(first: {won.loc[duplicated, 'mql_id'].iloc[0]!r}); expected one win per lead"
        )
    won_at = pd.to_datetime(won["won_date"], utc=True, format="%Y-%m-%d %H:%M:%S")
    return pd.Series(won_at.to_numpy(), index=pd.Index(won["mql_id"]), name="won_at")


def close_leads(
    created_at: pd.Series, won_at: pd.Series, end: pd.Timestamp, lost_after_days: int
) -> pd.DataFrame:
    """closed_at and outcome per lead (aligned with `created_at`).

    - Won: won within `lost_after_days` of creation; closed at the win. A win logged before the
      first contact is taken as won at creation.
    - Lost: not won by creation + `lost_after_days`, when that instant is not after `end`. A
      later win is ignored: at that instant the rule had already closed the lead, and a lead
      left open only because it will be won would tell the model its future.
    - Open: otherwise.
    """
    deadline = created_at + pd.Timedelta(days=lost_after_days)
    won = won_at.notna() & (won_at <= deadline)
    lost = ~won & (deadline <= end)
    closed_at = won_at.where(won).clip(lower=created_at).where(won, deadline.where(lost))
    outcome = pd.Series(np.select([won, lost], ["won", "lost"], ""), index=created_at.index)
    return pd.DataFrame({"closed_at": closed_at, "outcome": outcome.replace("", None)})


def first_contacts(deals: pd.DataFrame) -> pd.DataFrame:
    """One interaction per lead: its first contact, inbound (the lead asked to be contacted)."""
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"],
            "occurred_at": deals["created_at"],
            "type": "first_contact",
            "channel": None,
            "direction": "inbound",
            "value": np.nan,
        }
    )


def adapt(source: Path) -> Adapted:
    """Olist leads as typed, validated deals and interactions, with notes on what is missing."""
    leads, won_at = read_leads(source), read_wins(source)
    # The closed-deals file records no win before its first won_date: leads contacted earlier
    # lost their early wins, and keeping them would label converted leads as never won.
    recorded_from = won_at.min().floor("D")
    early = leads["created_at"] < recorded_from
    kept = leads[~early].reset_index(drop=True)
    kept_won_at = kept["deal_id"].map(won_at)
    end = max(won_at.max(), kept["created_at"].max())
    closes = close_leads(kept["created_at"], kept_won_at, end, LOST_AFTER_DAYS)
    deals = validate_deals(
        pd.concat([kept[["deal_id", "created_at"]], closes, kept[list(ATTRIBUTES)]], axis=1),
        str(source / LEADS_FILE),
        ATTRIBUTES,
    )
    interactions = validate_interactions(
        first_contacts(deals), f"{source / LEADS_FILE} (first contacts)", deals["deal_id"]
    )
    counts = {
        "early": int(early.sum()),
        "early_won": int(leads.loc[early, "deal_id"].isin(won_at.index).sum()),
        "late": int((kept_won_at.notna() & (closes["outcome"] != "won")).sum()),
        "before_contact": int((kept_won_at < kept["created_at"]).sum()),
        "unknown_wins": int((~won_at.index.isin(leads["deal_id"])).sum()),
    }
    return Adapted(deals, interactions, describe(deals, counts, recorded_from, end))


def describe(
    deals: pd.DataFrame, counts: dict[str, int], recorded_from: pd.Timestamp, end: pd.Timestamp
) -> list[str]:
    """The notes: what was dropped or decided, with counts, and what the data cannot support."""
    outcome = deals["outcome"].value_counts()
    return [
        f"{counts['early']:,} leads first contacted before {recorded_from.date()} (the first "
        f"recorded win) dropped: {WON_FILE} has no win before that day, so their early wins are "
        f"missing ({counts['early_won']} of them have a later win)",
        f"no lost date in the data: a lead not won within {LOST_AFTER_DAYS} days of first "
        f"contact is lost at day {LOST_AFTER_DAYS} when that is not after the end of the data "
        f"({end.date()}), else open: {outcome.get('won', 0):,} won, {outcome.get('lost', 0):,} "
        f"lost, {int(deals['outcome'].isna().sum()):,} open",
        f"{counts['late']} leads won more than {LOST_AFTER_DAYS} days after first contact are "
        f"lost at day {LOST_AFTER_DAYS} (the rule had closed them by then)",
        f"{counts['before_contact']} lead(s) won before the first-contact date: won at first "
        "contact",
        f"{counts['unknown_wins']} wins name leads missing from {LEADS_FILE}: ignored",
        "no deal value: declared_monthly_revenue exists only for won leads; amount is empty and "
        "the queue ranks by probability",
        "no owner or account: sdr_id, sr_id and seller_id exist only for won leads; not used",
        f"won-only columns never read: {', '.join(WON_ONLY_COLUMNS)}",
        "interactions: the first contact only (no touches are logged), so behaviour features "
        "carry nothing beyond the lead's age",
        "dates are Brazil-local and taken as UTC; a first-contact date is its midnight",
    ]
