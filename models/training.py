"""Fitting and calibration as one unit: LightGBM on encoded snapshot rows with a capacity that
follows the row count, then a public scikit-learn calibrator on the booster's raw score.

Frames and arrays in, fitted objects out; no config, no disk, no MLflow.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import (
    CloseModel,
    RawScoreCalibrator,
    encode_features,
    fit_categories,
)

# LightGBM's names of the early-stopping patience; only its validation fit uses one.
EARLY_STOPPING_KEYS = ("early_stopping_round", "early_stopping_rounds", "early_stopping")
ROWS_PER_LEAF = 20  # a leaf holds at least 1/20 of the rows, or the configured minimum if smaller
MIN_PATIENCE = 20


def capacity_for_rows(params: dict[str, Any], n_rows: int) -> dict[str, Any]:
    """LightGBM parameters whose capacity follows the training row count.

    - `min_child_samples`: min(configured, rows / 20), at least 2, so ~200 rows still split;
    - `num_leaves`: at most rows / (2 · min_child_samples), at least 2;
    - the early-stopping patience: min(configured, max(20, rows / 10)).
    Everything else passes through unchanged, under LightGBM's own names.
    """
    scaled = dict(params)
    min_child = max(2, min(int(params["min_child_samples"]), n_rows // ROWS_PER_LEAF))
    scaled["min_child_samples"] = min_child
    scaled["num_leaves"] = max(2, min(int(params["num_leaves"]), n_rows // (2 * min_child)))
    for key in EARLY_STOPPING_KEYS:
        if key in params:
            scaled[key] = max(1, min(int(params[key]), max(MIN_PATIENCE, n_rows // 10)))
    return scaled


def _classifier(params: dict[str, Any], seed: int) -> lgb.LGBMClassifier:
    """No class weights and no `is_unbalance`: they distort probabilities. Deterministic for a
    seed and a thread count."""
    return lgb.LGBMClassifier(
        objective="binary",
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
        **params,
    )


def fit_early_stopped(
    train_x: pd.DataFrame,
    train_y: pd.Series,
    valid_x: pd.DataFrame,
    valid_y: pd.Series,
    params: dict[str, Any],
    seed: int,
) -> lgb.LGBMClassifier:
    """LightGBM fitted on the training rows, stopped early (LightGBM's `early_stopping_round`)
    on the later validation rows by log loss; capacity scaled to the training row count."""
    classifier = _classifier(capacity_for_rows(params, len(train_x)), seed)
    return classifier.fit(
        train_x, train_y, eval_X=(valid_x,), eval_y=(valid_y,), eval_metric="binary_logloss"
    )


def fit_fixed_trees(
    x: pd.DataFrame, y: pd.Series, params: dict[str, Any], n_estimators: int, seed: int
) -> lgb.LGBMClassifier:
    """LightGBM fitted on all of `x` with a fixed tree count (no validation rows, no early
    stopping); capacity scaled to the row count."""
    fixed = {k: v for k, v in params.items() if k not in EARLY_STOPPING_KEYS}
    fixed["n_estimators"] = int(n_estimators)
    return _classifier(capacity_for_rows(fixed, len(x)), seed).fit(x, y)


def tree_count(booster: lgb.LGBMClassifier) -> int:
    """Trees the booster uses: the early-stopping choice, else all it grew."""
    return int(booster.best_iteration_ or booster.n_estimators_)


def split_count(booster: lgb.LGBMClassifier) -> int:
    """How many splits all trees together make; 0 is a constant model."""
    return int(booster.booster_.feature_importance("split").sum())


def fit_calibrator(raw: np.ndarray, labels: np.ndarray, method: str) -> RawScoreCalibrator:
    """A calibrator on the booster's raw score: Platt's sigmoid (an unpenalised logistic
    regression on the raw margin) or isotonic regression (clipped outside the fitted range)."""
    raw, labels = np.asarray(raw, dtype=float), np.asarray(labels, dtype=int)
    if method == "sigmoid":
        logistic = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
        return RawScoreCalibrator(method, logistic.fit(raw.reshape(-1, 1), labels))
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return RawScoreCalibrator(method, isotonic.fit(raw, labels))
    raise ValueError(f"calibration method {method!r} is not 'sigmoid' or 'isotonic'")


def calibrate_booster(
    booster: lgb.LGBMClassifier,
    calib_x: pd.DataFrame,
    calib_y: pd.Series,
    method: str,
    spec: FeatureSpec,
    categories: dict[str, list[str]],
) -> CloseModel:
    """The booster frozen, its raw score calibrated on rows it was not fitted on."""
    raw = np.asarray(booster.predict(calib_x, raw_score=True), dtype=float)
    return CloseModel(
        spec=spec,
        feature_names=list(calib_x.columns),
        categories=categories,
        booster=booster,
        calibrator=fit_calibrator(raw, calib_y.to_numpy(), method),
        calibration_method=method,
    )


def fit_evaluated_model(
    features: pd.DataFrame,
    labels: pd.Series,
    rows: dict[str, pd.Series],
    spec: FeatureSpec,
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    seed: int,
    method: str,
) -> CloseModel:
    """The model whose test metrics are reported: fitted on `rows['train']`, early-stopped on
    `rows['validation']`, calibrated on `rows['calibration']` (boolean masks over `features`)."""
    categories = fit_categories(features[rows["train"]], categorical)
    encoded = encode_features(features, names, categories)
    booster = fit_early_stopped(
        encoded[rows["train"]],
        labels[rows["train"]],
        encoded[rows["validation"]],
        labels[rows["validation"]],
        params,
        seed,
    )
    calibration = rows["calibration"]
    return calibrate_booster(
        booster, encoded[calibration], labels[calibration], method, spec, categories
    )


def fit_deployed_model(
    features: pd.DataFrame,
    labels: pd.Series,
    fit: pd.Series,
    calibration: pd.Series,
    spec: FeatureSpec,
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    n_estimators: int | None,
    seed: int,
    method: str,
) -> CloseModel:
    """The model that gets deployed: the same parameters fitted on every `fit` row, with a
    fixed tree count, or (None) early-stopped on the `calibration` rows; then calibrated on
    the `calibration` rows (disjoint from `fit`)."""
    categories = fit_categories(features[fit], categorical)
    encoded = encode_features(features, names, categories)
    if n_estimators is None:
        booster = fit_early_stopped(
            encoded[fit], labels[fit], encoded[calibration], labels[calibration], params, seed
        )
    else:
        booster = fit_fixed_trees(encoded[fit], labels[fit], params, n_estimators, seed)
    return calibrate_booster(
        booster, encoded[calibration], labels[calibration], method, spec, categories
    )
