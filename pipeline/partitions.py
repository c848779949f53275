"""Each `predict` writes its outputs as one partition of its as_of day (UTC), beside the queue
path `out` (default outputs/priority_queue.csv), Hive-style so that Spark, DuckDB or pyarrow
read the days as one table with an `as_of_date` column (the score table's name for the day;
the files keep their own `as_of` timestamp):

    outputs/priority_queue/as_of_date=2024-12-09/
        priority_queue.csv     the queue (a CSV rounded for people; Parquet: full precision)
        priority_queue.html    its report (predict.html)
        scores.parquet         the queue at full precision, when the queue is a CSV: what
                               the next day's change columns are computed from
        summary.json           the run's one-line JSON summary (as on stdout)
    outputs/priority_queue.csv, outputs/priority_queue.html
                               the latest day's queue and report (the stable path to open)

A rerun of a day replaces its partition whole and atomically (the new folder is swapped in
with one rename: a reader sees the old partition or the new one, never a mix); another day adds
a partition. A partition is staged in a hidden folder named for this host and process
(`.as_of_date=2024-12-09.<host>.<pid>.<random>`, which Hive-style readers skip); one left by a
run that was killed (kill -9, a lost machine) is removed by the next run on the same host,
once its process is gone. The stable files are replaced only by a run of a day at or after the
latest partition's (a backfill of an earlier day leaves them alone). The previous queue of a day is
the latest partition before it.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from closeprob.pipeline.io import (
    OutputError,
    StagedFile,
    read_previous_queue,
    read_table,
    restore_formulas,
    staged_file,
    write_into,
    write_table_into,
)

DAY_FOLDER = re.compile(r"^as_of_date=(\d{4}-\d{2}-\d{2})$")
STAGING_FOLDER = re.compile(
    r"^\.as_of_date=\d{4}-\d{2}-\d{2}\.(?:old\.)?(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\."
)
FULL_PRECISION = "scores.parquet"
SUMMARY = "summary.json"


def partitions_folder(out: Path) -> Path:
    """Where the day partitions of the queue `out` go: outputs/priority_queue.csv ->
    outputs/priority_queue/."""
    return out.parent / out.stem


def partition_folder(out: Path, as_of: pd.Timestamp) -> Path:
    """The partition of `as_of`'s UTC day: outputs/priority_queue/as_of_date=2024-12-09."""
    return partitions_folder(out) / f"as_of_date={_day(as_of)}"


def report_name(out: Path) -> str:
    return f"{out.stem}.html"


def _day(as_of: pd.Timestamp) -> str:
    return pd.Timestamp(as_of).tz_convert("UTC").strftime("%Y-%m-%d")


def partition_days(out: Path) -> list[str]:
    """The days (YYYY-MM-DD) that have a partition, oldest first."""
    folder = partitions_folder(out)
    if not folder.is_dir():
        return []
    days = (DAY_FOLDER.match(entry.name) for entry in folder.iterdir() if entry.is_dir())
    return sorted(match.group(1) for match in days if match)


def check_partitions_folder(out: Path) -> None:
    """The partitions' folder is a folder, or absent (made by the first run)."""
    folder = partitions_folder(out)
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{folder}: is a file; the day partitions of {out.name} go into a folder of that "
            "name. Move the file aside, or choose another --out"
        )


def read_partition(out: Path, day: str) -> pd.DataFrame | None:
    """The queue of one day at full precision (scores.parquet, else the queue file); None
    when the partition holds neither."""
    folder = partitions_folder(out) / f"as_of_date={day}"
    for path in (folder / FULL_PRECISION, folder / out.name):
        if path.is_file():
            queue = read_table(path)
            if path.suffix.lower() == ".csv":
                queue = restore_formulas(queue)
            return queue.assign(p_close=pd.to_numeric(queue["p_close"], errors="coerce"))
    return None


def previous_queue(out: Path, as_of: pd.Timestamp) -> pd.DataFrame | None:
    """The queue of the latest day before `as_of`'s day: its partition, or (outputs written
    before partitions existed) the queue at `out` when it is of an earlier day; None."""
    day = _day(as_of)
    for earlier in reversed([d for d in partition_days(out) if d < day]):
        found = read_partition(out, earlier)
        if found is not None:
            return found
    legacy = read_previous_queue(out)  # refuses a file at `out` that is not a queue
    if legacy is None or _day(_as_of_of(legacy)) >= day:
        return None
    return legacy


def _as_of_of(queue: pd.DataFrame) -> pd.Timestamp:
    return pd.Timestamp(pd.to_datetime(queue["as_of"].iloc[:1], utc=True, format="ISO8601").iloc[0])


def is_latest(out: Path, as_of: pd.Timestamp) -> bool:
    """Whether `as_of`'s day is at or after every partition's (and the stable queue's, when
    it predates partitions): its queue becomes the one at `out`."""
    days = partition_days(out)
    if days:
        return _day(as_of) >= days[-1]
    legacy = read_previous_queue(out)
    return legacy is None or _day(as_of) >= _day(_as_of_of(legacy))


def read_partitions(out: Path) -> Iterator[pd.DataFrame]:
    """Every day's queue, oldest first (for `closeprob history` without a score table)."""
    for day in partition_days(out):
        queue = read_partition(out, day)
        if queue is not None:
            yield queue


