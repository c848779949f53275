"""Values as CRMs write them, read into the contract's types: amounts with thousands
separators and currency signs (`12,500.00`, `1.234,50 €`, `CHF 12'500`), booleans
(`true`/`false`, as Salesforce Data Loader writes them), and `;`-separated id lists (HubSpot's
associations).

Every error shows the value found and what would read it. An amount whose separator could be
either a thousands or a decimal separator (`17.000`) is refused unless the column shows which
one it is elsewhere or `data.number_format` declares it: read as 17 or as 17000, it would be
off by a thousand either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd

from closeprob.pipeline.dictionary_text import per_value

# Currency signs and ISO codes around an amount: stripped (the currency is a column of its own).
_CURRENCY = re.compile(r"^(?:[A-Z]{3}|[$€£¥₹₩₽¤]|R\$|kr)?\s*(.*?)\s*(?:[A-Z]{3}|[$€£¥₹₩₽¤]|kr)?$")
# Characters that are only ever thousands separators: spaces (also no-break) and apostrophes.
_GROUPING = re.compile(r"[\s\u00a0\u202f'’]")
_NUMBER = re.compile(r"^[+-]?\d[\d.,]*$|^[+-]?[.,]\d+$")
TRUE_WORDS = ("true", "yes", "y", "on", "1")
FALSE_WORDS = ("false", "no", "n", "off", "0")
SHOWN = 5


@dataclass(frozen=True)
class NumberFormat:
    """How amounts are written: the decimal separator and the thousands separator (None: none)."""

    decimal: Literal[".", ","]
    thousands: Literal[".", ",", " ", "'"] | None


def _first(values: pd.Series) -> str:
    return repr(str(values.iloc[0]))


def _ids(ids: pd.Series, rows: pd.Series) -> str:
    shown = [str(i) for i in ids[rows].dropna().head(SHOWN)]
    return ", ".join(repr(i) for i in shown) if shown else "none readable"


def _clean(text: pd.Series) -> pd.Series:
    """Currency signs, codes and grouping-only characters stripped; '(1,200.00)' as '-1,200.00'."""
    stripped = text.str.strip().str.replace(_CURRENCY, r"\1", regex=True)
    negative = stripped.str.match(r"^\(.*\)$")
    stripped = stripped.where(~negative, "-" + stripped.str.slice(1, -1))
    return stripped.str.replace(_GROUPING, "", regex=True)


def _decimal_evidence(text: str) -> str | None:
    """The decimal separator one written number proves ('.' or ','), '?' when it could be
    either (one separator followed by exactly three digits: '17.000'), None without any."""
    digits = text.lstrip("+-")
    dots, commas = digits.count("."), digits.count(",")
    if dots and commas:
        return "." if digits.rfind(".") > digits.rfind(",") else ","
    if dots + commas == 0:
        return None
    separator = "." if dots else ","
    if dots + commas > 1:  # the same separator twice: grouping, so the decimal is the other one
        return "," if separator == "." else "."
    head, tail = digits.split(separator)
    if len(tail) != 3 or len(head) > 3 or head == "" or head.startswith("0"):
        return separator  # '12.5', '1234.567' and '0.125' can only be decimals
    return "?"


def written_format(
    raw: pd.Series, source: str, column: str
) -> tuple[NumberFormat | None, str | None, pd.Series]:
    """What a text column of amounts proves about its separators (`infer_number_format`), and
    which rows could be read two ways."""
    text = raw.astype("str").str.strip()
    present = raw.notna() & (text != "")
    cleaned = _clean(text.where(present, ""))
    shaped = present & cleaned.str.match(_NUMBER)
    fmt, problem = infer_number_format(cleaned[shaped], source, column)
    ambiguous = shaped & (cleaned.map(_decimal_evidence) == "?")
    return fmt, problem, ambiguous


def infer_number_format(
    text: pd.Series, source: str, column: str
) -> tuple[NumberFormat | None, str | None]:
    """The format the written numbers prove, or None for plain numbers; with an error message
    when they prove both separators or could be read two ways."""
    evidence = text.map(_decimal_evidence)
    decimals = sorted(set(evidence.dropna()) - {"?"})
    if len(decimals) > 1:
        dot = text[evidence == "."]
        comma = text[evidence == ","]
        return None, (
            f"{source}: column {column!r} mixes number formats: {_first(dot)} has '.' as its "
            f"decimal separator, {_first(comma)} has ','; export the column in one format"
        )
    ambiguous = evidence == "?"
    if not decimals and ambiguous.any():
        return None, (
            f"{source}: column {column!r} has {int(ambiguous.sum())} amounts that read two ways "
            f"(first: {_first(text[ambiguous])}: a thousands separator, or a decimal one?); "
            "declare the format, e.g. data.number_format: {decimal: ',', thousands: '.'} "
            "(European) or {decimal: '.', thousands: ','}"
        )
    if not decimals:
        return None, None
    decimal = decimals[0]
    return NumberFormat(decimal, "," if decimal == "." else "."), None


def _convert(text: pd.Series, fmt: NumberFormat | None) -> pd.Series:
    """Floats from cleaned text in `fmt` (NaN where a value does not fit it)."""
    if fmt is None:
        pattern = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
        plain = text
    else:
        group = re.escape(fmt.thousands) if fmt.thousands else ""
        point = re.escape(fmt.decimal)
        grouped = rf"\d{{1,3}}({group}\d{{3}})+" if group else r"(?!)"
        pattern = re.compile(rf"^[+-]?(({grouped})|\d+)({point}\d*)?$|^[+-]?{point}\d+$")
        plain = text.str.replace(fmt.thousands or "", "", regex=False) if fmt.thousands else text
        plain = plain.str.replace(fmt.decimal, ".", regex=False)
    fits = text.str.match(pattern)
    numbers = pd.to_numeric(plain.where(fits), errors="coerce").astype(float)
    return numbers


def parse_amounts(
    raw: pd.Series,
    source: str,
    column: str,
    ids: pd.Series,
    declared: NumberFormat | None = None,
) -> tuple[pd.Series, list[str]]:
    """Floats from amounts as written (empty stays NaN), and the error messages: a value that is
    not a number, one that does not fit the declared (or proven) format, an ambiguous column.
    Numeric columns (Parquet) pass through."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype(float), []
    text = raw.astype("str").str.strip()
    present = raw.notna() & (text != "")
    cleaned = _clean(text.where(present, ""))
    errors: list[str] = []
    shaped = present & cleaned.str.match(_NUMBER)
    not_number = present & ~shaped
    if not_number.any():
        errors.append(
            f"{source}: column {column!r} is not numeric in {int(not_number.sum())} rows "
            f"(first deal_id: {_ids(ids, not_number)}; first value: {_first(text[not_number])}); "
            "write amounts like 12500.50, 12,500.50 or 12.500,50 (currency signs are dropped)"
        )
    fmt = declared
    if fmt is None:
        fmt, problem = infer_number_format(cleaned[shaped], source, column)
        if problem:
            return pd.Series(np.nan, index=raw.index), [*errors, problem]
    numbers = _convert(cleaned.where(shaped, ""), fmt)
    misfit = shaped & numbers.isna()
    if misfit.any():
        errors.append(
            f"{source}: column {column!r} has {int(misfit.sum())} amounts that do not fit "
            f"{_describe(fmt)} (first: {_first(text[misfit])}, deal_id {_ids(ids, misfit)}); "
            "fix them or data.number_format"
        )
    return numbers.where(shaped), errors


