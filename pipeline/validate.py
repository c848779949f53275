"""The data contract, checked on every read: one function per table (`validate_deals`,
`validate_interactions`) takes the frame as read and returns it typed, reporting every broken
rule into a `Problems` collector. Each failure names the file, the column, how many rows and
the first offending ids, and says how to fix it.

A strict collector (the default) raises at the first error; `check`, `train` and `predict` pass
a collecting one, so that one run lists every problem of both files at once. The Spark engine
calls the same two functions on each bucket.

Concerns live in their own modules: headers and the schema (`headers.py`), reading cells into
types (`cells.py`), the collector and the message for bad rows (`problems.py`), data that pass
the contract but cannot be right (`plausibility.py`). Every column is read once; the checks on
it reuse what that pass found (which cells are empty, which deal each row belongs to).

Checks are hand-written and vectorised (pandas and Arrow) rather than a schema library: every
message must carry the ids of the offending rows, which is most of the work either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from closeprob.pipeline.cells import (
    EARLIEST,
    LATEST,
    parse_numbers,
    parse_times,
    parse_timestamps,
    row_ids,
    text_cells,
)
from closeprob.pipeline.dictionary_text import per_value
from closeprob.pipeline.headers import (
    DEAL_COLUMNS,
    DEAL_OPTIONAL,
    INTERACTION_COLUMNS,
    INTERACTION_OPTIONAL,
    OPTIONAL_ROLES,
    check_headers,
    header_key,
    map_columns,
    optional_near_misses,
    require_columns,
    usable_columns,
)
from closeprob.pipeline.problems import (
    SHOWN,
    Problem,
    Problems,
    emit_warnings,
    first_ids,
    report_rows,
)
from closeprob.pipeline.values import NumberFormat, parse_amounts, written_format

# The names callers import from here (the per-table API and what its messages are made of).
__all__ = [
    "DEAL_COLUMNS",
    "DEAL_OPTIONAL",
    "DIRECTIONS",
    "EARLIEST",
    "INTERACTION_COLUMNS",
    "INTERACTION_OPTIONAL",
    "LATEST",
    "OPTIONAL_ROLES",
    "OUTCOMES",
    "SHOWN",
    "Problem",
    "Problems",
    "check_headers",
    "deal_positions",
    "first_ids",
    "header_key",
    "is_known",
    "map_columns",
    "optional_near_misses",
    "parse_numbers",
    "parse_timestamps",
    "require_columns",
    "validate_deals",
    "validate_interactions",
]

OUTCOMES = ("won", "lost")
DIRECTIONS = ("inbound", "outbound")


def validate_deals(
    frame: pd.DataFrame,
    source: str,
    attributes: Iterable[str] = (),
    problems: Problems | None = None,
    configured: Mapping[str, str] | None = None,
    report_missing_configured: bool = True,
    number_format: NumberFormat | None = None,
) -> pd.DataFrame:
    """The deals table, typed: UTC timestamps, float amount, lower-case outcome, text ids.

    Amounts with thousands separators or currency signs are read when the column shows (or
    `number_format` declares) its separators; one that could be read two ways is an error.

    `report_missing_configured=False`: the caller reports configured columns that are absent
    (`dataset.check_named_columns`, with the config's own words).

    `attributes` (data.attributes) and `configured` (other columns asked for by the config:
    column → config key) are kept as stripped text, as written; training and scoring compare
    them normalised (`features.attributes.normalise_levels`).
    """
    strict = problems is None
    problems = problems or Problems()
    wanted = {name: "data.attributes" for name in attributes} | dict(configured or {})
    # Row numbers in messages count from 0 whatever index a Parquet file carried.
    frame = frame.reset_index(drop=True)
    frame, _ = usable_columns(
        frame, source, DEAL_COLUMNS, DEAL_OPTIONAL, wanted, problems, report_missing_configured
    )
    if len(frame) == 0:
        problems.error(f"{source}: no deal rows; the file has a header only")
    deal_id = _deal_ids(frame, source, problems, "give every deal an id")
    if "deal_id" in frame.columns:
        report_rows(
            problems,
            source,
            "deal_id",
            deal_id.duplicated(keep=False),
            deal_id,
            "is duplicated",
            "keep one row per deal",
        )
    ids = row_ids(deal_id)
    typed = pd.DataFrame({"deal_id": deal_id})
    typed["created_at"] = _times(
        frame, "created_at", source, ids, problems, "every deal needs a creation time"
    )
    closed_at, closed_empty = _times_and_blanks(frame, "closed_at", source, ids, problems)
    typed["closed_at"] = closed_at
    report_rows(
        problems,
        source,
        "closed_at",
        typed["closed_at"] < typed["created_at"],
        ids,
        "is before 'created_at'",
        "fix the dates",
    )
    typed["outcome"] = _outcomes(frame, closed_at, closed_empty, source, ids, problems)
    typed["amount"] = (
        _amounts(frame, source, ids, problems, number_format)
        if "amount" in frame.columns
        else np.nan
    )
    report_rows(
        problems,
        source,
        "amount",
        typed["amount"] < 0,
        ids,
        "is negative",
        "declared values must be ≥ 0 (empty if unknown)",
    )
    for column in ("account_id", "owner_id", *wanted):
        if column in frame.columns:
            typed[column] = text_cells(frame, column)
    if strict:
        emit_warnings(problems)
    return typed


def _deal_ids(frame: pd.DataFrame, source: str, problems: Problems, fix: str) -> pd.Series:
    """The deal_id column as stripped text; an empty one is an error naming its row."""
    deal_id = text_cells(frame, "deal_id")
    if "deal_id" in frame.columns:
        empty = deal_id.isna()
        report_rows(problems, source, "deal_id", empty, row_ids(deal_id), "is empty", fix)
    return deal_id


def _amounts(
    frame: pd.DataFrame,
    source: str,
    ids: pd.Series,
    problems: Problems,
    declared: NumberFormat | None,
) -> pd.Series:
    """Plain numbers as before; `12,500.00`, `1.234,50 €` where the column (or `declared`)
    says which separator is which; `17.000` alone refused (pipeline/values.py)."""
    raw = frame["amount"]
    if pd.api.types.is_numeric_dtype(raw.dtype) and declared is None:
        return parse_numbers(frame, "amount", source, ids, problems)
    fmt, problem, ambiguous = written_format(raw, source, "amount")
    if declared is None and problem is not None:
        problems.error(f"{problem} (first deal_id: {first_ids(ids[ambiguous])})")
        blanked = frame.assign(amount=raw.where(~ambiguous))
        return parse_numbers(blanked, "amount", source, ids, problems).where(~ambiguous)
    if declared is None and fmt is None:
        return parse_numbers(frame, "amount", source, ids, problems)
    numbers, errors = parse_amounts(raw, source, "amount", ids, declared or fmt)
    for message in errors:
        problems.error(message)
    return numbers


def _times_and_blanks(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems
) -> tuple[pd.Series, pd.Series]:
    """Parsed UTC times and which cells were empty; an absent column is all empty."""
    if column not in frame.columns:
        return (
            pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"),
            pd.Series(True, index=frame.index),
        )
    return parse_times(frame, column, source, ids, problems)


def _times(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems, fix: str
) -> pd.Series:
    """A required time column, parsed once: its empty cells are an error with `fix`."""
    times, empty = _times_and_blanks(frame, column, source, ids, problems)
    if column in frame.columns:
        report_rows(problems, source, column, empty, ids, "is empty", fix)
    return times


def _outcomes(
    frame: pd.DataFrame,
    closed_at: pd.Series,
    closed_empty: pd.Series,
    source: str,
    ids: pd.Series,
    problems: Problems,
) -> pd.Series:
    """Lower-case won/lost, empty exactly while the deal is open (`closed_empty`: the close
    time's cell is empty, as opposed to written but unreadable)."""
    written = text_cells(frame, "outcome")
    outcome = written.str.lower()
    if "outcome" not in frame.columns or "closed_at" not in frame.columns:
        return outcome
    other = outcome.notna() & ~outcome.isin(OUTCOMES)
    shown = repr(str(written[other].iloc[0])) if other.any() else ""
    report_rows(
        problems,
        source,
        "outcome",
        other,
        ids,
        f"is not one of {list(OUTCOMES)}",
        f"use 'won' or 'lost', empty while the deal is open (first value found: {shown}); or "
        "map your values: data.values: {outcome: {'Closed Won': won, 'Closed Lost': lost, "
        "'Negotiation': null}}",
    )
    report_rows(
        problems,
        source,
        "outcome",
        outcome.notna() & closed_empty,
        ids,
        "is set on an open deal (no 'closed_at')",
        "add the close time or clear the outcome",
    )
    report_rows(
        problems,
        source,
        "outcome",
        outcome.isna() & closed_at.notna(),
        ids,
        "is empty on a closed deal",
        "say 'won' or 'lost' for every deal with a 'closed_at'",
    )
    return outcome


def validate_interactions(
    frame: pd.DataFrame,
    source: str,
    deal_ids: pd.Series | None,
    unknown_deals: Literal["fail", "drop"] = "fail",
    problems: Problems | None = None,
    duplicates: Literal["drop", "keep", "fail"] = "keep",
) -> pd.DataFrame:
    """The interactions table, typed, restricted to known deals (or failing on unknown ones).

    `deal_ids`: the deals table's ids (None when it could not be read: nothing to compare).
    `duplicates`: what to do with rows equal in every column (an export run twice): `drop`
    them with a warning, `keep` them, or `fail`.
    """
    strict = problems is None
    problems = problems or Problems()
    frame = frame.reset_index(drop=True)
    frame, missing = usable_columns(
        frame, source, INTERACTION_COLUMNS, INTERACTION_OPTIONAL, {}, problems
    )
    deal_id = _deal_ids(frame, source, problems, "every interaction belongs to a deal")
    ids = row_ids(deal_id)
    occurred_at = _times(
        frame, "occurred_at", source, ids, problems, "every interaction needs a time"
    )
    event_type = text_cells(frame, "type")
    if "type" in frame.columns:
        report_rows(
            problems,
            source,
            "type",
            event_type.isna(),
            ids,
            "is empty",
            "name the kind of interaction (email, call, ...)",
        )
    direction = per_value(text_cells(frame, "direction"), lambda text: text.str.lower())
    report_rows(
        problems,
        source,
        "direction",
        direction.notna() & ~direction.isin(DIRECTIONS),
        ids,
        f"is not one of {list(DIRECTIONS)}",
        "use 'inbound', 'outbound' or leave it empty",
    )
    typed = pd.DataFrame(
        {
            "deal_id": deal_id,
            "occurred_at": occurred_at,
            "type": event_type,
            "channel": text_cells(frame, "channel"),
            "direction": direction,
        }
    )
    typed["value"] = (
        parse_numbers(frame, "value", source, ids, problems) if "value" in frame.columns else np.nan
    )
    position = _deal_codes(deal_id, deal_ids)
    kept = _known_deals(deal_id, position, deal_ids is not None, unknown_deals, source, problems)
    if not missing & set(INTERACTION_COLUMNS):  # rows without their key columns all look alike
        kept &= ~_duplicates(typed, position, kept, duplicates, source, problems)
    if not kept.all():  # one copy of the rows kept, whatever the reasons to leave some out
        typed = typed[kept].reset_index(drop=True)
    if strict:
        emit_warnings(problems)
    return typed


def deal_positions(ids: pd.Series, deal_ids: pd.Series) -> np.ndarray:
    """For each of `ids`, the position of its first match in `deal_ids`, -1 where there is
    none (or the id is missing): one hash lookup in Arrow, where pandas' `isin` and `map` on
    Arrow strings walk the deals' ids as Python objects."""
    found = pc.index_in(pa.array(ids.astype("str")), value_set=pa.array(deal_ids.astype("str")))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def is_known(ids: pd.Series, deal_ids: pd.Series) -> np.ndarray:
    """Which `ids` are among `deal_ids` (a missing id never is)."""
    return (deal_positions(ids, deal_ids.dropna()) >= 0) & ids.notna().to_numpy()


def _deal_codes(deal_id: pd.Series, deal_ids: pd.Series | None) -> np.ndarray:
    """An integer per row naming its deal: the position in the deals table (-1: unknown), or,
    without a deals table, a code of its own (-1: missing)."""
    if deal_ids is None:
        return pd.factorize(deal_id)[0].astype(np.int64)
    return deal_positions(deal_id, deal_ids)


def _known_deals(
    deal_id: pd.Series,
    position: np.ndarray,
    compared: bool,
    unknown_deals: Literal["fail", "drop"],
    source: str,
    problems: Problems,
) -> pd.Series:
    """Rows whose deal is in the deals table (all of them when there was none to compare
    with: `compared` False); the others fail the run or are dropped."""
    if not compared:  # the deals table could not be read: nothing to compare with
        return pd.Series(True, index=deal_id.index)
    unknown = pd.Series((position < 0), index=deal_id.index) & deal_id.notna()
    if unknown.any() and unknown_deals == "fail":
        report_rows(
            problems,
            source,
            "deal_id",
            unknown,
            deal_id,
            "names deals missing from the deals table",
            "add the deals, or set data.unknown_deal_interactions: drop",
        )
    elif unknown.any():
        problems.warn(
            f"{source}: dropped {int(unknown.sum())} interactions of deals missing from the deals "
            f"table (first deal_id: {first_ids(deal_id[unknown])})"
        )
    return ~unknown


def _duplicates(
    typed: pd.DataFrame,
    position: np.ndarray,
    kept: pd.Series,
    policy: Literal["drop", "keep", "fail"],
    source: str,
    problems: Problems,
) -> pd.Series:
    """Rows (among those `kept`) equal in every column after typing to an earlier one: the
    same event exported twice. True where such a row is to be dropped."""
    none = pd.Series(False, index=typed.index)
    if policy == "keep" or typed.empty:
        return none
    repeated = repeated_rows(typed, position) & kept
    if not repeated.any():
        return none
    count, ids = int(repeated.sum()), first_ids(typed.loc[repeated, "deal_id"].unique())
    if policy == "fail":
        problems.error(
            f"{source}: {count} rows repeat an earlier row in every column (first deal_id: "
            f"{ids}); remove the double import, or set data.duplicate_interactions: drop"
        )
        return none
    problems.warn(
        f"{source}: dropped {count} rows that repeat an earlier row in every column (first "
        f"deal_id: {ids}); set data.duplicate_interactions: keep to count them"
    )
    return repeated


def repeated_rows(typed: pd.DataFrame, position: np.ndarray) -> pd.Series:
    """`typed.duplicated(keep="first")`, comparing whole rows only where deal and time repeat
    (`position`: an integer per deal, `_deal_codes`): a row equal to an earlier one shares its
    deal and time, and few rows do."""
    candidates = pd.Series(_same_deal_and_time(typed, position), index=typed.index)
    repeated = pd.Series(False, index=typed.index)
    if candidates.any():
        repeated[candidates] = typed[candidates].duplicated(keep="first")
    return repeated


def _same_deal_and_time(typed: pd.DataFrame, position: np.ndarray) -> np.ndarray:
    """Rows whose (deal, occurred_at) another row shares: one integer key per pair, found
    repeated by sorting the keys (hashing 10 M mostly distinct keys costs about ten times as
    much). The key counts the times in their coarsest unit (`_pair_keys`); where that could
    overflow, the time's code (one hash pass) takes its place."""
    times = typed["occurred_at"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    deals = int(position.max(initial=-1)) + 2  # position -1 (unknown or missing) is 0 here
    key = _pair_keys(times, position + 1, deals)
    if key is not None:
        return _repeated(key)
    time_code = pd.factorize(times)[0].astype(np.int64)
    if (int(time_code.max(initial=0)) + 1) * deals >= 2**62:  # the key would overflow
        keys = pd.DataFrame({"deal": position, "time": times})
        return np.asarray(keys.duplicated(keep=False).to_numpy(), dtype=bool)
    return _repeated(time_code * deals + (position + 1))


NAT = np.iinfo(np.int64).min  # a missing time as int64 nanoseconds


def _pair_keys(times: np.ndarray, deal: np.ndarray, deals: int) -> np.ndarray | None:
    """`step * deals + deal` for each row: `step` the time's distance from the earliest, in
    the coarsest unit every time is a whole number of (s, ms, µs or ns), plus one (0: a
    missing time); equal keys are equal pairs. None when the keys would reach 2**62."""
    missing = times == NAT
    present = times[~missing]
    if present.size == 0:
        return deal.astype(np.int64)
    start, end = int(present.min()), int(present.max())
    if end - start >= 2**62:
        return None
    offsets = present - start
    unit = next(u for u in (10**9, 10**6, 10**3, 1) if not (offsets % u).any())
    if ((end - start) // unit + 2) * deals >= 2**62:
        return None
    steps = np.zeros(len(times), dtype=np.int64)
    steps[~missing] = offsets // unit + 1
    return steps * deals + deal


def _repeated(key: np.ndarray) -> np.ndarray:
    """Which entries of `key` occur more than once: the repeated values from the sorted keys,
    then each row looked up among those few."""
    ordered = np.sort(key)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(len(key), dtype=bool)
    repeated = np.unique(ordered[1:][same])
    return np.asarray(pd.Series(key).isin(repeated).to_numpy(), dtype=bool)
