"""What `make train` prints: the split, the test metrics and where to find the run."""

from __future__ import annotations

from pipeline.config import Config
from pipeline.train import SLICES, TrainingResult

METRIC_ORDER = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


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
    print(
        f"\nTime split (snapshots every {config.snapshots.every_days} d, "
        f"label horizon {config.snapshots.horizon_days} d):"
    )
    print(f"  {'slice':<12}{'from':>12}{'to':>12}{'rows':>9}{'won rate':>10}")
    for name in SLICES:
        dates, rows = getattr(data.split, name), data.rows(name)
        print(
            f"  {name:<12}{dates[0].date()!s:>12}{dates[-1].date()!s:>12}"
            f"{int(rows.sum()):>9,}{data.labels[rows].mean():>10.3f}"
        )
    metrics = result.metrics
    print(
        f"\nTest metrics ({int(data.rows('test').sum()):,} rows, after every fitting label window):"
    )
    print(f"  {'metric':<10}{'calibrated':>12}{'uncalibrated':>14}")
    for key in METRIC_ORDER:
        calibrated, uncalibrated = metrics[f"test_{key}"], metrics[f"test_uncalibrated_{key}"]
        print(f"  {key:<10}{calibrated:>12.4f}{uncalibrated:>14.4f}")
    if "test_oracle_roc_auc" in metrics:
        gap = metrics["test_oracle_roc_auc"] - metrics["test_roc_auc"]
        print(
            "  oracle roc_auc (true probabilities, the best any model could do): "
            f"{metrics['test_oracle_roc_auc']:.4f} (gap {gap:.4f})"
        )
    print(
        f"\nMLflow run {run_id} in experiment '{config.experiment}' at {uri}\n"
        f"registered '{config.registered_model}' version {model_version}"
        f"{' as ' + ' and '.join(aliases) if aliases else ''}\n"
        f"trained in {seconds:.1f} s"
    )
