"""The data contract, checked on every read. Each failure names the file, the column, how many
rows and the first offending ids, and says how to fix it.

Checks are hand-written, vectorised pandas rather than a schema library: every message must carry
the ids of the offending rows, which is most of the work either way.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from closeprob.pipeline.errors import DataContractError

DEAL_COLUMNS = ("deal_id", "created_at", "closed_at", "outcome")
DEAL_OPTIONAL = ("amount", "account_id", "owner_id")
INTERACTION_COLUMNS = ("deal_id", "occurred_at", "type")
INTERACTION_OPTIONAL = ("channel", "direction", "value")
OUTCOMES = ("won", "lost")
DIRECTIONS = ("inbound", "outbound")
SHOWN = 5
EARLIEST, LATEST = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")


def _ids(ids: Iterable[object]) -> str:
    shown = list(ids)[:SHOWN]
    return ", ".join(repr(str(i)) for i in shown)


def _fail(source: str, column: str, bad: pd.Series, ids: pd.Series, problem: str, fix: str) -> None:
    """Raise if any row of `bad` is True, naming the count and the first ids."""
    if bad.any():
        count = int(bad.sum())
        raise DataContractError(
            f"{source}: column {column!r} {problem} in {count} row{'s' * (count != 1)} "
            f"(first deal_id: {_ids(ids[bad])}); {fix}"
        )


def require_columns(frame: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Every required column is present; a near miss suggests the intended name."""
    required = tuple(required)
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    hints = []
    for column in missing:
        # Only columns that are not required themselves: 'closed_at' is no typo of 'created_at'.
        spare = [str(c) for c in frame.columns if c not in required]
        near = difflib.get_close_matches(column, spare, n=1, cutoff=0.6)
        hints.append(f"{column!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise DataContractError(
        f"{source}: missing required column{'s' * (len(missing) > 1)} {', '.join(hints)}; "
        f"found columns {[str(c) for c in frame.columns]}"
    )


def parse_timestamps(frame: pd.DataFrame, column: str, source: str, ids: pd.Series) -> pd.Series:
    """UTC timestamps in [EARLIEST, LATEST); offsets are converted, naive values are taken as
    UTC; empty (or blank) stays NaT."""
    raw = frame[column]
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed = raw.dt.tz_localize("UTC")
    else:
        text = raw.astype("str").str.strip()
        text = text.where(raw.notna() & (text != ""))
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna() & text.notna()
        if bad.any():
            _fail(
                source,
                column,
                bad,
                ids,
                f"has unparseable timestamps (first value: {text[bad].iloc[0]!r})",
                "use ISO 8601, e.g. '2024-03-01T09:30:00+01:00' (no offset means UTC)",
            )
    # Years like 0001 or 9999 parse, but break nanosecond timestamps and the feature keys
    # (features/timeline.py spans about 544 years); no CRM record is that old or that late.
    outside = parsed.notna() & ((parsed < EARLIEST) | (parsed >= LATEST))
    if outside.any():
        _fail(
            source,
            column,
            outside,
            ids,
            f"has timestamps outside {EARLIEST.year}–{LATEST.year - 1} "
            f"(first value: {str(parsed[outside].iloc[0])!r})",
            "fix the dates (a number or a placeholder date in a date column?)",
        )
    return parsed.astype("datetime64[ns, UTC]")


def parse_numbers(frame: pd.DataFrame, column: str, source: str, ids: pd.Series) -> pd.Series:
    """Finite floats; empty stays NaN; text, inf and NaN spelled out are errors."""
    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce").astype(float)
    present = raw.notna() & (raw.astype("str").str.strip() != "")
    _fail(
        source,
        column,
        present & numbers.isna(),
        ids,
        "is not numeric",
        "use plain numbers like 12500.50",
    )
    _fail(
        source,
        column,
        numbers.abs() == np.inf,
        ids,
        "is infinite",
        "use a finite number or leave the cell empty",
    )
    return numbers


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    text = frame[column].astype("str").str.strip()
    # A cell of spaces is as empty as an empty cell.
    return text.where(frame[column].notna() & (text != ""))


