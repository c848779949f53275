"""The data contract, checked on every read. Each failure names the file, the column, how many
rows and the first offending ids, and says how to fix it.

Every rule reports into a `Problems` collector. A strict collector (the default) raises at the
first error; `check`, `train` and `predict` pass a collecting one, so that one run lists every
problem of both files at once.

Checks are hand-written, vectorised pandas rather than a schema library: every message must carry
the ids of the offending rows, which is most of the work either way.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.values import NumberFormat, parse_amounts, written_format

DEAL_COLUMNS = ("deal_id", "created_at", "closed_at", "outcome")
DEAL_OPTIONAL = ("amount", "account_id", "owner_id")
INTERACTION_COLUMNS = ("deal_id", "occurred_at", "type")
INTERACTION_OPTIONAL = ("channel", "direction", "value")
OUTCOMES = ("won", "lost")
DIRECTIONS = ("inbound", "outbound")
SHOWN = 5
EARLIEST, LATEST = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")
# What an optional column is for, and a word a CRM's own header for it usually holds.
OPTIONAL_ROLES = {
    "amount": ("the deal value", ("amount", "value", "revenue", "price")),
    "account_id": ("the account's track record", ("account", "company", "customer")),
    "owner_id": ("the owner's track record", ("owner", "rep", "salesperson", "agent")),
    "channel": ("counts per channel", ("channel", "medium")),
    "direction": ("inbound/outbound counts", ("direction", "inbound", "outbound")),
    "value": ("stage numbers and offer values", ("value", "stage")),
}


@dataclass(frozen=True)
class Problem:
    level: Literal["error", "warning"]
    message: str


@dataclass
class Problems:
    """Contract problems found so far. `strict` raises a DataContractError at the first error
    (what a direct call of `validate_deals` does); otherwise errors are collected and
    `raise_errors` reports them all in one error."""

    strict: bool = True
    found: list[Problem] = field(default_factory=list)

    def error(self, message: str) -> None:
        if self.strict:
            raise DataContractError(message)
        self.found.append(Problem("error", message))

    def warn(self, message: str) -> None:
        self.found.append(Problem("warning", message))

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.found if p.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [p.message for p in self.found if p.level == "warning"]

    def raise_errors(self) -> None:
        """One DataContractError holding every error found, if any."""
        errors = self.errors
        if len(errors) == 1:
            raise DataContractError(errors[0])
        if errors:
            listed = "\n".join(f"  - {message}" for message in errors)
            raise DataContractError(f"{len(errors)} problems in the input data:\n{listed}")


def first_ids(ids: Iterable[object]) -> str:
    """The first few ids, quoted; missing ids are skipped (a deal_id column that is absent or
    empty reads as 'none readable', never as 'nan')."""
    shown = list(islice((i for i in ids if not pd.isna(cast(Any, i))), SHOWN))
    return ", ".join(repr(str(i)) for i in shown) if shown else "none readable"


def _fail(
    problems: Problems,
    source: str,
    column: str,
    bad: pd.Series,
    ids: pd.Series,
    problem: str,
    fix: str,
) -> None:
    """Report an error if any row of `bad` is True, naming the count and the first ids."""
    if bad.any():
        count = int(bad.sum())
        problems.error(
            f"{source}: column {column!r} {problem} in {count} row{'s' * (count != 1)} "
            f"(first deal_id: {first_ids(ids[bad])}); {fix}"
        )


def header_key(name: object) -> str:
    """A header as compared for near misses: case-folded, letters and digits only
    ('Deal ID', 'deal_id' and 'DEAL-ID' are all 'dealid')."""
    return re.sub(r"[\W_]+", "", str(name).casefold())


def map_columns(
    frame: pd.DataFrame,
    mapping: Mapping[str, str],
    wanted: Iterable[str],
    source: str,
    problems: Problems,
) -> pd.DataFrame:
    """`frame` with the export's headers renamed to the contract's names by `data.columns`
    (contract name → header), for the columns this table needs (`wanted`)."""
    renames: dict[str, str] = {}
    for target in wanted:
        header = mapping.get(target)
        if header is None or header == target:
            continue
        if header not in frame.columns and target == "deal_id" and target in frame.columns:
            continue  # one mapping serves both tables: this one already says 'deal_id'
        if header not in frame.columns:
            near = difflib.get_close_matches(header, [str(c) for c in frame.columns], n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.error(
                f"{source}: data.columns maps {target!r} to {header!r}, but the file has no "
                f"column {header!r}{hint}; found columns {[str(c) for c in frame.columns]}"
            )
            continue
        if target in frame.columns:
            problems.error(
                f"{source}: data.columns maps {target!r} to {header!r}, but the file also has a "
                f"column {target!r}; drop one of them or remove the mapping"
            )
            continue
        renames[header] = target
    return frame.rename(columns=renames)


def check_headers(
    frame: pd.DataFrame,
    source: str,
    required: Iterable[str],
    optional: Iterable[str],
    configured: Mapping[str, str],
    problems: Problems,
    report_missing_configured: bool = True,
) -> set[str]:
    """Headers against the contract; returns the required or configured columns that are
    missing (the rules on them are skipped).

    A header equal to an expected name up to case, spaces and punctuation is an error naming
    both, whether the column is required, optional or configured (`configured`: column → the
    config key that asks for it): it is never silently ignored.
    """
    required, optional = tuple(required), tuple(optional)
    columns = [str(c) for c in frame.columns]
    _duplicated_headers(columns, source, problems)
    expected = (*required, *optional, *configured)
    unused = [c for c in columns if c not in expected]
    missing: set[str] = set()
    for name in expected:
        if name in frame.columns:
            continue
        twin = next((c for c in unused if header_key(c) == header_key(name)), None)
        if twin is not None:
            problems.error(
                f"{source}: column {twin!r} differs from {name!r} only by case, spaces or "
                f"punctuation; rename the column to {name!r}, or map it in the config: "
                f"data.columns: {{{name}: {twin!r}}}"
            )
            missing.add(name)
        elif name in required or name in configured:
            missing.add(name)
    absent_required = [c for c in required if c in missing and not _has_twin(c, unused)]
    if absent_required:
        _missing_required(absent_required, required, columns, source, problems)
    if not report_missing_configured:
        return missing
    _missing_configured(
        [c for c in configured if c in missing and not _has_twin(c, unused)],
        configured,
        columns,
        source,
        problems,
    )
    return missing


def _has_twin(name: str, unused: list[str]) -> bool:
    return any(header_key(c) == header_key(name) for c in unused)


def _duplicated_headers(columns: list[str], source: str, problems: Problems) -> None:
    counts = pd.Series(columns).value_counts()
    for name, count in counts[counts > 1].items():
        problems.error(
            f"{source}: column header {name!r} appears {count} times; give each column one "
            "name (a duplicated header is ambiguous: which one is meant?)"
        )


def _missing_required(
    missing: list[str],
    required: tuple[str, ...],
    columns: list[str],
    source: str,
    problems: Problems,
) -> None:
    hints = []
    for column in missing:
        # Only columns that are not required themselves: 'closed_at' is no typo of 'created_at'.
        spare = [c for c in columns if c not in required]
        near = difflib.get_close_matches(column, spare, n=1, cutoff=0.6)
        hints.append(f"{column!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    problems.error(
        f"{source}: missing required column{'s' * (len(missing) > 1)} {', '.join(hints)}; "
        f"found columns {columns}"
    )


def _missing_configured(
    missing: list[str],
    configured: Mapping[str, str],
    columns: list[str],
    source: str,
    problems: Problems,
) -> None:
    by_key: dict[str, list[str]] = {}
    for column in missing:
        by_key.setdefault(configured[column], []).append(column)
    for key, names in by_key.items():
        listed = ", ".join(repr(n) for n in names)
        problems.error(
            f"{source}: configured {'attributes' if key == 'data.attributes' else 'column'} "
            f"missing: {listed} (asked for by {key} in the config); add the column"
            f"{'s' * (len(names) > 1)}, map {'them' if len(names) > 1 else 'it'} to the "
            f"export's headers with data.columns, or change {key}; found columns {columns}"
        )


def optional_near_misses(
    frame: pd.DataFrame, optional: Iterable[str], expected: Iterable[str]
) -> dict[str, str]:
    """Optional contract columns that are absent, with the unused header that most likely holds
    them ('Deal Owner' for owner_id): a hint, since the header may mean something else."""
    expected = set(expected)
    unused = [str(c) for c in frame.columns if c not in expected]
    hints: dict[str, str] = {}
    for name in optional:
        if name in frame.columns or _has_twin(name, unused):  # a twin is an error already
            continue
        words = OPTIONAL_ROLES.get(name, ("", ()))[1]
        candidates = [c for c in unused if any(w in c.casefold() for w in words)]
        candidates += difflib.get_close_matches(name, unused, n=1, cutoff=0.6)
        if candidates:
            hints[name] = candidates[0]
    return hints


def require_columns(frame: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Every required column is present; a near miss suggests the intended name."""
    check_headers(frame, source, required, (), {}, Problems(strict=True))


