"""Fitting and calibration as one unit: LightGBM on encoded snapshot rows with a capacity that
follows the row count, a logistic regression on the same rows, their log-odds blend weighted on
the validation rows, then a public scikit-learn calibrator on the blended raw score.

Frames and arrays in, fitted objects out; no config, no disk, no MLflow.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline

from closeprob.features.spec import FeatureSpec
from closeprob.models.baselines import fit_logistic, logistic_logit
from closeprob.models.classifier import (
    CloseModel,
    RawScoreCalibrator,
    blend_scores,
    encode_features,
    fit_categories,
)
from closeprob.models.linear import NumericTerm, linear_part_from_pipeline

# LightGBM's names of the early-stopping patience; only its validation fit uses one.
EARLY_STOPPING_KEYS = ("early_stopping_round", "early_stopping_rounds", "early_stopping")
ROWS_PER_LEAF = 20  # a leaf holds at least 1/20 of the rows, or the configured minimum if smaller
MIN_PATIENCE = 20
# The booster's weight in the log-odds blend: 1.0 (booster alone) first, so a tie keeps it.
BLEND_WEIGHTS = tuple(np.round(np.linspace(1.0, 0.0, 11), 2))


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


def pace_for_rows(
    params: dict[str, Any], n_rows: int, reference_rows: int, max_rate: float | None
) -> dict[str, Any]:
    """LightGBM parameters whose learning rate follows the run's fit row count.

    `max_rate` None: the parameters as configured, at every size. Otherwise, up to
    `reference_rows` rows: `learning_rate` as configured. Above: learning_rate ·
    sqrt(rows / reference_rows), at most `max_rate` (never below the configured rate). The
    tree cap `n_estimators` and the early-stopping patience shrink by the same factor, so
    early stopping waits the same learning distance (trees × rate) and the cap allows the
    same. With more rows each tree's leaf values are estimated from more data, so larger steps
    cost no accuracy, and the trees early stopping asks for (each one's cost grows with the
    rows) stop growing with the rows (docs/performance.md: what is measured and what is not yet).
    """
    if max_rate is None:
        return dict(params)
    rate = float(params["learning_rate"])
    faster = min(max(rate, rate * (n_rows / reference_rows) ** 0.5), max(rate, max_rate))
    paced = dict(params)
    paced["learning_rate"] = faster
    scale = rate / faster
    paced["n_estimators"] = max(1, round(int(params["n_estimators"]) * scale))
    for key in EARLY_STOPPING_KEYS:
        if key in params:
            paced[key] = max(1, round(int(params[key]) * scale))
    return paced


def sample_rows(rows: pd.Series, max_rows: int | None, seed: int) -> pd.Series:
    """The boolean mask `rows` with at most `max_rows` of its rows kept: all of them when
    `max_rows` is None or not below their count, else that many drawn without replacement by
    a generator seeded with `seed` (the same rows on every machine)."""
    chosen = np.flatnonzero(rows.to_numpy(dtype=bool))
    if max_rows is None or len(chosen) <= max_rows:
        return rows
    kept = np.random.default_rng(seed).choice(chosen, size=max_rows, replace=False)
    sampled = np.zeros(len(rows), dtype=bool)
    sampled[kept] = True
    return pd.Series(sampled, index=rows.index)


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


def tree_count(booster: lgb.LGBMClassifier | lgb.Booster) -> int:
    """Trees the booster uses: the early-stopping choice, else all it grew."""
    if isinstance(booster, lgb.Booster):  # a loaded model holds only the trees it uses
        return int(booster.num_trees())
    return int(booster.best_iteration_ or booster.n_estimators_)


def split_count(booster: lgb.LGBMClassifier | lgb.Booster) -> int:
    """How many splits all trees together make; 0 is a constant model."""
    trees = booster.booster_ if isinstance(booster, lgb.LGBMClassifier) else booster
    return int(trees.feature_importance("split").sum())


def fit_calibrator(raw: np.ndarray, labels: np.ndarray, method: str) -> RawScoreCalibrator:
    """A calibrator on the booster's raw score: Platt's sigmoid (an unpenalised logistic
    regression on the raw margin, its slope constrained to be >= 0) or isotonic regression
    (clipped outside the fitted range), fitted by scikit-learn and kept as its fitted numbers;
    both maps are monotone non-decreasing, so calibration never reverses the model's ranking."""
    raw, labels = np.asarray(raw, dtype=float), np.asarray(labels, dtype=int)
    if method == "sigmoid":
        logistic = fit_platt(raw, labels)
        slope, intercept = float(logistic.coef_[0, 0]), float(logistic.intercept_[0])
        return RawScoreCalibrator(method, slope=slope, intercept=intercept)
    if method == "isotonic":
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(raw, labels)
        x = tuple(float(v) for v in isotonic.X_thresholds_)
        return RawScoreCalibrator(method, x=x, y=tuple(float(v) for v in isotonic.y_thresholds_))
    raise ValueError(f"calibration method {method!r} is not 'sigmoid' or 'isotonic'")


