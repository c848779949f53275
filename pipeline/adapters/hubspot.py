"""A HubSpot export (CRM → Deals → Export, and the activity exports: calls, emails, meetings,
notes, tasks), property labels as headers, on the data contract.

- The deals file is the CSV with `Record ID` and `Deal Stage`: one deal per row, `Create Date`.
  Won/lost come from HubSpot's own closed-won/closed-lost flags (`Is Closed Won`, `Is Deal
  Closed?`), else from the stage's probability (HubSpot fixes 1.0 for closed-won stages and 0.0
  for closed-lost), never from a stage name. A closed deal closed when it entered its closed
  stage (its `Date entered "<stage>"` column), else at the end of its `Close Date`; the `Close
  Date` of an open deal is a forecast and is never read.
- The `Date entered "<stage> (<pipeline>)"` columns HubSpot exports per stage are the stage
  history: `stage_change` events, stages numbered per pipeline in history order. HubSpot keeps
  only the latest entry per stage, so a deal that went back and forth shows its last pass;
  `Date exited`, `Latest time in` and `Cumulative time in` date some earlier passes again and
  count the others (pipeline/adapters/hubspot_stages.py).
- Every other CSV with an `Associated Deal IDs` column is an activity export; its type is its
  `Activity type` column or the kind its file name says (calls, emails, meetings, notes,
  tasks). Associations are `;`-lists: an activity on two deals counts for both. Tasks not
  completed are left out. An activity is dated when it was known: the later of its
  `Activity date` and its `Create date`.

HubSpot writes datetimes in the account's time zone without an offset; they are taken as UTC.
Export-day properties (the current `Deal Stage`, the flags, `Deal probability`, `Forecast
category`, `Last Activity Date`, `Last Modified Date`, …) are never offered as attributes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from closeprob.pipeline.adapters import Adapted
from closeprob.pipeline.adapters.crm_export import (
    close_times,
    find_column,
    later_of,
    parse_times,
    read_export,
    stage_events,
    stage_order,
)
from closeprob.pipeline.adapters.hubspot_stages import stage_visits
from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_source_csv
from closeprob.pipeline.validate import validate_deals, validate_interactions
from closeprob.pipeline.values import empty_ids, parse_amounts, parse_flags, split_id_lists

DEAL_FIELDS = ("Record ID", "Deal Stage", "Create Date")
OPTIONAL_FIELDS = (
    "Deal Name",
    "Pipeline",
    "Amount",
    "Close Date",
    "Deal owner",
    "Deal Type",
    "Currency",
    "Amount in company currency",
    "Is Closed Won",
    "Is Deal Closed?",
    "Deal probability",
    "Associated Company IDs",
)
EXPORT_DAY_FIELDS = (
    "Deal Stage",
    "Is Closed Won",
    "Is Closed Lost",
    "Is Deal Closed?",
    "Deal probability",
    "Forecast category",
    "Forecast probability",
    "Weighted amount",
    "Close Date",
    "Last Activity Date",
    "Last Modified Date",
    "Last Contacted",
    "Next Activity Date",
    "Days to close",
    "Number of Sales Activities",
    "Number of times contacted",
)
# Deal property → attribute: set when a deal is created.
ATTRIBUTES = {"Deal Type": "deal_type", "Pipeline": "pipeline"}
DATE_ENTERED = re.compile(r'^Date entered "(?P<label>[^"]+)"(?:\s*\((?P<pipeline>[^)]*)\))?$')
LABEL_PIPELINE = re.compile(r"^(?P<stage>.+?)\s*\((?P<pipeline>[^()]+)\)$")
ACTIVITY_KINDS = ("call", "email", "meeting", "note", "task")
DIRECTIONS = {
    "inbound": "inbound",
    "incoming": "inbound",
    "incoming_email": "inbound",
    "incoming email": "inbound",
    "outbound": "outbound",
    "outgoing": "outbound",
    "email": "outbound",
    "outgoing email": "outbound",
}


def stage_columns(frame: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    """`Date entered "…"` header → (stage, pipeline or None)."""
    found: dict[str, tuple[str, str | None]] = {}
    for column in frame.columns:
        match = DATE_ENTERED.match(str(column).strip())
        if match is None:
            continue
        label, pipeline = match["label"].strip(), match["pipeline"]
        inner = LABEL_PIPELINE.match(label)
        if pipeline is None and inner is not None:
            label, pipeline = inner["stage"].strip(), inner["pipeline"]
        found[str(column)] = (label, pipeline.strip() if pipeline else None)
    return found


def find_deals_file(source: Path) -> Path:
    """The CSV under `source` whose header has `Record ID` and `Deal Stage`."""
    candidates = sorted(source.glob("*.csv")) if source.is_dir() else []
    for path in candidates:
        header = list(read_source_csv(path).columns) if path.stat().st_size else []
        names = {re.sub(r"\s+", "", str(c).casefold()) for c in header}
        if {"recordid", "dealstage"} <= names:
            return path
    workbooks = sorted(source.glob("*.xls*")) if source.is_dir() else []
    if workbooks:
        raise DataContractError(
            f"{workbooks[0]}: an Excel workbook ({len(workbooks)} in {source}); closeprob reads "
            "HubSpot's CSV exports: export again choosing CSV as the file format (HubSpot "
            "offers CSV, XLS and XLSX), or save each sheet as CSV (UTF-8)"
        )
    raise DataContractError(
        f"{source}: no deals export found (a CSV with 'Record ID' and 'Deal Stage' columns) among "
        f"{[p.name for p in candidates]}; export the deals with those properties into this folder"
    )


def outcomes(rows: pd.DataFrame, path: Path, ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(closed, won) per deal from HubSpot's flags, else the stage probability (1 or 0 on
    closed stages)."""
    if "Is Deal Closed?" in rows.columns and "Is Closed Won" in rows.columns:
        closed = parse_flags(rows["Is Deal Closed?"], str(path), "Is Deal Closed?", ids)
        won = parse_flags(rows["Is Closed Won"], str(path), "Is Closed Won", ids)
        return closed, won & closed
    if "Deal probability" in rows.columns:
        text = rows["Deal probability"].astype("str").str.strip().str.rstrip("%")
        probability = pd.to_numeric(text, errors="coerce")
        probability = probability.where(probability <= 1, probability / 100)
        won, lost = probability == 1, probability == 0
        return won | lost, won
    raise DataContractError(
        f"{path}: no 'Is Closed Won' and 'Is Deal Closed?' columns (nor 'Deal probability'): "
        "won and lost come from HubSpot's own closed-won/closed-lost flags, never from a stage "
        "name. Add those properties to the deals export"
    )


