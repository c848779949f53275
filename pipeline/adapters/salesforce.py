"""A Salesforce org's export (Data Loader, Bulk API or `sf data export bulk`: one CSV per object,
API field names as headers) on the data contract.

- `Opportunity.csv` is one deal per row: `Id`, `CreatedDate`; won/lost from the CRM's own flags
  `IsClosed`/`IsWon`, never from a stage name. A closed deal closed when its stage history
  (`OpportunityHistory.csv`) last entered a closed stage, else at the end of its `CloseDate`;
  the `CloseDate` of an open deal is a forecast and is never read.
- `OpportunityHistory.csv` gives the stage changes (`stage_change` events, stages numbered in
  the order of `OpportunityStage.csv`'s `SortOrder` when exported, else in history order).
- `Task.csv` and `Event.csv` are the interactions, on the opportunity in their `WhatId`
  (15- or 18-character ids both match); open tasks (not done) and events not yet held at the
  export are left out. A record is dated when it was known: the later of when it was created
  and when it was completed or held.
- `Account.csv` adds the account's industry and country as attributes.

Export-day fields (the current `StageName`, `IsClosed`, `IsWon`, `Probability`,
`ForecastCategoryName`, `LastActivityDate`, `LastModifiedDate`, …) say how a deal stands on the
day of the export, not at an earlier `as_of`: none is ever offered as an attribute. Rows with
`IsDeleted` true (an "Export All") are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.crm_export import (
    close_times,
    later_of,
    parse_times,
    read_export,
    stage_events,
    stage_order,
)
from closeprob.pipeline.adapters.salesforce_currency import corporate_amounts
from closeprob.pipeline.adapters.salesforce_field_history import field_history_stages
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.validate import validate_deals, validate_interactions
from closeprob.pipeline.values import parse_amounts, parse_flags

OPPORTUNITY, HISTORY, TASK, EVENT, ACCOUNT, STAGES = (
    "Opportunity.csv",
    "OpportunityHistory.csv",
    "Task.csv",
    "Event.csv",
    "Account.csv",
    "OpportunityStage.csv",
)
# How each deal stands on the export day: never an attribute (module docstring).
EXPORT_DAY_FIELDS = (
    "StageName",
    "IsClosed",
    "IsWon",
    "Probability",
    "ExpectedRevenue",
    "ForecastCategory",
    "ForecastCategoryName",
    "CloseDate",
    "LastActivityDate",
    "LastActivityInDays",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "LastViewedDate",
    "LastReferencedDate",
    "LastStageChangeDate",
    "LastStageChangeInDays",
    "HasOpenActivity",
    "HasOverdueTask",
    "NextStep",
    "PushCount",
    "FiscalQuarter",
    "FiscalYear",
    "Fiscal",
    "AgeInDays",
)
# Opportunity field → attribute: set when an opportunity is created.
ATTRIBUTES = {"Type": "opportunity_type", "LeadSource": "lead_source"}
ACCOUNT_ATTRIBUTES = {"Industry": "account_industry", "BillingCountry": "account_country"}
SUBTYPE_CHANNELS = {"call": "phone", "email": "email", "listemail": "email", "linkedin": "social"}


def sf_id(ids: pd.Series) -> pd.Series:
    """Ids compared on their first 15 characters: an 18-character id is the 15-character one
    with a case-safe suffix, and reports export the short form."""
    return ids.astype("str").str.strip().str.slice(0, 15).where(ids.notna())


def not_deleted(frame: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, int]:
    """Rows without `IsDeleted` true (an "Export All" includes the recycle bin), and how many
    were dropped."""
    if "IsDeleted" not in frame.columns:
        return frame, 0
    deleted = parse_flags(frame["IsDeleted"].fillna("false"), str(path), "IsDeleted", frame["Id"])
    return frame[~deleted].reset_index(drop=True), int(deleted.sum())


def read_opportunities(source: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    path = source / OPPORTUNITY
    optional = ["AccountId", "OwnerId", "Amount", "CurrencyIsoCode", "CloseDate", "StageName"]
    rows = read_export(
        path,
        ["Id", "CreatedDate", "IsClosed", "IsWon"],
        [*optional, *ATTRIBUTES, "IsDeleted"],
        "the Opportunity object as Data Loader or the Bulk API exports it",
    )
    rows, deleted = not_deleted(rows, path)
    return rows, {"deleted_opportunities": deleted}


def read_history(source: Path, key: pd.Series) -> pd.DataFrame | None:
    """Stage history rows (deal_id, at, stage) of the exported opportunities, or None."""
    path = source / HISTORY
    if not path.is_file():
        return None
    rows = read_export(
        path,
        ["OpportunityId", "CreatedDate", "StageName"],
        ["Id", "IsDeleted"],
        "the OpportunityHistory object",
    )
    if "Id" not in rows.columns:
        rows = rows.assign(Id=rows["OpportunityId"])
    rows, _ = not_deleted(rows, path)
    deal_id = sf_id(rows["OpportunityId"]).map(key)
    history = pd.DataFrame(
        {
            "deal_id": deal_id,
            "at": parse_times(rows["CreatedDate"], path, "CreatedDate", rows["Id"]),
            "stage": rows["StageName"].str.strip(),
        }
    )
    return history[history["deal_id"].notna() & history["stage"].notna()].reset_index(drop=True)


def stage_numbers(source: Path, history: pd.DataFrame, closed: set[str]) -> dict[str, int]:
    """The CRM's own order (`OpportunityStage.csv`: SortOrder) when exported, else the
    history's."""
    path = source / STAGES
    if not path.is_file():
        return stage_order(history, closed)
    stages = read_export(path, ["MasterLabel", "SortOrder"], ["ApiName"], "OpportunityStage")
    order = pd.to_numeric(stages["SortOrder"], errors="coerce")
    ranked = stages.assign(order=order).sort_values(["order", "MasterLabel"])
    numbers = {str(s): i for i, s in enumerate(ranked["MasterLabel"], start=1)}
    if "ApiName" in ranked.columns:
        numbers |= {
            str(s): numbers[str(m)]
            for s, m in zip(ranked["ApiName"], ranked["MasterLabel"], strict=True)
        }
    unknown = sorted(set(history["stage"]) - set(numbers))
    if unknown:
        raise DataContractError(
            f"{path}: OpportunityHistory names stages missing from this list: {unknown[:5]}; "
            "export OpportunityStage again (inactive stages too)"
        )
    return numbers


