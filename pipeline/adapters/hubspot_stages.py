"""The stage history a HubSpot deals export holds: the stage calculated properties HubSpot
exports per stage (knowledge.hubspot.com, "Use stage calculated properties"):

- `Date entered "<stage>"`: when the deal last entered the stage;
- `Date exited "<stage>"`: when it last left it;
- `Latest time in "<stage>"`: the time in its latest completed visit (while a deal is in a
  stage it had visited before, the time of that earlier visit);
- `Cumulative time in "<stage>"`: the time in all its visits.

A deal that moved back and forth shows its last pass through each stage in `Date entered`.
Some earlier passes can be dated again: a deal in a stage now whose `Date exited` is before
its `Date entered` was in that stage before, until that exit, for `Latest time in`, so it
entered it `Latest time in` before the exit. The other earlier passes (a stage left and
re-entered, then left again) show only as cumulative time: they are counted, never dated by
guess (docs/crm-exports.md, "Limits"). Times in stage are read as HubSpot stores them, in
milliseconds; any other value is an error showing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from closeprob.pipeline.adapters.crm_export import parse_times
from closeprob.pipeline.errors import DataContractError

KINDS = ("Date entered", "Date exited", "Latest time in", "Cumulative time in")
STAGE_PROPERTY = re.compile(
    r"^(?P<kind>Date entered|Date exited|Latest time in|Cumulative time in)\s+"
    r'"(?P<label>[^"]+)"(?:\s*\((?P<pipeline>[^)]*)\))?$',
    re.IGNORECASE,
)
LABEL_PIPELINE = re.compile(r"^(?P<stage>.+?)\s*\((?P<pipeline>[^()]+)\)$")
# Cumulative time not explained by the dated passes, below which it is rounding.
SLACK = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class StageProperty:
    """One stage calculated property column: its kind and the stage it is about."""

    kind: str
    stage: str
    pipeline: str | None

    @property
    def name(self) -> str:
        """The stage as the history names it: 'Stage (Pipeline)' when the export says which."""
        return f"{self.stage} ({self.pipeline})" if self.pipeline else self.stage


def stage_properties(frame: pd.DataFrame) -> dict[str, StageProperty]:
    """Header → the stage calculated property it is (headers that are none left out)."""
    found: dict[str, StageProperty] = {}
    for column in frame.columns:
        match = STAGE_PROPERTY.match(str(column).strip())
        if match is None:
            continue
        label, pipeline = match["label"].strip(), match["pipeline"]
        inner = LABEL_PIPELINE.match(label)
        if pipeline is None and inner is not None:
            label, pipeline = inner["stage"].strip(), inner["pipeline"]
        kind = next(k for k in KINDS if k.casefold() == match["kind"].casefold())
        found[str(column)] = StageProperty(kind, label, pipeline.strip() if pipeline else None)
    return found


def parse_durations(values: pd.Series, path: Path, column: str, ids: pd.Series) -> pd.Series:
    """Times in stage, HubSpot's milliseconds, as Timedelta (empty: NaT); another value (a
    duration written out, a negative number) is an error naming file, column and value."""
    text = values.astype("str").str.strip().where(values.notna(), "")
    present = text != ""
    number = pd.to_numeric(text.where(present), errors="coerce")
    bad = present & ~(number >= 0)
    if bad.any():
        raise DataContractError(
            f"{path}: column {column!r} has {int(bad.sum())} values that are not a time in "
            f"milliseconds (first: {text[bad].iloc[0]!r}, Record ID {ids[bad].iloc[0]!r}); "
            "HubSpot exports times in stage as milliseconds: export the property unformatted, "
            "or leave the column out"
        )
    return pd.to_timedelta(number, unit="ms")


def stage_visits(
    rows: pd.DataFrame, path: Path, ids: pd.Series
) -> tuple[pd.DataFrame, dict[str, int]]:
    """(deal_id, at, stage) of every dated stage entry: each `Date entered`, and the earlier
    passes dated again (module docstring). Counts: `earlier_dated`, `earlier_undated` (deals
    with time in a stage they have left that no dated pass explains: at least that many
    deals went back and forth undated)."""
    columns = stage_properties(rows)
    by_stage: dict[str, dict[str, pd.Series]] = {}
    for column, prop in columns.items():
        parse = parse_times if prop.kind.startswith("Date") else parse_durations
        by_stage.setdefault(prop.name, {})[prop.kind] = parse(rows[column], path, column, ids)
    parts, dated, undated = [], 0, pd.Series(False, index=rows.index)
    for name, values in by_stage.items():
        entered = values.get("Date entered")
        if entered is None:
            continue
        parts.append(pd.DataFrame({"deal_id": ids, "at": entered, "stage": name})[entered.notna()])
        earlier, known = _earlier_pass(entered, values)
        parts.append(pd.DataFrame({"deal_id": ids, "at": earlier, "stage": name})[earlier.notna()])
        dated += int(earlier.notna().sum())
        cumulative = values.get("Cumulative time in")
        exited = values.get("Date exited")
        if cumulative is not None and exited is not None:
            # Only stages the deal has left: a current stage's time may run to the export.
            undated |= (exited >= entered) & ((cumulative - known) > SLACK)
    if not parts:
        return pd.DataFrame({"deal_id": [], "at": [], "stage": []}), {}
    history = pd.concat(parts, ignore_index=True).astype({"at": "datetime64[ns, UTC]"})
    return history, {"earlier_dated": dated, "earlier_undated": int(undated.sum())}


def _earlier_pass(entered: pd.Series, values: dict[str, pd.Series]) -> tuple[pd.Series, pd.Series]:
    """Per deal, the entry of an earlier pass through the stage when the export dates it (a
    `Date exited` before `Date entered`, with `Latest time in`), and the time in the stage the
    dated passes account for."""
    nat = pd.Series(pd.NaT, index=entered.index, dtype="datetime64[ns, UTC]")
    exited = values.get("Date exited", nat)
    latest = values.get("Latest time in", pd.Series(pd.NaT, index=entered.index, dtype="m8[ns]"))
    left_before = exited < entered  # in the stage now, and in it before until `exited`
    earlier = (exited - latest).where(left_before & latest.notna())
    last_pass = (exited - entered).where(exited >= entered)
    known = last_pass.fillna(pd.Timedelta(0)) + latest.where(left_before).fillna(pd.Timedelta(0))
    return earlier.astype("datetime64[ns, UTC]"), known
