"""One `predict` at a time per queue: an exclusive lock beside the queue file. A second run
waits up to `wait_seconds`, then stops with exit 75 naming the holder (pid, host, start).

The lock is `flock` on `.<queue name>.lock`: the kernel releases it when the holder dies, so a
killed job never leaves a stale lock. The file is removed on release; a waiter that then holds
a removed file sees that its inode is no longer the path's and tries again.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pandas as pd

from closeprob.pipeline.errors import RetryableError

POLL_S = 0.2


class LockHeldError(RetryableError):
    """Another job holds the queue's lock (exit 75: run again later)."""


def lock_path(queue_path: Path) -> Path:
    return queue_path.parent / f".{queue_path.name}.lock"


@contextmanager
def queue_lock(queue_path: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the lock of `queue_path` for the block. Folders made for the lock are removed
    again on release if nothing else was written there (a failed run leaves nothing)."""
    path = lock_path(queue_path)
    deadline = time.monotonic() + wait_seconds
    while True:
        made = _make_folders(path.parent)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            if time.monotonic() >= deadline:
                raise LockHeldError(_held_message(queue_path, path, wait_seconds)) from None
            time.sleep(POLL_S)
            continue
        if _is_current(handle, path):
            break
        os.close(handle)  # the holder removed it after we opened it: lock the new file
    try:
        _write_holder(handle)
        yield
    finally:
        os.unlink(path)
        os.close(handle)  # closing releases the lock
        for folder in made:
            with suppress(OSError):  # not empty (the queue is there), or another run's
                folder.rmdir()


def _make_folders(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; the ones made, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        with suppress(FileExistsError):
            made.mkdir()
    return missing


def _is_current(handle: int, path: Path) -> bool:
    try:
        return os.fstat(handle).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _write_holder(handle: int) -> None:
    since = pd.Timestamp.now(tz="UTC").floor("s").isoformat()
    text = f"pid {os.getpid()} on {socket.gethostname()} since {since}\n"
    os.ftruncate(handle, 0)
    os.pwrite(handle, text.encode(), 0)


def _held_message(queue_path: Path, path: Path, waited: float) -> str:
    try:
        holder = path.read_text(encoding="utf-8").strip() or "a process starting up"
    except OSError:
        holder = "a process that just finished"
    return (
        f"{queue_path}: another predict is writing this queue ({holder}; lock {path}); waited "
        f"{waited:g} s. Run again when it has finished, or raise predict.lock_wait_seconds"
    )