def entered_closed(history: pd.DataFrame | None, closed: set[str], deals: pd.Index) -> pd.Series:
    """Per deal, when its last run of closed stages began (a reopened deal's earlier close does
    not count): the moment it closed for good. NaT without history."""
    if history is None or history.empty:
        return pd.Series(pd.NaT, index=deals, dtype="datetime64[ns, UTC]")
    ordered = history.sort_values(["deal_id", "at"], kind="stable")
    is_closed = ordered["stage"].isin(closed)
    # A run starts where a closed row follows an open one (or opens the history).
    starts = is_closed & ~is_closed.groupby(ordered["deal_id"]).shift(fill_value=False)
    last_open = ordered["at"].where(~is_closed).groupby(ordered["deal_id"]).max()
    run_start = ordered["at"].where(starts).groupby(ordered["deal_id"]).max()
    final = run_start.where(~(run_start < last_open))
    return final.reindex(deals).astype("datetime64[ns, UTC]")


def opportunities(
    source: Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, set[str], dict[str, Any]]:
    """Deals on the contract (not yet validated), their stage history, the closed stages' names
    (those of closed opportunities) and counts for notes."""
    rows, read_counts = read_opportunities(source)
    counts: dict[str, Any] = dict(read_counts)
    path = source / OPPORTUNITY
    ids = rows["Id"].str.strip()
    is_closed = parse_flags(rows["IsClosed"], str(path), "IsClosed", ids)
    is_won = parse_flags(rows["IsWon"], str(path), "IsWon", ids)
    won_open = is_won & ~is_closed
    if won_open.any():
        raise DataContractError(
            f"{path}: {int(won_open.sum())} opportunities have IsWon true but IsClosed false "
            f"(first Id: {ids[won_open].iloc[0]!r}); the export is inconsistent, export again"
        )
    created_at = parse_times(rows["CreatedDate"], path, "CreatedDate", ids)
    key = pd.Series(ids.to_numpy(), index=sf_id(ids).to_numpy())
    history = read_history(source, key)
    if history is None:
        by_deal = pd.Series(created_at.to_numpy(), index=ids.to_numpy())
        history = field_history_stages(source, key, by_deal, sf_id)
    closed_names: set[str] = set()
    if "StageName" in rows.columns:
        closed_names = set(rows.loc[is_closed, "StageName"].dropna().str.strip())
    close_date = (
        parse_times(rows["CloseDate"], path, "CloseDate", ids)
        if "CloseDate" in rows.columns
        else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]")
    )
    entered = entered_closed(history, closed_names, pd.Index(ids)).reset_index(drop=True)
    closed_at, from_date = close_times(is_closed, entered, close_date, created_at)
    undated = is_closed & closed_at.isna()
    if undated.any():
        raise DataContractError(
            f"{path}: {int(undated.sum())} closed opportunities have no close time (first Id: "
            f"{ids[undated].iloc[0]!r}): no closed stage in OpportunityHistory.csv and no "
            "CloseDate; export OpportunityHistory, or CloseDate with the opportunities"
        )
    amount, errors = (
        parse_amounts(rows["Amount"], str(path), "Amount", ids)
        if "Amount" in rows.columns
        else (pd.Series(float("nan"), index=rows.index), [])
    )
    if errors:
        raise DataContractError("; ".join(errors))
    deals = pd.DataFrame(
        {
            "deal_id": ids,
            "created_at": created_at,
            "closed_at": closed_at,
            "outcome": is_won.map({True: "won", False: "lost"}).where(is_closed),
            "amount": amount,
            "account_id": rows.get("AccountId"),
            "owner_id": rows.get("OwnerId"),
        }
    )
    if "CurrencyIsoCode" in rows.columns:
        amount, currency, converted = corporate_amounts(
            source, deals["amount"], rows["CurrencyIsoCode"].str.strip(), close_date, ids
        )
        deals["amount"], deals["currency"] = amount, currency
        counts["currency_note"] = converted or ""
    for field, attribute in ATTRIBUTES.items():
        if field in rows.columns:
            deals[attribute] = rows[field]
    counts |= {"closed_from_close_date": from_date, "open": int((~is_closed).sum())}
    return with_accounts(deals, source), history, closed_names, counts


