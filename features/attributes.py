"""Declared deal attributes (industry, source, region, ...) as categorical features."""

from __future__ import annotations

import pandas as pd

from closeprob.features.spec import slug


def attribute_features(rows: pd.DataFrame, attributes: tuple[str, ...]) -> pd.DataFrame:
    """One row per snapshot row: each declared attribute as a string, missing as NA.

    Attributes are fixed at the deal's creation, so they are point-in-time by contract. Values
    are strings here; the model maps them to the categories it saw in training.
    """
    return pd.DataFrame(
        {
            f"attr_{slug(name)}": rows[name].astype("str").where(rows[name].notna())
            for name in attributes
        },
        index=rows.index,
    )