def _usable_columns(
    frame: pd.DataFrame,
    source: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    configured: Mapping[str, str],
    problems: Problems,
    report_missing_configured: bool = True,
) -> tuple[pd.DataFrame, set[str]]:
    """The columns the rules can read: headers checked (`check_headers`), then duplicated
    headers, nested columns and missing ones dropped (each already reported); and the
    required or configured columns that are missing."""
    missing = check_headers(
        frame, source, required, optional, configured, problems, report_missing_configured
    )
    frame = frame.loc[:, ~frame.columns.duplicated(keep=False)]
    nested = _nested(frame, (*required, *optional, *configured), source, problems)
    return frame.drop(columns=[*nested, *(c for c in missing if c in frame.columns)]), missing


def _nested(
    frame: pd.DataFrame, columns: Iterable[str], source: str, problems: Problems
) -> set[str]:
    """Used columns holding lists, arrays or mappings (nested Parquet types): an error each."""
    nested = set()
    for column in columns:
        if column not in frame.columns or frame[column].dtype != object:
            continue
        values = frame[column].dropna()

        def is_nested(v: object) -> bool:
            return isinstance(v, (list, tuple, dict, np.ndarray))

        # A nested Parquet column is nested throughout: a sample finds it without a Python
        # call per cell of a large table.
        if not values.head(1000).map(is_nested).any():
            continue
        kinds = values.map(is_nested)
        if kinds.any():
            first = values[kinds].iloc[0]
            problems.error(
                f"{source}: column {column!r} holds nested values (lists, structs or maps) in "
                f"{int(kinds.sum())} rows (first value: {_short(first)}); closeprob needs one "
                "plain value per cell: flatten the column (one value per row) before export"
            )
            nested.add(column)
    return nested


