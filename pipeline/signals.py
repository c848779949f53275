"""Ctrl-C (SIGINT) and SIGTERM: both stop a job as an exception, so MLflow runs end KILLED and
temporary files go; the CLI prints one line and exits 128 + the signal number. `held_signals`
holds both while a job publishes (renames the queue, moves aliases, ends its run), so a signal
cannot cut a publication in half."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt is for SIGINT (a BaseException: no `except
    Exception` swallows it)."""


def stopped_by(exc: BaseException) -> signal.Signals:
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


def _raise_for(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _raise_for(signum)


@contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """SIGTERM raises `Terminated` in the main thread (Python's default is to die silently)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block has run, then stop the job as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {number: signal.signal(number, hold) for number in HANDLED}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if pending:
        _raise_for(pending[0])
