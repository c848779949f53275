"""What the Salesforce and HubSpot adapters share: reading an export's CSV by its vendor's
field names (any case: Data Loader writes `STAGENAME`, the Bulk API `StageName`), timestamps
as the vendors write them, the stage history as `stage_change` events numbered in pipeline
order, and the `config.yaml` an import writes beside its tables.

Stages become numbers because the stage family reads the `value` of stage changes: the order
comes from the CRM's own stage list where the export has one, else from the history itself
(each stage's median position in the deals' sequences of stages entered).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.io import read_source_csv

STAGE_EVENT = "stage_change"
# A day's close, for a close known only by its date: the end of that day (never earlier than
# the close really was, so the deal is never taken as closed before it was).
END_OF_DAY = pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


def find_column(frame: pd.DataFrame, name: str) -> str | None:
    """The header that is `name` up to case, spaces and underscores, or None."""
    key = re.sub(r"[\s_]+", "", name.casefold())
    for column in frame.columns:
        if re.sub(r"[\s_]+", "", str(column).casefold()) == key:
            return str(column)
    return None


# The column delimiters Salesforce's Bulk API 2.0 writes (its `columnDelimiter`: COMMA, PIPE,
# TAB, SEMICOLON, CARET, BACKQUOTE); Data Loader and the weekly Data Export write commas.
DELIMITERS = ",|\t;^`"


def column_delimiter(path: Path) -> str:
    """The delimiter of the CSV's header row: of `DELIMITERS`, the one that splits it into the
    most fields outside quotes (a comma when none splits it)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = handle.readline()
    counts = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","


def read_export(
    path: Path, required: Iterable[str], optional: Iterable[str], what: str
) -> pd.DataFrame:
    """The CSV at `path` as text, its headers renamed to the vendor's field names given
    (matched up to case, spaces and underscores; Bulk API 2.0's other delimiters read too); a
    missing required field is an error naming the file, the field and the headers found."""
    if not path.is_file():
        raise DataContractError(f"{path}: file not found; expected {what}")
    frame = read_source_csv(path, sep=column_delimiter(path))
    renames: dict[str, str] = {}
    missing = []
    for name in (*required, *optional):
        column = find_column(frame, name)
        if column is not None:
            renames[column] = name
        elif name in tuple(required):
            missing.append(name)
    if missing:
        raise DataContractError(
            f"{path}: missing field{'s' * (len(missing) > 1)} {missing} ({what}); found "
            f"{[str(c) for c in frame.columns][:40]}. Add {'them' if len(missing) > 1 else 'it'}"
            " to the export's field list"
        )
    return frame.rename(columns=renames)


def parse_times(values: pd.Series, path: Path, column: str, ids: pd.Series) -> pd.Series:
    """UTC timestamps from Data Loader/Bulk API datetimes (`2023-04-05T14:22:11.000+0000`),
    ISO dates and HubSpot's `2023-04-05 14:22` (no offset: taken as UTC); empty stays NaT, any
    other value is an error showing it."""
    text = values.astype("str").str.strip().where(values.notna(), "")
    present = text != ""
    # Data Loader's offsets lack the colon ('+0000'); pandas reads them either way.
    parsed = pd.to_datetime(text.where(present), utc=True, errors="coerce", format="ISO8601")
    bad = present & parsed.isna()
    if bad.any():
        raise DataContractError(
            f"{path}: column {column!r} has {int(bad.sum())} unreadable timestamps (first: "
            f"{text[bad].iloc[0]!r}, Id {ids[bad].iloc[0]!r}); expected e.g. "
            "'2023-04-05T14:22:11.000+0000' or '2023-04-05'"
        )
    return parsed.astype("datetime64[ns, UTC]")


def later_of(*times: pd.Series) -> pd.Series:
    """Row-wise the latest of the given timestamps (NaT ignored): when a record was known."""
    return pd.concat(times, axis=1).max(axis=1).astype("datetime64[ns, UTC]")