def _short(value: object) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_timestamps(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems | None = None
) -> pd.Series:
    """UTC timestamps in [EARLIEST, LATEST); offsets are converted, naive values are taken as
    UTC; empty (or blank) stays NaT, and so does a bad value once reported."""
    problems = problems or Problems()
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
                problems,
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
            problems,
            source,
            column,
            outside,
            ids,
            f"has timestamps outside {EARLIEST.year}–{LATEST.year - 1} "
            f"(first value: {str(parsed[outside].iloc[0])!r})",
            "fix the dates (a number or a placeholder date in a date column?)",
        )
        parsed = parsed.where(~outside)
    return parsed.astype("datetime64[ns, UTC]")


def parse_numbers(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems | None = None
) -> pd.Series:
    """Finite floats; empty stays NaN; text, inf and NaN spelled out are errors (NaN once
    reported)."""
    problems = problems or Problems()
    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce").astype(float)
    present = raw.notna() & (raw.astype("str").str.strip() != "")
    bad = present & numbers.isna()
    _fail(
        problems,
        source,
        column,
        bad,
        ids,
        "is not numeric",
        f"use plain numbers like 12500.50 (first value: {str(raw[bad].iloc[0])!r})"
        if bad.any()
        else "",
    )
    infinite = numbers.abs() == np.inf
    _fail(
        problems,
        source,
        column,
        infinite,
        ids,
        "is infinite",
        "use a finite number or leave the cell empty",
    )
    return numbers.where(~infinite)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    text = frame[column].astype("str").str.strip()
    # A cell of spaces is as empty as an empty cell.
    return text.where(frame[column].notna() & (text != ""))


