"""Prints 'equal' when two benchmark feature files agree, else what differs first.

    .venv/bin/python bench/engines/compare_features.py EXPECTED.parquet ACTUAL.parquet

Same columns in the same order, same rows in the same order, counts exactly equal, day columns
within 1e-9 days, missing values in the same places.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

TOLERANCE_DAYS = 1e-9


def difference(expected: pd.DataFrame, actual: pd.DataFrame) -> str:
    """'' when the frames agree, else a one-line description of the first difference."""
    if list(expected.columns) != list(actual.columns):
        return f"columns differ: {list(expected.columns)} vs {list(actual.columns)}"
    if len(expected) != len(actual):
        return f"{len(expected)} rows vs {len(actual)}"
    keys = ["deal_id", "as_of"]
    if not expected[keys].astype(str).equals(actual[keys].astype(str)):
        return "the (deal_id, as_of) rows are not the same or not in the same order"
    for column in expected.columns.drop(keys):
        want = expected[column].to_numpy(dtype=float)
        got = actual[column].to_numpy(dtype=float)
        tolerance = TOLERANCE_DAYS if column.startswith(("days_", "deal_age")) else 0.0
        same = (np.isnan(want) & np.isnan(got)) | (np.abs(want - got) <= tolerance)
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            example = f"row {row}: {want[row]} vs {got[row]}"
            return f"{column} differs in {int((~same).sum())} rows ({example})"
    return ""


def main() -> None:
    expected, actual = (pd.read_parquet(path) for path in sys.argv[1:3])
    print(difference(expected, actual) or "equal")


if __name__ == "__main__":
    main()