def with_accounts(deals: pd.DataFrame, source: Path) -> pd.DataFrame:
    """The account's industry and country beside each deal (when Account.csv is exported)."""
    path = source / ACCOUNT
    if not path.is_file() or deals["account_id"].isna().all():
        return deals
    accounts = read_export(path, ["Id"], [*ACCOUNT_ATTRIBUTES, "IsDeleted"], "the Account object")
    accounts, _ = not_deleted(accounts, path)
    fields = [f for f in ACCOUNT_ATTRIBUTES if f in accounts.columns]
    looked_up = accounts.assign(key=sf_id(accounts["Id"])).drop_duplicates("key").set_index("key")
    for field in fields:
        deals[ACCOUNT_ATTRIBUTES[field]] = sf_id(deals["account_id"]).map(looked_up[field])
    return deals


def tasks(source: Path, key: pd.Series) -> tuple[pd.DataFrame, dict[str, int]]:
    """Done tasks on opportunities as interactions (type from TaskSubtype, else Type)."""
    path = source / TASK
    if not path.is_file():
        return _no_events(), {}
    rows = read_export(
        path,
        ["Id", "WhatId", "CreatedDate"],
        ["TaskSubtype", "Type", "CallType", "CompletedDateTime", "IsClosed", "Status", "IsDeleted"],
        "the Task object",
    )
    rows, deleted = not_deleted(rows, path)
    if "IsClosed" in rows.columns:
        done = parse_flags(rows["IsClosed"], str(path), "IsClosed", rows["Id"])
    elif "Status" in rows.columns:
        done = rows["Status"].str.strip().str.casefold() == "completed"
    else:
        done = pd.Series(True, index=rows.index)
    subtype = rows.get("TaskSubtype", pd.Series(pd.NA, index=rows.index, dtype="str"))
    kind = subtype.str.strip().str.casefold()
    other = rows.get("Type", pd.Series(pd.NA, index=rows.index, dtype="str")).str.strip()
    kind = kind.where(kind.notna() & (kind != "task"), other.str.casefold().fillna("task"))
    call_type = rows.get("CallType", pd.Series(pd.NA, index=rows.index, dtype="str"))
    direction = (
        call_type.str.strip().str.casefold().map({"inbound": "inbound", "outbound": "outbound"})
    )
    completed = (
        parse_times(rows["CompletedDateTime"], path, "CompletedDateTime", rows["Id"])
        if "CompletedDateTime" in rows.columns
        else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]")
    )
    events = pd.DataFrame(
        {
            "deal_id": sf_id(rows["WhatId"]).map(key),
            "occurred_at": later_of(
                parse_times(rows["CreatedDate"], path, "CreatedDate", rows["Id"]), completed
            ),
            "type": kind,
            "channel": kind.map(SUBTYPE_CHANNELS).fillna("crm"),
            "direction": direction,
            "value": float("nan"),
        }
    )
    on_deal = events["deal_id"].notna()
    counts = {
        "tasks_deleted": deleted,
        "tasks_open": int((on_deal & ~done).sum()),
        "tasks_elsewhere": int((~on_deal).sum()),
    }
    return events[on_deal & done], counts


