"""The only module that reads or writes files. Formats are chosen by extension."""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from closeprob.pipeline.errors import DataContractError

READABLE = (".csv", ".parquet", ".pq")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (all columns as text, validated later) or Parquet file; errors name the file."""
    if not path.is_file():
        raise DataContractError(
            f"{path}: file not found; check the path (or --deals/--interactions)"
        )
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise DataContractError(f"{path}: unsupported extension {suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path}: the file is empty; expected a header row and data rows")
    if suffix == ".csv":
        return _read_csv(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataContractError(f"{path}: not a readable Parquet file ({exc})") from None
    # Arrow's allocator keeps the decoded pages after pandas took the columns: give them back
    # (about 400 MiB at 10 M interactions).
    pa.default_memory_pool().release_unused()
    return frame


def _read_csv(
    path: Path, sep: str = ",", usecols: Callable[[str], bool] | None = None
) -> pd.DataFrame:
    try:
        # Only empty cells are missing: "NA" may be a real id or region code.
        frame = pd.read_csv(
            path,
            sep=sep,
            usecols=usecols,
            dtype="str",
            encoding="utf-8-sig",
            keep_default_na=False,
            na_values=[""],
        )
    except UnicodeDecodeError:
        raise DataContractError(_not_utf8_message(path)) from None
    except pd.errors.EmptyDataError:
        raise DataContractError(
            f"{path}: the file is empty; expected a header row and data rows"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataContractError(f"{path}: not a well-formed CSV file ({exc})") from None
    if usecols is None and path.suffix.lower() == ".csv":
        header = _csv_header(path, sep)
        if len(header) == len(frame.columns) and len(set(header)) < len(header):
            # pandas renames a repeated header 'x' to 'x.1': give the copies their written
            # name back, so that validation reports the duplicate instead of reading one.
            frame.columns = pd.Index(header)
    if sep == "," and len(frame.columns) == 1 and ";" in frame.columns[0]:
        raise DataContractError(
            f"{path}: found one column {frame.columns[0]!r}; the file looks ';'-separated, "
            "expected ',' (re-export as comma-separated CSV)"
        )
    return frame


def read_source_csv(
    path: Path, sep: str = ",", usecols: Callable[[str], bool] | None = None
) -> pd.DataFrame:
    """A public data set's raw CSV (gzip too, by extension), every column as text, for the
    adapters; a missing file, bad encoding or malformed CSV is a DataContractError naming it."""
    if not path.is_file():
        raise DataContractError(f"{path}: file not found; pass --source to the folder holding it")
    return _read_csv(path, sep, usecols)


def _csv_header(path: Path, sep: str) -> list[str]:
    """The header row as written (pandas would have renamed repeated names)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle, delimiter=sep), [])


def _not_utf8_message(path: Path) -> str:
    """Where decoding fails, counted from the start of the file (pandas counts per chunk),
    the encoding the bytes most likely are, and how to convert them."""
    gzipped = path.suffix.lower() == ".gz"
    raw = gzip.decompress(path.read_bytes()) if gzipped else path.read_bytes()
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start}"
    else:
        where = "undecodable bytes"
    name, iconv = _likely_encoding(raw)
    convert = (
        f"`gunzip -c {path.name} | iconv -f {iconv} -t UTF-8 | gzip > utf8.{path.name}`"
        if gzipped
        else f"`iconv -f {iconv} -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}`"
    )
    return (
        f"{path}: not UTF-8 text ({where}); it looks like {name}. "
        f"Re-save it as UTF-8, e.g. {convert}"
    )


def _likely_encoding(raw: bytes) -> tuple[str, str]:
    """(name, iconv name), from the first MiB. Chinese GBK/GB18030 text has its high bytes in
    pairs; Latin-1 and Windows-1252 text has them alone, between ASCII letters."""
    sample = np.frombuffer(raw[: 1 << 20], dtype=np.uint8)
    high = sample >= 0x81
    next_high = np.append(high[1:], False)
    previous_high = np.insert(high[:-1], 0, False)
    paired = high & (next_high | previous_high)
    if high.any() and paired.sum() >= 0.8 * high.sum():
        return "GB18030/GBK (Chinese)", "GB18030"
    return "Latin-1 or Windows-1252", "WINDOWS-1252"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over `path`.

    A run that fails or is killed leaves any earlier file at `path` untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    # mkstemp creates 0600; give the file the mode an ordinary write would (0666 less umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by extension, atomically; timestamps as ISO 8601 with offsets."""
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise DataContractError(f"{path}: unsupported extension {suffix!r}; use .csv or .parquet")
    if suffix == ".csv":
        write_atomic(
            path, lambda tmp: frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
        )
    else:
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_previous_queue(path: Path) -> pd.DataFrame | None:
    """The queue an earlier run left at `path` (for p_close_change and tier_change), if usable."""
    if not path.is_file():
        return None
    try:
        previous = read_table(path)
    except DataContractError as exc:
        warnings.warn(f"{path}: previous queue ignored ({exc})", stacklevel=2)
        return None
    if not {"deal_id", "p_close", "tier"} <= set(previous.columns):
        warnings.warn(
            f"{path}: previous queue ignored (no deal_id/p_close/tier columns)", stacklevel=2
        )
        return None
    return previous.assign(p_close=pd.to_numeric(previous["p_close"], errors="coerce"))
