"""The close-probability model: LightGBM with native categoricals, optionally blended in
log-odds with a logistic regression on the same encoded features, and a calibrator that maps
the (blended) raw score to a probability. Fitting lives in `models/training.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit

from closeprob.features.attributes import normalise_levels
from closeprob.features.spec import FeatureSpec
from closeprob.models.linear import LinearPart

# Rows encoded and scored at a time by `CloseModel.predict_proba` and `predict_both`.
PREDICT_CHUNK_ROWS = 250_000


def fit_categories(features: pd.DataFrame, categorical: list[str]) -> dict[str, list[str]]:
    """The levels of each categorical column seen in `features` (training rows), sorted."""
    return {
        name: sorted(normalise_levels(features[name].dropna().astype(str)).unique())
        for name in categorical
    }


def known_levels(column: pd.Series, levels: list[str]) -> pd.Series:
    """Each value as the model's level it equals once normalised (stripped, case-folded), so
    models that stored levels as written (closeprob 0.1) match normalised data; levels never
    seen in training are missing (pandas would refuse them outright)."""
    as_text = column.astype("str").where(column.notna()).astype("category")
    keys = normalise_levels(pd.Series(levels, dtype="str"))
    lookup = dict(zip(keys, levels, strict=True))
    present = as_text.cat.categories
    matched = normalise_levels(pd.Series(present, dtype="str")).map(lookup)
    return as_text.map(dict(zip(present, matched, strict=True))).astype(object)


def encode_features(
    features: pd.DataFrame,
    names: list[str],
    categories: dict[str, list[str]],
    rows: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """The model's input frame: `names` in order, floats, and fixed categories (unseen → NaN).

    `rows` (a boolean mask) encodes only those rows, a column at a time: a fit on millions of
    rows never holds a second full copy of the feature table."""
    encoded: dict[str, pd.Categorical[str] | pd.Series] = {}
    mask = None if rows is None else np.asarray(rows, dtype=bool)
    for name in names:
        column = features[name] if mask is None else features[name][mask]
        if name in categories:
            encoded[name] = pd.Categorical(
                known_levels(column, categories[name]), categories=categories[name]
            )
        else:
            encoded[name] = pd.to_numeric(column, errors="raise").astype(float)
    index = features.index if mask is None else features.index[mask]
    return pd.DataFrame(encoded, index=index)


@dataclass(frozen=True)
class SlopeChoice:
    """The Platt slope of every out-of-fold row (`pooled`, from `rows` rows), of the recent
    rows (`recent`, with its 95 % deal-clustered interval) and the one used
    (`models/recent_calibration.py`)."""

    pooled: float
    recent: float
    recent_lo: float
    recent_hi: float
    used: float
    rows: int

    @property
    def source(self) -> str:
        """'pooled' when the map uses the pooled slope, else 'recent'."""
        return "pooled" if self.used == self.pooled else "recent"

    @property
    def recent_differs(self) -> bool:
        """The recent rows' 95 % interval excludes the pooled slope: a sign the score's
        relation to outcomes moved (or a 1-in-20 chance), logged, not acted on."""
        return not self.recent_lo <= self.pooled <= self.recent_hi


@dataclass(frozen=True)
class RawScoreCalibrator:
    """P(won) from the raw score (log-odds): Platt's sigmoid, expit(`slope`·raw + `intercept`),
    or isotonic regression, the step-wise linear map through (`x`, `y`) clipped at both ends.
    Plain numbers read from the fitted scikit-learn estimator (`models/training.py`), so the
    model is stored as JSON."""

    method: str
    slope: float = 1.0
    intercept: float = 0.0
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()

    def predict(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=float)
        if self.method == "sigmoid":
            return np.asarray(expit(raw * self.slope + self.intercept), dtype=float)
        xs, ys = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
        return np.clip(np.interp(raw, xs, ys), 0.0, 1.0)


def blend_scores(booster_raw: np.ndarray, linear_raw: np.ndarray, weight: float) -> np.ndarray:
    """`weight`·booster + (1 − `weight`)·linear, both in log-odds; weight 1 is the booster's
    score itself and 0 the linear one's (the other part is not even read)."""
    if weight >= 1.0:
        return np.asarray(booster_raw, dtype=float)
    if weight <= 0.0:
        return np.asarray(linear_raw, dtype=float)
    return weight * np.asarray(booster_raw, dtype=float) + (1.0 - weight) * np.asarray(linear_raw)