def stage_history(
    rows: pd.DataFrame, path: Path, ids: pd.Series
) -> tuple[pd.DataFrame, dict[str, tuple[str, str | None]], dict[str, int]]:
    """(deal_id, at, stage) from the stage calculated properties (`stage_visits`: each `Date
    entered`, and earlier passes `Date exited` and `Latest time in` date again); stage =
    'Stage (Pipeline)' when the export names pipelines."""
    history, counts = stage_visits(rows, path, ids)
    return history, stage_columns(rows), counts


def deals_table(
    source: Path,
) -> tuple[pd.DataFrame, pd.DataFrame, set[str], dict[str, int], Path]:
    """Deals on the contract (not validated), the stage history, closed stage names, counts."""
    path = find_deals_file(source)
    rows = read_export(path, DEAL_FIELDS, OPTIONAL_FIELDS, "HubSpot's deals export")
    ids = rows["Record ID"].str.strip()
    closed, won = outcomes(rows, path, ids)
    created_at = parse_times(rows["Create Date"], path, "Create Date", ids)
    history, columns, visit_counts = stage_history(rows, path, ids)
    pipeline = rows["Pipeline"].str.strip() if "Pipeline" in rows.columns else None
    stage = rows["Deal Stage"].str.strip()
    current = (
        stage
        if pipeline is None or not any(p for _, p in columns.values())
        else (stage + " (" + pipeline + ")")
    )
    if len(history) and not set(current.dropna()) & set(history["stage"]):
        # `Deal Stage` as internal values (`closedwon`, stage ids), the history as labels: a
        # deal's current stage is the one it entered last.
        current = _last_entered(history, ids)
    closed_stages = set(current[closed].dropna())
    entered = _entered_current(history, current, ids)
    close_date = (
        parse_times(rows["Close Date"], path, "Close Date", ids)
        if "Close Date" in rows.columns
        else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]")
    )
    closed_at, from_date = close_times(closed, entered, close_date, created_at)
    amount = pd.Series(float("nan"), index=rows.index)
    # In a multi-currency account, the company currency's amount is one unit for every deal.
    amount_column = next(
        (c for c in ("Amount in company currency", "Amount") if c in rows.columns), None
    )
    if amount_column is not None:
        amount, errors = parse_amounts(rows[amount_column], str(path), amount_column, ids)
        if errors:
            raise DataContractError("; ".join(errors))
    deals = pd.DataFrame(
        {
            "deal_id": ids,
            "created_at": created_at,
            "closed_at": closed_at,
            "outcome": won.map({True: "won", False: "lost"}).where(closed),
            "amount": amount,
            "owner_id": rows.get("Deal owner"),
        }
    )
    if "Associated Company IDs" in rows.columns:
        first = rows["Associated Company IDs"].astype("str").str.split(";").str[0].str.strip()
        deals["account_id"] = first.where(rows["Associated Company IDs"].notna() & (first != ""))
    if "Currency" in rows.columns and amount_column == "Amount":
        deals["currency"] = rows["Currency"].str.strip()
    for field, attribute in ATTRIBUTES.items():
        if field in rows.columns:
            deals[attribute] = rows[field]
    counts = {
        "closed_from_close_date": from_date,
        "open": int((~closed).sum()),
        "company_currency": int(amount_column == "Amount in company currency"),
    } | visit_counts
    return deals, history, closed_stages, counts, path


