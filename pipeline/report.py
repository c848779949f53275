"""What `make train` prints: the split, the test metrics and where to find the run."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from closeprob.pipeline.config import Config
from closeprob.pipeline.core import SLICES, TrainingResult

log = logging.getLogger(__name__)

METRIC_ORDER = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


CALIBRATION_LINE = (
    ("calibration_intercept", "intercept", "0 when right on average; > 0: p too low"),
    ("calibration_slope", "slope", "1 when right in spread; < 1: p too extreme"),
)


def print_training_report(
    result: TrainingResult,
    run_id: str,
    model_version: str,
    aliases: list[str],
    config: Config,
    uri: str,
    seconds: float,
) -> None:
    data = result.data
    log.info(
        f"\nTime split (snapshots every {config.snapshots.every_days} d, "
        f"label horizon {config.snapshots.horizon_days} d):"
    )
    log.info(f"  {'slice':<12}{'from':>12}{'to':>12}{'rows':>12}{'won rate':>10}")
    for name in SLICES:
        dates, rows = getattr(data.split, name), data.rows(name)
        log.info(
            f"  {name:<12}{dates[0].date()!s:>12}{dates[-1].date()!s:>12}"
            f"{int(rows.sum()):>12,}{data.labels[rows].mean():>10.3f}"
        )
    metrics = result.metrics
    log.info(
        "\nTest metrics of the evaluated model (the deployed recipe fitted on the train, "
        f"validation and calibration slices; {int(data.rows('test').sum()):,} test rows, after "
        "every fitting label window; 95 % intervals resample deals):"
    )
    log.info(f"  {'metric':<10}{'calibrated':>12}{'95 % interval':>20}{'uncalibrated':>14}")
    for key in METRIC_ORDER:
        calibrated, uncalibrated = metrics[f"test_{key}"], metrics[f"test_uncalibrated_{key}"]
        log.info(
            f"  {key:<10}{calibrated:>12.4f}{_interval(metrics, key):>20}{uncalibrated:>14.4f}"
        )
    key = "value_captured_at_capacity"
    if f"test_{key}" in metrics:
        log.info(
            f"  {'value@cap':<10}{metrics[f'test_{key}']:>12.4f}{_interval(metrics, key):>20}"
            f"   (capacity {config.evaluation.capacity})"
        )
    for key, label, meaning in CALIBRATION_LINE:
        if f"test_{key}" in metrics:
            log.info(
                f"  {label:<10}{metrics[f'test_{key}']:>12.4f}{_interval(metrics, key):>20}"
                f"   ({meaning})"
            )
    if "test_oracle_roc_auc" in metrics:
        gap = metrics["test_oracle_roc_auc"] - metrics["test_roc_auc"]
        log.info(
            "  oracle roc_auc (true probabilities, the best any model could do): "
            f"{metrics['test_oracle_roc_auc']:.4f} (gap {gap:.4f})"
        )
    print_deployment(result)
    print_blend(metrics)
    log.info(
        f"\nMLflow run {run_id} in experiment '{config.experiment}' at {uri}\n"
        f"registered '{config.registered_model}' version {model_version}"
        f"{' as ' + ' and '.join(aliases) if aliases else ''}\n"
        f"trained in {seconds:.1f} s"
    )


def _interval(metrics: dict[str, float], key: str) -> str:
    low, high = metrics.get(f"test_{key}_lo"), metrics.get(f"test_{key}_hi")
    return "" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def print_deployment(result: TrainingResult) -> None:
    """What the registered (deployed) model was fitted and calibrated on."""
    data, metrics = result.data, result.metrics
    fit, calibration = data.role("fit"), data.role("calibration")
    comparison = data.role("comparison")
    log.info(
        f"\nDeployed (registered) model: fitted on {int(fit.sum()):,} labelled rows, "
        f"trained_through {result.trained_through}, {int(metrics['deployed_trees'])} trees "
        f"(the mean of early stopping's counts over the rolling-origin folds);\n"
        f"  calibrated_on {result.calibrated_on}: {int(calibration.sum()):,} recent rows, "
        f"each scored out of fold (cross-fitted by deal); {int(comparison.sum()):,} rows of "
        f"held-out deals for comparison"
    )
    if "comparison_roc_auc" in metrics:
        log.info(
            f"  on the comparison rows: roc_auc {metrics['comparison_roc_auc']:.4f}, "
            f"log_loss {metrics['comparison_log_loss']:.4f}, ece {metrics['comparison_ece']:.4f}"
        )
    choice = result.model.slope_choice
    if choice is not None:
        differs = (
            "lies outside it (drift, or 1 time in 20 chance; the map keeps the pooled slope)"
            if choice.recent_differs
            else "holds it"
        )
        log.info(
            f"  Platt slope {choice.used:.3f} from {choice.rows:,} labelled rows' out-of-fold "
            f"scores (none that chose the tree count); the "
            f"recent window's own interval {choice.recent:.3f} [{choice.recent_lo:.3f}, "
            f"{choice.recent_hi:.3f}] {differs}"
        )


def print_blend(metrics: dict[str, float]) -> None:
    """Which model scores: the booster, the logistic regression, or their log-odds blend."""
    weight = metrics["blend_weight"]
    kind = (
        "the booster alone"
        if weight >= 1.0
        else "the logistic regression alone"
        if weight <= 0.0
        else f"{weight:.2f} × booster + {1 - weight:.2f} × logistic regression (log-odds)"
    )
    log.info(
        f"  scores with {kind}: blend weight {weight:.2f}, chosen by rolling-origin validation "
        f"({int(metrics.get('selection_folds', 1))} folds; the simplest within one standard "
        "error of the best)"
    )


def print_queue_summary(queue: pd.DataFrame, tiers: pd.DataFrame, path: Path, run_id: str) -> None:
    """Deals scored, expected value by tier and the top 10 of the queue."""
    log.info(
        f"\nScored {len(queue):,} open deals at {queue['as_of'].iloc[0]} with model version "
        f"{queue['model_version'].iloc[0]}\n"
    )
    # Without any deal values, expected value is p_close itself: show decimals, not money.
    money = "{:,.0f}".format if queue["deal_value"].notna().any() else "{:.3f}".format
    log.info(tiers.to_string(formatters={"expected_value": money, "share": "{:.1%}".format}))
    top = queue.head(10).assign(
        top_reason=queue["reasons_up"].head(10).fillna("").str.split(";").str[0]
    )
    columns = ["rank", "deal_id", "owner_id", "p_close", "deal_value", "value_source"]
    columns += ["expected_value", "tier", "top_reason"]
    log.info("\nTop 10:")
    log.info(
        top[columns].to_string(
            index=False,
            formatters={
                "p_close": "{:.3f}".format,
                "deal_value": "{:,.0f}".format,
                "expected_value": money,
            },
        )
    )
    log.info(f"\nqueue written to {path}; MLflow run {run_id} (experiment of predictions)")


COMPARISON_COLUMNS = {
    "test_roc_auc": "roc_auc",
    "test_pr_auc": "pr_auc",
    "test_log_loss": "log_loss",
    "test_brier": "brier",
    "test_ece": "ece",
    "test_precision_at_10pct": "prec@10%",
    "test_lift_at_10pct": "lift@10%",
    "test_precision_at_capacity": "prec@cap",
    "test_value_captured_at_capacity": "value@cap",
}


def comparison_table(metrics_by_family: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per family, the shared test metrics as columns."""
    table = pd.DataFrame(metrics_by_family).T[list(COMPARISON_COLUMNS)]
    return table.rename(columns=COMPARISON_COLUMNS).rename_axis("model_family")


def print_comparison(table: pd.DataFrame, capacity: int, rows: int) -> None:
    log.info(
        f"\nSide by side on the same test slice ({rows:,} rows; capacity {capacity} deals "
        "per weekly queue; value@cap = won value captured / perfect hindsight):\n"
    )
    log.info(table.to_string(float_format="{:.4f}".format))