def validate_deals(
    frame: pd.DataFrame, source: str, attributes: Iterable[str] = ()
) -> pd.DataFrame:
    """The deals table, typed: UTC timestamps, float amount, lower-case outcome, text ids."""
    attributes = tuple(attributes)
    # Row numbers in messages count from 0 whatever index a Parquet file carried.
    frame = frame.reset_index(drop=True)
    require_columns(frame, (*DEAL_COLUMNS, *attributes), source)
    if len(frame) == 0:
        raise DataContractError(f"{source}: no deal rows; the file has a header only")
    deal_id = _text(frame, "deal_id")
    row_ids = deal_id.fillna("<row " + pd.Series(frame.index.astype(str), index=frame.index) + ">")
    _fail(source, "deal_id", deal_id.isna(), row_ids, "is empty", "give every deal an id")
    _fail(
        source,
        "deal_id",
        deal_id.duplicated(keep=False),
        deal_id,
        "is duplicated",
        "keep one row per deal",
    )
    created_at = parse_timestamps(frame, "created_at", source, deal_id)
    _fail(
        source,
        "created_at",
        created_at.isna(),
        deal_id,
        "is empty",
        "every deal needs a creation time",
    )
    closed_at = parse_timestamps(frame, "closed_at", source, deal_id)
    _fail(
        source,
        "closed_at",
        closed_at < created_at,
        deal_id,
        "is before 'created_at'",
        "fix the dates",
    )
    outcome = _text(frame, "outcome").str.lower()
    _fail(
        source,
        "outcome",
        outcome.notna() & ~outcome.isin(OUTCOMES),
        deal_id,
        f"is not one of {list(OUTCOMES)}",
        "use 'won' or 'lost', empty while the deal is open",
    )
    _fail(
        source,
        "outcome",
        outcome.notna() & closed_at.isna(),
        deal_id,
        "is set on an open deal (no 'closed_at')",
        "add the close time or clear the outcome",
    )
    _fail(
        source,
        "outcome",
        outcome.isna() & closed_at.notna(),
        deal_id,
        "is empty on a closed deal",
        "say 'won' or 'lost' for every deal with a 'closed_at'",
    )
    typed = pd.DataFrame(
        {"deal_id": deal_id, "created_at": created_at, "closed_at": closed_at, "outcome": outcome}
    )
    typed["amount"] = (
        parse_numbers(frame, "amount", source, deal_id) if "amount" in frame.columns else np.nan
    )
    _fail(
        source,
        "amount",
        typed["amount"] < 0,
        deal_id,
        "is negative",
        "declared values must be ≥ 0 (empty if unknown)",
    )
    for column in ("account_id", "owner_id", *attributes):
        if column in frame.columns:
            typed[column] = _text(frame, column)
    return typed.reset_index(drop=True)


def validate_interactions(
    frame: pd.DataFrame,
    source: str,
    deal_ids: pd.Series,
    unknown_deals: Literal["fail", "drop"] = "fail",
) -> pd.DataFrame:
    """The interactions table, typed, restricted to known deals (or failing on unknown ones)."""
    frame = frame.reset_index(drop=True)
    require_columns(frame, INTERACTION_COLUMNS, source)
    deal_id = _text(frame, "deal_id")
    row_ids = deal_id.fillna("<row " + pd.Series(frame.index.astype(str), index=frame.index) + ">")
    _fail(
        source,
        "deal_id",
        deal_id.isna(),
        row_ids,
        "is empty",
        "every interaction belongs to a deal",
    )
    occurred_at = parse_timestamps(frame, "occurred_at", source, deal_id)
    _fail(
        source,
        "occurred_at",
        occurred_at.isna(),
        deal_id,
        "is empty",
        "every interaction needs a time",
    )
    event_type = _text(frame, "type")
    _fail(
        source,
        "type",
        event_type.isna(),
        deal_id,
        "is empty",
        "name the kind of interaction (email, call, ...)",
    )
    direction = _text(frame, "direction").str.lower()
    _fail(
        source,
        "direction",
        direction.notna() & ~direction.isin(DIRECTIONS),
        deal_id,
        f"is not one of {list(DIRECTIONS)}",
        "use 'inbound', 'outbound' or leave it empty",
    )
    typed = pd.DataFrame(
        {
            "deal_id": deal_id,
            "occurred_at": occurred_at,
            "type": event_type,
            "channel": _text(frame, "channel"),
            "direction": direction,
        }
    )
    typed["value"] = (
        parse_numbers(frame, "value", source, deal_id) if "value" in frame.columns else np.nan
    )
    unknown = ~deal_id.isin(deal_ids)
    if unknown.any() and unknown_deals == "fail":
        _fail(
            source,
            "deal_id",
            unknown,
            deal_id,
            "names deals missing from the deals table",
            "add the deals, or set data.unknown_deal_interactions: drop",
        )
    if unknown.any():
        warnings.warn(
            f"{source}: dropped {int(unknown.sum())} interactions of deals missing from the deals "
            f"table (first deal_id: {_ids(deal_id[unknown])})",
            stacklevel=2,
        )
    return typed[~unknown].reset_index(drop=True)