@dataclass(frozen=True)
class CloseModel:
    """Everything needed to score feature rows: spec, column order, categories, the booster,
    the optional linear part (a `fit_logistic` pipeline on the encoded frame, None for a
    booster alone), the blend weight of the booster (1.0: booster only; 0.0: linear only),
    the calibrator of the blended raw score and the health reference of its training rows."""

    spec: FeatureSpec
    feature_names: list[str]
    categories: dict[str, list[str]]
    booster: lgb.LGBMClassifier | lgb.Booster
    calibrator: RawScoreCalibrator
    calibration_method: str
    linear: LinearPart | None = None
    blend_weight: float = 1.0
    # The health reference of the training rows (models/health.py): plain JSON-able values;
    # None for models trained before it existed.
    reference: dict[str, Any] | None = None
    # How the calibrator's slope was chosen, for the training run's record; None for an
    # isotonic or recent-only map and for a model read back (it is not stored with the model).
    slope_choice: SlopeChoice | None = None

    def encode(self, features: pd.DataFrame) -> pd.DataFrame:
        return encode_features(features, self.feature_names, self.categories)

    @property
    def trees(self) -> lgb.Booster:
        """LightGBM's Booster: the fitted classifier's, or the one read from model text."""
        return (
            self.booster.booster_ if isinstance(self.booster, lgb.LGBMClassifier) else self.booster
        )

    @property
    def uses_linear(self) -> bool:
        return self.linear is not None and self.blend_weight < 1.0

    def raw_score(self, encoded: pd.DataFrame) -> np.ndarray:
        """The raw score (log-odds) of encoded rows: the booster's, or with a linear part
        `blend_weight`·booster + (1 − `blend_weight`)·logistic regression."""
        if not self.uses_linear:
            return np.asarray(self.booster.predict(encoded, raw_score=True), dtype=float)
        assert self.linear is not None
        linear = self.linear.logit(encoded)
        if self.blend_weight <= 0.0:
            return linear
        booster = np.asarray(self.booster.predict(encoded, raw_score=True), dtype=float)
        return blend_scores(booster, linear, self.blend_weight)

    def raw_score_of(self, features: pd.DataFrame) -> np.ndarray:
        """`raw_score` of a feature frame, encoded and scored PREDICT_CHUNK_ROWS rows at a time
        (each row's score depends on that row alone): a frame of millions of rows is never
        held encoded whole, nor as LightGBM's float copy of it."""
        if len(features) <= PREDICT_CHUNK_ROWS:
            return self.raw_score(self.encode(features))
        return np.concatenate(
            [
                self.raw_score(self.encode(features.iloc[start : start + PREDICT_CHUNK_ROWS]))
                for start in range(0, len(features), PREDICT_CHUNK_ROWS)
            ]
        )

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within the horizon) per row of a feature frame."""
        return self.proba_from_raw(self.raw_score_of(features))

    def contributions(self, encoded: pd.DataFrame) -> np.ndarray:
        """Per-feature log-odds contributions to the uncalibrated `raw_score` of encoded rows:
        one column per feature, then the bias; each row sums to `raw_score`. For the booster,
        LightGBM's `pred_contrib` (TreeSHAP); for the linear part, each feature's terms times
        its coefficients (the intercept in the bias); a blend weighs the two as `raw_score`
        does, so a reason explains the deployed blend, not either part alone."""
        if not self.uses_linear:
            return np.asarray(self.booster.predict(encoded, pred_contrib=True), dtype=float)
        assert self.linear is not None
        linear = self.linear.contributions(encoded)
        if self.blend_weight <= 0.0:
            return linear
        booster = np.asarray(self.booster.predict(encoded, pred_contrib=True), dtype=float)
        return blend_scores(booster, linear, self.blend_weight)

    def proba_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from raw scores (log-odds), e.g. the row sums of
        `contributions`, without walking the trees again: the calibrator was fitted on
        exactly this raw score, so this equals `predict_proba`."""
        return self.calibrator.predict(np.asarray(raw, dtype=float))

    def predict_both(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated, uncalibrated) probabilities per row, walking the trees once."""
        raw = self.raw_score_of(features)
        return self.proba_from_raw(raw), expit(raw)
