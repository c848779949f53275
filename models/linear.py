"""The logistic part of a blended model as plain numbers: per input feature, how its value
becomes a log-odds term. Read once from a fitted `fit_logistic` pipeline (public fitted
attributes only) so that the model scores, explains and is stored without scikit-learn
objects; every term equals the pipeline's (`tests/models/test_linear.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

MISSING_LEVEL = "(missing)"  # fit_logistic's fill value for a missing categorical


@dataclass(frozen=True)
class NumericTerm:
    """A numeric feature: the median fills gaps, then (value − mean) / scale times its
    coefficient; with `indicator` (the feature had gaps in training) the gap flag is scaled
    and weighted the same way: (mean, scale, coefficient)."""

    median: float
    mean: float
    scale: float
    coef: float
    indicator: tuple[float, float, float] | None = None

    def terms(self, values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        filled = np.where(missing, self.median, values)
        term = (filled - self.mean) / self.scale * self.coef
        if self.indicator is not None:
            mean, scale, coef = self.indicator
            term = term + (missing.astype(float) - mean) / scale * coef
        return term

    def varying(self, values: np.ndarray) -> int:
        missing = np.isnan(values)
        filled = np.where(missing, self.median, values)
        count = int(self.coef != 0.0 and len(filled) > 0 and np.ptp(filled) > 0)
        if self.indicator is not None and self.indicator[2] != 0.0:
            count += int(missing.any() and not missing.all())
        return count


@dataclass(frozen=True)
class CategoricalTerm:
    """A categorical feature: each level seen in training is one of the one-hot columns
    (rare levels share one), whose coefficient is its term; a missing value is the level
    '(missing)', a level never seen adds nothing."""

    columns: dict[str, int]
    coefs: tuple[float, ...]

    def column_of(self, values: pd.Series) -> np.ndarray:
        levels = values.astype(object).where(values.notna(), MISSING_LEVEL)
        return levels.map(self.columns).fillna(-1).to_numpy(dtype=int)

    def terms(self, values: pd.Series) -> np.ndarray:
        column = self.column_of(values)
        table = np.append(np.asarray(self.coefs, dtype=float), 0.0)  # -1: unseen, no term
        return table[column]

    def varying(self, values: pd.Series) -> int:
        column = self.column_of(values)
        present = set(np.unique(column).tolist()) - {-1}
        return sum(1 for j in present if self.coefs[j] != 0.0 and not np.all(column == j))


@dataclass(frozen=True)
class LinearPart:
    """A logistic regression on the encoded feature frame: one term per feature (in the
    model's column order) plus the intercept."""

    features: tuple[NumericTerm | CategoricalTerm, ...]
    intercept: float

    def contributions(self, encoded: pd.DataFrame) -> np.ndarray:
        """Per-row log-odds terms: one column per feature, then the intercept."""
        terms = np.empty((len(encoded), len(self.features) + 1))
        for position, feature in enumerate(self.features):
            column = encoded.iloc[:, position]
            if isinstance(feature, NumericTerm):
                terms[:, position] = feature.terms(column.to_numpy(dtype=float))
            else:
                terms[:, position] = feature.terms(column)
        terms[:, -1] = self.intercept
        return terms

    def logit(self, encoded: pd.DataFrame) -> np.ndarray:
        return self.contributions(encoded).sum(axis=1)

    def varying_terms(self, encoded: pd.DataFrame) -> int:
        """Terms with a non-zero coefficient that vary over `encoded`: 0 is constant."""
        if encoded.empty:
            return 0
        count = 0
        for position, feature in enumerate(self.features):
            column = encoded.iloc[:, position]
            if isinstance(feature, NumericTerm):
                count += feature.varying(column.to_numpy(dtype=float))
            else:
                count += feature.varying(column)
        return count


def linear_part_from_pipeline(pipeline: Pipeline, categorical: list[str]) -> LinearPart:
    """The numbers of a fitted `fit_logistic` pipeline (one column transformer step `x<i>`
    per input feature, in order)."""
    prepare, fitted = pipeline.named_steps["prepare"], pipeline.named_steps["fit"]
    coef = np.asarray(fitted.coef_, dtype=float).ravel()
    features: list[NumericTerm | CategoricalTerm] = []
    for step, steps, names in prepare.transformers_:
        if step == "remainder":
            continue
        columns = prepare.output_indices_[step]
        own = coef[columns]
        if names[0] in categorical:
            features.append(_categorical_term(steps, own))
        else:
            features.append(_numeric_term(steps, own))
    return LinearPart(tuple(features), float(np.asarray(fitted.intercept_).ravel()[0]))


def _numeric_term(steps: Pipeline, coef: np.ndarray) -> NumericTerm:
    imputer, scaler = steps.steps[0][1], steps.steps[1][1]
    median = float(imputer.statistics_[0])
    median = 0.0 if np.isnan(median) else median  # keep_empty_features: an empty column is 0
    mean, scale = np.asarray(scaler.mean_, dtype=float), np.asarray(scaler.scale_, dtype=float)
    indicator = None
    if len(coef) == 2:
        indicator = (float(mean[1]), float(scale[1]), float(coef[1]))
    return NumericTerm(median, float(mean[0]), float(scale[0]), float(coef[0]), indicator)


def _categorical_term(steps: Pipeline, coef: np.ndarray) -> CategoricalTerm:
    encoder = steps.steps[-1][1]
    levels = [str(level) for level in encoder.categories_[0]]
    onehot: Any = encoder.transform(np.array(levels, dtype=object).reshape(-1, 1))
    dense = onehot.toarray() if hasattr(onehot, "toarray") else np.asarray(onehot)
    columns = {level: int(np.argmax(row)) for level, row in zip(levels, dense, strict=True)}
    return CategoricalTerm(columns, tuple(float(c) for c in coef))