def events_held(
    source: Path, key: pd.Series, export_end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Calendar events on opportunities held by the export, as interactions (type from Type)."""
    path = source / EVENT
    if not path.is_file():
        return _no_events(), {}
    rows = read_export(
        path,
        ["Id", "WhatId", "CreatedDate"],
        ["StartDateTime", "ActivityDateTime", "Type", "EventSubtype", "IsDeleted"],
        "the Event object",
    )
    rows, deleted = not_deleted(rows, path)
    start_field = "StartDateTime" if "StartDateTime" in rows.columns else "ActivityDateTime"
    if start_field not in rows.columns:
        raise DataContractError(
            f"{path}: missing field 'StartDateTime' (or 'ActivityDateTime'): when the event was "
            f"held; found {[str(c) for c in rows.columns][:40]}"
        )
    start = parse_times(rows[start_field], path, start_field, rows["Id"])
    created = parse_times(rows["CreatedDate"], path, "CreatedDate", rows["Id"])
    # Booked meetings are in the export before they are held: the export ends at the latest
    # record created, and an event starting after it has not happened yet.
    export_end = max(export_end, created.max())
    kind = rows.get("Type", pd.Series(pd.NA, index=rows.index, dtype="str")).str.strip()
    kind = kind.str.casefold().fillna("meeting")
    events = pd.DataFrame(
        {
            "deal_id": sf_id(rows["WhatId"]).map(key),
            "occurred_at": later_of(created, start),
            "type": kind,
            "channel": "meeting",
            "direction": None,
            "value": float("nan"),
        }
    )
    on_deal = events["deal_id"].notna()
    upcoming = on_deal & (events["occurred_at"] > export_end)
    counts = {
        "events_deleted": deleted,
        "events_upcoming": int(upcoming.sum()),
        "events_elsewhere": int((~on_deal).sum()),
    }
    return events[on_deal & ~upcoming], counts


def _no_events() -> pd.DataFrame:
    columns = ["deal_id", "occurred_at", "type", "channel", "direction", "value"]
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


def adapt(source: Path) -> Adapted:
    """The org's export as validated deals and interactions, with notes and the config."""
    deals, history, closed_stages, counts = opportunities(source)
    key = pd.Series(deals["deal_id"].to_numpy(), index=sf_id(deals["deal_id"]).to_numpy())
    export_end = deals["created_at"].max()
    if history is not None and not history.empty:
        export_end = max(export_end, history["at"].max())
    task_events, task_counts = tasks(source, key)
    if len(task_events):
        export_end = max(export_end, task_events["occurred_at"].max())
    held, event_counts = events_held(source, key, export_end)
    parts = [task_events, held]
    order: dict[str, int] = {}
    if history is not None and not history.empty:
        order = stage_numbers(source, history, closed_stages)
        parts.append(stage_events(history, order))
    if not (source / TASK).is_file() and not (source / EVENT).is_file():
        raise DataContractError(
            f"{source}: neither {TASK} nor {EVENT} found; export the activities (Task and Event "
            "objects, with WhatId) beside Opportunity.csv"
        )
    attributes = [a for a in (*ATTRIBUTES.values(), *ACCOUNT_ATTRIBUTES.values()) if a in deals]
    kept = [*attributes, *(["currency"] if "currency" in deals else [])]
    typed = validate_deals(deals, str(source / OPPORTUNITY), tuple(kept))
    typed_events = pd.concat([p for p in parts if len(p)], ignore_index=True)
    interactions = validate_interactions(
        typed_events, f"{source} (Task, Event, OpportunityHistory)", typed["deal_id"]
    )
    counts |= task_counts | event_counts
    notes = describe(typed, interactions, counts, order)
    by_number: dict[int, str] = {}
    for name, number in order.items():
        by_number.setdefault(number, name)
    stages = [by_number[n] for n in sorted(by_number)]
    return Adapted(typed, interactions, notes, settings(typed, attributes, stages))


def settings(deals: pd.DataFrame, attributes: list[str], stages: list[str]) -> dict[str, object]:
    """The config the import writes: the attributes found filled, segments among them."""
    filled = [a for a in attributes if deals[a].notna().any()]
    segment = "opportunity_type" if "opportunity_type" in filled else None
    by_source = "lead_source" if "lead_source" in filled else segment
    return {
        "data": {"attributes": filled, "stages": stages},
        "value": {"segment": segment},
        "evaluation": {"segment": by_source},
    }


def describe(
    deals: pd.DataFrame, interactions: pd.DataFrame, counts: dict[str, Any], order: dict[str, int]
) -> list[str]:
    outcome = deals["outcome"].value_counts()
    kinds = interactions["type"].value_counts()
    stages = ", ".join(f"{n} {s!r}" for s, n in sorted(order.items(), key=lambda kv: kv[1]))
    return [
        f"{outcome.get('won', 0):,} won, {outcome.get('lost', 0):,} lost (IsClosed/IsWon), "
        f"{counts['open']:,} open",
        f"deleted rows (IsDeleted) dropped: {counts['deleted_opportunities']:,} opportunities, "
        f"{counts.get('tasks_deleted', 0):,} tasks, {counts.get('events_deleted', 0):,} events",
        f"closed_at: when the stage history last entered a closed stage; "
        f"{counts['closed_from_close_date']:,} closed deals without one use the end of their "
        "CloseDate. The CloseDate of open deals is a forecast: never read",
        "never attributes (how a deal stands on the export day): " + ", ".join(EXPORT_DAY_FIELDS),
        f"stage numbers (value of stage_change): {stages or 'no OpportunityHistory.csv'}",
        f"interactions by type: {', '.join(f'{k} {v:,}' for k, v in kinds.items())}",
        f"left out: {counts.get('tasks_open', 0):,} open tasks (not done), "
        f"{counts.get('events_upcoming', 0):,} events after the export, "
        f"{counts.get('tasks_elsewhere', 0) + counts.get('events_elsewhere', 0):,} activities on "
        "records other than the exported opportunities",
        "a task or event is dated when it was known: the later of CreatedDate and its "
        "completion or start",
        *([counts["currency_note"]] if counts.get("currency_note") else []),
    ]
