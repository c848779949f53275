"""The close model's input for a batch, encoded once: every feature column as LightGBM reads it
(floats; a categorical column as the position of its training level, NaN for a missing or
unseen level), shared by the raw score of every row and TreeSHAP of the rows people read.

`CloseModel.encode` builds a pandas frame that LightGBM then converts to a float matrix on
each call; here the level matching runs once per distinct value and the matrix is built from
the columns directly, the same numbers LightGBM's own conversion gives (tests compare both).
The deal-value model reads its attributes the same way, predicting once per distinct row."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
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
    if levels is None and column.dtype == np.float64:
        return column.to_numpy()  # a view of the feature frame's block
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


def encode_columns(
    frame: pd.DataFrame, names: list[str], categories: dict[str, list[str]]
) -> ModelInput:
    """The columns `names` of `frame` as model input (`encode_features`' numbers), each
    level matched once per distinct value."""
    columns = tuple(_input_column(frame[name], categories.get(name)) for name in names)
    return ModelInput(columns, frame.index)


def encode_input(features: pd.DataFrame, model: CloseModel) -> ModelInput:
    """The close model's input columns of `features`."""
    return encode_columns(features, model.feature_names, model.categories)


def same_levels(booster: lgb.Booster, names: list[str], categories: dict[str, list[str]]) -> bool:
    """Whether the booster stored the levels of `categories` (LightGBM reorders a frame's codes
    by its own list otherwise), so that the float matrix is what it reads from the frame."""
    stored = booster.pandas_categorical
    levels = [categories[n] for n in names if n in categories]
    return stored is None or list(map(list, stored)) == levels


def _reads_matrix(model: CloseModel) -> bool:
    """A booster alone with the model's levels reads the float matrix; a blend, the frame."""
    return not model.uses_linear and same_levels(model.trees, model.feature_names, model.categories)


def predict_distinct_rows(booster: lgb.Booster, rows: ModelInput) -> np.ndarray:
    """The booster's prediction of each row, computed once per distinct row (bit for bit): a
    deal's attributes repeat, a few hundred combinations among thousands of deals."""
    distinct = np.zeros(len(rows), dtype=np.int64)
    for column in rows.columns:
        # Row ids refined one column at a time; pandas numbers them in order of appearance.
        codes, uniques = pd.factorize(np.ascontiguousarray(column).view(np.int64))
        distinct = pd.factorize(distinct * len(uniques) + codes)[0]
    _, first = np.unique(distinct, return_index=True)
    predicted = np.asarray(booster.predict(rows.take(first).matrix()), dtype=float)
    return predicted[distinct]


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