@dataclass(frozen=True)
class StagedPartition:
    """A day's partition written in full to a temporary folder beside its place, and the
    stable copies (when the day is the latest), waiting for `publish`."""

    folder: Path
    temporary: Path
    queue_name: str
    latest: tuple[StagedFile, ...]

    @property
    def path(self) -> Path:
        """Where the queue will be once published."""
        return self.folder / self.queue_name

    def file(self, name: str) -> Path:
        """A file of the partition as staged (before publication)."""
        return self.temporary / name

    def write_summary(self, summary: Mapping[str, object]) -> None:
        line = json.dumps(summary, ensure_ascii=False, separators=(", ", ": ")) + "\n"
        write_into(self.temporary, self.folder / SUMMARY, lambda p: _write_text(p, line))

    def publish(self) -> None:
        """Swap the staged folder in (atomic), then rename the stable copies over `out`."""
        try:
            replace_folder(self.temporary, self.folder)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OutputError(f"{self.folder}: cannot write the partition: {reason}; nothing "
                              "was written") from None  # fmt: skip
        for copy in self.latest:
            copy.publish()

    def copy_named(self, folder: Path) -> Path:
        """The staged queue, under its file name in `folder` (for an MLflow artifact)."""
        copy = folder / self.queue_name
        shutil.copyfile(self.temporary / self.queue_name, copy)
        return copy


@contextmanager
def staged_partition(
    out: Path,
    as_of: pd.Timestamp,
    queue: pd.DataFrame,
    shown: pd.DataFrame,
    report: Callable[[Path], None] | None,
) -> Iterator[StagedPartition]:
    """Write a day's partition to a temporary folder beside its place: the queue as people
    read it (`shown`), the full-precision copy (CSV queues), the report (`report` writes it);
    and the stable copies when the day is the latest. Unpublished (an error, a kill), all of
    it is removed and the earlier outputs stay as they were."""
    folder = partition_folder(out, as_of)
    made = not folder.parent.exists()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_staging(folder.parent)
        temporary = Path(tempfile.mkdtemp(prefix=_staging_prefix(folder.name), dir=folder.parent))
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the partition: {exc.strerror or exc}; "
                          "nothing was written") from None  # fmt: skip
    try:
        os.chmod(temporary, 0o777 & ~_umask())  # mkdtemp makes 0700: as mkdir would
        write_table_into(shown, temporary, folder / out.name)
        if out.suffix.lower() == ".csv":
            write_table_into(queue, temporary, folder / FULL_PRECISION)
        if report is not None:
            write_into(temporary, folder / report_name(out), report)
        with ExitStack() as stack:
            latest: tuple[StagedFile, ...] = ()
            if is_latest(out, as_of):
                latest = _stage_latest(stack, out, temporary, report is not None)
            yield StagedPartition(folder, temporary, out.name, latest)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
        if made:
            with suppress(OSError):  # not empty: a partition was published
                folder.parent.rmdir()


def _staging_prefix(name: str) -> str:
    """`.as_of_date=2024-12-09.<host>.<pid>.`: whose staging folder it is."""
    return f".{name}.{_host()}.{os.getpid()}."


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"


def remove_abandoned_staging(folder: Path) -> list[Path]:
    """Remove the staging folders in `folder` (a partitions' folder) left by runs of this host
    whose process is gone (killed before they published or cleaned up); the removed paths.
    Another host's folders and a live process's are left alone (a process id reused since is
    taken as alive: its folder stays until a later run)."""
    removed = []
    for entry in folder.iterdir():
        match = STAGING_FOLDER.match(entry.name)
        if match is None or match["host"] != _host() or _alive(int(match["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _stage_latest(
    stack: ExitStack, out: Path, temporary: Path, with_report: bool
) -> tuple[StagedFile, ...]:
    """Copies of the day's queue (and report) staged beside `out`."""
    names = [(out, out.name)]
    if with_report:
        names.append((out.parent / report_name(out), report_name(out)))
    return tuple(
        stack.enter_context(staged_file(target, _copier(temporary / name)))
        for target, name in names
    )


def _copier(source: Path) -> Callable[[Path], None]:
    def copy(target: Path) -> None:
        shutil.copyfile(source, target)

    return copy


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Linux renameat2(2): RENAME_EXCHANGE swaps two paths atomically, folders included.
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder `new` at `target`, atomically: a reader of `target` sees the old folder
    or the new one, whole. Where the system cannot swap two folders (not Linux, or a file
    system without RENAME_EXCHANGE, such as NFS), the old folder is renamed aside first: a
    reader may then find no folder for a moment, never a mixed one."""
    try:
        os.rename(new, target)  # no folder there yet (or an empty one)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if not _exchange(new, target):
        aside_prefix = _staging_prefix(f"{target.name}.old")
        aside = Path(tempfile.mkdtemp(prefix=aside_prefix, dir=target.parent))
        os.rename(target, aside / target.name)
        os.rename(new, target)
        shutil.rmtree(aside, ignore_errors=True)
        return
    shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old partition


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths with renameat2(RENAME_EXCHANGE); False where that is not available."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]  # fmt: skip
    done = renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))
