"""Columns that leak the outcome are refused, not warned about.

A model input read from the deals table (an attribute, a track-record key) must be known when
a deal is created. One that is filled, or valued, very differently in the deals open at the
data's end and in those closed by then (the current stage, a forecast category, a stage
probability, a last-modified date, an account filled in at the close) says how deals ended:
a model trained on it scores every open deal as a loser. `check` and `train` stop on it (exit
2) naming the column and both rates, unless the user vouches for it in
`data.allow_suspect_columns`.
"""

from __future__ import annotations

import pandas as pd

from closeprob.features.attributes import open_closed_contrast

# An input is refused when its fill rate differs by this much between open and closed deals,
# or its values by this total-variation distance.
LEAK_FILL_GAP, LEAK_VALUE_DISTANCE = 0.3, 0.5


def leak_messages(
    deals: pd.DataFrame, columns: tuple[str, ...], allowed: tuple[str, ...], source: str
) -> list[str]:
    """One message per input column in `columns` (not `allowed`) that tells open deals from
    closed ones; empty when every column looks known at creation (or either side has fewer
    than 20 deals: too few to tell)."""
    checked = tuple(c for c in columns if c in deals.columns and c not in allowed)
    messages = []
    for row in open_closed_contrast(deals, checked).to_dict("records"):
        open_fill, closed_fill = float(row["open_fill"]), float(row["closed_fill"])
        distance = float(row["value_distance"])
        if abs(open_fill - closed_fill) < LEAK_FILL_GAP and not distance >= LEAK_VALUE_DISTANCE:
            continue
        messages.append(
            f"{source}: column {row['attribute']!r} leaks the outcome: filled in "
            f"{open_fill:.0%} of open deals and {closed_fill:.0%} of closed deals, its values "
            f"{distance:.2f} apart (total variation; refused from {LEAK_FILL_GAP:.0%} apart "
            f"in fill or {LEAK_VALUE_DISTANCE:.2f} in values). It is set or changed as deals "
            "close (a current stage, forecast category, probability, last-modified date?): "
            "remove it from data.attributes (or features.history_keys), or, if it is truly "
            "known when a deal is created, list it in data.allow_suspect_columns"
        )
    return messages
