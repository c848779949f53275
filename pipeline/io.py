"""The only module that reads or writes files. Formats are chosen by extension."""

from __future__ import annotations

import csv
import gzip
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from closeprob.pipeline.errors import DataContractError
from closeprob.pipeline.paths import input_file_problem, output_file_problem

READABLE = (".csv", ".parquet", ".pq")


def read_table(path: Path, dictionary: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV (all columns as text, validated later) or Parquet file; errors name the file.

    The text columns named in `dictionary` (headers as written; absent ones are skipped) are
    read as dictionaries, pandas categoricals of strings: a column that repeats a few labels
    over millions of rows then takes a byte or so a row (`dictionary_text`)."""
    problem = input_file_problem(path)
    if problem is not None:
        raise DataContractError(f"{path}: {problem}; check the path (or --deals/--interactions)")
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise DataContractError(f"{path}: unsupported extension {suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path}: the file is empty; expected a header row and data rows")
    if suffix == ".csv":
        return _read_csv(path, dictionary=dictionary)
    try:
        # Only string columns take `read_dictionary` (Arrow leaves numbers and absent names be).
        frame = pd.read_parquet(path, read_dictionary=list(dictionary) or None)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataContractError(f"{path}: not a readable Parquet file ({exc})") from None
    # Arrow's allocator keeps the decoded pages after pandas took the columns: give them back
    # (about 400 MiB at 10 M interactions).
    pa.default_memory_pool().release_unused()
    return frame


def _read_csv(
    path: Path,
    sep: str = ",",
    usecols: Callable[[str], bool] | None = None,
    dictionary: Sequence[str] = (),
) -> pd.DataFrame:
    # pandas' parser turns each block of a 'category' column into categories and codes as it
    # reads: the column's strings are never all decoded at once.
    dtypes = defaultdict(lambda: "str", dict.fromkeys(dictionary, "category"))
    try:
        # Only empty cells are missing: "NA" may be a real id or region code.
        frame = pd.read_csv(
            path,
            sep=sep,
            usecols=usecols,
            dtype=dtypes,
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


class OutputError(DataContractError):
    """An output path that would destroy an input or another file, or cannot be written."""


class Staged(Protocol):
    """Output written in full, waiting to be published (renamed into place) at `path`."""

    @property
    def path(self) -> Path: ...

    def publish(self) -> None: ...

    def copy_named(self, folder: Path) -> Path: ...


@dataclass(frozen=True)
class StagedFile:
    """A file written in full to a temporary name beside `path`, waiting for `publish`."""

    path: Path
    temporary: Path

    def publish(self) -> None:
        """Rename over `path` (atomic: a reader sees the old file or the new one)."""
        try:
            os.replace(self.temporary, self.path)
        except OSError as exc:
            raise OutputError(_cannot_write(self.path, exc)) from None

    def copy_named(self, folder: Path) -> Path:
        """The staged bytes, under the final file name in `folder` (for an MLflow artifact)."""
        copy = folder / self.path.name
        shutil.copyfile(self.temporary, copy)
        return copy


@contextmanager
def staged_file(path: Path, write: Callable[[Path], None]) -> Iterator[StagedFile]:
    """`write` fills a temporary file in the folder of `path`; the block decides whether to
    publish it. Unpublished (an error, a kill, no call), it is removed and any earlier file at
    `path` stays untouched."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise OutputError(_cannot_write(path, exc)) from None
    os.close(handle)
    # mkstemp creates 0600; give the file the mode an ordinary write would (0666 less umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        try:
            write(Path(temporary))
        except OSError as exc:
            raise OutputError(_cannot_write(path, exc)) from None
        yield StagedFile(path, Path(temporary))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _cannot_write(path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return f"{path}: cannot write the file: {reason}{where}; nothing was written"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename over `path`.

    A run that fails or is killed leaves any earlier file at `path` untouched.
    """
    with staged_file(path, write) as staged:
        staged.publish()


def _table_writer(frame: pd.DataFrame, path: Path) -> Callable[[Path], None]:
    """CSV or Parquet by extension; timestamps as ISO 8601 with offsets. CSV text cells that a
    spreadsheet would run as a formula are neutralised (`neutralise_formulas`)."""
    check_table_suffix(path)
    if path.suffix.lower() == ".csv":
        safe = neutralise_formulas(frame)
        # CRLF rows (RFC 4180, what Excel writes): a cell holding a lone CR is then quoted.
        return lambda tmp: safe.to_csv(
            tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S%z", lineterminator="\r\n"
        )
    return lambda tmp: frame.to_parquet(tmp, index=False)


def check_table_suffix(path: Path) -> None:
    if path.suffix.lower() not in READABLE:
        raise DataContractError(
            f"{path}: unsupported extension {path.suffix.lower()!r}; use .csv or .parquet"
        )


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """A table written atomically (see `_table_writer` for the format)."""
    write_atomic(path, _table_writer(frame, path))


def write_into(folder: Path, final: Path, write: Callable[[Path], None]) -> None:
    """Write the file that will be at `final` into `folder` (a staged folder, published whole
    later) under final's name, through a temporary name; an error names `final`."""
    scratch = folder / f".{final.name}.tmp"
    try:
        write(scratch)
        os.replace(scratch, folder / final.name)
    except OSError as exc:
        raise OutputError(_cannot_write(final, exc)) from None


def write_table_into(frame: pd.DataFrame, folder: Path, final: Path) -> None:
    """`write_into` for a table (see `_table_writer` for the format)."""
    write_into(folder, final, _table_writer(frame, final))


def staged_table(frame: pd.DataFrame, path: Path) -> AbstractContextManager[StagedFile]:
    """A table written to a temporary file beside `path`, published by the caller."""
    return staged_file(path, _table_writer(frame, path))


# OWASP, CSV injection: a cell starting with one of these runs as a formula in Excel, Calc or
# Sheets; a leading apostrophe makes it text. Cells that already start with apostrophes before
# one of them get one more, so that reading back (`restore_formulas`) is exact.
FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
NEUTRALISED = re.compile(r"^'+[=+\-@\t\r]")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas; numbers stay numbers."""
    text = [c for c in frame.columns if _is_text(frame[c])]
    return frame.assign(**{c: _rewrite(frame[c], FORMULA_START, lambda t: "'" + t) for c in text})


def restore_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells `neutralise_formulas` changed, as they were."""
    text = [c for c in frame.columns if _is_text(frame[c])]
    return frame.assign(**{c: _rewrite(frame[c], NEUTRALISED, lambda t: t.str[1:]) for c in text})


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(column) or column.dtype == object


def _rewrite(
    column: pd.Series, pattern: re.Pattern[str], change: Callable[[pd.Series], pd.Series]
) -> pd.Series:
    """`change` applied to the text cells matching `pattern`; other cells as they were."""
    is_text = column.map(lambda v: isinstance(v, str)).astype(bool)
    texts = column.where(is_text).astype("string")  # numbers and other objects: no match
    matched = texts.str.match(pattern.pattern).fillna(False).astype(bool)
    if not matched.any():
        return column
    return column.mask(matched, change(texts[matched]).astype(object))


QUEUE_MARK = ("rank", "deal_id", "p_close", "expected_value", "tier")


def check_output_path(path: Path, inputs: list[Path]) -> None:
    """`path` may take a new file: not an input (by name, link or inode), not a folder, in a
    folder that can be made and written. (Whether a file there is a queue: read_previous_queue.)"""
    check_table_suffix(path)
    for source in inputs:
        if _same_file(path, source):
            raise OutputError(
                f"{path}: the output is the input file {source}; writing there would destroy "
                "it. Choose another --out"
            )
    problem = output_file_problem(path)
    if problem is not None:
        raise OutputError(f"{path}: {problem}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"{path}: cannot create the folder: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: no write permission in {folder}; choose another --out")


def _same_file(path: Path, other: Path) -> bool:
    if path.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(path, other)  # hard links: the same device and inode
    except OSError:  # one of them does not exist
        return False


def read_previous_queue(path: Path) -> pd.DataFrame | None:
    """The queue an earlier run left at `path` (for p_close_change and tier_change); None if
    there is none. Any other file there is refused, never overwritten."""
    if not path.exists() and not path.is_symlink():
        return None
    advice = "move it away or choose another --out; only a previous queue is replaced"
    try:
        previous = read_table(path)
    except DataContractError as exc:
        raise OutputError(f"{path}: exists and is not a previous queue ({exc}); {advice}") from None
    missing = [c for c in QUEUE_MARK if c not in previous.columns]
    if missing:
        raise OutputError(
            f"{path}: exists and is not a previous queue (no column {missing[0]!r}; found "
            f"{list(previous.columns)[:8]}); {advice}"
        )
    if path.suffix.lower() == ".csv":
        previous = restore_formulas(previous)
    return previous.assign(p_close=pd.to_numeric(previous["p_close"], errors="coerce"))
