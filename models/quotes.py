"""Quotes as a value source: the latest value a deal's interactions carried before `as_of` (an
offer, a proposal), for deals whose declared amount is missing. A quote names this deal's
price; a model estimate only what deals like it went for.

Frames in, arrays out; no config, no disk, no MLflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from closeprob.features.stage_win_rate import of_type


def latest_quotes(
    interactions: pd.DataFrame, rows: pd.DataFrame, stage_event_type: str | None
) -> np.ndarray:
    """Per row of `rows` (`deal_id`, `as_of`), in row order: the `value` of the deal's latest
    interaction strictly before `as_of` that carries one and is not a stage change (whose
    value is a stage number; `of_type`'s comparison, as the features make it); NaN where there
    is none. Ties at one time keep the last row."""
    if "value" not in interactions.columns or len(rows) == 0:
        return np.full(len(rows), np.nan)
    # A stage change as the timeline knows one (type stripped and case-folded), decided once
    # per distinct type rather than by folding every event's type.
    stage = of_type(interactions["type"], stage_event_type or "")
    quoted = interactions.loc[
        interactions["value"].notna().to_numpy() & ~stage, ["deal_id", "occurred_at", "value"]
    ]
    if len(quoted) == 0:
        return np.full(len(rows), np.nan)
    right = quoted.assign(
        deal_id=quoted["deal_id"].astype("str"),
        occurred_at=pd.to_datetime(quoted["occurred_at"], utc=True).astype("datetime64[ns, UTC]"),
        value=quoted["value"].astype(float),
    ).sort_values("occurred_at", kind="stable")
    left = pd.DataFrame(
        {
            "deal_id": rows["deal_id"].astype("str").to_numpy(),
            "as_of": pd.to_datetime(rows["as_of"], utc=True).astype("datetime64[ns, UTC]"),
            "position": np.arange(len(rows)),
        }
    ).sort_values("as_of", kind="stable")
    merged = pd.merge_asof(
        left,
        right,
        left_on="as_of",
        right_on="occurred_at",
        by="deal_id",
        allow_exact_matches=False,  # an event at as_of is not known at as_of
        direction="backward",
    )
    out = np.full(len(rows), np.nan)
    out[merged["position"].to_numpy()] = merged["value"].to_numpy(dtype=float, na_value=np.nan)
    return out
