"""Which model should be deployed? Each candidate is fitted on the data as they stood at the
first test date (`backtest.known_at`) and scored on the test slice that follows, so every
figure is out of time for every candidate. Prints one line per candidate.

    .venv/bin/python bench/deployment_fit.py configs/default.yaml [configs/bpi2012.yaml ...]

Candidates: the model fitted on the train slice only (closeprob 0.1's registered model), and
the deployed fit (all labelled rows but held-out deals, calibrated on held-out deals of the
latest window) with the tree count early stopping chose on the train slice, as it is and
scaled to the row count, and chosen again by early stopping on the held-out calibration
deals (what `train` deploys). Nothing is logged to MLflow.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from closeprob.features.build import build_features
from closeprob.models.classifier import CloseModel
from closeprob.models.metrics import classification_metrics, deal_bootstrap
from closeprob.models.training import tree_count
from closeprob.pipeline.config import load_config
from closeprob.pipeline.dataset import known_at, load_dataset
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.training import fit_deployed, fit_evaluated, prepare_training_data


def auc_interval(deal_ids: np.ndarray, labels: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    def statistic(rows: np.ndarray) -> dict[str, float]:
        y = labels[rows]
        both = 0 < y.sum() < len(y)
        return {"auc": classification_metrics(y, p[rows])["roc_auc"] if both else np.nan}

    return deal_bootstrap(deal_ids, statistic, resamples=100)["auc"]


def main(paths: list[str]) -> None:
    warnings.simplefilter("ignore")
    for path in paths:
        config = load_config(Path(path))
        ensure_data(config)
        dataset = load_dataset(config.data)
        full = prepare_training_data(dataset, config)
        test = full.rows("test")
        keys = full.features.loc[test, ["deal_id", "as_of"]].reset_index(drop=True)
        labels = full.labels[test].to_numpy()
        cutoff = full.split.test[0]
        # The past is shorter than the whole: split it as each backtest retrain does.
        past_config = config.model_copy(update={"split": config.backtest.split})
        data = prepare_training_data(known_at(dataset, cutoff), past_config)
        evaluated = fit_evaluated(data, past_config)
        best = tree_count(evaluated.booster)
        fit = data.role("fit")
        # Scaled: more rows support proportionally more trees at the same learning rate.
        scaled = round(best * int(fit.sum()) / int(data.rows("train").sum()))
        candidates: dict[str, CloseModel] = {"train slice only (0.1)": evaluated}
        choices: tuple[tuple[str, int | None], ...] = (
            (f"deployed, unscaled ({best} trees)", best),
            (f"deployed, scaled ({scaled} trees)", scaled),
            ("deployed, stopped on held-out deals", None),
        )
        for name, trees in choices:
            candidates[name] = fit_deployed(data, past_config, trees, evaluated.blend_weight)
        print(
            f"\n{path}: fitted on data known at {cutoff.date()}, scored on {len(keys):,} test "
            f"rows {full.split.test[0].date()} … {full.split.test[-1].date()}"
        )
        print(f"  {'candidate':<50}{'roc_auc':>8}{'interval':>18}{'log_loss':>10}{'ece':>8}")
        for name, model in candidates.items():
            name = f"{name} ({tree_count(model.booster)} trees)" if "stopped" in name else name
            features = build_features(dataset.deals, dataset.interactions, keys, model.spec)
            p = model.predict_proba(features)
            m = classification_metrics(labels, p)
            low, high = auc_interval(keys["deal_id"].to_numpy(), labels, p)
            print(
                f"  {name:<50}{m['roc_auc']:>8.4f}  [{low:.4f}, {high:.4f}]"
                f"{m['log_loss']:>10.4f}{m['ece']:>8.4f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["configs/default.yaml"])
