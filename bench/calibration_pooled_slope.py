"""The evaluated model's test-slice calibration with Platt's slope from the recent window alone
(`calibration.pool_slope: false`, the calibration before) and pooled over every labelled row
(`true`; until round 6 unless the recent window's own interval excluded it), on each data set
of `closeprob results`; with the logistic baseline, paired. Nothing is logged.

    .venv/bin/python bench/calibration_pooled_slope.py --datasets default,bpi2012 --cache /tmp/cc
    .venv/bin/python bench/calibration_pooled_slope.py --pool true --snapshot-ranks

`--snapshot-ranks` turns on the percentile ranks within each as_of (features/snapshot_ranks.py).

Prints per data set and setting: the slope choice (pooled, recent [95 %], used), intercept and
slope [95 %], log loss, ROC-AUC, and model − logistic (ROC-AUC, log loss) [95 %], 200 deal
draws. The features and the rolling-origin selection are cached in --cache (pickles).
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import roc_auc_score

from closeprob.features.registry import categorical_features, feature_descriptions
from closeprob.features.snapshot_ranks import snapshot_rank_features
from closeprob.models.baselines import fit_logistic, predict_logistic
from closeprob.models.yardsticks import paired_differences, yardsticks_with_intervals
from closeprob.pipeline.config import Config, load_config
from closeprob.pipeline.core import TrainingData
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import fit_selected, prepare_training_data, select_model


def cached(path: Path, make: Any) -> Any:
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.write_bytes(pickle.dumps(value))
    return value


def with_pool_slope(config: Config, pool: bool) -> Config:
    calibration = config.calibration.model_copy(update={"pool_slope": pool})
    return config.model_copy(update={"calibration": calibration})


def show(figures: dict[str, float], name: str, spec: str) -> str:
    low, high = figures[name + "_lo"], figures[name + "_hi"]
    return f"{figures[name]:{spec}} [{low:{spec}}, {high:{spec}}]"


def slope_choice(model: Any) -> str:
    choice = model.slope_choice
    if choice is None:
        return "Platt map on the recent rows alone"
    return (
        f"Platt slope pooled {choice.pooled:.3f} ({choice.rows} rows, none that chose the tree "
        f"count), recent {choice.recent:.3f} [{choice.recent_lo:.3f}, {choice.recent_hi:.3f}] "
        f"-> {choice.used:.3f}"
    )


def with_snapshot_ranks(config: Config, ranks: bool) -> Config:
    features = config.features.model_copy(update={"snapshot_ranks": ranks})
    return config.model_copy(update={"features": features})


def with_rank_columns(data: TrainingData) -> TrainingData:
    """`data` as `features.snapshot_ranks: true` builds it: the same rows, the ranks within each
    as_of appended last (`build_features` ranks its assembled columns the same way)."""
    features = data.features
    ranks = snapshot_rank_features(features, features["as_of"].to_numpy())
    return replace(
        data,
        features=pd.concat([features, ranks], axis=1),
        spec=replace(data.spec, snapshot_ranks=True),
    )


def run(name: str, cache: Path, pools: list[bool], ranks: bool) -> None:
    config = with_snapshot_ranks(load_config(Path("configs") / f"{name}.yaml"), ranks)
    ensure_data(config)
    key = f"{name}.ranks" if ranks else name
    plain = cache / f"{name}.data.pkl"
    if ranks and plain.exists():  # the ranks of the cached rows: what build_features appends
        data = with_rank_columns(cached(plain, lambda: None))
    else:
        data = cached(
            cache / f"{key}.data.pkl",
            lambda: prepare_training_data(load_job_data(config), config),
        )
    selection = cached(cache / f"{key}.sel.pkl", lambda: select_model(data, config))
    test = data.rows("test")
    y = data.labels[test].to_numpy()
    deal_ids = data.features.loc[test, "deal_id"].to_numpy()
    names = list(feature_descriptions(data.spec))
    categorical = categorical_features(data.spec)
    before = data.rows("train") | data.rows("validation") | data.rows("calibration")
    logistic = fit_logistic(
        data.features.loc[before, names], data.labels[before], categorical, config.seed
    )
    p_logistic = predict_logistic(logistic, data.features.loc[test, names], categorical)
    seed = config.seed
    print(
        f"{name}{' (snapshot ranks)' if ranks else ''}: {len(names)} features, "
        f"test rows {int(test.sum())}, won rate {y.mean():.3f}, booster weight "
        f"{selection.blend_weight}, {selection.trees} trees (folds {selection.trees_by_fold})",
        flush=True,
    )
    for pool in pools:
        model = fit_selected(data, with_pool_slope(config, pool), replace(selection))
        p = model.predict_proba(data.features[test])
        own = yardsticks_with_intervals(y, p, deal_ids, 200, seed)
        paired = paired_differences(y, p, p_logistic, deal_ids, 200, seed)
        print(
            f"  pool_slope {pool!s:<5} intercept {show(own, 'intercept', '+.3f')} "
            f"slope {show(own, 'slope', '.3f')} log loss {own['log_loss']:.4f} "
            f"ROC-AUC {roc_auc_score(y, p):.4f} (logistic {roc_auc_score(y, p_logistic):.4f}) "
            f"(map a={model.calibrator.intercept:+.3f} b={model.calibrator.slope:.3f}; "
            f"{slope_choice(model)}); "
            f"- logistic: ROC-AUC {show(paired, 'roc_auc_diff', '+.4f')} "
            f"log loss {show(paired, 'log_loss_diff', '+.4f')}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="default,bpi2012,olist,crm_sales,bank_marketing")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibration_causes"))
    parser.add_argument("--pool", default="false,true", help="pool_slope settings to compare")
    parser.add_argument(
        "--snapshot-ranks", action="store_true", help="with features.snapshot_ranks: true"
    )
    args = parser.parse_args()
    pools = [word.strip().lower() == "true" for word in args.pool.split(",")]
    warnings.simplefilter("ignore")
    args.cache.mkdir(parents=True, exist_ok=True)
    for name in args.datasets.split(","):
        run(name, args.cache, pools, args.snapshot_ranks)


if __name__ == "__main__":
    main()