def fit_platt(raw: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    """Platt's map with its slope constrained to >= 0. The log loss is convex in (intercept,
    slope), so when the unconstrained slope comes out negative (a score that ranks backwards
    on these rows: noise, or shuffled labels) the constrained optimum lies on slope = 0: the
    rows' base rate for every score, which a regression on a constant column fits exactly."""
    logistic = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    fitted = logistic.fit(raw.reshape(-1, 1), labels)
    if float(fitted.coef_[0, 0]) > 0.0:
        return fitted
    flat = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)
    return flat.fit(np.zeros((len(raw), 1)), labels)


def calibrate_booster(
    booster: lgb.LGBMClassifier,
    calib_x: pd.DataFrame,
    calib_y: pd.Series,
    method: str,
    spec: FeatureSpec,
    categories: dict[str, list[str]],
    linear: Pipeline | None = None,
    blend_weight: float = 1.0,
) -> CloseModel:
    """The booster (blended with `linear` at `blend_weight`, if given) frozen, its raw score
    calibrated on rows it was not fitted on. The logistic part is kept as its numbers
    (`models/linear.py`), and the calibration is fitted on the raw score the model computes."""
    part = None
    if linear is not None and blend_weight < 1.0:
        part = linear_part_from_pipeline(linear, list(categories))
    raw = np.asarray(booster.predict(calib_x, raw_score=True), dtype=float)
    if part is not None:
        raw = blend_scores(raw, part.logit(calib_x), blend_weight)
    return CloseModel(
        spec=spec,
        feature_names=list(calib_x.columns),
        categories=categories,
        booster=booster,
        calibrator=fit_calibrator(raw, calib_y.to_numpy(), method),
        calibration_method=method,
        linear=part,
        blend_weight=float(blend_weight) if part is not None else 1.0,
    )


def fit_linear_part(
    x: pd.DataFrame,
    y: pd.Series,
    categorical: list[str],
    seed: int,
    blend_weight: float,
    logistic_rows: int | None = None,
) -> Pipeline | None:
    """The logistic regression (`fit_logistic`, on at most `logistic_rows` sampled rows) on
    encoded rows, or None when the blend does not use it (`blend_weight` 1.0)."""
    if blend_weight >= 1.0:
        return None
    return fit_logistic(x, y, categorical, seed, logistic_rows)


def choose_blend_weight(
    booster_raw: np.ndarray, linear_raw: np.ndarray, labels: np.ndarray
) -> float:
    """The booster's weight in BLEND_WEIGHTS whose blended raw score, once Platt-scaled on these
    rows (as calibration will), has the lowest log loss on them; the first (booster alone)
    wins a tie. Only for rows neither part was fitted on."""
    losses = blend_losses(booster_raw, linear_raw, labels)
    return float(BLEND_WEIGHTS[int(np.argmin(np.round(losses, 6)))])


