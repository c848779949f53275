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


MIN_DEALS_PER_SIDE = 20


def _distribution(values: pd.Series, bins: pd.Series | None) -> pd.Series:
    """Shares of each value (or numeric bin) among the filled values."""
    keys = bins if bins is not None else values.astype("str")
    return keys.value_counts(normalize=True)


def open_closed_contrast(deals: pd.DataFrame, attributes: tuple[str, ...]) -> pd.DataFrame:
    """One row per attribute: its fill rate among deals open at the data's end and among deals
    closed by then, and the total-variation distance between their value distributions
    (numeric attributes in deciles of both together; others by their 10 most frequent values
    and the rest). A column filled or set only at close
    (a leak) shows up as a large gap. Empty when either side has fewer than 20 deals."""
    is_open = deals["closed_at"].isna()
    rows = []
    if min(int(is_open.sum()), int((~is_open).sum())) < MIN_DEALS_PER_SIDE:
        return pd.DataFrame(columns=["attribute", "open_fill", "closed_fill", "value_distance"])
    for name in attributes:
        column = deals[name]
        bins = None
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 10:
            bins = pd.qcut(column, 10, duplicates="drop").astype("str").where(column.notna())
        elif column.nunique() > 10:
            # Many levels (account ids): the 10 most frequent and the rest together, or the
            # sampling noise of sparse levels would look like a difference.
            text = column.astype("str")
            top = text.value_counts().index[:10]
            bins = text.where(text.isin(top), "(other)").where(column.notna())
        filled = column.notna()
        open_share = _distribution(
            column[is_open & filled], None if bins is None else bins[is_open & filled]
        )
        closed_share = _distribution(
            column[~is_open & filled], None if bins is None else bins[~is_open & filled]
        )
        distance = (
            0.5 * open_share.sub(closed_share, fill_value=0.0).abs().sum()
            if len(open_share) and len(closed_share)
            else float("nan")
        )
        rows.append(
            {
                "attribute": name,
                "open_fill": float(filled[is_open].mean()),
                "closed_fill": float(filled[~is_open].mean()),
                "value_distance": float(distance),
            }
        )
    return pd.DataFrame(rows)
