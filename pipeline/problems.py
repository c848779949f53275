"""How a contract problem is reported: a `Problems` collector that raises at the first error
(strict) or collects every error and warning of a run, and the message for rows that break a
rule (file, column, count, first ids, the fix).

Validation (`validate.py`), plausibility (`plausibility.py`) and the Spark engine report into
one collector, so that one run lists every problem of both files at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal, cast

import pandas as pd

from closeprob.pipeline.errors import DataContractError

SHOWN = 5


@dataclass(frozen=True)
class Problem:
    level: Literal["error", "warning"]
    message: str


@dataclass
class Problems:
    """Contract problems found so far. `strict` raises a DataContractError at the first error
    (what a direct call of `validate_deals` does); otherwise errors are collected and
    `raise_errors` reports them all in one error."""

    strict: bool = True
    found: list[Problem] = field(default_factory=list)

    def error(self, message: str) -> None:
        if self.strict:
            raise DataContractError(message)
        self.found.append(Problem("error", message))

    def warn(self, message: str) -> None:
        self.found.append(Problem("warning", message))

    @property
    def errors(self) -> list[str]:
        return [p.message for p in self.found if p.level == "error"]

    @property
    def warnings(self) -> list[str]:
        return [p.message for p in self.found if p.level == "warning"]

    def raise_errors(self) -> None:
        """One DataContractError holding every error found, if any."""
        errors = self.errors
        if len(errors) == 1:
            raise DataContractError(errors[0])
        if errors:
            listed = "\n".join(f"  - {message}" for message in errors)
            raise DataContractError(f"{len(errors)} problems in the input data:\n{listed}")


def first_ids(ids: Iterable[object]) -> str:
    """The first few ids, quoted; missing ids are skipped (a deal_id column that is absent or
    empty reads as 'none readable', never as 'nan')."""
    shown = list(islice((i for i in ids if not pd.isna(cast(Any, i))), SHOWN))
    return ", ".join(repr(str(i)) for i in shown) if shown else "none readable"


def report_rows(
    problems: Problems,
    source: str,
    column: str,
    bad: pd.Series,
    ids: pd.Series,
    problem: str,
    fix: str,
) -> None:
    """Report an error if any row of `bad` is True, naming the count and the first ids."""
    if not bad.any():
        return
    count = int(bad.sum())
    problems.error(
        f"{source}: column {column!r} {problem} in {count} row{'s' * (count != 1)} "
        f"(first deal_id: {first_ids(ids[bad])}); {fix}"
    )


def emit_warnings(problems: Problems) -> None:
    """A strict (direct) call reports its warnings as Python warnings."""
    for message in problems.warnings:
        warnings.warn(message, stacklevel=3)
