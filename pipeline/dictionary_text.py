"""Text columns held as dictionaries: the distinct strings once and a small integer code per row
(pandas categoricals of strings, Arrow's dictionary arrays).

An interactions table repeats a handful of labels (its type, channel and direction) on every row:
decoded, those three columns take about 0.4 GiB at 10 M rows, as dictionaries about 30 MiB. The
reader asks for them as dictionaries (`LABEL_COLUMNS`), and every cleaning step on them goes
through `per_value`, which works on the distinct strings once and keeps the column a dictionary.
A plain column (a table that did not come from the reader, e.g. a Spark bucket) takes the same
steps on every row; both give the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

# Interaction columns with few distinct values, read as dictionaries (contract names).
LABEL_COLUMNS = ("type", "channel", "direction")


def dictionary_headers(mapping: Mapping[str, str]) -> tuple[str, ...]:
    """The headers, as written in the file, of the `LABEL_COLUMNS`: `data.columns` maps a
    contract name to the export's header (`mapping`), else the header is the name."""
    return tuple(mapping.get(name, name) for name in LABEL_COLUMNS)


def is_dictionary(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype)


def per_value(values: pd.Series, change: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`change(values)` for a plain column. For a dictionary column, `change` runs once on its
    distinct values, and the result is again a dictionary: values that became equal share one
    category, a value that became missing (NA, None) is a missing cell."""
    if not is_dictionary(values):
        return change(values)
    categories = values.cat.categories
    changed = change(pd.Series(categories, index=range(len(categories)), dtype=categories.dtype))
    return recoded(values, changed)


def recoded(values: pd.Series, changed: pd.Series) -> pd.Series:
    """`values` (a dictionary column) with category i replaced by `changed.iloc[i]`."""
    present = changed[changed.notna()]
    texts = present.map(lambda v: isinstance(v, str)).astype(bool)
    distinct = pd.unique(present.to_numpy(dtype=object))
    new = pd.Index(distinct, dtype="str" if texts.all() else object)
    mapping = np.full(len(changed) + 1, -1, dtype=np.int64)  # the last entry: a missing cell
    mapping[np.flatnonzero(changed.notna().to_numpy())] = new.get_indexer(present.to_numpy())
    codes = mapping[values.cat.codes.to_numpy()]
    width = np.int8 if len(new) < 127 else np.int32
    categorical = pd.Categorical.from_codes(codes.astype(width), categories=new)
    return pd.Series(categorical, index=values.index, name=values.name)
