"""What is wrong with a path a user gave as a file to read or write, in one line: missing, a
folder, a FIFO or device (reading one would block or never end), or unreadable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

KINDS = {
    stat.S_ISDIR: "a folder",
    stat.S_ISFIFO: "a named pipe (FIFO)",
    stat.S_ISSOCK: "a socket",
    stat.S_ISCHR: "a character device",
    stat.S_ISBLK: "a block device",
}


def _not_regular(mode: int) -> str | None:
    """What a file of `mode` is when it is not a regular file, or None."""
    return next((kind for test, kind in KINDS.items() if test(mode)), None)


def input_file_problem(path: Path) -> str | None:
    """None when `path` is a regular file this process may read; else what it is instead.
    Checked without opening it: opening a FIFO waits for a writer."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror or exc})"
    kind = _not_regular(mode)
    if kind == "a folder":
        return "is a folder, not a file"
    if kind is not None:
        return f"is {kind}, not a regular file"
    if not os.access(path, os.R_OK):
        return "is not readable (no read permission)"
    return None


def output_file_problem(path: Path) -> str | None:
    """None when `path` is absent (or below a file: the caller names that) or a regular file;
    else what it is instead."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror or exc})"
    kind = _not_regular(mode)
    if kind == "a folder":
        return "is a folder; give a file path ending in .csv or .parquet"
    if kind is not None:
        return f"is {kind}, not a regular file; choose another --out"
    return None
