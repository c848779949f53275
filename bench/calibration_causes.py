"""Why is the test slice's calibration slope not 1? Each candidate calibration of the same
fitted model, measured on the test slice (intercept, slope, log loss, ROC-AUC), and the Platt
slope each calibration set asks for against the one the test rows ask for. Nothing is logged.

    .venv/bin/python bench/calibration_causes.py --datasets default,bpi2012 --cache /tmp/cc

Candidates (the booster and logistic parts are the evaluated model's: the selection's tree
count and blend weight, fitted on every slice before the test embargo):
- cross-fit: the deployed recipe (out-of-fold raw scores of the calibration slice);
- in-sample: Platt on the calibration slice scored by the model fitted on it;
- forward: Platt on the calibration slice scored by the recipe fitted on the train slice only
  (labels all known before the calibration slice starts), applied to the full model;
- oracle: Platt fitted on the test rows themselves (the map the test asks for; not a method);
- weights: the cross-fit calibration at other blend weights.
With a truth file (built-in data), the truth scored on the calibration and test slices and a
rolling-forward run of the slope each later run asks for.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.metrics import log_loss, roc_auc_score

from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.models.cross_fit import _fit_parts, _raw_score, out_of_fold_raw
from closeprob.models.training import fit_platt
from closeprob.models.yardsticks import intercept_and_slope, yardsticks_with_intervals
from closeprob.pipeline.config import load_config
from closeprob.pipeline.core import TrainingData
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.oracle import oracle_close_probability
from closeprob.pipeline.training import fit_params, prepare_training_data, select_model


def cached(path: Path, make: Any) -> Any:
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.write_bytes(pickle.dumps(value))
    return value


def platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    fitted = fit_platt(raw, y)
    return float(fitted.intercept_[0]), float(fitted.coef_[0, 0])


def platt_intercept(offset: np.ndarray, y: np.ndarray) -> float:
    """The intercept a of y ~ a + offset (slope fixed at 1 on the offset)."""
    from scipy.optimize import brentq

    return float(brentq(lambda a: float(np.sum(y - expit(a + offset))), -30.0, 30.0))


def describe(name: str, y: np.ndarray, p: np.ndarray, ab: tuple[float, float] | None) -> None:
    cal = intercept_and_slope(y, p)
    loss = log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    map_ = "" if ab is None else f"  map a={ab[0]:+.3f} b={ab[1]:.3f}"
    print(
        f"  {name:<28} intercept {cal['intercept']:+.3f} slope {cal['slope']:.3f} "
        f"log_loss {loss:.4f} auc {auc:.4f} mean_p {p.mean():.3f}{map_}",
        flush=True,
    )


def run(name: str, cache: Path) -> None:
    config = load_config(Path("configs") / f"{name}.yaml")
    ensure_data(config)
    data: TrainingData = cached(
        cache / f"{name}.data.pkl", lambda: prepare_training_data(load_job_data(config), config)
    )
    selection = cached(cache / f"{name}.sel.pkl", lambda: select_model(data, config))
    names = list(feature_descriptions(data.spec))
    categorical = categorical_features(data.spec)
    params = fit_params(data, config)
    features, labels = data.features, data.labels
    test, cal, train = data.rows("test"), data.rows("calibration"), data.rows("train")
    before = data.rows("train") | data.rows("validation") | cal
    y_test, y_cal = labels[test].to_numpy(), labels[cal].to_numpy()
    w, trees, seed = selection.blend_weight, selection.trees, config.seed
    print(
        f"{name}: rows train {int(train.sum())} cal {int(cal.sum())} test {int(test.sum())}; "
        f"won rate train {labels[train].mean():.3f} cal {y_cal.mean():.3f} "
        f"test {y_test.mean():.3f}; weight {w} trees {trees}",
        flush=True,
    )

    def calibrations(weight: float) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
        full = _fit_parts(features, labels, before, names, categorical, params, trees, seed, weight)
        raw_test = _raw_score(full, features, test, names, weight)
        oof = out_of_fold_raw(
            features,
            labels,
            before,
            cal,
            names,
            categorical,
            params,
            trees,
            seed,
            weight,
            config.calibration.folds,
        )
        in_sample = _raw_score(full, features, cal, names, weight)
        oof_all = out_of_fold_raw(
            features,
            labels,
            before,
            before,
            names,
            categorical,
            params,
            trees,
            seed,
            weight,
            config.calibration.folds,
        )
        y_all = labels[before].to_numpy()
        early = _fit_parts(features, labels, train, names, categorical, params, trees, seed, weight)
        forward = _raw_score(early, features, cal, names, weight)
        out = {}
        for label, raw_cal in (("cross-fit", oof), ("in-sample", in_sample), ("forward", forward)):
            ab = platt(raw_cal, y_cal)
            out[label] = (expit(ab[0] + ab[1] * raw_test), ab)
        ab_all = platt(oof_all, y_all)
        out["cross-fit, all pre-test"] = (expit(ab_all[0] + ab_all[1] * raw_test), ab_all)
        a_recent = platt_intercept(ab_all[1] * oof, y_cal)
        out["slope all, intercept cal"] = (
            expit(a_recent + ab_all[1] * raw_test),
            (a_recent, ab_all[1]),
        )
        out["oracle (test itself)"] = (
            expit(platt(raw_test, y_test)[0] + platt(raw_test, y_test)[1] * raw_test),
            platt(raw_test, y_test),
        )
        print(
            f"  raw score sd: cal oof {oof.std():.3f} in-sample {in_sample.std():.3f} "
            f"forward {forward.std():.3f} test {raw_test.std():.3f}"
        )
        return out

    for weight in sorted({w, 0.0, 1.0}):
        print(f" blend weight {weight}:")
        for label, (p, ab) in calibrations(weight).items():
            describe(label, y_test, p, ab)
    dataset = load_job_data(config)
    if dataset.truth is not None:
        truth_by_slice(data, dataset, config, trees)


def truth_by_slice(data: TrainingData, dataset: Any, config: Any, trees: int) -> None:
    """The generator's true probabilities scored like a model on the calibration and test
    slices, and, rolling forward over the history (a booster fitted on the dates a horizon
    before each run of 6 dates), the Platt slope each run asks for beside the truth's own."""
    features, labels = data.features, data.labels
    horizon = config.snapshots.horizon_days
    truth = oracle_close_probability(dataset.truth, features, dataset.deals, horizon).to_numpy()
    for name in ("calibration", "test"):
        rows = data.rows(name).to_numpy()
        figures = yardsticks_with_intervals(
            labels[rows].to_numpy(), truth[rows], features.loc[rows, "deal_id"].to_numpy(), 200, 42
        )
        print(
            f"  truth on the {name} slice: intercept {figures['intercept']:+.3f} "
            f"[{figures['intercept_lo']:+.3f}, {figures['intercept_hi']:+.3f}] slope "
            f"{figures['slope']:.3f} [{figures['slope_lo']:.3f}, {figures['slope_hi']:.3f}]"
        )
    names, categorical = list(feature_descriptions(data.spec)), categorical_features(data.spec)
    dates = pd.DatetimeIndex(sorted(features["as_of"].unique()))
    for start in range(30, len(dates) - 5, 6):
        run = dates[start : start + 6]
        fit = features["as_of"].isin(dates[dates + pd.Timedelta(days=horizon) < run[0]])
        scored = features["as_of"].isin(run)
        parts = _fit_parts(
            features, labels, fit, names, categorical, fit_params(data, config), trees, 42, 1.0
        )
        raw = _raw_score(parts, features, scored, names, 1.0)
        y = labels[scored].to_numpy()
        true_logit = logit(np.clip(truth[scored.to_numpy()], 1e-6, 1 - 1e-6))
        own = intercept_and_slope(y, truth[scored.to_numpy()])
        relation = np.polyfit(raw, true_logit, 1)[0]
        print(
            f"  run from {run[0].date()}: Platt slope asked {platt(raw, y)[1]:.3f}, truth's own "
            f"slope {own['slope']:.3f}, true logit on raw score {relation:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="default,bpi2012,olist,crm_sales,bank_marketing")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibration_causes"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    for name in args.datasets.split(","):
        run(name, args.cache)


if __name__ == "__main__":
    main()