def _describe(fmt: NumberFormat | None) -> str:
    if fmt is None:
        return "plain numbers"
    return f"decimal {fmt.decimal!r}, thousands {fmt.thousands!r}"


def map_values(frame: pd.DataFrame, mapping: dict[str, dict[str, str | None]]) -> pd.DataFrame:
    """`frame` with each mapped column's values replaced as `data.values` says (raw value →
    contract value, None for empty), raw values compared stripped and case-folded; values the
    mapping does not name are left for validation to report."""
    updates = {}
    for column, values in mapping.items():
        if column not in frame.columns or not values:
            continue
        keys = {str(k).strip().casefold(): v for k, v in values.items()}
        updates[column] = per_value(frame[column], partial(_mapped, keys=keys))
    return frame.assign(**updates) if updates else frame


def _mapped(raw: pd.Series, keys: dict[str, str | None]) -> pd.Series:
    """`raw`'s values named by `keys` (stripped, case-folded) replaced; the others as they were."""
    text = raw.astype("str").str.strip().str.casefold()
    named = text.isin(list(keys)) & raw.notna()
    return raw.astype(object).where(~named, text.map(keys).astype(object))


def parse_flags(raw: pd.Series, source: str, column: str, ids: pd.Series) -> pd.Series:
    """Booleans as CRMs export them (true/false, yes/no, 1/0, any case); empty is an error, as
    is any other word (shown)."""
    text = raw.astype("str").str.strip().str.casefold().where(raw.notna(), "")
    flags = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    flags[text.isin(TRUE_WORDS)] = True
    flags[text.isin(FALSE_WORDS)] = False
    bad = flags.isna()
    if bad.any():
        raise ValueError(
            f"{source}: column {column!r} is not true/false in {int(bad.sum())} rows "
            f"(first: {_first(raw.astype('str').fillna('')[bad])}, id {_ids(ids, bad)}); "
            f"expected one of {[*TRUE_WORDS, *FALSE_WORDS]}"
        )
    return flags.astype(bool)


def split_id_lists(frame: pd.DataFrame, column: str, separator: str = ";") -> pd.DataFrame:
    """One row per id of `column`'s `separator`-separated lists ('12;34' is two rows, the other
    columns repeated); ids stripped, empty entries and an id repeated in one list dropped (count
    rows without any id with `empty_ids`)."""
    ids = frame[column].astype("str").where(frame[column].notna(), "").str.split(separator)
    exploded = frame.assign(**{column: ids}).explode(column)
    stripped = exploded[column].astype("str").str.strip()
    keys = pd.DataFrame({"row": exploded.index, "id": stripped.to_numpy()})
    kept = (stripped != "").to_numpy() & ~keys.duplicated().to_numpy()
    return exploded.assign(**{column: stripped})[kept].reset_index(drop=True)


def empty_ids(frame: pd.DataFrame, column: str) -> int:
    """Rows whose `column` holds no id at all (empty, or only separators)."""
    text = frame[column].astype("str").where(frame[column].notna(), "")
    return int((text.str.replace(r"[;,\s]", "", regex=True) == "").sum())