def blend_losses(booster_raw: np.ndarray, linear_raw: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Log loss on these rows of each weight in BLEND_WEIGHTS, the blended raw score
    Platt-scaled on the same rows (as calibration will)."""
    labels = np.asarray(labels, dtype=int)
    losses = []
    for weight in BLEND_WEIGHTS:
        raw = blend_scores(booster_raw, linear_raw, weight)
        p = fit_calibrator(raw, labels, "sigmoid").predict(raw)
        losses.append(log_loss(labels, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
    return np.asarray(losses)


def varying_terms(model: CloseModel, encoded: pd.DataFrame) -> int:
    """Booster splits (if the booster has weight) plus linear terms that vary over `encoded`,
    the rows it was fitted on (if the linear part has weight): 0 is a constant model."""
    terms = split_count(model.booster) if model.blend_weight > 0.0 else 0
    if model.uses_linear:
        assert model.linear is not None
        terms += model.linear.varying_terms(encoded)
    return terms


def varying_terms_over(model: CloseModel, features: pd.DataFrame, rows: pd.Series) -> int:
    """`varying_terms` over the `rows` of a feature table (not yet encoded), encoding one
    column at a time: the same count without the encoded rows held whole (3.3 M rows: about
    5 GB at once, the frame and its consolidated copy)."""
    terms = split_count(model.booster) if model.blend_weight > 0.0 else 0
    if not model.uses_linear or not bool(rows.any()):
        return terms
    assert model.linear is not None
    for name, term in zip(model.feature_names, model.linear.features, strict=True):
        levels = {name: model.categories[name]} if name in model.categories else {}
        column = encode_features(features, [name], levels, rows)[name]
        if isinstance(term, NumericTerm):
            terms += term.varying(column.to_numpy(dtype=float))
        else:
            terms += term.varying(column)
    return terms


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
    logistic_rows: int | None = None,
) -> CloseModel:
    """The model whose test metrics are reported: booster and logistic regression fitted on
    `rows['train']`, the booster early-stopped on `rows['validation']`, the blend weight chosen
    there too (`choose_blend_weight`), the blend calibrated on `rows['calibration']` (boolean
    masks over `features`)."""
    train, validation = rows["train"], rows["validation"]
    categories = fit_categories(features.loc[train, categorical], categorical)
    train_x, valid_x = (
        encode_features(features, names, categories, r) for r in (train, validation)
    )
    booster = fit_early_stopped(train_x, labels[train], valid_x, labels[validation], params, seed)
    linear = fit_logistic(train_x, labels[train], categorical, seed, logistic_rows)
    weight = choose_blend_weight(
        np.asarray(booster.predict(valid_x, raw_score=True), dtype=float),
        logistic_logit(linear, valid_x, categorical),
        labels[validation].to_numpy(),
    )
    del train_x, valid_x
    calibration = rows["calibration"]
    return calibrate_booster(
        booster,
        encode_features(features, names, categories, calibration),
        labels[calibration],
        method,
        spec,
        categories,
        linear,
        weight,
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
    blend_weight: float = 1.0,
    logistic_rows: int | None = None,
) -> CloseModel:
    """The model that gets deployed: the same parameters fitted on every `fit` row, with a
    fixed tree count, or (None) early-stopped on the `calibration` rows; blended with a
    logistic regression on the same rows at `blend_weight` (the evaluated model's choice);
    then calibrated on the `calibration` rows (disjoint from `fit`)."""
    categories = fit_categories(features.loc[fit, categorical], categorical)
    # Only the rows each step needs, encoded a column at a time (3 M rows: ~2 GB less at peak).
    fit_x = encode_features(features, names, categories, fit)
    calib_x = encode_features(features, names, categories, calibration)
    if n_estimators is None:
        booster = fit_early_stopped(fit_x, labels[fit], calib_x, labels[calibration], params, seed)
    else:
        booster = fit_fixed_trees(fit_x, labels[fit], params, n_estimators, seed)
    linear = fit_linear_part(fit_x, labels[fit], categorical, seed, blend_weight, logistic_rows)
    del fit_x
    return calibrate_booster(
        booster,
        calib_x,
        labels[calibration],
        method,
        spec,
        categories,
        linear,
        blend_weight,
    )
