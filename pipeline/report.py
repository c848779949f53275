"""What `make train` prints: the split, the test metrics and where to find the run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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


def print_queue_summary(queue: pd.DataFrame, tiers: pd.DataFrame, path: Path, run_id: str) -> None:
    """Deals scored, expected value by tier and the top 10 of the queue."""
    print(
        f"\nScored {len(queue):,} open deals at {queue['as_of'].iloc[0]} with model version "
        f"{queue['model_version'].iloc[0]}"
    )
    print(f"  {'tier':<6}{'deals':>8}{'expected value':>18}{'share':>8}")
    for tier, row in tiers.iterrows():
        print(
            f"  {tier!s:<6}{int(row['deals']):>8,}{row['expected_value']:>18,.0f}{row['share']:>8.1%}"
        )
    print("\nTop 10:")
    print(
        f"  {'rank':>4} {'deal_id':<10}{'owner':<7}{'p_close':>8}{'value':>11}{'source':>15}{'exp. value':>12} tier  top reason"
    )
    for row in queue.head(10).itertuples():
        reason = str(row.reasons_up).split(";")[0] if row.reasons_up else ""
        print(
            f"  {row.rank:>4} {row.deal_id!s:<10}{row.owner_id!s:<7}{row.p_close:>8.3f}"
            f"{row.deal_value:>11,.0f}{row.value_source!s:>15}{row.expected_value:>12,.0f} "
            f"{row.tier:<5} {reason}"
        )
    print(f"\nqueue written to {path}; MLflow run {run_id} (experiment of predictions)")
