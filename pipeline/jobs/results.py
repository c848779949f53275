"""One table, one row per data set: the model against RFM and value-only on each test slice."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from closeprob.models.yardsticks import paired_differences, yardsticks_with_intervals
from closeprob.pipeline.config import Config, load_config
from closeprob.pipeline.core import Dataset, PolicyScores, TrainingData
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.evaluation import (
    declared_row_values,
    policy_scores,
    test_intervals,
    test_metrics,
)
from closeprob.pipeline.jobs.generate import ensure_data
from closeprob.pipeline.runs import log_results_run
from closeprob.pipeline.training import train_close_model

log = logging.getLogger(__name__)

RESULT_DATASETS = ("default", "bpi2012", "olist", "crm_sales", "bank_marketing")


def dataset_result(name: str, dataset: Dataset, config: Config) -> dict[str, object]:
    """Size, span and test-slice figures of one data set, with the baselines' value captured."""
    result = train_close_model(dataset, config)
    data = result.data
    test = data.rows("test")
    # Value captured is scored with declared amounts only (estimates rank, never score).
    value = declared_row_values(dataset.deals, data.features.loc[test, "deal_id"])
    by_family: dict[str, PolicyScores] = {
        p.family: p for p in policy_scores(result, dataset, config)
    }
    capacity = config.evaluation.capacity
    model = test_metrics(data, by_family["lightgbm_calibrated"], value, capacity)
    model |= test_intervals(
        data,
        by_family["lightgbm_calibrated"],
        value,
        capacity,
        config.evaluation.bootstrap_resamples,
        config.seed,
    )
    logistic = test_metrics(data, by_family["logistic"], value, capacity)
    baselines = {
        family: test_metrics(data, by_family[family], value, config.evaluation.capacity)
        for family in ("rfm", "abc_value", "rfm_account", "recency")
    }
    captured = {k: v["test_value_captured_at_capacity"] for k, v in baselines.items()}
    times = pd.concat([dataset.deals["created_at"], dataset.interactions["occurred_at"]])
    return {
        "data set": name,
        "deals": len(dataset.deals),
        "interactions": len(dataset.interactions),
        "snapshot rows": len(data.features),
        "test rows": int(test.sum()),
        "test positive rate": float(data.labels[test].mean()),
        "span": f"{times.min().date()} – {times.max().date()}",
        "horizon d": config.snapshots.horizon_days,
        "ROC-AUC": model["test_roc_auc"],
        "ROC-AUC 95 %": _interval(model, "roc_auc"),
        "PR-AUC": model["test_pr_auc"],
        "log loss": model["test_log_loss"],
        "ECE": model["test_ece"],
        "ECE 95 %": _interval(model, "ece"),
        "capacity": capacity,
        "value@cap model": model["test_value_captured_at_capacity"],
        "value@cap 95 %": _interval(model, "value_captured_at_capacity"),
        "ROC-AUC logistic": logistic["test_roc_auc"],
        "value@cap logistic": logistic["test_value_captured_at_capacity"],
        "booster weight": result.evaluated.blend_weight,
        "value@cap RFM": captured["rfm"],
        "value@cap value-only": captured["abc_value"],
        "value@cap RFM by account": captured["rfm_account"],
        "value@cap recency": captured["recency"],
        "ROC-AUC RFM": baselines["rfm"]["test_roc_auc"],
        "ROC-AUC RFM by account": baselines["rfm_account"]["test_roc_auc"],
        "ROC-AUC recency": baselines["recency"]["test_roc_auc"],
        "has values": bool(dataset.deals["amount"].notna().any()),
    } | yardstick_columns(data, by_family, config)


def yardstick_columns(
    data: TrainingData, by_family: dict[str, PolicyScores], config: Config
) -> dict[str, object]:
    """The model against the logistic baseline on the test slice, paired (same deal draws):
    ROC-AUC and log loss differences; each one's calibration intercept and slope, the model's
    ECE over equal-mass bins and its Brier reliability/resolution, all with 95 % intervals."""
    test = data.rows("test")
    y = data.labels[test].to_numpy()
    deal_ids = data.features.loc[test, "deal_id"].to_numpy()
    resamples, seed = config.evaluation.bootstrap_resamples, config.seed
    model_p, logistic_p = by_family["lightgbm_calibrated"].p_close, by_family["logistic"].p_close
    paired = paired_differences(y, model_p, logistic_p, deal_ids, resamples, seed)
    model = yardsticks_with_intervals(y, model_p, deal_ids, resamples, seed)
    logistic = yardsticks_with_intervals(y, logistic_p, deal_ids, resamples, seed)
    return {
        "ROC-AUC − logistic [95 %]": _with_interval(paired, "roc_auc_diff", "+.3f"),
        "log loss − logistic [95 %]": _with_interval(paired, "log_loss_diff", "+.3f"),
        "intercept [95 %]": _with_interval(model, "intercept", "+.3f"),
        "slope [95 %]": _with_interval(model, "slope", ".2f"),
        "logistic intercept [95 %]": _with_interval(logistic, "intercept", "+.3f"),
        "logistic slope [95 %]": _with_interval(logistic, "slope", ".2f"),
        "ECE equal-mass [95 %]": _with_interval(model, "ece_equal_mass", ".3f"),
        "reliability": model["reliability"],
        "resolution": model["resolution"],
    }


def _with_interval(figures: dict[str, float], name: str, spec: str) -> str:
    low, high = figures[f"{name}_lo"], figures[f"{name}_hi"]
    return f"{figures[name]:{spec}} [{low:{spec}}, {high:{spec}}]"


def _interval(metrics: dict[str, float], name: str) -> str:
    return f"[{metrics[f'test_{name}_lo']:.3f}, {metrics[f'test_{name}_hi']:.3f}]"


def run_results(names: str | None) -> None:
    """The `results` job: every data set trained and evaluated, one table, one MLflow run."""

    rows = []
    for name in names.split(",") if names else RESULT_DATASETS:
        config = load_config(Path("configs") / f"{name}.yaml")
        ensure_data(config)
        log.info(f"{name}: training and evaluating ...")
        rows.append(dataset_result(name, load_job_data(config), config))
    table = pd.DataFrame(rows)
    run_id = log_results_run(table)
    log.info("")
    log.info(table.to_markdown(index=False, floatfmt=".3f"))
    log.info(f"\nMLflow run {run_id} (experiment closeprob-results)")
