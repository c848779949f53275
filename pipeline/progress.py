"""Progress of the long stages (reading, features, fitting, calibration, each backtest week,
scoring). On a terminal: a live line with a spinner and the elapsed time, drawn by rich on
stderr and cleared when the stage ends. Everywhere: one plain log line with the stage's time
when it ends (what a log file or CI keeps). `-q` silences both."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

log = logging.getLogger(__name__)
_open: list[str] = []  # the stages running now, outermost first


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block; show it live on a terminal; log `name: N.N s` when it ends.

    A stage inside another (the fitting inside a backtest week) logs its time at debug level
    (`-v`) and draws nothing: one live line at a time.
    """
    started, outermost = time.perf_counter(), not _open
    _open.append(name)
    try:
        if outermost and log.isEnabledFor(logging.INFO) and sys.stderr.isatty():
            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                progress.add_task(name, total=None)
                yield
        else:
            yield
    finally:
        _open.pop()
    level = logging.INFO if outermost else logging.DEBUG
    log.log(level, f"  {name}: {time.perf_counter() - started:.1f} s")