def _row_ids(deal_id: pd.Series) -> pd.Series:
    rows = pd.Series(deal_id.index.astype(str), index=deal_id.index)
    return deal_id.fillna("<row " + rows + ">")


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
    frame, _ = _usable_columns(
        frame, source, DEAL_COLUMNS, DEAL_OPTIONAL, wanted, problems, report_missing_configured
    )
    if len(frame) == 0:
        problems.error(f"{source}: no deal rows; the file has a header only")
    deal_id = _text(frame, "deal_id")
    if "deal_id" in frame.columns:
        _fail(
            problems,
            source,
            "deal_id",
            deal_id.isna(),
            _row_ids(deal_id),
            "is empty",
            "give every deal an id",
        )
        _fail(
            problems,
            source,
            "deal_id",
            deal_id.duplicated(keep=False),
            deal_id,
            "is duplicated",
            "keep one row per deal",
        )
    ids = _row_ids(deal_id)
    typed = pd.DataFrame({"deal_id": deal_id})
    typed["created_at"] = _times(frame, "created_at", source, ids, problems)
    if "created_at" in frame.columns:
        _fail(
            problems,
            source,
            "created_at",
            _text(frame, "created_at").isna(),
            ids,
            "is empty",
            "every deal needs a creation time",
        )
    typed["closed_at"] = _times(frame, "closed_at", source, ids, problems)
    _fail(
        problems,
        source,
        "closed_at",
        typed["closed_at"] < typed["created_at"],
        ids,
        "is before 'created_at'",
        "fix the dates",
    )
    typed["outcome"] = _outcomes(frame, typed["closed_at"], source, ids, problems)
    typed["amount"] = (
        _amounts(frame, source, ids, problems, number_format)
        if "amount" in frame.columns
        else np.nan
    )
    _fail(
        problems,
        source,
        "amount",
        typed["amount"] < 0,
        ids,
        "is negative",
        "declared values must be ≥ 0 (empty if unknown)",
    )
    for column in ("account_id", "owner_id"):
        if column in frame.columns:
            typed[column] = _text(frame, column)
    for column in wanted:
        if column in frame.columns:
            typed[column] = _text(frame, column)
    if strict:
        _emit(problems)
    return typed.reset_index(drop=True)


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


def _times(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems
) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return parse_timestamps(frame, column, source, ids, problems)


