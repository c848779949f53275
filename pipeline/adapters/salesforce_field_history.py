"""The stage history of an org that exports `OpportunityFieldHistory` (field history tracking
on StageName) instead of the `OpportunityHistory` object: one row per change, `Field` =
`StageName`, `OldValue` → `NewValue` at `CreatedDate` (Salesforce object reference,
OpportunityFieldHistory).

Each change is an entry into `NewValue`; the stage an opportunity was created in is the
`OldValue` of its first change, entered at the opportunity's `CreatedDate`. An opportunity
with no tracked change has no history (its current `StageName` is the export day's: never
read).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from closeprob.pipeline.adapters.crm_export import parse_times, read_export

FIELD_HISTORY = "OpportunityFieldHistory.csv"


def field_history_stages(
    source: Path,
    key: pd.Series,
    created_at: pd.Series,
    ids_of: Callable[[pd.Series], pd.Series],
) -> pd.DataFrame | None:
    """(deal_id, at, stage) of the exported opportunities from OpportunityFieldHistory.csv,
    or None without it. `key` maps 15-character ids to deal ids (`ids_of` shortens ids),
    `created_at` is indexed by deal id."""
    path = source / FIELD_HISTORY
    if not path.is_file():
        return None
    rows = read_export(
        path,
        ["OpportunityId", "CreatedDate", "Field", "NewValue"],
        ["OldValue", "Id", "IsDeleted"],
        "the OpportunityFieldHistory object (field history tracking on StageName)",
    )
    if "Id" not in rows.columns:
        rows = rows.assign(Id=rows["OpportunityId"])
    if "IsDeleted" in rows.columns:
        rows = rows[rows["IsDeleted"].fillna("false").str.strip().str.casefold() != "true"]
    rows = rows[rows["Field"].str.strip().str.casefold() == "stagename"]
    deal_id = ids_of(rows["OpportunityId"]).map(key)
    changes = pd.DataFrame(
        {
            "deal_id": deal_id,
            "at": parse_times(rows["CreatedDate"], path, "CreatedDate", rows["Id"]),
            "stage": rows["NewValue"].str.strip(),
            "old": rows.get("OldValue", pd.Series(pd.NA, index=rows.index, dtype="str")),
        }
    ).dropna(subset=["deal_id"])
    first = changes.sort_values("at", kind="stable").groupby("deal_id").head(1)
    created = pd.DataFrame(
        {
            "deal_id": first["deal_id"],
            "at": first["deal_id"].map(created_at).astype("datetime64[ns, UTC]"),
            "stage": first["old"].str.strip(),
        }
    )
    history = pd.concat([created, changes.drop(columns="old")], ignore_index=True)
    history = history[history["stage"].notna() & (history["stage"] != "")]
    return history.sort_values(["deal_id", "at"], kind="stable").reset_index(drop=True)
