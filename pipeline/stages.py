"""Stage names: a stage change's `value` may be a stage's name (`Proposal`) instead of its number
when `data.stages` lists the pipeline's stages in order; the queue shows the name of each deal's
stage at `as_of`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.pipeline.validate import Problems, first_ids


def stage_names_as_numbers(
    events: pd.DataFrame, stages: tuple[str, ...], source: str, problems: Problems
) -> pd.DataFrame:
    """`events` with each `value` that names a stage of `stages` (compared case-folded and
    stripped) replaced by its position, 1 for the first; other values are left to validation.
    A text value matching no stage, on a row whose other values are stage names, is an error
    showing it and the stages known."""
    if (
        not stages
        or "value" not in events.columns
        or (
            events["value"].dtype != object
            and not (pd.api.types.is_string_dtype(events["value"].dtype))
        )
    ):
        return events
    text = events["value"].astype("str").str.strip().str.casefold()
    numbers = {name.strip().casefold(): float(i) for i, name in enumerate(stages, start=1)}
    mapped = text.map(numbers)
    named = mapped.notna()
    if not named.any():
        return events
    numeric = pd.to_numeric(events["value"], errors="coerce").notna()
    unknown = events["value"].notna() & ~named & ~numeric & (text != "")
    if unknown.any() and "type" in events.columns:
        staged = set(events.loc[named, "type"])
        unknown &= events["type"].isin(staged)
    if unknown.any():
        problems.error(
            f"{source}: column 'value' names a stage missing from data.stages in "
            f"{int(unknown.sum())} rows (first: {events.loc[unknown, 'value'].iloc[0]!r}, deal_id "
            f"{first_ids(events.loc[unknown, 'deal_id']) if 'deal_id' in events else '?'}); "
            f"data.stages lists {list(stages)}: add it there, in pipeline order"
        )
    return events.assign(value=events["value"].where(~named, mapped.astype("str")))


def stage_labels(values: pd.Series, stages: tuple[str, ...]) -> pd.Series:
    """Each deal's stage at `as_of` for the queue: its name in `stages` (by number), else the
    number as written ('3'), empty without any stage change yet."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    # One label per distinct number (a queue has a handful of stages and 100 k deals), told
    # apart by their bits: -0.0 is written '-0', as before.
    bits, where = np.unique(numbers.view(np.int64), return_inverse=True)
    labels = np.array([_stage_label(n, stages) for n in bits.view(float).tolist()], dtype=object)
    return pd.Series(labels[where.reshape(-1)], index=values.index, dtype="str")


def _stage_label(number: float, stages: tuple[str, ...]) -> str:
    if np.isnan(number):
        return ""
    if number.is_integer() and 1 <= number <= len(stages):
        return stages[int(number) - 1]
    return f"{number:g}"
