"""The close model's input for a batch, encoded once: every feature column as LightGBM reads it
(floats; a categorical column as the position of its training level, NaN for a missing or
unseen level), shared by the raw score of every row and TreeSHAP of the rows people read.

`CloseModel.encode` builds a pandas frame that LightGBM then converts to a float matrix on
each call; here the level matching runs once per distinct value and the matrix is built from
the columns directly, the same numbers LightGBM's own conversion gives (tests compare both)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from closeprob.models.classifier import CloseModel, known_levels


def category_codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Per row, the position in `levels` of the level the value equals once normalised (-1:
    missing or never seen in training): `known_levels` on the distinct values only."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    if column.dtype == object and not all(type(value) is str for value in uniques):
        # factorize merges values that compare equal but print apart (1 and 1.0): level
        # matching compares their text, so each row is matched on its own.
        return np.asarray(pd.Categorical(known_levels(column, levels), categories=levels).codes)
    matched = known_levels(pd.Series(uniques, dtype=column.dtype), levels)
    positions = pd.Categorical(matched, categories=levels).codes.astype(np.int64)
    return np.append(positions, -1)[codes]


def _input_column(column: pd.Series, levels: list[str] | None) -> np.ndarray:
    """One model input column as floats (a view of a float column: no copy)."""
    if levels is None:
        return pd.to_numeric(column, errors="raise").astype(float).to_numpy(na_value=np.nan)
    codes = category_codes(column, levels).astype(float)
    codes[codes < 0] = np.nan
    return codes


@dataclass(frozen=True)
class ModelInput:
    """The encoded rows of a feature frame, one float column per model feature, in model
    order; `index` is the frame's index of those rows."""

    columns: tuple[np.ndarray, ...]
    index: pd.Index

    def __len__(self) -> int:
        return len(self.index)

    def take(self, positions: np.ndarray | slice) -> ModelInput:
        """The rows at `positions` (integer positions or a slice)."""
        return ModelInput(tuple(c[positions] for c in self.columns), self.index[positions])

    def matrix(self) -> np.ndarray:
        """The rows as LightGBM's float64 input (column-major: each column written once)."""
        out = np.empty((len(self), len(self.columns)), dtype=float, order="F")
        for position, column in enumerate(self.columns):
            out[:, position] = column
        return out

    def frame(self, model: CloseModel) -> pd.DataFrame:
        """The rows as `CloseModel.encode` gives them (floats and fixed categories)."""
        encoded: dict[str, pd.Categorical[str] | np.ndarray] = {}
        for name, column in zip(model.feature_names, self.columns, strict=True):
            if name in model.categories:
                codes = np.nan_to_num(column, nan=-1).astype(int)
                encoded[name] = pd.Categorical.from_codes(codes, pd.Index(model.categories[name]))
            else:
                encoded[name] = column
        return pd.DataFrame(encoded, index=self.index)


def encode_input(features: pd.DataFrame, model: CloseModel) -> ModelInput:
    """The model's input columns of `features`, each level matched once per distinct value."""
    columns = tuple(
        _input_column(features[name], model.categories.get(name)) for name in model.feature_names
    )
    return ModelInput(columns, features.index)


def _reads_matrix(model: CloseModel) -> bool:
    """A booster alone whose stored levels are the model's (LightGBM would reorder codes by
    its own list otherwise): its input can be the float matrix; a blend reads the frame."""
    stored = model.trees.pandas_categorical
    levels = [model.categories[n] for n in model.feature_names if n in model.categories]
    return not model.uses_linear and (stored is None or list(map(list, stored)) == levels)


def input_raw_score(model: CloseModel, rows: ModelInput) -> np.ndarray:
    """`CloseModel.raw_score` of the encoded rows."""
    if not _reads_matrix(model):
        return model.raw_score(rows.frame(model))
    return np.asarray(model.trees.predict(rows.matrix(), raw_score=True), dtype=float)


def input_contributions(model: CloseModel, rows: ModelInput) -> np.ndarray:
    """`CloseModel.contributions` (TreeSHAP, the bias last) of the encoded rows."""
    if not _reads_matrix(model):
        return model.contributions(rows.frame(model))
    return np.asarray(model.trees.predict(rows.matrix(), pred_contrib=True), dtype=float)
