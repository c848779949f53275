"""BPI Challenge 2012 (loan applications of a Dutch financial institute) on the data contract.

One case is one deal; every event of the log is one interaction. Source: the flattened log
`bpi2012_events.csv.gz` (one row per event: case_id, amount_req, reg_date, activity, lifecycle,
timestamp, resource), see ../shared/data/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_source_csv
from closeprob.pipeline.validate import (
    parse_numbers,
    parse_timestamps,
    require_columns,
    validate_deals,
    validate_interactions,
)

EVENTS_FILE = "bpi2012_events.csv.gz"
EVENT_COLUMNS = ("case_id", "amount_req", "activity", "lifecycle", "timestamp")
WON_ACTIVITIES = ("A_APPROVED",)
LOST_ACTIVITIES = ("A_DECLINED", "A_CANCELLED")
# The activity prefix says what an event is about: the application, an offer, a work item.
CHANNELS = {"A": "application", "O": "offer", "W": "work_item"}

NOTES = [
    "created_at is the case's first event (A_SUBMITTED); reg_date is up to 72 ms earlier",
    "closed_at is the first A_APPROVED (won), A_DECLINED or A_CANCELLED (lost) event; "
    "events after it (W_* follow-ups, A_REGISTERED, A_ACTIVATED, ...) stay in the interactions",
    "no owner_id: the first resource of every case is '112' (the intake system) and the staff "
    "member who handles a case is known only later (never for most auto-declined cases), so "
    "using it would leak; no owner track record",
    "no account_id: one application per case, no customer key",
    "no direction on interactions, no money on them; channel is application/offer/work_item",
    "stage-like A_* states are plain interaction types (no stage numbers): counted per window "
    "by the engagement features",
]


def read_events(source: Path) -> pd.DataFrame:
    """The raw event log, one row per event, as text; `occurred_at` added in UTC.

    Timestamps carry a +01:00/+02:00 offset that changes at the DST switch; it is honoured.
    """
    path = source / EVENTS_FILE
    if not path.is_file():
        raise DataContractError(
            f"{path}: file not found; the bpi2012 adapter reads the flattened BPI 2012 event log "
            f"{EVENTS_FILE!r} from the source folder (pass --source to the folder holding it)"
        )
    events = read_source_csv(path)
    require_columns(events, EVENT_COLUMNS, str(path))
    case_id = events["case_id"].astype("str")
    return events.assign(
        case_id=case_id,
        occurred_at=parse_timestamps(events, "timestamp", str(path), case_id),
    )


def decide_cases(events: pd.DataFrame) -> pd.DataFrame:
    """One row per decided case (index case_id): `closed_at` and `outcome` of its first
    deciding event, A_APPROVED = won, A_DECLINED / A_CANCELLED = lost."""
    deciding = events[events["activity"].isin(WON_ACTIVITIES + LOST_ACTIVITIES)]
    first = deciding.sort_values("occurred_at", kind="stable").groupby("case_id").head(1)
    won = first["activity"].isin(WON_ACTIVITIES)
    return pd.DataFrame(
        {"closed_at": first["occurred_at"], "outcome": np.where(won, "won", "lost")}
    ).set_index(first["case_id"])


def build_deals(events: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per case: created at its first event, closed by its first decision (open if
    none), `amount` = the requested amount in euros."""
    cases = events.groupby("case_id", sort=False).agg(
        created_at=("occurred_at", "min"), amount_req=("amount_req", "first")
    )
    decided = decide_cases(events).reindex(cases.index)
    raw = pd.DataFrame(
        {
            "deal_id": cases.index,
            "created_at": cases["created_at"],
            "closed_at": decided["closed_at"],
            "outcome": decided["outcome"],
        }
    ).reset_index(drop=True)
    raw["amount"] = parse_numbers(
        cases.reset_index(drop=True), "amount_req", source, raw["deal_id"]
    )
    return validate_deals(raw, source)


def interaction_types(events: pd.DataFrame) -> pd.Series:
    """The activity, with ':LIFECYCLE' appended unless it is COMPLETE
    ('W_Nabellen offertes:START'); a missing lifecycle counts as COMPLETE."""
    lifecycle = events["lifecycle"].fillna("COMPLETE").str.strip().str.upper()
    return events["activity"].where(lifecycle == "COMPLETE", events["activity"] + ":" + lifecycle)


def build_interactions(events: pd.DataFrame, deal_ids: pd.Series, source: str) -> pd.DataFrame:
    """One row per event: type from the activity (and lifecycle), channel from its prefix
    (A/O/W -> application/offer/work_item); no direction, no value."""
    raw = pd.DataFrame(
        {
            "deal_id": events["case_id"],
            "occurred_at": events["occurred_at"],
            "type": interaction_types(events),
            "channel": events["activity"].str[:1].map(CHANNELS),
            "direction": pd.Series(pd.NA, index=events.index, dtype="str"),
            "value": np.nan,
        }
    )
    return validate_interactions(raw, source, deal_ids)


def adapt(source: Path) -> Adapted:
    """BPI 2012 on the data contract: 13,087 deals (2,246 won, 10,442 lost, 399 open)."""
    events = read_events(source)
    path = str(source / EVENTS_FILE)
    deals = build_deals(events, path)
    interactions = build_interactions(events, deals["deal_id"], path)
    return Adapted(deals=deals, interactions=interactions, notes=list(NOTES))