def _last_entered(history: pd.DataFrame, ids: pd.Series) -> pd.Series:
    """Per deal (aligned with `ids`), the stage of its latest `Date entered` (NaN without)."""
    latest = history.sort_values("at", kind="stable").groupby("deal_id")["stage"].last()
    return pd.Series(latest.reindex(ids.to_numpy()).to_numpy(), index=ids.index, dtype="str")


def _entered_current(history: pd.DataFrame, current: pd.Series, ids: pd.Series) -> pd.Series:
    """When each deal entered the stage it is in now (NaT without that column)."""
    if history.empty:
        return pd.Series(pd.NaT, index=current.index, dtype="datetime64[ns, UTC]")
    keyed = history.groupby(["deal_id", "stage"])["at"].max()  # the latest entry
    pairs = pd.MultiIndex.from_arrays([ids, current])
    return pd.Series(keyed.reindex(pairs).to_numpy(), index=current.index).astype(
        "datetime64[ns, UTC]"
    )


def activity_files(source: Path, deals_file: Path) -> list[tuple[Path, pd.DataFrame, str]]:
    """(path, rows, association column) of every CSV with an `Associated Deal IDs` column."""
    found = []
    for path in sorted(source.glob("*.csv")):
        if path == deals_file or path.stat().st_size == 0:
            continue
        rows = read_source_csv(path)
        column = find_column(rows, "Associated Deal IDs") or find_column(rows, "Associated Deal ID")
        if column is not None:
            found.append((path, rows, column))
    return found


def activity_kind(path: Path, rows: pd.DataFrame) -> pd.Series:
    """Each row's type: its `Activity type` column, else the kind the file name says."""
    column = find_column(rows, "Activity type")
    if column is not None:
        return rows[column].astype("str").str.strip().str.casefold().where(rows[column].notna())
    stem = path.stem.casefold()
    kind = next((k for k in ACTIVITY_KINDS if k in stem), None)
    if kind is None:
        raise DataContractError(
            f"{path}: an activity export (it has 'Associated Deal IDs') with no 'Activity type' "
            f"column, and its name says none of {list(ACTIVITY_KINDS)}; add the column or name "
            "the file after its kind (calls.csv, emails.csv, …)"
        )
    return pd.Series(kind, index=rows.index, dtype="str")


