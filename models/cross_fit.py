"""The deployed model's calibration by cross-fitting: every recent labelled deal calibrates it,
each scored by a copy of the model that never saw that deal, and no calibration row ever
early-stops a booster.

Frames and masks in, a fitted `CloseModel` out; no config, no disk, no MLflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from closeprob.features.spec import FeatureSpec
from closeprob.models.classifier import (
    PREDICT_CHUNK_ROWS,
    CloseModel,
    blend_scores,
    encode_features,
    fit_categories,
)
from closeprob.models.linear import linear_part_from_pipeline
from closeprob.models.recent_calibration import fit_recent_calibrator
from closeprob.models.split import deal_buckets
from closeprob.models.training import fit_fixed_trees, fit_linear_part, sample_rows


def calibration_folds(deal_ids: pd.Series, folds: int) -> np.ndarray:
    """A fold 0..`folds`−1 per row, by the stable hash bucket of its deal (`deal_buckets`):
    a deal's rows share a fold in every run."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds!r}")
    return deal_buckets(deal_ids) % folds


def fit_cross_fitted_model(
    features: pd.DataFrame,
    labels: pd.Series,
    fit: pd.Series,
    calibration: pd.Series,
    spec: FeatureSpec,
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    n_estimators: int,
    seed: int,
    method: str,
    blend_weight: float,
    folds: int,
    pool_slope: bool = True,
    logistic_rows: int | None = None,
    booster_rows: int | None = None,
    judged: pd.Series | None = None,
) -> CloseModel:
    """The model to deploy: booster (`n_estimators` trees, no early stopping) and, below blend
    weight 1, the logistic regression, fitted on every `fit` row; its calibrator fitted on the
    out-of-fold raw scores of every `calibration` row (the recent labelled deals).

    The calibration deals fall into `folds` groups by a stable hash of `deal_id`; a group's
    rows are scored by the same recipe fitted on the `fit` rows of every other deal (all of
    the group's deals' rows, at any date, left out). So no calibration row is scored by a
    model that saw its deal, every recent deal calibrates (not a hash slice of them), and the
    calibrator maps the raw score of a model fitted as the deployed one is.

    With `pool_slope` (sigmoid only) every `fit` row is scored out of fold the same way, and
    Platt's slope comes from all of them; the intercept always from the recent rows
    (`models/recent_calibration.py`).

    `judged` marks the rows that judged the rolling-origin folds (`Selection.judged_rows`):
    they early-stopped the boosters whose mean tree count this model grows and weighed its
    blend, so they fit neither the slope nor the intercept."""
    scored, recent = map_rows(fit, calibration, judged, pool_slope and method == "sigmoid")
    raw = out_of_fold_raw(
        features,
        labels,
        fit,
        scored,
        names,
        categorical,
        params,
        n_estimators,
        seed,
        blend_weight,
        folds,
        logistic_rows,
        booster_rows,
    )
    booster, linear, categories = _fit_parts(
        features,
        labels,
        fit,
        names,
        categorical,
        params,
        n_estimators,
        seed,
        blend_weight,
        logistic_rows,
        booster_rows,
    )
    calibrator, choice = fit_recent_calibrator(
        raw,
        labels[scored].to_numpy(),
        recent[scored].to_numpy(),
        features.loc[scored, "deal_id"].to_numpy(),
        method,
        pool_slope,
    )
    return CloseModel(
        spec=spec,
        feature_names=list(names),
        categories=categories,
        booster=booster,
        calibrator=calibrator,
        calibration_method=method,
        linear=linear,
        blend_weight=float(blend_weight) if linear is not None else 1.0,
        slope_choice=choice,
    )


def map_rows(
    fit: pd.Series, calibration: pd.Series, judged: pd.Series | None, pooled: bool
) -> tuple[pd.Series, pd.Series]:
    """The rows scored out of fold for the calibration map (every `fit` row when the slope is
    `pooled`, else the `calibration` rows) and the recent rows among them (the intercept's),
    both without the `judged` rows (those that chose the tree count and blend weight)."""
    left = ~judged if judged is not None else pd.Series(True, index=fit.index)
    recent = calibration & left
    if not bool(recent.any()):
        raise ValueError(
            f"all {int(calibration.sum())} calibration rows chose the tree count (rolling-origin "
            "validation), so none may fit the calibration map; use a longer history or fewer "
            "split.selection_folds"
        )
    return ((fit & left) | recent if pooled else recent), recent


