"""Declared deal attributes (industry, source, region, ...) as categorical features."""

from __future__ import annotations

import pandas as pd

from closeprob.features.spec import slug


def attribute_features(rows: pd.DataFrame, attributes: tuple[str, ...]) -> pd.DataFrame:
    """One row per snapshot row: each declared attribute as a normalised string, missing as NA.

    Attributes are fixed at the deal's creation, so they are point-in-time by contract. Values
    are normalised (`normalise_levels`) so that spellings a CRM varies are one level; the model
    maps them to the categories it saw in training.
    """
    return pd.DataFrame(
        {f"attr_{slug(name)}": normalise_levels(rows[name]) for name in attributes},
        index=rows.index,
    )


def normalise_levels(values: pd.Series) -> pd.Series:
    """Category levels as compared everywhere: stripped, inner runs of spaces made one, and
    case-folded, so 'SOFTWARE', ' Software' and 'software' are one level; missing stays NA.

    Works on the distinct values only (a snapshot frame repeats each deal's level many times).
    """
    as_category = values.astype("category")
    levels = as_category.cat.categories
    keys = pd.Series(levels.astype("str"), dtype="str")
    keys = keys.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()
    mapped = as_category.map(dict(zip(levels, keys, strict=True))).astype(object)
    return mapped.where(values.notna())