def activities(
    source: Path, deals_file: Path, deal_ids: pd.Series, export_end: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Interactions from every activity export, one row per associated deal."""
    parts, counts = [], {"no_deal": 0, "other_deals": 0, "open_tasks": 0, "listed": 0, "later": 0}
    files = activity_files(source, deals_file)
    if not files:
        raise DataContractError(
            f"{source}: no activity export found (a CSV with an 'Associated Deal IDs' column "
            "beside the deals export); export calls, emails, meetings and notes with their "
            "associated deals"
        )
    for path, rows, association in files:
        ids = rows[find_column(rows, "Record ID") or association]
        date_column = find_column(rows, "Activity date") or find_column(rows, "Create date")
        if date_column is None:
            raise DataContractError(
                f"{path}: no 'Activity date' column; found {[str(c) for c in rows.columns][:30]}"
            )
        at = parse_times(rows[date_column], path, date_column, ids)
        created = find_column(rows, "Create date")
        if created is not None and created != date_column:
            logged = parse_times(rows[created], path, created, ids)
            # A meeting booked for a later day is in the export; it has not happened yet.
            export_end = max(export_end, logged.max())
            at = later_of(at, logged)
        kind = activity_kind(path, rows)
        status = find_column(rows, "Task status")
        done = pd.Series(True, index=rows.index)
        if status is not None:
            written = rows[status].astype("str").str.strip().str.casefold()
            done = rows[status].isna() | (written == "completed")
        direction_column = find_column(rows, "Call direction") or find_column(
            rows, "Email direction"
        )
        direction = pd.Series(None, index=rows.index, dtype="str")
        if direction_column is not None:
            direction = (
                rows[direction_column].astype("str").str.strip().str.casefold().map(DIRECTIONS)
            )
        counts["no_deal"] += empty_ids(rows, association)
        counts["open_tasks"] += int((~done).sum())
        counts["listed"] += int(rows[association].astype("str").str.contains(";").sum())
        frame = pd.DataFrame(
            {
                "deal_id": rows[association],
                "occurred_at": at,
                "type": kind,
                "channel": kind.map({"call": "phone", "email": "email", "meeting": "meeting"}),
                "direction": direction,
                "value": float("nan"),
            }
        )[done]
        parts.append(split_id_lists(frame, "deal_id"))
    events = pd.concat(parts, ignore_index=True)
    known = events["deal_id"].isin(deal_ids)
    later = events["occurred_at"] > export_end
    counts["other_deals"] = int((~known).sum())
    counts["later"] = int((known & later).sum())
    return events[known & ~later].reset_index(drop=True), counts


def adapt(source: Path) -> Adapted:
    """The HubSpot export as validated deals and interactions, with notes and the config."""

    deals, history, closed_stages, counts, deals_file = deals_table(source)
    export_end = max(deals["created_at"].max(), history["at"].max() if len(history) else pd.NaT)
    events, activity_counts = activities(source, deals_file, deals["deal_id"], export_end)
    parts = [events]
    order: dict[str, int] = {}
    if len(history):
        order = stage_order(history, closed_stages)
        parts.append(stage_events(history, order))
    attributes = [a for a in ATTRIBUTES.values() if a in deals.columns]
    kept = [*attributes, *(["currency"] if "currency" in deals else [])]
    typed = validate_deals(deals, str(deals_file), tuple(kept))
    interactions = validate_interactions(
        pd.concat(parts, ignore_index=True),
        f"{source} (activities, Date entered)",
        typed["deal_id"],
    )
    notes = describe(typed, interactions, counts | activity_counts, order)
    by_number: dict[int, str] = {}
    for name, number in order.items():
        by_number.setdefault(number, name)
    stages = [by_number[n] for n in sorted(by_number)]
    return Adapted(typed, interactions, notes, settings(typed, attributes, stages))


def settings(deals: pd.DataFrame, attributes: list[str], stages: list[str]) -> dict[str, object]:
    filled = [a for a in attributes if deals[a].notna().any() and deals[a].nunique() > 1]
    segment = "deal_type" if "deal_type" in filled else None
    return {
        "data": {"attributes": filled, "stages": stages},
        "value": {"segment": segment},
        "evaluation": {"segment": segment},
    }


def describe(
    deals: pd.DataFrame, interactions: pd.DataFrame, counts: dict[str, int], order: dict[str, int]
) -> list[str]:
    outcome = deals["outcome"].value_counts()
    kinds = interactions["type"].value_counts()
    stages = ", ".join(f"{n} {s!r}" for s, n in sorted(order.items(), key=lambda kv: kv[1]))
    return [
        f"{outcome.get('won', 0):,} won, {outcome.get('lost', 0):,} lost (HubSpot's closed-won/"
        f"closed-lost flags), {counts['open']:,} open",
        "closed_at: when the deal entered its closed stage (Date entered); "
        f"{counts['closed_from_close_date']:,} closed deals without that column use the end of "
        "their Close Date. The Close Date of open deals is a forecast: never read",
        "never attributes (how a deal stands on the export day): " + ", ".join(EXPORT_DAY_FIELDS),
        f"stage numbers (value of stage_change, from the Date entered columns): "
        f"{stages or 'none exported'}",
        f"earlier passes through a stage: {counts.get('earlier_dated', 0):,} dated again from "
        "Date exited and Latest time in; "
        f"{counts.get('earlier_undated', 0):,} deals spent time in a stage they left that no "
        "dated pass explains (Cumulative time in): those back-and-forth moves are not in the "
        "history",
        f"interactions by type: {', '.join(f'{k} {v:,}' for k, v in kinds.items())}; "
        f"{counts['listed']:,} activities were associated with several deals (';'-lists) and "
        "count for each",
        f"left out: {counts['no_deal']:,} activities with no associated deal, "
        f"{counts['other_deals']:,} associations to deals not in the deals export, "
        f"{counts['open_tasks']:,} tasks not completed, {counts['later']:,} dated after the "
        "export",
        "HubSpot writes times in the account's time zone without an offset: taken as UTC",
        "amounts: "
        + (
            "Amount in company currency (every deal in one currency, at HubSpot's rates)"
            if counts.get("company_currency")
            else "Amount, in each deal's Currency when the export has that column"
        ),
    ]