def out_of_fold_raw(
    features: pd.DataFrame,
    labels: pd.Series,
    fit: pd.Series,
    calibration: pd.Series,
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    n_estimators: int,
    seed: int,
    blend_weight: float,
    folds: int,
    logistic_rows: int | None = None,
    booster_rows: int | None = None,
) -> np.ndarray:
    """The raw score of each `calibration` row (in row order) by the model recipe fitted on
    the `fit` rows of every deal outside its fold: no row's score depends on its deal's
    labels."""
    calibrating = calibration.to_numpy(dtype=bool)
    fold = np.full(len(features), -1)
    fold[calibrating] = calibration_folds(features.loc[calibration, "deal_id"], folds)
    out_of_fold = np.full(len(features), np.nan)
    for number in range(folds):
        scored = pd.Series(fold == number, index=features.index)
        if not scored.any():
            continue
        held_deals = features.loc[scored, "deal_id"].unique()
        fold_fit = fit & ~features["deal_id"].isin(held_deals)
        parts = _fit_parts(
            features,
            labels,
            fold_fit,
            names,
            categorical,
            params,
            n_estimators,
            seed,
            blend_weight,
            logistic_rows,
            booster_rows,
        )
        out_of_fold[scored.to_numpy()] = _raw_score(parts, features, scored, names, blend_weight)
    return out_of_fold[calibrating]


Parts = tuple[Any, Any, dict[str, list[str]]]


def _fit_parts(
    features: pd.DataFrame,
    labels: pd.Series,
    rows: pd.Series,
    names: list[str],
    categorical: list[str],
    params: dict[str, Any],
    n_estimators: int,
    seed: int,
    blend_weight: float,
    logistic_rows: int | None = None,
    booster_rows: int | None = None,
) -> Parts:
    """Booster, linear part as its numbers (None at blend weight 1) and categories fitted on
    `rows`, or on a seeded sample of `booster_rows` of them when there are more
    (`sample_rows`; the logistic regression on at most `logistic_rows` of those)."""
    rows = sample_rows(rows, booster_rows, seed)
    categories = fit_categories(features.loc[rows, categorical], categorical)
    x = encode_features(features, names, categories, rows)
    y = labels[rows]
    booster = fit_fixed_trees(x, y, params, n_estimators, seed)
    pipeline = fit_linear_part(x, y, categorical, seed, blend_weight, logistic_rows)
    part = None if pipeline is None else linear_part_from_pipeline(pipeline, list(categories))
    return booster, part, categories


def _raw_score(
    parts: Parts, features: pd.DataFrame, rows: pd.Series, names: list[str], blend_weight: float
) -> np.ndarray:
    """The raw score as the model computes it (booster, blended with the linear part's logit)
    of the `rows` in row order, PREDICT_CHUNK_ROWS at a time (a row's score depends on that
    row alone): millions of scored rows are never held encoded at once."""
    positions = np.flatnonzero(rows.to_numpy(dtype=bool))
    pieces = []
    for start in range(0, len(positions), PREDICT_CHUNK_ROWS):
        chunk = np.zeros(len(features), dtype=bool)
        chunk[positions[start : start + PREDICT_CHUNK_ROWS]] = True
        pieces.append(_chunk_raw_score(parts, features, chunk, names, blend_weight))
    return np.concatenate(pieces) if pieces else np.empty(0)


def _chunk_raw_score(
    parts: Parts, features: pd.DataFrame, rows: np.ndarray, names: list[str], blend_weight: float
) -> np.ndarray:
    booster, part, categories = parts
    x = encode_features(features, names, categories, rows)
    raw = np.asarray(booster.predict(x, raw_score=True), dtype=float)
    if part is None:
        return raw
    return blend_scores(raw, part.logit(x), blend_weight)