def _outcomes(
    frame: pd.DataFrame, closed_at: pd.Series, source: str, ids: pd.Series, problems: Problems
) -> pd.Series:
    """Lower-case won/lost, empty exactly while the deal is open."""
    outcome = _text(frame, "outcome").str.lower()
    if "outcome" not in frame.columns or "closed_at" not in frame.columns:
        return outcome
    other = outcome.notna() & ~outcome.isin(OUTCOMES)
    shown = repr(str(_text(frame, "outcome")[other].iloc[0])) if other.any() else ""
    _fail(
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
    unparsed = closed_at.isna() & _text(frame, "closed_at").notna()
    _fail(
        problems,
        source,
        "outcome",
        outcome.notna() & closed_at.isna() & ~unparsed,
        ids,
        "is set on an open deal (no 'closed_at')",
        "add the close time or clear the outcome",
    )
    _fail(
        problems,
        source,
        "outcome",
        outcome.isna() & closed_at.notna(),
        ids,
        "is empty on a closed deal",
        "say 'won' or 'lost' for every deal with a 'closed_at'",
    )
    return outcome


def _emit(problems: Problems) -> None:
    """A strict (direct) call reports its warnings as Python warnings."""
    for message in problems.warnings:
        warnings.warn(message, stacklevel=3)


def validate_interactions(
    frame: pd.DataFrame,
    source: str,
    deal_ids: pd.Series | None,
    unknown_deals: Literal["fail", "drop"] = "fail",
    problems: Problems | None = None,
    duplicates: Literal["drop", "keep", "fail"] = "keep",
) -> pd.DataFrame:
    """The interactions table, typed, restricted to known deals (or failing on unknown ones).

    `duplicates`: what to do with rows equal in every column (an export run twice): `drop`
    them with a warning, `keep` them, or `fail`.
    """
    strict = problems is None
    problems = problems or Problems()
    frame = frame.reset_index(drop=True)
    frame, missing = _usable_columns(
        frame, source, INTERACTION_COLUMNS, INTERACTION_OPTIONAL, {}, problems
    )
    deal_id = _text(frame, "deal_id")
    if "deal_id" in frame.columns:
        _fail(
            problems,
            source,
            "deal_id",
            deal_id.isna(),
            _row_ids(deal_id),
            "is empty",
            "every interaction belongs to a deal",
        )
    ids = _row_ids(deal_id)
    occurred_at = _times(frame, "occurred_at", source, ids, problems)
    if "occurred_at" in frame.columns:
        _fail(
            problems,
            source,
            "occurred_at",
            _text(frame, "occurred_at").isna(),
            ids,
            "is empty",
            "every interaction needs a time",
        )
    event_type = _text(frame, "type")
    if "type" in frame.columns:
        _fail(
            problems,
            source,
            "type",
            event_type.isna(),
            ids,
            "is empty",
            "name the kind of interaction (email, call, ...)",
        )
    direction = _text(frame, "direction").str.lower()
    _fail(
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
            "channel": _text(frame, "channel"),
            "direction": direction,
        }
    )
    typed["value"] = (
        parse_numbers(frame, "value", source, ids, problems) if "value" in frame.columns else np.nan
    )
    known = _known_deals(typed, deal_ids, unknown_deals, source, problems)
    typed = typed[known].reset_index(drop=True)
    if not missing & set(INTERACTION_COLUMNS):  # rows without their key columns all look alike
        typed = _duplicates(typed, duplicates, source, problems)
    if strict:
        _emit(problems)
    return typed


def _known_deals(
    typed: pd.DataFrame,
    deal_ids: pd.Series | None,
    unknown_deals: Literal["fail", "drop"],
    source: str,
    problems: Problems,
) -> pd.Series:
    """Rows whose deal is in the deals table; the others fail the run or are dropped."""
    deal_id = typed["deal_id"]
    if deal_ids is None:  # the deals table could not be read: nothing to compare with
        return pd.Series(True, index=typed.index)
    unknown = deal_id.notna() & ~deal_id.isin(deal_ids)
    if unknown.any() and unknown_deals == "fail":
        _fail(
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
    typed: pd.DataFrame, policy: Literal["drop", "keep", "fail"], source: str, problems: Problems
) -> pd.DataFrame:
    """Rows equal in every column after typing: the same event exported twice."""
    if policy == "keep" or typed.empty:
        return typed
    repeated = typed.duplicated(keep="first")
    if not repeated.any():
        return typed
    count, ids = int(repeated.sum()), first_ids(typed.loc[repeated, "deal_id"].unique())
    if policy == "fail":
        problems.error(
            f"{source}: {count} rows repeat an earlier row in every column (first deal_id: "
            f"{ids}); remove the double import, or set data.duplicate_interactions: drop"
        )
        return typed
    problems.warn(
        f"{source}: dropped {count} rows that repeat an earlier row in every column (first "
        f"deal_id: {ids}); set data.duplicate_interactions: keep to count them"
    )
    return typed[~repeated].reset_index(drop=True)
