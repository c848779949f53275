"""The `monitor` job: realised against expected accuracy of past queues.

Labels arrive one horizon after a score. `monitor` reads the queues earlier `predict` runs
logged to MLflow (the prediction experiment), keeps those whose horizon has passed by the end
of the data, and scores each against the outcomes now known: realised ROC-AUC, ECE and won
value captured at capacity, beside what the queue's calibrated probabilities expected and
the 95 % interval a calibrated model would land in by chance (models/health.py). It logs the
table and a chart over scoring dates to a `monitor` run, and says when a retrain is due
(`health.retrain_after_misses`, `health.retrain_days_stale`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.entities import Run

from closeprob.features.labels import label_outcomes
from closeprob.features.snapshots import data_end
from closeprob.models.health import realised_against_expected, retrain_reason
from closeprob.pipeline.config import Config
from closeprob.pipeline.dataset import load_job_data
from closeprob.pipeline.errors import TrainingDataError
from closeprob.pipeline.io import read_table
from closeprob.pipeline.runs import use_experiment
from closeprob.pipeline.store import tracked_run

log = logging.getLogger(__name__)
QUEUE_SUFFIXES = (".csv", ".parquet")
SHOWN_COLUMNS = [
    "as_of",
    "deals",
    "wins",
    "expected_wins",
    "roc_auc",
    "expected_roc_auc",
    "roc_auc_low",
    "roc_auc_high",
    "ece",
    "ece_high",
    "value_captured",
    "expected_value_captured",
]


@dataclass(frozen=True)
class PastQueue:
    """A queue a predict run logged: its run, scoring instant, model version, rows and the
    staleness its health measured (None for runs before health existed)."""

    run_id: str
    as_of: pd.Timestamp
    model_version: str
    queue: pd.DataFrame
    days_stale: float | None


def queue_artifact(client: MlflowClient, run_id: str, folder: Path) -> pd.DataFrame | None:
    """The queue file a predict run logged at its artifact root, read; None if it has none."""

    for artifact in client.list_artifacts(run_id):
        if not artifact.is_dir and artifact.path.lower().endswith(QUEUE_SUFFIXES):
            local = Path(client.download_artifacts(run_id, artifact.path, str(folder)))
            queue = read_table(local)
            return queue.assign(
                deal_id=queue["deal_id"].astype("str"),
                p_close=pd.to_numeric(queue["p_close"], errors="coerce"),
                deal_value=pd.to_numeric(queue["deal_value"], errors="coerce"),
                rank=pd.to_numeric(queue["rank"], errors="coerce"),
            )
    return None


def past_queues(
    experiment: str, end: pd.Timestamp, horizon_days: int
) -> tuple[list[PastQueue], int]:
    """The latest finished predict run's queue per scoring date whose horizon has ended by
    `end`, oldest first; and how many scoring dates are still inside their horizon."""
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return [], 0
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="tags.job = 'predict' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    latest: dict[pd.Timestamp, Run] = {}
    for run in runs:
        as_of = pd.Timestamp(run.data.params["as_of"])
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
        latest.setdefault(as_of, run)
    horizon = pd.Timedelta(days=horizon_days)
    pending = sum(1 for as_of in latest if as_of + horizon > end)
    past = []
    with tempfile.TemporaryDirectory(prefix="closeprob-monitor-") as folder:
        for as_of in sorted(a for a in latest if a + horizon <= end):
            run = latest[as_of]
            queue = queue_artifact(client, run.info.run_id, Path(folder))
            if queue is None:
                continue
            metrics = run.data.metrics
            past.append(
                PastQueue(
                    run_id=run.info.run_id,
                    as_of=as_of,
                    model_version=run.data.params.get("model_version", ""),
                    queue=queue,
                    days_stale=metrics.get("health_days_stale"),
                )
            )
    return past, pending


def monitor_table(
    past: list[PastQueue], deals: pd.DataFrame, horizon_days: int, config: Config
) -> pd.DataFrame:
    """One row per past queue: realised against expected (models/health.py), outcomes from
    `deals` as they are known now (won in (as_of, as_of + horizon])."""
    rows = []
    for item in past:
        queue = item.queue
        snapshots = pd.DataFrame({"deal_id": queue["deal_id"], "as_of": item.as_of})
        won = label_outcomes(deals, snapshots, horizon_days).to_numpy(dtype=float)
        figures = realised_against_expected(
            won,
            queue["p_close"].to_numpy(dtype=float),
            queue["deal_value"].to_numpy(dtype=float),
            -queue["rank"].to_numpy(dtype=float),
            config.evaluation.capacity,
            config.health.expected_draws,
            config.seed,
        )
        rows.append(
            {"as_of": item.as_of, "model_version": item.model_version, "run_id": item.run_id}
            | figures
        )
    table = pd.DataFrame(rows)
    table["roc_auc_within"] = table["roc_auc"].between(table["roc_auc_low"], table["roc_auc_high"])
    return table


def monitor_figure(table: pd.DataFrame) -> Figure:
    """Realised ROC-AUC and value captured per scoring date against the expected values and
    their 95 % intervals."""
    figure, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    dates = table["as_of"].dt.tz_convert(None)
    for ax, name, label in (
        (axes[0], "roc_auc", "ROC-AUC"),
        (axes[1], "value_captured", "won value captured at capacity"),
    ):
        ax.fill_between(
            dates,
            table[f"{name}_low"],
            table[f"{name}_high"],
            color="tab:blue",
            alpha=0.2,
            label="expected 95 % interval (calibrated p)",
        )
        ax.plot(dates, table[f"expected_{name}"], color="tab:blue", label="expected")
        ax.plot(dates, table[name], color="black", marker="o", linestyle="", label="realised")
        ax.set_ylabel(label)
    axes[0].set_title("Past queues: realised against expected")
    axes[0].legend(loc="lower left", fontsize=8)
    axes[1].set_xlabel("scoring date (as_of)")
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def run_monitor(config: Config) -> None:
    """The `monitor` job: past queues against the outcomes now known, logged to a `monitor`
    run in the prediction experiment with a chart; a warning when a retrain is due."""

    dataset = load_job_data(config, "predict", cut_at_now=True)
    end = data_end(dataset.deals, dataset.interactions)
    horizon = config.snapshots.horizon_days
    past, pending = past_queues(config.prediction_experiment, end, horizon)
    if not past:
        raise TrainingDataError(
            f"no queue to monitor: experiment {config.prediction_experiment!r} has no finished "
            f"predict run whose horizon ({horizon} days) has ended by the data's last timestamp "
            f"({end.isoformat()}); {pending} scoring dates are still inside their horizon. Run "
            "`closeprob predict` each week and `monitor` once outcomes are in (or pass --as-of "
            "dates at least one horizon back)"
        )
    table = monitor_table(past, dataset.deals, horizon, config)
    health = config.health
    reason = retrain_reason(
        table["roc_auc"].tolist(),
        table["roc_auc_low"].tolist(),
        health.retrain_after_misses,
        past[-1].days_stale,
        health.retrain_days_stale,
    )
    use_experiment(config.prediction_experiment)
    with tracked_run(f"monitor {config.name} {end.date()}") as run_id:
        mlflow.set_tags({"job": "monitor", "retrain_due": str(reason is not None).lower()})
        mlflow.log_metrics(
            {
                "monitor_past_queues": float(len(table)),
                "monitor_pending_queues": float(pending),
                "monitor_roc_auc_within_share": float(table["roc_auc_within"].mean()),
                "monitor_retrain_due": float(reason is not None),
            }
        )
        mlflow.log_table(table.assign(as_of=table["as_of"].astype(str)), "monitor.json")
        figure = monitor_figure(table)
        mlflow.log_figure(figure, "monitor.png")
        plt.close(figure)
    print_monitor(table, pending, reason, run_id)


def print_monitor(table: pd.DataFrame, pending: int, reason: str | None, run_id: str) -> None:
    """The table on stdout, the retrain verdict (a warning when due)."""
    shown = table[SHOWN_COLUMNS].assign(
        as_of=table["as_of"].dt.strftime("%Y-%m-%d"),
        deals=table["deals"].astype(int),
        wins=table["wins"].astype(int),
    )
    log.info(
        f"{len(table)} past queues scored against outcomes now known ({pending} still inside "
        "their horizon); expected: what calibrated p_close expects, low/high: its 95 % interval"
    )
    log.info(shown.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    within = int(table["roc_auc_within"].sum())
    log.info(f"realised ROC-AUC within the expected interval on {within} of {len(table)} dates")
    if reason is not None:
        log.warning(f"retrain due: {reason}; run `closeprob train` on fresh data")
    else:
        log.info("no retrain due (health.retrain_after_misses, health.retrain_days_stale)")
    log.info(f"MLflow run {run_id} (monitor.json, monitor.png)")