def stage_order(history: pd.DataFrame, closed: Iterable[str]) -> dict[str, int]:
    """Stage name → 1, 2, …: open stages by their median position in the deals' sequences of
    stages entered (ties by name), then closed stages (`closed`) after them, by name."""
    closed = set(closed)
    ordered = history.sort_values(["deal_id", "at"], kind="stable")
    position = ordered.groupby("deal_id").cumcount()
    medians = position.groupby(ordered["stage"]).median()
    open_stages = sorted(
        (s for s in medians.index if s not in closed), key=lambda s: (medians[s], s)
    )
    names = [*open_stages, *sorted(s for s in medians.index if s in closed)]
    return {str(name): number for number, name in enumerate(names, start=1)}


def stage_events(history: pd.DataFrame, order: dict[str, int]) -> pd.DataFrame:
    """`stage_change` interactions: one per change of stage (rows repeating the previous stage,
    such as amount edits, dropped), `value` = the stage's number in `order`."""
    ordered = history.sort_values(["deal_id", "at"], kind="stable")
    previous = ordered.groupby("deal_id")["stage"].shift()
    changes = ordered[ordered["stage"] != previous]
    return pd.DataFrame(
        {
            "deal_id": changes["deal_id"].to_numpy(),
            "occurred_at": changes["at"].to_numpy(),
            "type": STAGE_EVENT,
            "channel": "crm",
            "direction": None,
            "value": changes["stage"].map(order).astype(float).to_numpy(),
        }
    )


def close_times(
    closed: pd.Series, entered_closed: pd.Series, close_date: pd.Series, created_at: pd.Series
) -> tuple[pd.Series, int]:
    """When closed deals closed: when they entered their closed stage (history), else the end of
    the CRM's close date, never before creation; NaT for open deals (their close date is a
    forecast). Also the number of closed deals whose close came from the close date."""
    from_date = (close_date + END_OF_DAY).where(close_date.notna())
    at = entered_closed.where(entered_closed.notna(), from_date)
    at = at.where(~(at < created_at), created_at)
    fallback = int((closed & entered_closed.isna()).sum())
    return at.where(closed).astype("datetime64[ns, UTC]"), fallback


def export_name(out: Path, vendor: str) -> str:
    """The name a config gets: the output folder's name as an MLflow-safe slug."""
    slug = re.sub(r"[^a-z0-9_.-]+", "-", out.resolve().name.casefold()).strip("-._")
    return slug or f"{vendor}-crm"


def _from(folder: Path, path: Path) -> str:
    """`path` relative to `folder`, as a config in `folder` names it."""
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def write_config(
    out: Path, vendor: str, source: Path, settings: dict[str, Any], deals: Path, events: Path
) -> Path:
    """`out/config.yaml`: the tables just written, the attributes the adapter offers and its
    segments, so that `closeprob check|train|predict --config out/config.yaml` runs as is."""
    # Paths from the config's folder (where relative paths in a config start): the folder
    # works from any working directory, and moved or copied as a whole.
    data = {
        "deals": _from(out, deals),
        "interactions": _from(out, events),
        "truth": None,
        **settings.get("data", {}),
    }
    config = {
        "name": export_name(out, vendor),
        "data": data,
        **{k: v for k, v in settings.items() if k != "data"},
        "predict": {"out": "priority_queue.csv"},
    }
    header = (
        f"# Written by `closeprob import {vendor} --source {source} --out {out}`.\n"
        "# data.attributes: fields known when a deal is created; export-day fields (the current\n"
        "# stage, IsClosed/IsWon, probability, forecast category, last activity or modified\n"
        "# dates) are never offered. For a nightly run on a fresh export, add\n"
        f"#   data: {{adapter: {vendor}, source: {source.resolve()}}}\n"
        "# and train/predict import it first.\n"
    )
    path = out / "config.yaml"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path
