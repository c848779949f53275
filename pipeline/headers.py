"""The contract's schema: which columns each table has, required or optional, and the checks on
headers (near misses, duplicates, mappings from an export's own names, nested cells), each
reported with the fix into a `Problems` collector.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from closeprob.pipeline.problems import Problems

DEAL_COLUMNS = ("deal_id", "created_at", "closed_at", "outcome")
DEAL_OPTIONAL = ("amount", "account_id", "owner_id")
INTERACTION_COLUMNS = ("deal_id", "occurred_at", "type")
INTERACTION_OPTIONAL = ("channel", "direction", "value")
# What an optional column is for, and a word a CRM's own header for it usually holds.
OPTIONAL_ROLES = {
    "amount": ("the deal value", ("amount", "value", "revenue", "price")),
    "account_id": ("the account's track record", ("account", "company", "customer")),
    "owner_id": ("the owner's track record", ("owner", "rep", "salesperson", "agent")),
    "channel": ("counts per channel", ("channel", "medium")),
    "direction": ("inbound/outbound counts", ("direction", "inbound", "outbound")),
    "value": ("stage numbers and offer values", ("value", "stage")),
}


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


def usable_columns(
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
