"""Cells read into the contract's types, each column in one pass: text stripped (a cell of
spaces is empty), timestamps parsed once into UTC, numbers as finite floats. A cell that
cannot be read is reported (file, column, count, first ids, the value) and left empty.

Columns already typed by the file (Parquet timestamps and numbers) are taken as they are:
turning them into text to look for blanks would cost more than the whole rest of the checks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.pipeline.dictionary_text import per_value
from closeprob.pipeline.problems import Problems, report_rows

EARLIEST, LATEST = pd.Timestamp("1900-01-01", tz="UTC"), pd.Timestamp("2200-01-01", tz="UTC")


def text_cells(frame: pd.DataFrame, column: str) -> pd.Series:
    """Stripped text; empty (or blank) is missing; an absent column is all missing. A
    dictionary column stays one (`per_value`)."""
    if column not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="str")
    return per_value(frame[column], _stripped)


def _stripped(raw: pd.Series) -> pd.Series:
    text = raw.astype("str").str.strip()
    # A cell of spaces is as empty as an empty cell.
    return text.where(raw.notna() & (text != ""))


def row_ids(deal_id: pd.Series) -> pd.Series:
    """Labels for messages: the deal id, or '<row N>' where it is missing."""
    missing = deal_id.isna()
    if not missing.any():
        return deal_id
    rows = pd.Series(deal_id.index[missing].astype(str), index=deal_id.index[missing])
    return deal_id.mask(missing, "<row " + rows + ">")


def parse_timestamps(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems | None = None
) -> pd.Series:
    """UTC timestamps in [EARLIEST, LATEST); offsets are converted, naive values are taken as
    UTC; empty (or blank) stays NaT, and so does a bad value once reported."""
    return parse_times(frame, column, source, ids, problems or Problems())[0]


def parse_times(
    frame: pd.DataFrame, column: str, source: str, ids: pd.Series, problems: Problems
) -> tuple[pd.Series, pd.Series]:
    """`parse_timestamps`, and which cells were empty (missing or blank) as written."""
    raw = frame[column]
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        parsed, empty = raw.dt.tz_convert("UTC"), raw.isna()
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        parsed, empty = raw.dt.tz_localize("UTC"), raw.isna()
    else:
        text = text_cells(frame, column)
        empty = text.isna()
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna() & ~empty
        if bad.any():
            report_rows(
                problems,
                source,
                column,
                bad,
                ids,
                f"has unparseable timestamps (first value: {text[bad].iloc[0]!r})",
                "use ISO 8601, e.g. '2024-03-01T09:30:00+01:00' (no offset means UTC)",
            )
    return _within_range(parsed, column, source, ids, problems), empty


def _within_range(
    parsed: pd.Series, column: str, source: str, ids: pd.Series, problems: Problems
) -> pd.Series:
    # Years like 0001 or 9999 parse, but break nanosecond timestamps and the feature keys
    # (features/timeline.py spans about 544 years); no CRM record is that old or that late.
    outside = parsed.notna() & ((parsed < EARLIEST) | (parsed >= LATEST))
    if outside.any():
        report_rows(
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
    if not pd.api.types.is_numeric_dtype(raw.dtype):  # a typed column has no unreadable cell
        present = raw.notna() & (raw.astype("str").str.strip() != "")
        bad = present & numbers.isna()
        report_rows(
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
    report_rows(
        problems,
        source,
        column,
        infinite,
        ids,
        "is infinite",
        "use a finite number or leave the cell empty",
    )
    return numbers.where(~infinite)
