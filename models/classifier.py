"""The close-probability classifier: LightGBM with native categoricals, then calibration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from closeprob.features.attributes import normalise_levels
from closeprob.features.spec import FeatureSpec


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
    features: pd.DataFrame, names: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """The model's input frame: `names` in order, floats, and fixed categories (unseen → NaN)."""
    encoded: dict[str, pd.Categorical[str] | pd.Series] = {}
    for name in names:
        column = features[name]
        if name in categories:
            encoded[name] = pd.Categorical(
                known_levels(column, categories[name]), categories=categories[name]
            )
        else:
            encoded[name] = pd.to_numeric(column, errors="raise").astype(float)
    return pd.DataFrame(encoded, index=features.index)


def fit_classifier(
    train_x: pd.DataFrame,
    train_y: pd.Series,
    valid_x: pd.DataFrame,
    valid_y: pd.Series,
    params: dict[str, Any],
    seed: int,
) -> lgb.LGBMClassifier:
    """LightGBM fitted on the training slice, stopped early on the later validation slice.

    No class weights and no `is_unbalance`: they distort probabilities. Deterministic for a seed
    and a thread count.
    """
    classifier = lgb.LGBMClassifier(
        objective="binary",
        n_estimators=params["max_estimators"],
        learning_rate=params["learning_rate"],
        num_leaves=params["num_leaves"],
        min_child_samples=params["min_child_samples"],
        colsample_bytree=params["feature_fraction"],
        subsample=params["bagging_fraction"],
        subsample_freq=params["bagging_freq"],
        reg_lambda=params["lambda_l2"],
        n_jobs=params["n_jobs"],
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    classifier.fit(
        train_x,
        train_y,
        eval_X=(valid_x,),
        eval_y=(valid_y,),
        eval_metric="binary_logloss",
        callbacks=[lgb.early_stopping(params["early_stopping_rounds"], verbose=False)],
    )
    return classifier


def calibrate_classifier(
    classifier: lgb.LGBMClassifier,
    calib_x: pd.DataFrame,
    calib_y: pd.Series,
    method: Literal["isotonic", "sigmoid"],
) -> CalibratedClassifierCV:
    """Calibration fitted on the calibration slice only; the fitted booster stays frozen."""
    calibrated = CalibratedClassifierCV(FrozenEstimator(classifier), method=method)
    return calibrated.fit(calib_x, calib_y)


@dataclass(frozen=True)
class CloseModel:
    """Everything needed to score feature rows: spec, column order, categories, fitted models."""

    spec: FeatureSpec
    feature_names: list[str]
    categories: dict[str, list[str]]
    booster: lgb.LGBMClassifier
    calibrated: CalibratedClassifierCV
    calibration_method: str

    def encode(self, features: pd.DataFrame) -> pd.DataFrame:
        return encode_features(features, self.feature_names, self.categories)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated P(won within the horizon) per row of a feature frame."""
        return self.calibrated.predict_proba(self.encode(features))[:, 1]

    def contributions(self, encoded: pd.DataFrame) -> np.ndarray:
        """LightGBM `pred_contrib` of the uncalibrated booster on encoded rows: one log-odds
        column per feature, then the bias; each row sums to the booster's raw score."""
        return np.asarray(self.booster.predict(encoded, pred_contrib=True))

    def proba_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from the booster's raw scores (log-odds), e.g. the row sums
        of `contributions`, without walking the trees again. Equal to `predict_proba`: the
        calibrator sees what `CalibratedClassifierCV` feeds it, the booster's decision_function,
        which is the raw score."""
        (fitted,) = self.calibrated.calibrated_classifiers_
        proba = np.asarray(fitted.calibrators[0].predict(raw), dtype=float)
        proba[(proba > 1.0) & (proba <= 1.0 + 1e-5)] = 1.0
        return proba

    def predict_both(self, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated, uncalibrated) probabilities per row, walking the trees once."""
        raw = np.asarray(self.booster.predict(self.encode(features), raw_score=True))
        return self.proba_from_raw(raw), expit(raw)
