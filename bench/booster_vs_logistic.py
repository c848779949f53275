"""Why does the logistic baseline match or beat the booster on some data sets? Every candidate
is fitted on the evaluation split's train slice, calibrated (Platt) on its calibration slice and
scored on its test slice, exactly as `closeprob results` scores the model; nothing is logged.

    .venv/bin/python bench/booster_vs_logistic.py configs/default.yaml configs/bank_marketing.yaml

Candidates: the booster as `train` fits it (early-stopped on validation); `linear_tree: true`;
the logistic baseline as `results` scores it (raw features, its own probabilities, not
recalibrated); the logistic on the model's encoded frame, calibrated like the booster; log-odds
blends w·booster + (1−w)·logistic; the booster at the tree count that would have been best on
the test slice (diagnosis only: it looks at test labels). Then the weight each slice would
choose, and the numeric features whose test values leave the training range (trees predict a
constant beyond the last split; a linear term keeps going).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.models.baselines import fit_logistic, logistic_logit, predict_logistic
from closeprob.models.classifier import blend_scores, encode_features, fit_categories
from closeprob.models.training import (
    choose_blend_weight,
    fit_calibrator,
    fit_early_stopped,
    tree_count,
)
from closeprob.pipeline.config import load_config, named_columns
from closeprob.pipeline.core import PolicyScores
from closeprob.pipeline.dataset import load_dataset
from closeprob.pipeline.evaluation import expected_values, row_values, test_metrics
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import fit_deal_value_model, fit_params, prepare_training_data

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def out_of_range(encoded: pd.DataFrame, train: pd.Series, test: pd.Series) -> pd.Series:
    """Share of test rows above the largest (or below the smallest) training value, per numeric
    feature."""
    numeric = encoded.select_dtypes("number")
    low, high = numeric[train].min(), numeric[train].max()
    beyond = numeric[test].gt(high) | numeric[test].lt(low)
    return beyond.mean().sort_values(ascending=False)


def measure(path: str) -> None:
    config = load_config(Path(path))
    ensure_data(config)
    dataset = load_dataset(config.data, named_columns(config))
    data = prepare_training_data(dataset, config)
    names = list(feature_descriptions(data.spec))
    categorical = categorical_features(data.spec)
    train, valid = data.rows("train"), data.rows("validation")
    calib, test = data.rows("calibration"), data.rows("test")
    categories = fit_categories(data.features[train], categorical)
    encoded = encode_features(data.features, names, categories)
    labels = data.labels
    params = fit_params(data, config)
    value_model = fit_deal_value_model(dataset.deals, data, config)
    values = row_values(dataset.deals, data.features["deal_id"], value_model)[test.to_numpy()]
    capacity = config.evaluation.capacity

    def fit_booster(extra: dict[str, object]):
        return fit_early_stopped(
            encoded[train],
            labels[train],
            encoded[valid],
            labels[valid],
            params | extra,
            config.seed,
        )

    booster = fit_booster({})
    linear_trees = fit_booster({"linear_tree": True})
    logistic = fit_logistic(encoded[train], labels[train], categorical, config.seed)
    b_raw = np.asarray(booster.predict(encoded, raw_score=True), dtype=float)
    lt_raw = np.asarray(linear_trees.predict(encoded, raw_score=True), dtype=float)
    l_raw = logistic_logit(logistic, encoded, categorical)

    def scored(raw: np.ndarray) -> dict[str, float]:
        calibrator = fit_calibrator(raw[calib], labels[calib].to_numpy(), "sigmoid")
        p = calibrator.predict(raw[test])
        return test_metrics(data, PolicyScores("", p, expected_values(p, values)), values, capacity)

    rows: dict[str, dict[str, float]] = {}
    rows[f"booster ({tree_count(booster)} trees)"] = scored(b_raw)
    rows[f"linear_tree ({tree_count(linear_trees)} trees)"] = scored(lt_raw)
    baseline_logistic = fit_logistic(
        data.features.loc[train, names], labels[train], categorical, config.seed
    )
    p_base = predict_logistic(baseline_logistic, data.features.loc[test, names], categorical)
    rows["logistic as `results` (uncalibrated)"] = test_metrics(
        data, PolicyScores("", p_base, expected_values(p_base, values)), values, capacity
    )
    for w in WEIGHTS:
        rows[f"blend w={w:.2f}"] = scored(blend_scores(b_raw, l_raw, w))
    best_trees, best_loss = 0, np.inf
    for trees in np.unique(np.geomspace(10, max(booster.n_estimators_, 11), 15).astype(int)):
        raw = np.asarray(booster.predict(encoded, raw_score=True, num_iteration=int(trees)))
        loss = scored(raw)["test_log_loss"]
        if loss < best_loss:
            best_trees, best_loss = int(trees), loss
    best_raw = np.asarray(booster.predict(encoded, raw_score=True, num_iteration=best_trees))
    rows[f"booster at test-best {best_trees} trees (peeks)"] = scored(best_raw)
    print(
        f"\n{path}: {int(train.sum()):,} train, {int(valid.sum()):,} validation, "
        f"{int(calib.sum()):,} calibration, {int(test.sum()):,} test rows; "
        f"test positive rate {labels[test].mean():.3f}"
    )
    print(f"  {'candidate':<44}{'roc_auc':>8}{'log_loss':>10}{'value@cap':>11}")
    for name, m in rows.items():
        print(
            f"  {name:<44}{m['test_roc_auc']:>8.4f}{m['test_log_loss']:>10.4f}"
            f"{m['test_value_captured_at_capacity']:>11.4f}"
        )
    for slice_name, mask in (("validation", valid), ("calibration", calib), ("test", test)):
        w = choose_blend_weight(b_raw[mask], l_raw[mask], labels[mask].to_numpy())
        print(f"  weight chosen on the {slice_name} slice: {w:.2f}")
    beyond = out_of_range(encoded, train, test)
    shown = ", ".join(f"{name} {share:.0%}" for name, share in beyond.head(6).items())
    print(f"  test rows outside the training range: {shown}")


def main(paths: list[str]) -> None:
    warnings.simplefilter("ignore")
    for path in paths:
        measure(path)


if __name__ == "__main__":
    main(sys.argv[1:] or ["configs/default.yaml"])
